/*
 * daemon.c - the daemon's state and decisions apart from FUSE (contract in
 * include/daemon.h): the current snapshot, the store watcher, and opening
 * files for a caller.
 *
 * Not here: FUSE replies (fuse_ops.c), option parsing (meshfs.c).
 */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <syslog.h>
#include <unistd.h>

#include "mesh_util.h"

struct mesh_daemon {
	struct daemon_options opts;
	char *store;
	int root_fd;                     /* the store's directory */
	pthread_mutex_t lock;            /* protects `current` */
	struct catalog *current;
	/* watcher */
	pthread_t watcher;
	bool watcher_running;
	int stop_fd;                     /* eventfd: wakes the watcher to stop */
	int inotify_fd;
	struct daemon_invalidate inval;
};

struct daemon_file {
	int fd;
	enum daemon_decision decision;
	bool maskable;                   /* the file has classified columns */
	bool passthrough;
	uint64_t bytes, reads;           /* served by the daemon (atomics) */
};

const char *daemon_decision_name(enum daemon_decision d)
{
	return d == DECISION_ALLOW ? "allow" : d == DECISION_MASK ? "mask" : "deny";
}

int daemon_open(const struct daemon_options *opts, struct mesh_daemon **out, struct mesh_err *err)
{
	int rc = store_check(opts->store, err);
	if (rc)
		return rc;
	struct mesh_daemon *d = xcalloc(1, sizeof *d);
	d->opts = *opts;
	d->store = xstrdup(opts->store);
	d->opts.store = d->store;
	if (d->opts.poll_interval <= 0)
		d->opts.poll_interval = 1.0;
	d->stop_fd = d->inotify_fd = -1;
	pthread_mutex_init(&d->lock, NULL);
	d->root_fd = open(d->store, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d->root_fd < 0) {
		rc = mesh_errf(err, -errno, "%s: %s", d->store, strerror(errno));
		daemon_close(d);
		return rc;
	}
	rc = catalog_scan(d->store, NULL, &d->current, err);
	if (rc) {
		daemon_close(d);
		return rc;
	}
	*out = d;
	return 0;
}

struct catalog *daemon_catalog(struct mesh_daemon *d)
{
	pthread_mutex_lock(&d->lock);
	struct catalog *c = catalog_ref(d->current);
	pthread_mutex_unlock(&d->lock);
	return c;
}

/* Tell the kernel what changed between two snapshots: a directory whose
 * set of children (or whose `latest` target, or a version's state)
 * changed loses its cached listing and the changed names. */
static void invalidate_changes(struct mesh_daemon *d, const struct catalog *old,
			       const struct catalog *new)
{
	if (!d->inval.inode)
		return;
	const struct cat_node *stack[4096];
	size_t top = 0;
	stack[top++] = catalog_root(old);
	while (top) {
		const struct cat_node *o = stack[--top];
		const struct cat_node *n = catalog_get(new, o->ino);
		bool changed = !n || n->n_children != o->n_children;
		for (uint32_t i = 0; i < o->n_children; i++) {
			const struct cat_node *oc = o->children[i];
			const struct cat_node *nc = n ? catalog_child(n, oc->name) : NULL;
			bool gone = !nc || (oc->kind == CAT_LATEST && strcmp(oc->target, nc->target)) ||
				    oc->state != nc->state || oc->restricted != nc->restricted;
			if (gone) {
				changed = true;
				d->inval.entry(d->inval.ctx, o->ino, oc->name);
			}
			/* a file whose content moved (a deprecated contract's
			 * re-stated copy) loses its cached attributes and pages */
			if (nc && oc->kind == CAT_FILE && (oc->size != nc->size || strcmp(oc->backing, nc->backing)))
				d->inval.inode(d->inval.ctx, oc->ino);
			if (nc && oc->kind != CAT_FILE && oc->kind != CAT_LATEST && top < 4096)
				stack[top++] = oc;
		}
		if (changed)
			d->inval.inode(d->inval.ctx, o->ino);
	}
}

int daemon_rescan(struct mesh_daemon *d, struct mesh_err *err)
{
	struct catalog *old = daemon_catalog(d);
	struct catalog *fresh = NULL;
	int rc = catalog_scan(d->store, old, &fresh, err);
	if (rc) {
		catalog_unref(old);
		return rc;
	}
	pthread_mutex_lock(&d->lock);
	struct catalog *prev = d->current;
	d->current = fresh;
	pthread_mutex_unlock(&d->lock);
	invalidate_changes(d, old, fresh);
	catalog_unref(prev);
	catalog_unref(old);
	return 0;
}

/* The watcher: inotify tells a local store's changes at once; polling the
 * generation file catches changes made by other hosts on a shared
 * filesystem, where inotify sees nothing. */
static void *watcher_main(void *arg)
{
	struct mesh_daemon *d = arg;
	int timeout_ms = (int)(d->opts.poll_interval * 1000);
	for (;;) {
		struct pollfd fds[2] = {{d->stop_fd, POLLIN, 0}, {d->inotify_fd, POLLIN, 0}};
		int n = poll(fds, d->inotify_fd >= 0 ? 2 : 1, timeout_ms);
		if (n < 0 && errno != EINTR)
			break;
		if (fds[0].revents)
			break;
		if (n > 0 && fds[1].revents) {
			char buf[4096];
			while (read(d->inotify_fd, buf, sizeof buf) > 0)
				;
		}
		char gen[64] = "";
		store_read_generation(d->store, gen, sizeof gen);
		struct catalog *cur = daemon_catalog(d);
		bool stale = strcmp(gen, catalog_generation(cur)) != 0;
		catalog_unref(cur);
		if (stale) {
			struct mesh_err err = {0};
			if (daemon_rescan(d, &err))
				syslog(LOG_ERR, "rescan of %s failed: %s", d->store, err.msg);
		}
	}
	return NULL;
}

int daemon_start(struct mesh_daemon *d, const struct daemon_invalidate *inval, struct mesh_err *err)
{
	if (inval)
		d->inval = *inval;
	d->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (d->stop_fd < 0)
		return mesh_errf(err, -errno, "eventfd: %s", strerror(errno));
	d->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (d->inotify_fd >= 0 &&
	    inotify_add_watch(d->inotify_fd, d->store, IN_MOVED_TO | IN_CLOSE_WRITE | IN_CREATE | IN_MODIFY) < 0) {
		close(d->inotify_fd);
		d->inotify_fd = -1;   /* polling alone still works */
	}
	int rc = pthread_create(&d->watcher, NULL, watcher_main, d);
	if (rc)
		return mesh_errf(err, -rc, "watcher thread: %s", strerror(rc));
	d->watcher_running = true;
	return 0;
}

void daemon_close(struct mesh_daemon *d)
{
	if (!d)
		return;
	if (d->watcher_running) {
		uint64_t one = 1;
		if (write(d->stop_fd, &one, sizeof one) < 0)
			syslog(LOG_ERR, "cannot stop the watcher: %m");
		pthread_join(d->watcher, NULL);
	}
	if (d->stop_fd >= 0)
		close(d->stop_fd);
	if (d->inotify_fd >= 0)
		close(d->inotify_fd);
	if (d->root_fd >= 0)
		close(d->root_fd);
	catalog_unref(d->current);
	pthread_mutex_destroy(&d->lock);
	free(d->store);
	free(d);
}

double daemon_entry_timeout(const struct cat_node *n)
{
	/* Releases never change, and every change to a directory's listing
	 * reaches the kernel as an invalidation from the watcher, so the
	 * kernel may keep entries for a day.  `latest` moves: a second is the
	 * safety net behind its invalidation.  Restricted products differ per
	 * user: never cached. */
	if (n->restricted)
		return 0;
	return n->kind == CAT_LATEST ? 1 : 86400;
}

bool daemon_cache_listing(const struct cat_node *dir)
{
	/* a listing that hides restricted products differs per user */
	return !dir->restricted && !dir->has_restricted;
}

mode_t daemon_node_mode(const struct mesh_daemon *d, const struct cat_node *n)
{
	(void)d;
	switch (n->kind) {
	case CAT_FILE:
		return S_IFREG | 0444;
	case CAT_LATEST:
		return S_IFLNK | 0777;
	default:
		return S_IFDIR | 0555;
	}
}

bool daemon_may_discover(struct mesh_daemon *d, const struct daemon_caller *who,
			 const struct cat_node *n)
{
	(void)d;
	(void)who;
	(void)n;
	return true;
}

/* Open a release file below the store root without following any symlink
 * and without leaving the store (openat2 RESOLVE_BENEATH|NO_SYMLINKS). */
static int open_backing(struct mesh_daemon *d, const char *relpath)
{
	struct open_how how = {
		.flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	long fd = syscall(SYS_openat2, d->root_fd, relpath, &how, sizeof how);
	if (fd < 0 && errno == ENOSYS)
		fd = openat(d->root_fd, relpath, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat((int)fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close((int)fd);
		return -EACCES;
	}
	return (int)fd;
}

int daemon_file_open(struct mesh_daemon *d, const struct daemon_caller *who,
		     const struct cat_node *n, int flags, struct daemon_file **out,
		     bool *direct_io, bool *keep_cache)
{
	(void)who;
	if (n->kind != CAT_FILE)
		return -EISDIR;
	if ((flags & O_ACCMODE) != O_RDONLY || (flags & (O_TRUNC | O_CREAT)))
		return -EROFS;
	int fd = open_backing(d, n->backing);
	if (fd < 0)
		return fd;
	struct daemon_file *f = xcalloc(1, sizeof *f);
	f->fd = fd;
	f->decision = DECISION_ALLOW;
	f->maskable = n->n_columns > 0;
	*direct_io = false;
	*keep_cache = true;
	*out = f;
	return 0;
}

ssize_t daemon_file_read(struct daemon_file *f, char *buf, size_t size, off_t off)
{
	ssize_t r;
	do
		r = pread(f->fd, buf, size, off);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	__atomic_add_fetch(&f->bytes, (uint64_t)r, __ATOMIC_RELAXED);
	__atomic_add_fetch(&f->reads, 1, __ATOMIC_RELAXED);
	return r;
}

int daemon_file_fd(const struct daemon_file *f)
{
	return f->decision == DECISION_ALLOW ? f->fd : -1;
}

bool daemon_file_passthrough_ok(const struct daemon_file *f)
{
	return f->decision == DECISION_ALLOW && !f->maskable;
}

void daemon_file_set_passthrough(struct daemon_file *f, bool on)
{
	f->passthrough = on;
}

bool daemon_file_is_passthrough(const struct daemon_file *f)
{
	return f->passthrough;
}

void daemon_file_release(struct mesh_daemon *d, struct daemon_file *f)
{
	(void)d;
	if (!f)
		return;
	close(f->fd);
	free(f);
}

int daemon_access(struct mesh_daemon *d, const struct daemon_caller *who,
		  const struct cat_node *n, int mask)
{
	(void)d;
	(void)who;
	if (mask & W_OK)
		return -EROFS;
	if ((mask & X_OK) && n->kind == CAT_FILE)
		return -EACCES;
	return 0;
}
