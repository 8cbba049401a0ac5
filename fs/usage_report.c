/*
 * usage_report.c - the usage database layout, pruning into daily rollups,
 * and everything that reads usage: reports, consumers, recording status
 * (contract in include/usage_report.h).
 *
 * Not here: recording (usage.c), argument parsing and printing (meshctl).
 *
 * How a report runs: each host's usage.db is opened read-only and asked
 * for partial aggregates of its raw events and rollups (grouped by period,
 * day, host, product, version, user, program, kind and decision), which go
 * into one in-memory database; the report is a query over those.  Distinct
 * consumers stay exact across hosts because user names survive grouping.
 */
#include "usage_report.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mesh_util.h"
#include "pgsink.h"

#define NS ((int64_t)1000000000)
#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)
#define DAY_NS (86400 * NS)
#define RUNNING_WITHIN_NS (10 * NS)

/* ---- layout ---- */

static const char schema_sql[] =
	"CREATE TABLE IF NOT EXISTS events("
	" event_id INTEGER PRIMARY KEY,"     /* unique on the host; >= the open time in microseconds */
	" time TEXT NOT NULL,"               /* open time, RFC 3339 UTC with ms */
	" open_ns INTEGER NOT NULL,"
	" host TEXT NOT NULL, uid INTEGER NOT NULL, user_name TEXT NOT NULL,"
	" pid INTEGER NOT NULL, program TEXT NOT NULL,"
	" domain TEXT NOT NULL, product TEXT NOT NULL, version TEXT NOT NULL, file TEXT NOT NULL,"
	" kind TEXT NOT NULL,"               /* data | discovery */
	" decision TEXT NOT NULL,"           /* allow | mask | deny */
	" bytes INTEGER NOT NULL DEFAULT 0, read_calls INTEGER NOT NULL DEFAULT 0,"
	" duration_ns INTEGER,"              /* NULL: never ended (the daemon died) or still open */
	" complete INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE IF NOT EXISTS rollups("
	" day TEXT NOT NULL, host TEXT NOT NULL, domain TEXT NOT NULL, product TEXT NOT NULL,"
	" version TEXT NOT NULL, user_name TEXT NOT NULL, program TEXT NOT NULL, kind TEXT NOT NULL,"
	" decision TEXT NOT NULL, opens INTEGER NOT NULL, bytes INTEGER NOT NULL,"
	" read_calls INTEGER NOT NULL, incomplete INTEGER NOT NULL, first_ns INTEGER NOT NULL,"
	" last_ns INTEGER NOT NULL,"
	" PRIMARY KEY(day, host, domain, product, version, user_name, program, kind, decision)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value);";

static int layout_of(sqlite3 *db, int *layout, bool *has_events)
{
	sqlite3_stmt *st;
	*layout = -1;
	*has_events = false;
	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*layout = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return -EIO;
	if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE name = 'events'", -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	rc = sqlite3_step(st);
	*has_events = rc == SQLITE_ROW;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -EIO;
}

int usage_db_prepare(struct sqlite3 *db, bool wal, struct mesh_err *err)
{
	/* WAL keeps readers from ever blocking the writer, but needs every
	 * user of the file on one host: on network filesystems a rollback
	 * journal, whose locks the filesystem carries, is the safe choice */
	if (sqlite3_exec(db, wal ? "PRAGMA journal_mode=WAL" : "PRAGMA journal_mode=TRUNCATE", NULL, NULL, NULL) ||
	    sqlite3_exec(db, "PRAGMA synchronous=NORMAL; PRAGMA journal_size_limit=67108864", NULL, NULL, NULL))
		return mesh_errf(err, -EIO, "%s", sqlite3_errmsg(db));
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL))
		return mesh_errf(err, -EIO, "%s", sqlite3_errmsg(db));
	int layout;
	bool has_events;
	int rc = layout_of(db, &layout, &has_events);
	if (rc)
		rc = mesh_errf(err, -EIO, "%s", sqlite3_errmsg(db));
	else if (layout == 0 && has_events)
		rc = mesh_errf(err, -EPROTO, "written by an earlier meshfs (no layout number): move it aside");
	else if (layout != 0 && layout != USAGE_DB_LAYOUT)
		rc = mesh_errf(err, -EPROTO, "layout %d, this meshfs writes layout %d", layout, USAGE_DB_LAYOUT);
	else if (sqlite3_exec(db, schema_sql, NULL, NULL, NULL) ||
		 sqlite3_exec(db, "PRAGMA user_version=" STRINGIFY(USAGE_DB_LAYOUT), NULL, NULL, NULL) ||
		 sqlite3_exec(db, "COMMIT", NULL, NULL, NULL))
		rc = mesh_errf(err, -EIO, "%s", sqlite3_errmsg(db));
	if (rc && !sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

int usage_db_prune(struct sqlite3 *db, int64_t before_ns, uint64_t *folded, struct mesh_err *err)
{
	*folded = 0;
	sqlite3_stmt *fold = NULL, *drop = NULL;
	int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK &&
		 sqlite3_prepare_v2(db,
			"INSERT INTO rollups(day, host, domain, product, version, user_name, program, kind, decision,"
			" opens, bytes, read_calls, incomplete, first_ns, last_ns)"
			" SELECT substr(time, 1, 10), host, domain, product, version, user_name, program, kind, decision,"
			" count(*), sum(bytes), sum(read_calls), sum(complete = 0), min(open_ns), max(open_ns)"
			" FROM events WHERE open_ns < ?1 GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9"
			" ON CONFLICT DO UPDATE SET opens = opens + excluded.opens, bytes = bytes + excluded.bytes,"
			" read_calls = read_calls + excluded.read_calls, incomplete = incomplete + excluded.incomplete,"
			" first_ns = min(first_ns, excluded.first_ns), last_ns = max(last_ns, excluded.last_ns)",
			-1, &fold, NULL) == SQLITE_OK &&
		 sqlite3_prepare_v2(db, "DELETE FROM events WHERE open_ns < ?1", -1, &drop, NULL) == SQLITE_OK ? 0 : -EIO;
	/* the shipper drops the shipped copies of what was folded here (usage.c) */
	sqlite3_stmt *mark = NULL;
	if (!rc && sqlite3_prepare_v2(db, "INSERT INTO meta(key, value) VALUES('pruned_before_ns', ?1)"
				      " ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)",
				      -1, &mark, NULL) != SQLITE_OK)
		rc = -EIO;
	if (!rc) {
		sqlite3_bind_int64(fold, 1, before_ns);
		sqlite3_bind_int64(drop, 1, before_ns);
		sqlite3_bind_int64(mark, 1, before_ns);
		if (sqlite3_step(fold) != SQLITE_DONE || sqlite3_step(drop) != SQLITE_DONE)
			rc = -EIO;
		else
			*folded = (uint64_t)sqlite3_changes(db);
		if (!rc && sqlite3_step(mark) != SQLITE_DONE)
			rc = -EIO;
	}
	if (!rc && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		rc = -EIO;
	if (rc) {
		mesh_errf(err, rc, "prune: %s", sqlite3_errmsg(db));
		*folded = 0;
		if (!sqlite3_get_autocommit(db))
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	}
	sqlite3_finalize(fold);
	sqlite3_finalize(drop);
	sqlite3_finalize(mark);
	return rc;
}

/* ---- small helpers ---- */

static void day_text(int64_t t_ns, char out[16])
{
	time_t sec = (time_t)(t_ns >= 0 ? t_ns / NS : (t_ns - NS + 1) / NS);
	struct tm tm;
	gmtime_r(&sec, &tm);
	strftime(out, 16, "%Y-%m-%d", &tm);
}

static int64_t floor_day(int64_t t_ns)
{
	return t_ns - ((t_ns % DAY_NS) + DAY_NS) % DAY_NS;
}

static void time_text(int64_t t_ns, char *out, size_t size)
{
	struct timespec ts = {.tv_sec = (time_t)(t_ns / NS), .tv_nsec = (long)(t_ns % NS)};
	if (ts.tv_nsec < 0) {
		ts.tv_sec--;
		ts.tv_nsec += NS;
	}
	mesh_time_rfc3339(&ts, out, size);
}

/* Valid UTF-8 without control characters (json, tables); invalid bytes
 * become '?'.  Malloc'ed. */
static char *clean_text(const char *s)
{
	size_t len = strlen(s);
	char *out = xmalloc(len + 1);
	size_t o = 0;
	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)s[i];
		size_t n = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
		bool ok = n > 0 && i + n <= len;
		for (size_t k = 1; ok && k < n; k++)
			ok = ((unsigned char)s[i + k] & 0xc0) == 0x80;
		if (ok && n == 2 && c < 0xc2)
			ok = false;                              /* overlong */
		if (ok && n == 3) {
			unsigned c1 = (unsigned char)s[i + 1];
			ok = !(c == 0xe0 && c1 < 0xa0) && !(c == 0xed && c1 >= 0xa0);
		}
		if (ok && n == 4) {
			unsigned c1 = (unsigned char)s[i + 1];
			ok = c <= 0xf4 && !(c == 0xf0 && c1 < 0x90) && !(c == 0xf4 && c1 >= 0x90);
		}
		/* C0, DEL and C1 controls (U+0080..U+009F: 0x9b is a CSI) */
		if (!ok || (n == 1 && (c < 0x20 || c == 0x7f)) || (n == 2 && c == 0xc2 && (unsigned char)s[i + 1] < 0xa0)) {
			out[o++] = '?';
			i++;
			continue;
		}
		memcpy(out + o, s + i, n);
		o += n;
		i += n;
	}
	out[o] = '\0';
	return out;
}

static size_t display_width(const char *s)
{
	size_t w = 0;
	for (; *s; s++)
		w += ((unsigned char)*s & 0xc0) != 0x80;
	return w;
}

static void human_bytes(uint64_t b, char *out, size_t size)
{
	static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	double v = (double)b;
	int u = 0;
	while (v >= 1024 && u < 6) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(out, size, "%" PRIu64 " B", b);
	else
		snprintf(out, size, "%.1f %s", v, unit[u]);
}

/* A SQLite URI for a path: only these characters pass unescaped. */
static void uri_for(const char *path, const char *query, struct strbuf *sb)
{
	strbuf_puts(sb, "file:");
	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    strchr("/-_.~", *p))
			strbuf_add(sb, p, 1);
		else
			strbuf_printf(sb, "%%%02X", *p);
	}
	strbuf_printf(sb, "?%s", query);
}

/* ---- host databases ---- */

struct host_dir {
	char *name, *path;   /* "web-1", USAGE_ROOT/web-1 */
};

static int cmp_host(const void *a, const void *b)
{
	return strcmp(((const struct host_dir *)a)->name, ((const struct host_dir *)b)->name);
}

/* The host directories under usage_root, sorted.  A missing root: none. */
static int list_hosts(const char *usage_root, struct host_dir **out, size_t *n, struct mesh_err *err)
{
	*out = NULL;
	*n = 0;
	DIR *d = opendir(usage_root);
	if (!d)
		return errno == ENOENT ? 0 : mesh_errf(err, -errno, "%s: %s", usage_root, strerror(errno));
	struct dirent *de;
	size_t cap = 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		struct strbuf sb = STRBUF_INIT;
		strbuf_printf(&sb, "%s/%s", usage_root, de->d_name);
		struct stat st;
		if (stat(sb.buf, &st) < 0 || !S_ISDIR(st.st_mode)) {
			strbuf_release(&sb);
			continue;
		}
		if (*n == cap)
			*out = xrealloc(*out, (cap = cap ? cap * 2 : 8) * sizeof **out);
		(*out)[*n].name = xstrdup(de->d_name);
		(*out)[(*n)++].path = strbuf_detach(&sb, NULL);
	}
	closedir(d);
	if (*n)
		qsort(*out, *n, sizeof **out, cmp_host);
	return 0;
}

static void free_hosts(struct host_dir *h, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(h[i].name);
		free(h[i].path);
	}
	free(h);
}

/* A read-only connection to a host's usage.db, or NULL with *why set
 * (NULL and "" when the host has no database).  A WAL database whose
 * daemon stopped cleanly has no -wal/-shm files, and a reader who may not
 * create them opens it as immutable: it is complete and nobody writes it. */
static sqlite3 *open_host_db(const char *dir, char *why, size_t why_size)
{
	why[0] = '\0';
	char path[PATH_MAX + 32], wal[PATH_MAX + 40];
	snprintf(path, sizeof path, "%s/usage.db", dir);
	snprintf(wal, sizeof wal, "%s-wal", path);
	if (access(path, F_OK) < 0)
		return NULL;
	for (int attempt = 0; attempt < 2; attempt++) {
		struct strbuf uri = STRBUF_INIT;
		uri_for(path, attempt ? "immutable=1" : "mode=ro", &uri);
		sqlite3 *db = NULL;
		int rc = sqlite3_open_v2(uri.buf, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL);
		strbuf_release(&uri);
		int layout = -1;
		bool has_events = false;
		if (rc == SQLITE_OK) {
			sqlite3_busy_timeout(db, 5000);
			rc = layout_of(db, &layout, &has_events) ? sqlite3_errcode(db) : SQLITE_OK;
		}
		if (rc == SQLITE_OK && layout == USAGE_DB_LAYOUT)
			return db;
		if (rc == SQLITE_OK) {
			snprintf(why, why_size, "%s: layout %d, this meshctl reads layout %d", path, layout, USAGE_DB_LAYOUT);
			if (layout == 0 && !has_events)
				why[0] = '\0';                /* created, never written */
			sqlite3_close(db);
			return NULL;
		}
		snprintf(why, why_size, "%s: %s", path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		sqlite3_close(db);
		struct stat st;
		bool wal_pending = stat(wal, &st) == 0 && st.st_size > 0;
		if (attempt || wal_pending || (rc != SQLITE_READONLY && rc != SQLITE_CANTOPEN))
			return NULL;
	}
	return NULL;
}

/* ---- gathering ---- */

struct window {
	int64_t lo, since, until;       /* [lo, until); period 0 from since, 1 before */
	char lo_day[16], since_day[16], until_day[16];   /* rollup days: start in [lo, until) */
};

static void window_set(struct window *w, int64_t lo, int64_t since, int64_t until)
{
	w->lo = lo;
	w->since = since;
	w->until = until;
	/* a rollup day counts when it starts inside the range */
	day_text(floor_day(lo) == lo ? lo : floor_day(lo) + DAY_NS, w->lo_day);
	day_text(floor_day(since) == since ? since : floor_day(since) + DAY_NS, w->since_day);
	day_text(until - 1, w->until_day);
}

#define FILTERS \
	" AND (:domain IS NULL OR domain = :domain) AND (:product IS NULL OR product = :product)" \
	" AND (:version IS NULL OR version = :version) AND (:user IS NULL OR user_name = :user)" \
	" AND (:host IS NULL OR host = :host) AND (:program IS NULL OR program = :program)" \
	" AND (:decision IS NULL OR decision = :decision)" \
	" AND (:audit = 0 OR (kind = 'data' AND decision IN ('deny', 'mask')))" \
	" AND (:scoped = 0 OR user_name = :scope_user OR instr(:scope_domains, ',' || domain || ',') > 0)"

static const char facts_sql[] =
	"SELECT CASE WHEN open_ns >= :since THEN 0 ELSE 1 END, substr(time, 1, 10), host, domain, product, version,"
	" user_name, program, kind, decision, count(*), sum(bytes), sum(read_calls), min(open_ns), max(open_ns)"
	" FROM events WHERE event_id >= :lo_us AND open_ns >= :lo AND open_ns < :until" FILTERS
	" GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10"
	" UNION ALL "
	"SELECT CASE WHEN day >= :since_day THEN 0 ELSE 1 END, day, host, domain, product, version,"
	" user_name, program, kind, decision, sum(opens), sum(bytes), sum(read_calls), min(first_ns), max(last_ns)"
	" FROM rollups WHERE day >= :lo_day AND day <= :until_day" FILTERS
	" GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10";

static const char audit_sql[] =
	"SELECT time, open_ns, host, user_name, uid, program, pid, domain, product, version, file, decision, 1"
	" FROM events WHERE event_id >= :lo_us AND open_ns >= :lo AND open_ns < :until" FILTERS
	" UNION ALL "
	"SELECT day || 'T00:00:00.000Z', first_ns, host, user_name, NULL, program, NULL, domain, product, version,"
	" '', decision, opens FROM rollups WHERE day >= :lo_day AND day <= :until_day" FILTERS;

static void bind_name(sqlite3_stmt *st, const char *name, const char *value)
{
	int i = sqlite3_bind_parameter_index(st, name);
	if (i)
		sqlite3_bind_text(st, i, value, -1, SQLITE_TRANSIENT);
}

static void bind_int(sqlite3_stmt *st, const char *name, int64_t value)
{
	int i = sqlite3_bind_parameter_index(st, name);
	if (i)
		sqlite3_bind_int64(st, i, value);
}

static void bind_query(sqlite3_stmt *st, const struct usage_query *q, const struct window *w, bool audit)
{
	bind_int(st, ":since", w->since);
	bind_int(st, ":lo", w->lo);
	bind_int(st, ":lo_us", w->lo / 1000);
	bind_int(st, ":until", w->until);
	bind_name(st, ":since_day", w->since_day);
	bind_name(st, ":lo_day", w->lo_day);
	bind_name(st, ":until_day", w->until_day);
	bind_name(st, ":domain", q->domain);
	bind_name(st, ":product", q->product);
	bind_name(st, ":version", q->version);
	bind_name(st, ":user", q->user);
	bind_name(st, ":host", q->host);
	bind_name(st, ":program", q->program);
	bind_name(st, ":decision", q->decision);
	bind_int(st, ":audit", audit);
	bind_int(st, ":scoped", q->scope_limited);
	bind_name(st, ":scope_user", q->scope_limited ? q->scope_user : NULL);
	bind_name(st, ":scope_domains", q->scope_limited && q->scope_domains ? q->scope_domains : ",");
}

struct report_state {
	sqlite3 *mem;
	uint64_t hosts;
	struct strbuf warnings;   /* NUL-separated */
	size_t n_warnings;
};

static void warn(struct report_state *rs, const char *msg)
{
	strbuf_add(&rs->warnings, msg, strlen(msg) + 1);
	rs->n_warnings++;
}

/* Copy every row of `src` into `dst` (same number of columns).  0, 1 when
 * reading `src` failed, -EIO when writing `dst` did. */
static int copy_rows(sqlite3_stmt *src, sqlite3_stmt *dst)
{
	int cols = sqlite3_column_count(src), rc;
	while ((rc = sqlite3_step(src)) == SQLITE_ROW) {
		sqlite3_reset(dst);
		for (int c = 0; c < cols; c++)
			sqlite3_bind_value(dst, c + 1, sqlite3_column_value(src, c));
		if (sqlite3_step(dst) != SQLITE_DONE)
			return -EIO;
	}
	return rc == SQLITE_DONE ? 0 : 1;
}

/* ops: with a PostgreSQL sink, the fleet's events come from there: copied
 * into a memory database of the usage.db layout, then the same SQL runs. */
static int gather_pg(struct report_state *rs, const struct usage_query *q, const struct window *w, bool audit,
		     const char *sql, const char *insert_sql, struct mesh_err *err)
{
	sqlite3 *db = NULL, *mem = rs->mem;
	sqlite3_stmt *st = NULL, *ins = NULL;
	uint64_t hosts = 0;
	int rc = sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK ? 0 : -EIO;
	if (rc)
		rc = mesh_errf(err, -EIO, "usage report: out of memory");
	if (!rc)
		rc = usage_db_prepare(db, false, err);
	if (!rc)
		rc = pgsink_fetch_events(q->pg_conninfo, w->lo, w->until, db, &hosts, err);
	if (!rc && (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK ||
		    sqlite3_prepare_v2(mem, insert_sql, -1, &ins, NULL) != SQLITE_OK))
		rc = mesh_errf(err, -EIO, "usage report: %s", sqlite3_errmsg(st ? mem : db));
	if (!rc) {
		bind_query(st, q, w, audit);
		sqlite3_exec(mem, "BEGIN", NULL, NULL, NULL);
		if (copy_rows(st, ins))
			rc = mesh_errf(err, -EIO, "usage report: %s", sqlite3_errmsg(mem));
		sqlite3_exec(mem, "COMMIT", NULL, NULL, NULL);
		rs->hosts += hosts;
	}
	sqlite3_finalize(st);
	sqlite3_finalize(ins);
	sqlite3_close(db);
	return rc;
}

/* Run `sql` on one host's database, appending its rows to `ins`.  0, or
 * -EIO when the in-memory database failed; a host that cannot be read is
 * a warning naming it. */
static int gather_one(struct report_state *rs, sqlite3 *db, const char *host, const char *label,
		      const struct usage_query *q, const struct window *w, bool audit, const char *sql,
		      sqlite3_stmt *ins, struct mesh_err *err)
{
	char why[PATH_MAX + 600];
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		snprintf(why, sizeof why, "host %s: %s: %s", host, label, sqlite3_errmsg(db));
		warn(rs, why);
		return 0;
	}
	bind_query(st, q, w, audit);
	sqlite3_exec(rs->mem, "SAVEPOINT host", NULL, NULL, NULL);
	int r = copy_rows(st, ins), rc = 0;
	if (r < 0) {
		rc = mesh_errf(err, -EIO, "usage report: %s", sqlite3_errmsg(rs->mem));
	} else if (r) {
		snprintf(why, sizeof why, "host %s: %s: %s", host, label, sqlite3_errmsg(db));
		warn(rs, why);
	} else {
		rs->hosts++;
	}
	sqlite3_finalize(st);
	/* a host read halfway counts for nothing (it is reported as unread) */
	sqlite3_exec(rs->mem, r ? "ROLLBACK TO host; RELEASE host" : "RELEASE host", NULL, NULL, NULL);
	return rc;
}

static int cmp_str_ptr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The segments a host shipped (seg-*.db), sorted; NULL when none. */
static char **list_segments(const char *dir, size_t *n)
{
	*n = 0;
	DIR *d = opendir(dir);
	if (!d)
		return NULL;
	char **names = NULL;
	size_t cap = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		if (strncmp(de->d_name, "seg-", 4) || len < 8 || strcmp(de->d_name + len - 3, ".db"))
			continue;
		struct stat st;   /* regular files only: never follow a link out of the store */
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
			continue;
		if (*n == cap)
			names = xrealloc(names, (cap = cap ? cap * 2 : 16) * sizeof *names);
		names[(*n)++] = xstrdup(de->d_name);
	}
	closedir(d);
	if (*n)
		qsort(names, *n, sizeof *names, cmp_str_ptr);
	return names;
}

/* A host's shipped usage as one in-memory database of its events: every
 * segment read (immutable: a renamed segment never changes), an event's
 * complete row kept over an incomplete one.  NULL with *why naming the
 * segment that could not be read; NULL and "" when the host shipped
 * nothing. */
static sqlite3 *open_shipped_once(const char *dir, char *why, size_t why_size, bool *vanished);

static sqlite3 *open_shipped_host(const char *dir, char *why, size_t why_size)
{
	/* a segment listed and then merged away by its host: list again */
	for (int attempt = 0;; attempt++) {
		bool vanished = false;
		sqlite3 *db = open_shipped_once(dir, why, why_size, &vanished);
		if (db || !vanished || attempt == 3)
			return db;
	}
}

static sqlite3 *open_shipped_once(const char *dir, char *why, size_t why_size, bool *vanished)
{
	why[0] = '\0';
	size_t n;
	char **segs = list_segments(dir, &n);
	if (!n)
		return NULL;
	sqlite3 *mem = NULL;
	struct mesh_err err = {0};
	if (sqlite3_open_v2(":memory:", &mem, SQLITE_OPEN_READWRITE | SQLITE_OPEN_URI, NULL) != SQLITE_OK ||
	    usage_db_prepare(mem, false, &err)) {
		snprintf(why, why_size, "%s: %s", dir, err.msg[0] ? err.msg : "cannot make an in-memory database");
		sqlite3_close(mem);
		mem = NULL;
	}
	/* no transaction around the loop: ATTACH and DETACH refuse to run in one */
	for (size_t i = 0; i < n && mem; i++) {
		struct strbuf path = STRBUF_INIT, uri = STRBUF_INIT;
		strbuf_printf(&path, "%s/%s", dir, segs[i]);
		uri_for(path.buf, "immutable=1", &uri);
		sqlite3_stmt *st;
		int rc = sqlite3_prepare_v2(mem, "ATTACH DATABASE ?1 AS seg", -1, &st, NULL);
		if (rc == SQLITE_OK) {
			sqlite3_bind_text(st, 1, uri.buf, -1, SQLITE_STATIC);
			rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
			sqlite3_finalize(st);
		}
		char *msg = NULL;
		if (rc == SQLITE_OK) {
			rc = sqlite3_exec(mem,
				"INSERT INTO main.events SELECT * FROM seg.events WHERE true"
				" ON CONFLICT(event_id) DO UPDATE SET bytes = excluded.bytes,"
				" read_calls = excluded.read_calls, duration_ns = excluded.duration_ns,"
				" complete = excluded.complete WHERE excluded.complete >= events.complete",
				NULL, NULL, &msg);
			/* a merged segment carries the host's rollups at the time
			 * (folded events left the segments): the newest ones win */
			sqlite3_stmt *has = NULL;
			bool rollups = rc == SQLITE_OK &&
				       sqlite3_prepare_v2(mem, "SELECT 1 FROM seg.sqlite_master WHERE type = 'table'"
							  " AND name = 'rollups'", -1, &has, NULL) == SQLITE_OK &&
				       sqlite3_step(has) == SQLITE_ROW;
			sqlite3_finalize(has);
			if (rollups) {
				sqlite3_free(msg);
				msg = NULL;
				rc = sqlite3_exec(mem, "DELETE FROM main.rollups; INSERT INTO main.rollups SELECT * FROM seg.rollups",
						  NULL, NULL, &msg);
			}
			if (rc != SQLITE_OK)
				snprintf(why, why_size, "%s: %s", path.buf, msg ? msg : sqlite3_errmsg(mem));
			sqlite3_free(msg);
			sqlite3_exec(mem, "DETACH DATABASE seg", NULL, NULL, NULL);
		} else {
			snprintf(why, why_size, "%s: %s", path.buf, sqlite3_errmsg(mem));
		}
		if (rc != SQLITE_OK && access(path.buf, F_OK) < 0 && errno == ENOENT)
			*vanished = true;
		strbuf_release(&path);
		strbuf_release(&uri);
		if (rc != SQLITE_OK) {
			sqlite3_close(mem);
			mem = NULL;
		}
	}
	for (size_t i = 0; i < n; i++)
		free(segs[i]);
	free(segs);
	return mem;
}

/* Run `sql` (facts_sql or audit_sql) on every host: the hosts recording
 * here (usage_root: their usage.db), then every other host that shipped
 * segments to q->shipped_root, appending the rows to mem's table. */
static int gather(struct report_state *rs, const char *usage_root, const struct usage_query *q,
		  const struct window *w, bool audit, const char *sql, const char *insert_sql, struct mesh_err *err)
{
	if (q->pg_conninfo)                      /* ops */
		return gather_pg(rs, q, w, audit, sql, insert_sql, err);
	struct host_dir *hosts, *shipped = NULL;
	size_t n, n_shipped = 0;
	int rc = list_hosts(usage_root, &hosts, &n, err);
	if (rc)
		return rc;
	if (q->shipped_root && (rc = list_hosts(q->shipped_root, &shipped, &n_shipped, err))) {
		free_hosts(hosts, n);
		return rc;
	}
	sqlite3_stmt *ins = NULL;
	if (sqlite3_prepare_v2(rs->mem, insert_sql, -1, &ins, NULL) != SQLITE_OK) {
		free_hosts(hosts, n);
		free_hosts(shipped, n_shipped);
		return mesh_errf(err, -EIO, "usage report: %s", sqlite3_errmsg(rs->mem));
	}
	for (size_t h = 0; h < n && !rc; h++) {
		char why[PATH_MAX + 300];
		sqlite3 *db = open_host_db(hosts[h].path, why, sizeof why);
		if (!db) {
			if (why[0]) {
				char msg[PATH_MAX + 600];
				snprintf(msg, sizeof msg, "host %s: %s", hosts[h].name, why);
				warn(rs, msg);
			}
			continue;
		}
		rc = gather_one(rs, db, hosts[h].name, "usage.db", q, w, audit, sql, ins, err);
		sqlite3_close(db);
	}
	for (size_t h = 0; h < n_shipped && !rc; h++) {
		bool here = false;
		for (size_t k = 0; k < n && !here; k++)
			here = !strcmp(hosts[k].name, shipped[h].name);
		if (here)
			continue;             /* its own database is fresher than its segments */
		char why[PATH_MAX + 300];
		sqlite3 *db = open_shipped_host(shipped[h].path, why, sizeof why);
		const char *label = "segments";
		if (!db && !why[0]) {
			/* a store from before segments: the host recorded in the store */
			db = open_host_db(shipped[h].path, why, sizeof why);
			label = "usage.db";
		}
		if (!db) {
			if (why[0]) {
				char msg[PATH_MAX + 600];
				snprintf(msg, sizeof msg, "host %s: %s", shipped[h].name, why);
				warn(rs, msg);
			}
			continue;
		}
		rc = gather_one(rs, db, shipped[h].name, label, q, w, audit, sql, ins, err);
		sqlite3_close(db);
	}
	sqlite3_finalize(ins);
	free_hosts(hosts, n);
	free_hosts(shipped, n_shipped);
	return rc;
}

/* ---- the report: columns and rows ---- */

enum col_type { COL_TEXT, COL_INT, COL_BYTES, COL_TIME, COL_TREND };
enum { SHOW_TABLE = 1, SHOW_DATA = 2, SHOW_BOTH = 3 };

struct column {
	const char *name;     /* csv and json */
	const char *title;    /* table */
	enum col_type type;
	int show;
	const char *source;   /* result column it comes from; "a/b" joins two text columns */
};

struct cell {
	char *text;           /* COL_TEXT */
	int64_t value;        /* COL_INT, COL_BYTES, COL_TIME (ns) */
	double trend;         /* COL_TREND */
	bool null;
};

enum report_kind { REPORT_USAGE, REPORT_AUDIT, REPORT_CONSUMERS };

struct usage_report {
	enum report_kind kind;
	enum usage_by by;
	struct usage_query query;          /* strings owned below */
	char *strings[7];
	struct usage_summary summary;
	const struct column *cols;
	size_t n_cols, n_rows;
	struct cell *cells;                /* n_rows * n_cols */
	struct strbuf warnings;
	size_t n_warnings;
};

#define READ_SQL "kind = 'data' AND decision <> 'deny'"

static const char metrics_sql[] =
	"count(DISTINCT CASE WHEN period = 0 AND " READ_SQL " THEN user_name END) AS consumers,"
	" sum(CASE WHEN period = 0 AND " READ_SQL " THEN opens ELSE 0 END) AS reads,"
	" sum(CASE WHEN period = 0 AND " READ_SQL " THEN bytes ELSE 0 END) AS bytes,"
	" sum(CASE WHEN period = 0 AND " READ_SQL " THEN read_calls ELSE 0 END) AS read_calls,"
	" sum(CASE WHEN period = 0 AND kind = 'data' AND decision = 'mask' THEN opens ELSE 0 END) AS masked,"
	" sum(CASE WHEN period = 0 AND kind = 'data' AND decision = 'deny' THEN opens ELSE 0 END) AS denied,"
	" sum(CASE WHEN period = 0 AND kind = 'discovery' THEN opens ELSE 0 END) AS discovery,"
	" count(DISTINCT CASE WHEN period = 0 THEN host END) AS hosts,"
	" max(CASE WHEN period = 0 AND " READ_SQL " THEN last_ns END) AS last_read,"
	" min(CASE WHEN period = 0 AND " READ_SQL " THEN first_ns END) AS first_read,"
	" count(DISTINCT CASE WHEN period = 1 AND " READ_SQL " THEN user_name END) AS previous_consumers,"
	" sum(CASE WHEN period = 1 AND " READ_SQL " THEN opens ELSE 0 END) AS previous_reads,"
	" sum(CASE WHEN period = 1 AND " READ_SQL " THEN bytes ELSE 0 END) AS previous_bytes,"
	" sum(CASE WHEN period = 0 THEN opens ELSE 0 END) AS events";

static const struct column cols_product[] = {
	{"domain", NULL, COL_TEXT, SHOW_DATA, "domain"},
	{"product", NULL, COL_TEXT, SHOW_DATA, "product"},
	{NULL, "PRODUCT", COL_TEXT, SHOW_TABLE, "domain/product"},
	{"consumers", "CONSUMERS", COL_INT, SHOW_BOTH, "consumers"},
	{"reads", "READS", COL_INT, SHOW_BOTH, "reads"},
	{"bytes", "BYTES", COL_BYTES, SHOW_BOTH, "bytes"},
	{"read_calls", NULL, COL_INT, SHOW_DATA, "read_calls"},
	{"masked", "MASKED", COL_INT, SHOW_BOTH, "masked"},
	{"denied", "DENIED", COL_INT, SHOW_BOTH, "denied"},
	{"discovery", "DISCOVERY", COL_INT, SHOW_BOTH, "discovery"},
	{"hosts", NULL, COL_INT, SHOW_DATA, "hosts"},
	{"last_read", "LAST READ", COL_TIME, SHOW_BOTH, "last_read"},
	{"previous_reads", NULL, COL_INT, SHOW_DATA, "previous_reads"},
	{"trend", "TREND", COL_TREND, SHOW_BOTH, "reads/previous_reads"},
};

static const struct column cols_version[] = {
	{"domain", NULL, COL_TEXT, SHOW_DATA, "domain"},
	{"product", NULL, COL_TEXT, SHOW_DATA, "product"},
	{NULL, "PRODUCT", COL_TEXT, SHOW_TABLE, "domain/product"},
	{"version", "VERSION", COL_TEXT, SHOW_BOTH, "version"},
	{"consumers", "CONSUMERS", COL_INT, SHOW_BOTH, "consumers"},
	{"reads", "READS", COL_INT, SHOW_BOTH, "reads"},
	{"bytes", "BYTES", COL_BYTES, SHOW_BOTH, "bytes"},
	{"read_calls", NULL, COL_INT, SHOW_DATA, "read_calls"},
	{"masked", "MASKED", COL_INT, SHOW_BOTH, "masked"},
	{"denied", "DENIED", COL_INT, SHOW_BOTH, "denied"},
	{"discovery", NULL, COL_INT, SHOW_DATA, "discovery"},
	{"last_read", "LAST READ", COL_TIME, SHOW_BOTH, "last_read"},
	{"previous_reads", NULL, COL_INT, SHOW_DATA, "previous_reads"},
	{"trend", "TREND", COL_TREND, SHOW_BOTH, "reads/previous_reads"},
};

static const struct column cols_consumer[] = {
	{"user", "USER", COL_TEXT, SHOW_BOTH, "user_name"},
	{"host", "HOST", COL_TEXT, SHOW_BOTH, "host"},
	{"program", "PROGRAM", COL_TEXT, SHOW_BOTH, "program"},
	{"reads", "READS", COL_INT, SHOW_BOTH, "reads"},
	{"bytes", "BYTES", COL_BYTES, SHOW_BOTH, "bytes"},
	{"read_calls", NULL, COL_INT, SHOW_DATA, "read_calls"},
	{"masked", "MASKED", COL_INT, SHOW_BOTH, "masked"},
	{"denied", "DENIED", COL_INT, SHOW_BOTH, "denied"},
	{"first_read", NULL, COL_TIME, SHOW_DATA, "first_read"},
	{"last_read", "LAST READ", COL_TIME, SHOW_BOTH, "last_read"},
};

static const struct column cols_host[] = {
	{"host", "HOST", COL_TEXT, SHOW_BOTH, "host"},
	{"consumers", "CONSUMERS", COL_INT, SHOW_BOTH, "consumers"},
	{"reads", "READS", COL_INT, SHOW_BOTH, "reads"},
	{"bytes", "BYTES", COL_BYTES, SHOW_BOTH, "bytes"},
	{"read_calls", NULL, COL_INT, SHOW_DATA, "read_calls"},
	{"masked", NULL, COL_INT, SHOW_DATA, "masked"},
	{"denied", "DENIED", COL_INT, SHOW_BOTH, "denied"},
	{"discovery", "DISCOVERY", COL_INT, SHOW_BOTH, "discovery"},
	{"last_read", "LAST READ", COL_TIME, SHOW_BOTH, "last_read"},
};

static const struct column cols_program[] = {
	{"program", "PROGRAM", COL_TEXT, SHOW_BOTH, "program"},
	{"consumers", "CONSUMERS", COL_INT, SHOW_BOTH, "consumers"},
	{"reads", "READS", COL_INT, SHOW_BOTH, "reads"},
	{"bytes", "BYTES", COL_BYTES, SHOW_BOTH, "bytes"},
	{"read_calls", NULL, COL_INT, SHOW_DATA, "read_calls"},
	{"denied", "DENIED", COL_INT, SHOW_BOTH, "denied"},
	{"last_read", "LAST READ", COL_TIME, SHOW_BOTH, "last_read"},
};

static const struct column cols_day[] = {
	{"day", "DAY", COL_TEXT, SHOW_BOTH, "day"},
	{"consumers", "CONSUMERS", COL_INT, SHOW_BOTH, "consumers"},
	{"reads", "READS", COL_INT, SHOW_BOTH, "reads"},
	{"bytes", "BYTES", COL_BYTES, SHOW_BOTH, "bytes"},
	{"read_calls", NULL, COL_INT, SHOW_DATA, "read_calls"},
	{"masked", NULL, COL_INT, SHOW_DATA, "masked"},
	{"denied", "DENIED", COL_INT, SHOW_BOTH, "denied"},
	{"discovery", "DISCOVERY", COL_INT, SHOW_BOTH, "discovery"},
};

static const struct column cols_audit[] = {
	{"time", "TIME", COL_TEXT, SHOW_BOTH, "time"},
	{"host", "HOST", COL_TEXT, SHOW_BOTH, "host"},
	{"user", "USER", COL_TEXT, SHOW_BOTH, "user_name"},
	{"uid", NULL, COL_INT, SHOW_DATA, "uid"},
	{"program", "PROGRAM", COL_TEXT, SHOW_BOTH, "program"},
	{"pid", "PID", COL_INT, SHOW_BOTH, "pid"},
	{"domain", NULL, COL_TEXT, SHOW_DATA, "domain"},
	{"product", NULL, COL_TEXT, SHOW_DATA, "product"},
	{NULL, "PRODUCT", COL_TEXT, SHOW_TABLE, "domain/product"},
	{"version", "VERSION", COL_TEXT, SHOW_BOTH, "version"},
	{"file", "FILE", COL_TEXT, SHOW_BOTH, "file"},
	{"decision", "DECISION", COL_TEXT, SHOW_BOTH, "decision"},
	{"opens", "OPENS", COL_INT, SHOW_BOTH, "opens"},
};

static const struct column cols_consumers[] = {
	{"user", "USER", COL_TEXT, SHOW_BOTH, "user_name"},
	{"host", "HOST", COL_TEXT, SHOW_BOTH, "host"},
	{"programs", "PROGRAMS", COL_TEXT, SHOW_BOTH, "programs"},
	{"reads", "READS", COL_INT, SHOW_BOTH, "reads"},
	{"bytes", "BYTES", COL_BYTES, SHOW_BOTH, "bytes"},
	{"first_read", NULL, COL_TIME, SHOW_DATA, "first_read"},
	{"last_read", "LAST READ", COL_TIME, SHOW_BOTH, "last_read"},
};

#define COLS(a) a, sizeof a / sizeof *a

struct by_spec {
	const char *name;
	const struct column *cols;
	size_t n_cols;
	const char *group, *having, *order;
};

static const struct by_spec by_specs[] = {
	[USAGE_BY_PRODUCT] = {"product", COLS(cols_product), "domain, product", "events > 0",
			      "consumers DESC, reads DESC, domain, product"},
	[USAGE_BY_VERSION] = {"version", COLS(cols_version), "domain, product, version", "events > 0",
			      "domain, product"},
	[USAGE_BY_CONSUMER] = {"consumer", COLS(cols_consumer), "user_name, host, program", "reads + denied > 0",
			       "reads DESC, last_read DESC, user_name, host, program"},
	[USAGE_BY_HOST] = {"host", COLS(cols_host), "host", "events > 0", "reads DESC, host"},
	[USAGE_BY_PROGRAM] = {"program", COLS(cols_program), "program", "reads + denied > 0", "reads DESC, program"},
	[USAGE_BY_DAY] = {"day", COLS(cols_day), "day", "events > 0", "day"},
};

int usage_by_parse(const char *name, enum usage_by *out)
{
	for (size_t i = 0; i < sizeof by_specs / sizeof *by_specs; i++)
		if (!strcmp(name, by_specs[i].name) || (i == USAGE_BY_CONSUMER && !strcmp(name, "user"))) {
			*out = (enum usage_by)i;
			return 0;
		}
	return -EINVAL;
}

int usage_format_parse(const char *name, enum usage_format *out)
{
	static const char *const names[] = {"table", "csv", "json"};
	for (int i = 0; i < 3; i++)
		if (!strcmp(name, names[i])) {
			*out = (enum usage_format)i;
			return 0;
		}
	return -EINVAL;
}

static int find_column(sqlite3_stmt *st, const char *name, size_t len)
{
	for (int c = 0; c < sqlite3_column_count(st); c++) {
		const char *n = sqlite3_column_name(st, c);
		if (strlen(n) == len && !strncmp(n, name, len))
			return c;
	}
	return -1;
}

/* Fill one row of cells from the current row of `st`. */
static void fill_row(struct usage_report *r, sqlite3_stmt *st)
{
	r->cells = xrealloc(r->cells, (r->n_rows + 1) * r->n_cols * sizeof *r->cells);
	struct cell *row = r->cells + r->n_rows * r->n_cols;
	memset(row, 0, r->n_cols * sizeof *row);
	for (size_t c = 0; c < r->n_cols; c++) {
		const struct column *col = &r->cols[c];
		const char *slash = strchr(col->source, '/');
		size_t len = slash ? (size_t)(slash - col->source) : strlen(col->source);
		int a = find_column(st, col->source, len), b = slash ? find_column(st, slash + 1, strlen(slash + 1)) : -1;
		if (a < 0) {
			row[c].null = true;
			continue;
		}
		switch (col->type) {
		case COL_TEXT: {
			const char *x = (const char *)sqlite3_column_text(st, a);
			const char *y = b >= 0 ? (const char *)sqlite3_column_text(st, b) : NULL;
			struct strbuf sb = STRBUF_INIT;
			strbuf_puts(&sb, x ? x : "");
			if (b >= 0)
				strbuf_printf(&sb, "/%s", y ? y : "");
			row[c].text = strbuf_detach(&sb, NULL);
			if (!row[c].text)
				row[c].text = xstrdup("");
			row[c].null = sqlite3_column_type(st, a) == SQLITE_NULL;
			break;
		}
		case COL_TREND: {
			int64_t now = sqlite3_column_int64(st, a), before = b >= 0 ? sqlite3_column_int64(st, b) : 0;
			row[c].value = now;
			row[c].null = before == 0;       /* new, or nothing at all */
			row[c].trend = before ? (double)now / (double)before - 1 : 0;
			break;
		}
		default:
			row[c].null = sqlite3_column_type(st, a) == SQLITE_NULL;
			row[c].value = sqlite3_column_int64(st, a);
		}
	}
	r->n_rows++;
}

static int col_index(const struct usage_report *r, const char *name)
{
	for (size_t c = 0; c < r->n_cols; c++)
		if (r->cols[c].name && !strcmp(r->cols[c].name, name))
			return (int)c;
	return -1;
}

static const struct usage_report *sort_report;

/* by version: product by product, newest version first */
static int cmp_version_rows(const void *a, const void *b)
{
	const struct cell *x = a, *y = b;
	int d = col_index(sort_report, "domain"), p = col_index(sort_report, "product"),
	    v = col_index(sort_report, "version");
	int c = strcmp(x[d].text, y[d].text);
	if (!c)
		c = strcmp(x[p].text, y[p].text);
	return c ? c : -semver_cmp_str(x[v].text, y[v].text);
}

/* by day: every day of the window, zero rows included (charts want them) */
static void fill_days(struct usage_report *r)
{
	int64_t first = floor_day(r->summary.since_ns), until = r->summary.until_ns;
	if (until <= first || (until - first) / DAY_NS > 3660)
		return;
	size_t days = (size_t)((until - first + DAY_NS - 1) / DAY_NS);
	struct cell *cells = xcalloc(days * r->n_cols, sizeof *cells);
	size_t from = 0;
	for (size_t d = 0; d < days; d++) {
		char day[16];
		day_text(first + (int64_t)d * DAY_NS, day);
		struct cell *row = cells + d * r->n_cols;
		if (from < r->n_rows && !strcmp(r->cells[from * r->n_cols].text, day)) {
			memcpy(row, r->cells + from * r->n_cols, r->n_cols * sizeof *row);
			from++;
			continue;
		}
		row[0].text = xstrdup(day);
		for (size_t c = 1; c < r->n_cols; c++)
			row[c].null = r->cols[c].type == COL_TIME;
	}
	/* rows outside the window (none expected) are dropped */
	for (; from < r->n_rows; from++)
		for (size_t c = 0; c < r->n_cols; c++)
			free(r->cells[from * r->n_cols + c].text);
	free(r->cells);
	r->cells = cells;
	r->n_rows = days;
}

static int rows_from(struct usage_report *r, sqlite3 *mem, const char *sql, struct mesh_err *err)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(mem, sql, -1, &st, NULL) != SQLITE_OK)
		return mesh_errf(err, -EIO, "usage report: %s", sqlite3_errmsg(mem));
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		fill_row(r, st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : mesh_errf(err, -EIO, "usage report: %s", sqlite3_errmsg(mem));
}

static int summarize(struct usage_report *r, sqlite3 *mem, struct mesh_err *err)
{
	struct strbuf sql = STRBUF_INIT;
	strbuf_printf(&sql, "SELECT %s FROM facts", metrics_sql);
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(mem, sql.buf, -1, &st, NULL);
	strbuf_release(&sql);
	if (rc != SQLITE_OK)
		return mesh_errf(err, -EIO, "usage report: %s", sqlite3_errmsg(mem));
	if (sqlite3_step(st) == SQLITE_ROW) {
		struct usage_summary *s = &r->summary;
#define GET(field, name) s->field = (uint64_t)sqlite3_column_int64(st, find_column(st, name, strlen(name)))
		GET(consumers, "consumers");
		GET(reads, "reads");
		GET(bytes, "bytes");
		GET(read_calls, "read_calls");
		GET(discovery, "discovery");
		GET(masked, "masked");
		GET(denied, "denied");
		GET(previous_consumers, "previous_consumers");
		GET(previous_reads, "previous_reads");
		GET(previous_bytes, "previous_bytes");
#undef GET
	}
	sqlite3_finalize(st);
	return 0;
}

static struct usage_report *report_new(enum report_kind kind, const struct usage_query *q)
{
	struct usage_report *r = xcalloc(1, sizeof *r);
	r->kind = kind;
	r->query = *q;
	const char **field[7] = {&r->query.domain, &r->query.product, &r->query.version, &r->query.user,
				 &r->query.host, &r->query.program, &r->query.decision};
	for (int i = 0; i < 7; i++)
		if (*field[i])
			*field[i] = r->strings[i] = xstrdup(*field[i]);
	r->by = q->by;
	r->summary.since_ns = q->since_ns;
	r->summary.until_ns = q->until_ns;
	return r;
}

static sqlite3 *memory_db(const char *create, struct mesh_err *err)
{
	sqlite3 *mem = NULL;
	if (sqlite3_open_v2(":memory:", &mem, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
	    sqlite3_exec(mem, create, NULL, NULL, NULL) != SQLITE_OK) {
		mesh_errf(err, -EIO, "usage report: %s", mem ? sqlite3_errmsg(mem) : "out of memory");
		sqlite3_close(mem);
		return NULL;
	}
	return mem;
}

static const char facts_table[] =
	"CREATE TABLE facts(period INTEGER, day TEXT, host TEXT, domain TEXT, product TEXT, version TEXT,"
	" user_name TEXT, program TEXT, kind TEXT, decision TEXT, opens INTEGER, bytes INTEGER,"
	" read_calls INTEGER, first_ns INTEGER, last_ns INTEGER)";
static const char facts_insert[] = "INSERT INTO facts VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";

static void take_warnings(struct usage_report *r, struct report_state *rs)
{
	r->warnings = rs->warnings;
	r->n_warnings = rs->n_warnings;
	r->summary.hosts = rs->hosts;
}

int usage_report_run(const char *usage_root, const struct usage_query *q, struct usage_report **out,
		     struct mesh_err *err)
{
	*out = NULL;
	if (q->until_ns <= q->since_ns)
		return mesh_errf(err, -EINVAL, "the time range is empty (until is not after since)");
	if ((unsigned)q->by >= sizeof by_specs / sizeof *by_specs)
		return mesh_errf(err, -EINVAL, "unknown grouping");
	if (q->decision && strcmp(q->decision, "allow") && strcmp(q->decision, "mask") && strcmp(q->decision, "deny"))
		return mesh_errf(err, -EINVAL, "decision: '%s' is not allow, mask or deny", q->decision);
	struct usage_report *r = report_new(q->denied ? REPORT_AUDIT : REPORT_USAGE, q);
	int64_t length = q->until_ns - q->since_ns;
	r->summary.previous_since_ns = q->since_ns - length;
	struct report_state rs = {.warnings = STRBUF_INIT};
	struct window w;
	int rc;
	if (q->denied) {
		window_set(&w, q->since_ns, q->since_ns, q->until_ns);
		r->cols = cols_audit;
		r->n_cols = sizeof cols_audit / sizeof *cols_audit;
		rs.mem = memory_db("CREATE TABLE audit(time TEXT, open_ns INTEGER, host TEXT, user_name TEXT, uid INTEGER,"
				   " program TEXT, pid INTEGER, domain TEXT, product TEXT, version TEXT, file TEXT,"
				   " decision TEXT, opens INTEGER)", err);
		rc = rs.mem ? 0 : -EIO;
		if (!rc)
			rc = gather(&rs, usage_root, q, &w, true, audit_sql,
				    "INSERT INTO audit VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)", err);
		struct strbuf sql = STRBUF_INIT;
		strbuf_puts(&sql, "SELECT * FROM audit ORDER BY open_ns, host, user_name");
		if (q->limit)
			strbuf_printf(&sql, " LIMIT %zu", q->limit);
		if (!rc)
			rc = rows_from(r, rs.mem, sql.buf, err);
		strbuf_release(&sql);
		sqlite3_stmt *st;
		if (!rc && sqlite3_prepare_v2(rs.mem, "SELECT total(CASE WHEN decision = 'deny' THEN opens END),"
					      " total(CASE WHEN decision = 'mask' THEN opens END) FROM audit", -1, &st,
					      NULL) == SQLITE_OK) {
			if (sqlite3_step(st) == SQLITE_ROW) {   /* all of them, whatever the limit */
				r->summary.denied = (uint64_t)sqlite3_column_double(st, 0);
				r->summary.masked = (uint64_t)sqlite3_column_double(st, 1);
			}
			sqlite3_finalize(st);
		}
	} else {
		const struct by_spec *spec = &by_specs[q->by];
		window_set(&w, r->summary.previous_since_ns, q->since_ns, q->until_ns);
		r->cols = spec->cols;
		r->n_cols = spec->n_cols;
		rs.mem = memory_db(facts_table, err);
		rc = rs.mem ? 0 : -EIO;
		if (!rc)
			rc = gather(&rs, usage_root, q, &w, false, facts_sql, facts_insert, err);
		if (!rc)
			rc = summarize(r, rs.mem, err);
		struct strbuf sql = STRBUF_INIT;
		strbuf_printf(&sql, "SELECT %s, %s FROM facts GROUP BY %s HAVING %s ORDER BY %s", spec->group, metrics_sql,
			      spec->group, spec->having, spec->order);
		if (q->limit && q->by != USAGE_BY_VERSION && q->by != USAGE_BY_DAY)
			strbuf_printf(&sql, " LIMIT %zu", q->limit);
		if (!rc)
			rc = rows_from(r, rs.mem, sql.buf, err);
		strbuf_release(&sql);
		if (!rc && q->by == USAGE_BY_VERSION && r->n_rows > 1) {
			sort_report = r;
			qsort(r->cells, r->n_rows, r->n_cols * sizeof *r->cells, cmp_version_rows);
		}
		if (!rc && q->by == USAGE_BY_DAY)
			fill_days(r);
		if (!rc && q->limit && r->n_rows > q->limit && (q->by == USAGE_BY_VERSION || q->by == USAGE_BY_DAY)) {
			for (size_t i = q->limit * r->n_cols; i < r->n_rows * r->n_cols; i++)
				free(r->cells[i].text);
			r->n_rows = q->limit;
		}
	}
	sqlite3_close(rs.mem);
	take_warnings(r, &rs);
	if (rc) {
		usage_report_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

int usage_consumers_run(const char *usage_root, const char *shipped_root, const char *domain, const char *product,
			const char *version, int64_t since_ns, int64_t until_ns, struct usage_report **out,
			struct mesh_err *err)
{
	*out = NULL;
	if (until_ns <= since_ns)
		return mesh_errf(err, -EINVAL, "the time range is empty (until is not after since)");
	struct usage_query q = {.domain = domain, .product = product, .version = version, .since_ns = since_ns,
				.until_ns = until_ns, .shipped_root = shipped_root};
	struct usage_report *r = report_new(REPORT_CONSUMERS, &q);
	r->cols = cols_consumers;
	r->n_cols = sizeof cols_consumers / sizeof *cols_consumers;
	r->summary.previous_since_ns = since_ns;
	struct report_state rs = {.warnings = STRBUF_INIT};
	struct window w;
	window_set(&w, since_ns, since_ns, until_ns);
	rs.mem = memory_db(facts_table, err);
	int rc = rs.mem ? 0 : -EIO;
	if (!rc)
		rc = gather(&rs, usage_root, &q, &w, false, facts_sql, facts_insert, err);
	if (!rc)
		rc = summarize(r, rs.mem, err);
	struct strbuf sql = STRBUF_INIT;
	strbuf_printf(&sql, "SELECT user_name, host, %s,"
		      " (SELECT group_concat(program, ', ') FROM (SELECT DISTINCT program FROM facts AS f"
		      "  WHERE f.user_name = facts.user_name AND f.host = facts.host AND " READ_SQL " ORDER BY program))"
		      " AS programs FROM facts GROUP BY user_name, host HAVING reads > 0"
		      " ORDER BY last_read DESC, user_name, host", metrics_sql);
	if (!rc)
		rc = rows_from(r, rs.mem, sql.buf, err);
	strbuf_release(&sql);
	sqlite3_close(rs.mem);
	take_warnings(r, &rs);
	if (rc) {
		usage_report_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

const struct usage_summary *usage_report_summary(const struct usage_report *r)
{
	return &r->summary;
}

size_t usage_report_row_count(const struct usage_report *r)
{
	return r->n_rows;
}

const char *usage_report_warning(const struct usage_report *r, size_t i)
{
	if (i >= r->n_warnings)
		return NULL;
	const char *p = r->warnings.buf;
	while (i--)
		p += strlen(p) + 1;
	return p;
}

void usage_report_free(struct usage_report *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_rows * r->n_cols; i++)
		free(r->cells[i].text);
	free(r->cells);
	for (int i = 0; i < 7; i++)
		free(r->strings[i]);
	strbuf_release(&r->warnings);
	free(r);
}

/* ---- formatting ---- */

static void trend_text(double trend, bool null, int64_t now, char *out, size_t size)
{
	if (null)
		snprintf(out, size, "%s", now > 0 ? "new" : "-");
	else
		snprintf(out, size, "%+.0f%%", trend * 100);
}

/* A cell as table text (malloc'ed). */
static char *cell_table_text(const struct column *col, const struct cell *cell)
{
	char buf[64];
	switch (col->type) {
	case COL_TEXT:
		return clean_text(cell->text ? cell->text : "");
	case COL_INT:
		if (cell->null)
			return xstrdup("-");
		snprintf(buf, sizeof buf, "%" PRId64, cell->value);
		return xstrdup(buf);
	case COL_BYTES:
		human_bytes((uint64_t)cell->value, buf, sizeof buf);
		return xstrdup(buf);
	case COL_TIME:
		if (cell->null)
			return xstrdup("-");
		time_text(cell->value, buf, sizeof buf);
		return xstrdup(buf);
	case COL_TREND:
		trend_text(cell->trend, cell->null, cell->value, buf, sizeof buf);
		return xstrdup(buf);
	}
	return xstrdup("");
}

static void csv_field(struct strbuf *sb, const char *v)
{
	if (!strpbrk(v, ",\"\r\n") && v[0] != ' ' && (!*v || v[strlen(v) - 1] != ' ')) {
		strbuf_puts(sb, v);
		return;
	}
	strbuf_puts(sb, "\"");
	for (const char *p = v; *p; p++)
		strbuf_puts(sb, *p == '"' ? "\"\"" : (char[2]){*p, 0});
	strbuf_puts(sb, "\"");
}

static json_t *cell_json(const struct column *col, const struct cell *cell)
{
	char buf[64];
	switch (col->type) {
	case COL_TEXT: {
		if (cell->null)
			return json_null();
		char *t = clean_text(cell->text ? cell->text : "");
		json_t *j = json_string(t);
		free(t);
		return j;
	}
	case COL_INT:
	case COL_BYTES:
		return cell->null ? json_null() : json_integer(cell->value);
	case COL_TIME:
		if (cell->null)
			return json_null();
		time_text(cell->value, buf, sizeof buf);
		return json_string(buf);
	case COL_TREND:
		return cell->null ? json_null() : json_real(round(cell->trend * 10000) / 10000);
	}
	return json_null();
}

static void period_text(int64_t since, int64_t until, char *out, size_t size)
{
	char a[40], b[40];
	if (floor_day(since) == since && floor_day(until) == until) {
		day_text(since, a);
		day_text(until - 1, b);
		snprintf(out, size, "%s .. %s (%" PRId64 " days)", a, b, (until - since) / DAY_NS);
	} else {
		time_text(since, a, sizeof a);
		time_text(until, b, sizeof b);
		snprintf(out, size, "%s .. %s", a, b);
	}
}

static void scope_text(const struct usage_report *r, struct strbuf *sb)
{
	const struct usage_query *q = &r->query;
	if (q->domain && q->product)
		strbuf_printf(sb, "%s/%s", q->domain, q->product);
	else if (q->domain)
		strbuf_printf(sb, "domain %s", q->domain);
	else if (q->product)
		strbuf_printf(sb, "product %s", q->product);
	else
		strbuf_puts(sb, "all products");
	if (q->version)
		strbuf_printf(sb, " version %s", q->version);
	if (q->user)
		strbuf_printf(sb, ", user %s", q->user);
	if (q->host)
		strbuf_printf(sb, ", host %s", q->host);
	if (q->program)
		strbuf_printf(sb, ", program %s", q->program);
	if (q->decision)
		strbuf_printf(sb, ", decision %s", q->decision);
}

static void change_text(uint64_t now, uint64_t before, struct strbuf *sb)
{
	if (before)
		strbuf_printf(sb, "  (previous period %" PRIu64 ", %+.0f%%)", before,
			      ((double)now / (double)before - 1) * 100);
	else
		strbuf_printf(sb, "  (previous period 0%s)", now ? ", new" : "");
}

static void format_header(const struct usage_report *r, struct strbuf *sb)
{
	const struct usage_summary *s = &r->summary;
	char period[128], bytes[32];
	period_text(s->since_ns, s->until_ns, period, sizeof period);
	struct strbuf scope = STRBUF_INIT;
	scope_text(r, &scope);
	char *clean = clean_text(scope.buf ? scope.buf : "");
	strbuf_release(&scope);
	const char *what = r->kind == REPORT_AUDIT ? "denied and masked opens" : r->kind == REPORT_CONSUMERS
			   ? "readers" : "usage";
	strbuf_printf(sb, "%s of %s, %s, %" PRIu64 " host%s\n", what, clean, period, s->hosts, s->hosts == 1 ? "" : "s");
	free(clean);
	if (r->kind == REPORT_AUDIT) {
		strbuf_printf(sb, "denied     %" PRIu64 "\nmasked     %" PRIu64 "\n", s->denied, s->masked);
	} else if (r->kind == REPORT_USAGE) {
		strbuf_printf(sb, "consumers  %" PRIu64, s->consumers);
		change_text(s->consumers, s->previous_consumers, sb);
		strbuf_printf(sb, "\nreads      %" PRIu64, s->reads);
		change_text(s->reads, s->previous_reads, sb);
		human_bytes(s->bytes, bytes, sizeof bytes);
		strbuf_printf(sb, "\nbytes      %s served by the daemon (%" PRIu64 " read calls)\n", bytes, s->read_calls);
		strbuf_printf(sb, "discovery  %" PRIu64 " opens of contracts, schemas and docs\n", s->discovery);
		strbuf_printf(sb, "masked     %" PRIu64 "\ndenied     %" PRIu64 "\n", s->masked, s->denied);
	}
	strbuf_puts(sb, "\n");
}

static void format_table(const struct usage_report *r, struct strbuf *sb)
{
	format_header(r, sb);
	size_t n_cols = r->n_cols;
	char **text = xcalloc((r->n_rows + 1) * n_cols, sizeof *text);
	size_t *width = xcalloc(n_cols, sizeof *width);
	for (size_t c = 0; c < n_cols; c++) {
		if (!(r->cols[c].show & SHOW_TABLE))
			continue;
		text[c] = xstrdup(r->cols[c].title);
		width[c] = display_width(text[c]);
		for (size_t i = 0; i < r->n_rows; i++) {
			char *t = cell_table_text(&r->cols[c], &r->cells[i * n_cols + c]);
			text[(i + 1) * n_cols + c] = t;
			size_t w = display_width(t);
			if (w > width[c])
				width[c] = w;
		}
	}
	size_t last = 0;
	for (size_t c = 0; c < n_cols; c++)
		if (r->cols[c].show & SHOW_TABLE)
			last = c;
	for (size_t i = 0; i <= r->n_rows; i++) {
		bool first = true;
		for (size_t c = 0; c < n_cols; c++) {
			if (!(r->cols[c].show & SHOW_TABLE))
				continue;
			const char *t = text[i * n_cols + c];
			size_t pad = width[c] - display_width(t);
			bool right = r->cols[c].type != COL_TEXT && r->cols[c].type != COL_TIME && i > 0;
			if (!first)
				strbuf_puts(sb, "  ");
			first = false;
			if (right)
				strbuf_printf(sb, "%*s", (int)pad, "");
			strbuf_puts(sb, t);
			if (!right && c != last)
				strbuf_printf(sb, "%*s", (int)pad, "");
		}
		strbuf_puts(sb, "\n");
	}
	if (!r->n_rows)
		strbuf_puts(sb, "(no events)\n");
	for (size_t i = 0; i < (r->n_rows + 1) * n_cols; i++)
		free(text[i]);
	free(text);
	free(width);
}

static void format_csv(const struct usage_report *r, struct strbuf *sb)
{
	bool first = true;
	for (size_t c = 0; c < r->n_cols; c++)
		if (r->cols[c].show & SHOW_DATA) {
			strbuf_puts(sb, first ? "" : ",");
			csv_field(sb, r->cols[c].name);
			first = false;
		}
	strbuf_puts(sb, "\r\n");
	for (size_t i = 0; i < r->n_rows; i++) {
		first = true;
		for (size_t c = 0; c < r->n_cols; c++) {
			const struct column *col = &r->cols[c];
			const struct cell *cell = &r->cells[i * r->n_cols + c];
			if (!(col->show & SHOW_DATA))
				continue;
			strbuf_puts(sb, first ? "" : ",");
			first = false;
			char buf[64] = "";
			if (col->type == COL_TEXT) {
				char *t = clean_text(cell->text ? cell->text : "");
				csv_field(sb, t);
				free(t);
				continue;
			}
			if (cell->null)
				continue;      /* empty field */
			if (col->type == COL_TIME)
				time_text(cell->value, buf, sizeof buf);
			else if (col->type == COL_TREND)
				snprintf(buf, sizeof buf, "%.4f", cell->trend);
			else
				snprintf(buf, sizeof buf, "%" PRId64, cell->value);
			strbuf_puts(sb, buf);
		}
		strbuf_puts(sb, "\r\n");
	}
}

static json_t *summary_json(const struct usage_report *r)
{
	const struct usage_summary *s = &r->summary;
	json_t *o = json_object();
	json_object_set_new(o, "hosts", json_integer((json_int_t)s->hosts));
	if (r->kind == REPORT_AUDIT) {
		json_object_set_new(o, "denied", json_integer((json_int_t)s->denied));
		json_object_set_new(o, "masked", json_integer((json_int_t)s->masked));
		return o;
	}
	json_object_set_new(o, "consumers", json_integer((json_int_t)s->consumers));
	json_object_set_new(o, "reads", json_integer((json_int_t)s->reads));
	json_object_set_new(o, "bytes", json_integer((json_int_t)s->bytes));
	json_object_set_new(o, "read_calls", json_integer((json_int_t)s->read_calls));
	if (r->kind == REPORT_CONSUMERS)
		return o;
	json_object_set_new(o, "discovery", json_integer((json_int_t)s->discovery));
	json_object_set_new(o, "masked", json_integer((json_int_t)s->masked));
	json_object_set_new(o, "denied", json_integer((json_int_t)s->denied));
	json_t *prev = json_object();
	json_object_set_new(prev, "consumers", json_integer((json_int_t)s->previous_consumers));
	json_object_set_new(prev, "reads", json_integer((json_int_t)s->previous_reads));
	json_object_set_new(prev, "bytes", json_integer((json_int_t)s->previous_bytes));
	json_object_set_new(o, "previous", prev);
	json_t *trend = json_object();
	json_object_set_new(trend, "consumers", s->previous_consumers ?
			    json_real(round(((double)s->consumers / (double)s->previous_consumers - 1) * 1e4) / 1e4) :
			    json_null());
	json_object_set_new(trend, "reads", s->previous_reads ?
			    json_real(round(((double)s->reads / (double)s->previous_reads - 1) * 1e4) / 1e4) :
			    json_null());
	json_object_set_new(o, "trend", trend);
	return o;
}

static char *format_json(const struct usage_report *r)
{
	static const char *const kinds[] = {"usage", "denied", "consumers"};
	json_t *o = json_object();
	char t[40];
	json_object_set_new(o, "report", json_string(kinds[r->kind]));
	if (r->kind == REPORT_USAGE)
		json_object_set_new(o, "by", json_string(by_specs[r->by].name));
	time_text(r->summary.since_ns, t, sizeof t);
	json_object_set_new(o, "since", json_string(t));
	time_text(r->summary.until_ns, t, sizeof t);
	json_object_set_new(o, "until", json_string(t));
	if (r->kind == REPORT_USAGE) {
		time_text(r->summary.previous_since_ns, t, sizeof t);
		json_object_set_new(o, "previous_since", json_string(t));
	}
	json_t *filters = json_object();
	const char *names[7] = {"domain", "product", "version", "user", "host", "program", "decision"};
	const char *values[7] = {r->query.domain, r->query.product, r->query.version, r->query.user, r->query.host,
				 r->query.program, r->query.decision};
	for (int i = 0; i < 7; i++)
		if (values[i]) {
			char *c = clean_text(values[i]);
			json_object_set_new(filters, names[i], json_string(c));
			free(c);
		}
	json_object_set_new(o, "filters", filters);
	json_object_set_new(o, "summary", summary_json(r));
	json_t *rows = json_array();
	for (size_t i = 0; i < r->n_rows; i++) {
		json_t *row = json_object();
		for (size_t c = 0; c < r->n_cols; c++)
			if (r->cols[c].show & SHOW_DATA)
				json_object_set_new(row, r->cols[c].name, cell_json(&r->cols[c], &r->cells[i * r->n_cols + c]));
		json_array_append_new(rows, row);
	}
	json_object_set_new(o, "rows", rows);
	json_t *warnings = json_array();
	for (size_t i = 0; i < r->n_warnings; i++) {
		char *c = clean_text(usage_report_warning(r, i));
		json_array_append_new(warnings, json_string(c));
		free(c);
	}
	json_object_set_new(o, "warnings", warnings);
	char *out = mesh_json_text(o);
	json_decref(o);
	return out;
}

char *usage_report_format(const struct usage_report *r, enum usage_format fmt)
{
	if (fmt == USAGE_FORMAT_JSON)
		return format_json(r);
	struct strbuf sb = STRBUF_INIT;
	if (fmt == USAGE_FORMAT_CSV)
		format_csv(r, &sb);
	else
		format_table(r, &sb);
	char *text = strbuf_detach(&sb, NULL);
	return text ? text : xstrdup("");
}

/* ---- status ---- */

/* Copy with truncation (state values are single lines of bounded length). */
static void set_text(char *dst, size_t size, const char *src)
{
	size_t n = strnlen(src, size - 1);
	memcpy(dst, src, n);
	dst[n] = '\0';
}

int usage_state_parse(const char *text, struct usage_host_status *out)
{
	memset(out, 0, sizeof *out);
	snprintf(out->prune, sizeof out->prune, "-");
	snprintf(out->last_error, sizeof out->last_error, "-");
	snprintf(out->sink_last_error, sizeof out->sink_last_error, "-");
	if (strncmp(text, "meshfs-usage-state 1\n", 21))
		return -EPROTO;
	bool end = false;
	int running = 0;
	for (const char *line = text + 21; *line && !end;) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		char key[32] = "", value[512] = "";
		const char *sp = memchr(line, ' ', len);
		if (len == 3 && !strncmp(line, "end", 3))
			end = true;
		else if (sp && (size_t)(sp - line) < sizeof key) {
			memcpy(key, line, (size_t)(sp - line));
			size_t vlen = len - (size_t)(sp - line) - 1;
			if (vlen >= sizeof value)
				vlen = sizeof value - 1;
			memcpy(value, sp + 1, vlen);
		}
		line = nl ? nl + 1 : line + len;
		if (!key[0])
			continue;
		uint64_t u = strtoull(value, NULL, 10);
		int64_t s = strtoll(value, NULL, 10);
#define U64(name) else if (!strcmp(key, #name)) out->name = u
		if (!strcmp(key, "host"))
			set_text(out->host, sizeof out->host, value);
		else if (!strcmp(key, "pid"))
			out->pid = (int)s;
		else if (!strcmp(key, "running"))
			running = (int)s;
		else if (!strcmp(key, "started_ns"))
			out->started_ns = s;
		else if (!strcmp(key, "updated_ns"))
			out->updated_ns = s;
		else if (!strcmp(key, "last_commit_ns"))
			out->last_commit_ns = s;
		else if (!strcmp(key, "policy"))
			set_text(out->policy, sizeof out->policy, value);
		else if (!strcmp(key, "sqlite_journal"))
			set_text(out->sqlite_journal, sizeof out->sqlite_journal, value);
		else if (!strcmp(key, "retention_days"))
			out->retention_days = (unsigned)u;
		else if (!strcmp(key, "prune"))
			set_text(out->prune, sizeof out->prune, value);
		else if (!strcmp(key, "last_error"))
			set_text(out->last_error, sizeof out->last_error, value);
		else if (!strcmp(key, "sink_connected"))
			out->sink = true, out->sink_connected = s == 1;
		else if (!strcmp(key, "sink_backlog"))
			out->sink_backlog = s;
		else if (!strcmp(key, "sink_oldest_ns"))
			out->sink_oldest_ns = s;
		else if (!strcmp(key, "sink_shipped"))
			out->sink_shipped = u;
		else if (!strcmp(key, "sink_last_error"))
			set_text(out->sink_last_error, sizeof out->sink_last_error, value);
		U64(capacity); U64(in_use); U64(backlog); U64(committed); U64(replayed); U64(damaged);
		U64(refused); U64(lost); U64(opens_allow); U64(opens_mask); U64(opens_deny);
		U64(opens_discovery); U64(bytes); U64(batches); U64(batch_max);
#undef U64
	}
	out->running = running == 1;     /* "lately" is the caller's to judge */
	return end ? 0 : -EPROTO;
}

int usage_status_read(const char *usage_root, int64_t now_ns, struct usage_host_status **out, size_t *n,
		      struct mesh_err *err)
{
	*out = NULL;
	*n = 0;
	struct host_dir *hosts;
	size_t n_hosts;
	int rc = list_hosts(usage_root, &hosts, &n_hosts, err);
	if (rc)
		return rc;
	if (n_hosts)
		*out = xcalloc(n_hosts, sizeof **out);
	for (size_t h = 0; h < n_hosts; h++) {
		char path[PATH_MAX + 16];
		snprintf(path, sizeof path, "%s/state", hosts[h].path);
		struct usage_host_status *s = &(*out)[*n];
		/* rewritten in place: a read may catch it half written */
		int parsed = -EPROTO;
		for (int attempt = 0; attempt < 5 && parsed; attempt++) {
			char *text = NULL;
			size_t len;
			if (mesh_read_file_at(AT_FDCWD, path, 65536, &text, &len, NULL))
				break;
			parsed = usage_state_parse(text, s);
			free(text);
			if (parsed)
				usleep(20000);
		}
		if (parsed)
			continue;
		if (!s->host[0])
			snprintf(s->host, sizeof s->host, "%s", hosts[h].name);
		s->running = s->running && now_ns - s->updated_ns < RUNNING_WITHIN_NS;
		(*n)++;
	}
	free_hosts(hosts, n_hosts);
	return 0;
}

static void ago_text(int64_t now, int64_t then, char *out, size_t size)
{
	int64_t s = (now - then) / NS;
	if (s < 0)
		s = 0;
	if (s < 120)
		snprintf(out, size, "%" PRId64 " s ago", s);
	else if (s < 7200)
		snprintf(out, size, "%" PRId64 " min ago", s / 60);
	else if (s < 172800)
		snprintf(out, size, "%" PRId64 " h ago", s / 3600);
	else
		snprintf(out, size, "%" PRId64 " days ago", s / 86400);
}

char *usage_status_format(const struct usage_host_status *hosts, size_t n, int64_t now_ns, bool json)
{
	if (json) {
		json_t *a = json_array();
		for (size_t i = 0; i < n; i++) {
			const struct usage_host_status *s = &hosts[i];
			json_t *o = json_object();
			char t[40];
			char *host = clean_text(s->host);
			json_object_set_new(o, "host", json_string(host));
			free(host);
			json_object_set_new(o, "running", json_boolean(s->running));
			json_object_set_new(o, "pid", json_integer(s->pid));
			time_text(s->updated_ns, t, sizeof t);
			json_object_set_new(o, "updated", json_string(t));
			json_object_set_new(o, "policy", json_string(s->policy));
			json_object_set_new(o, "sqlite_journal", json_string(s->sqlite_journal));
#define U64(name) json_object_set_new(o, #name, json_integer((json_int_t)s->name))
			U64(capacity); U64(in_use); U64(backlog); U64(committed); U64(replayed); U64(damaged);
			U64(refused); U64(lost); U64(opens_allow); U64(opens_mask); U64(opens_deny);
			U64(opens_discovery); U64(bytes); U64(batches); U64(batch_max); U64(retention_days);
#undef U64
			if (s->last_commit_ns) {
				time_text(s->last_commit_ns, t, sizeof t);
				json_object_set_new(o, "last_commit", json_string(t));
			} else {
				json_object_set_new(o, "last_commit", json_null());
			}
			char *e = clean_text(s->last_error);
			json_object_set_new(o, "last_error", strcmp(e, "-") ? json_string(e) : json_null());
			free(e);
			if (s->sink) {
				json_t *k = json_object();
				json_object_set_new(k, "connected", json_boolean(s->sink_connected));
				json_object_set_new(k, "backlog", json_integer((json_int_t)s->sink_backlog));
				json_object_set_new(k, "oldest_age_s", s->sink_backlog > 0 && s->sink_oldest_ns > 0
					? json_real((double)(now_ns - s->sink_oldest_ns) / 1e9) : json_null());
				json_object_set_new(k, "shipped", json_integer((json_int_t)s->sink_shipped));
				char *se = clean_text(s->sink_last_error);
				json_object_set_new(k, "last_error", strcmp(se, "-") ? json_string(se) : json_null());
				free(se);
				json_object_set_new(o, "postgresql", k);
			}
			json_array_append_new(a, o);
		}
		char *text = json_dumps(a, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		json_decref(a);
		struct strbuf sb = STRBUF_INIT;
		strbuf_printf(&sb, "%s\n", text);
		free(text);
		return strbuf_detach(&sb, NULL);
	}
	struct strbuf sb = STRBUF_INIT;
	if (!n)
		strbuf_puts(&sb, "usage        no host has recorded usage in this store\n");
	for (size_t i = 0; i < n; i++) {
		const struct usage_host_status *s = &hosts[i];
		char ago[32], bytes[32], when[40];
		ago_text(now_ns, s->updated_ns, ago, sizeof ago);
		human_bytes(s->bytes, bytes, sizeof bytes);
		char *host = clean_text(s->host), *error = clean_text(s->last_error);
		strbuf_printf(&sb, "usage host   %s: %s (pid %d, updated %s), policy %s, sqlite %s\n", host,
			      s->running ? "recording" : "not running", s->pid, ago, s->policy, s->sqlite_journal);
		strbuf_printf(&sb, "journal      %" PRIu64 " slots, %" PRIu64 " in use\n", s->capacity, s->in_use);
		strbuf_printf(&sb, "backlog      %" PRIu64 "\n", s->backlog);
		strbuf_printf(&sb, "committed    %" PRIu64 " since start (%" PRIu64 " left by a stopped daemon, %" PRIu64
			      " damaged)\n", s->committed, s->replayed, s->damaged);
		strbuf_printf(&sb, "refused      %" PRIu64 "\n", s->refused);
		strbuf_printf(&sb, "lost         %" PRIu64 "\n", s->lost);
		strbuf_printf(&sb, "opens        %" PRIu64 " allowed, %" PRIu64 " masked, %" PRIu64 " denied, %" PRIu64
			      " discovery since start; %s served\n", s->opens_allow, s->opens_mask, s->opens_deny, s->opens_discovery,
			      bytes);
		if (s->last_commit_ns)
			time_text(s->last_commit_ns, when, sizeof when);
		strbuf_printf(&sb, "last commit  %s\n", s->last_commit_ns ? when : "-");
		strbuf_printf(&sb, "last error   %s\n", error);
		if (s->sink) {
			char oldest[48] = "";
			if (s->sink_backlog > 0 && s->sink_oldest_ns > 0) {
				char a2[32];
				ago_text(now_ns, s->sink_oldest_ns, a2, sizeof a2);
				snprintf(oldest, sizeof oldest, ", oldest %s", a2);
			}
			char *se = clean_text(s->sink_last_error);
			strbuf_printf(&sb, "postgresql   %s, backlog %" PRId64 "%s, %" PRIu64 " shipped since start\n",
				      s->sink_connected ? "connected" : "not connected", s->sink_backlog, oldest,
				      s->sink_shipped);
			strbuf_printf(&sb, "pg error     %s\n", se);
			free(se);
		}
		free(host);
		free(error);
	}
	return strbuf_detach(&sb, NULL);
}

/* ---- pruning ---- */

/* 1: the host's daemon holds its journal, 0: nobody does (and *lock_fd
 * now does, until the caller closes it), <0: cannot tell (-EACCES: the
 * caller may not write it). */
static int daemon_holds(const char *dir, int *lock_fd)
{
	char path[PATH_MAX + 16];
	snprintf(path, sizeof path, "%s/journal", dir);
	*lock_fd = mesh_open_regular_at(AT_FDCWD, path, O_RDWR, 0, NULL);
	if (*lock_fd < 0) {
		int e = *lock_fd;
		*lock_fd = -1;
		return e == -ENOENT ? 0 : e;
	}
	if (flock(*lock_fd, LOCK_EX | LOCK_NB) == 0)
		return 0;
	int e = errno;
	close(*lock_fd);
	*lock_fd = -1;
	return e == EWOULDBLOCK ? 1 : -e;
}

static void prune_here(const char *dir, int64_t before_ns, struct usage_prune_result *res)
{
	char path[PATH_MAX + 16];
	snprintf(path, sizeof path, "%s/usage.db", dir);
	sqlite3 *db = NULL;
	struct mesh_err err = {0};
	int layout;
	bool has_events;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		res->outcome = USAGE_PRUNE_FAILED;
		snprintf(res->message, sizeof res->message, "%.300s: %.200s", path, db ? sqlite3_errmsg(db) : "cannot open");
	} else if (sqlite3_busy_timeout(db, 5000), layout_of(db, &layout, &has_events) || layout != USAGE_DB_LAYOUT) {
		res->outcome = USAGE_PRUNE_FAILED;
		snprintf(res->message, sizeof res->message, "%.300s: not a usage database of layout %d", path,
			 USAGE_DB_LAYOUT);
	} else if (usage_db_prune(db, before_ns, &res->folded, &err)) {
		res->outcome = USAGE_PRUNE_FAILED;
		snprintf(res->message, sizeof res->message, "%.300s: %.200s", path, err.msg);
	} else {
		res->outcome = USAGE_PRUNED;
		snprintf(res->message, sizeof res->message, "%" PRIu64 " events folded into daily rollups", res->folded);
	}
	sqlite3_close(db);
}

static void prune_by_daemon(const char *dir, int64_t before_ns, unsigned wait_ms, struct usage_prune_result *res)
{
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		dirfd = -errno;
	char text[32];
	int len = snprintf(text, sizeof text, "%" PRId64 "\n", before_ns);
	struct mesh_err err = {0};
	if (dirfd < 0 || mesh_write_file_atomic(dirfd, USAGE_PRUNE_REQUEST, text, (size_t)len, 0600, &err)) {
		int e = dirfd < 0 ? -dirfd : -err.code;
		res->outcome = e == EACCES || e == EPERM || e == EROFS ? USAGE_PRUNE_SKIPPED : USAGE_PRUNE_FAILED;
		snprintf(res->message, sizeof res->message, "cannot ask the daemon: %.400s",
			 dirfd < 0 ? strerror(errno) : err.msg);
		if (dirfd >= 0)
			close(dirfd);
		return;
	}
	close(dirfd);
	res->outcome = USAGE_PRUNE_ASKED;
	snprintf(res->message, sizeof res->message, "asked the host's daemon, which prunes at its next status update");
	char path[PATH_MAX + 16], want[64];
	snprintf(path, sizeof path, "%s/state", dir);
	snprintf(want, sizeof want, "before_ns %" PRId64 " ", before_ns);
	for (unsigned waited = 0; waited < wait_ms; waited += 100) {
		usleep(100000);
		char *state = NULL;
		size_t n;
		struct usage_host_status s;
		if (mesh_read_file_at(AT_FDCWD, path, 65536, &state, &n, NULL))
			continue;
		int rc = usage_state_parse(state, &s);
		free(state);
		if (rc || strncmp(s.prune, want, strlen(want)))
			continue;
		const char *result = s.prune + strlen(want);
		res->done_by_daemon = true;
		if (!strncmp(result, "folded ", 7)) {
			res->folded = strtoull(result + 7, NULL, 10);
			snprintf(res->message, sizeof res->message, "%" PRIu64 " events folded into daily rollups by the daemon",
				 res->folded);
		} else {
			res->outcome = USAGE_PRUNE_FAILED;
			snprintf(res->message, sizeof res->message, "the daemon: %s", result);
		}
		return;
	}
}

int usage_prune_store(const char *usage_root, int64_t before_ns, unsigned wait_ms,
		      struct usage_prune_result **results, size_t *n, struct mesh_err *err)
{
	*results = NULL;
	*n = 0;
	struct host_dir *hosts;
	size_t n_hosts;
	int rc = list_hosts(usage_root, &hosts, &n_hosts, err);
	if (rc)
		return rc;
	if (n_hosts)
		*results = xcalloc(n_hosts, sizeof **results);
	for (size_t h = 0; h < n_hosts; h++) {
		char db[PATH_MAX + 16];
		snprintf(db, sizeof db, "%s/usage.db", hosts[h].path);
		if (access(db, F_OK) < 0)
			continue;
		struct usage_prune_result *res = &(*results)[(*n)++];
		snprintf(res->host, sizeof res->host, "%s", hosts[h].name);
		int lock_fd = -1;
		int held = daemon_holds(hosts[h].path, &lock_fd);
		if (held == 1) {
			prune_by_daemon(hosts[h].path, before_ns, wait_ms, res);
		} else if (held < 0 || access(db, W_OK) < 0 || access(hosts[h].path, W_OK) < 0) {
			res->outcome = held == -EACCES || held == -EPERM || held == -EROFS || held == 0
				       ? USAGE_PRUNE_SKIPPED : USAGE_PRUNE_FAILED;
			snprintf(res->message, sizeof res->message, "%s: %s", hosts[h].path,
				 held < 0 && held != -EACCES ? strerror(-held) : "not writable by you");
		} else {
			/* nobody records here now; the journal lock keeps a daemon
			 * from starting to write while this prunes */
			prune_here(hosts[h].path, before_ns, res);
		}
		if (lock_fd >= 0)
			close(lock_fd);
	}
	free_hosts(hosts, n_hosts);
	return 0;
}
