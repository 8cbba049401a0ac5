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
#include <uuid/uuid.h>

#include "csv.h"
#include "mesh_util.h"
#include "parquet.h"
#include "pii.h"
#include "unique.h"
#include "yamlout.h"

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

/* An RFC 4122 version 5 UUID of the release's identity. */
static void release_uuid(const char *domain, const char *product, const char *version, char out[37])
{
	char name[512];
	int n = snprintf(name, sizeof name, "meshfs://%s/%s/%s", domain, product, version);
	uuid_t id;
	uuid_generate_sha1(id, *uuid_get_template("url"), name, n < 0 ? 0 : (size_t)n);
	uuid_unparse_lower(id, out);
}

int infer_contract_yaml(const struct infer_result *r, const char *domain, const char *product,
			const char *version, char **yaml, struct mesh_err *err)
{
	*yaml = NULL;
	for (size_t i = 0; i < r->n_cols; i++)
		if (!utf8_valid((const unsigned char *)r->cols[i].name, strlen(r->cols[i].name), NULL))
			return mesh_errf(err, -EINVAL, "%s: column %zu: the name is not valid UTF-8 (a contract "
					 "is UTF-8 text; rename the column)", r->file, i + 1);
	struct yamlout *y = yamlout_new();
	if (!y)
		return mesh_errf(err, -ENOMEM, "cannot start the YAML emitter");
	char line[1024];
	snprintf(line, sizeof line, "Drafted by 'meshctl init' from %s (%llu rows read%s).", r->file,
		 (unsigned long long)r->rows, r->sampled ? ", a sample: run with --full to read all" : "");
	yamlout_comment(y, line);
	yamlout_comment(y, "Fill in every TODO: 'meshctl validate' and 'meshctl publish' refuse");
	yamlout_comment(y, "placeholders in the purpose, owner and support fields.");
	yamlout_comment(y, "Confirm each classification: 'public' is a guess, 'pii' a proposal:");
	for (size_t i = 0; i < r->n_cols; i++) {
		const struct infer_column *c = &r->cols[i];
		if (c->pii) {
			snprintf(line, sizeof line, "  %s: pii, %s", c->name, c->pii_reason ? c->pii_reason : "");
			yamlout_comment(y, line);
		}
		if (c->unique && r->sampled) {
			snprintf(line, sizeof line, "  %s: unique in the sample read", c->name);
			yamlout_comment(y, line);
		}
	}
	char id[37];
	release_uuid(domain, product, version, id);
	yamlout_map_start(y);
	yamlout_kv_str(y, "apiVersion", "v3.1.0");
	yamlout_kv_str(y, "kind", "DataContract");
	yamlout_kv_str(y, "id", id);
	yamlout_kv_str(y, "name", product);
	yamlout_kv_str(y, "version", version);
	yamlout_kv_str(y, "status", "active");
	yamlout_kv_str(y, "domain", domain);
	yamlout_kv_str(y, "dataProduct", product);
	yamlout_str(y, "description");
	yamlout_map_start(y);
	yamlout_str(y, "purpose");
	yamlout_str_quoted(y, "TODO: what this product is for");
	yamlout_str(y, "usage");
	yamlout_str_quoted(y, "TODO: how consumers should use it");
	yamlout_str(y, "limitations");
	yamlout_str_quoted(y, "TODO: what it does not cover");
	yamlout_map_end(y);
	yamlout_str(y, "team");
	yamlout_map_start(y);
	yamlout_str(y, "members");
	yamlout_seq_start(y, false);
	yamlout_map_start(y);
	yamlout_kv_str(y, "username", "TODO-owner");
	yamlout_kv_str(y, "role", "owner");
	yamlout_map_end(y);
	yamlout_seq_end(y);
	yamlout_map_end(y);
	yamlout_str(y, "support");
	yamlout_seq_start(y, false);
	yamlout_map_start(y);
	yamlout_str(y, "channel");
	snprintf(line, sizeof line, "TODO: #%s-data", domain);
	yamlout_str_quoted(y, line);
	yamlout_map_end(y);
	yamlout_seq_end(y);
	yamlout_str(y, "schema");
	yamlout_seq_start(y, false);
	yamlout_map_start(y);
	/* the object is named after the file without its extension */
	size_t stem = strcspn(r->file, ".");
	char *object = xstrndup(r->file, stem ? stem : strlen(r->file));
	yamlout_kv_str(y, "name", object);
	free(object);
	yamlout_kv_str(y, "physicalName", r->file);
	yamlout_kv_str(y, "physicalType", "file");
	yamlout_str(y, "properties");
	yamlout_seq_start(y, false);
	for (size_t i = 0; i < r->n_cols; i++) {
		const struct infer_column *c = &r->cols[i];
		yamlout_map_start(y);
		yamlout_kv_str(y, "name", c->name);
		yamlout_kv_str(y, "logicalType", logical_type_name(c->type));
		yamlout_kv_bool(y, "required", c->required);
		if (c->unique)
			yamlout_kv_bool(y, "unique", true);
		yamlout_kv_str(y, "classification", c->pii ? "pii" : "public");
		size_t shown = 0;
		for (size_t k = 0; k < c->n_examples && !c->pii; k++) /* personal data stays out */
			if (utf8_valid((const unsigned char *)c->examples[k], strlen(c->examples[k]), NULL)) {
				if (!shown++) {
					yamlout_str(y, "examples");
					yamlout_seq_start(y, true);
				}
				yamlout_str(y, c->examples[k]);
			}
		if (shown)
			yamlout_seq_end(y);
		yamlout_map_end(y);
	}
	yamlout_seq_end(y);
	yamlout_map_end(y);
	yamlout_seq_end(y);
	yamlout_map_end(y);
	int rc = yamlout_finish(y, yaml, err);
	yamlout_free(y);
	if (rc)
		mesh_err_prefix(err, "%s: ", r->file);
	return rc;
}
