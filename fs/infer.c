/*
 * infer.c - contract drafting from data (contract in include/infer.h).
 */
#include "infer.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "csv.h"
#include "mesh_util.h"
#include "parquet.h"
#include "pii.h"
#include "unique.h"

/* Per column state while reading. */
struct col_state {
	unsigned can;                  /* bit per logical type still possible */
	uint64_t nonnull, nulls, dups;
	size_t pii_hits[8];
	struct unique_set *seen;
};

#define CAN(t) (1u << (t))
#define ALL_TYPES (CAN(LT_INTEGER) | CAN(LT_NUMBER) | CAN(LT_BOOLEAN) | CAN(LT_DATE) | CAN(LT_TIMESTAMP))

static bool digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return n > 0;
}

static unsigned types_of(const char *v, size_t n)
{
	unsigned t = 0;
	size_t i = (n && (v[0] == '-' || v[0] == '+')) ? 1 : 0;
	if (digits(v + i, n - i) && n - i <= 18)
		t |= CAN(LT_INTEGER) | CAN(LT_NUMBER);
	else {
		char buf[64];
		if (n < sizeof buf) {
			memcpy(buf, v, n);
			buf[n] = '\0';
			char *end;
			strtod(buf, &end);
			if (end == buf + n && n && strpbrk(buf, "0123456789"))
				t |= CAN(LT_NUMBER);
		}
	}
	if ((n == 4 && !strncasecmp(v, "true", 4)) || (n == 5 && !strncasecmp(v, "false", 5)))
		t |= CAN(LT_BOOLEAN);
	if (n == 10 && v[4] == '-' && v[7] == '-') {
		char buf[16];
		memcpy(buf, v, 10);
		buf[10] = '\0';
		time_t x;
		if (!mesh_time_parse(buf, &x))
			t |= CAN(LT_DATE);
	}
	if (n >= 19 && n < 40 && v[4] == '-' && (v[10] == 'T' || v[10] == ' ')) {
		char buf[48];
		memcpy(buf, v, n);
		buf[n] = '\0';
		buf[10] = 'T';
		time_t x;
		if (!mesh_time_parse(buf, &x))
			t |= CAN(LT_TIMESTAMP);
		else if (n < sizeof buf - 1) {
			buf[n] = 'Z';
			buf[n + 1] = '\0';
			if (!mesh_time_parse(buf, &x))
				t |= CAN(LT_TIMESTAMP);
		}
	}
	return t;
}

static void dup_count(void *ctx, const char *v, size_t n, uint64_t line, uint64_t row)
{
	(void)v, (void)n, (void)line, (void)row;
	((struct col_state *)ctx)->dups++;
}

static void see(struct infer_column *c, struct col_state *s, const char *v, size_t n, uint64_t row)
{
	if (n == 0) {
		s->nulls++;
		return;
	}
	s->nonnull++;
	s->can &= types_of(v, n);
	unique_add(s->seen, v, n, row, row, dup_count, s, NULL);
	unsigned k = pii_detect_value(v, n);
	for (int b = 0; b < 8; b++)
		s->pii_hits[b] += (k >> b) & 1;
	if (c->n_examples < 3 && n <= 64) {
		bool dup = false;
		for (size_t i = 0; i < c->n_examples; i++)
			dup |= strlen(c->examples[i]) == n && !memcmp(c->examples[i], v, n);
		if (!dup)
			c->examples[c->n_examples++] = xstrndup(v, n);
	}
}

static enum logical_type narrowest(unsigned can, uint64_t nonnull)
{
	if (!nonnull)
		return LT_STRING;
	static const enum logical_type order[] = {LT_BOOLEAN, LT_INTEGER, LT_NUMBER, LT_DATE, LT_TIMESTAMP};
	for (size_t i = 0; i < 5; i++)
		if (can & CAN(order[i]))
			return order[i];
	return LT_STRING;
}

static void finish(struct infer_result *r, struct col_state *st)
{
	for (size_t i = 0; i < r->n_cols; i++) {
		struct infer_column *c = &r->cols[i];
		struct col_state *s = &st[i];
		unique_finish(s->seen, dup_count, s, NULL);
		c->type = narrowest(s->can, s->nonnull);
		c->required = s->nulls == 0 && s->nonnull > 0;
		c->unique = s->dups == 0 && s->nonnull > 1;
		c->pii = pii_column_name_hint(c->name);
		for (int b = 0; b < 8; b++)
			if (s->nonnull && (double)s->pii_hits[b] >= PII_SHARE * (double)s->nonnull) {
				c->pii |= 1u << b;
				char reason[160];
				snprintf(reason, sizeof reason, "%.0f%% of %llu values look like: %s",
					 100.0 * (double)s->pii_hits[b] / (double)s->nonnull,
					 (unsigned long long)s->nonnull, pii_kind_name(1u << b));
				free(c->pii_reason);
				c->pii_reason = xstrdup(reason);
			}
		if (c->pii && !c->pii_reason) {
			char reason[160];
			snprintf(reason, sizeof reason, "the column name suggests a %s", pii_kind_name(c->pii));
			c->pii_reason = xstrdup(reason);
		}
		unique_free(s->seen);
	}
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

/* Parquet: types and nullability come from the footer, not from guessing;
 * a sample of decoded values gives examples, uniqueness and the pii
 * detectors.  Columns whose values cannot be decoded keep the footer's view. */
static int infer_parquet(int fd, const char *path, size_t limit, struct infer_result *r, struct mesh_err *err)
{
	struct parquet_file *pf = NULL;
	int rc = parquet_open(fd, path, &pf, err);
	if (rc)
		return rc;
	r->format = xstrdup("parquet");
	r->n_cols = parquet_num_columns(pf);
	r->cols = xcalloc(r->n_cols + 1, sizeof *r->cols);
	struct col_state *st = xcalloc(r->n_cols + 1, sizeof *st);
	int64_t rows = parquet_num_rows(pf);
	r->rows = (uint64_t)rows;
	r->sampled = (uint64_t)rows > limit;
	for (size_t i = 0; i < r->n_cols; i++) {
		const struct parquet_column *col = parquet_column_at(pf, i);
		r->cols[i].name = xstrdup(col->name);
		st[i].can = ALL_TYPES;
		st[i].seen = unique_new(8u << 20, NULL);
		struct parquet_cursor *cur = NULL;
		struct mesh_err ignored = {0};
		if (parquet_cursor_open(pf, i, &cur, &ignored) == 0) {
			const char *v;
			size_t n;
			bool is_null;
			for (uint64_t row = 1; row <= limit && parquet_cursor_next(cur, &v, &n, &is_null, &ignored) == 1;
			     row++)
				see(&r->cols[i], &st[i], is_null ? "" : v, is_null ? 0 : n, row);
			parquet_cursor_free(cur);
		}
	}
	finish(r, st);
	for (size_t i = 0; i < r->n_cols; i++) {
		const struct parquet_column *col = parquet_column_at(pf, i);
		struct infer_column *c = &r->cols[i];
		c->type = !col->flat ? LT_OBJECT : col->annotation == PARQUET_ANN_OTHER ? LT_ANY : col->logical;
		/* required when the schema says so, or no row group holds a null */
		c->required = !col->optional || (col->has_null_count && col->null_count == 0 && rows > 0);
		if (col->optional && !col->has_null_count)
			c->required = c->required && st[i].nulls == 0 && !r->sampled;
		if (!c->required)
			c->unique = false;
	}
	free(st);
	parquet_close(pf);
	return 0;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && !strcasecmp(s + n - m, suffix);
}

int infer_file(const char *path, const struct infer_options *opts, struct infer_result **out,
	       struct mesh_err *err)
{
	*out = NULL;
	size_t limit = opts && opts->full ? SIZE_MAX : opts && opts->sample_rows ? opts->sample_rows : INFER_SAMPLE_ROWS;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return mesh_errf(err, -errno, "%s: %s", path, strerror(errno));
	struct infer_result *r = xcalloc(1, sizeof *r);
	r->file = xstrdup(base_name(path));
	if (ends_with(path, ".parquet")) {
		int prc = infer_parquet(fd, path, limit, r, err);
		close(fd);
		if (prc) {
			infer_result_free(r);
			return prc;
		}
		*out = r;
		return 0;
	}
	struct col_state *st = NULL;
	int rc = 0;
	size_t n = strlen(path);
	bool jsonl = (n > 6 && !strcmp(path + n - 6, ".jsonl")) || (n > 7 && !strcmp(path + n - 7, ".ndjson"));
	if (!jsonl) {
		r->format = xstrdup("csv");
		struct csv_reader *rd = csv_reader_fd(fd, path, 0);
		struct csv_record rec;
		rc = csv_next(rd, &rec, err);
		if (rc == 0)
			rc = mesh_errf(err, -EINVAL, "%s: empty file (a CSV file starts with a header row)", path);
		if (rc > 0) {
			r->n_cols = rec.n;
			r->cols = xcalloc(rec.n + 1, sizeof *r->cols);
			st = xcalloc(rec.n + 1, sizeof *st);
			for (size_t i = 0; i < rec.n; i++) {
				r->cols[i].name = xstrndup(rec.fields[i].ptr, rec.fields[i].len);
				st[i].can = ALL_TYPES;
				st[i].seen = unique_new(8u << 20, NULL);
			}
			while ((rc = csv_next(rd, &rec, err)) == 1) {
				if (r->rows >= limit) {
					r->sampled = true;
					break;
				}
				r->rows++;
				if (rec.n != r->n_cols) {
					rc = mesh_errf(err, -EINVAL, "%s:%llu: %zu fields, the header has %zu", path,
						       (unsigned long long)rec.line, rec.n, r->n_cols);
					break;
				}
				for (size_t i = 0; i < rec.n; i++)
					see(&r->cols[i], &st[i], rec.fields[i].ptr, rec.fields[i].len, rec.row);
			}
			if (rc == 1)
				rc = 0;
		}
		csv_reader_free(rd);
	} else {
		r->format = xstrdup("jsonl");
		FILE *f = fdopen(dup(fd), "r");
		char *line = NULL;
		size_t cap = 0;
		uint64_t lineno = 0;
		while (f && getline(&line, &cap, f) > 0) {
			lineno++;
			if (line[0] == '\n')
				continue;
			if (r->rows >= limit) {
				r->sampled = true;
				break;
			}
			json_error_t jerr;
			json_t *o = json_loads(line, 0, &jerr);
			if (!json_is_object(o)) {
				json_decref(o);
				rc = mesh_errf(err, -EINVAL, "%s:%llu: not a JSON object", path, (unsigned long long)lineno);
				break;
			}
			r->rows++;
			const char *key;
			json_t *v;
			json_object_foreach(o, key, v) {
				size_t i = 0;
				while (i < r->n_cols && strcmp(r->cols[i].name, key))
					i++;
				if (i == r->n_cols) {
					r->cols = xrealloc(r->cols, (r->n_cols + 1) * sizeof *r->cols);
					st = xrealloc(st, (r->n_cols + 1) * sizeof *st);
					memset(&r->cols[i], 0, sizeof *r->cols);
					memset(&st[i], 0, sizeof *st);
					r->cols[i].name = xstrdup(key);
					st[i].can = ALL_TYPES;
					st[i].seen = unique_new(8u << 20, NULL);
					/* rows before this key lacked it */
					st[i].nulls = r->rows - 1;
					r->n_cols++;
				}
				if (json_is_null(v)) {
					see(&r->cols[i], &st[i], "", 0, r->rows);
				} else if (json_is_string(v)) {
					see(&r->cols[i], &st[i], json_string_value(v), json_string_length(v), r->rows);
				} else {
					char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
					see(&r->cols[i], &st[i], text, strlen(text), r->rows);
					if (json_is_object(v) || json_is_array(v))
						st[i].can = 0;
					free(text);
				}
			}
			/* keys absent from this row count as nulls */
			for (size_t i = 0; i < r->n_cols; i++)
				if (!json_object_get(o, r->cols[i].name))
					st[i].nulls++;
			json_decref(o);
		}
		free(line);
		if (f)
			fclose(f);
		if (!rc && r->rows == 0)
			rc = mesh_errf(err, -EINVAL, "%s: no JSON objects", path);
	}
	close(fd);
	if (st)
		finish(r, st);
	free(st);
	if (rc) {
		infer_result_free(r);
		return rc < 0 ? rc : -EINVAL;
	}
	*out = r;
	return 0;
}

void infer_result_free(struct infer_result *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_cols; i++) {
		free(r->cols[i].name);
		for (size_t k = 0; k < r->cols[i].n_examples; k++)
			free(r->cols[i].examples[k]);
		free(r->cols[i].pii_reason);
	}
	free(r->cols);
	free(r->file);
	free(r->format);
	free(r);
}

static void yaml_quoted(struct strbuf *sb, const char *s)
{
	json_t *j = json_string(s);
	char *t = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
	strbuf_puts(sb, t ? t : "\"\"");
	free(t);
	json_decref(j);
}

char *infer_contract_yaml(const struct infer_result *r, const char *domain, const char *product,
			  const char *version)
{
	struct strbuf sb = STRBUF_INIT;
	char id_src[512];
	snprintf(id_src, sizeof id_src, "%s/%s/%s", domain, product, version);
	char hex[65];
	struct mesh_sha256 *h = mesh_sha256_new();
	mesh_sha256_update(h, id_src, strlen(id_src));
	mesh_sha256_final(h, hex);
	strbuf_printf(&sb,
		"# Drafted by 'meshctl init' from %s (%llu rows read%s).\n"
		"# Fill in every TODO: 'meshctl validate' and 'meshctl publish' refuse\n"
		"# placeholders in the purpose, owner and support fields.\n"
		"apiVersion: v3.1.0\nkind: DataContract\n"
		"id: %.8s-%.4s-%.4s-%.4s-%.12s\n"
		"name: %s\nversion: %s\nstatus: active\ndomain: %s\ndataProduct: %s\n"
		"description:\n  purpose: \"TODO: what this product is for\"\n"
		"  usage: \"TODO: how consumers should use it\"\n"
		"  limitations: \"TODO: what it does not cover\"\n"
		"team:\n  members:\n    - username: TODO-owner\n      role: owner\n"
		"support:\n  - channel: \"TODO: #%s-data\"\n"
		"schema:\n  - name: %.*s\n    physicalName: %s\n    physicalType: file\n    properties:\n",
		r->file, (unsigned long long)r->rows, r->sampled ? ", a sample: run with --full to read all" : "",
		hex, hex + 8, hex + 12, hex + 16, hex + 20, product, version, domain, product, domain,
		(int)strcspn(r->file, "."), r->file, r->file);
	for (size_t i = 0; i < r->n_cols; i++) {
		const struct infer_column *c = &r->cols[i];
		strbuf_puts(&sb, "      - name: ");
		yaml_quoted(&sb, c->name);
		strbuf_printf(&sb, "\n        logicalType: %s\n        required: %s\n", logical_type_name(c->type),
			      c->required ? "true" : "false");
		if (c->unique)
			strbuf_printf(&sb, "        unique: true%s\n", r->sampled ? "   # in the sample read" : "");
		if (c->pii) {
			strbuf_puts(&sb, "        classification: pii   # proposed: ");
			strbuf_puts(&sb, c->pii_reason);
			strbuf_puts(&sb, "\n");
		} else {
			strbuf_puts(&sb, "        classification: public   # TODO: confirm\n");
		}
		if (c->n_examples && !c->pii) {   /* personal data stays out of the contract */
			strbuf_puts(&sb, "        examples: [");
			for (size_t k = 0; k < c->n_examples; k++) {
				if (k)
					strbuf_puts(&sb, ", ");
				yaml_quoted(&sb, c->examples[k]);
			}
			strbuf_puts(&sb, "]\n");
		}
	}
	return strbuf_detach(&sb, NULL);
}
