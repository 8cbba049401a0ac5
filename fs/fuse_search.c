/*
 * fuse_search.c - FUSE glue of /mesh/.search (the tree is search_dir.c):
 * each fuse_search_* answers a request on one of its inodes and returns
 * true, or returns false for every other inode, so fuse_ops.c calls it
 * first.  Zero entry and attribute timeouts and uncached listings: the
 * answer is the caller's, never shared with the next user.
 */
#include "fuse_search.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "catalog.h"
#include "daemon.h"
#include "mesh_util.h"
#include "search_dir.h"

static struct search_dir *tree;
static pthread_once_t tree_once = PTHREAD_ONCE_INIT;

static void make_tree(void)
{
	tree = search_dir_new();
}

static struct search_dir *the_tree(void)
{
	pthread_once(&tree_once, make_tree);
	return tree;
}

static int req_groups(void *ctx, gid_t *list, int size)
{
	int n = fuse_req_getgroups(ctx, size, list);
	return n > size ? -1 : n;
}

static struct daemon_caller caller_of(fuse_req_t req)
{
	const struct fuse_ctx *c = fuse_req_ctx(req);
	return (struct daemon_caller){c->uid, c->gid, c->pid, req_groups, req};
}

struct visible_ctx {
	struct mesh_daemon *d;
	struct daemon_caller who;
	struct catalog *cat;
};

static bool visible(void *ctx, const struct index_hit *hit)
{
	const char *domain = hit->domain, *product = hit->product;   /* the daemon's catalog knows the rest */
	struct visible_ctx *v = ctx;
	const struct cat_node *dn = catalog_child(catalog_root(v->cat), domain);
	const struct cat_node *pn = dn ? catalog_child(dn, product) : NULL;
	return pn && daemon_may_discover(v->d, &v->who, pn);
}

static void attr_of(enum search_ino_kind kind, uint64_t ino, const char *text, struct stat *st)
{
	memset(st, 0, sizeof *st);
	st->st_ino = ino;
	st->st_nlink = kind == SEARCH_ROOT || kind == SEARCH_QUERY ? 2 : 1;
	st->st_blksize = 4096;
	switch (kind) {
	case SEARCH_README:
		st->st_mode = S_IFREG | 0444;
		st->st_size = (off_t)strlen(search_dir_readme());
		break;
	case SEARCH_LINK:
		st->st_mode = S_IFLNK | 0777;
		st->st_size = (off_t)strlen(text);
		break;
	default:
		st->st_mode = S_IFDIR | 0555;
	}
}

/* The caller's answer for a query: entries, or an error. */
static int answer(fuse_req_t req, const char *query, struct search_dir_entry **out, size_t *n)
{
	struct mesh_daemon *d = fuse_req_userdata(req);
	struct mesh_err err = {0};
	if (daemon_catch_up(d, &err))   /* hits from the index are filtered by a snapshot as fresh */
		mesh_err_clear(&err);
	struct visible_ctx v = {d, caller_of(req), daemon_catalog(d)};
	int rc = search_dir_answer(daemon_store(d), query, visible, &v, out, n, &err);
	catalog_unref(v.cat);
	return rc == -ENOENT ? 0 : rc;
}

static void reply_entry(fuse_req_t req, enum search_ino_kind kind, uint64_t ino, const char *text)
{
	struct fuse_entry_param e;
	memset(&e, 0, sizeof e);
	e.ino = ino;
	attr_of(kind, ino, text, &e.attr);
	fuse_reply_entry(req, &e);      /* timeouts 0: never cached across users */
}

bool fuse_search_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	char text[512];
	if (parent == FUSE_ROOT_ID) {
		if (strcmp(name, SEARCH_DIR_NAME))
			return false;
		reply_entry(req, SEARCH_ROOT, SEARCH_DIR_INO, NULL);
		return true;
	}
	if (!search_dir_owns(parent))
		return false;
	enum search_ino_kind kind = search_dir_kind(the_tree(), parent, text, sizeof text);
	if (kind == SEARCH_NONE) {
		fuse_reply_err(req, ENOENT);
		return true;
	}
	if (kind == SEARCH_ROOT) {
		if (!strcmp(name, "README"))
			reply_entry(req, SEARCH_README, SEARCH_README_INO, NULL);
		else
			reply_entry(req, SEARCH_QUERY, search_dir_query_ino(the_tree(), name), NULL);
		return true;
	}
	if (kind != SEARCH_QUERY) {
		fuse_reply_err(req, ENOTDIR);
		return true;
	}
	struct search_dir_entry *hits = NULL;
	size_t n = 0;
	int rc = answer(req, text, &hits, &n);
	size_t i = 0;
	while (!rc && i < n && strcmp(hits[i].name, name))
		i++;
	if (rc)
		fuse_reply_err(req, -rc == EINVAL ? ENOENT : EIO);
	else if (i == n)
		fuse_reply_err(req, ENOENT);
	else
		reply_entry(req, SEARCH_LINK, search_dir_link_ino(the_tree(), text, name, hits[i].target),
			    hits[i].target);
	free(hits);
	return true;
}

bool fuse_search_getattr(fuse_req_t req, fuse_ino_t ino)
{
	char text[512];
	if (!search_dir_owns(ino))
		return false;
	enum search_ino_kind kind = search_dir_kind(the_tree(), ino, text, sizeof text);
	if (kind == SEARCH_NONE) {
		fuse_reply_err(req, ENOENT);     /* forgotten: the kernel looks it up again */
		return true;
	}
	struct stat st;
	attr_of(kind, ino, text, &st);
	fuse_reply_attr(req, &st, 0);
	return true;
}

bool fuse_search_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char text[512];
	if (!search_dir_owns(ino))
		return false;
	enum search_ino_kind kind = search_dir_kind(the_tree(), ino, text, sizeof text);
	if (kind == SEARCH_LINK)
		fuse_reply_readlink(req, text);
	else
		fuse_reply_err(req, EINVAL);
	return true;
}

struct search_listing {
	uint64_t ino, parent;
	char query[512];
	struct search_dir_entry *entries;
	size_t n;
	bool root;
};

bool fuse_search_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	char text[512];
	if (!search_dir_owns(ino))
		return false;
	enum search_ino_kind kind = search_dir_kind(the_tree(), ino, text, sizeof text);
	if (kind == SEARCH_NONE) {
		fuse_reply_err(req, ENOENT);
		return true;
	}
	if (kind != SEARCH_ROOT && kind != SEARCH_QUERY) {
		fuse_reply_err(req, ENOTDIR);
		return true;
	}
	struct search_listing *l = xcalloc(1, sizeof *l);
	l->ino = ino;
	l->root = kind == SEARCH_ROOT;
	l->parent = l->root ? FUSE_ROOT_ID : SEARCH_DIR_INO;
	if (!l->root) {
		snprintf(l->query, sizeof l->query, "%s", text);
		int rc = answer(req, text, &l->entries, &l->n);
		if (rc && rc != -EINVAL) {
			free(l);
			fuse_reply_err(req, EIO);
			return true;
		}
	}
	fi->fh = (uintptr_t)l;
	fi->cache_readdir = 0;
	fi->keep_cache = 0;
	fuse_reply_open(req, fi);
	return true;
}

bool fuse_search_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi,
			 bool plus)
{
	if (!search_dir_owns(ino))
		return false;
	struct search_listing *l = (struct search_listing *)(uintptr_t)fi->fh;
	char *buf = xmalloc(size);
	size_t used = 0;
	for (off_t i = off;; i++) {
		const char *name;
		struct fuse_entry_param e;
		memset(&e, 0, sizeof e);
		if (i == 0) {
			name = ".";
			attr_of(SEARCH_QUERY, l->ino, NULL, &e.attr);
		} else if (i == 1) {
			name = "..";
			attr_of(SEARCH_ROOT, l->parent, NULL, &e.attr);
		} else if (l->root && i == 2) {
			name = "README";
			attr_of(SEARCH_README, SEARCH_README_INO, NULL, &e.attr);
			e.ino = SEARCH_README_INO;
		} else if (!l->root && (size_t)(i - 2) < l->n) {
			name = l->entries[i - 2].name;
			e.ino = search_dir_link_ino(the_tree(), l->query, name, l->entries[i - 2].target);
			attr_of(SEARCH_LINK, e.ino, l->entries[i - 2].target, &e.attr);
		} else {
			break;
		}
		size_t rem = size - used, len;
		if (plus && e.ino)
			len = fuse_add_direntry_plus(req, buf + used, rem, name, &e, i + 1);
		else if (plus)
			len = fuse_add_direntry_plus(req, buf + used, rem, name, &(struct fuse_entry_param){.attr = e.attr},
						     i + 1);
		else
			len = fuse_add_direntry(req, buf + used, rem, name, &e.attr, i + 1);
		if (len > rem)
			break;
		used += len;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
	return true;
}

bool fuse_search_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (!search_dir_owns(ino))
		return false;
	struct search_listing *l = (struct search_listing *)(uintptr_t)fi->fh;
	free(l->entries);
	free(l);
	fuse_reply_err(req, 0);
	return true;
}

bool fuse_search_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	char text[8];
	if (!search_dir_owns(ino))
		return false;
	enum search_ino_kind kind = search_dir_kind(the_tree(), ino, text, sizeof text);
	if (kind != SEARCH_README)
		fuse_reply_err(req, EISDIR);
	else if ((fi->flags & O_ACCMODE) != O_RDONLY)
		fuse_reply_err(req, EROFS);
	else {
		fi->fh = 0;          /* no daemon_file: read and release know the inode */
		fi->direct_io = 0;
		fi->keep_cache = 1;
		fuse_reply_open(req, fi);
	}
	return true;
}

bool fuse_search_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off)
{
	if (ino != SEARCH_README_INO)
		return false;
	const char *text = search_dir_readme();
	size_t len = strlen(text);
	if ((size_t)off >= len)
		fuse_reply_buf(req, NULL, 0);
	else
		fuse_reply_buf(req, text + off, len - (size_t)off < size ? len - (size_t)off : size);
	return true;
}

bool fuse_search_release(fuse_req_t req, fuse_ino_t ino)
{
	if (ino != SEARCH_README_INO)
		return false;
	fuse_reply_err(req, 0);
	return true;
}

bool fuse_search_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	if (!search_dir_owns(ino))
		return false;
	fuse_reply_err(req, mask & W_OK ? EROFS : 0);
	return true;
}
