/*
 * store_rename.h - putting a file or directory in place on a shared store:
 * an exclusive rename for releases ("exactly one publisher wins") and a
 * replacing write for files with one writer per name (lifecycle records,
 * usage segments), both correct on local filesystems and on NFS, CephFS,
 * GlusterFS and other FUSE filesystems that refuse rename flags.
 *
 * Not here: what is installed (store.h), staging and copying (store.c).
 * Thread-safety: the functions keep no state (the test hook is global:
 * set it before threads start).
 */
#ifndef STORE_RENAME_H
#define STORE_RENAME_H

#include <stddef.h>
#include <sys/types.h>

#include "mesh_err.h"

/* Rename the directory `from` (open as `from_fd`, not empty) to `to`, both
 * in `dirfd`, only if `to` does not name a release yet.  Uses
 * renameat2(RENAME_NOREPLACE) where the filesystem has it; where it says
 * EINVAL, ENOSYS or EOPNOTSUPP (kernel NFS and CephFS clients, FUSE
 * filesystems without rename2), a plain rename(2) of the non-empty
 * directory, which the server refuses with ENOTEMPTY or EEXIST when `to` is
 * a non-empty directory (see store_rename.c for why that is exclusive).
 * Returns 0 when `to` is now our directory (checked by inode), -EEXIST when
 * another one is there, or -errno; `err` says which.  *used_fallback (if
 * not NULL) tells which way was taken. */
int store_rename_noreplace(int dirfd, const char *from, int from_fd, const char *to,
			   int *used_fallback, struct mesh_err *err);

/* Write `name` in `dirfd` with `data`: a temporary name unique across hosts
 * (host name, pid, random), fsync, rename over `name`, fsync the directory.
 * Readers see the old or the new content, never a mix.  For names with one
 * writer at a time, or where the last complete write may win. */
int store_write_replace(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
			struct mesh_err *err);

/* Tests only: replace renameat2() (NULL: the real one), e.g. by a function
 * failing with EINVAL as an NFS client does. */
typedef int (*store_renameat2_fn)(int olddirfd, const char *oldpath, int newdirfd,
				  const char *newpath, unsigned int flags);
void store_rename_set_hook(store_renameat2_fn fn);

#endif
