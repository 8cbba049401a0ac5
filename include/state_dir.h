/*
 * state_dir.h - where a host keeps what it derives from a store: on local
 * disk, never on the (possibly shared) store.
 *
 *   STATE_ROOT/<store-id>/index.db          this host's search index (index.h)
 *   STATE_ROOT/<store-id>/usage/<host>/     this host's usage journal, usage.db, state
 *
 * STATE_ROOT is an option (meshctl --state-dir, meshfs -o state_dir=), else
 * $MESHFS_STATE_DIR, else /var/lib/meshfs.  The store id is the "id" line of
 * STORE/.meshfs-store (a random UUID written by store_init); a store made
 * before ids existed is named by a hash of its real path.
 *
 * Not here: what goes into these files (index.h, usage.h).
 * Thread-safety: no state; safe from any thread.
 */
#ifndef STATE_DIR_H
#define STATE_DIR_H

#include <stdbool.h>
#include <stddef.h>

#include "mesh_err.h"

#define STATE_ROOT_DEFAULT "/var/lib/meshfs"

/* The state root: `option` when set, else $MESHFS_STATE_DIR, else the default. */
const char *state_root(const char *option);

/* The store's id into out (at most 64 bytes with the NUL).  -errno when
 * the store's marker cannot be read. */
int state_store_id(const char *store, char *out, size_t size);

/* STATE_ROOT/<store-id> into out; with `create`, the directories are made
 * (mode 0755) if missing.  -errno with `err` naming the directory. */
int state_dir_for_store(const char *store, const char *option, bool create, char *out, size_t size,
			struct mesh_err *err);

/* Write a fresh store id line ("id <uuid>\n") into buf. */
void state_new_store_id_line(char *buf, size_t size);

#endif
