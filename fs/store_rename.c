/*
 * store_rename.c - exclusive and replacing renames on a store that may be
 * shared by many hosts (contract in include/store_rename.h).
 *
 * Why a plain rename(2) of the staging directory is an exclusive claim:
 *
 *  - POSIX rename(2) of a directory onto an existing directory succeeds
 *    only if that directory is empty; onto a non-empty one it fails with
 *    ENOTEMPTY or EEXIST, and onto a non-directory with ENOTDIR.  A staged
 *    release always holds its .manifest.json, so once one publisher's
 *    rename succeeded the name is a non-empty directory and every later
 *    rename onto it fails.  The only directory a rename may replace is an
 *    empty one, which is not a release (a crashed mkdir at most).
 *  - The check and the replacement are one operation on the server: NFS
 *    sends one RENAME (the server runs rename(2) on its filesystem, under
 *    its directory locks), CephFS one MDS request, GlusterFS one fop that
 *    the brick runs as rename(2) (its DHT layer, on a distributed volume,
 *    renames directories under an inodelk on the parents and checks the
 *    target is empty on every subvolume).  Two hosts racing for one
 *    version are serialized there: exactly one rename finds no release.
 *  - A retransmitted NFS RENAME whose first try succeeded can come back as
 *    ENOENT (the source is gone).  So the outcome is never trusted alone:
 *    after the rename, success or ENOENT, `to` is compared by inode with the
 *    staging directory we still hold open.  Inode numbers survive renames
 *    on NFS (fileid), CephFS and GlusterFS (from the gfid).
 *
 * What is not used: RENAME_NOREPLACE where the filesystem refuses it (no
 * emulation by mkdir: a claimed empty name is not atomic with the content),
 * link(2) (directories cannot be linked), and locks (not coherent on every
 * shared filesystem).
 *
 * Not here: staging, copying and validating a release (store.c, publish.c).
 */
#include "store_rename.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/fs.h>

#include "mesh_util.h"

static store_renameat2_fn rename_hook;

void store_rename_set_hook(store_renameat2_fn fn)
{
	rename_hook = fn;
}

static int do_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
			unsigned int flags)
{
	if (rename_hook)
		return rename_hook(olddirfd, oldpath, newdirfd, newpath, flags);
	return renameat2(olddirfd, oldpath, newdirfd, newpath, flags);
}

/* Is `to` in dirfd the directory open as from_fd? */
static bool is_ours(int dirfd, const char *to, int from_fd)
{
	struct stat a, b;
	return fstat(from_fd, &a) == 0 && fstatat(dirfd, to, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
	       a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

int store_rename_noreplace(int dirfd, const char *from, int from_fd, const char *to,
			   int *used_fallback, struct mesh_err *err)
{
	if (used_fallback)
		*used_fallback = 0;
	if (do_renameat2(dirfd, from, dirfd, to, RENAME_NOREPLACE) == 0)
		return 0;
	int e = errno;
	if (e == EEXIST)
		return mesh_errf(err, -EEXIST, "%s: already exists", to);
	if (e != EINVAL && e != ENOSYS && e != EOPNOTSUPP)
		return mesh_errf(err, -e, "%s: rename: %s", to, strerror(e));
	/* The filesystem has no rename flags: a plain rename of the
	 * non-empty staging directory (see the top of this file). */
	if (used_fallback)
		*used_fallback = 1;
	if (renameat(dirfd, from, dirfd, to) == 0) {
		if (is_ours(dirfd, to, from_fd))
			return 0;
		return mesh_errf(err, -EIO, "%s: renamed, but the name is not the staged directory", to);
	}
	e = errno;
	if (e == ENOTEMPTY || e == EEXIST || e == ENOTDIR || e == EISDIR)
		return mesh_errf(err, -EEXIST, "%s: already exists", to);
	if (e == ENOENT && is_ours(dirfd, to, from_fd))
		return 0;           /* a retried RENAME whose first try won */
	return mesh_errf(err, -e, "%s: rename: %s", to, strerror(e));
}

int store_write_replace(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
			struct mesh_err *err)
{
	return mesh_write_file_atomic(dirfd, name, data, len, mode, err);
}
