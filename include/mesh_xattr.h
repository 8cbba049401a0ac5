/*
 * mesh_xattr.h - the extended attributes the mount shows (read-only):
 * where a node is, what state it is in and who answers for it.
 *
 *   user.mesh.domain, user.mesh.product   products and below
 *   user.mesh.owner                       products and versions: the
 *                                         contract's owners, then the
 *                                         domain's ("user:bob,group:sales")
 *   user.mesh.version, user.mesh.status   versions and their files; a
 *                                         product's status is its latest's
 *   user.mesh.sunset, user.mesh.reason    products (their latest) and versions
 *                                         that were deprecated with them
 *   user.mesh.contract_id                 products (their latest) and versions
 *   user.mesh.published_at                versions and their files (RFC 3339)
 *   user.mesh.sha256                      release files
 *   user.mesh.classification              data files with classified columns:
 *                                         "email=pii,ssn=confidential"
 *
 * Values that come from people (owners, a deprecation reason, a contract
 * id) are escaped (a control byte, a backslash or a byte that is not UTF-8
 * becomes \xNN) and bounded to MESH_XATTR_VALUE_MAX bytes (cut at a
 * character, ending "..."): a value never carries a terminal escape or a
 * line break, and never needs more than a 4 KiB buffer.
 *
 * The attributes of the first lines are read from the catalog alone; owner,
 * sunset, reason and contract_id read small files of the store (the domain,
 * the release's contract, manifest and lifecycle record) below `store`, so
 * the FUSE glue calls these on its worker threads (no locks held).
 * mesh_xattr_list names exactly the attributes mesh_xattr_get answers.
 */
#ifndef MESH_XATTR_H
#define MESH_XATTR_H

#include <stdbool.h>
#include <stddef.h>

#include "catalog.h"

#define MESH_XATTR_VALUE_MAX 1024

/* Whether the mount has the namespace of `name` at all: only "user.".
 * Every other name (security.selinux, security.capability,
 * system.posix_acl_access, ...) is answered -EOPNOTSUPP, the same for
 * every node and every caller, as on a file system without such
 * attributes: `ls -l` then stops asking for the whole mount after the
 * first file (coreutils remembers a device that does not support them),
 * where -ENODATA made it ask three times per entry, each a round trip. */
bool mesh_xattr_namespace(const char *name);

/* The value of `name` on n into buf: its length, -ENODATA when n has no
 * such attribute (-EOPNOTSUPP outside the user namespace), -ERANGE when
 * buf is too small (size 0: the length). */
int mesh_xattr_get(const char *store, const struct cat_node *n, const char *name, char *buf, size_t size);
/* The NUL-separated names n has; the length written (at most size). */
size_t mesh_xattr_list(const char *store, const struct cat_node *n, char *buf, size_t size);

/* `in` escaped and bounded as above into out (NUL-terminated; out_size
 * > MESH_XATTR_VALUE_MAX); the length written. */
size_t mesh_xattr_escape(const char *in, char *out, size_t out_size);

#endif
