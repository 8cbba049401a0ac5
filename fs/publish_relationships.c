/*
 * publish_relationships.c - ODCS relationships (foreign keys) at publish
 * (declared in include/publish_rules.h).
 *
 * Every end of every relationship must name a property that exists: in
 * this contract, or in the contract of the published product it names
 * (as the caller may see the mesh: a product hidden from them reads as
 * absent).  When the target is in the same release and both files are
 * CSV or Parquet, every non-null source key must occur among the target's
 * keys (referential integrity), with the target's keys held in memory up
 * to PUBLISH_FK_MAX_BYTES; beyond that, or for other formats and for
 * targets in other products, integrity is listed as not checked.
 */
#include "publish_rules.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "catalog.h"
#include "csv.h"
#include "mesh_util.h"
#include "parquet.h"
#include "scope.h"

#define PUBLISH_FK_MAX_BYTES (256u << 20)   /* target keys held in memory */
#define FK_EXAMPLES 5

/* ---- where the ends are ---- */

static const struct contract_object *find_object(const struct contract *c, const char *name)
{
	for (size_t i = 0; i < c->n_objects; i++)
		if (!strcmp(c->objects[i].name, name) || (c->objects[i].id && !strcmp(c->objects[i].id, name)))
			return &c->objects[i];
	return NULL;
}

static int find_column(const struct contract_object *o, const char *name)
{
	for (size_t i = 0; i < o->n_props; i++)
		if (!strcmp(o->props[i].name, name) || (o->props[i].id && !strcmp(o->props[i].id, name)))
			return (int)i;
	return -1;
}

/* The contract of a published product ("domain/product[/version]"), as
 * `caller` may see it.  NULL with a message in why. */
static struct contract *load_product(const char *store, struct catalog **cat, struct scope **scope,
				     const struct identity *caller, const char *product, char *why, size_t size)
{
	struct mesh_err err = {0};
	if (!*cat && catalog_scan(store, NULL, cat, &err)) {
		snprintf(why, size, "cannot read the mesh: %.900s", err.msg);
		return NULL;
	}
	if (!*scope && scope_open(store, caller, scope, &err)) {
		snprintf(why, size, "cannot read the mesh: %.900s", err.msg);
		return NULL;
	}
	char path[PATH_MAX];
	bool versioned = strchr(strchr(product, '/') + 1, '/') != NULL;
	snprintf(path, sizeof path, "%s%s/contract.yaml", product, versioned ? "" : "/latest");
	const struct cat_node *n = catalog_resolve(*cat, path);
	if (!n || !n->backing || !scope_may_discover(*scope, n)) {
		snprintf(why, size, "no published release %s%s in the mesh", product, versioned ? "" : " (latest)");
		return NULL;
	}
	char file[PATH_MAX];
	snprintf(file, sizeof file, "%s/%s", store, n->backing);
	struct contract *c = NULL;
	if (contract_load(file, &c, &err)) {
		snprintf(why, size, "%s's contract cannot be read: %.800s", product, err.msg);
		return NULL;
	}
	return c;
}

/* ---- reading key columns of a file ---- */

struct keys_reader {
	struct csv_reader *csv;
	struct parquet_file *pf;
	struct parquet_cursor **cur;
	int *col;                      /* file column of each key part */
	size_t n;
	struct strbuf key;
	int64_t rows_left;
	uint64_t row;
};

static void keys_close(struct keys_reader *k)
{
	csv_reader_free(k->csv);
	for (size_t i = 0; k->cur && i < k->n; i++)
		parquet_cursor_free(k->cur[i]);
	free(k->cur);
	parquet_close(k->pf);
	free(k->col);
	strbuf_release(&k->key);
	memset(k, 0, sizeof *k);
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && !strcasecmp(s + n - m, suffix);
}

/* Open `file` for reading the named columns.  0, -ENOTSUP (format), or
 * -errno with why. */
static int keys_open(struct keys_reader *k, int fd, const char *file, const char *const *names, size_t n,
		     char *why, size_t size)
{
	memset(k, 0, sizeof *k);
	k->n = n;
	k->col = xcalloc(n + 1, sizeof *k->col);
	struct mesh_err err = {0};
	if (has_suffix(file, ".csv")) {
		k->csv = csv_reader_fd(fd, file, 0);
		struct csv_record rec;
		if (csv_next(k->csv, &rec, &err) != 1) {
			snprintf(why, size, "%s: no header", file);
			return -EINVAL;
		}
		for (size_t i = 0; i < n; i++) {
			k->col[i] = -1;
			for (size_t f = 0; f < rec.n; f++)
				if (strlen(names[i]) == rec.fields[f].len && !memcmp(names[i], rec.fields[f].ptr, rec.fields[f].len))
					k->col[i] = (int)f;
			if (k->col[i] < 0) {
				snprintf(why, size, "%s has no column %s", file, names[i]);
				return -EINVAL;
			}
		}
		return 0;
	}
	if (!has_suffix(file, ".parquet"))
		return -ENOTSUP;
	if (parquet_open(fd, file, &k->pf, &err)) {
		snprintf(why, size, "%s", err.msg);
		return -EINVAL;
	}
	k->cur = xcalloc(n + 1, sizeof *k->cur);
	k->rows_left = parquet_num_rows(k->pf);
	for (size_t i = 0; i < n; i++) {
		k->col[i] = -1;
		for (size_t f = 0; f < parquet_num_columns(k->pf); f++)
			if (!strcmp(parquet_column_at(k->pf, f)->name, names[i]))
				k->col[i] = (int)f;
		if (k->col[i] < 0) {
			snprintf(why, size, "%s has no column %s", file, names[i]);
			return -EINVAL;
		}
		if (parquet_cursor_open(k->pf, (size_t)k->col[i], &k->cur[i], &err)) {
			snprintf(why, size, "%s", err.msg);
			return -ENOTSUP;
		}
	}
	return 0;
}

/* The next row's key (parts joined by \x1f): 1, 0 at the end, <0 on an
 * error (why).  *null when a part is empty or null (not a reference). */
static int keys_next(struct keys_reader *k, bool *null, char *why, size_t size)
{
	struct mesh_err err = {0};
	k->key.len = 0;
	strbuf_puts(&k->key, "");
	*null = false;
	k->row++;
	if (k->csv) {
		struct csv_record rec;
		int rc = csv_next(k->csv, &rec, &err);
		if (rc <= 0) {
			if (rc < 0)
				snprintf(why, size, "%s", err.msg);
			return rc;
		}
		k->row = rec.row;
		for (size_t i = 0; i < k->n; i++) {
			if (k->col[i] >= (int)rec.n || rec.fields[k->col[i]].len == 0) {
				*null = true;
				continue;
			}
			if (i)
				strbuf_add(&k->key, "\x1f", 1);
			strbuf_add(&k->key, rec.fields[k->col[i]].ptr, rec.fields[k->col[i]].len);
		}
		return 1;
	}
	if (k->rows_left-- <= 0)
		return 0;
	for (size_t i = 0; i < k->n; i++) {
		const char *v;
		size_t n;
		bool is_null;
		int rc = parquet_cursor_next(k->cur[i], &v, &n, &is_null, &err);
		if (rc <= 0) {
			snprintf(why, size, "%s", rc < 0 ? err.msg : "a column ends early");
			return -EINVAL;
		}
		if (is_null || n == 0) {
			*null = true;
			continue;
		}
		if (i)
			strbuf_add(&k->key, "\x1f", 1);
		strbuf_add(&k->key, v, n);
	}
	return 1;
}

/* ---- a set of keys (open addressing, FNV-1a) ---- */

struct key_set {
	char **slots;
	size_t cap, n, bytes;
};

static uint64_t fnv(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
	return h;
}

static char **slot_of(struct key_set *s, const char *key, size_t n)
{
	size_t i = fnv(key, n) & (s->cap - 1);
	while (s->slots[i] && (strlen(s->slots[i]) != n || memcmp(s->slots[i], key, n)))
		i = (i + 1) & (s->cap - 1);
	return &s->slots[i];
}

static void set_add(struct key_set *s, const char *key, size_t n)
{
	if ((s->n + 1) * 2 > s->cap) {
		struct key_set bigger = {xcalloc(s->cap ? s->cap * 2 : 1024, sizeof (char *)),
					 s->cap ? s->cap * 2 : 1024, 0, 0};
		for (size_t i = 0; i < s->cap; i++)
			if (s->slots[i])
				*slot_of(&bigger, s->slots[i], strlen(s->slots[i])) = s->slots[i];
		free(s->slots);
		s->slots = bigger.slots;
		s->cap = bigger.cap;
	}
	char **slot = slot_of(s, key, n);
	if (*slot)
		return;
	*slot = xstrndup(key, n);
	s->n++;
	s->bytes += n + 1 + 2 * sizeof (char *);
}

static bool set_has(struct key_set *s, const char *key, size_t n)
{
	return s->cap && *slot_of(s, key, n) != NULL;
}

static void set_free(struct key_set *s)
{
	for (size_t i = 0; i < s->cap; i++)
		free(s->slots[i]);
	free(s->slots);
}

/* The data file of a schema object in the release: physicalName, else
 * the name with .csv or .parquet.  fd or -1. */
static int object_file(int dirfd, const struct contract_object *o, char *name, size_t size)
{
	const char *candidates[3] = {o->physical_name, NULL, NULL};
	char csv[PATH_MAX], pq[PATH_MAX];
	snprintf(csv, sizeof csv, "%s.csv", o->name);
	snprintf(pq, sizeof pq, "%s.parquet", o->name);
	if (!o->physical_name)
		candidates[1] = csv, candidates[2] = pq;
	for (int i = 0; i < 3; i++) {
		if (!candidates[i])
			continue;
		int fd = mesh_open_regular_at(dirfd, candidates[i], O_RDONLY, 0, NULL);
		if (fd >= 0) {
			snprintf(name, size, "%s", candidates[i]);
			return fd;
		}
	}
	return -1;
}

/* Referential integrity of rel (all targets in this release).  Appends to
 * out; returns false when it failed. */
static bool check_integrity(struct publish_ctx *pc, const struct contract_relationship *rel, struct strbuf *out)
{
	const struct contract *c = pc->contract;
	const struct contract_object *src = find_object(c, rel->from[0].object);
	const struct contract_object *dst = find_object(c, rel->to[0].object);
	char src_file[PATH_MAX], dst_file[PATH_MAX], why[MESH_ERR_MAX] = "";
	int sfd = object_file(pc->dirfd, src, src_file, sizeof src_file);
	int dfd = object_file(pc->dirfd, dst, dst_file, sizeof dst_file);
	const char **from = xcalloc(rel->n + 1, sizeof *from), **to = xcalloc(rel->n + 1, sizeof *to);
	for (size_t i = 0; i < rel->n; i++) {
		from[i] = src->props[find_column(src, rel->from[i].column)].name;
		to[i] = dst->props[find_column(dst, rel->to[i].column)].name;
	}
	bool ok = true;
	struct keys_reader kr;
	struct key_set set = {0};
	uint64_t checked = 0, missing = 0;
	struct strbuf examples = STRBUF_INIT;
	if (sfd < 0 || dfd < 0) {
		strbuf_printf(out, "%s: integrity not checked (no data file of %s in this release)\n", rel->text,
			      sfd < 0 ? src->name : dst->name);
		goto done;
	}
	int rc = keys_open(&kr, dfd, dst_file, to, rel->n, why, sizeof why);
	bool null;
	int got = 0;
	while (!rc && (got = keys_next(&kr, &null, why, sizeof why)) == 1) {
		if (!null)
			set_add(&set, kr.key.buf, kr.key.len);
		if (set.bytes > PUBLISH_FK_MAX_BYTES) {
			snprintf(why, sizeof why, "%.300s holds more than %u MiB of keys", dst_file, PUBLISH_FK_MAX_BYTES >> 20);
			rc = -EFBIG;
		}
	}
	if (!rc && got < 0)
		rc = got;
	keys_close(&kr);
	if (!rc)
		rc = keys_open(&kr, sfd, src_file, from, rel->n, why, sizeof why);
	while (!rc && (got = keys_next(&kr, &null, why, sizeof why)) == 1) {
		if (null)
			continue;
		checked++;
		if (set_has(&set, kr.key.buf, kr.key.len))
			continue;
		if (missing++ < FK_EXAMPLES) {
			char *parts = xstrdup(kr.key.buf);
			for (char *p = parts; *p; p++)
				if (*p == '\x1f')
					*p = ',';
			char *shown = mesh_escape_text(parts);
			free(parts);
			strbuf_printf(&examples, "\n  %s row %llu: %s not found in %s", src_file,
				      (unsigned long long)kr.row, shown, dst_file);
			free(shown);
		}
	}
	if (!rc && got < 0)
		rc = got;
	keys_close(&kr);
	if (rc == -ENOTSUP)
		strbuf_printf(out, "%s: integrity not checked (%s)\n", rel->text,
			      *why ? why : "CSV and Parquet files only");
	else if (rc < 0)
		strbuf_printf(out, "%s: integrity not checked (%s)\n", rel->text, why);
	else if (missing) {
		ok = false;
		strbuf_printf(out, "%s: %llu of %llu references have no target%s\n", rel->text,
			      (unsigned long long)missing, (unsigned long long)checked, examples.buf ? examples.buf : "");
	} else
		strbuf_printf(out, "%s: %llu references, all found\n", rel->text, (unsigned long long)checked);
done:
	if (sfd >= 0)
		close(sfd);
	if (dfd >= 0)
		close(dfd);
	set_free(&set);
	strbuf_release(&examples);
	free(from);
	free(to);
	return ok;
}

void publish_check_relationships(struct publish_ctx *pc, const struct identity *caller, struct publish_report *r)
{
	const struct contract *c = pc->contract;
	if (!c->n_relationships)
		return;
	struct strbuf out = STRBUF_INIT;
	bool ok = true;
	struct catalog *cat = NULL;
	struct scope *scope = NULL;
	char where[PATH_MAX + 32];
	for (size_t i = 0; i < c->n_relationships; i++) {
		const struct contract_relationship *rel = &c->relationships[i];
		contract_where(c, rel->pos, where, sizeof where);
		bool refs_ok = rel->n > 0, local = true;
		for (size_t k = 0; k < rel->n && refs_ok; k++) {
			const struct contract_ref *ends[2] = {&rel->from[k], &rel->to[k]};
			for (int e = 0; e < 2 && refs_ok; e++) {
				const struct contract_ref *ref = ends[e];
				char why[MESH_ERR_MAX] = "";
				struct contract *other = NULL;
				const struct contract *in = c;
				if (ref->product) {
					local = false;
					other = load_product(pc->store, &cat, &scope, caller, ref->product, why, sizeof why);
					in = other;
				}
				const struct contract_object *o = in ? find_object(in, ref->object) : NULL;
				if (in && !o)
					snprintf(why, sizeof why, "%s has no schema object %s", ref->product ? ref->product
						 : "the contract", ref->object);
				else if (o && find_column(o, ref->column) < 0)
					snprintf(why, sizeof why, "schema object %s%s%s has no property %s", ref->object,
						 ref->product ? " of " : "", ref->product ? ref->product : "", ref->column);
				if (*why) {
					strbuf_printf(&out, "%s: relationship %s: %s %s\n", where, rel->text,
						      e ? "to" : "from", why);
					refs_ok = false;
				}
				contract_free(other);
			}
		}
		if (!refs_ok) {
			ok = false;
			continue;
		}
		if (!local) {
			strbuf_printf(&out, "%s: references found; integrity not checked (the target is another "
				      "product's release)\n", rel->text);
			continue;
		}
		bool same = true;   /* one target object for every part of the key */
		for (size_t k = 1; k < rel->n; k++)
			same &= !strcmp(rel->to[k].object, rel->to[0].object) &&
				!strcmp(rel->from[k].object, rel->from[0].object);
		if (!same) {
			strbuf_printf(&out, "%s: integrity not checked (a key across several objects)\n", rel->text);
			continue;
		}
		ok &= check_integrity(pc, rel, &out);
	}
	catalog_unref(cat);
	scope_close(scope);
	if (out.len)
		out.buf[--out.len] = '\0';
	publish_report_add(r, "relationships", ok, false, "%s", out.buf ? out.buf : "");
	strbuf_release(&out);
}
