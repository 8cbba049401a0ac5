/*
 * search.c - product search for a caller (contract in include/search.h).
 * Not here: the index (index.c), visibility (the caller's callback).
 */
#include "search.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
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

/* One pass: at most `fetch` products from the index (0: all), filtered
 * and ranked; *complete when the index had no more. */
static int search_pass(const char *store, const char *path, const struct index_query *q, size_t fetch,
		       search_visible_fn visible, void *ctx, struct index_hit **hits_out, size_t *n_out,
		       double *weakest, bool *complete, struct mesh_err *err)
{
	*hits_out = NULL;
	*n_out = 0;
	struct index_hit *hits = NULL;
	size_t n = 0;
	int rc = index_query_run(path, q, fetch, &hits, &n, err);
	if (rc)
		return rc;
	*complete = !fetch || n < fetch;
	*weakest = n ? hits[n - 1].score : 0;
	for (size_t i = 0; i < n; i++)
		if (hits[i].score < *weakest)
			*weakest = hits[i].score;
	struct adoption_count *counts = NULL;
	size_t nc = 0;
	adoption_counts(store, 30, &counts, &nc, NULL);
	struct ranked *r = xcalloc(n + 1, sizeof *r);
	size_t kept = 0;
	for (size_t i = 0; i < n; i++) {
		/* what the mount hides is no hit: restricted products the caller
		 * may not read, and products the index knows but the mount does not */
		if (!visible(ctx, &hits[i]))
			continue;
		r[kept].hit = &hits[i];
		for (size_t k = 0; k < nc; k++)
			if (!strcmp(counts[k].domain, hits[i].domain) && !strcmp(counts[k].product, hits[i].product))
				r[kept].consumers = counts[k].consumers;
		kept++;
	}
	qsort(r, kept, sizeof *r, cmp_ranked);
	struct index_hit *out = xcalloc(kept + 1, sizeof *out);
	for (size_t i = 0; i < kept; i++) {
		out[i] = *r[i].hit;
		memset(r[i].hit, 0, sizeof *r[i].hit);   /* moved */
	}
	free(r);
	index_hits_free(hits, n);
	adoption_counts_free(counts, nc);
	*hits_out = out;
	*n_out = kept;
	return 0;
}

int search_run_limited(const char *store, const struct index_query *q, size_t limit, search_visible_fn visible,
		       void *ctx, struct index_hit **hits_out, size_t *n_out, bool *more, struct mesh_err *err)
{
	*hits_out = NULL;
	*n_out = 0;
	if (more)
		*more = false;
	char path[PATH_MAX];
	int rc = store_check(store, err);
	if (!rc)
		rc = index_path_for_store(store, NULL, path, sizeof path, err);
	if (rc)
		return rc;
	/* the index is this host's cache of the files: brought up to date
	 * first; when it cannot be, it still answers (a warning says so) */
	struct mesh_err e2 = {0};
	if (index_refresh(store, path, NULL, &e2))
		fprintf(stderr, "meshfs search: warning: the index may be behind the store (%s)\n", e2.msg);
	/* With a limit, the index's best few first: each hit costs the index a
	 * snippet, and a word can match 2,000 products of 100,000.  The first
	 * `limit` stand when enough were visible and the last of them scores
	 * strictly better than anything left out (ties are ordered by readers,
	 * which the index does not know); else every match is ranked. */
	size_t fetch = limit ? limit * 4 + 50 : 0;
	struct index_hit *hits = NULL;
	size_t n = 0;
	double weakest = 0;
	bool complete = true;
	rc = search_pass(store, path, q, fetch, visible, ctx, &hits, &n, &weakest, &complete, err);
	if (!rc && !complete && (n < limit || !(hits[limit - 1].score > weakest))) {
		index_hits_free(hits, n);
		rc = search_pass(store, path, q, 0, visible, ctx, &hits, &n, &weakest, &complete, err);
	}
	if (rc)
		return rc;
	if (limit && n > limit) {
		for (size_t i = limit; i < n; i++)
			free(hits[i].domain), free(hits[i].product), free(hits[i].version), free(hits[i].status),
				free(hits[i].purpose), free(hits[i].snippet), free(hits[i].owners);
		n = limit;
		complete = false;
	}
	if (more)
		*more = !complete;
	*hits_out = hits;
	*n_out = n;
	return 0;
}

