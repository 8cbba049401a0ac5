/*
 * daemon.h - what the meshfs daemon knows and decides, apart from FUSE.
 *
 * Holds the current catalog snapshot (snapshot.h: from this host's index,
 * products loaded on demand into a bounded cache, snapshot_cache.h; or a
 * walk of the store when the index cannot vouch for it), watches the store for changes
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
	const char *usage_dir;        /* override of STATE/<store-id>/usage/<host> (tests) */
	const char *state_dir;        /* this host's state root (state_dir.h; NULL: default) */
	const char *hostname;         /* override of gethostname() (tests) */
	size_t usage_slots;           /* journal capacity (0: default) */
	const char *metrics_path;     /* Prometheus textfile (NULL: none) */
	bool no_usage;                /* -o no_usage: record nothing (benchmarks) */
	const char *usage_sink;       /* -o usage_sink: PostgreSQL (NULL: mesh.yaml's usage.sink) */
	const char *view_cache;       /* -o view_cache=DIR (NULL: VIEW_CACHE_DIR_DEFAULT) */
	uint64_t view_cache_max;      /* -o view_cache_max=BYTES (0: VIEW_CACHE_MAX_DEFAULT) */
	size_t release_cache;         /* -o release_cache=N releases kept loaded (0: SNAPSHOT_CACHE_DEFAULT) */
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
/* The store's path (for the glue of /mesh/.search). */
const char *daemon_store(const struct mesh_daemon *d);
/* Rescan now (the watcher calls this; tests and SIGHUP too).  Rescans
 * run one at a time. */
int daemon_rescan(struct mesh_daemon *d, struct mesh_err *err);
/* Rescan now if the store's generation moved since the current snapshot
 * (an answer from the index, fresher than the snapshot, is about to be
 * filtered by it: /mesh/.search). */
int daemon_catch_up(struct mesh_daemon *d, struct mesh_err *err);

/* SIGHUP: apply a new poll interval (<= 0: keep), re-read mesh.yaml's
 * usage settings, rescan the store and reload the policy (a policy that
 * does not load keeps the previous one, logged).  Nothing is unmounted. */
int daemon_reload(struct mesh_daemon *d, double poll_interval, struct mesh_err *err);

/* Cache lifetimes the kernel may keep for a node, in seconds. */
double daemon_entry_timeout(struct mesh_daemon *d, const struct cat_node *n);
/* How long the kernel may keep the attributes of inode `ino` seen at n:
 * the entry's lifetime, except for a reader's own card inode (`fixed`:
 * daemon_node_for or daemon_node said its bytes are known), whose
 * number is a hash of exactly what its bytes are made of, so its
 * attributes never change: a day.  Its entry stays uncached (the name is
 * shared by every user), so every path walk still asks which inode the
 * caller gets. */
double daemon_attr_timeout(struct mesh_daemon *d, const struct cat_node *n, uint64_t ino, bool fixed);
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

/* Masked views.  A reader who sees a data file's classified columns
 * masked gets a view (view_cache.h): a file of its own, with its own inode
 * (stable per file and mask plan, top bit set, never a catalog inode) and
 * size, so readers of different clearance never share a page.  Files with
 * classified columns are the only nodes that are not "shared": their
 * entries are never cached by the kernel (timeout 0).
 *
 * daemon_node_for: the inode and size `who` sees at file n (n's own, or
 * the view's: built now if this host has not built it yet); true when
 * that inode is a card whose bytes are known (daemon_attr_timeout). */
bool daemon_node_shared(const struct mesh_daemon *d, const struct cat_node *n);
bool daemon_node_for(struct mesh_daemon *d, const struct daemon_caller *who, const struct cat_node *n,
		     uint64_t *ino, uint64_t *size);
/* The node of inode `ino` in the current snapshot: a catalog inode, or a
 * view's (its file's node, and the view's size in *view_size).  Products
 * of a snapshot built from the index are lazy (snapshot_cache.h): with
 * `load`, a product comes back loaded (its versions and files as
 * children), and nodes below a product the kernel was given are found
 * again after their product was evicted.  *cat is the catalog the node is
 * in, referenced (catalog_unref), or NULL with NULL returned (no such
 * node now: daemon_missing_error gives the error).  *fixed (may be NULL):
 * the inode is a card whose bytes are known (daemon_attr_timeout). */
const struct cat_node *daemon_node(struct mesh_daemon *d, uint64_t ino, bool load, struct catalog **cat,
				   uint64_t *view_size, bool *fixed);
/* The error for inode `ino` that daemon_node did not find: -ESTALE when
 * the kernel was given it (daemon_entry_sent) and it is gone or moved
 * since (a product loaded from the store after the name's content moved,
 * a retired release; the kernel then looks the path up again, once, and
 * a path that is gone gives ENOENT there), else -ENOENT. */
int daemon_missing_error(struct mesh_daemon *d, uint64_t ino);
/* The kernel was given node n's own inode in an entry (lookup, or a
 * readdirplus entry): counted until FORGET (daemon_forget). */
void daemon_entry_sent(struct mesh_daemon *d, const struct cat_node *n);
void daemon_forget(struct mesh_daemon *d, uint64_t ino, uint64_t nlookup);

/* user.mesh.sha256 (of the bytes this inode serves: the view's for a view;
 * the clear file's only to readers who may read it in clear) and
 * user.mesh.view (the view's mask plan, "email:hash, birth_date:year").
 * Returns the value's length (size 0: only the length), -ERANGE, or
 * -ENODATA. */
int daemon_file_xattr(struct mesh_daemon *d, const struct daemon_caller *who, const struct cat_node *n,
		      uint64_t ino, const char *name, char *buf, size_t size);

/* Open file `n`, reached as inode `ino` (n's or a view's), for the caller.
 * A masked reader reads its view (built at the first open on this host;
 * other openers wait for it); anyone else the release file.  *keep_cache
 * is false when the view was just (re)built.  Fails with -EACCES (denied,
 * or a view that cannot be served: logged, never the clear file instead),
 * -ESTALE (`ino` is not what this caller sees at n: the kernel looks the
 * name up again), -EIO (usage cannot be recorded and the policy refuses
 * unrecorded reads), or the backing file's error. */
int daemon_file_open(struct mesh_daemon *d, const struct daemon_caller *who,
		     const struct cat_node *n, uint64_t ino, int flags, struct daemon_file **out,
		     bool *keep_cache);
/* Read into buf (pread of the release file or the view).  Bytes or -errno. */
ssize_t daemon_file_read(struct daemon_file *f, char *buf, size_t size, off_t off);
/* The fd reads come from (for splice/passthrough). */
int daemon_file_fd(const struct daemon_file *f);
/* May this open be served by kernel passthrough?  Every open may: views
 * have inodes of their own. */
bool daemon_file_passthrough_ok(const struct daemon_file *f);
/* Where the glue keeps the passthrough backing id serving this open (0:
 * none); it is set before the OPEN reply goes out (a RELEASE may follow at
 * once). */
int *daemon_file_backing_id(struct daemon_file *f);
void daemon_file_release(struct mesh_daemon *d, struct daemon_file *f);

/* access(2): 0 if the caller may do `mask` (R_OK/X_OK...) on n, else -EACCES. */
int daemon_access(struct mesh_daemon *d, const struct daemon_caller *who,
		  const struct cat_node *n, int mask);

#endif
