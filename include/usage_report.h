/*
 * usage_report.h - reading what usage.h recorded: adoption and audit
 * reports, the readers of a version, each host's recording status, and
 * pruning; plus the database layout the writer and the readers share.
 *
 * Where: every host records on its local disk in USAGE_ROOT/<host>/
 * (USAGE_ROOT is STATE/<store-id>/usage, state_dir.h): journal, usage.db,
 * state; and ships closed segments to STORE/usage/<host>/ (usage.h).
 * Reports read this machine's hosts' usage.db and every other host's
 * segments with read-only connections, one host at a time, aggregate each
 * into an in-memory database and report from there, so hosts sharing a
 * store report together and no reader ever writes another host's files.
 *
 * What counts: a read is an open of a data file that was served (decision
 * allow or mask); a consumer is a distinct user name among reads; bytes are
 * the bytes the daemon served (page-cache hits never reach it); discovery is
 * opens of contracts, schemas and docs, counted apart; denied opens are
 * counted apart and listed by the audit report.  Raw events older than a
 * prune are kept as daily rollups, and reports read both, so totals do not
 * change after pruning (pruned periods have day resolution).
 *
 * Not here: recording (usage.h), argument parsing and printing (meshctl).
 * Thread-safety: none needed; every call works on its own connections.
 */
#ifndef USAGE_REPORT_H
#define USAGE_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mesh_err.h"

struct sqlite3;

/* ---- the database layout (usage.c and this module) ---- */

#define USAGE_DB_LAYOUT 1                  /* PRAGMA user_version of usage.db */
#define USAGE_PRUNE_REQUEST "prune-request" /* HOST_DIR/<this>: ns, for the writer */

/* Set the pragmas (WAL or a rollback journal, synchronous=NORMAL) and create
 * the tables if missing.  -EPROTO for a database of another layout. */
int usage_db_prepare(struct sqlite3 *db, bool wal, struct mesh_err *err);

/* Fold raw events that opened before `before_ns` into the daily rollups and
 * delete them, in one transaction: reports give the same totals after.
 * *folded = events folded.  -EIO (rolled back) on failure. */
int usage_db_prune(struct sqlite3 *db, int64_t before_ns, uint64_t *folded, struct mesh_err *err);

/* ---- reports ---- */

enum usage_by { USAGE_BY_PRODUCT, USAGE_BY_VERSION, USAGE_BY_CONSUMER, USAGE_BY_HOST,
		USAGE_BY_PROGRAM, USAGE_BY_DAY };
enum usage_format { USAGE_FORMAT_TABLE, USAGE_FORMAT_CSV, USAGE_FORMAT_JSON };

/* "product", ... <-> enum; -EINVAL for an unknown name. */
int usage_by_parse(const char *name, enum usage_by *out);
int usage_format_parse(const char *name, enum usage_format *out);

struct usage_query {
	const char *domain, *product, *version;   /* NULL: any */
	const char *user, *host, *program;        /* NULL: any */
	const char *decision;                     /* allow | mask | deny, or NULL */
	bool denied;            /* the audit listing: denied and masked opens, one row each */
	int64_t since_ns, until_ns;               /* [since, until); the previous period is
						     the same length before since */
	enum usage_by by;
	size_t limit;                             /* rows, 0: all */
	const char *shipped_root;                 /* STORE/usage: other hosts' shipped segments
						     (NULL: only usage_root) */
	/* What the caller may see (scope.h): with scope_limited, only events
	 * of the domains in scope_domains (",d1,d2,") and the caller's own
	 * (user name scope_user); without, everything (governance). */
	bool scope_limited;
	const char *scope_domains, *scope_user;
	/* ops: read every host's events from this PostgreSQL sink (pgsink.h)
	 * instead of the host databases under usage_root; NULL: the files */
	const char *pg_conninfo;
};

struct usage_summary {
	int64_t since_ns, until_ns, previous_since_ns;
	uint64_t hosts;                           /* host databases read */
	uint64_t consumers, reads, bytes, read_calls, discovery, masked, denied;
	uint64_t previous_consumers, previous_reads, previous_bytes;
};

struct usage_report;

/* Run a report over every host database under `usage_root` (the hosts
 * recording on this machine: STATE/<store-id>/usage) and, with
 * q->shipped_root, every other host's shipped segments (STORE/usage/<host>/
 * seg-*.db; a host that recorded in the store before segments existed: its
 * usage.db there).  A host that cannot be read is left out with a warning
 * naming it (usage_report_warning: callers must say the report is
 * incomplete); a missing root is no host.
 * Errors: -EINVAL (bad query), -EIO (SQLite), with `err` set. */
int usage_report_run(const char *usage_root, const struct usage_query *q,
		     struct usage_report **out, struct mesh_err *err);

/* Who read DOMAIN/PRODUCT VERSION in [since, until): user, host, programs,
 * last read, reads, bytes; most recent first.  For deprecation notices. */
int usage_consumers_run(const char *usage_root, const char *shipped_root, const char *domain,
			const char *product, const char *version, int64_t since_ns, int64_t until_ns,
			struct usage_report **out, struct mesh_err *err);

const struct usage_summary *usage_report_summary(const struct usage_report *r);
size_t usage_report_row_count(const struct usage_report *r);
/* Warnings (unreadable host databases), NULL past the last. */
const char *usage_report_warning(const struct usage_report *r, size_t i);

/* The report as text: an aligned table (with the adoption summary above
 * it), CSV (header and rows only; RFC 4180 quoting) or JSON (an object with
 * "summary" and "rows").  Malloc'ed; the caller frees. */
char *usage_report_format(const struct usage_report *r, enum usage_format fmt);

void usage_report_free(struct usage_report *r);

/* ---- recording status (`meshctl status`) ---- */

struct usage_host_status {
	char host[256];
	bool running;                 /* the state says running, and was updated lately */
	int pid;
	int64_t started_ns, updated_ns, last_commit_ns;
	char policy[16], sqlite_journal[16];
	uint64_t capacity, in_use, backlog, committed, replayed, damaged, refused, lost;
	uint64_t opens_allow, opens_mask, opens_deny, opens_discovery, bytes, batches, batch_max;
	unsigned retention_days;
	char prune[256], last_error[256];  /* "-" when none */
	/* the PostgreSQL forwarder of that host (pgsink.h), if it has one */
	bool sink;
	bool sink_connected;
	int64_t sink_backlog, sink_oldest_ns;
	uint64_t sink_shipped;
	char sink_last_error[256];         /* "-" when none */
};

/* Parse a state file's text (written by usage.c).  -EPROTO if it is not one
 * or is torn (no "end" line). */
int usage_state_parse(const char *text, struct usage_host_status *out);

/* Every host's state under usage_root, sorted by host.  `now_ns` decides
 * `running` (an update within the last 10 s).  *hosts is malloc'ed. */
int usage_status_read(const char *usage_root, int64_t now_ns, struct usage_host_status **hosts,
		      size_t *n, struct mesh_err *err);

/* Lines for `meshctl status` ("backlog      12", one block per host), or a
 * JSON array.  Malloc'ed. */
char *usage_status_format(const struct usage_host_status *hosts, size_t n, int64_t now_ns, bool json);

/* ---- pruning ---- */

enum usage_prune_outcome {
	USAGE_PRUNED,        /* done here */
	USAGE_PRUNE_ASKED,   /* that host's daemon runs: it was asked, and has done it if done_by_daemon */
	USAGE_PRUNE_SKIPPED, /* the caller may not write that host's directory */
	USAGE_PRUNE_FAILED,
};

struct usage_prune_result {
	char host[256];
	enum usage_prune_outcome outcome;
	bool done_by_daemon;
	uint64_t folded;
	char message[512];
};

/* Prune every host's database under usage_root (see usage_db_prune).  A
 * host whose daemon is running is asked to do it itself (the database keeps
 * one writer), and awaited up to wait_ms; the others are pruned here if the
 * caller can write them, else skipped.  *results is malloc'ed. */
int usage_prune_store(const char *usage_root, int64_t before_ns, unsigned wait_ms,
		      struct usage_prune_result **results, size_t *n, struct mesh_err *err);

#endif
