/*
 * pgsink.h - fleet usage in PostgreSQL: a forwarder that ships this host's
 * usage events from its local database into one PostgreSQL table shared by
 * every host, and the reader reports use when a sink is configured.
 *
 * Store and forward.  The usage writer (usage.h, with usage_config.outbox)
 * adds every event that became final to an `outbox` table of the host's
 * usage.db, in the same SQLite transaction as the event itself, numbered in
 * commit order (seq).  The forwarder's thread (one per daemon, separate
 * from FUSE workers and from the usage writer) reads the outbox in seq
 * order with its own read-only connection and inserts the events into
 * PostgreSQL (a batch: COPY into a session's temporary table, then one
 * INSERT ... SELECT), keyed by (host, event_id) with ON CONFLICT DO NOTHING; after
 * each PostgreSQL commit it reports the highest seq shipped, and the usage
 * writer (the database's one writer) deletes those outbox rows.  So while
 * PostgreSQL is down, events pile up in the outbox on local disk (nothing
 * is lost, reads are not slowed); a crash between the PostgreSQL commit and
 * the deletion re-sends events, which the key turns into no-ops.
 *
 * The table (created if missing):
 *     meshfs_usage_events(host, event_id, time, open_ns, uid, user_name,
 *         pid, program, domain, product, version, file, kind, decision,
 *         bytes, read_calls, duration_ns, complete,
 *         PRIMARY KEY (host, event_id))
 *
 * Configuration: mesh.yaml's `usage: {sink: postgresql://...}` (for the
 * whole mesh), or the daemon's -o usage_sink= (for this host; wins).  A
 * libpq connection URI or key=value string; passwords belong in
 * ~/.pgpass or PGPASSFILE, and are never logged (pgsink_redact).
 *
 * Thread-safety: pgsink_stats and pgsink_forget_shipped may be called from
 * any thread; the rest from the thread that opened the sink.
 */
#ifndef PGSINK_H
#define PGSINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mesh_err.h"

struct sqlite3;

#define PGSINK_TABLE "meshfs_usage_events"

struct pgsink_options {
	const char *conninfo;          /* postgresql://... */
	const char *db_path;           /* this host's usage.db (with its outbox) */
	unsigned interval_ms;          /* how often to look at the outbox (200) */
	unsigned batch;                /* events per PostgreSQL transaction (5000) */
	/* called after each PostgreSQL commit with the highest outbox seq
	 * shipped (usage_outbox_shipped); may be NULL */
	void (*shipped)(void *ctx, int64_t seq);
	void *ctx;
};

struct pgsink_stats {
	uint64_t shipped;              /* events inserted or found present since open */
	uint64_t batches;
	int64_t backlog;               /* outbox rows not yet shipped (as last seen) */
	int64_t oldest_ns;             /* open time of the oldest of them (0: none) */
	bool connected;
	char last_error[256];          /* "" when the last attempt worked */
};

struct pgsink;

/* Start the forwarder thread.  An unreachable database is not an error
 * here (events wait in the outbox; see pgsink_stats).  Errors: -EINVAL for
 * a connection string libpq cannot parse, -errno for the thread. */
int pgsink_open(const struct pgsink_options *opts, struct pgsink **out, struct mesh_err *err);

/* Stop calling opts.shipped (before the usage recorder it points to is
 * closed).  Shipping goes on. */
void pgsink_forget_shipped(struct pgsink *s);

void pgsink_stats(struct pgsink *s, struct pgsink_stats *out);

/* Ship what the outbox holds for up to flush_ms, then stop and free.
 * What is left stays in the outbox for the next start.  NULL: no-op. */
void pgsink_close(struct pgsink *s, unsigned flush_ms);

/* The connection string without its password: "postgresql://user@host:port/db". */
void pgsink_redact(const char *conninfo, char *out, size_t size);

/* mesh.yaml's usage.sink of `store` into out; 0, or -ENOENT when none. */
int pgsink_store_setting(const char *store, char *out, size_t size);

/* Copy the events of every host with open_ns in [lo_ns, until_ns) from
 * PostgreSQL into the SQLite table `events` of `into` (the usage.db layout,
 * usage_report.h); *hosts = distinct hosts seen.  -EIO with err when the
 * database cannot be read. */
int pgsink_fetch_events(const char *conninfo, int64_t lo_ns, int64_t until_ns, struct sqlite3 *into,
			uint64_t *hosts, struct mesh_err *err);

#endif
