/*
 * index.h - the catalog index: STORE/index.db (SQLite), a rebuildable
 * digest of every release's contract for listing and full-text search.
 *
 * Files are the truth: the index can be deleted and rebuilt at any time
 * (`meshctl reindex`), and publish keeps it current.  It records the
 * store generation it was built from, so a reader can tell it is stale.
 * The daemon never uses it (it serves from catalog.h snapshots).
 *
 * Writers: publish (one row set per release) and reindex (a new file
 * renamed over the old one).  The file is mode 0666: any publisher may
 * update it; it holds nothing that is not in the store's readable files.
 */
#ifndef INDEX_H
#define INDEX_H

#include <stddef.h>

#include "contract.h"
#include "mesh_err.h"
#include "store.h"

#define INDEX_FILE "index/index.db"

/* Rebuild STORE/index.db from the store's files.  *n_releases (if not
 * NULL) is the number of releases indexed. */
int index_rebuild(const char *store, size_t *n_releases, struct mesh_err *err);

/* Add one release (after publish).  Creates the index if missing. */
int index_add_release(const char *store, const struct contract *c, const struct manifest *m,
		      struct mesh_err *err);

struct index_hit {
	char *domain, *product, *version;
	char *status;        /* active | deprecated | retired */
	char *purpose;       /* description.purpose, or "" */
	char *snippet;       /* matching text with [ ] around the match */
	int restricted;      /* any release of the product says meshRestricted */
	double score;        /* relevance (higher is better; bm25, names weigh most) */
};

/* A search with filters (NULL: any).  `query` is FTS5 syntax. */
struct index_query {
	const char *query;
	const char *domain, *tag, *classification, *status;
};

/* index_search with filters: domain, a tag the release carries, a
 * classification one of its columns has, its status.  Best first. */
int index_query_run(const char *store, const struct index_query *q, struct index_hit **hits, size_t *n,
		    int *stale, struct mesh_err *err);

/* Full-text search (SQLite FTS5 query syntax; plain words work) over
 * names, descriptions, tags, owners and column names and descriptions.
 * Best matches first, at most one hit per product (its newest matching
 * version).  *stale is set when the index is older than the store. */
int index_search(const char *store, const char *query, struct index_hit **hits, size_t *n,
		 int *stale, struct mesh_err *err);
void index_hits_free(struct index_hit *hits, size_t n);

#endif
