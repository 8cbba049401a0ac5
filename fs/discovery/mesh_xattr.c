/*
 * mesh_xattr.c - extended attributes from catalog nodes (contract in
 * include/mesh_xattr.h).  Not here: FUSE (fuse_ops.c answers with these).
 */
#include "mesh_xattr.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "mesh_util.h"

static const char *const names[] = {
	"user.mesh.domain", "user.mesh.product", "user.mesh.version", "user.mesh.status",
	"user.mesh.published_at", "user.mesh.sha256", "user.mesh.classification",
};

static int put(char *buf, size_t size, const char *value)
{
	size_t len = strlen(value);
	if (len > size)
		return -ERANGE;
	memcpy(buf, value, len);
	return (int)len;
}

int mesh_xattr_get(const struct cat_node *n, const char *name, char *buf, size_t size)
{
	bool in_version = n->version != NULL && (n->kind == CAT_VERSION || n->kind == CAT_FILE);
	if (!strcmp(name, "user.mesh.domain") && n->domain && n->product)
		return put(buf, size, n->domain);
	if (!strcmp(name, "user.mesh.product") && n->product)
		return put(buf, size, n->product);
	if (!strcmp(name, "user.mesh.version") && in_version)
		return put(buf, size, n->version);
	if (!strcmp(name, "user.mesh.status") && in_version)
		return put(buf, size, lifecycle_name(n->state));
	if (!strcmp(name, "user.mesh.published_at") && in_version) {
		char when[40];
		mesh_time_rfc3339(&n->mtime, when, sizeof when);
		return put(buf, size, when);
	}
	if (!strcmp(name, "user.mesh.sha256") && n->kind == CAT_FILE && n->sha256)
		return put(buf, size, n->sha256);
	if (!strcmp(name, "user.mesh.classification") && n->kind == CAT_FILE && n->n_columns) {
		size_t len = 0;
		for (uint32_t i = 0; i < n->n_columns; i++) {
			int w = snprintf(buf + len, size > len ? size - len : 0, "%s%s=%s", i ? "," : "",
					 n->columns[i].name, n->columns[i].classification);
			if (w < 0 || len + (size_t)w > size)
				return -ERANGE;
			len += (size_t)w;
		}
		return (int)len;
	}
	return -ENODATA;
}

size_t mesh_xattr_list(const struct cat_node *n, char *buf, size_t size)
{
	char scratch[4096];
	size_t len = 0;
	for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
		if (mesh_xattr_get(n, names[i], scratch, sizeof scratch) < 0)
			continue;
		size_t k = strlen(names[i]) + 1;
		if (len + k > size)
			break;
		memcpy(buf + len, names[i], k);
		len += k;
	}
	return len;
}
