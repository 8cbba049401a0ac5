/*
 * daemon.h - what the meshfs daemon knows and decides, apart from FUSE.
 *
 * Holds the current catalog snapshot, watches the store for changes
 * (inotify on the store's directory plus polling of the generation file for
 * shared filesystems) and swaps in new snapshots, and answers the questions
 * the FUSE glue asks: may this caller see this node, open this file, and
 * with which decision (allow / mask / deny) and reason.  The glue turns the
 * answers into replies and errno values; it decides nothing itself.
 *
 * Thread-safety: every function may be called from any FUSE worker thread.
 * The current snapshot pointer is protected by an internal mutex; snapshots
 * are immutable and reference counted.
 */
#ifndef DAEMON_H
#define DAEMON_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "catalog.h"
#include "mesh_err.h"

struct mesh_daemon;

struct daemon_options {
	const char *store;            /* absolute path */
	double poll_interval;         /* seconds between generation polls (default 1) */
	bool open_mesh;               /* -o open_mesh: all data public, no policy */
	const char *usage_dir;        /* override of STORE/usage/<host> (tests) */
	const char *hostname;         /* override of gethostname() (tests) */
	size_t usage_slots;           /* journal capacity (0: default) */
	const char *metrics_path;     /* Prometheus textfile (NULL: none) */
	bool no_usage;                /* -o no_usage: record nothing (benchmarks) */
	const char *usage_sink;       /* -o usage_sink: PostgreSQL (NULL: mesh.yaml's usage.sink) */
};

/* The caller of a FUSE request, captured when the request arrives.
 * Supplementary groups cost a read of /proc per request, so they are
 * fetched only when a decision needs them, through get_groups (which
 * returns the count, or < 0 when unknown: then the daemon denies). */
struct daemon_caller {
	uid_t uid;
	gid_t gid;
	pid_t pid;
	int (*get_groups)(void *ctx, gid_t *list, int size);
	void *ctx;
};

/* Called by the watcher thread, outside any request, when directories
 * changed: the glue tells the kernel to forget what it cached. */
struct daemon_invalidate {
	void (*inode)(void *ctx, uint64_t ino);
	void (*entry)(void *ctx, uint64_t parent_ino, const char *name);
	void *ctx;
};

/* Check the store and scan it; no threads yet (safe before fork). */
int daemon_open(const struct daemon_options *opts, struct mesh_daemon **out, struct mesh_err *err);
/* After fuse_daemonize(): start the watcher (and usage recording). */
int daemon_start(struct mesh_daemon *d, const struct daemon_invalidate *inval, struct mesh_err *err);
/* Stop threads, flush usage, free everything; files still open (the kernel
 * sends no RELEASE after an unmount) end their usage events with what was
 * served.  Call after the FUSE session ended.  NULL is a no-op. */
void daemon_close(struct mesh_daemon *d);

/* The current snapshot, referenced: release with catalog_unref(). */
struct catalog *daemon_catalog(struct mesh_daemon *d);
/* Rescan now (the watcher calls this; tests and SIGHUP too). */
int daemon_rescan(struct mesh_daemon *d, struct mesh_err *err);

/* SIGHUP: apply a new poll interval (<= 0: keep), re-read mesh.yaml's
 * usage settings, rescan the store and reload the policy (a policy that
 * does not load keeps the previous one, logged).  Nothing is unmounted. */
int daemon_reload(struct mesh_daemon *d, double poll_interval, struct mesh_err *err);

/* Cache lifetimes the kernel may keep for a node, in seconds. */
double daemon_entry_timeout(struct mesh_daemon *d, const struct cat_node *n);
/* Is access control on (not -o open_mesh)? */
bool daemon_access_control(const struct mesh_daemon *d);
/* May the kernel cache this directory's listing (the same for everyone)? */
bool daemon_cache_listing(struct mesh_daemon *d, const struct cat_node *dir);
/* File mode bits for a node. */
mode_t daemon_node_mode(const struct mesh_daemon *d, const struct cat_node *n);

/* May the caller see `n` at all (lookup, readdir, getattr)?  Restricted
 * products are invisible to callers without read access. */
bool daemon_may_discover(struct mesh_daemon *d, const struct daemon_caller *who,
			 const struct cat_node *n);

enum daemon_decision { DECISION_ALLOW, DECISION_MASK, DECISION_DENY };
const char *daemon_decision_name(enum daemon_decision d);

/* An open file: everything release needs, captured at open (FUSE release
 * requests carry no caller identity). */
struct daemon_file;

/* Open file `n` for the caller.  On success *out is the handle and
 * *direct_io tells whether the glue must bypass the page cache (masked
 * content).  Fails with -EACCES (denied; recorded), -EIO (usage cannot be
 * recorded and the policy refuses unrecorded reads), or the backing file's
 * error. */
int daemon_file_open(struct mesh_daemon *d, const struct daemon_caller *who,
		     const struct cat_node *n, int flags, struct daemon_file **out,
		     bool *direct_io, bool *keep_cache);
/* Read into buf: plain pread, or masked content.  Returns bytes or -errno. */
ssize_t daemon_file_read(struct daemon_file *f, char *buf, size_t size, off_t off);
/* The backing fd (for splice/passthrough), or -1 when content is rewritten. */
int daemon_file_fd(const struct daemon_file *f);
/* May this open be served by kernel passthrough?  Only for files that are
 * never rewritten for any reader (no classified columns), since the kernel
 * cannot mix passthrough and other opens of one inode. */
bool daemon_file_passthrough_ok(const struct daemon_file *f);
/* Tell the daemon the open is served by passthrough (reads never reach it). */
void daemon_file_set_passthrough(struct daemon_file *f, bool on);
bool daemon_file_is_passthrough(const struct daemon_file *f);
void daemon_file_release(struct mesh_daemon *d, struct daemon_file *f);

/* access(2): 0 if the caller may do `mask` (R_OK/X_OK...) on n, else -EACCES. */
int daemon_access(struct mesh_daemon *d, const struct daemon_caller *who,
		  const struct cat_node *n, int mask);

#endif
