/*
 * snapshot_cache.h - the daemon's bounded cache of loaded products, and
 * the inode numbers the kernel holds below them.
 *
 * A snapshot built from the index (catalog_builder, catalog.h) holds
 * domains and products only.  A product's versions and files are read from
 * the store when a request first needs them (catalog_product_load) and kept
 * here, least recently used first out, up to a cap counted in releases (a
 * product of many versions weighs as many).  An entry belongs to the
 * snapshot it was loaded for; snapshot_cache_reset() drops every entry when
 * a new snapshot is current, and a request still holding an older snapshot
 * gets its product loaded for it but not kept.
 *
 * Inode numbers stay the catalog's (a hash of the mesh path, catalog.h), so
 * an evicted product loaded again gives the same numbers.  What the cache
 * must still answer after an eviction is which product an inode below a
 * product belongs to (the kernel may ask getattr or open of an inode it
 * looked up long ago): the registry maps every such inode handed to the
 * kernel (a lookup or a readdirplus entry) to its product, counting
 * lookups, and forgets it when the kernel's FORGET brings the count to 0.
 * So the registry holds what the kernel holds, no more.
 *
 * Thread-safety: every function may be called from any thread (one
 * internal mutex; loading happens outside it).
 */
#ifndef SNAPSHOT_CACHE_H
#define SNAPSHOT_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "catalog.h"
#include "mesh_err.h"

/* Releases kept loaded by default: at about 5 KiB a loaded product of one
 * release, 10 MiB; with the snapshot of a store of 100,000 releases (about
 * 25 MiB) the daemon stays under 64 MiB. */
#define SNAPSHOT_CACHE_DEFAULT 2048

struct snapshot_cache;

/* max_releases 0: SNAPSHOT_CACHE_DEFAULT. */
struct snapshot_cache *snapshot_cache_new(size_t max_releases);
void snapshot_cache_free(struct snapshot_cache *c);   /* NULL: no-op */

/* `snapshot` is now current: every entry loaded for another is dropped
 * (freed when the last request holding it lets go). */
void snapshot_cache_reset(struct snapshot_cache *c, struct catalog *snapshot);

/* Lazy product `product` of `snapshot`, loaded (catalog_product_load):
 * *out is referenced (catalog_unref).  From the cache when it has it;
 * else read from the store now, and kept when `snapshot` is current.
 * Errors: catalog_product_load's. */
int snapshot_cache_product(struct snapshot_cache *c, const char *store, struct catalog *snapshot,
			   const struct cat_node *product, struct catalog **out, struct mesh_err *err);

/* What the kernel was told of a file meshfs rewrites in place (a
 * product's descriptor): its name in the product directory, its backing
 * path below the store, and the size and time it was given.  The kernel
 * keeps such an entry long; the daemon compares these with the store at
 * every rescan and invalidates what moved (snapshot_cache_stamped). */
struct snapshot_stamp {
	const char *name, *backing;
	uint64_t size;
	struct timespec mtime;
};

/* The kernel was given `ino` (below product `product_ino`) in one entry;
 * `stamp` (NULL: none) is recorded (copied) with it, replacing an earlier
 * one. */
void snapshot_cache_note(struct snapshot_cache *c, uint64_t ino, uint64_t product_ino,
			 const struct snapshot_stamp *stamp);
/* FORGET: the kernel drops `nlookup` of its lookups of `ino`. */
void snapshot_cache_forget(struct snapshot_cache *c, uint64_t ino, uint64_t nlookup);
/* The product an inode the kernel holds belongs to. */
bool snapshot_cache_owner(struct snapshot_cache *c, uint64_t ino, uint64_t *product_ino);

/* Every inode the kernel holds with a stamp, copied: *out (n entries) is
 * the caller's, freed with snapshot_cache_stamped_free.  Returns n. */
struct snapshot_stamped {
	uint64_t ino, product_ino;
	char *name, *backing;
	uint64_t size;
	struct timespec mtime;
};
size_t snapshot_cache_stamped(struct snapshot_cache *c, struct snapshot_stamped **out);
void snapshot_cache_stamped_free(struct snapshot_stamped *list, size_t n);
/* The stamp of `ino` (if still held) now says `size` and `mtime`. */
void snapshot_cache_restamp(struct snapshot_cache *c, uint64_t ino, uint64_t size, struct timespec mtime);

struct snapshot_cache_stats {
	size_t products, releases;     /* kept now */
	size_t max_releases;
	uint64_t loads, hits, evictions;
	size_t inodes;                 /* in the registry */
};
void snapshot_cache_stats(struct snapshot_cache *c, struct snapshot_cache_stats *out);

#endif
