/*
 * mesh_xattr.h - the extended attributes the mount shows (read-only):
 * where a node is and what state it is in, from the catalog alone (no I/O,
 * so the FUSE glue may call it on any thread).
 *
 *   user.mesh.domain, user.mesh.product   products and below
 *   user.mesh.version, user.mesh.status   versions and their files
 *   user.mesh.published_at                versions and their files (RFC 3339)
 *   user.mesh.sha256                      release files
 *   user.mesh.classification              data files with classified columns:
 *                                         "email=pii,ssn=confidential"
 */
#ifndef MESH_XATTR_H
#define MESH_XATTR_H

#include <stddef.h>

#include "catalog.h"

/* The value of `name` on n into buf: its length, -ENODATA when n has no
 * such attribute, -ERANGE when buf is too small. */
int mesh_xattr_get(const struct cat_node *n, const char *name, char *buf, size_t size);
/* The NUL-separated names n has; the length written (at most size). */
size_t mesh_xattr_list(const struct cat_node *n, char *buf, size_t size);

#endif
