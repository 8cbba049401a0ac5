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
#include <sys/stat.h>
#include <sys/syscall.h>
#include <syslog.h>
#include <unistd.h>

#include "identity.h"
#include "mask.h"
#include "pgsink.h"
#include "mesh_util.h"
#include "policy.h"
#include "unique.h"
#include "usage.h"
#include "yamltree.h"

struct mesh_daemon {
	struct daemon_options opts;
	char *store;
	int root_fd;                     /* the store's directory */
	pthread_mutex_t lock;            /* protects `current`, `policy`, `masks` */
	struct catalog *current;
	struct policy_ref *policy;       /* NULL: no valid policy ever loaded */
	atomic_bool policy_loaded;       /* policy != NULL, readable without the lock */
	char policy_error[MESH_ERR_MAX];
	struct mask_cache {              /* masking indexes of data files, by inode */
		uint64_t ino;
		struct mask_index *ix;
	} *masks;
	size_t n_masks;
	/* watcher */
	pthread_t watcher;
	bool watcher_running;
	int stop_fd;                     /* eventfd: wakes the watcher to stop */
	int inotify_fd;
	struct daemon_invalidate inval;
	struct usage *usage;             /* NULL until daemon_start, or with no_usage */
	_Atomic int poll_ms;             /* ops: changed by daemon_reload (SIGHUP) */
	struct pgsink *sink;             /* ops: usage to PostgreSQL, or NULL */
	pthread_mutex_t files_lock;      /* ops: protects `files` */
	struct daemon_file *files;       /* open files, released at close if the
					    kernel never sent RELEASE (unmount) */
};

/* A policy snapshot shared by the opens that decided with it. */
struct policy_ref {
	struct policy *p;
	int refs;                        /* under the daemon's lock */
};

struct daemon_file {
	int fd;
	enum daemon_decision decision;
	bool maskable;                   /* the file has classified columns */
	bool passthrough;
	const struct mask_index *mask_ix;   /* owned by the daemon's cache */
	struct mask_plan *mask_plan;
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
	reload_policy(d);
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
	reload_policy(d);
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
/* A fingerprint of the policy files people edit by hand (mesh.yaml and
 * every domain.yaml): their sizes and modification times.  An edit that
 * no meshctl command announced through the generation counter still
 * takes effect within a poll interval. */
static uint64_t policy_fingerprint(const char *store)
{
	uint64_t h = 0xcbf29ce484222325ull;
	struct stat st;
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/mesh.yaml", store);
	if (stat(path, &st) == 0)
		h = (h ^ (uint64_t)st.st_mtim.tv_sec ^ ((uint64_t)st.st_mtim.tv_nsec << 20) ^ (uint64_t)st.st_size) *
		    0x100000001b3ull;
	snprintf(path, sizeof path, "%s/domains", store);
	DIR *dir = opendir(path);
	struct dirent *de;
	while (dir && (de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		char file[PATH_MAX + 300];
		snprintf(file, sizeof file, "%s/%s/domain.yaml", path, de->d_name);
		if (stat(file, &st) == 0)
			h = (h ^ mesh_hash64(de->d_name, strlen(de->d_name)) ^ (uint64_t)st.st_mtim.tv_sec ^
			     ((uint64_t)st.st_mtim.tv_nsec << 20) ^ (uint64_t)st.st_size) * 0x100000001b3ull;
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

/* mesh.yaml usage: {onJournalFull: refuse|serve, retentionDays: N}: the
 * governance team's choice between "no read without a record" (default)
 * and availability, and how long raw events are kept before they are
 * folded into daily rollups. */
static void usage_settings(const char *store, bool *serve, unsigned *retention_days)
{
	*serve = false;
	*retention_days = 0;
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
	}
	yamltree_free(root);
	free(text);
}

/* ---- ops: SIGHUP ---- */

int daemon_reload(struct mesh_daemon *d, double poll_interval, struct mesh_err *err)
{
	if (poll_interval > 0)
		atomic_store_explicit(&d->poll_ms, (int)(poll_interval * 1000), memory_order_relaxed);
	bool serve;
	unsigned retention_days;
	usage_settings(d->store, &serve, &retention_days);
	usage_configure(d->usage, serve, retention_days);
	return daemon_rescan(d, err);
}

static void sink_shipped(void *ctx, int64_t seq)
{
	usage_outbox_shipped(ctx, seq);
}

int daemon_start(struct mesh_daemon *d, const struct daemon_invalidate *inval, struct mesh_err *err)
{
	if (inval)
		d->inval = *inval;
	if (!d->opts.no_usage) {
		char host[256] = "localhost", dir[4096];
		if (d->opts.hostname)
			snprintf(host, sizeof host, "%s", d->opts.hostname);
		else
			gethostname(host, sizeof host - 1);
		if (d->opts.usage_dir)
			snprintf(dir, sizeof dir, "%s", d->opts.usage_dir);
		else {
			snprintf(dir, sizeof dir, "%s/usage", d->store);
			if (mkdir(dir, 0755) < 0 && errno != EEXIST)
				return mesh_errf(err, -errno, "%s: %s", dir, strerror(errno));
			snprintf(dir, sizeof dir, "%s/usage/%s", d->store, host);
		}
		struct usage_config cfg = {.slots = d->opts.usage_slots, .hostname = host,
					   .metrics_path = d->opts.metrics_path};
		usage_settings(d->store, &cfg.serve_when_full, &cfg.retention_days);
		/* ops: fleet usage in PostgreSQL (-o usage_sink wins over mesh.yaml) */
		char sink[2048] = "";
		if (d->opts.usage_sink)
			snprintf(sink, sizeof sink, "%s", d->opts.usage_sink);
		else
			pgsink_store_setting(d->store, sink, sizeof sink);
		cfg.outbox = sink[0] != '\0';
		int rc = usage_open(dir, &cfg, &d->usage, err);
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
	pgsink_close(d->sink, 3000);      /* ops: what is not shipped waits in the outbox */
	if (d->stop_fd >= 0)
		close(d->stop_fd);
	if (d->inotify_fd >= 0)
		close(d->inotify_fd);
	if (d->root_fd >= 0)
		close(d->root_fd);
	catalog_unref(d->current);
	if (d->policy && --d->policy->refs == 0) {
		policy_free(d->policy->p);
		free(d->policy);
	}
	for (size_t i = 0; i < d->n_masks; i++)
		mask_index_free(d->masks[i].ix);
	free(d->masks);
	pthread_mutex_destroy(&d->lock);
	pthread_mutex_destroy(&d->files_lock);
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
	 * kernel may keep entries for a day.  `latest` moves: a second is the
	 * safety net behind its invalidation.  Restricted products differ per
	 * user: never cached (the kernel would answer one user's lookup from
	 * another's). */
	if (node_restricted(d, n))
		return 0;
	return n->kind == CAT_LATEST ? 1 : 86400;
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
		const char *classes[POLICY_MAX_MASKED];
		size_t nc = 0;
		for (uint32_t i = 0; n->kind == CAT_FILE && i < n->n_columns && nc < POLICY_MAX_MASKED; i++)
			classes[nc++] = n->columns[i].classification;
		policy_decide(r->p, &id, n->domain, n->product, n->version, classes, nc, time(NULL), out);
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
	return dec.result != POLICY_DENY;
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

/* The masking index of a data file, built at its first masked open and
 * kept: releases never change. */
static const struct mask_index *mask_index_for(struct mesh_daemon *d, const struct cat_node *n, int fd)
{
	pthread_mutex_lock(&d->lock);
	for (size_t i = 0; i < d->n_masks; i++)
		if (d->masks[i].ino == n->ino) {
			const struct mask_index *ix = d->masks[i].ix;
			pthread_mutex_unlock(&d->lock);
			return ix;
		}
	pthread_mutex_unlock(&d->lock);
	struct mask_index *ix = NULL;
	struct mesh_err err = {0};
	if (mask_index_build(fd, n->format == FMT_CSV ? MASK_CSV : MASK_JSONL, &ix, &err)) {
		syslog(LOG_ERR, "%s: %s", n->backing, err.msg);
		return NULL;
	}
	pthread_mutex_lock(&d->lock);
	for (size_t i = 0; i < d->n_masks; i++)
		if (d->masks[i].ino == n->ino) {   /* another thread was faster */
			mask_index_free(ix);
			ix = d->masks[i].ix;
			pthread_mutex_unlock(&d->lock);
			return ix;
		}
	d->masks = xrealloc(d->masks, (d->n_masks + 1) * sizeof *d->masks);
	d->masks[d->n_masks++] = (struct mask_cache){n->ino, ix};
	pthread_mutex_unlock(&d->lock);
	return ix;
}

int daemon_file_open(struct mesh_daemon *d, const struct daemon_caller *who,
		     const struct cat_node *n, int flags, struct daemon_file **out,
		     bool *direct_io, bool *keep_cache)
{
	if (n->kind != CAT_FILE)
		return -EISDIR;
	if ((flags & O_ACCMODE) != O_RDONLY || (flags & (O_TRUNC | O_CREAT)))
		return -EROFS;
	struct policy_decision dec = {.result = POLICY_ALLOW};
	if (n->role == ROLE_DATA)
		decide(d, who, n, &dec);
	else if (!daemon_may_discover(d, who, n))
		return -ENOENT;
	if (dec.result == POLICY_MASK && n->format != FMT_CSV && n->format != FMT_JSONL) {
		/* a format meshfs cannot rewrite: fail closed */
		dec.result = POLICY_DENY;
		size_t len = strlen(dec.reason);
		snprintf(dec.reason + len, sizeof dec.reason - len, "; %s cannot be masked (not CSV or JSON Lines): denied",
			 n->name);
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
			.decision = dec.result == POLICY_ALLOW ? USAGE_ALLOW
				  : dec.result == POLICY_MASK ? USAGE_MASK : USAGE_DENY,
		};
		if (usage_begin(d->usage, &ev, &handle) && n->role == ROLE_DATA && dec.result != POLICY_DENY) {
			syslog(LOG_ERR, "usage journal full: refusing %s/%s/%s/%s to uid %u (no read without a record)",
			       n->domain, n->product, n->version, n->name, (unsigned)who->uid);
			return -EIO;
		}
	}
	if (dec.result == POLICY_DENY) {
		syslog(LOG_NOTICE, "deny uid %u pid %d %s/%s/%s/%s: %s", (unsigned)who->uid, (int)who->pid, n->domain,
		       n->product, n->version, n->name, dec.reason);
		if (d->usage)
			usage_end(d->usage, handle, 0, 0, 0);
		return -EACCES;
	}
	int fd = open_backing(d, n->backing);
	if (fd < 0) {
		if (d->usage)
			usage_end(d->usage, handle, 0, 0, 0);
		return fd;
	}
	struct daemon_file *f = xcalloc(1, sizeof *f);
	f->usage_handle = handle;
	f->fd = fd;
	f->decision = dec.result == POLICY_MASK ? DECISION_MASK : DECISION_ALLOW;
	f->maskable = n->n_columns > 0;
	if (f->decision == DECISION_MASK) {
		const char *cols[64];
		size_t nc = 0;
		for (uint32_t i = 0; i < n->n_columns && nc < 64; i++)
			for (size_t k = 0; k < dec.n_masked; k++)
				if (!strcmp(n->columns[i].classification, dec.masked[k]))
					cols[nc++] = n->columns[i].name;
		struct mesh_err err = {0};
		f->mask_ix = mask_index_for(d, n, fd);
		if (!f->mask_ix || mask_plan_new(f->mask_ix, cols, nc, &f->mask_plan, &err)) {
			syslog(LOG_ERR, "%s: cannot mask (%s): denied", n->backing, err.msg);
			if (d->usage)
				usage_end(d->usage, handle, 0, 0, 0);
			close(fd);
			free(f);
			return -EACCES;
		}
	}
	/* Masked content is per reader: never through the shared page cache.
	 * Clear opens of a file that has classified columns bypass it too, so
	 * that no clear page is ever cached for a masked reader's private
	 * mapping to find (see README, "Access control"). */
	*direct_io = f->maskable && !d->opts.open_mesh;
	*keep_cache = !*direct_io;
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
	if (f->decision == DECISION_MASK) {
		size_t got = 0;
		struct mesh_err err = {0};
		int rc = mask_read(f->mask_ix, f->mask_plan, f->fd, buf, size, off, &got, &err);
		if (rc) {
			/* never a partly masked buffer: the read fails */
			syslog(LOG_ERR, "masked read failed: %s", err.msg);
			return rc;
		}
		r = (ssize_t)got;
	} else {
		do
			r = pread(f->fd, buf, size, off);
		while (r < 0 && errno == EINTR);
		if (r < 0)
			return -errno;
	}
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
	close(f->fd);
	mask_plan_free(f->mask_plan);
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
		decide(d, who, n, &dec);
		if (dec.result == POLICY_MASK && n->format != FMT_CSV && n->format != FMT_JSONL)
			return -EACCES;
		return dec.result == POLICY_DENY ? -EACCES : 0;
	}
	return 0;
}
