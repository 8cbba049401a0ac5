/*
 * fuse_passthrough.h - kernel FUSE passthrough (Linux >= 6.9) from
 * libfuse 3.14, whose API cannot ask for it.
 *
 * With passthrough the kernel reads an open file's data straight from a
 * backing file the daemon names at open: READ requests never reach the
 * daemon, and reads run at native speed.  libfuse 3.14 cannot request the
 * capability, so meshfs mounts /dev/fuse itself (root only), gives libfuse
 * the connection through fuse_session_custom_io(), and patches libfuse's
 * INIT reply on its way to the kernel (flags2 |= FUSE_PASSTHROUGH,
 * max_stack_depth = 1) when the kernel offered the capability.  OPEN is
 * then answered by hand with FOPEN_PASSTHROUGH and a backing id registered
 * with the FUSE_DEV_IOC_BACKING_OPEN ioctl.
 *
 * The kernel allows one backing file per inode at a time, and refuses
 * cached (non-direct_io) opens of an inode while passthrough opens exist.
 * Backing ids are kept per (inode, backing file): when an inode's file
 * changes (a rebuilt view), idle ids of the former file are closed and a
 * new one registered; while passthrough opens of the former file last, new
 * opens share its id (the kernel fails any other open of the inode with
 * EIO).  That is right only because meshfs gives content that changes a
 * new inode (views per plan, re-stated contracts per file): a file that
 * replaces another under one inode holds the same bytes.
 *
 * State is process-wide (one session per process); functions are
 * thread-safe.
 */
#ifndef FUSE_PASSTHROUGH_H
#define FUSE_PASSTHROUGH_H

#include <stdbool.h>
#include <stdint.h>

#include "fuse_ops.h"
#include "mesh_err.h"

/* Mount `mountpoint` with our own /dev/fuse connection (root only) and
 * hook the session's I/O.  Options: allow_other; always nosuid,nodev,ro.
 * -EPERM when not root (then use fuse_session_mount() instead). */
int passthrough_mount(struct fuse_session *se, const char *source, const char *mountpoint,
		      bool allow_other, struct mesh_err *err);
/* Undo passthrough_mount's mount (lazy if busy).  No-op if not mounted. */
void passthrough_unmount(void);

/* True once the kernel accepted passthrough in INIT. */
bool passthrough_active(void);

/* Answer an OPEN with passthrough to `backing_fd` for inode `ino`, sharing
 * one backing id among opens of that inode and file (*backing_id).
 * Returns 0 when the reply was sent, or a negative errno (nothing sent:
 * reply normally). */
int passthrough_reply_open(fuse_req_t req, uint64_t ino, int backing_fd, uint64_t fh, int *backing_id);
/* At release of a passthrough open with that id. */
void passthrough_release(uint64_t ino, int backing_id);

#endif
