/*
 * pgsink.c - shipping this host's usage events to PostgreSQL, and reading
 * them back for reports (contract in include/pgsink.h).
 *
 * Not here: recording and the outbox itself (usage.c), report SQL
 * (usage_report.c).  libpq is used only in this file, loaded when a sink
 * is opened or read (pq_lib.h): never by a process that has none.
 */
#include "pgsink.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "mesh_util.h"
#include "pq_lib.h"
#include "yamltree.h"

#define BACKOFF_MAX_MS 5000u

/* libpq's table: every entry point checked that it loaded */
static const struct pq_lib *pql(void)
{
	return pq_lib_get(NULL);
}

struct pgsink {
	char *conninfo, *redacted, *db_path;
	unsigned interval_ms, batch;
	pthread_mutex_t lock;          /* shipped/ctx, stop, stats, wake */
	pthread_cond_t wake;
	void (*shipped)(void *ctx, int64_t seq);
	void *ctx;
	bool stop;
	int64_t flush_deadline_ns;     /* 0: not closing */
	struct pgsink_stats stats;
	pthread_t thread;
	bool running;
	/* the thread's */
	PGconn *pg;
	sqlite3 *db;
	sqlite3_stmt *read_outbox;
	int64_t cursor;                /* highest seq shipped */
	bool failing;
};

static const char create_sql[] =
	"CREATE TABLE IF NOT EXISTS " PGSINK_TABLE "("
	" host text NOT NULL, event_id bigint NOT NULL, time timestamptz NOT NULL, open_ns bigint NOT NULL,"
	" uid bigint NOT NULL, user_name text NOT NULL, pid integer NOT NULL, program text NOT NULL,"
	" domain text NOT NULL, product text NOT NULL, version text NOT NULL, file text NOT NULL,"
	" kind text NOT NULL, decision text NOT NULL, bytes bigint NOT NULL, read_calls bigint NOT NULL,"
	" duration_ns bigint, complete boolean NOT NULL, PRIMARY KEY (host, event_id));"
	"CREATE INDEX IF NOT EXISTS " PGSINK_TABLE "_open ON " PGSINK_TABLE "(open_ns)";

#define N_COLUMNS 18
#define COLUMN_LIST "host, event_id, time, open_ns, uid, user_name, pid, program, domain, product," \
		    " version, file, kind, decision, bytes, read_calls, duration_ns, complete"
static const char copy_sql[] = "COPY meshfs_stage(" COLUMN_LIST ") FROM STDIN";
static const char insert_sql[] =
	"INSERT INTO " PGSINK_TABLE "(" COLUMN_LIST ") SELECT " COLUMN_LIST " FROM meshfs_stage"
	" ON CONFLICT (host, event_id) DO NOTHING";

/* outbox seq, then the columns in insert_sql's order (NULL event: pruned) */
static const char outbox_sql[] =
	"SELECT o.seq, e.host, e.event_id, e.time, e.open_ns, e.uid, e.user_name, e.pid, e.program, e.domain,"
	" e.product, e.version, e.file, e.kind, e.decision, e.bytes, e.read_calls, e.duration_ns, e.complete"
	" FROM outbox o LEFT JOIN events e ON e.event_id = o.event_id WHERE o.seq > ?1 ORDER BY o.seq LIMIT ?2";

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void pgsink_redact(const char *conninfo, char *out, size_t size)
{
	if (!pq_lib_get(NULL)) {
		snprintf(out, size, "postgresql://(libpq not loaded)");
		return;
	}
	char *msg = NULL;
	PQconninfoOption *opts = pql()->PQconninfoParse(conninfo, &msg);
	pql()->PQfreemem(msg);
	if (!opts) {
		snprintf(out, size, "postgresql://(unparsable)");
		return;
	}
	const char *host = NULL, *port = NULL, *db = NULL, *user = NULL;
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (!o->val)
			continue;
		if (!strcmp(o->keyword, "host"))
			host = o->val;
		else if (!strcmp(o->keyword, "port"))
			port = o->val;
		else if (!strcmp(o->keyword, "dbname"))
			db = o->val;
		else if (!strcmp(o->keyword, "user"))
			user = o->val;
	}
	snprintf(out, size, "postgresql://%s%s%s%s%s/%s", user ? user : "", user ? "@" : "", host ? host : "",
		 port ? ":" : "", port ? port : "", db ? db : "");
	pql()->PQconninfoFree(opts);
}

int pgsink_store_setting(const char *store, char *out, size_t size)
{
	char path[4200], *text;
	size_t len;
	snprintf(path, sizeof path, "%s/mesh.yaml", store);
	if (mesh_read_file_at(AT_FDCWD, path, 1u << 20, &text, &len, NULL))
		return -ENOENT;
	static const struct ytree_limits limits = {1u << 20, 32, 100000};
	struct ynode *root = NULL;
	int rc = -ENOENT;
	if (!yamltree_parse(text, len, path, &limits, &root, NULL)) {
		const char *v = yscalar(ymap_get(ymap_get(root, "usage"), "sink"));
		if (v && *v && strlen(v) < size) {
			snprintf(out, size, "%s", v);
			rc = 0;
		}
	}
	yamltree_free(root);
	free(text);
	return rc;
}

static void set_error(struct pgsink *s, const char *what, const char *msg)
{
	char text[256];
	snprintf(text, sizeof text, "%s%s%s", what, *msg ? ": " : "", msg);
	size_t n = strlen(text);
	while (n && (text[n - 1] == '\n' || text[n - 1] == ' '))
		text[--n] = '\0';
	for (char *p = text; *p; p++)
		if (*p == '\n')
			*p = ' ';
	pthread_mutex_lock(&s->lock);
	bool first = !s->failing;
	snprintf(s->stats.last_error, sizeof s->stats.last_error, "%s", text);
	s->stats.connected = s->pg != NULL && pql()->PQstatus(s->pg) == CONNECTION_OK;
	pthread_mutex_unlock(&s->lock);
	if (first)   /* one line per outage, not per retry */
		syslog(LOG_WARNING, "usage sink %s: %s (events wait in the local outbox)", s->redacted, text);
	s->failing = true;
}

static void clear_error(struct pgsink *s)
{
	if (s->failing)
		syslog(LOG_NOTICE, "usage sink %s: reachable again, shipping what waited", s->redacted);
	s->failing = false;
	pthread_mutex_lock(&s->lock);
	s->stats.last_error[0] = '\0';
	s->stats.connected = true;
	pthread_mutex_unlock(&s->lock);
}

static void pg_drop(struct pgsink *s)
{
	pql()->PQfinish(s->pg);
	s->pg = NULL;
}

static int pg_ready(struct pgsink *s)
{
	if (s->pg && pql()->PQstatus(s->pg) == CONNECTION_OK)
		return 0;
	pg_drop(s);
	const char *keys[] = {"dbname", "connect_timeout", "application_name", NULL};
	const char *vals[] = {s->conninfo, "5", "meshfs", NULL};
	s->pg = pql()->PQconnectdbParams(keys, vals, 1);
	if (!s->pg || pql()->PQstatus(s->pg) != CONNECTION_OK) {
		set_error(s, "cannot connect", s->pg ? pql()->PQerrorMessage(s->pg) : "out of memory");
		pg_drop(s);
		return -EIO;
	}
	PGresult *r = pql()->PQexec(s->pg, "SET client_min_messages = warning");
	pql()->PQclear(r);
	r = pql()->PQexec(s->pg, create_sql);
	bool ok = pql()->PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok)   /* two hosts creating the table at once: the next try sees it */
		set_error(s, "cannot create " PGSINK_TABLE, pql()->PQerrorMessage(s->pg));
	pql()->PQclear(r);
	if (ok) {
		/* a batch goes in by COPY into this connection's staging table,
		 * then one INSERT ... ON CONFLICT DO NOTHING: no round trip per event */
		r = pql()->PQexec(s->pg, "CREATE TEMP TABLE meshfs_stage (LIKE " PGSINK_TABLE ") ON COMMIT DELETE ROWS");
		ok = pql()->PQresultStatus(r) == PGRES_COMMAND_OK;
		if (!ok)
			set_error(s, "cannot create the staging table", pql()->PQerrorMessage(s->pg));
		pql()->PQclear(r);
	}
	if (!ok) {
		pg_drop(s);
		return -EIO;
	}
	return 0;
}

static int db_ready(struct pgsink *s)
{
	if (s->read_outbox)
		return 0;
	if (!s->db) {
		if (sqlite3_open_v2(s->db_path, &s->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
			sqlite3_close(s->db);
			s->db = NULL;
			return -EIO;
		}
		sqlite3_busy_timeout(s->db, 5000);
	}
	/* no outbox yet: the writer creates it with its first batch */
	if (sqlite3_prepare_v2(s->db, outbox_sql, -1, &s->read_outbox, NULL) != SQLITE_OK) {
		sqlite3_close(s->db);
		s->db = NULL;
		s->read_outbox = NULL;
		return -EAGAIN;
	}
	return 0;
}

static bool pg_command(struct pgsink *s, const char *sql)
{
	PGresult *r = pql()->PQexec(s->pg, sql);
	bool ok = pql()->PQresultStatus(r) == PGRES_COMMAND_OK;
	pql()->PQclear(r);
	return ok;
}

/* A value in COPY's text format: \N for NULL; backslash, tab, newline
 * and carriage return escaped. */
static void copy_value(struct strbuf *line, const char *v)
{
	if (!v) {
		strbuf_puts(line, "\\N");
		return;
	}
	for (const char *p = v; *p; p++) {
		switch (*p) {
		case '\\': strbuf_puts(line, "\\\\"); break;
		case '\t': strbuf_puts(line, "\\t"); break;
		case '\n': strbuf_puts(line, "\\n"); break;
		case '\r': strbuf_puts(line, "\\r"); break;
		default: strbuf_add(line, p, 1);
		}
	}
}

/* One batch: read from the outbox, COPY, insert, commit.  Returns events
 * shipped (0: the outbox is empty), or -EIO. */
static int ship_batch(struct pgsink *s)
{
	if (db_ready(s))
		return 0;
	sqlite3_bind_int64(s->read_outbox, 1, s->cursor);
	sqlite3_bind_int64(s->read_outbox, 2, s->batch);
	int n = 0, rc;
	int64_t last = s->cursor;
	struct strbuf data = STRBUF_INIT;
	while ((rc = sqlite3_step(s->read_outbox)) == SQLITE_ROW) {
		last = sqlite3_column_int64(s->read_outbox, 0);
		if (sqlite3_column_type(s->read_outbox, 1) == SQLITE_NULL)
			continue;              /* pruned before it was shipped: in the rollups */
		for (int c = 0; c < N_COLUMNS; c++) {
			const char *v = (const char *)sqlite3_column_text(s->read_outbox, c + 1);
			if (c)
				strbuf_puts(&data, "\t");
			if (c == N_COLUMNS - 1)
				v = v && v[0] == '1' ? "t" : "f";
			copy_value(&data, v);
		}
		strbuf_puts(&data, "\n");
		n++;
	}
	sqlite3_reset(s->read_outbox);
	if (rc != SQLITE_DONE) {
		set_error(s, "reading the outbox", sqlite3_errmsg(s->db));
		strbuf_release(&data);
		return -EIO;
	}
	if (n) {
		bool ok = pg_ready(s) == 0 && pg_command(s, "BEGIN");
		PGresult *r = ok ? pql()->PQexec(s->pg, copy_sql) : NULL;
		ok = ok && pql()->PQresultStatus(r) == PGRES_COPY_IN;
		pql()->PQclear(r);
		ok = ok && pql()->PQputCopyData(s->pg, data.buf, (int)data.len) == 1 && pql()->PQputCopyEnd(s->pg, NULL) == 1;
		if (ok) {
			r = pql()->PQgetResult(s->pg);
			ok = pql()->PQresultStatus(r) == PGRES_COMMAND_OK;
			pql()->PQclear(r);
			while ((r = pql()->PQgetResult(s->pg)))
				pql()->PQclear(r);
		}
		ok = ok && pg_command(s, insert_sql) && pg_command(s, "COMMIT");
		if (!ok) {
			if (s->pg)
				set_error(s, "shipping a batch", pql()->PQerrorMessage(s->pg));
			pg_drop(s);             /* a clean slate for the next try */
			strbuf_release(&data);
			return -EIO;
		}
	}
	strbuf_release(&data);
	if (last != s->cursor) {
		s->cursor = last;
		pthread_mutex_lock(&s->lock);
		s->stats.shipped += (uint64_t)n;
		s->stats.batches++;
		if (s->shipped)
			s->shipped(s->ctx, last);
		pthread_mutex_unlock(&s->lock);
		if (n)
			clear_error(s);
	}
	return n;
}

static void update_backlog(struct pgsink *s)
{
	sqlite3_stmt *st;
	/* how many wait, and since when: the open time of the oldest event
	 * not yet shipped (the outbox is in commit order) */
	if (!s->db || sqlite3_prepare_v2(s->db, "SELECT count(*), (SELECT e.open_ns FROM outbox o JOIN events e"
				      " ON e.event_id = o.event_id WHERE o.seq > ?1 ORDER BY o.seq LIMIT 1)"
				      " FROM outbox WHERE seq > ?1", -1, &st, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_int64(st, 1, s->cursor);
	if (sqlite3_step(st) == SQLITE_ROW) {
		pthread_mutex_lock(&s->lock);
		s->stats.backlog = sqlite3_column_int64(st, 0);
		s->stats.oldest_ns = sqlite3_column_int64(st, 1);
		pthread_mutex_unlock(&s->lock);
	}
	sqlite3_finalize(st);
}

static void *sink_main(void *arg)
{
	struct pgsink *s = arg;
	unsigned backoff = 0;
	for (;;) {
		int n = ship_batch(s);
		update_backlog(s);
		pthread_mutex_lock(&s->lock);
		bool closing = s->stop;
		bool give_up = closing && (n <= 0 || now_ns() >= s->flush_deadline_ns);
		pthread_mutex_unlock(&s->lock);
		if (give_up)
			break;
		if (n > 0 && (unsigned)n >= s->batch / 2) {
			backoff = 0;
			continue;               /* more waits: no pause */
		}
		unsigned wait_ms = s->interval_ms;
		if (n < 0) {
			backoff = backoff ? (backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2) : 100;
			wait_ms = backoff;
		} else {
			backoff = 0;
		}
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += wait_ms / 1000;
		until.tv_nsec += (long)(wait_ms % 1000) * 1000000;
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
		pthread_mutex_lock(&s->lock);
		if (!s->stop)
			pthread_cond_timedwait(&s->wake, &s->lock, &until);
		pthread_mutex_unlock(&s->lock);
	}
	return NULL;
}

int pgsink_open(const struct pgsink_options *opts, struct pgsink **out, struct mesh_err *err)
{
	*out = NULL;
	if (!pq_lib_get(err))
		return err ? err->code : -ENOENT;
	char *msg = NULL;
	PQconninfoOption *parsed = pql()->PQconninfoParse(opts->conninfo, &msg);
	if (!parsed) {
		int rc = mesh_errf(err, -EINVAL, "usage sink: not a PostgreSQL connection string: %s",
				   msg ? msg : "out of memory");
		pql()->PQfreemem(msg);
		return rc;
	}
	pql()->PQconninfoFree(parsed);
	struct pgsink *s = xcalloc(1, sizeof *s);
	s->conninfo = xstrdup(opts->conninfo);
	char redacted[512];
	pgsink_redact(opts->conninfo, redacted, sizeof redacted);
	s->redacted = xstrdup(redacted);
	s->db_path = xstrdup(opts->db_path);
	s->interval_ms = opts->interval_ms ? opts->interval_ms : 200;
	s->batch = opts->batch ? opts->batch : 5000;
	s->shipped = opts->shipped;
	s->ctx = opts->ctx;
	pthread_mutex_init(&s->lock, NULL);
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&s->wake, &attr);
	pthread_condattr_destroy(&attr);
	int rc = pthread_create(&s->thread, NULL, sink_main, s);
	if (rc) {
		pgsink_close(s, 0);
		return mesh_errf(err, -rc, "usage sink thread: %s", strerror(rc));
	}
	s->running = true;
	pthread_setname_np(s->thread, "usage-pgsink");
	syslog(LOG_INFO, "usage sink: %s", s->redacted);
	*out = s;
	return 0;
}

void pgsink_forget_shipped(struct pgsink *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->shipped = NULL;
	pthread_mutex_unlock(&s->lock);
}

void pgsink_stats(struct pgsink *s, struct pgsink_stats *out)
{
	pthread_mutex_lock(&s->lock);
	*out = s->stats;
	pthread_mutex_unlock(&s->lock);
}

void pgsink_close(struct pgsink *s, unsigned flush_ms)
{
	if (!s)
		return;
	if (s->running) {
		pthread_mutex_lock(&s->lock);
		s->stop = true;
		s->flush_deadline_ns = now_ns() + (int64_t)flush_ms * 1000000;
		pthread_cond_signal(&s->wake);
		pthread_mutex_unlock(&s->lock);
		pthread_join(s->thread, NULL);
	}
	if (s->stats.backlog > 0)
		syslog(LOG_NOTICE, "usage sink %s: %" PRId64 " events wait in the outbox for the next start", s->redacted,
		       s->stats.backlog);
	sqlite3_finalize(s->read_outbox);
	sqlite3_close(s->db);
	pg_drop(s);
	pthread_cond_destroy(&s->wake);
	pthread_mutex_destroy(&s->lock);
	free(s->conninfo);
	free(s->redacted);
	free(s->db_path);
	free(s);
}

/* ---- reading for reports ---- */

int pgsink_fetch_events(const char *conninfo, int64_t lo_ns, int64_t until_ns, sqlite3 *into, uint64_t *hosts,
			struct mesh_err *err)
{
	*hosts = 0;
	if (!pq_lib_get(err))
		return err ? err->code : -ENOENT;
	char redacted[512];
	pgsink_redact(conninfo, redacted, sizeof redacted);
	const char *keys[] = {"dbname", "connect_timeout", "application_name", NULL};
	const char *vals[] = {conninfo, "5", "meshctl", NULL};
	PGconn *pg = pql()->PQconnectdbParams(keys, vals, 1);
	if (!pg || pql()->PQstatus(pg) != CONNECTION_OK) {
		int rc = mesh_errf(err, -EIO, "usage database %s: %s", redacted, pg ? pql()->PQerrorMessage(pg) : "out of memory");
		pql()->PQfinish(pg);
		return rc;
	}
	char lo[32], until[32];
	snprintf(lo, sizeof lo, "%" PRId64, lo_ns);
	snprintf(until, sizeof until, "%" PRId64, until_ns);
	const char *params[] = {lo, until};
	PGresult *r = pql()->PQexecParams(pg,
		"SELECT event_id, to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), open_ns, host, uid,"
		" user_name, pid, program, domain, product, version, file, kind, decision, bytes, read_calls,"
		" duration_ns, complete::int FROM " PGSINK_TABLE " WHERE open_ns >= $1 AND open_ns < $2",
		2, NULL, params, NULL, NULL, 0);
	if (pql()->PQresultStatus(r) != PGRES_TUPLES_OK) {
		bool missing = pql()->PQresultErrorField(r, PG_DIAG_SQLSTATE) &&
			       !strcmp(pql()->PQresultErrorField(r, PG_DIAG_SQLSTATE), "42P01");   /* no table yet */
		int rc = missing ? 0 : mesh_errf(err, -EIO, "usage database %s: %s", redacted, pql()->PQerrorMessage(pg));
		pql()->PQclear(r);
		pql()->PQfinish(pg);
		return rc;
	}
	sqlite3_stmt *ins = NULL, *count = NULL;
	int rc = 0;
	if (sqlite3_prepare_v2(into,
		"INSERT OR IGNORE INTO events(event_id, time, open_ns, host, uid, user_name, pid, program, domain, product,"
		" version, file, kind, decision, bytes, read_calls, duration_ns, complete)"
		" VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18)", -1, &ins, NULL) != SQLITE_OK)
		rc = mesh_errf(err, -EIO, "usage report: %s", sqlite3_errmsg(into));
	sqlite3_exec(into, "BEGIN", NULL, NULL, NULL);
	/* one host's event ids are unique, another's may collide: the memory
	 * copy keys rows by position (above lo in microseconds, as the report
	 * SQL expects of event ids), never drops one */
	for (int row = 0; !rc && row < pql()->PQntuples(r); row++) {
		sqlite3_reset(ins);
		sqlite3_bind_int64(ins, 1, lo_ns / 1000 + row + 1);
		for (int c = 1; c < 18; c++) {
			if (pql()->PQgetisnull(r, row, c))
				sqlite3_bind_null(ins, c + 1);
			else
				sqlite3_bind_text(ins, c + 1, pql()->PQgetvalue(r, row, c), -1, SQLITE_STATIC);
		}
		if (sqlite3_step(ins) != SQLITE_DONE)
			rc = mesh_errf(err, -EIO, "usage report: %s", sqlite3_errmsg(into));
	}
	sqlite3_exec(into, rc ? "ROLLBACK" : "COMMIT", NULL, NULL, NULL);
	sqlite3_finalize(ins);
	if (!rc && sqlite3_prepare_v2(into, "SELECT count(DISTINCT host) FROM events", -1, &count, NULL) == SQLITE_OK &&
	    sqlite3_step(count) == SQLITE_ROW)
		*hosts = (uint64_t)sqlite3_column_int64(count, 0);
	sqlite3_finalize(count);
	pql()->PQclear(r);
	pql()->PQfinish(pg);
	return rc;
}
