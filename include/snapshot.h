/*
 * snapshot.h - where the daemon's snapshot of a store comes from: this
 * host's index when it can be trusted, else a walk of the store.
 *
 * From the index (index.h): the index is brought up to the store first
 * (index_refresh_existing: an incremental refresh that reads the products
 * the store's change log names, never a rebuild), then one pass over its
 * products builds a snapshot of domains and lazy products
 * (catalog_builder); versions and files are read from the store per
 * product on demand (snapshot_cache.h).  The store is not walked.
 *
 * A walk (catalog_scan: every product directory and manifest), correct
 * and slower, when the index cannot vouch for the store: no index yet,
 * one that cannot be read or refreshed (damaged, another layout, an
 * unwritable state directory), or a failed read; `reason` says which.
 * Access decisions are not made here: a snapshot from the index carries
 * the same restricted flags a walk gives (domain.yaml and the releases'
 * contracts; a domain.yaml that cannot be read restricts its products).
 *
 * Thread-safety: no state but the caller's snapshot_memory: one build at a
 * time per memory.
 */
#ifndef SNAPSHOT_H
#define SNAPSHOT_H

#include <stdbool.h>

#include "catalog.h"
#include "mesh_err.h"

/* What one build leaves for the next (the caller keeps it, zeroed at
 * first; snapshot_memory_clear frees it): the position in the store's
 * change log (changelog.h) up to which the snapshot is known to be
 * current.  A build after a snapshot from the index reads the products
 * the log names since then from the index and keeps every other product
 * as it was; a full read of the index when the log cannot say (no
 * position, entries pruned), when the refresh had to stat every product
 * (it may have found changes nobody logged), or when more than
 * SNAPSHOT_INCREMENTAL_MAX products changed. */
struct snapshot_memory {
	char *cursor;
};
void snapshot_memory_clear(struct snapshot_memory *m);
#define SNAPSHOT_INCREMENTAL_MAX 1000

struct snapshot_result {
	bool from_index;          /* else the store was walked */
	bool incremental;         /* from the index: only the changed products were read */
	bool settled;             /* from the index, and the index had nothing left to read:
				     false asks for another build after INDEX_SETTLE_SECONDS */
	char reason[8192];        /* the store was walked: why */
	char index_path[4096];
	size_t products;          /* read from the index */
};

/* A new snapshot of `store` (refcount 1).  `state_dir` is this host's
 * state root (NULL: the default, state_dir.h); `previous` (may be NULL)
 * lends a walk the releases it knows.  Errors only when the store cannot
 * be read at all. */
int snapshot_build(const char *store, const char *state_dir, const struct catalog *previous,
		   struct snapshot_memory *mem, struct catalog **out, struct snapshot_result *res,
		   struct mesh_err *err);

#endif
