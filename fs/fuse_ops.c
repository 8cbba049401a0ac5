/*
 * fuse_ops.c - FUSE low-level operations (glue only, see include/fuse_ops.h).
 *
 * Every request looks its inode up in the current catalog snapshot, asks
 * the daemon module what the caller may do, and replies.  Writes of any
 * kind get EROFS.  Directory handles pin the snapshot they were opened on,
 * so readdir offsets stay valid while a listing is in progress.
 */
#include "fuse_ops.h"
#include "mesh_xattr.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "caller_cache.h"
#include "fuse_passthrough.h"
#include "fuse_search.h"
#include "mesh_util.h"

#define READ_BUF_SIZE (1u << 20)

static struct mesh_daemon *daemon_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* The caller: uid/gid/pid from the request; supplementary groups on demand,
 * from the per-task cache (caller_cache.h says why a cached answer is the
 * caller's own): fuse_req_getgroups would render /proc twice per request. */
struct caller_buf {
	struct daemon_caller who;
};

static struct caller_cache *callers;   /* made in op_init, freed in op_destroy */

static int req_groups(void *ctx, gid_t *list, int size)
{
	const struct fuse_ctx *fc = fuse_req_ctx(ctx);
	return caller_cache_groups(callers, fc->pid, fc->uid, fc->gid, list, size);
}

static void get_caller(fuse_req_t req, struct caller_buf *c)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	c->who.uid = ctx->uid;
	c->who.gid = ctx->gid;
	c->who.pid = ctx->pid;
	c->who.get_groups = req_groups;
	c->who.ctx = req;
}

static void fill_attr(struct mesh_daemon *d, const struct cat_node *n, struct stat *st)
{
	memset(st, 0, sizeof *st);
	st->st_ino = n->ino;
	st->st_mode = daemon_node_mode(d, n);
	st->st_nlink = n->nlink;
	st->st_size = (off_t)n->size;
	st->st_blksize = 4096;
	st->st_blocks = (blkcnt_t)((n->size + 511) / 512);
	st->st_mtim = st->st_ctim = st->st_atim = n->mtime;
}

static void fill_entry(struct mesh_daemon *d, const struct cat_node *n, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof *e);
	e->ino = n->ino;
	e->attr_timeout = e->entry_timeout = daemon_entry_timeout(d, n);
	fill_attr(d, n, &e->attr);
}

/* The inode and size `who` sees at n (its view's, for a masked reader;
 * its card's); true when that inode's bytes are fixed and known. */
static bool fill_for_caller(struct mesh_daemon *d, const struct daemon_caller *who, const struct cat_node *n,
			    struct stat *st)
{
	uint64_t ino, size;
	bool fixed = daemon_node_for(d, who, n, &ino, &size);
	st->st_ino = ino;
	st->st_size = (off_t)size;
	st->st_blocks = (blkcnt_t)((size + 511) / 512);
	return fixed;
}

/* Look up an inode (daemon_node: a view inode gives its file's node and,
 * in *view_size, the view's size, in *fixed whether it is a card whose
 * bytes are known; a product comes loaded when `load`); the catalog it is
 * in stays referenced in *cat until the caller unrefs it. */
static const struct cat_node *get_node_sized(fuse_req_t req, fuse_ino_t ino, bool load, struct catalog **cat,
					     uint64_t *view_size, bool *fixed)
{
	return daemon_node(daemon_of(req), ino, load, cat, view_size, fixed);
}

static const struct cat_node *get_node(fuse_req_t req, fuse_ino_t ino, struct catalog **cat)
{
	uint64_t size;
	bool fixed;
	return get_node_sized(req, ino, true, cat, &size, &fixed);
}

/* get_node found nothing at `ino`: ENOENT, or ESTALE for an inode the
 * kernel holds whose node moved or went (it looks the path up again) */
static void reply_missing(fuse_req_t req, fuse_ino_t ino)
{
	fuse_reply_err(req, -daemon_missing_error(daemon_of(req), ino));
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* More requests in flight helps readahead and parallel readers. */
	conn->max_background = 64;
	conn->congestion_threshold = 48;
	conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
	/* `latest` targets kept by the kernel; the watcher invalidates them */
	if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
		conn->want |= FUSE_CAP_CACHE_SYMLINKS;
	/* FUSE_CAP_NO_OPENDIR_SUPPORT is not asked for: it is connection-wide
	 * and makes the kernel cache every listing for every user, while
	 * restricted domains and /.search list per caller and per query. */
	callers = caller_cache_new("/proc", CALLER_CACHE_TTL);
}

static void op_destroy(void *userdata)
{
	(void)userdata;
	caller_cache_free(callers);
	callers = NULL;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	if (fuse_search_lookup(req, parent, name))
		return;
	struct catalog *cat;
	const struct cat_node *dir = get_node(req, parent, &cat);
	if (!dir) {
		reply_missing(req, parent);
		return;
	}
	const struct cat_node *n = catalog_child(dir, name);
	struct caller_buf c;
	get_caller(req, &c);
	if (!n || !daemon_may_discover(daemon_of(req), &c.who, n)) {
		fuse_reply_err(req, ENOENT);
	} else {
		struct fuse_entry_param e;
		fill_entry(daemon_of(req), n, &e);
		if (!daemon_node_shared(daemon_of(req), n)) {
			bool fixed = fill_for_caller(daemon_of(req), &c.who, n, &e.attr);
			e.ino = e.attr.st_ino;
			e.attr_timeout = daemon_attr_timeout(daemon_of(req), n, e.ino, fixed);
		}
		if (e.ino == n->ino)
			daemon_entry_sent(daemon_of(req), n);
		fuse_reply_entry(req, &e);
	}
	catalog_unref(cat);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (fuse_search_getattr(req, ino))
		return;
	(void)fi;
	struct catalog *cat;
	uint64_t view_size = 0;
	bool fixed;
	const struct cat_node *n = get_node_sized(req, ino, false, &cat, &view_size, &fixed);
	if (!n) {
		reply_missing(req, ino);
		return;
	}
	struct stat st;
	fill_attr(daemon_of(req), n, &st);
	if (ino != n->ino) {   /* a view */
		st.st_ino = ino;
		st.st_size = (off_t)view_size;
		st.st_blocks = (blkcnt_t)((view_size + 511) / 512);
	}
	fuse_reply_attr(req, &st, daemon_attr_timeout(daemon_of(req), n, ino, fixed));
	catalog_unref(cat);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	if (fuse_search_readlink(req, ino))
		return;
	struct catalog *cat;
	const struct cat_node *n = get_node(req, ino, &cat);
	if (!n) {
		reply_missing(req, ino);
		return;
	}
	if (n->kind == CAT_LATEST)
		fuse_reply_readlink(req, n->target);
	else
		fuse_reply_err(req, EINVAL);
	catalog_unref(cat);
}

struct dir_handle {
	struct catalog *cat;          /* pinned: offsets index its children */
	const struct cat_node *node;
};

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (fuse_search_opendir(req, ino, fi))
		return;
	struct catalog *cat;
	const struct cat_node *n = get_node(req, ino, &cat);
	if (!n) {
		reply_missing(req, ino);
		return;
	}
	if (n->kind == CAT_FILE || n->kind == CAT_LATEST) {
		catalog_unref(cat);
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	struct dir_handle *h = xcalloc(1, sizeof *h);
	h->cat = cat;
	h->node = n;
	fi->fh = (uintptr_t)h;
	/* Listings change only when the store does, and the watcher then
	 * invalidates them; a listing that hides restricted products differs
	 * per user and is never cached. */
	fi->cache_readdir = daemon_cache_listing(daemon_of(req), n);
	fi->keep_cache = fi->cache_readdir;
	fuse_reply_open(req, fi);
}

static void do_readdir(fuse_req_t req, size_t size, off_t off, struct fuse_file_info *fi, bool plus)
{
	struct dir_handle *h = (struct dir_handle *)(uintptr_t)fi->fh;
	struct mesh_daemon *d = daemon_of(req);
	struct caller_buf c;
	get_caller(req, &c);
	char *buf = xmalloc(size);
	size_t used = 0;
	for (off_t i = off; ; i++) {
		const struct cat_node *n = NULL;
		const char *name;
		struct fuse_entry_param e;
		memset(&e, 0, sizeof e);
		if (i == 0) {
			name = ".";
			e.attr.st_ino = h->node->ino;
			e.attr.st_mode = S_IFDIR;
		} else if (i == 1) {
			name = "..";
			e.attr.st_ino = h->node->parent ? h->node->parent->ino : h->node->ino;
			e.attr.st_mode = S_IFDIR;
		} else if ((size_t)(i - 2) < h->node->n_children) {
			n = h->node->children[i - 2];
			if (!daemon_may_discover(d, &c.who, n))
				continue;
			name = n->name;
			fill_entry(d, n, &e);
		} else {
			break;
		}
		size_t rem = size - used, len;
		if (plus) {
			if (!n) {
				/* "." and "..": no lookup count, attributes only */
				struct fuse_entry_param dot = {.attr = e.attr};
				len = fuse_add_direntry_plus(req, buf + used, rem, name, &dot, i + 1);
			} else if (!daemon_node_shared(d, n)) {
				/* its inode differs per reader: no entry, the
				 * kernel looks it up for each caller */
				struct fuse_entry_param none = {.attr = e.attr};
				len = fuse_add_direntry_plus(req, buf + used, rem, name, &none, i + 1);
			} else {
				len = fuse_add_direntry_plus(req, buf + used, rem, name, &e, i + 1);
			}
		} else {
			len = fuse_add_direntry(req, buf + used, rem, name, &e.attr, i + 1);
		}
		if (len > rem)
			break;
		if (plus && n && daemon_node_shared(d, n))
			daemon_entry_sent(d, n);   /* an entry with its inode: one lookup */
		used += len;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	if (fuse_search_readdir(req, ino, size, off, fi, false))
		return;
	(void)ino;
	do_readdir(req, size, off, fi, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	if (fuse_search_readdir(req, ino, size, off, fi, true))
		return;
	(void)ino;
	do_readdir(req, size, off, fi, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (fuse_search_releasedir(req, ino, fi))
		return;
	(void)ino;
	struct dir_handle *h = (struct dir_handle *)(uintptr_t)fi->fh;
	if (h)
		catalog_unref(h->cat);
	free(h);
	fuse_reply_err(req, 0);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (fuse_search_open(req, ino, fi))
		return;
	struct catalog *cat;
	const struct cat_node *n = get_node(req, ino, &cat);
	if (!n) {
		reply_missing(req, ino);
		return;
	}
	struct caller_buf c;
	get_caller(req, &c);
	struct daemon_file *f;
	bool keep_cache;
	int rc = daemon_file_open(daemon_of(req), &c.who, n, ino, fi->flags, &f, &keep_cache);
	catalog_unref(cat);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	fi->fh = (uintptr_t)f;
	if (daemon_file_passthrough_ok(f) && passthrough_active()) {
		/* the id is recorded before the reply: a RELEASE may race us */
		rc = passthrough_reply_open(req, ino, daemon_file_fd(f), fi->fh, daemon_file_backing_id(f));
		if (rc == 0)
			return;
		*daemon_file_backing_id(f) = 0;
	}
	fi->keep_cache = keep_cache;
	fi->noflush = 1;   /* read-only: closing needs no FLUSH round trip */
	if (fuse_reply_open(req, fi) == -ENOENT)   /* the opener was interrupted */
		daemon_file_release(daemon_of(req), f);
}

/* One read buffer per worker thread: no allocation per READ. */
static pthread_key_t read_buf_key;
static pthread_once_t read_buf_once = PTHREAD_ONCE_INIT;

static void make_read_buf_key(void)
{
	pthread_key_create(&read_buf_key, free);
}

static char *thread_read_buf(void)
{
	pthread_once(&read_buf_once, make_read_buf_key);
	char *buf = pthread_getspecific(read_buf_key);
	if (!buf) {
		buf = xmalloc(READ_BUF_SIZE);
		pthread_setspecific(read_buf_key, buf);
	}
	return buf;
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	if (fuse_search_read(req, ino, size, off))
		return;
	(void)ino;
	struct daemon_file *f = (struct daemon_file *)(uintptr_t)fi->fh;
	char *buf = thread_read_buf();
	if (size > READ_BUF_SIZE)
		size = READ_BUF_SIZE;
	ssize_t r = daemon_file_read(f, buf, size, off);
	if (r < 0)
		fuse_reply_err(req, (int)-r);
	else
		fuse_reply_buf(req, buf, (size_t)r);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (fuse_search_release(req, ino))
		return;
	struct daemon_file *f = (struct daemon_file *)(uintptr_t)fi->fh;
	if (*daemon_file_backing_id(f) > 0)
		passthrough_release(ino, *daemon_file_backing_id(f));
	daemon_file_release(daemon_of(req), f);
	fuse_reply_err(req, 0);
}

static void op_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	if (fuse_search_access(req, ino, mask))
		return;
	struct catalog *cat;
	uint64_t view_size;
	const struct cat_node *n = get_node_sized(req, ino, false, &cat, &view_size, NULL);
	if (!n) {
		reply_missing(req, ino);
		return;
	}
	struct caller_buf c;
	get_caller(req, &c);
	fuse_reply_err(req, -daemon_access(daemon_of(req), &c.who, n, mask));
	catalog_unref(cat);
}

/* The kernel drops inodes it looked up: the daemon stops answering for
 * those below products that are not loaded (daemon.h). */
static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	daemon_forget(daemon_of(req), ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		daemon_forget(daemon_of(req), forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	(void)ino;
	struct catalog *cat = daemon_catalog(daemon_of(req));
	struct statvfs sv;
	memset(&sv, 0, sizeof sv);
	sv.f_bsize = sv.f_frsize = 4096;
	sv.f_files = catalog_node_count(cat);
	sv.f_namemax = 255;
	sv.f_flag = ST_RDONLY | ST_NOSUID | ST_NODEV;
	catalog_unref(cat);
	fuse_reply_statfs(req, &sv);
}

/* Extended attributes (read-only): user.mesh.domain, .product, .owner,
 * .version, .status (lifecycle), .sunset, .reason, .contract_id,
 * .published_at and .classification (mesh_xattr.h); user.mesh.sha256 and user.mesh.view on files from the
 * daemon, for the caller (a view's are its own; the clear file's hash only
 * to those who read it clear). */
static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	if (!mesh_xattr_namespace(name)) {   /* the same for every node and caller */
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	struct catalog *cat;
	const struct cat_node *n = get_node(req, ino, &cat);
	if (!n) {
		reply_missing(req, ino);
		return;
	}
	if (n->kind == CAT_FILE && (!strcmp(name, "user.mesh.sha256") || !strcmp(name, "user.mesh.view"))) {
		char buf[4096];
		struct caller_buf c;
		get_caller(req, &c);
		int len = daemon_file_xattr(daemon_of(req), &c.who, n, ino, name, buf, size < sizeof buf ? size : sizeof buf);
		if (len < 0)
			fuse_reply_err(req, -len);
		else if (size == 0)
			fuse_reply_xattr(req, (size_t)len);
		else
			fuse_reply_buf(req, buf, (size_t)len);
		catalog_unref(cat);
		return;
	}
	char value[4096];
	int len = mesh_xattr_get(daemon_store(daemon_of(req)), n, name, value, sizeof value);
	if (len < 0)
		fuse_reply_err(req, -len);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)len);
	else if (size < (size_t)len)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, value, (size_t)len);
	catalog_unref(cat);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct catalog *cat;
	const struct cat_node *n = get_node(req, ino, &cat);
	if (!n) {
		reply_missing(req, ino);
		return;
	}
	char list[1024];
	size_t len = mesh_xattr_list(daemon_store(daemon_of(req)), n, list, sizeof list);
	if (n->kind == CAT_FILE) {
		/* sha256 and view are the caller's (daemon.c): listed exactly
		 * when getxattr answers them */
		struct caller_buf c;
		get_caller(req, &c);
		size_t kept = 0;
		for (size_t i = 0; i < len;) {
			size_t k = strlen(list + i) + 1;
			if (strcmp(list + i, "user.mesh.sha256"))
				memmove(list + kept, list + i, k), kept += k;
			i += k;
		}
		len = kept;
		static const char *const own[] = {"user.mesh.sha256", "user.mesh.view"};
		for (int i = 0; i < 2; i++) {
			size_t k = strlen(own[i]) + 1;
			if (len + k <= sizeof list &&
			    daemon_file_xattr(daemon_of(req), &c.who, n, ino, own[i], NULL, 0) > 0) {
				memcpy(list + len, own[i], k);
				len += k;
			}
		}
	}
	catalog_unref(cat);
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (size < len)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, list, len);
}

/* ---- every write is refused ---- */

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	(void)ino, (void)attr, (void)to_set, (void)fi;
	fuse_reply_err(req, EROFS);
}

static void op_mknod(fuse_req_t req, fuse_ino_t p, const char *n, mode_t m, dev_t r)
{
	(void)p, (void)n, (void)m, (void)r;
	fuse_reply_err(req, EROFS);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t p, const char *n, mode_t m)
{
	(void)p, (void)n, (void)m;
	fuse_reply_err(req, EROFS);
}

static void op_unlink(fuse_req_t req, fuse_ino_t p, const char *n)
{
	(void)p, (void)n;
	fuse_reply_err(req, EROFS);
}

static void op_symlink(fuse_req_t req, const char *l, fuse_ino_t p, const char *n)
{
	(void)l, (void)p, (void)n;
	fuse_reply_err(req, EROFS);
}

static void op_rename(fuse_req_t req, fuse_ino_t p, const char *n, fuse_ino_t np,
		      const char *nn, unsigned int f)
{
	(void)p, (void)n, (void)np, (void)nn, (void)f;
	fuse_reply_err(req, EROFS);
}

static void op_link(fuse_req_t req, fuse_ino_t i, fuse_ino_t np, const char *nn)
{
	(void)i, (void)np, (void)nn;
	fuse_reply_err(req, EROFS);
}

static void op_write(fuse_req_t req, fuse_ino_t i, const char *b, size_t s, off_t o,
		     struct fuse_file_info *fi)
{
	(void)i, (void)b, (void)s, (void)o, (void)fi;
	fuse_reply_err(req, EROFS);
}

static void op_create(fuse_req_t req, fuse_ino_t p, const char *n, mode_t m,
		      struct fuse_file_info *fi)
{
	(void)p, (void)n, (void)m, (void)fi;
	fuse_reply_err(req, EROFS);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t i, const char *n, const char *v, size_t s, int f)
{
	(void)i, (void)n, (void)v, (void)s, (void)f;
	fuse_reply_err(req, EROFS);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t i, const char *n)
{
	(void)i, (void)n;
	fuse_reply_err(req, EROFS);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t i, int m, off_t o, off_t l,
			 struct fuse_file_info *fi)
{
	(void)i, (void)m, (void)o, (void)l, (void)fi;
	fuse_reply_err(req, EROFS);
}

const struct fuse_lowlevel_ops meshfs_ops = {
	.init = op_init,
	.destroy = op_destroy,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.readlink = op_readlink,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.releasedir = op_releasedir,
	.open = op_open,
	.read = op_read,
	.release = op_release,
	.access = op_access,
	.statfs = op_statfs,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.setattr = op_setattr,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_unlink,
	.symlink = op_symlink,
	.rename = op_rename,
	.link = op_link,
	.write = op_write,
	.create = op_create,
	.setxattr = op_setxattr,
	.removexattr = op_removexattr,
	.fallocate = op_fallocate,
};

static void inval_inode(void *ctx, uint64_t ino)
{
	fuse_lowlevel_notify_inval_inode(ctx, ino, 0, 0);
}

static void inval_entry(void *ctx, uint64_t parent, const char *name)
{
	fuse_lowlevel_notify_inval_entry(ctx, parent, name, strlen(name));
}

struct daemon_invalidate meshfs_invalidator(struct fuse_session *se)
{
	return (struct daemon_invalidate){.inode = inval_inode, .entry = inval_entry, .ctx = se};
}
