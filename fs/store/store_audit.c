/*
 * store_audit.c - is the store locked down: the full walk (store_audit,
 * and store_lock_down's fixing walk), and the incremental audit against
 * this host's record of the last clean one (contracts in include/store.h
 * and include/store_audit.h).
 *
 * Not here: the record's file format (audit_state.c), the daemon's
 * background audit (store_guard.c).
 */
#include "store.h"
#include "store_audit.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "audit_state.h"
#include "identity.h"
#include "mesh_util.h"
#include "state_dir.h"


#define AUDIT_MAX_DEPTH  32     /* deeper than any store layout: reported */
#define AUDIT_MAX_LINES  20

struct audit {
	uid_t uid;
	gid_t gid;
	bool fix;
	size_t problems, fixed;
	struct strbuf report;
	int err;                /* first failure of the walk or of a fix */
	struct audit_state *rec;   /* directories recorded as read (NULL: none) */
	struct timespec started;   /* CLOCK_REALTIME, for racy records */
	size_t added;              /* records added by the walk */
	struct incr *inc;          /* an incremental audit's records (NULL: a full walk) */
	const atomic_bool *cancel; /* stop the walk when true (NULL: never) */
	bool cancelled;
};

static bool incr_known(struct incr *inc, uint32_t parent, const char *name, const struct stat *st);

/* Timestamps move in clock ticks (a few ms, a second on some shared
 * filesystems): a directory whose ctime is this close to the audit may
 * change again without its ctime moving, so its record is "racy" and
 * re-read next time (git's racy-index rule). */
#define AUDIT_RACY_SECONDS 2

static uint8_t racy_flag(const struct audit *a, const struct stat *st)
{
	long long ctime_ns = (long long)st->st_ctim.tv_sec * 1000000000LL + st->st_ctim.tv_nsec;
	long long since_ns = ((long long)a->started.tv_sec - AUDIT_RACY_SECONDS) * 1000000000LL + a->started.tv_nsec;
	return ctime_ns >= since_ns ? AUDIT_REC_RACY : 0;
}

static void audit_problem(struct audit *a, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void audit_problem(struct audit *a, const char *path, const char *fmt, ...)
{
	a->problems++;
	if (a->problems > AUDIT_MAX_LINES)
		return;
	char what[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	strbuf_printf(&a->report, "  %s: %s\n", path, what);
}

static const char *type_name(mode_t m)
{
	return S_ISLNK(m) ? "a symbolic link" : S_ISFIFO(m) ? "a FIFO" : S_ISSOCK(m) ? "a socket"
	     : S_ISCHR(m) || S_ISBLK(m) ? "a device" : "not a file or directory";
}

/* Check (or fix) one directory or regular file, already opened as fd. */
static void audit_entry(struct audit *a, int fd, const struct stat *st, const char *path)
{
	bool owner_ok = st->st_uid == a->uid && (!a->fix || st->st_gid == a->gid);
	bool mode_ok = (st->st_mode & 077) == 0 && !(st->st_mode & (S_ISUID | S_ISGID));
	if (owner_ok && mode_ok)
		return;
	if (a->fix) {
		if ((!owner_ok && fchown(fd, a->uid, a->gid) < 0) ||
		    (!mode_ok && fchmod(fd, st->st_mode & 0700) < 0)) {
			if (!a->err)
				a->err = -errno;
			audit_problem(a, path, "cannot fix: %s", strerror(errno));
		} else {
			a->fixed++;
		}
		return;
	}
	if (!owner_ok) {
		char who[64];
		identity_user_name(st->st_uid, who, sizeof who);
		audit_problem(a, path, "owned by %s, not by the store's owner", who);
	}
	if (!mode_ok)
		audit_problem(a, path, "mode %04o: readable, writable or searchable by others than the "
			      "store's owner", (unsigned)(st->st_mode & 07777));
}

/* STORE/.incoming: the mesh service's private copies of releases being
 * published, where it stands in for a client's symlinks and FIFOs with
 * placeholders (so publish reports them).  Owned and 0700 like the rest
 * of the store; the placeholders are never opened and are no problem. */
#define STORE_INCOMING ".incoming"

/* Audit the entries of the directory open as dirfd (its own entry is
 * checked by the caller); directories found are recorded under record
 * `rec` of a->rec (AUDIT_STATE_NONE: not recorded). */
static void audit_dir(struct audit *a, int dirfd, const char *path, int depth, bool spool, uint32_t rec)
{
	int fd = dup(dirfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		if (!a->err)
			a->err = -errno;
		audit_problem(a, path, "cannot read: %s", strerror(errno));
		return;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		if (a->cancel && atomic_load_explicit(a->cancel, memory_order_relaxed)) {
			a->cancelled = true;
			break;
		}
		const char *name = de->d_name;
		if (!strcmp(name, ".") || !strcmp(name, ".."))
			continue;
		char sub[PATH_MAX];
		snprintf(sub, sizeof sub, "%s/%s", path, name);
		struct stat st;
		if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;   /* gone meanwhile (a rename into place) */
		/* placeholders: a link's mode means nothing, a FIFO's does */
		if (spool && (S_ISLNK(st.st_mode) || S_ISFIFO(st.st_mode)) && st.st_uid == a->uid &&
		    (S_ISLNK(st.st_mode) || (st.st_mode & 077) == 0))
			continue;
		if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
			if (a->fix && unlinkat(dirfd, name, 0) == 0) {
				a->fixed++;
				continue;
			}
			audit_problem(a, sub, "%s (a store holds directories and regular files only)",
				      type_name(st.st_mode));
			continue;
		}
		/* a subdirectory with a record of its own is checked by it */
		if (a->inc && S_ISDIR(st.st_mode) && incr_known(a->inc, rec, name, &st))
			continue;
		/* a check needs no descriptor: fstatat says type, owner and mode;
		 * only a fix does (fchown/fchmod of what was checked) */
		if (!a->fix && S_ISREG(st.st_mode)) {
			audit_entry(a, -1, &st, sub);
			continue;
		}
		int efd = S_ISDIR(st.st_mode) ? mesh_open_dir_at(dirfd, name)
					      : mesh_open_regular_at(dirfd, name, O_RDONLY, 0, &st);
		if (efd < 0) {
			if (efd != -ENOENT)
				audit_problem(a, sub, "%s", mesh_open_strerror(efd));
			continue;
		}
		if (fstat(efd, &st) == 0) {
			audit_entry(a, efd, &st, sub);
			if (S_ISDIR(st.st_mode)) {
				/* recorded as stat'ed before its entries are read */
				uint32_t child = AUDIT_STATE_NONE;
				if (a->rec && rec != AUDIT_STATE_NONE) {
					child = audit_state_add(a->rec, rec, name, strlen(name), &st, racy_flag(a, &st));
					a->added++;
				}
				if (depth >= AUDIT_MAX_DEPTH)
					audit_problem(a, sub, "nested deeper than %d levels: not checked", AUDIT_MAX_DEPTH);
				else
					audit_dir(a, efd, sub, depth + 1,
						  spool || (depth == 1 && !strcmp(name, STORE_INCOMING)), child);
			}
		}
		close(efd);
	}
	closedir(d);
}

static int audit_run(const char *store, struct audit *a, struct mesh_err *err)
{
	int root = mesh_open_dir_at(AT_FDCWD, store);
	if (root < 0)
		return mesh_errf(err, root, "%s: %s", store, strerror(-root));
	struct stat st;
	if (fstat(root, &st) < 0) {
		int e = -errno;
		close(root);
		return mesh_errf(err, e, "%s: %s", store, strerror(-e));
	}
	if (!a->fix) {
		a->uid = st.st_uid;
		a->gid = st.st_gid;
	}
	clock_gettime(CLOCK_REALTIME, &a->started);
	audit_entry(a, root, &st, store);
	uint32_t rec = AUDIT_STATE_NONE;
	if (a->rec)
		rec = audit_state_add(a->rec, AUDIT_STATE_NONE, "", 0, &st, racy_flag(a, &st));
	audit_dir(a, root, store, 1, false, rec);
	close(root);
	return 0;
}

/* The problem count; the report (with how to fix) into *report. */
static int audit_finish(struct audit *a, const char *store, char **report)
{
	if (report)
		*report = NULL;
	if (a->problems > AUDIT_MAX_LINES)
		strbuf_printf(&a->report, "  ... and %zu more\n", a->problems - AUDIT_MAX_LINES);
	if (a->problems) {
		char owner[64];
		identity_user_name(a->uid, owner, sizeof owner);
		strbuf_printf(&a->report, "fix: meshctl --store %s doctor --fix   (as root: everything to %s, "
			      "mode 0700/0600; or by hand: chown -R %s %s && chmod -R go= %s)", store, owner,
			      owner, store, store);
	}
	if (report && a->problems)
		*report = strbuf_detach(&a->report, NULL);
	strbuf_release(&a->report);
	return (int)(a->problems > INT_MAX ? INT_MAX : a->problems);
}

int store_audit(const char *store, char **report, struct mesh_err *err)
{
	struct audit a = {.fix = false};
	if (report)
		*report = NULL;
	int rc = audit_run(store, &a, err);
	if (rc) {
		strbuf_release(&a.report);
		return rc;
	}
	return audit_finish(&a, store, report);
}

int store_lock_down(const char *store, uid_t uid, gid_t gid, size_t *fixed, struct mesh_err *err)
{
	struct audit a = {.uid = uid, .gid = gid, .fix = true};
	int rc = audit_run(store, &a, err);
	if (!rc && a.err) {
		/* the report holds the first failures */
		if (a.report.len)
			a.report.buf[--a.report.len] = '\0';
		rc = mesh_errf(err, a.err, "%s: cannot lock down every entry:\n%s", store,
			       a.report.buf ? a.report.buf : "");
	}
	if (fixed)
		*fixed = a.fixed;
	strbuf_release(&a.report);
	return rc;
}


/* ---- incremental ---- */

enum { REC_SAME, REC_CHANGED, REC_GONE };

struct incr {
	struct audit_state *st;
	size_t n_orig;          /* records loaded; later ones were added now */
	unsigned char *status;  /* REC_* of the loaded records */
	unsigned char *seen;    /* found again by its parent's re-read */
	uint32_t *path_off;     /* into paths: each loaded record's relative path */
	struct strbuf paths;
	uint32_t *first_child, *next_sibling;
	unsigned char *depth;   /* components below the root (capped) */
	unsigned char *spool;   /* inside STORE/.incoming */
};

/* Is the subdirectory (parent, name), just stat'ed as *st, one of the
 * loaded records, still the same directory?  Then its own record checks
 * it (stat compared, re-read if it changed). */
static bool incr_known(struct incr *inc, uint32_t parent, const char *name, const struct stat *st)
{
	if (parent >= inc->n_orig)
		return false;
	uint32_t j = audit_state_find(inc->st, parent, name, strlen(name));
	if (j == AUDIT_STATE_NONE || j >= inc->n_orig || inc->status[j] == REC_GONE)
		return false;
	if (inc->st->recs[j].ino != (uint64_t)st->st_ino || inc->st->recs[j].dev != (uint64_t)st->st_dev) {
		inc->status[j] = REC_GONE;   /* replaced by another directory: audited whole, anew */
		return false;
	}
	inc->seen[j] = 1;
	return true;
}

static const char *incr_path(const struct incr *inc, uint32_t i)
{
	return inc->paths.buf + inc->path_off[i];
}

/* Phase 1: stat every loaded record (in threads: the stats are
 * independent), then mark what changed, parents before children. */
enum { STAT_SAME, STAT_CHANGED, STAT_MISSING };

struct stat_slice {
	struct incr *inc;
	int root;
	uint32_t from, to;
	unsigned char *result;
	pthread_t thread;
};

static void *stat_slice_run(void *arg)
{
	struct stat_slice *sl = arg;
	const struct audit_state *st = sl->inc->st;
	for (uint32_t i = sl->from; i < sl->to; i++) {
		struct stat sb;
		if (sl->inc->path_off[i] == UINT32_MAX)
			sl->result[i] = STAT_CHANGED;   /* path too long: the re-read reports it */
		else if (fstatat(sl->root, incr_path(sl->inc, i), &sb, AT_SYMLINK_NOFOLLOW) < 0)
			sl->result[i] = errno == ENOENT || errno == ENOTDIR ? STAT_MISSING : STAT_CHANGED;
		else
			sl->result[i] = audit_state_same(st, i, &sb) && !(st->recs[i].flags & AUDIT_REC_RACY)
				      ? STAT_SAME : STAT_CHANGED;
	}
	return NULL;
}

#define STAT_THREADS_MAX 4
#define STAT_SLICE_MIN   20000   /* fewer records: one thread */

static void incr_stat_all(struct incr *inc, int root)
{
	struct audit_state *st = inc->st;
	size_t n = inc->n_orig;
	char path[PATH_MAX];
	for (uint32_t i = 0; i < n; i++) {
		const struct audit_dir_rec *r = &st->recs[i];
		inc->first_child[i] = inc->next_sibling[i] = AUDIT_STATE_NONE;
		if (i == 0) {
			inc->path_off[0] = (uint32_t)inc->paths.len;
			strbuf_add(&inc->paths, ".", 2);
			continue;
		}
		uint32_t p = r->parent;
		inc->next_sibling[i] = inc->first_child[p];
		inc->first_child[p] = i;
		inc->depth[i] = inc->depth[p] < 255 ? inc->depth[p] + 1 : 255;
		inc->spool[i] = inc->spool[p] || (p == 0 && r->name_len == strlen(STORE_INCOMING) &&
				!memcmp(st->names + r->name_off, STORE_INCOMING, r->name_len));
		int len = inc->path_off[p] == UINT32_MAX ? -1
			: p == 0 ? snprintf(path, sizeof path, "%.*s", (int)r->name_len, st->names + r->name_off)
			: snprintf(path, sizeof path, "%s/%.*s", incr_path(inc, p), (int)r->name_len,
				   st->names + r->name_off);
		if (len < 0 || (size_t)len >= sizeof path || inc->paths.len > UINT32_MAX - sizeof path) {
			inc->path_off[i] = UINT32_MAX;
			continue;
		}
		inc->path_off[i] = (uint32_t)inc->paths.len;
		strbuf_add(&inc->paths, path, (size_t)len + 1);
	}
	unsigned char *result = xcalloc(n ? n : 1, 1);
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	size_t threads = n / STAT_SLICE_MIN;
	if (threads > (size_t)(cpus > 0 ? cpus : 1))
		threads = (size_t)(cpus > 0 ? cpus : 1);
	if (threads > STAT_THREADS_MAX)
		threads = STAT_THREADS_MAX;
	if (threads < 1)
		threads = 1;
	struct stat_slice slices[STAT_THREADS_MAX];
	for (size_t t = 0; t < threads; t++) {
		slices[t] = (struct stat_slice){inc, root, (uint32_t)(n * t / threads), (uint32_t)(n * (t + 1) / threads),
						result, 0};
		/* slice 0 on this thread; a slice whose thread cannot start too */
		if (t == 0 || pthread_create(&slices[t].thread, NULL, stat_slice_run, &slices[t]) != 0)
			slices[t].inc = NULL;
	}
	stat_slice_run(&(struct stat_slice){inc, root, slices[0].from, slices[0].to, result, 0});
	for (size_t t = 1; t < threads; t++) {
		if (slices[t].inc)
			pthread_join(slices[t].thread, NULL);
		else
			stat_slice_run(&(struct stat_slice){inc, root, slices[t].from, slices[t].to, result, 0});
	}
	for (uint32_t i = 0; i < n; i++) {
		uint32_t p = st->recs[i].parent;
		if (i && inc->status[p] == REC_GONE) {
			inc->status[i] = REC_GONE;
		} else if (result[i] == STAT_MISSING) {
			inc->status[i] = REC_GONE;
			if (i && inc->status[p] == REC_SAME)
				inc->status[p] = REC_CHANGED;
		} else {   /* children come later: none has marked it yet */
			inc->status[i] = result[i] == STAT_SAME ? REC_SAME : REC_CHANGED;
		}
	}
	free(result);
}

/* Phase 2: re-read a changed directory: check its entries, new
 * subdirectories whole; recorded children not found are gone. */
static void incr_reread(struct audit *a, struct incr *inc, int root, const char *store, uint32_t i)
{
	char path[PATH_MAX];
	if (inc->path_off[i] == UINT32_MAX) {
		audit_problem(a, store, "a directory's path is longer than %d bytes: not checked", PATH_MAX);
		return;
	}
	snprintf(path, sizeof path, "%s%s%s", store, i ? "/" : "", i ? incr_path(inc, i) : "");
	int fd = i ? mesh_open_dir_at(root, incr_path(inc, i)) : dup(root);
	if (fd < 0) {
		struct stat sb;
		if (fstatat(root, incr_path(inc, i), &sb, AT_SYMLINK_NOFOLLOW) < 0) {
			inc->status[i] = REC_GONE;   /* removed meanwhile: its parent's record moved too */
			return;
		}
		if (S_ISREG(sb.st_mode))
			audit_entry(a, -1, &sb, path);
		else if (!S_ISDIR(sb.st_mode))
			audit_problem(a, path, "%s (a store holds directories and regular files only)",
				      type_name(sb.st_mode));
		else
			audit_problem(a, path, "cannot read: %s", mesh_open_strerror(fd));
		inc->status[i] = REC_GONE;
		return;
	}
	struct stat sb;
	if (fstat(fd, &sb) < 0) {
		audit_problem(a, path, "cannot read: %s", strerror(errno));
		close(fd);
		return;
	}
	syslog(LOG_DEBUG, "store audit: re-reading %s (%s)", path,
	       inc->st->recs[i].flags & AUDIT_REC_RACY ? "changed too close to its record" : "changed");
	audit_entry(a, fd, &sb, path);
	audit_state_set(inc->st, i, &sb, racy_flag(a, &sb));
	for (uint32_t c = inc->first_child[i]; c != AUDIT_STATE_NONE; c = inc->next_sibling[c])
		inc->seen[c] = 0;
	int depth = inc->depth[i] + 1;
	if (depth > AUDIT_MAX_DEPTH)
		audit_problem(a, path, "nested deeper than %d levels: not checked", AUDIT_MAX_DEPTH);
	else
		audit_dir(a, fd, path, depth, inc->spool[i], i);
	close(fd);
	for (uint32_t c = inc->first_child[i]; c != AUDIT_STATE_NONE; c = inc->next_sibling[c])
		if (!inc->seen[c])
			inc->status[c] = REC_GONE;
}

/* The records as they are now: gone ones and their subtrees dropped. */
static struct audit_state *incr_compact(const struct incr *inc)
{
	const struct audit_state *st = inc->st;
	struct audit_state *out = audit_state_new(st->store, st->root_dev, st->root_ino, st->owner);
	uint32_t *map = xmalloc((st->n ? st->n : 1) * sizeof *map);
	for (size_t i = 0; i < st->n; i++) {
		const struct audit_dir_rec *r = &st->recs[i];
		map[i] = AUDIT_STATE_NONE;
		if (i < inc->n_orig && inc->status[i] == REC_GONE)
			continue;
		uint32_t parent = i ? map[r->parent] : AUDIT_STATE_NONE;
		if (i && parent == AUDIT_STATE_NONE)
			continue;
		struct stat sb = {0};
		sb.st_dev = (dev_t)r->dev;
		sb.st_ino = (ino_t)r->ino;
		sb.st_mode = (mode_t)r->mode;
		sb.st_uid = (uid_t)r->uid;
		sb.st_ctim.tv_sec = (time_t)r->ctime_sec;
		sb.st_ctim.tv_nsec = r->ctime_nsec;
		sb.st_mtim.tv_sec = (time_t)r->mtime_sec;
		sb.st_mtim.tv_nsec = r->mtime_nsec;
		map[i] = audit_state_add(out, parent, st->names + r->name_off, r->name_len, &sb, r->flags);
	}
	free(map);
	return out;
}

static double seconds_since(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* The incremental audit against `old` (taken over).  Returns problems, or
 * -ESTALE when the record cannot be used (a full audit follows). */
static int incr_run(struct audit *a, int root, const struct stat *root_st, const char *store,
		    struct audit_state *old, const char *state_path, struct store_audit_info *info)
{
	struct incr inc = {.st = old, .n_orig = old->n, .paths = STRBUF_INIT};
	size_t n = old->n;
	inc.status = xcalloc(n, 1);
	inc.seen = xcalloc(n, 1);
	inc.depth = xcalloc(n, 1);
	inc.spool = xcalloc(n, 1);
	inc.path_off = xcalloc(n, sizeof *inc.path_off);
	inc.first_child = xcalloc(n, sizeof *inc.first_child);
	inc.next_sibling = xcalloc(n, sizeof *inc.next_sibling);
	a->uid = root_st->st_uid;
	a->gid = root_st->st_gid;
	a->rec = old;
	a->inc = &inc;
	clock_gettime(CLOCK_REALTIME, &a->started);
	incr_stat_all(&inc, root);
	size_t reread = 0, gone = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (i && inc.status[old->recs[i].parent] == REC_GONE)
			inc.status[i] = REC_GONE;
		if (inc.status[i] == REC_CHANGED) {
			reread++;
			incr_reread(a, &inc, root, store, i);
		}
	}
	for (uint32_t i = 0; i < n; i++)
		gone += inc.status[i] == REC_GONE;
	int rc = 0;
	if (!a->problems && !a->cancelled && (reread || gone || a->added) && state_path) {
		struct audit_state *fresh = incr_compact(&inc);
		fresh->written_at = (int64_t)a->started.tv_sec;
		struct mesh_err serr = {0};
		if (audit_state_save(state_path, fresh, &serr))
			snprintf(info->note, sizeof info->note, "%.400s", serr.msg);   /* the next audit is whole */
		audit_state_free(fresh);
	}
	if (info) {
		info->dirs = n;
		info->reread = reread;
		info->added = a->added;
		info->gone = gone;
	}
	free(inc.status);
	free(inc.seen);
	free(inc.depth);
	free(inc.spool);
	free(inc.path_off);
	free(inc.first_child);
	free(inc.next_sibling);
	strbuf_release(&inc.paths);
	a->inc = NULL;
	a->rec = NULL;
	return rc;
}

int store_audit_state_path(const char *store, const char *state_root_option, char *out, size_t size,
			   struct mesh_err *err)
{
	char dir[PATH_MAX];
	int rc = state_dir_for_store(store, state_root_option, true, dir, sizeof dir, err);
	if (rc)
		return rc;
	int len = snprintf(out, size, "%s/%s", dir, AUDIT_STATE_FILE);
	if (len < 0 || (size_t)len >= size)
		return mesh_errf(err, -ENAMETOOLONG, "%s: path too long", dir);
	return 0;
}

int store_audit_run(const char *store, const char *state_path, bool incremental, const atomic_bool *cancel,
		    char **report, struct store_audit_info *info, struct mesh_err *err)
{
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (report)
		*report = NULL;
	struct store_audit_info local = {0};
	if (!info)
		info = &local;
	memset(info, 0, sizeof *info);
	int root = mesh_open_dir_at(AT_FDCWD, store);
	if (root < 0)
		return mesh_errf(err, root, "%s: %s", store, strerror(-root));
	struct stat root_st;
	if (fstat(root, &root_st) < 0) {
		int e = -errno;
		close(root);
		return mesh_errf(err, e, "%s: %s", store, strerror(-e));
	}
	struct audit a = {.fix = false, .cancel = cancel};
	struct audit_state *old = NULL;
	if (!state_path) {
		snprintf(info->why_full, sizeof info->why_full, "no state directory");
	} else if (!incremental) {
		snprintf(info->why_full, sizeof info->why_full, "a full audit was asked for");
	} else {
		struct mesh_err lerr = {0};
		int lrc = audit_state_load(state_path, store, (uint64_t)root_st.st_dev, (uint64_t)root_st.st_ino,
					   &old, &lerr);
		if (lrc)
			snprintf(info->why_full, sizeof info->why_full, "%.400s", lrc == -ENOENT ?
				 "no record of an earlier clean audit on this host" : lerr.msg);
		else if (old->owner != (uint32_t)root_st.st_uid) {
			snprintf(info->why_full, sizeof info->why_full, "%s: the store's owner changed", state_path);
			audit_state_free(old);
			old = NULL;
		}
	}
	int rc;
	if (old) {
		info->incremental = true;
		rc = incr_run(&a, root, &root_st, store, old, state_path, info);
		audit_state_free(old);
	} else {
		/* the whole store, every directory recorded as read */
		a.rec = state_path ? audit_state_new(store, (uint64_t)root_st.st_dev, (uint64_t)root_st.st_ino,
						     (uint32_t)root_st.st_uid) : NULL;
		a.uid = root_st.st_uid;
		a.gid = root_st.st_gid;
		clock_gettime(CLOCK_REALTIME, &a.started);
		audit_entry(&a, root, &root_st, store);
		uint32_t rec = a.rec ? audit_state_add(a.rec, AUDIT_STATE_NONE, "", 0, &root_st, racy_flag(&a, &root_st))
				     : AUDIT_STATE_NONE;
		audit_dir(&a, root, store, 1, false, rec);
		rc = 0;
		info->dirs = a.rec ? a.rec->n : 0;
		if (a.rec && !a.problems && !a.cancelled) {
			a.rec->written_at = (int64_t)a.started.tv_sec;
			struct mesh_err serr = {0};
			if (audit_state_save(state_path, a.rec, &serr))
				snprintf(info->note, sizeof info->note, "%.400s", serr.msg);
		}
		audit_state_free(a.rec);
		a.rec = NULL;
	}
	close(root);
	if (a.cancelled) {
		strbuf_release(&a.report);
		return mesh_errf(err, -ECANCELED, "%s: audit stopped", store);
	}
	/* a store that is not locked down has no record: the next audit is whole */
	if (a.problems && state_path && unlink(state_path) < 0 && errno != ENOENT)
		snprintf(info->note, sizeof info->note, "%.400s: %s", state_path, strerror(errno));
	info->seconds = seconds_since(&t0);
	if (rc < 0) {
		strbuf_release(&a.report);
		return rc;
	}
	return audit_finish(&a, store, report);
}
