/*
 * fuse_ops.h - the FUSE low-level operations of meshfs: glue only.  Each
 * operation gets the daemon state, asks daemon.h / catalog.h, and turns the
 * answer into a reply or an errno.  No rule lives here.
 */
#ifndef FUSE_OPS_H
#define FUSE_OPS_H

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include "daemon.h"

/* The operations table; the session's userdata must be a struct mesh_daemon *. */
extern const struct fuse_lowlevel_ops meshfs_ops;

/* Invalidation callbacks for daemon_start(), with the session as context. */
struct daemon_invalidate meshfs_invalidator(struct fuse_session *se);

#endif
