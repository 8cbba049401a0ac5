/*
 * view_cache.h - the host's cache of materialized views, and the mesh-wide
 * secret of the hash mask function.
 *
 * A view is built once per (release file, mask plan) into DIR (default
 * /var/cache/meshfs/views, mode 0700, owned by the service account): one
 * streaming pass into a temporary name, fsync, rename to KEY.view, then
 * KEY.meta (JSON: the release file's SHA-256, the plan, the view's size and
 * SHA-256).  KEY is a hash of the release file's SHA-256 (the manifest's),
 * the format, the plan text and the secret, so a changed plan is a new
 * entry.  Openers of a view being built wait for that build.
 *
 * Verification: an entry is trusted only while the file's identity and
 * times (dev, inode, size, mtime, ctime) are those recorded when it was
 * built or last verified; otherwise (first use after a restart, a file
 * written by anyone) it is read in full and compared with KEY.meta's
 * SHA-256, and rebuilt when it differs.  A build also checks that the
 * bytes it read match the manifest's SHA-256.
 *
 * Size cap: entries are evicted least recently used first to keep the
 * total under max_bytes; a view that cannot fit is an error (the caller
 * denies).  Eviction unlinks: opens of an evicted view keep reading it.
 * A full disk fails the build (-ENOSPC); a failed build leaves nothing.
 *
 * Thread-safety: every function may be called from any thread.
 */
#ifndef VIEW_CACHE_H
#define VIEW_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "mesh_err.h"
#include "view_build.h"
#include "view_mask.h"

#define VIEW_CACHE_DIR_DEFAULT "/var/cache/meshfs/views"
#define VIEW_CACHE_MAX_DEFAULT (10ull << 30)

struct view_cache;

/* Create DIR if needed (0700), refuse it when others may write it or it is
 * not ours, remove stale temporary files, count what is there. */
int view_cache_open(const char *dir, uint64_t max_bytes, struct view_cache **out, struct mesh_err *err);
void view_cache_close(struct view_cache *c);

/* What to build a view from: the release file (opened on demand). */
struct view_source {
	const char *sha256;          /* the manifest's, hex */
	enum view_format format;
	int (*open)(void *ctx);      /* returns an fd, or -errno */
	void *ctx;
};

struct view_info {
	uint64_t size;
	char sha256[65];             /* of the view's bytes */
	bool fresh;                  /* built or re-verified by this call: cached pages are stale */
	double build_seconds;        /* when built by this call */
};

/* An fd open (O_RDONLY) on the view of `src` under `plan`, building or
 * verifying it first if needed.  *fd_out belongs to the caller.  Errors:
 * those of the build (view_build.h), -EIO (the release file does not match
 * its SHA-256), -ENOSPC (disk full or larger than the cap). */
int view_cache_get(struct view_cache *c, const struct view_source *src, const struct view_plan *plan,
		   const unsigned char *secret, int *fd_out, struct view_info *info, struct mesh_err *err);

/* Total bytes of the entries, entry count (metrics, tests). */
uint64_t view_cache_bytes(struct view_cache *c, size_t *entries);

/* The mesh-wide secret of `hash`: DIR/view-hash.key (0600, hex), made at
 * first use with a random value.  Several hosts sharing the store agree:
 * the file is created under a temporary name and link()ed into place, so
 * the first one wins.  A key file others can read is refused. */
int view_secret_load(const char *dir, unsigned char secret[VIEW_SECRET_LEN], struct mesh_err *err);

#endif
