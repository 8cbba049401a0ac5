/*
 * backing_cache.h - descriptors of the store's release files kept open, so
 * that an open through the mount costs a dup() instead of a path walk
 * (openat2 with RESOLVE_BENEATH over five components, then fstat: about a
 * tenth of the daemon's CPU in open+close storms), and now not even that:
 * an open shares the kept descriptor through a counted reference, so an
 * open+close costs no descriptor syscall at all (the dup and its close
 * were 2.5% of the daemon's CPU in the same storms).
 *
 * The cache never opens anything itself: on a miss it calls the opener it
 * was given (the daemon's safe open below the store root), so every rule
 * about how store files are opened stays in one place.  Every user of a
 * kept descriptor shares its file offset and status flags, which is
 * harmless because every read of a backing file is a pread and nobody
 * changes the flags.  Release files never change; the daemon clears the
 * cache whenever it rescans the store, so no kept descriptor outlives the
 * snapshot it was opened for by more than one rescan and the files still
 * open then (a removed file's space is freed when the last is closed).
 *
 * Thread-safety: every function may be called from any thread at once
 * (one mutex per slot; references are atomic).  Holds at most `slots`
 * kept descriptors (the daemon keeps a quarter of its descriptor limit, 64
 * to 8192), plus those that files still open hold after a clear.
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

/* A descriptor shared by every open of one backing file. */
struct backing_ref;

/* The descriptor (O_CLOEXEC) of the file `relpath` of node `ino`, or the
 * opener's -errno.  The caller must not close it: *ref keeps it open until
 * backing_cache_put(*ref), however the cache changes meanwhile (a clear, a
 * colliding file).  With 0 slots every call opens, and *ref owns that
 * descriptor alone. */
int backing_cache_get(struct backing_cache *c, uint64_t ino, const char *relpath, struct backing_ref **ref);
/* Drop a reference from backing_cache_get (the last one closes the
 * descriptor).  NULL is a no-op. */
void backing_cache_put(struct backing_ref *ref);
/* Forget every kept descriptor (each is closed once no reference holds it). */
void backing_cache_clear(struct backing_cache *c);

#endif
