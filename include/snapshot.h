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
 * Thread-safety: none needed (no state); one call at a time per store is
 * what the daemon does.
 */
#ifndef SNAPSHOT_H
#define SNAPSHOT_H

#include <stdbool.h>

#include "catalog.h"
#include "mesh_err.h"

struct snapshot_result {
	bool from_index;          /* else the store was walked */
	bool settled;             /* from the index, and the index had nothing left to read:
				     false asks for another build after INDEX_SETTLE_SECONDS */
	char reason[8192];        /* the store was walked: why */
	char index_path[4096];
	size_t products;          /* from the index */
};

/* A new snapshot of `store` (refcount 1).  `state_dir` is this host's
 * state root (NULL: the default, state_dir.h); `previous` (may be NULL)
 * lends a walk the releases it knows.  Errors only when the store cannot
 * be read at all. */
int snapshot_build(const char *store, const char *state_dir, const struct catalog *previous,
		   struct catalog **out, struct snapshot_result *res, struct mesh_err *err);

#endif
