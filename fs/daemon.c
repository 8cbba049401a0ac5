/*
 * daemon.c - the daemon's state and decisions apart from FUSE (contract in
 * include/daemon.h): the current snapshot, the store watcher, and opening
 * files for a caller.
 *
 * Not here: FUSE replies (fuse_ops.c), option parsing (meshfs.c).
 */
#include "daemon.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <syslog.h>
#include <unistd.h>

#include "backing_cache.h"
#include "card.h"
#include "card_reader.h"
#include "identity.h"
#include "index.h"
#include "mesh_ino.h"
#include "pgsink.h"
#include "mesh_util.h"
#include "policy.h"
#include "snapshot.h"
#include "snapshot_cache.h"
#include "state_dir.h"
#include "unique.h"
#include "usage.h"
#include "view_cache.h"
#include "view_inodes.h"
#include "view_mask.h"
#include "view_sidecar.h"
#include "yamltree.h"

struct mesh_daemon {
	struct daemon_options opts;
	char *store;
	int root_fd;                     /* the store's directory */
	pthread_mutex_t lock;            /* protects `current`, `policy`, `masks` */
	struct catalog *current;
	/* where `current` came from (snapshot.h), under `lock` */
	bool from_index;
	char walk_reason[8192];          /* the last reason logged for a walk */
	bool settle_pending;             /* an index not settled: build again at settle_at */
	struct timespec settle_at;       /* CLOCK_MONOTONIC */
	struct snapshot_cache *cache;    /* loaded products, the inodes the kernel holds */
	pthread_mutex_t build_lock;      /* one rescan at a time: protects `memory` */
	struct snapshot_memory memory;   /* what the last build leaves the next (snapshot.h) */
	struct policy_ref *policy;       /* NULL: no valid policy ever loaded */
	atomic_bool policy_loaded;       /* policy != NULL, readable without the lock */
	char policy_error[MESH_ERR_MAX];
	/* masked views (views.c's cache; the table maps view inodes to
	 * their files, under `lock`) */
	struct view_cache *views;        /* NULL: masked reads are denied */
	char views_error[MESH_ERR_MAX];
	unsigned char secret[VIEW_SECRET_LEN];
	bool have_secret;
	char secret_error[MESH_ERR_MAX];
	struct view_inodes *vinos;       /* view and card inodes given to the kernel (view_inodes.h) */
	/* watcher */
	pthread_t watcher;
	bool watcher_running;
	int stop_fd;                     /* eventfd: wakes the watcher to stop */
	int inotify_fd;
	struct daemon_invalidate inval;
	struct usage *usage;             /* NULL until daemon_start, or with no_usage */
	struct backing_cache *backing;   /* kept descriptors of release files */
	_Atomic int poll_ms;             /* ops: changed by daemon_reload (SIGHUP) */
	struct pgsink *sink;             /* ops: usage to PostgreSQL, or NULL */
	pthread_mutex_t files_lock;      /* ops: protects `files` */
	struct daemon_file *files;       /* open files, released at close if the
					    kernel never sent RELEASE (unmount) */
};

/* The product node above n (NULL above products). */
static const struct cat_node *product_of(const struct cat_node *n)
{
	while (n && n->kind != CAT_PRODUCT)
		n = n->parent;
	return n;
}

/* A policy snapshot shared by the opens that decided with it. */
struct policy_ref {
	struct policy *p;
	int refs;                        /* under the daemon's lock */
};

struct daemon_file {
	int fd;                          /* the release file, or the reader's view */
	struct backing_ref *shared;      /* a release file's: fd is the kept one (backing_cache.h), not ours to close */
	enum daemon_decision decision;
	int passthrough_id;              /* > 0: served by kernel passthrough */
	bool rewritten;                  /* outside a release (product.yaml): meshfs rewrites it, so
					    no passthrough backing (kept per inode) and no kept pages */
	uint64_t usage_handle;
	uint64_t bytes, reads;           /* served by the daemon (atomics) */
	struct daemon_file *prev, *next; /* the daemon's open files */
};

static void policy_ref_put(struct mesh_daemon *d, struct policy_ref *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&d->lock);
	bool last = --r->refs == 0;
	pthread_mutex_unlock(&d->lock);
	if (last) {
		policy_free(r->p);
		free(r);
	}
}

static struct policy_ref *policy_get(struct mesh_daemon *d)
{
	pthread_mutex_lock(&d->lock);
	struct policy_ref *r = d->policy;
	if (r)
		r->refs++;
	pthread_mutex_unlock(&d->lock);
	return r;
}

/* (Re)load the policy; a failed load keeps the previous snapshot. */
static void reload_policy(struct mesh_daemon *d)
{
	if (d->opts.open_mesh)
		return;
	struct policy *p = NULL;
	struct mesh_err err = {0};
	char *warnings = NULL;
	if (policy_load(d->store, &p, &warnings, &err)) {
		syslog(LOG_ERR, "policy not reloaded, keeping the previous one%s: %s",
		       d->policy ? "" : " (none: data reads are denied)", err.msg);
		pthread_mutex_lock(&d->lock);
		snprintf(d->policy_error, sizeof d->policy_error, "%s", err.msg);
		pthread_mutex_unlock(&d->lock);
		return;
	}
	if (warnings && *warnings)
		syslog(LOG_WARNING, "policy: %s", warnings);
	free(warnings);
	struct policy_ref *r = xcalloc(1, sizeof *r);
	r->p = p;
	r->refs = 1;
	pthread_mutex_lock(&d->lock);
	struct policy_ref *old = d->policy;
	d->policy = r;
	atomic_store_explicit(&d->policy_loaded, true, memory_order_release);
	d->policy_error[0] = '\0';
	pthread_mutex_unlock(&d->lock);
	policy_ref_put(d, old);
}

const char *daemon_decision_name(enum daemon_decision d)
{
	return d == DECISION_ALLOW ? "allow" : d == DECISION_MASK ? "mask" : "deny";
}

static int usage_places(const struct mesh_daemon *d, char *host, size_t host_size, char *dir, size_t dir_size,
			char *ship, size_t ship_size, struct mesh_err *err);
static int open_backing_cb(void *ctx, const char *relpath);

/* A new snapshot (snapshot.h), logging where it came from when that
 * changes: a walk of the store says why the index was not used. */
static int build_snapshot(struct mesh_daemon *d, const struct catalog *previous, struct catalog **out,
			  struct mesh_err *err)
{
	struct snapshot_result res;
	struct timespec w0, c0, w1, c1;
	clock_gettime(CLOCK_MONOTONIC, &w0);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
	int rc = snapshot_build(d->store, d->opts.state_dir, previous, &d->memory, out, &res, err);
	if (rc)
		return rc;
	clock_gettime(CLOCK_MONOTONIC, &w1);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
	double wall_ms = (double)(w1.tv_sec - w0.tv_sec) * 1e3 + (double)(w1.tv_nsec - w0.tv_nsec) / 1e6;
	double cpu_ms = (double)(c1.tv_sec - c0.tv_sec) * 1e3 + (double)(c1.tv_nsec - c0.tv_nsec) / 1e6;
	pthread_mutex_lock(&d->lock);
	bool was_index = d->from_index, first = !previous;
	bool new_reason = !res.from_index && strncmp(d->walk_reason, res.reason, sizeof d->walk_reason - 1);
	d->from_index = res.from_index;
	snprintf(d->walk_reason, sizeof d->walk_reason, "%s", res.from_index ? "" : res.reason);
	d->settle_pending = res.from_index && !res.settled;
	if (d->settle_pending) {
		clock_gettime(CLOCK_MONOTONIC, &d->settle_at);
		d->settle_at.tv_sec += INDEX_SETTLE_SECONDS;
	}
	pthread_mutex_unlock(&d->lock);
	if (res.from_index && (first || !was_index))
		syslog(LOG_INFO, "snapshot of %s from this host's index %s: %zu products in %.0f ms (CPU %.0f ms); "
		       "releases are read on demand", d->store, res.index_path, res.products, wall_ms, cpu_ms);
	else if (new_reason)
		syslog(LOG_NOTICE, "snapshot of %s: walking the store (%s): %.0f ms (CPU %.0f ms)", d->store, res.reason,
		       wall_ms, cpu_ms);
	else
		syslog(LOG_DEBUG, "snapshot of %s %s: %zu products read, %.0f ms (CPU %.0f ms)", d->store,
		       res.from_index ? (res.incremental ? "from the index, changed products only" : "from the index")
				      : "by a walk of the store", res.products, wall_ms, cpu_ms);
	return 0;
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
	atomic_init(&d->poll_ms, (int)(d->opts.poll_interval * 1000));
	pthread_mutex_init(&d->lock, NULL);
	pthread_mutex_init(&d->files_lock, NULL);
	pthread_mutex_init(&d->build_lock, NULL);
	d->root_fd = open(d->store, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (d->root_fd < 0) {
		rc = mesh_errf(err, -errno, "%s: %s", d->store, strerror(errno));
		daemon_close(d);
		return rc;
	}
	d->cache = snapshot_cache_new(d->opts.release_cache);
	d->vinos = view_inodes_new();
	rc = build_snapshot(d, NULL, &d->current, err);
	if (rc) {
		daemon_close(d);
		return rc;
	}
	snapshot_cache_reset(d->cache, d->current);
	reload_policy(d);
	if (!d->opts.open_mesh) {
		struct mesh_err verr = {0};
		const char *dir = d->opts.view_cache ? d->opts.view_cache : VIEW_CACHE_DIR_DEFAULT;
		if (view_cache_open(dir, d->opts.view_cache_max, &d->views, &verr)) {
			snprintf(d->views_error, sizeof d->views_error, "%s", verr.msg);
			syslog(LOG_ERR, "masked reads will be denied: %s", verr.msg);
		}
		char sdir[PATH_MAX];
		snprintf(sdir, sizeof sdir, "%s/secrets", d->store);
		mesh_err_clear(&verr);
		if (view_secret_load(sdir, d->secret, &verr) == 0) {
			d->have_secret = true;
		} else {
			snprintf(d->secret_error, sizeof d->secret_error, "%s", verr.msg);
			syslog(LOG_ERR, "hash-masked reads will be denied: %s", verr.msg);
		}
	}
	if (!d->opts.no_usage) {
		/* refuse a second daemon of this host name now, while the
		 * command that started us can still exit non-zero */
		char host[256], dir[4096], ship[4096];
		rc = usage_places(d, host, sizeof host, dir, sizeof dir, ship, sizeof ship, err);
		if (!rc)
			rc = usage_probe(dir, err);
		if (rc) {
			daemon_close(d);
			return rc;
		}
	}
	/* a quarter of the descriptors the process may have (meshfs raises
	 * its soft limit to the hard one), 64 to 8192 */
	struct rlimit rl = {0};
	size_t keep = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? (size_t)(rl.rlim_max / 4) : 256;
	d->backing = backing_cache_new(keep < 64 ? 64 : keep > 8192 ? 8192 : keep, open_backing_cb, d);
	*out = d;
	return 0;
}

const char *daemon_store(const struct mesh_daemon *d)
{
	return d->store;
}

struct catalog *daemon_catalog(struct mesh_daemon *d)
{
	pthread_mutex_lock(&d->lock);
	struct catalog *c = catalog_ref(d->current);
	pthread_mutex_unlock(&d->lock);
	return c;
}

/* A lazy product whose releases changed (snapshot_cache.h): the kernel
 * forgets the product's listing, `latest`, and every version either
 * snapshot names (their entries, so a retired one is looked up again and
 * not found, and their inodes). */
static void invalidate_product(struct mesh_daemon *d, const struct cat_node *o, const struct cat_node *n)
{
	d->inval.inode(d->inval.ctx, o->ino);
	const char *lists[2] = {o->lazy ? o->summary : NULL, n->lazy ? n->summary : NULL};
	char path[PATH_MAX];
	for (int k = 0; k < 2; k++)
		for (const char *p = lists[k]; p && *p;) {
			size_t len = strcspn(p, " \n");
			char version[256];
			snprintf(version, sizeof version, "%.*s", (int)(len < 255 ? len : 255), p);
			d->inval.entry(d->inval.ctx, o->ino, version);
			snprintf(path, sizeof path, "%s/%s/%s", o->domain, o->product, version);
			d->inval.inode(d->inval.ctx, catalog_path_ino(path));
			p += strcspn(p, "\n");
			p += *p == '\n';
		}
	d->inval.entry(d->inval.ctx, o->ino, "latest");
	snprintf(path, sizeof path, "%s/%s/latest", o->domain, o->product);
	d->inval.inode(d->inval.ctx, catalog_path_ino(path));
}

/* Tell the kernel what changed between two snapshots: a directory whose
 * set of children (or whose `latest` target, or a version's state)
 * changed loses its cached listing and the changed names. */
static void invalidate_changes(struct mesh_daemon *d, const struct catalog *old,
			       const struct catalog *new)
{
	if (!d->inval.inode)
		return;
	/* a growable stack: a directory left off would keep a stale `latest`
	 * or a stale listing in the kernel for a whole entry timeout */
	size_t cap = 256, top = 0;
	const struct cat_node **stack = xmalloc(cap * sizeof *stack);
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
			if (!gone && oc->kind == CAT_PRODUCT && (oc->lazy || nc->lazy) &&
			    (oc->lazy != nc->lazy || oc->fingerprint != nc->fingerprint)) {
				changed = true;
				invalidate_product(d, oc, nc);
			}
			if (gone) {
				changed = true;
				d->inval.entry(d->inval.ctx, o->ino, oc->name);
				/* the kernel caches symlink targets (FUSE_CAP_CACHE_SYMLINKS)
				 * by inode, and `latest` keeps its inode when it moves */
				if (oc->kind == CAT_LATEST)
					d->inval.inode(d->inval.ctx, oc->ino);
			}
			/* a file whose content moved (a deprecated contract's
			 * re-stated copy, a rewritten product.yaml) loses its
			 * cached attributes and pages */
			if (nc && oc->kind == CAT_FILE && (oc->size != nc->size || strcmp(oc->backing, nc->backing) ||
							   oc->mtime.tv_sec != nc->mtime.tv_sec ||
							   oc->mtime.tv_nsec != nc->mtime.tv_nsec))
				d->inval.inode(d->inval.ctx, oc->ino);
			if (nc && oc->kind != CAT_FILE && oc->kind != CAT_LATEST) {
				if (top == cap)
					stack = xrealloc(stack, (cap *= 2) * sizeof *stack);
				stack[top++] = oc;
			}
		}
		if (changed)
			d->inval.inode(d->inval.ctx, o->ino);
	}
	free(stack);
}

/* Files rewritten in place whose entries the kernel holds (stamped by
 * daemon_entry_sent): one whose size or time in the store is no longer
 * what the kernel was told, or that is gone, loses its entry, attributes
 * and pages.  A stat per such file per rescan, no open. */
static void invalidate_rewritten(struct mesh_daemon *d)
{
	if (!d->inval.inode)
		return;
	struct snapshot_stamped *list;
	size_t n = snapshot_cache_stamped(d->cache, &list);
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		bool gone = fstatat(d->root_fd, list[i].backing, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode);
		if (!gone && (uint64_t)st.st_size == list[i].size && st.st_mtim.tv_sec == list[i].mtime.tv_sec &&
		    st.st_mtim.tv_nsec == list[i].mtime.tv_nsec)
			continue;
		d->inval.entry(d->inval.ctx, list[i].product_ino, list[i].name);
		d->inval.inode(d->inval.ctx, list[i].ino);
		if (!gone)
			snapshot_cache_restamp(d->cache, list[i].ino, (uint64_t)st.st_size, st.st_mtim);
	}
	snapshot_cache_stamped_free(list, n);
}

int daemon_rescan(struct mesh_daemon *d, struct mesh_err *err)
{
	/* one rescan at a time, each from the snapshot current when it
	 * starts: a snapshot built from the products the change log names
	 * since the last build must start from that build's result */
	pthread_mutex_lock(&d->build_lock);
	struct catalog *old = daemon_catalog(d);
	struct catalog *fresh = NULL;
	int rc = build_snapshot(d, old, &fresh, err);
	if (rc) {
		pthread_mutex_unlock(&d->build_lock);
		catalog_unref(old);
		return rc;
	}
	reload_policy(d);
	pthread_mutex_lock(&d->lock);
	struct catalog *prev = d->current;
	d->current = fresh;
	pthread_mutex_unlock(&d->lock);
	/* loaded products belong to the snapshot they were read for */
	snapshot_cache_reset(d->cache, fresh);
	invalidate_changes(d, old, fresh);
	invalidate_rewritten(d);
	backing_cache_clear(d->backing);   /* no descriptor outlives a rescan */
	pthread_mutex_unlock(&d->build_lock);
	catalog_unref(prev);
	catalog_unref(old);
	return 0;
}

int daemon_catch_up(struct mesh_daemon *d, struct mesh_err *err)
{
	char gen[64] = "";
	store_read_generation(d->store, gen, sizeof gen);
	struct catalog *cur = daemon_catalog(d);
	bool behind = strcmp(gen, catalog_generation(cur)) != 0;
	catalog_unref(cur);
	return behind ? daemon_rescan(d, err) : 0;
}

/* The watcher: inotify tells a local store's changes at once; polling the
 * generation file catches changes made by other hosts on a shared
 * filesystem, where inotify sees nothing. */
/* A fingerprint of the policy files people edit by hand (mesh.yaml and
 * every domain.yaml): their sizes and modification times.  An edit that
 * no meshctl command announced through the generation counter still
 * takes effect within a poll interval. */
static uint64_t policy_fingerprint(const char *store)
{
	uint64_t h = 0xcbf29ce484222325ull;
	struct stat st;
	char path[PATH_MAX];
	/* lstat only: nothing here may open (and so block on) a file */
	snprintf(path, sizeof path, "%s/mesh.yaml", store);
	if (fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) == 0)
		h = (h ^ (uint64_t)st.st_mtim.tv_sec ^ ((uint64_t)st.st_mtim.tv_nsec << 20) ^ (uint64_t)st.st_size ^
		     st.st_mode) * 0x100000001b3ull;
	snprintf(path, sizeof path, "%s/domains", store);
	int dfd = mesh_open_dir_at(AT_FDCWD, path);
	DIR *dir = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!dir && dfd >= 0)
		close(dfd);
	struct dirent *de;
	while (dir && (de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		char file[PATH_MAX + 300];
		snprintf(file, sizeof file, "%s/%s/domain.yaml", path, de->d_name);
		if (fstatat(AT_FDCWD, file, &st, AT_SYMLINK_NOFOLLOW) == 0)
			h = (h ^ mesh_hash64(de->d_name, strlen(de->d_name)) ^ (uint64_t)st.st_mtim.tv_sec ^
			     ((uint64_t)st.st_mtim.tv_nsec << 20) ^ (uint64_t)st.st_size ^ st.st_mode) *
			    0x100000001b3ull;
	}
	if (dir)
		closedir(dir);
	return h;
}

static void *watcher_main(void *arg)
{
	struct mesh_daemon *d = arg;
	uint64_t fingerprint = policy_fingerprint(d->store);
	for (;;) {
		int timeout_ms = atomic_load_explicit(&d->poll_ms, memory_order_relaxed);
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
		/* an index refreshed within the settle time reads the store
		 * again once it has passed (index.h: late directory listings) */
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		pthread_mutex_lock(&d->lock);
		stale |= d->settle_pending && (now.tv_sec > d->settle_at.tv_sec ||
					       (now.tv_sec == d->settle_at.tv_sec && now.tv_nsec >= d->settle_at.tv_nsec));
		pthread_mutex_unlock(&d->lock);
		uint64_t now_fingerprint = policy_fingerprint(d->store);
		stale |= now_fingerprint != fingerprint;
		fingerprint = now_fingerprint;
		if (stale) {
			struct mesh_err err = {0};
			if (daemon_rescan(d, &err))
				syslog(LOG_ERR, "rescan of %s failed: %s", d->store, err.msg);
		}
	}
	return NULL;
}

/* mesh.yaml usage: {onJournalFull: refuse|serve, retentionDays: N,
 * shippedRetentionDays: N}: the governance team's choice between "no read
 * without a record" (default) and availability, how long raw events are
 * kept before they are folded into daily rollups, and how long the copies
 * shipped into the store are kept (usage.h: retention of shipped usage). */
static void usage_settings(const char *store, bool *serve, unsigned *retention_days, unsigned *ship_days)
{
	*serve = false;
	*retention_days = 0;
	*ship_days = 0;
	char path[4096], *text;
	size_t len;
	snprintf(path, sizeof path, "%s/mesh.yaml", store);
	if (mesh_read_file_at(AT_FDCWD, path, 1u << 20, &text, &len, NULL))
		return;
	static const struct ytree_limits limits = {1u << 20, 32, 100000};
	struct ynode *root = NULL;
	if (!yamltree_parse(text, len, path, &limits, &root, NULL)) {
		const struct ynode *u = ymap_get(root, "usage");
		const char *v = yscalar(ymap_get(u, "onJournalFull"));
		*serve = v && !strcmp(v, "serve");
		double days;
		if (ynumber(ymap_get(u, "retentionDays"), &days) == 0 && days >= 1 && days < 100000)
			*retention_days = (unsigned)days;
		if (ynumber(ymap_get(u, "shippedRetentionDays"), &days) == 0 && days >= 1 && days < 100000)
			*ship_days = (unsigned)days;
	}
	yamltree_free(root);
	free(text);
}

/* Where this host records usage (local disk: STATE/<store-id>/usage/<host>)
 * and where it ships closed segments (the store: STORE/usage/<host>). */
static int usage_places(const struct mesh_daemon *d, char *host, size_t host_size, char *dir, size_t dir_size,
			char *ship, size_t ship_size, struct mesh_err *err)
{
	snprintf(host, host_size, "localhost");
	if (d->opts.hostname)
		snprintf(host, host_size, "%s", d->opts.hostname);
	else
		gethostname(host, host_size - 1);
	if (!host[0] || host[0] == '.' ||
	    strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") != strlen(host))
		return mesh_errf(err, -EINVAL, "host name '%s': not usable as a directory name (-o hostname=)", host);
	snprintf(ship, ship_size, "%s/usage/%s", d->store, host);
	if (d->opts.usage_dir) {
		snprintf(dir, dir_size, "%s", d->opts.usage_dir);
		return 0;
	}
	char state[3800];
	int rc = state_dir_for_store(d->store, d->opts.state_dir, true, state, sizeof state, err);
	if (rc)
		return rc;
	snprintf(dir, dir_size, "%s/usage/%s", state, host);
	return 0;
}

/* ---- ops: SIGHUP ---- */

int daemon_reload(struct mesh_daemon *d, double poll_interval, struct mesh_err *err)
{
	if (poll_interval > 0)
		atomic_store_explicit(&d->poll_ms, (int)(poll_interval * 1000), memory_order_relaxed);
	bool serve;
	unsigned retention_days, ship_days;
	usage_settings(d->store, &serve, &retention_days, &ship_days);
	usage_configure(d->usage, serve, retention_days, ship_days);
	return daemon_rescan(d, err);
}

static void sink_shipped(void *ctx, int64_t seq)
{
	usage_outbox_shipped(ctx, seq);
}

static void sink_status(void *ctx, struct usage_sink_status *out)
{
	struct pgsink_stats st;
	pgsink_stats(ctx, &st);
	out->connected = st.connected;
	out->backlog = st.backlog;
	out->oldest_ns = st.oldest_ns;
	out->shipped = st.shipped;
	snprintf(out->last_error, sizeof out->last_error, "%s", st.last_error);
}

int daemon_start(struct mesh_daemon *d, const struct daemon_invalidate *inval, struct mesh_err *err)
{
	if (inval)
		d->inval = *inval;
	if (!d->opts.no_usage) {
		char host[256], dir[4096], ship[4096];
		int rc = usage_places(d, host, sizeof host, dir, sizeof dir, ship, sizeof ship, err);
		if (rc)
			return rc;
		struct usage_config cfg = {.slots = d->opts.usage_slots, .hostname = host,
					   .metrics_path = d->opts.metrics_path, .ship_dir = ship};
		usage_settings(d->store, &cfg.serve_when_full, &cfg.retention_days, &cfg.ship_retention_days);
		/* ops: fleet usage in PostgreSQL (-o usage_sink wins over mesh.yaml) */
		char sink[2048] = "";
		if (d->opts.usage_sink)
			snprintf(sink, sizeof sink, "%s", d->opts.usage_sink);
		else
			pgsink_store_setting(d->store, sink, sizeof sink);
		cfg.outbox = sink[0] != '\0';
		rc = usage_open(dir, &cfg, &d->usage, err);
		if (rc)
			return rc;
		if (sink[0]) {
			char db_path[4200];
			snprintf(db_path, sizeof db_path, "%s/usage.db", dir);
			struct pgsink_options so = {.conninfo = sink, .db_path = db_path,
						    .shipped = sink_shipped, .ctx = d->usage};
			rc = pgsink_open(&so, &d->sink, err);
			if (rc)
				return rc;
			usage_set_sink_status(d->usage, sink_status, d->sink);
		}
	}
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
	pthread_setname_np(d->watcher, "mesh-watcher");
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
	/* files still open at unmount never get a RELEASE: end their usage
	 * events with what was served, and free them */
	while (d->files)
		daemon_file_release(d, d->files);
	pgsink_forget_shipped(d->sink);   /* ops: it must not call a closed recorder */
	usage_close(d->usage);
	backing_cache_free(d->backing);
	pgsink_close(d->sink, 3000);      /* ops: what is not shipped waits in the outbox */
	if (d->stop_fd >= 0)
		close(d->stop_fd);
	if (d->inotify_fd >= 0)
		close(d->inotify_fd);
	if (d->root_fd >= 0)
		close(d->root_fd);
	catalog_unref(d->current);
	snapshot_cache_free(d->cache);
	if (d->policy && --d->policy->refs == 0) {
		policy_free(d->policy->p);
		free(d->policy);
	}
	view_cache_close(d->views);
	view_inodes_free(d->vinos);
	pthread_mutex_destroy(&d->lock);
	pthread_mutex_destroy(&d->files_lock);
	pthread_mutex_destroy(&d->build_lock);
	snapshot_memory_clear(&d->memory);
	free(d->store);
	free(d);
}

/* Is n a restricted product or inside one?  The catalog resolved that at
 * scan time; without any valid policy every product counts as restricted
 * (fail closed). */
static bool node_restricted(struct mesh_daemon *d, const struct cat_node *n)
{
	if (d->opts.open_mesh || !n->product)
		return false;
	return n->restricted || !atomic_load_explicit(&d->policy_loaded, memory_order_acquire);
}

double daemon_entry_timeout(struct mesh_daemon *d, const struct cat_node *n)
{
	/* Releases never change, and every change to a directory's listing
	 * reaches the kernel as an invalidation from the watcher, so the
	 * kernel may keep entries for a day.  `latest` moves, and every move
	 * reaches the kernel the same way (its entry and its inode, whose
	 * cached target goes with it); an hour bounds a missed one.  Walks
	 * then never look `latest` up again.  Restricted products differ per
	 * user: never cached (the kernel would answer one user's lookup from
	 * another's). */
	if (node_restricted(d, n) || !daemon_node_shared(d, n))
		return 0;
	/* A product's descriptor (outside any release) is rewritten by
	 * meshctl: what the kernel was given is stamped (daemon_entry_sent)
	 * and every rescan compares it with the store and invalidates what
	 * moved (invalidate_rewritten); an hour bounds a missed one, as for
	 * `latest`.  Walks then do not look every product.yaml up again. */
	return n->kind == CAT_LATEST || (n->kind == CAT_FILE && !n->version) ? 3600 : 86400;
}

double daemon_attr_timeout(struct mesh_daemon *d, const struct cat_node *n, uint64_t ino, bool fixed)
{
	if (ino != n->ino && fixed && card_node_generated(n))
		return 86400;
	return daemon_entry_timeout(d, n);
}

/* schema.json or quality.json of a version with classified columns */
static bool classified_sidecar(const struct cat_node *n)
{
	if (n->kind != CAT_FILE || (n->role != ROLE_SCHEMA && n->role != ROLE_QUALITY) || !n->parent)
		return false;
	for (uint32_t i = 0; i < n->parent->n_children; i++) {
		const struct cat_node *f = n->parent->children[i];
		if (f->kind == CAT_FILE && f->role == ROLE_DATA && f->n_columns)
			return true;
	}
	return false;
}

bool daemon_node_shared(const struct mesh_daemon *d, const struct cat_node *n)
{
	/* a file with classified columns is a view for some readers, and so
	 * are the sidecars that describe such files */
	if (n->kind != CAT_FILE)
		return true;
	/* a card says what its reader sees: one per reader's decision, even
	 * in an open mesh (the stored template is never served as it is) */
	if (card_node_generated(n))
		return false;
	if (d->opts.open_mesh)
		return true;
	if (n->role == ROLE_DATA)
		return n->n_columns == 0;
	return !classified_sidecar(n);
}

bool daemon_cache_listing(struct mesh_daemon *d, const struct cat_node *dir)
{
	/* a listing that hides restricted products differs per user */
	if (d->opts.open_mesh)
		return true;
	return !node_restricted(d, dir) && !dir->has_restricted &&
	       atomic_load_explicit(&d->policy_loaded, memory_order_acquire);
}

bool daemon_access_control(const struct mesh_daemon *d)
{
	return !d->opts.open_mesh;
}

mode_t daemon_node_mode(const struct mesh_daemon *d, const struct cat_node *n)
{
	switch (n->kind) {
	case CAT_FILE:
		/* honest bits: with access control, data is not world-readable */
		return S_IFREG | (n->role == ROLE_DATA && daemon_access_control(d) ? 0440 : 0444);
	case CAT_LATEST:
		return S_IFLNK | 0777;
	default:
		return S_IFDIR | 0555;
	}
}

/* The caller's identity; groups only when the policy names groups.
 * False when the groups were needed but unknown: deny. */
static bool caller_identity(const struct policy *p, const struct daemon_caller *who, struct identity *id)
{
	gid_t groups[IDENTITY_MAX_GROUPS];
	int n = 0;
	if (policy_needs_groups(p) && who->get_groups) {
		n = who->get_groups(who->ctx, groups, IDENTITY_MAX_GROUPS);
		if (n < 0)
			return false;
	}
	identity_from_ids(id, who->uid, who->gid, groups, n);
	return true;
}

/* The read decision for node n (a file, or a product/version for
 * discovery), with the classified columns of a file. */
static void decide(struct mesh_daemon *d, const struct daemon_caller *who, const struct cat_node *n,
		   struct policy_decision *out)
{
	memset(out, 0, sizeof *out);
	if (d->opts.open_mesh) {
		out->result = POLICY_ALLOW;
		snprintf(out->reason, sizeof out->reason, "open mesh: all data is public (-o open_mesh)");
		return;
	}
	struct policy_ref *r = policy_get(d);
	struct identity id;
	if (!r) {
		out->result = POLICY_DENY;
		snprintf(out->reason, sizeof out->reason, "no valid policy loaded: reads are denied");
	} else if (!caller_identity(r->p, who, &id)) {
		out->result = POLICY_DENY;
		snprintf(out->reason, sizeof out->reason, "the caller's groups could not be read: denied");
	} else {
		size_t nc = n->kind == CAT_FILE ? n->n_columns : 0;
		const char **classes = xcalloc(nc + 1, sizeof *classes);
		for (size_t i = 0; i < nc; i++)
			classes[i] = n->columns[i].classification;
		policy_decide(r->p, &id, n->domain, n->product, n->version, classes, nc, time(NULL), out);
		free(classes);
	}
	policy_ref_put(d, r);
}

bool daemon_may_discover(struct mesh_daemon *d, const struct daemon_caller *who,
			 const struct cat_node *n)
{
	if (d->opts.open_mesh || !n->product)
		return true;
	if (!node_restricted(d, n))
		return true;
	struct policy_decision dec;
	decide(d, who, n, &dec);
	policy_decision_clear(&dec);
	return dec.result != POLICY_DENY;
}

/* ---- masked views ---- */

/* The mask plan of file n for a MASK decision: each classified column the
 * decision masks, with its rule's function as n's format can apply it
 * (view_plan_for_format: a Parquet view leaves columns out).  NULL when
 * nothing of n is masked, or when the format cannot apply a function: then
 * why[0] is set (the caller denies).  Caller frees. */
static struct view_plan *plan_for(const struct cat_node *n, const struct policy_decision *dec, char *why,
				  size_t why_len)
{
	why[0] = '\0';
	struct view_plan *plan = view_plan_new();
	for (uint32_t i = 0; i < n->n_columns; i++)
		for (size_t k = 0; k < dec->n_masked; k++) {
			const struct policy_mask *m = &dec->masked[k];
			enum view_fn fn;
			if (strcmp(n->columns[i].classification, m->classification))
				continue;
			if (view_fn_parse(m->function, &fn))
				fn = VIEW_FN_NULL;
			view_plan_add(plan, n->columns[i].name, fn, m->precision);
		}
	view_plan_seal(plan);
	enum view_format format;
	if (plan->n && !view_format_for_name(n->name, &format) &&
	    view_plan_for_format(plan, format, why, why_len) < 0) {
		view_plan_free(plan);
		return NULL;
	}

	if (plan->n == 0) {
		view_plan_free(plan);
		return NULL;
	}
	return plan;
}

/* A view's inode: stable for (file, plan), never a catalog inode. */
static uint64_t view_ino(const struct cat_node *n, const struct view_plan *plan)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_printf(&sb, "view\n%s\n%s", n->backing, plan->text);
	uint64_t h = mesh_ino_view(mesh_hash64(sb.buf, sb.len));
	strbuf_release(&sb);
	return h < 2 ? h + 2 : h;
}

/* Remember what the kernel may ask about a view inode. */
static void vino_note_text(struct mesh_daemon *d, uint64_t ino, const struct cat_node *n, const char *plan_text,
			   const struct view_info *info)
{
	pthread_mutex_lock(&d->lock);
	bool added;
	struct view_inode *v = view_inodes_add(d->vinos, ino, &added);
	if (added) {
		const struct cat_node *p = product_of(n);
		v->base_ino = n->ino;
		v->plan = xstrdup(plan_text);
		v->product_ino = p && p != n ? p->ino : 0;
	}
	if (info) {
		v->size = info->size;
		memcpy(v->sha256, info->sha256, 65);
	}
	pthread_mutex_unlock(&d->lock);
}

static void vino_note(struct mesh_daemon *d, uint64_t ino, const struct cat_node *n, const struct view_plan *plan,
		      const struct view_info *info)
{
	vino_note_text(d, ino, n, plan->text, info);
}

/* Open a release file below the store root without following any symlink
 * and without leaving the store (openat2 RESOLVE_BENEATH|NO_SYMLINKS). */
static int open_backing(struct mesh_daemon *d, const char *relpath);

struct source_ctx {
	struct mesh_daemon *d;
	const char *backing;
};

static int open_source(void *ctx)
{
	struct source_ctx *sc = ctx;
	return open_backing(sc->d, sc->backing);
}

/* A sidecar's view, made at each open (sidecars are small): a memfd. */
static int sidecar_open(struct mesh_daemon *d, const struct cat_node *n, const struct view_plan *plan,
			struct view_info *info, struct mesh_err *err)
{
	int in = open_backing(d, n->backing);
	if (in < 0)
		return mesh_errf(err, in, "%s: %s", n->backing, strerror(-in));
	char *text = NULL, *out = NULL;
	size_t len = 0, out_len = 0;
	struct strbuf sb = STRBUF_INIT;
	char buf[65536];
	ssize_t r;
	strbuf_puts(&sb, "");
	while ((r = read(in, buf, sizeof buf)) > 0 && sb.len < (16u << 20))
		strbuf_add(&sb, buf, (size_t)r);
	int rc = r < 0 ? mesh_errf(err, -errno, "%s: %s", n->backing, strerror(errno))
		 : sb.len >= (16u << 20) ? mesh_errf(err, -EFBIG, "%s: larger than 16 MiB", n->backing) : 0;
	text = strbuf_detach(&sb, &len);
	close(in);
	if (!rc)
		rc = n->role == ROLE_SCHEMA ? view_sidecar_schema(text, len, plan, &out, &out_len, err)
					    : view_sidecar_quality(text, len, plan, &out, &out_len, err);
	free(text);
	if (rc)
		return rc;
	int fd = memfd_create("meshfs-sidecar-view", MFD_CLOEXEC);
	if (fd < 0 || mesh_write_all(fd, out, out_len) < 0) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		free(out);
		return mesh_errf(err, rc, "memfd: %s", strerror(-rc));
	}
	struct mesh_sha256 *h = mesh_sha256_new();
	mesh_sha256_update(h, out, out_len);
	mesh_sha256_final(h, info->sha256);
	info->size = out_len;
	info->fresh = false;
	free(out);
	return fd;
}

/* The caller's view of n: an fd on it (or -errno, err saying why). */
static int view_open(struct mesh_daemon *d, const struct cat_node *n, const struct view_plan *plan,
		     struct view_info *info, struct mesh_err *err)
{
	if (n->role != ROLE_DATA)
		return sidecar_open(d, n, plan, info, err);
	if (!d->views)
		return mesh_errf(err, -EACCES, "no view cache (%s)", d->views_error);
	enum view_format format;
	if (view_format_for_name(n->name, &format))
		return mesh_errf(err, -EACCES, "%s cannot be masked (not CSV, JSON Lines or Parquet)", n->name);
	if (!n->sha256 || strlen(n->sha256) != 64)
		return mesh_errf(err, -EACCES, "the manifest gives no SHA-256 to verify a view against");
	for (size_t i = 0; i < plan->n; i++)
		if (plan->columns[i].fn == VIEW_FN_HASH && !d->have_secret)
			return mesh_errf(err, -EACCES, "no hash secret (%s)", d->secret_error);
	struct source_ctx sc = {d, n->backing};
	struct view_source src = {.sha256 = n->sha256, .format = format, .open = open_source, .ctx = &sc};
	int fd = -1;
	int rc = view_cache_get(d->views, &src, plan, d->secret, &fd, info, err);
	if (rc == -ENOTSUP || rc == -ENOENT || rc == -EINVAL) {
		/* the content cannot have this view (a Parquet file whose view
		 * would have no column, a CSV header without a masked column):
		 * the same file and plan always fail, so the decision says deny
		 * from now on (test -r, access(2)) instead of only each open */
		uint64_t ino = view_ino(n, plan);
		vino_note(d, ino, n, plan, NULL);
		pthread_mutex_lock(&d->lock);
		struct view_inode *v = view_inodes_find(d->vinos, ino);
		if (v && !v->refused)
			v->refused = xstrdup(err->msg);
		pthread_mutex_unlock(&d->lock);
	}
	return rc ? rc : fd;
}

/* Why the view of n under plan was refused, copied into why; false if it
 * was not. */
static bool view_refused(struct mesh_daemon *d, const struct cat_node *n, const struct view_plan *plan, char *why,
			 size_t why_len)
{
	uint64_t ino = view_ino(n, plan);
	pthread_mutex_lock(&d->lock);
	struct view_inode *v = view_inodes_find(d->vinos, ino);
	bool refused = v && v->refused;
	if (refused)
		snprintf(why, why_len, "%s", v->refused);
	pthread_mutex_unlock(&d->lock);
	return refused;
}

/* The plan of a sidecar for the caller: schema.json marks the columns the
 * caller gets masked; quality.json hides the values of every classified
 * column the caller may not see in clear (masked, or no access at all).
 * NULL: the clear sidecar. */
static struct view_plan *sidecar_plan(struct mesh_daemon *d, const struct daemon_caller *who,
				      const struct cat_node *n)
{
	if (!classified_sidecar(n))
		return NULL;
	struct view_plan *plan = view_plan_new();
	for (uint32_t i = 0; i < n->parent->n_children; i++) {
		const struct cat_node *f = n->parent->children[i];
		if (f->kind != CAT_FILE || f->role != ROLE_DATA || !f->n_columns)
			continue;
		struct policy_decision dec;
		decide(d, who, f, &dec);
		char why[256];
		struct view_plan *fp = dec.result == POLICY_MASK ? plan_for(f, &dec, why, sizeof why) : NULL;
		if (fp) {
			for (size_t k = 0; k < fp->n; k++)
				view_plan_add(plan, fp->columns[k].name, fp->columns[k].fn, fp->columns[k].precision);
			view_plan_free(fp);
		} else if ((dec.result == POLICY_DENY || (dec.result == POLICY_MASK && why[0])) &&
			   n->role == ROLE_QUALITY) {
			for (uint32_t k = 0; k < f->n_columns; k++)
				view_plan_add(plan, f->columns[k].name, VIEW_FN_NULL, 0);
		}
		policy_decision_clear(&dec);
	}
	view_plan_seal(plan);
	if (!plan->n) {
		view_plan_free(plan);
		return NULL;
	}
	return plan;
}

/* What a caller gets at file n: ALLOW (n itself), MASK with *plan, or DENY. */
static enum daemon_decision file_decision(struct mesh_daemon *d, const struct daemon_caller *who,
					  const struct cat_node *n, struct policy_decision *dec,
					  struct view_plan **plan)
{
	*plan = NULL;
	memset(dec, 0, sizeof *dec);
	dec->result = POLICY_ALLOW;
	if (n->role != ROLE_DATA) {
		*plan = d->opts.open_mesh ? NULL : sidecar_plan(d, who, n);
		return *plan ? DECISION_MASK : DECISION_ALLOW;
	}
	decide(d, who, n, dec);
	if (dec->result == POLICY_DENY)
		return DECISION_DENY;
	if (dec->result == POLICY_MASK) {
		enum view_format format;
		if (view_format_for_name(n->name, &format)) {
			/* a format meshfs cannot rewrite: fail closed */
			dec->result = POLICY_DENY;
			size_t len = strlen(dec->reason);
			snprintf(dec->reason + len, sizeof dec->reason - len,
				 "; %s cannot be masked (not CSV, JSON Lines or Parquet): denied", n->name);
			return DECISION_DENY;
		}
		char why[256];
		*plan = plan_for(n, dec, why, sizeof why);
		if (*plan && view_refused(d, n, *plan, why, sizeof why)) {
			view_plan_free(*plan);
			*plan = NULL;
		}
		if (*plan)
			return DECISION_MASK;
		if (why[0]) {
			/* a function this format cannot apply: fail closed */
			dec->result = POLICY_DENY;
			size_t len = strlen(dec->reason);
			snprintf(dec->reason + len, sizeof dec->reason - len, "; %s: denied", why);
			return DECISION_DENY;
		}
		dec->result = POLICY_ALLOW;
	}
	return DECISION_ALLOW;
}

/* ---- product cards, rendered per reader (card_reader.h) ---- */

#define CARD_MAX_BYTES (4u << 20)

/* The version a card speaks of: its own, or the product's latest. */
static const struct cat_node *card_version_of(const struct cat_node *n)
{
	if (n->parent && n->parent->kind == CAT_VERSION)
		return n->parent;
	return n->parent && n->parent->kind == CAT_PRODUCT ? catalog_latest(n->parent) : NULL;
}

/* The reader's inode of card n and, when text is not NULL, its bytes
 * (malloc'ed).  The inode is a hash of the template's identity and of
 * everything the rendering takes from the decision, so readers whose
 * cards differ never share an inode (nor its pages), and readers whose
 * cards are the same bytes may. */
static int card_prepare(struct mesh_daemon *d, const struct daemon_caller *who, const struct cat_node *n,
			uint64_t *ino, char **text, size_t *len)
{
	const struct cat_node *version = card_version_of(n);
	struct policy_decision dec;
	memset(&dec, 0, sizeof dec);
	if (d->opts.open_mesh) {
		dec.result = POLICY_ALLOW;
		snprintf(dec.reason, sizeof dec.reason, "open mesh: all data is public (-o open_mesh)");
	} else {
		struct policy_ref *r = policy_get(d);
		struct identity id;
		if (r && caller_identity(r->p, who, &id)) {
			card_reader_decide(r->p, &id, n->domain, n->product, version, time(NULL), &dec);
		} else {
			dec.result = POLICY_DENY;
			snprintf(dec.reason, sizeof dec.reason, "%s",
				 r ? "the caller's groups could not be read: denied" : "no valid policy loaded: reads are denied");
		}
		policy_ref_put(d, r);
	}
	char *key = card_reader_key(version, &dec);
	struct strbuf sb = STRBUF_INIT;
	strbuf_printf(&sb, "card\n%s\n%lld.%09ld %llu\n%s", n->backing, (long long)n->mtime.tv_sec,
		      (long)n->mtime.tv_nsec, (unsigned long long)n->size, key);
	free(key);
	uint64_t h = mesh_ino_view(mesh_hash64(sb.buf, sb.len));
	strbuf_release(&sb);
	*ino = h < 2 ? h + 2 : h;
	int rc = 0;
	if (text) {
		*text = NULL;
		int fd = open_backing(d, n->backing);   /* beneath the store, no symlinks */
		struct strbuf tmpl = STRBUF_INIT;
		strbuf_puts(&tmpl, "");
		char buf[65536];
		ssize_t r = 0;
		while (fd >= 0 && tmpl.len <= CARD_MAX_BYTES && (r = read(fd, buf, sizeof buf)) > 0)
			strbuf_add(&tmpl, buf, (size_t)r);
		rc = fd < 0 ? fd : r < 0 ? -errno : tmpl.len > CARD_MAX_BYTES ? -EFBIG : 0;
		if (fd >= 0)
			close(fd);
		if (rc)
			syslog(LOG_ERR, "card %s: %s", n->backing, strerror(-rc));
		else
			*text = card_render(tmpl.buf, tmpl.len, n->domain, n->product, version, &dec, len);
		strbuf_release(&tmpl);
	}
	policy_decision_clear(&dec);
	return rc;
}

/* True when the card's bytes (and so its size) are known. */
static bool card_node_for(struct mesh_daemon *d, const struct daemon_caller *who, const struct cat_node *n,
			  uint64_t *ino, uint64_t *size)
{
	card_prepare(d, who, n, ino, NULL, NULL);
	pthread_mutex_lock(&d->lock);
	struct view_inode *v = view_inodes_find(d->vinos, *ino);
	bool known = v && v->sha256[0];
	*size = known ? v->size : 0;
	pthread_mutex_unlock(&d->lock);
	if (known)
		return true;
	char *text = NULL;
	size_t len = 0;
	uint64_t again;
	if (card_prepare(d, who, n, &again, &text, &len) || again != *ino) {
		free(text);
		return false;   /* open says why, or the decision moved meanwhile */
	}
	struct view_info info = {.size = len};
	struct mesh_sha256 *sh = mesh_sha256_new();
	mesh_sha256_update(sh, text, len);
	mesh_sha256_final(sh, info.sha256);
	vino_note_text(d, *ino, n, "card for this reader", &info);
	*size = len;
	free(text);
	return true;
}

bool daemon_node_for(struct mesh_daemon *d, const struct daemon_caller *who, const struct cat_node *n,
		     uint64_t *ino, uint64_t *size)
{
	*ino = n->ino;
	*size = n->size;
	if (daemon_node_shared(d, n))
		return false;
	if (card_node_generated(n))
		return card_node_for(d, who, n, ino, size);
	struct policy_decision dec;
	struct view_plan *plan;
	if (file_decision(d, who, n, &dec, &plan) == DECISION_MASK) {
		*ino = view_ino(n, plan);
		pthread_mutex_lock(&d->lock);
		struct view_inode *v = view_inodes_find(d->vinos, *ino);
		bool known = v && v->sha256[0];
		*size = known ? v->size : 0;
		pthread_mutex_unlock(&d->lock);
		if (!known) {
			/* the size is the view's: build it now (once per host) */
			struct view_info info;
			struct mesh_err err = {0};
			int fd = view_open(d, n, plan, &info, &err);
			if (fd >= 0) {
				close(fd);
				*size = info.size;
				vino_note(d, *ino, n, plan, &info);
			} else {
				vino_note(d, *ino, n, plan, NULL);   /* open will say why */
				syslog(LOG_ERR, "view of %s (%s) for uid %u: %s", n->backing, plan->text,
				       (unsigned)who->uid, err.msg);
			}
		}
	}
	view_plan_free(plan);
	policy_decision_clear(&dec);
	return false;
}

/* At log level debug: what the release cache holds after a load. */
static void log_cache(struct mesh_daemon *d, const struct cat_node *product)
{
	if (!(setlogmask(0) & LOG_MASK(LOG_DEBUG)))
		return;
	struct snapshot_cache_stats st;
	snapshot_cache_stats(d->cache, &st);
	syslog(LOG_DEBUG, "release cache: %s/%s; %zu products (%zu of %zu releases) kept, %llu loads, %llu evictions",
	       product->domain, product->name, st.products, st.releases, st.max_releases,
	       (unsigned long long)st.loads, (unsigned long long)st.evictions);
}

/* Node `ino` of `snap`, or of the loaded product `product_ino` when
 * given (0: from the registry); *cat is the catalog it is in (referenced),
 * taking over the caller's reference on snap. */
static const struct cat_node *resolve(struct mesh_daemon *d, struct catalog *snap, uint64_t ino,
				      uint64_t product_ino, bool load, struct catalog **cat)
{
	*cat = snap;
	const struct cat_node *n = catalog_get(snap, ino);
	if (!n && (product_ino || snapshot_cache_owner(d->cache, ino, &product_ino))) {
		const struct cat_node *p = catalog_get(snap, product_ino);
		struct catalog *loaded;
		struct mesh_err err = {0};
		if (p && p->lazy && snapshot_cache_product(d->cache, d->store, snap, p, &loaded, &err) == 0) {
			log_cache(d, p);
			n = catalog_get(loaded, ino);
			if (n) {
				catalog_unref(snap);
				*cat = loaded;
				return n;
			}
			catalog_unref(loaded);
		}
	}
	if (n && load && n->lazy) {
		struct catalog *loaded;
		struct mesh_err err = {0};
		int rc = snapshot_cache_product(d->cache, d->store, snap, n, &loaded, &err);
		if (rc) {
			/* listed by the index, not readable in the store now:
			 * nothing below it is shown (never a release unverified) */
			syslog(rc == -ENOENT ? LOG_INFO : LOG_ERR, "%s", err.msg);
			return NULL;
		}
		log_cache(d, n);
		catalog_unref(snap);
		*cat = loaded;
		return catalog_root(loaded);
	}
	return n;
}

const struct cat_node *daemon_node(struct mesh_daemon *d, uint64_t ino, bool load, struct catalog **cat,
				   uint64_t *view_size, bool *fixed)
{
	struct catalog *snap = daemon_catalog(d);
	uint64_t base = 0, product_ino = 0;
	bool known = false;
	if (fixed)
		*fixed = false;
	if (mesh_ino_is_view(ino)) {
		pthread_mutex_lock(&d->lock);
		struct view_inode *v = view_inodes_find(d->vinos, ino);
		if (v) {
			base = v->base_ino;
			product_ino = v->product_ino;
			known = v->sha256[0];
			if (view_size)
				*view_size = v->size;
		}
		pthread_mutex_unlock(&d->lock);
		if (!base) {
			catalog_unref(snap);
			*cat = NULL;
			return NULL;
		}
	}
	const struct cat_node *n = resolve(d, snap, base ? base : ino, product_ino, load, cat);
	if (!n) {
		catalog_unref(*cat);
		*cat = NULL;
	} else if (fixed) {
		*fixed = known && card_node_generated(n);
	}
	return n;
}

/* A file meshfs rewrites in place beside the releases (the product's
 * descriptor): the kernel keeps its entry long, so what it was told is
 * stamped, and compared with the store at every rescan
 * (invalidate_rewritten). */
static bool rewritten_in_place(const struct cat_node *n)
{
	return n->kind == CAT_FILE && !n->version && n->backing;
}

void daemon_entry_sent(struct mesh_daemon *d, const struct cat_node *n)
{
	const struct cat_node *p = product_of(n);
	if (!p || p == n)
		return;
	struct snapshot_stamp stamp = {n->name, n->backing, n->size, n->mtime};
	snapshot_cache_note(d->cache, n->ino, p->ino, rewritten_in_place(n) ? &stamp : NULL);
}

int daemon_missing_error(struct mesh_daemon *d, uint64_t ino)
{
	uint64_t product_ino;
	return snapshot_cache_owner(d->cache, ino, &product_ino) ? -ESTALE : -ENOENT;
}

void daemon_forget(struct mesh_daemon *d, uint64_t ino, uint64_t nlookup)
{
	snapshot_cache_forget(d->cache, ino, nlookup);
}


int daemon_file_xattr(struct mesh_daemon *d, const struct daemon_caller *who, const struct cat_node *n,
		      uint64_t ino, const char *name, char *buf, size_t size)
{
	if (n->kind != CAT_FILE)
		return -ENODATA;
	bool sha = !strcmp(name, "user.mesh.sha256"), view = !strcmp(name, "user.mesh.view");
	if (!sha && !view)
		return -ENODATA;
	char value[4096] = "";
	if (ino == n->ino) {
		if (view)
			return -ENODATA;
		/* the clear file's hash only to those who may read it in
		 * clear: it would confirm guesses of masked values */
		if (!daemon_node_shared(d, n)) {
			struct policy_decision dec;
			struct view_plan *plan;
			enum daemon_decision r = file_decision(d, who, n, &dec, &plan);
			view_plan_free(plan);
			policy_decision_clear(&dec);
			if (r != DECISION_ALLOW)
				return -ENODATA;
		}
		snprintf(value, sizeof value, "%s", n->sha256 ? n->sha256 : "");
	} else {
		pthread_mutex_lock(&d->lock);
		struct view_inode *v = view_inodes_find(d->vinos, ino);
		if (v)
			snprintf(value, sizeof value, "%s", view ? v->plan : v->sha256);
		pthread_mutex_unlock(&d->lock);
	}
	size_t len = strlen(value);
	if (!len)
		return -ENODATA;
	if (size == 0)
		return (int)len;
	if (size < len)
		return -ERANGE;
	memcpy(buf, value, len);
	return (int)len;
}

static int open_backing(struct mesh_daemon *d, const char *relpath)
{
	struct open_how how = {
		.flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	long fd = syscall(SYS_openat2, d->root_fd, relpath, &how, sizeof how);
	if (fd < 0 && errno == ENOSYS) {
		int rc = mesh_open_regular_at(d->root_fd, relpath, O_RDONLY, 0, NULL);
		return rc == -EINVAL ? -EACCES : rc;
	}
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat((int)fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close((int)fd);
		return -EACCES;
	}
	int fl = fcntl((int)fd, F_GETFL);
	fcntl((int)fd, F_SETFL, fl & ~O_NONBLOCK);
	return (int)fd;
}

static int open_backing_cb(void *ctx, const char *relpath)
{
	return open_backing(ctx, relpath);
}

int daemon_file_open(struct mesh_daemon *d, const struct daemon_caller *who,
		     const struct cat_node *n, uint64_t ino, int flags, struct daemon_file **out,
		     bool *keep_cache)
{
	if (n->kind != CAT_FILE)
		return -EISDIR;
	if ((flags & O_ACCMODE) != O_RDONLY || (flags & (O_TRUNC | O_CREAT)))
		return -EROFS;
	if (n->role != ROLE_DATA && !daemon_may_discover(d, who, n))
		return -ENOENT;
	struct policy_decision dec;
	struct view_plan *plan = NULL;
	enum daemon_decision decision;
	uint64_t want;
	char *card = NULL;           /* a card rendered for this reader */
	size_t card_len = 0;
	if (card_node_generated(n)) {
		int rc = card_prepare(d, who, n, &want, &card, &card_len);
		if (rc)
			return rc == -ENOENT ? -ENOENT : -EIO;
		memset(&dec, 0, sizeof dec);
		decision = DECISION_ALLOW;
	} else {
		decision = file_decision(d, who, n, &dec, &plan);
		want = decision == DECISION_MASK ? view_ino(n, plan) : n->ino;
	}
	/* the kernel opens the inode its lookup gave; another reader's
	 * lookup may have moved the name since: ESTALE makes the kernel look
	 * the name up again for this caller */
	if (decision != DECISION_DENY && ino != want) {
		free(card);
		view_plan_free(plan);
		policy_decision_clear(&dec);
		return -ESTALE;
	}
	/* the record first: an open that cannot be recorded is not served */
	uint64_t handle = UINT64_MAX;
	if (d->usage) {
		char program[32], user[64];
		usage_program_name(who->pid, program, sizeof program);
		identity_user_name(who->uid, user, sizeof user);
		struct usage_open_info ev = {
			.uid = who->uid, .pid = who->pid, .user = user, .program = program,
			.domain = n->domain, .product = n->product, .version = n->version, .file = n->name,
			.kind = n->role == ROLE_DATA ? USAGE_DATA : USAGE_DISCOVERY,
			.decision = decision == DECISION_ALLOW ? USAGE_ALLOW
				  : decision == DECISION_MASK ? USAGE_MASK : USAGE_DENY,
		};
		if (usage_begin(d->usage, &ev, &handle) && n->role == ROLE_DATA && decision != DECISION_DENY) {
			syslog(LOG_ERR, "usage journal full: refusing %s/%s/%s/%s to uid %u (no read without a record)",
			       n->domain, n->product, n->version, n->name, (unsigned)who->uid);
			free(card);
			view_plan_free(plan);
			policy_decision_clear(&dec);
			return -EIO;
		}
	}
	int fd;
	struct backing_ref *shared = NULL;
	struct view_info info = {0};
	struct mesh_err err = {0};
	if (decision == DECISION_DENY) {
		syslog(LOG_NOTICE, "deny uid %u pid %d %s/%s/%s/%s: %s", (unsigned)who->uid, (int)who->pid, n->domain,
		       n->product, n->version, n->name, dec.reason);
		fd = -EACCES;
	} else if (decision == DECISION_MASK) {
		fd = view_open(d, n, plan, &info, &err);
		if (fd >= 0) {
			vino_note(d, ino, n, plan, &info);
		} else {
			/* never the clear file instead: deny, and say why */
			syslog(LOG_ERR, "deny uid %u pid %d %s/%s/%s/%s: masked (%s) but the view cannot be served: %s",
			       (unsigned)who->uid, (int)who->pid, n->domain, n->product, n->version, n->name,
			       plan->text, err.msg);
			fd = -EACCES;
		}
	} else if (card) {
		fd = memfd_create("meshfs-card", MFD_CLOEXEC);
		if (fd < 0 || mesh_write_all(fd, card, card_len) < 0) {
			syslog(LOG_ERR, "card %s for uid %u: memfd: %m", n->backing, (unsigned)who->uid);
			if (fd >= 0)
				close(fd);
			fd = -EIO;
		} else {
			struct view_info ci = {.size = card_len};
			struct mesh_sha256 *sh = mesh_sha256_new();
			mesh_sha256_update(sh, card, card_len);
			mesh_sha256_final(sh, ci.sha256);
			vino_note_text(d, ino, n, "card for this reader", &ci);
		}
	} else {
		fd = backing_cache_get(d->backing, n->ino, n->backing, &shared);
	}
	free(card);
	view_plan_free(plan);
	policy_decision_clear(&dec);
	if (fd < 0) {
		if (d->usage)
			usage_end(d->usage, handle, 0, 0, 0);
		return fd;
	}
	struct daemon_file *f = xcalloc(1, sizeof *f);
	f->usage_handle = handle;
	f->fd = fd;
	f->shared = shared;
	f->decision = decision;
	f->rewritten = n->version == NULL || card_node_generated(n);
	/* releases and views never change under a name: the kernel keeps
	 * their pages, except a view rebuilt or re-verified just now and the
	 * files meshfs rewrites in place (a product's descriptor and card) */
	*keep_cache = !info.fresh && !f->rewritten;
	pthread_mutex_lock(&d->files_lock);
	f->next = d->files;
	if (d->files)
		d->files->prev = f;
	d->files = f;
	pthread_mutex_unlock(&d->files_lock);
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
	return f->fd;
}

bool daemon_file_passthrough_ok(const struct daemon_file *f)
{
	/* a view is a file of its own, with an inode of its own; what meshfs
	 * rewrites in place is not */
	return !f->rewritten;
}

int *daemon_file_backing_id(struct daemon_file *f)
{
	return &f->passthrough_id;
}

void daemon_file_release(struct mesh_daemon *d, struct daemon_file *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&d->files_lock);
	if (f->prev)
		f->prev->next = f->next;
	else
		d->files = f->next;
	if (f->next)
		f->next->prev = f->prev;
	pthread_mutex_unlock(&d->files_lock);
	if (d->usage)
		usage_end(d->usage, f->usage_handle, __atomic_load_n(&f->bytes, __ATOMIC_RELAXED),
			  __atomic_load_n(&f->reads, __ATOMIC_RELAXED), 0);
	if (f->shared)
		backing_cache_put(f->shared);
	else
		close(f->fd);
	free(f);
}

int daemon_access(struct mesh_daemon *d, const struct daemon_caller *who,
		  const struct cat_node *n, int mask)
{
	if (mask & W_OK)
		return -EROFS;
	if ((mask & X_OK) && n->kind == CAT_FILE)
		return -EACCES;
	if (!daemon_may_discover(d, who, n))
		return -ENOENT;
	if ((mask & R_OK) && n->kind == CAT_FILE && n->role == ROLE_DATA) {
		struct policy_decision dec;
		struct view_plan *plan;
		enum daemon_decision r = file_decision(d, who, n, &dec, &plan);
		view_plan_free(plan);
		policy_decision_clear(&dec);
		return r == DECISION_DENY ? -EACCES : 0;
	}
	return 0;
}
