/*
 * usage.h - recording every open of the mesh, without slowing it down and
 * without losing it (the daemon's side; reports are in usage_report.h).
 *
 * The journal.  HOST_DIR/journal is a preallocated file (posix_fallocate:
 * recording never needs a new disk block, so it cannot hit ENOSPC) of a
 * 4 KiB header and fixed 512-byte slots, mapped MAP_SHARED.  A slot written
 * by the daemon is in the kernel's page cache at once, so it survives the
 * daemon's death (kill -9; not a power loss).  usage_begin() takes a free
 * slot, writes the event and its checksum, and publishes it by writing the
 * slot's state word last; usage_end() adds bytes, read calls, duration and a
 * second checksum, then flips the state again.  Both are stores into the
 * mapping plus atomics: no syscall, no SQLite, and no lock except a
 * condition-variable signal once every 1024 calls to wake the writer.
 *
 * The writer.  One thread owns the host's only SQLite connection
 * (HOST_DIR/usage.db; WAL and synchronous=NORMAL on local filesystems, a
 * rollback journal on network ones, busy_timeout) and every 50 ms, or as
 * soon as 1024 begin/end calls are pending, moves ready slots into SQLite,
 * up to 4096 per transaction, and frees them only after the commit.  An open still in
 * progress after a second is written as an incomplete row, completed at its
 * end.  Event ids are primary keys (unique on the host, never reused), so
 * writing a slot twice, or replaying it, never duplicates an event.
 *
 * Replay.  usage_open() replays what a dead daemon left in the journal:
 * ended events with their bytes, events it never ended as incomplete rows
 * (duration NULL).  What cannot be written yet stays in the journal.
 *
 * Faults.  When SQLite cannot be written (disk full, unwritable or damaged
 * database) events wait in the journal and the writer retries with backoff
 * (reopening the database), catching up by itself.  When the journal is
 * full, usage_begin() wakes the writer and waits for one pass of it (at
 * most a second): a writer lagging behind an overloaded host slows opens
 * down rather than refusing them.  Still full after that pass (files held
 * open, or SQLite failing), usage_begin() refuses data opens the daemon would serve (-EIO)
 * under the default policy; with serve_when_full it returns 0 and counts
 * the event as lost.  Refused and lost counts live in the journal header:
 * they survive restarts.
 *
 * Status.  Every metrics interval the writer rewrites HOST_DIR/state (text,
 * preallocated and rewritten in place so it updates on a full disk; read by
 * usage_report.h for `meshctl status`) and, if configured, a Prometheus
 * textfile (temp + rename).  It also performs retention (retention_days)
 * and prune requests left by `meshctl usage --prune-before` in its own
 * connection: a host's database has exactly one writer.
 *
 * Shipping.  The journal and usage.db live on local disk (a state
 * directory: SQLite needs locks and shared memory that shared filesystems do
 * not give).  With ship_dir set, a shipper thread with its own connection
 * (so a slow shared filesystem never delays the writer) copies, every
 * ship_interval_ms, the rows written since the last copy into a closed, immutable
 * segment: an SQLite file written under a temporary name in ship_dir,
 * fsynced and renamed to seg-<seq>-<first event id>-<last event id>.db.
 * What to copy is a watermark over event ids (ids follow the opens, and
 * the writer writes rows in nearly that order): the shipper moves the mark
 * over the newest rows and records that range as pending, copies it by a
 * range of the primary key, and clears it once the segment is renamed.  A
 * row written at or below the mark (an open that ended after its range
 * was shipped, a replayed one) is queued by the writer in the same
 * transaction and goes into the next segment.  A crash or an error before
 * the range is cleared ships it again; readers keep, per event id, its
 * complete row over an incomplete one, so nothing is counted twice (the
 * invariant is written down in usage.c).  Readers on other hosts
 * (usage_report.h) read only renamed segments: no locks, no shared pages.
 *
 * Retention of shipped usage.  The host merges its segments when there are
 * more than 32, size tiered (the oldest that are each at least as large as
 * all newer ones together stay; the newer ones become one, carrying the
 * host's current rollups); the merged one is renamed into place before the
 * old ones are removed, so a reader sees the old ones, the new one or both,
 * and only the host removes its own.  At a merge, events that opened before the horizon are
 * left out: the later of now - ship_retention_days and the newest prune of
 * this host's database (retention_days, or `meshctl usage --prune-before`:
 * raw events folded into rollups here leave the shipped copies too, so a
 * prune holds on every host).  A new horizon merges all segments, however
 * few there are (looked at hourly; at once after a prune).
 *
 * Not here: deciding access (policy), FUSE.
 */
#ifndef USAGE_H
#define USAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mesh_err.h"

#define USAGE_SLOT_SIZE 512            /* journal bytes per event */
#define USAGE_DEFAULT_SLOTS 32768      /* 16 MiB: ~1 s of the fastest open storm measured here */
#define USAGE_MIN_SLOTS 8

/* Mesh-wide settings (the daemon fills them from its options and mesh.yaml).
 * Zero values mean the defaults in the comments. */
struct usage_config {
	size_t slots;                  /* journal bound in events (32768) */
	bool serve_when_full;          /* false: refuse data opens when full (EIO) */
	const char *hostname;          /* recorded with every event (gethostname()) */
	const char *metrics_path;      /* Prometheus textfile, or NULL for none */
	unsigned metrics_interval_ms;  /* state and metrics files rewritten (1000) */
	unsigned flush_interval_ms;    /* writer period (50) */
	unsigned retention_days;       /* raw events older than this folded into
					  daily rollups by the writer, hourly (0: keep) */
	const char *ship_dir;          /* STORE/usage/<host>: where closed segments go
					  (NULL: none; see "Shipping" above) */
	unsigned ship_interval_ms;     /* how often segments are written (1000) */
	unsigned ship_retention_days;  /* shipped events older than this leave the
					  segments at the next merge, hourly (0: keep);
					  see "Retention of shipped usage" below */
	bool outbox;                   /* keep usage.db's outbox of final events, in
					  commit order, for a forwarder (pgsink.h) */
};

enum usage_kind { USAGE_DATA, USAGE_DISCOVERY };
enum usage_decision { USAGE_ALLOW, USAGE_MASK, USAGE_DENY };

/* One open as the daemon saw it.  Strings are copied (truncated at a UTF-8
 * boundary if the slot's 440 text bytes do not hold them all: user 64,
 * program 16, domain and product 64, version 100, file the rest); NULL
 * means "" ("?" for program). */
struct usage_open_info {
	int64_t time_ns;               /* open time, ns since the epoch (0: now) */
	uint32_t uid;
	int32_t pid;
	const char *user, *program;    /* program: usage_read_comm() or usage_program_name() */
	const char *domain, *product, *version, *file;
	enum usage_kind kind;          /* data file, or sidecar (contract, schema, docs) */
	enum usage_decision decision;
};

struct usage_stats {
	uint64_t capacity;             /* journal slots */
	uint64_t in_use;               /* slots holding an event (open, or waiting) */
	uint64_t backlog;              /* events not yet (completely) in SQLite */
	uint64_t committed;            /* events finished in SQLite since usage_open */
	uint64_t replayed;             /* events a stopped daemon left in the journal */
	uint64_t damaged;              /* journal slots with a bad checksum, skipped */
	uint64_t refused;              /* opens refused: journal full (persistent) */
	uint64_t lost;                 /* events not recorded: journal full (persistent) */
	uint64_t opens_allow, opens_mask, opens_deny;   /* data opens since usage_open */
	uint64_t opens_discovery;
	uint64_t bytes, read_calls;    /* served, of ended events */
	uint64_t batches, batch_max;   /* writer transactions, largest one (events) */
	int64_t last_commit_ns;        /* 0: none yet */
	bool wal;                      /* SQLite journal mode: WAL, or rollback (network fs) */
	char last_error[256];          /* "" when the last attempt worked */
};

struct usage;

/* Open (creating the directories, journal and database as needed) this
 * host's recording in `host_dir` (STORE/usage/<host>), replay what a dead
 * daemon left, and start the writer thread.  Call after the daemon forked
 * into the background (SQLite connections do not survive fork).  One
 * process records in a directory: another gets -EBUSY (after waiting up to
 * 5 s for a prune by meshctl).  An unwritable database is not an error
 * here: events wait in the journal (see usage_stats()).  Errors: -errno
 * with `err` naming the file.  Free with usage_close(). */
int usage_open(const char *host_dir, const struct usage_config *cfg,
	       struct usage **out, struct mesh_err *err);

/* Before forking into the background: -EBUSY (with `err` saying so) when
 * another process records in `host_dir` now, so that a second daemon of
 * one host name can fail while its parent can still exit non-zero.
 * Waits up to 5 s for a daemon that is stopping.  Creates the directories;
 * holds nothing when it returns. */
int usage_probe(const char *host_dir, struct mesh_err *err);

/* Record an open, durable (against the daemon's death) when it returns.
 * *handle identifies the event for usage_end().  Returns 0, or -EIO when
 * the journal is full, the policy is refuse and the open is a data open
 * that would be served (allow or mask): the daemon must then refuse it.
 * Other events finding the journal full are counted as lost, and 0 is
 * returned with a handle usage_end() ignores.  Thread-safe; lock-free
 * unless the journal is full (then it waits, see "Faults" above). */
int usage_begin(struct usage *u, const struct usage_open_info *info, uint64_t *handle);

/* Complete the event of `handle` at release: bytes and read calls the daemon
 * served, and how long the file was open (0: measured from usage_begin).
 * Call once per handle; a second call, or a handle of a lost event, is
 * ignored.  Denied opens: usage_begin() then usage_end(u, h, 0, 0, 0).
 * Thread-safe, lock-free. */
void usage_end(struct usage *u, uint64_t handle, uint64_t bytes, uint64_t read_calls,
	       uint64_t duration_ns);

/* A forwarder's figures (pgsink.h), written by the usage writer into the
 * state file (for `meshctl status`) and the metrics file. */
struct usage_sink_status {
	bool valid;                    /* a forwarder is attached */
	bool connected;
	int64_t backlog;               /* outbox events not yet shipped */
	int64_t oldest_ns;             /* open time of the oldest of them (0: none) */
	uint64_t shipped;              /* since start */
	char last_error[256];          /* "" when the last attempt worked */
};
typedef void (*usage_sink_status_fn)(void *ctx, struct usage_sink_status *out);
/* Attach (fn) or detach (NULL) the forwarder's figures; fn is called from
 * the writer thread and must be thread-safe.  NULL u is a no-op. */
void usage_set_sink_status(struct usage *u, usage_sink_status_fn fn, void *ctx);

/* The forwarder shipped every outbox entry up to `seq`: the writer deletes
 * them with its next transaction.  Thread-safe; NULL is a no-op. */
void usage_outbox_shipped(struct usage *u, int64_t seq);

/* Apply changed mesh-wide settings (serve_when_full, retention_days and
 * ship_retention_days of struct usage_config) to a running recorder, as
 * after SIGHUP.  Thread-safe; NULL is a no-op. */
void usage_configure(struct usage *u, bool serve_when_full, unsigned retention_days, unsigned ship_retention_days);

/* Current figures (see struct usage_stats).  Thread-safe. */
void usage_stats(struct usage *u, struct usage_stats *out);

/* Clean stop: write every event into SQLite (opens still in progress as
 * incomplete), leaving the journal empty; stop the writer, free `u`.  If
 * SQLite still fails after ~2 s of retries, the events stay in the journal
 * for the next start and -EIO is returned.  No other call may run
 * concurrently or follow.  usage_close(NULL) is a no-op. */
int usage_close(struct usage *u);

/* The program name of `pid` from /proc/PID/comm into buf (at most 15 bytes
 * + NUL), control characters replaced by '?'.  A pid that is 0 or gone
 * gives "?" and -ESRCH.  Reads /proc (3 syscalls): call it at open, while
 * the caller is blocked in open() and so still exists.  FUSE reports the
 * calling thread's id, so this is the thread's name (the program's, unless
 * the program renamed its threads).  Thread-safe. */
int usage_read_comm(pid_t pid, char *buf, size_t size);

/* usage_read_comm() through a small cache: a pid's name is read at most
 * once per second, so an open storm from one process costs one read.  The
 * price: a name can be up to a second late after an exec, or a reused
 * pid's within that second.  Thread-safe. */
void usage_program_name(pid_t pid, char *buf, size_t size);

#endif
