/*
 * index.h - the catalog index: a per-host cache of every release's contract
 * for listing and full-text search, in SQLite (WAL) on local disk:
 * STATE/<store-id>/index.db (state_dir.h).  Never on the store: SQLite needs
 * locks and shared memory that shared filesystems do not give.
 *
 * Files are the truth: the index can be deleted and rebuilt at any time
 * (`meshctl reindex`), and publish does not write it.  It remembers the
 * store generation it was refreshed at; when the generation moves, a
 * refresh looks only at what changed: the products the store's change log
 * (changelog.h) names since the index's position in it are listed and
 * their new releases read (one manifest and one contract each).  When the
 * log cannot say (no position yet, a host new to the index, entries pruned
 * past the position, a store without a log) and at least every
 * INDEX_FULL_WALK_SECONDS, every product directory is stat'ed instead and
 * only those whose directory or lifecycle records changed are listed.
 *
 * Shared filesystems cache directory attributes for a while (FUSE
 * attribute timeout, NFS actimeo): a refresh within INDEX_SETTLE_SECONDS
 * of a generation change is repeated by the next refresh, and a product
 * directory changed within that time is listed again (the position in the
 * change log moves only with a settled refresh, so products logged since
 * are listed again), so a release renamed into place is never missed for
 * good.
 *
 * Thread-safety: none; every call opens its own connection.  Several
 * processes may refresh at once (SQLite serializes them).
 */
#ifndef INDEX_H
#define INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "contract.h"
#include "mesh_err.h"
#include "store.h"

#define INDEX_DB_NAME "index.db"
#define INDEX_SETTLE_SECONDS 3
/* The change log (changelog.h) is trusted this long after a refresh that
 * stat'ed every product; then the next refresh does that again. */
#define INDEX_FULL_WALK_SECONDS 3600

struct index_refresh_stats {
	size_t releases;          /* in the index after the refresh */
	size_t products_checked;  /* product directories stat'ed */
	size_t products_listed;   /* ... and listed because they changed */
	size_t added, removed, changed;   /* releases */
	size_t unreadable;        /* releases skipped: manifest or contract unreadable */
	int up_to_date;           /* nothing to do: the generation had not moved */
	int incremental;          /* only the products the change log named were looked at */
};

/* Build `db_path` from scratch from the store's files: under an exclusive
 * lock on DB.lock (one build at a time), into DB.tmp, synced, then renamed
 * over DB, so readers see the old index or the new one and a crash leaves
 * the old one or none.  Releases are read by threads (index_loader.h).
 * *stats (if not NULL) says what was indexed. */
int index_rebuild(const char *store, const char *db_path, struct index_refresh_stats *stats,
		  struct mesh_err *err);

/* Bring `db_path` up to the store: nothing when the generation has not
 * moved (and settled), checked read-only (no write, no fsync), else the
 * incremental refresh described above.  An
 * index that is missing or cannot be read (damaged, another layout) is
 * rebuilt (a missing one that another process is building is waited for,
 * then refreshed).  -EACCES/-EROFS when the index is behind and this process may
 * not write it; -EIO for SQLite errors; `err` says which file. */
int index_refresh(const char *store, const char *db_path, struct index_refresh_stats *stats,
		  struct mesh_err *err);

/* index_refresh() for an index that exists, never rebuilt here (the
 * daemon falls back to walking the store instead of waiting for a
 * rebuild): -ENOENT when there is none, -EPROTO when it is damaged or of
 * another layout, else as index_refresh(). */
int index_refresh_existing(const char *store, const char *db_path, struct index_refresh_stats *stats,
			   struct mesh_err *err);

struct index_hit {
	char *domain, *product, *version;
	char *status;        /* active | deprecated */
	char *purpose;       /* description.purpose, or "" */
	char *snippet;       /* matching text with [ ] around the match */
	int restricted;      /* any release of the product says meshRestricted */
	char *owners;        /* owners' subjects, space-separated (for callers' filters) */
	double score;        /* relevance (higher is better; bm25, names weigh most) */
	int64_t release_id;  /* the release's row in the index (index_hits_detail) */
	bool detailed;       /* status .. owners filled from the index (index_hits_detail) */
};

/* A search with filters (NULL: any).  `query` is FTS5 syntax. */
struct index_query {
	const char *query;
	const char *domain, *tag, *classification, *status;
};

/* index_search with filters: the domain, a tag the release carries, a
 * classification one of its columns has, its status.  Best first. */
int index_query_run(const char *db_path, const struct index_query *q, size_t limit, struct index_hit **hits,
		    size_t *n, struct mesh_err *err);

/* The search in two steps, so that a caller ranks every match and reads
 * the rest of a hit only for the few it shows:
 *
 * index_query_candidates: every product matching q (filters applied), one
 * hit per product (its newest matching version) with domain, product,
 * version, score and release_id; status, purpose, owners and snippet are
 * "" and detailed false.  Best score first.  O(matches) time and memory,
 * no snippet and no per-hit query.  *hits is malloc'ed (index_hits_free).
 *
 * index_hits_detail: fills status, purpose, restricted and owners of
 * hits[0..n) and sets detailed, each looked up by release_id and only if
 * that row still is the hit's domain/product/version (the index may have
 * been refreshed or rebuilt since: such a hit stays undetailed, and the
 * caller drops it).  With `query` (the FTS5 query of the candidates), the
 * snippet too, from the hit's own release only.  One connection and one
 * read transaction for the batch. */
int index_query_candidates(const char *db_path, const struct index_query *q, struct index_hit **hits, size_t *n,
			   struct mesh_err *err);
int index_hits_detail(const char *db_path, const char *query, struct index_hit *hits, size_t n,
		      struct mesh_err *err);

/* One product as the index lists it: its releases (retired ones are not
 * in the index), in no particular order. */
struct index_version {
	const char *version;
	const char *status;        /* active | deprecated */
	const char *published_at;  /* RFC 3339 UTC, as the manifest says */
	bool restricted;           /* this release's contract or manifest says meshRestricted */
};
struct index_product {
	const char *domain, *product;
	const struct index_version *versions;
	size_t n_versions;
	bool restricted;           /* any release is restricted */
	size_t unreadable;         /* releases skipped: manifest or contract unreadable */
};

/* Call `fn` for each product in the index (as it is: call index_refresh()
 * first), in (domain, product) strcmp order; `domain` / `product` (NULL:
 * any) narrow it.  Memory is one product's at a time: the pointers are
 * valid during the call only.  A non-zero return of `fn` stops the walk
 * and is returned.  -ENOENT when there is no index; -EIO for SQLite errors. */
typedef int (*index_product_fn)(void *ctx, const struct index_product *p);
int index_products(const char *db_path, const char *domain, const char *product, index_product_fn fn, void *ctx,
		   struct mesh_err *err);

/* This host's index of `store`: STATE/<store-id>/index.db (the state root
 * `state_option`, else $MESHFS_STATE_DIR, else /var/lib/meshfs). */
int index_path_for_store(const char *store, const char *state_option, char *out, size_t size,
			 struct mesh_err *err);

/* Full-text search (SQLite FTS5 query syntax; plain words work) over
 * names, descriptions, tags, owners and column names and descriptions.
 * Best matches first, at most one hit per product (its newest matching
 * version), at most `limit` hits (0: all).  Reads the index as it is:
 * call index_refresh() first.  *hits is malloc'ed (index_hits_free). */
int index_search(const char *db_path, const char *query, size_t limit, struct index_hit **hits,
		 size_t *n, struct mesh_err *err);
void index_hits_free(struct index_hit *hits, size_t n);

#endif
