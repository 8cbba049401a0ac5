/*
 * search.c - product search for a caller (contract in include/search.h):
 * every match ranked from the index's rows and readers' counts, details
 * and snippets read only for the hits shown.
 * Not here: the index (index.c), visibility (the caller's callback).
 */
#include "search.h"

#include <errno.h>
#include <math.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adoption.h"
#include "mesh_util.h"
#include "store.h"

struct ranked {
	struct index_hit *hit;
	uint64_t consumers;
};

static int cmp_ranked(const void *a, const void *b)
{
	const struct ranked *x = a, *y = b;
	double tol = 1e-9 * fmax(fabs(x->hit->score), fabs(y->hit->score));
	if (fabs(x->hit->score - y->hit->score) > tol)
		return x->hit->score > y->hit->score ? -1 : 1;
	if (x->consumers != y->consumers)
		return x->consumers > y->consumers ? -1 : 1;
	int c = strcmp(x->hit->domain, y->hit->domain);
	return c ? c : strcmp(x->hit->product, y->hit->product);
}

/* Words into an FTS5 query: each word quoted (plain words never trip the
 * query syntax); a trailing * stays a prefix search. */
char *search_fts_query(char *const *words, size_t n)
{
	struct strbuf q = STRBUF_INIT;
	for (size_t i = 0; i < n; i++) {
		char *save = NULL, *copy = xstrdup(words[i]);
		for (char *w = strtok_r(copy, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
			size_t len = strlen(w);
			bool prefix = len > 1 && w[len - 1] == '*';
			if (prefix)
				w[--len] = '\0';
			if (q.len)
				strbuf_puts(&q, " ");
			strbuf_puts(&q, "\"");
			for (const char *p = w; *p; p++)
				strbuf_puts(&q, *p == '"' ? "\"\"" : (char[2]){*p, 0});
			strbuf_puts(&q, prefix ? "\"*" : "\"");
		}
		free(copy);
	}
	return strbuf_detach(&q, NULL);
}

int search_run(const char *store, const struct index_query *q, search_visible_fn visible, void *ctx,
	       struct index_hit **hits_out, size_t *n_out, struct mesh_err *err)
{
	return search_run_limited(store, q, 0, visible, ctx, hits_out, n_out, NULL, err);
}

int search_run_limited(const char *store, const struct index_query *q, size_t limit, search_visible_fn visible,
		       void *ctx, struct index_hit **hits_out, size_t *n_out, bool *more, struct mesh_err *err)
{
	struct search_opts o = {.limit = limit, .snippets = true};
	return search_run_opts(store, q, &o, visible, ctx, hits_out, n_out, more, err);
}

static int cmp_count(const void *a, const void *b)
{
	const struct adoption_count *x = a, *y = b;
	int c = strcmp(x->domain, y->domain);
	return c ? c : strcmp(x->product, y->product);
}

static void hit_move_free(struct index_hit *h)
{
	free(h->domain), free(h->product), free(h->version), free(h->status), free(h->purpose), free(h->snippet),
		free(h->owners);
	memset(h, 0, sizeof *h);
}

int search_run_opts(const char *store, const struct index_query *q, const struct search_opts *o,
		    search_visible_fn visible, void *ctx, struct index_hit **hits_out, size_t *n_out, bool *more,
		    struct mesh_err *err)
{
	*hits_out = NULL;
	*n_out = 0;
	if (more)
		*more = false;
	size_t limit = o ? o->limit : 0;
	const char *state_dir = o ? o->state_dir : NULL;
	char path[PATH_MAX];
	int rc = store_check(store, err);
	if (!rc)
		rc = index_path_for_store(store, state_dir, path, sizeof path, err);
	if (rc)
		return rc;
	/* the index is this host's cache of the files: brought up to date
	 * first; when it cannot be, it still answers (a warning says so) */
	struct mesh_err e2 = {0};
	if (index_refresh(store, path, NULL, &e2))
		fprintf(stderr, "meshfs search: warning: the index may be behind the store (%s)\n", e2.msg);
	/* Every match ranked on what the index gives without a query per hit
	 * (score, names) and the readers of each product; then, best first,
	 * the rest of a hit is read only until `limit` of them (and one more,
	 * for *more) are visible to the caller; snippets only for those shown.
	 * The order is the full ranking's: a word matching 2,000 products of
	 * 100,000 costs 2,000 rows, not 2,000 snippets. */
	struct index_hit *cand = NULL;
	size_t nc = 0;
	rc = index_query_candidates(path, q, &cand, &nc, err);
	if (rc)
		return rc;
	struct adoption_count *counts = NULL;
	size_t ncounts = 0;
	adoption_counts_in(store, state_dir, 30, &counts, &ncounts, NULL);
	if (ncounts)
		qsort(counts, ncounts, sizeof *counts, cmp_count);
	struct ranked *r = xcalloc(nc + 1, sizeof *r);
	for (size_t i = 0; i < nc; i++) {
		r[i].hit = &cand[i];
		struct adoption_count key = {.domain = cand[i].domain, .product = cand[i].product};
		const struct adoption_count *c = ncounts ? bsearch(&key, counts, ncounts, sizeof *counts, cmp_count) : NULL;
		r[i].consumers = c ? c->consumers : 0;
	}
	adoption_counts_free(counts, ncounts);
	qsort(r, nc, sizeof *r, cmp_ranked);
	/* best first, in batches: what the mount hides is no hit (restricted
	 * products the caller may not read, products the index knows but the
	 * mount does not), and a hit the index no longer has as ranked is none */
	size_t want = limit ? limit + 1 : nc;
	struct index_hit *out = xcalloc(want + 1, sizeof *out);
	size_t kept = 0, next = 0;
	struct index_hit *batch = xcalloc(nc + 1, sizeof *batch);
	while (!rc && kept < want && next < nc) {
		size_t need = want - kept, size = limit ? need + need / 2 + 8 : nc;
		if (size > nc - next)
			size = nc - next;
		for (size_t i = 0; i < size; i++)
			batch[i] = *r[next + i].hit;
		rc = index_hits_detail(path, NULL, batch, size, err);
		for (size_t i = 0; i < size; i++) {
			memset(r[next + i].hit, 0, sizeof *r[next + i].hit);     /* moved into batch */
			if (!rc && kept < want && batch[i].detailed && visible(ctx, &batch[i]))
				out[kept++] = batch[i];
			else
				hit_move_free(&batch[i]);
		}
		next += size;
	}
	free(batch);
	free(r);
	index_hits_free(cand, nc);       /* what was not moved */
	if (!rc && limit && kept > limit) {
		hit_move_free(&out[limit]);
		kept = limit;
		if (more)
			*more = true;
	}
	if (!rc && (!o || o->snippets) && kept) {
		/* the snippets of the hits shown, read again with their rows: a
		 * hit whose row changed meanwhile is looked at again */
		for (size_t i = 0; i < kept; i++)
			out[i].detailed = false;
		rc = index_hits_detail(path, q->query, out, kept, err);
		size_t k = 0;
		for (size_t i = 0; i < kept; i++) {
			if (!rc && out[i].detailed && visible(ctx, &out[i]))
				out[k++] = out[i];
			else
				hit_move_free(&out[i]);
		}
		kept = k;
	}
	if (rc) {
		index_hits_free(out, kept);
		return rc;
	}
	*hits_out = out;
	*n_out = kept;
	return 0;
}
