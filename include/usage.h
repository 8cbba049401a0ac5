/*
 * usage.h - every open of the mesh recorded, without slowing it down and
 * without losing it.
 *
 * An open appends its event to a journal: a preallocated file of fixed
 * 512-byte slots mapped MAP_SHARED, so a slot written by the daemon
 * belongs to the kernel's page cache at once and survives the daemon's
 * death (kill -9).  A slot becomes visible by writing its state word last.
 * One writer thread, with the host's only SQLite connection (WAL), moves
 * slots into STORE/usage/<host>/usage.db in batched transactions and frees
 * them.  At start, slots left by a dead daemon are replayed; event ids are
 * primary keys, so a replay never duplicates.
 *
 * An event is begun at open (before the open is answered) and ended at
 * release with the bytes and read calls the daemon served.  When SQLite
 * cannot be written (disk full, read-only database) events wait in the
 * journal; when the journal is full, usage_begin() fails with -EIO under
 * the default policy (the daemon then refuses the open: no read without a
 * record) or, with refuse_when_full off, counts the event as lost.
 *
 * Thread-safety: usage_begin/usage_end from any thread; one mutex guards
 * the free-slot stack only (no I/O, no SQLite under it).
 */
#ifndef USAGE_H
#define USAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mesh_err.h"

#define USAGE_SLOT_SIZE 512
#define USAGE_DEFAULT_SLOTS 32768      /* 16 MiB of journal: ~1 s of the fastest open storm here */

struct usage_config {
	size_t slots;                  /* journal capacity (0: default) */
	bool serve_when_full;          /* default false: refuse opens when full */
	const char *hostname;
	const char *metrics_path;      /* Prometheus textfile, or NULL */
	unsigned interval_ms;          /* writer period (0: 50 ms) */
	unsigned retention_days;       /* fold older events into daily rollups (0: keep all) */
};

struct usage_event {
	uid_t uid;
	pid_t pid;
	const char *user, *program;
	const char *domain, *product, *version, *file;
	const char *kind;              /* data | discovery */
	const char *decision;          /* allow | mask | deny */
};

struct usage_stats {
	uint64_t capacity, backlog, committed, refused, lost;
	uint64_t opens_allow, opens_mask, opens_deny, bytes;
	char last_error[256];
};

struct usage;

/* Open (creating) the host's journal and database in `dir`, replay what a
 * dead daemon left, start the writer.  Call after fork (daemonize). */
int usage_open(const char *dir, const struct usage_config *cfg, struct usage **out, struct mesh_err *err);
/* Record the start of an open; *handle identifies it for usage_end. */
int usage_begin(struct usage *u, const struct usage_event *ev, uint64_t *handle);
void usage_end(struct usage *u, uint64_t handle, uint64_t bytes, uint64_t reads);
void usage_get_stats(struct usage *u, struct usage_stats *out);
/* Drain everything into SQLite, stop the writer, leave the journal empty. */
void usage_close(struct usage *u);

/* Fold the events of an open usage database older than before_ns into
 * daily rollups, in one transaction (report totals do not change).
 * Returns the number of events folded, or -1 (message in err). */
long usage_fold(void *sqlite_db, int64_t before_ns, struct mesh_err *err);

/* Program name of a pid from /proc/PID/comm ("?" when gone). */
void usage_program(pid_t pid, char *buf, size_t size);

#endif
