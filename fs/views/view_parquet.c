/*
 * view_parquet.c - the Parquet view: the clear file without its masked
 * columns (contract in include/view_parquet.h).
 *
 * The footer is read and rewritten by fs/formats/parquet.c (Thrift stays
 * there); this file picks the leaves to keep, lays the kept column chunks
 * out one after the other, and copies them in one sequential pass over
 * the input that also hashes all of it.
 *
 * Not here: values (a Parquet view never decodes a page), which columns a
 * reader may see (policy.c), where views are kept (view_cache.c).
 */
#include "view_parquet.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mesh_util.h"
#include "parquet.h"
#include "view_hash.h"

#define CHUNK (1u << 20)

static bool prefix_of(const char *name, const char *path)
{
	size_t nl = strlen(name);
	return !strncmp(path, name, nl) && (path[nl] == '\0' || path[nl] == '.');
}

/* Does plan column `name` cover the leaf at dotted `path`?  Equal, or a
 * group above it, with or without the path's LIST wrappers (the levels
 * "list.element" or "list.item" of the standard layout), as JSON Lines
 * paths skip arrays.  Either form matching leaves the leaf out: a doubt
 * drops more, never less. */
static bool covers(const char *name, const char *path)
{
	if (prefix_of(name, path))
		return true;
	struct strbuf sb = STRBUF_INIT;
	strbuf_puts(&sb, "");
	char *copy = xstrdup(path), *save = NULL;
	const char *prev = NULL;
	for (char *part = strtok_r(copy, ".", &save); part; part = strtok_r(NULL, ".", &save)) {
		if (prev && !strcmp(prev, "list") && (!strcmp(part, "element") || !strcmp(part, "item"))) {
			prev = NULL;           /* "list" was held back: both go */
			continue;
		}
		if (prev)
			strbuf_printf(&sb, "%s%s", sb.len ? "." : "", prev);
		prev = part;
	}
	if (prev)
		strbuf_printf(&sb, "%s%s", sb.len ? "." : "", prev);
	bool hit = prefix_of(name, sb.buf);
	free(copy);
	strbuf_release(&sb);
	return hit;
}

struct range {
	uint64_t src, len, dst;
	size_t slot;               /* rg * n_cols + leaf */
};

static int by_src(const void *a, const void *b)
{
	const struct range *x = a, *y = b;
	return x->src < y->src ? -1 : x->src > y->src;
}

struct sink {
	int fd;
	char *buf;
	size_t used;
	uint64_t total;
	struct mesh_sha256 *sha;
	int error;
};

static void sink_flush(struct sink *s)
{
	if (!s->used)
		return;
	mesh_sha256_update(s->sha, s->buf, s->used);
	if (!s->error && mesh_write_all(s->fd, s->buf, s->used) < 0)
		s->error = -(errno ? errno : EIO);
	s->total += s->used;
	s->used = 0;
}

static void sink_add(struct sink *s, const void *data, size_t len)
{
	const char *d = data;
	while (len) {
		if (s->used == CHUNK)
			sink_flush(s);
		size_t n = CHUNK - s->used < len ? CHUNK - s->used : len;
		memcpy(s->buf + s->used, d, n);
		s->used += n;
		d += n;
		len -= n;
	}
}

/* Which leaves stay: those no plan column covers.  Every plan column must
 * cover at least one leaf and be omit. */
static int pick_leaves(const struct parquet_file *pf, const struct view_plan *plan, bool *keep,
		       struct mesh_err *err)
{
	size_t n = parquet_num_columns(pf);
	for (size_t i = 0; i < n; i++)
		keep[i] = true;
	for (size_t k = 0; k < plan->n; k++) {
		const struct view_column *c = &plan->columns[k];
		if (c->fn != VIEW_FN_OMIT)
			return mesh_errf(err, -ENOTSUP, "a Parquet view can only leave column %s out, not apply %s to it",
					 c->name, view_fn_name(c->fn));
		bool found = false;
		for (size_t i = 0; i < n; i++)
			if (covers(c->name, parquet_column_at(pf, i)->name)) {
				keep[i] = false;
				found = true;
			}
		if (!found)
			return mesh_errf(err, -ENOENT, "the Parquet file has no column \"%s\" to leave out", c->name);
	}
	return 0;
}

/* The kept chunks in file order, each given its place in the view. */
static int lay_out(const struct parquet_file *pf, const bool *keep, struct range **out, size_t *n_out,
		   uint64_t *new_start, struct mesh_err *err)
{
	size_t cols = parquet_num_columns(pf), rgs = parquet_num_row_groups(pf), n = 0;
	struct range *r = xcalloc(rgs * cols + 1, sizeof *r);
	for (size_t g = 0; g < rgs; g++)
		for (size_t i = 0; i < cols; i++)
			if (keep[i]) {
				r[n].slot = g * cols + i;
				parquet_chunk_range(pf, g, i, &r[n].src, &r[n].len);
				n++;
			}
	qsort(r, n, sizeof *r, by_src);
	uint64_t at = 4;
	for (size_t k = 0; k < n; k++) {
		if (k && r[k].src < r[k - 1].src + r[k - 1].len) {
			mesh_errf(err, -EINVAL, "Parquet column chunks overlap at byte %llu", (unsigned long long)r[k].src);
			free(r);
			return -EINVAL;
		}
		r[k].dst = at;
		new_start[r[k].slot] = at;
		at += r[k].len;
	}
	*out = r;
	*n_out = n;
	return 0;
}

int view_parquet_build(int in_fd, int out_fd, const struct view_plan *plan, struct view_build_result *res,
		       struct mesh_err *err)
{
	struct stat before, after;
	if (fstat(in_fd, &before) < 0)
		return mesh_errf(err, -errno, "the release file: %s", strerror(errno));
	struct parquet_file *pf = NULL;
	int rc = parquet_open(in_fd, "the release file", &pf, err);
	if (rc)
		return rc;
	size_t cols = parquet_num_columns(pf), rgs = parquet_num_row_groups(pf);
	bool *keep = xcalloc(cols, sizeof *keep);
	uint64_t *new_start = xcalloc(rgs * cols + 1, sizeof *new_start);
	struct range *ranges = NULL;
	size_t n_ranges = 0;
	struct strbuf footer = STRBUF_INIT;
	strbuf_puts(&footer, "");
	rc = pick_leaves(pf, plan, keep, err);
	if (!rc)
		rc = lay_out(pf, keep, &ranges, &n_ranges, new_start, err);
	if (!rc)
		rc = parquet_project_footer(pf, keep, new_start, &footer, err);

	struct sink s = {.fd = out_fd, .sha = mesh_sha256_new()};
	struct view_reader *in = view_reader_new(in_fd, "the release file");   /* hashed on a second thread */
	s.buf = xmalloc(CHUNK);
	uint64_t off = 0;
	size_t k = 0;
	if (!rc)
		sink_add(&s, "PAR1", 4);
	const char *buf;
	size_t got;
	while (!rc && !s.error) {
		int more = view_reader_next(in, &buf, &got, err);
		if (more <= 0) {
			rc = more;
			break;
		}
		uint64_t end = off + got;
		/* the parts of kept chunks inside [off, end) */
		while (k < n_ranges && ranges[k].src < end) {
			uint64_t a = ranges[k].src > off ? ranges[k].src : off;
			uint64_t b = ranges[k].src + ranges[k].len < end ? ranges[k].src + ranges[k].len : end;
			if (b > a)
				sink_add(&s, buf + (a - off), (size_t)(b - a));
			if (ranges[k].src + ranges[k].len > end)
				break;
			k++;
		}
		off = end;
	}
	if (!rc && !s.error && k < n_ranges)
		rc = mesh_errf(err, -EIO, "the release file ended before its column chunks did");
	if (!rc && (fstat(in_fd, &after) < 0 || after.st_size != before.st_size ||
		    after.st_mtim.tv_sec != before.st_mtim.tv_sec || after.st_mtim.tv_nsec != before.st_mtim.tv_nsec ||
		    (uint64_t)after.st_size != off))
		rc = mesh_errf(err, -EIO, "the release file changed while its view was built");
	if (!rc) {
		uint8_t len[4] = {(uint8_t)footer.len, (uint8_t)(footer.len >> 8), (uint8_t)(footer.len >> 16),
				  (uint8_t)(footer.len >> 24)};
		sink_add(&s, footer.buf, footer.len);
		sink_add(&s, len, 4);
		sink_add(&s, "PAR1", 4);
	}
	sink_flush(&s);
	if (!rc && s.error)
		rc = mesh_errf(err, s.error, "writing the view: %s", strerror(-s.error));
	struct view_build_result out = {.in_bytes = off, .out_bytes = s.total};
	view_reader_finish(in, out.in_sha256);
	mesh_sha256_final(s.sha, out.out_sha256);
	if (res)
		*res = out;
	free(s.buf);
	free(ranges);
	free(new_start);
	free(keep);
	strbuf_release(&footer);
	parquet_close(pf);
	return rc;
}

int view_parquet_check(int in_fd, const struct view_plan *plan, struct mesh_err *err)
{
	struct parquet_file *pf = NULL;
	int rc = parquet_open(in_fd, "the release file", &pf, err);
	if (rc)
		return rc;
	size_t n = parquet_num_columns(pf);
	bool *keep = xcalloc(n, sizeof *keep);
	rc = pick_leaves(pf, plan, keep, err);
	bool any = false;
	for (size_t i = 0; i < n; i++)
		any |= keep[i];
	if (!rc && !any)
		rc = mesh_errf(err, -ENOTSUP, "every column of the Parquet file is masked: its view would have none");
	free(keep);
	parquet_close(pf);
	return rc;
}
