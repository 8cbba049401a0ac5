/*
 * mesh_xattr.c - extended attributes from catalog nodes and the small
 * files of a release (contract in include/mesh_xattr.h).
 *
 * Not here: FUSE (fuse_ops.c answers with these), the per-reader sha256
 * and view attributes of files (daemon.c).
 */
#include "mesh_xattr.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "contract.h"
#include "governance.h"
#include "mesh_util.h"
#include "store.h"

static const char *const names[] = {
	"user.mesh.domain", "user.mesh.product", "user.mesh.owner", "user.mesh.version", "user.mesh.status",
	"user.mesh.sunset", "user.mesh.reason", "user.mesh.contract_id", "user.mesh.published_at",
	"user.mesh.sha256", "user.mesh.classification",
};

/* Length of the UTF-8 sequence at s (1..4), or 0 if it is not one. */
static size_t utf8_len(const unsigned char *s)
{
	size_t n = s[0] < 0x80 ? 1 : (s[0] & 0xe0) == 0xc0 && s[0] >= 0xc2 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3
		 : (s[0] & 0xf8) == 0xf0 && s[0] <= 0xf4 ? 4 : 0;
	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

size_t mesh_xattr_escape(const char *in, char *out, size_t out_size)
{
	size_t len = 0, cap = out_size - 1 < MESH_XATTR_VALUE_MAX ? out_size - 1 : MESH_XATTR_VALUE_MAX;
	const unsigned char *s = (const unsigned char *)(in ? in : "");
	while (*s) {
		size_t n = utf8_len(s);
		char piece[8];
		size_t k;
		if (n == 1 && (*s < 0x20 || *s == 0x7f || *s == '\\')) {
			k = (size_t)snprintf(piece, sizeof piece, "\\x%02x", *s);
			n = 1;
		} else if (n == 0) {
			k = (size_t)snprintf(piece, sizeof piece, "\\x%02x", *s);
			n = 1;
		} else {
			memcpy(piece, s, n);
			k = n;
		}
		if (len + k > cap - 3 && s[n]) {        /* no room for this and "..." */
			if (len + 3 <= cap) {
				memcpy(out + len, "...", 3);
				len += 3;
			}
			break;
		}
		if (len + k > cap)
			break;
		memcpy(out + len, piece, k);
		len += k;
		s += n;
	}
	out[len] = '\0';
	return len;
}

static int put(char *buf, size_t size, const char *value)
{
	size_t len = strlen(value);
	if (size == 0)
		return (int)len;
	if (len > size)
		return -ERANGE;
	memcpy(buf, value, len);
	return (int)len;
}

/* The version an attribute of n speaks of: n itself, or a product's latest. */
static const struct cat_node *version_of(const struct cat_node *n)
{
	if (n->kind == CAT_VERSION)
		return n;
	return n->kind == CAT_PRODUCT ? catalog_latest(n) : NULL;
}

static int product_dir(const char *store, const struct cat_node *v)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/domains/%s/%s", store, v->domain, v->product);
	return open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

static void append_unique(struct strbuf *sb, const char *subject)
{
	if (!subject || !*subject)
		return;
	/* whole items only: "user:bo" is not in "user:bob" */
	for (const char *p = sb->buf; p && *p;) {
		size_t k = strcspn(p, ",");
		if (k == strlen(subject) && !strncmp(p, subject, k))
			return;
		p += k + (p[k] == ',');
	}
	if (sb->len)
		strbuf_puts(sb, ",");
	strbuf_puts(sb, subject);
}

/* The raw (unescaped) value of one of the attributes read from files;
 * malloc'ed, or NULL when n has none. */
static char *file_value(const char *store, const struct cat_node *n, const char *name)
{
	const struct cat_node *v = version_of(n);
	if (!v || (n->kind != CAT_PRODUCT && n->kind != CAT_VERSION))
		return NULL;
	char *value = NULL;
	if (!strcmp(name, "user.mesh.owner")) {
		struct strbuf sb = STRBUF_INIT;
		const struct cat_node *cf = catalog_child(v, "contract.yaml");
		int root = open(store, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		char *text = NULL;
		size_t len = 0;
		struct contract *c = NULL;
		if (root >= 0 && cf && cf->backing &&
		    !mesh_read_file_at(root, cf->backing, CONTRACT_MAX_BYTES, &text, &len, NULL))
			contract_parse(text, len, cf->backing, &c, NULL);
		for (size_t i = 0; c && i < c->n_owners; i++)
			append_unique(&sb, c->owners[i].subject);
		contract_free(c);
		free(text);
		if (root >= 0)
			close(root);
		struct domain_info *di = NULL;
		if (!gov_load_domain(store, v->domain, &di, NULL))
			for (size_t i = 0; i < di->n_owners; i++)
				append_unique(&sb, di->owners[i]);
		gov_domain_free(di);
		value = sb.len ? strbuf_detach(&sb, NULL) : NULL;
		strbuf_release(&sb);
		return value;
	}
	int pfd = product_dir(store, v);
	if (pfd < 0)
		return NULL;
	if (!strcmp(name, "user.mesh.contract_id")) {
		char mpath[PATH_MAX];
		snprintf(mpath, sizeof mpath, "%s/" STORE_MANIFEST, v->name);
		struct manifest *m = NULL;
		if (!manifest_load_at(pfd, mpath, &m, NULL) && m->contract_id && *m->contract_id)
			value = xstrdup(m->contract_id);
		manifest_free(m);
	} else if (!strcmp(name, "user.mesh.sunset") || !strcmp(name, "user.mesh.reason")) {
		struct lifecycle_table life = {0};
		if (!lifecycle_load_at(pfd, &life, NULL)) {
			const struct lifecycle_entry *e = lifecycle_find(&life, v->name);
			const char *s = !e ? NULL : !strcmp(name, "user.mesh.sunset") ? e->sunset : e->reason;
			if (s && *s && e->state != LC_ACTIVE)
				value = xstrdup(s);
		}
		lifecycle_table_free(&life);
	}
	close(pfd);
	return value;
}

static bool from_files(const char *name)
{
	return !strcmp(name, "user.mesh.owner") || !strcmp(name, "user.mesh.contract_id") ||
	       !strcmp(name, "user.mesh.sunset") || !strcmp(name, "user.mesh.reason");
}

bool mesh_xattr_namespace(const char *name)
{
	return !strncmp(name, "user.", 5);
}

int mesh_xattr_get(const char *store, const struct cat_node *n, const char *name, char *buf, size_t size)
{
	if (!mesh_xattr_namespace(name))
		return -EOPNOTSUPP;
	bool in_version = n->version != NULL && (n->kind == CAT_VERSION || n->kind == CAT_FILE);
	if (from_files(name)) {
		char *raw = store ? file_value(store, n, name) : NULL;
		if (!raw)
			return -ENODATA;
		char value[MESH_XATTR_VALUE_MAX + 1];
		mesh_xattr_escape(raw, value, sizeof value);
		free(raw);
		return put(buf, size, value);
	}
	if (!strcmp(name, "user.mesh.domain") && n->domain && n->product)
		return put(buf, size, n->domain);
	if (!strcmp(name, "user.mesh.product") && n->product)
		return put(buf, size, n->product);
	if (!strcmp(name, "user.mesh.version") && in_version)
		return put(buf, size, n->version);
	if (!strcmp(name, "user.mesh.status") && (in_version || n->kind == CAT_PRODUCT)) {
		const struct cat_node *v = n->kind == CAT_PRODUCT ? catalog_latest(n) : n;
		return v ? put(buf, size, lifecycle_name(v->state)) : -ENODATA;
	}
	if (!strcmp(name, "user.mesh.published_at") && in_version) {
		char when[40];
		mesh_time_rfc3339(&n->mtime, when, sizeof when);
		return put(buf, size, when);
	}
	if (!strcmp(name, "user.mesh.sha256") && n->kind == CAT_FILE && n->sha256)
		return put(buf, size, n->sha256);
	if (!strcmp(name, "user.mesh.classification") && n->kind == CAT_FILE && n->n_columns) {
		struct strbuf sb = STRBUF_INIT;
		for (uint32_t i = 0; i < n->n_columns; i++)
			strbuf_printf(&sb, "%s%s=%s", i ? "," : "", n->columns[i].name, n->columns[i].classification);
		char value[4001];   /* what the FUSE glue's 4 KiB buffer holds */
		size_t len = sb.len;
		int rc;
		/* classified column names come from a validated contract; a
		 * list longer than a buffer is an error, never cut silently */
		if (len >= sizeof value) {
			rc = -E2BIG;
		} else {
			memcpy(value, sb.buf, len);
			value[len] = '\0';
			rc = put(buf, size, value);
		}
		strbuf_release(&sb);
		return rc;
	}
	return -ENODATA;
}

size_t mesh_xattr_list(const char *store, const struct cat_node *n, char *buf, size_t size)
{
	size_t len = 0;
	for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
		if (mesh_xattr_get(store, n, names[i], NULL, 0) < 0)
			continue;
		size_t k = strlen(names[i]) + 1;
		if (len + k > size)
			break;
		memcpy(buf + len, names[i], k);
		len += k;
	}
	return len;
}
