/*
 * backing_cache.h - descriptors of the store's release files kept open, so
 * that an open through the mount costs a dup() instead of a path walk
 * (openat2 with RESOLVE_BENEATH over five components, then fstat: about a
 * tenth of the daemon's CPU in open+close storms).
 *
 * The cache never opens anything itself: on a miss it calls the opener it
 * was given (the daemon's safe open below the store root), so every rule
 * about how store files are opened stays in one place.  A returned
 * descriptor is a dup of the kept one: it shares the file offset and status
 * flags, which is harmless because every read of a backing file is a pread.
 * Release files never change; the daemon clears the cache whenever it
 * rescans the store, so no descriptor outlives the snapshot it was opened
 * for by more than one rescan (a removed file's space is freed then).
 *
 * Thread-safety: _open and _clear may be called from any thread at once
 * (one mutex per slot).  Holds at most `slots` descriptors (the daemon keeps
 * a quarter of its descriptor limit, 64 to 8192).
 */
#ifndef BACKING_CACHE_H
#define BACKING_CACHE_H

#include <stddef.h>
#include <stdint.h>

struct backing_cache;

/* opener(ctx, relpath) returns a new descriptor or -errno. */
typedef int (*backing_opener)(void *ctx, const char *relpath);

/* slots: how many descriptors to keep (0: keep none, every call opens). */
struct backing_cache *backing_cache_new(size_t slots, backing_opener opener, void *ctx);
/* Close every kept descriptor and free.  NULL is a no-op. */
void backing_cache_free(struct backing_cache *c);

/* A new descriptor (O_CLOEXEC; the caller closes it) for the file `relpath`
 * of node `ino`, or the opener's -errno. */
int backing_cache_open(struct backing_cache *c, uint64_t ino, const char *relpath);
/* Forget (close) every kept descriptor. */
void backing_cache_clear(struct backing_cache *c);

#endif
