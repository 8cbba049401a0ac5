/*
 * search.h - product search for a caller: the catalog index's full-text
 * query (index.h; rebuilt first when it is older than the store), hits
 * the caller may discover only, best first, ties broken by readers over the
 * last 30 days.  Shared by `meshctl search`, /mesh/.search and MCP.
 *
 * Not here: the index itself (index.c), who may see what (the caller's
 * callback: visibility.h outside the mount, the daemon's rule inside).
 */
#ifndef SEARCH_H
#define SEARCH_H

#include <stdbool.h>
#include <stddef.h>

#include "index.h"
#include "mesh_err.h"

/* True when the caller may discover the product of `hit` (a product of
 * the mesh as the mount shows it).  The hit says whether a release marks
 * it restricted and its status (visibility_marked needs both; a callback
 * with a catalog may use only the names). */
typedef bool (*search_visible_fn)(void *ctx, const struct index_hit *hit);

/* Words as typed ("churn", "cust*", "tracking number") into an FTS5 query
 * that never trips the query syntax (malloc'ed; "" when no word). */
char *search_fts_query(char *const *words, size_t n);

/* The best `limit` hits of q for the caller (0: all) without ranking
 * every match when that is not needed; *more (may be NULL) says whether
 * more products match than are returned.  *hits as search_run's. */
int search_run_limited(const char *store, const struct index_query *q, size_t limit, search_visible_fn visible,
		       void *ctx, struct index_hit **hits, size_t *n, bool *more, struct mesh_err *err);

/* How a search runs (a zeroed struct: every hit, with snippets off). */
struct search_opts {
	const char *state_dir;   /* this host's state root (state_dir.h; NULL: the default) */
	size_t limit;            /* at most this many hits (0: all) */
	bool snippets;           /* fill each returned hit's snippet */
};

/* The best o->limit hits of q for the caller, ranked as search_run's;
 * details are read for hits in rank order only until enough are visible,
 * snippets only for the hits returned (never for a hit `visible` refused).
 * *more (may be NULL): another visible product matches past the limit. */
int search_run_opts(const char *store, const struct index_query *q, const struct search_opts *o,
		    search_visible_fn visible, void *ctx, struct index_hit **hits, size_t *n, bool *more,
		    struct mesh_err *err);

/* Run q for the caller.  *hits is malloc'ed (index_hits_free). */
int search_run(const char *store, const struct index_query *q, search_visible_fn visible, void *ctx,
	       struct index_hit **hits, size_t *n, struct mesh_err *err);

#endif
