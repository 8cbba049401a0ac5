/*
 * index_loader.h - reading releases ahead of an index build: a few threads
 * read and parse every release's manifest and contract while the build
 * writes the index in one thread.  An index build of a store whose files
 * are not in the page cache waits on one small read after another; with
 * several in flight the disk (and both CPUs, for the YAML and JSON) work
 * at once.
 *
 * The loader only reads: what goes into the index, in which order, is
 * still decided by the build (index.c), which takes each product's
 * releases from here in the order it was given the products, and reads a
 * release itself when the loader has none for it (a version that appeared
 * meanwhile, one the loader could not read).  So the index is the same,
 * row for row, with or without a loader.
 *
 * Not here: SQLite, lifecycle records (the build reads those), the
 * incremental refresh (it reads a handful of releases: no threads).
 *
 * Thread-safety: one thread (the build's) calls every function; the
 * loader's own threads touch only its queue and the store's files.
 */
#ifndef INDEX_LOADER_H
#define INDEX_LOADER_H

#include <stdbool.h>
#include <stddef.h>

#include "contract.h"
#include "store.h"

/* Threads a build starts: $MESHFS_INDEX_THREADS (0 or 1: none, the build
 * reads every release itself; at most 64), else this. */
#define INDEX_LOADER_THREADS 6
/* Products read ahead of the build at most (bounds the memory held). */
#define INDEX_LOADER_WINDOW 512

/* Read a release's manifest and contract from its product directory pfd;
 * false (both NULL) when either is unreadable.  `store`, `domain`,
 * `product` name the contract in its messages.  Thread-safe. */
bool index_load_release(int pfd, const char *store, const char *domain, const char *product,
			const char *version, struct manifest **m, struct contract **c);

/* One product's releases as the loader read them. */
struct index_loaded_release {
	char *version;
	struct manifest *m;      /* NULL with c: unreadable (the build tries again) */
	struct contract *c;
};
struct index_loaded {
	struct index_loaded_release *r;   /* every version directory, in directory order */
	size_t n;
	bool listed;             /* the product directory was read (else the build reads it) */
};

struct index_loader;

/* Start reading STORE/domains/<domains[i]>/<products[i]> for i < n (the
 * arrays are borrowed until _free).  NULL when no thread is wanted or
 * none could start: then the build reads everything itself. */
struct index_loader *index_loader_start(const char *store, char *const *domains, char *const *products,
					size_t n);
/* Product i's releases (waits for them), for i = 0, 1, ... in turn; the
 * caller owns the result (index_loaded_free). */
struct index_loaded *index_loader_take(struct index_loader *l, size_t i);
/* Move the release `version` out of `set` (manifest and contract, NULL
 * when the loader could not read it or has no such version): true when
 * the loader had read it. */
bool index_loaded_claim(struct index_loaded *set, const char *version, struct manifest **m,
			struct contract **c);
void index_loaded_free(struct index_loaded *set);
/* Stop the threads (what is not taken is dropped) and free. NULL: no-op. */
void index_loader_free(struct index_loader *l);

#endif
