/*
 * sqlrule.c - ODCS `type: sql` quality rules in embedded SQLite (contract
 * in include/sqlrule.h).  Loading reads the file once more (after the
 * streaming validation), so the cap bounds both memory and time.
 */
#include "sqlrule.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "csv.h"
#include "mesh_util.h"
#include "parquet.h"

struct sqlrule_session {
	const struct contract_object *obj;
	int dirfd;
	char *file;
	uint64_t max_bytes;
	bool tried;                 /* load attempted */
	sqlite3 *db;                /* NULL: not loaded (why in `problem`) */
	char problem[MESH_ERR_MAX];
	int64_t heap_before;
	bool heap_set;
	struct timespec deadline;
};

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && !strcasecmp(s + n - m, suffix);
}

struct sqlrule_session *sqlrule_session_new(const struct contract_object *obj, int dirfd, const char *file,
					    uint64_t max_bytes)
{
	struct sqlrule_session *s = xcalloc(1, sizeof *s);
	s->obj = obj;
	s->dirfd = dirfd;
	s->file = xstrdup(file);
	s->max_bytes = max_bytes;
	return s;
}

void sqlrule_session_free(struct sqlrule_session *s)
{
	if (!s)
		return;
	sqlite3_close(s->db);
	if (s->heap_set)
		sqlite3_hard_heap_limit64(s->heap_before);
	free(s->file);
	free(s);
}

/* "name" with embedded quotes doubled: an SQL identifier. */
static void quote_ident(struct strbuf *sb, const char *name)
{
	strbuf_puts(sb, "\"");
	for (const char *p = name; *p; p++) {
		strbuf_add(sb, p, 1);
		if (*p == '"')
			strbuf_add(sb, "\"", 1);
	}
	strbuf_puts(sb, "\"");
}

static const char *affinity(enum logical_type t)
{
	return t == LT_INTEGER ? "INTEGER" : t == LT_NUMBER ? "REAL" : "TEXT";
}

/* Once data is in: only reading queries. */
static int authorize(void *ctx, int action, const char *a, const char *b, const char *c, const char *d)
{
	(void)ctx, (void)a, (void)b, (void)c, (void)d;
	return action == SQLITE_SELECT || action == SQLITE_READ || action == SQLITE_FUNCTION ||
	       action == SQLITE_RECURSIVE ? SQLITE_OK : SQLITE_DENY;
}

static int stop_late(void *ctx)
{
	const struct timespec *deadline = ctx;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > deadline->tv_sec ||
	       (now.tv_sec == deadline->tv_sec && now.tv_nsec > deadline->tv_nsec);
}

static int insert_row(struct sqlrule_session *s, sqlite3_stmt *ins, const char *const *v, const size_t *n,
		      const int *map, size_t n_props)
{
	for (size_t k = 0; k < n_props; k++) {
		if (map[k] < 0 || !v[map[k]] || n[map[k]] == 0)
			sqlite3_bind_null(ins, (int)k + 1);
		else
			sqlite3_bind_text(ins, (int)k + 1, v[map[k]], (int)n[map[k]], SQLITE_TRANSIENT);
	}
	int rc = sqlite3_step(ins);
	sqlite3_reset(ins);
	if (rc != SQLITE_DONE) {
		snprintf(s->problem, sizeof s->problem, "loading %s into SQLite: %s", s->file, sqlite3_errmsg(s->db));
		return -EIO;
	}
	return 0;
}

static int load_csv(struct sqlrule_session *s, int fd, sqlite3_stmt *ins)
{
	const struct contract_object *obj = s->obj;
	struct csv_reader *rd = csv_reader_fd(fd, s->file, 0);
	struct csv_record rec;
	struct mesh_err err = {0};
	int rc = csv_next(rd, &rec, &err);
	int *map = xcalloc(obj->n_props + 1, sizeof *map);
	size_t cap = 0;
	const char **v = NULL;
	size_t *n = NULL;
	if (rc == 1) {
		for (size_t k = 0; k < obj->n_props; k++) {
			map[k] = -1;
			for (size_t i = 0; i < rec.n; i++)
				if (strlen(obj->props[k].name) == rec.fields[i].len &&
				    !memcmp(obj->props[k].name, rec.fields[i].ptr, rec.fields[i].len))
					map[k] = (int)i;
		}
		while ((rc = csv_next(rd, &rec, &err)) == 1) {
			if (rec.n > cap) {
				cap = rec.n;
				v = xrealloc(v, cap * sizeof *v);
				n = xrealloc(n, cap * sizeof *n);
			}
			for (size_t i = 0; i < rec.n; i++)
				v[i] = rec.fields[i].ptr, n[i] = rec.fields[i].len;
			for (size_t k = 0; k < obj->n_props; k++)
				if (map[k] >= (int)rec.n)
					map[k] = -1;
			if ((rc = insert_row(s, ins, v, n, map, obj->n_props)))
				break;
		}
	}
	if (rc < 0 && !*s->problem)
		snprintf(s->problem, sizeof s->problem, "%s", err.msg);
	free(v);
	free(n);
	free(map);
	csv_reader_free(rd);
	return rc < 0 ? rc : 0;
}

static int load_parquet(struct sqlrule_session *s, int fd, sqlite3_stmt *ins)
{
	const struct contract_object *obj = s->obj;
	struct parquet_file *pf = NULL;
	struct mesh_err err = {0};
	if (parquet_open(fd, s->file, &pf, &err)) {
		snprintf(s->problem, sizeof s->problem, "%s", err.msg);
		return -EINVAL;
	}
	size_t nc = parquet_num_columns(pf);
	int *map = xcalloc(obj->n_props + 1, sizeof *map);
	struct parquet_cursor **cur = xcalloc(nc + 1, sizeof *cur);
	const char **v = xcalloc(nc + 1, sizeof *v);
	size_t *n = xcalloc(nc + 1, sizeof *n);
	int rc = 0;
	for (size_t k = 0; k < obj->n_props && !rc; k++) {
		map[k] = -1;
		for (size_t i = 0; i < nc; i++)
			if (!strcmp(parquet_column_at(pf, i)->name, obj->props[k].name))
				map[k] = (int)i;
		if (map[k] >= 0 && !cur[map[k]] && parquet_cursor_open(pf, (size_t)map[k], &cur[map[k]], &err)) {
			snprintf(s->problem, sizeof s->problem, "%s", err.msg);
			rc = -ENOTSUP;
		}
	}
	int64_t rows = parquet_num_rows(pf);
	for (int64_t row = 0; !rc && row < rows; row++) {
		for (size_t i = 0; i < nc && !rc; i++) {
			if (!cur[i])
				continue;
			bool is_null;
			int got = parquet_cursor_next(cur[i], &v[i], &n[i], &is_null, &err);
			if (got <= 0) {
				snprintf(s->problem, sizeof s->problem, "%s", got < 0 ? err.msg : "a column ends early");
				rc = -EINVAL;
			} else if (is_null) {
				v[i] = NULL, n[i] = 0;
			}
		}
		if (!rc)
			rc = insert_row(s, ins, v, n, map, obj->n_props);
	}
	for (size_t i = 0; i < nc; i++)
		parquet_cursor_free(cur[i]);
	free(cur);
	free(v);
	free(n);
	free(map);
	parquet_close(pf);
	return rc;
}

static void load(struct sqlrule_session *s)
{
	s->tried = true;
	bool csv = has_suffix(s->file, ".csv"), parquet = has_suffix(s->file, ".parquet");
	if (!s->max_bytes) {
		snprintf(s->problem, sizeof s->problem, "SQL rules are turned off (--sql-max-mib 0)");
		return;
	}
	if (!csv && !parquet) {
		snprintf(s->problem, sizeof s->problem, "SQL rules run on CSV and Parquet files");
		return;
	}
	struct stat st;
	int fd = mesh_open_regular_at(s->dirfd, s->file, O_RDONLY, 0, &st);
	if (fd < 0) {
		snprintf(s->problem, sizeof s->problem, "%s: %s", s->file, mesh_open_strerror(fd));
		return;
	}
	if ((uint64_t)st.st_size > s->max_bytes) {
		snprintf(s->problem, sizeof s->problem, "%s is %.1f MiB, more than the %.1f MiB SQL rules load "
			 "(--sql-max-mib)", s->file, (double)st.st_size / 1048576.0, (double)s->max_bytes / 1048576.0);
		close(fd);
		return;
	}
	/* the heap may hold the file a few times over, never unbounded */
	int64_t limit = (int64_t)s->max_bytes * 8 + (64 << 20);
	s->heap_before = sqlite3_hard_heap_limit64(limit);
	s->heap_set = true;
	sqlite3 *db = NULL;
	if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_MEMORY |
			    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		snprintf(s->problem, sizeof s->problem, "cannot open SQLite in memory");
		sqlite3_close(db);
		close(fd);
		return;
	}
	sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, NULL);
	sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_TRIGGER, 0, NULL);
	sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_VIEW, 0, NULL);
	sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, 0);
	sqlite3_limit(db, SQLITE_LIMIT_SQL_LENGTH, 100000);
	sqlite3_limit(db, SQLITE_LIMIT_LENGTH, 16 << 20);
	struct strbuf sql = STRBUF_INIT, ins = STRBUF_INIT;
	strbuf_puts(&sql, "CREATE TABLE ");
	quote_ident(&sql, s->obj->name);
	strbuf_puts(&sql, " (");
	strbuf_puts(&ins, "INSERT INTO ");
	quote_ident(&ins, s->obj->name);
	strbuf_puts(&ins, " VALUES (");
	for (size_t k = 0; k < s->obj->n_props; k++) {
		strbuf_puts(&sql, k ? ", " : "");
		quote_ident(&sql, s->obj->props[k].name);
		strbuf_printf(&sql, " %s", affinity(s->obj->props[k].type));
		strbuf_printf(&ins, "%s?", k ? ", " : "");
	}
	strbuf_puts(&sql, s->obj->n_props ? ")" : "_ TEXT)");
	strbuf_puts(&ins, ")");
	sqlite3_stmt *stmt = NULL;
	int rc = sqlite3_exec(db, sql.buf, NULL, NULL, NULL) != SQLITE_OK ||
		 sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
		 (s->obj->n_props && sqlite3_prepare_v2(db, ins.buf, -1, &stmt, NULL) != SQLITE_OK) ? -EIO : 0;
	if (rc)
		snprintf(s->problem, sizeof s->problem, "cannot create the SQLite table: %s", sqlite3_errmsg(db));
	s->db = db;
	if (!rc && stmt)
		rc = csv ? load_csv(s, fd, stmt) : load_parquet(s, fd, stmt);
	sqlite3_finalize(stmt);
	if (!rc && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(s->problem, sizeof s->problem, "loading %s into SQLite: %s", s->file, sqlite3_errmsg(db));
		rc = -EIO;
	}
	strbuf_release(&sql);
	strbuf_release(&ins);
	close(fd);
	if (rc) {
		sqlite3_close(db);
		s->db = NULL;
		return;
	}
	sqlite3_set_authorizer(db, authorize, NULL);
	sqlite3_progress_handler(db, 10000, stop_late, &s->deadline);
}

/* The query with its placeholders replaced by quoted identifiers. */
static char *expand(const struct sqlrule_session *s, const struct quality_rule *q)
{
	struct strbuf sb = STRBUF_INIT;
	static const char *const holders[] = {"${object}", "{object}", "${table}", "{table}",
					      "${column}", "{column}", "${property}", "{property}"};
	for (const char *p = q->query; *p;) {
		size_t i = 0;
		for (; i < sizeof holders / sizeof *holders; i++)
			if (!strncmp(p, holders[i], strlen(holders[i])))
				break;
		if (i == sizeof holders / sizeof *holders || (i >= 4 && !q->column)) {
			strbuf_add(&sb, p, 1);
			p++;
			continue;
		}
		quote_ident(&sb, i < 4 ? s->obj->name : q->column);
		p += strlen(holders[i]);
	}
	strbuf_puts(&sb, "");
	return strbuf_detach(&sb, NULL);
}

static void not_checked(struct validate_rule_result *res, const char *why)
{
	char note[MESH_ERR_MAX + 64];
	snprintf(note, sizeof note, "sql rule not run: %s", why);
	free(res->note);
	res->note = xstrdup(note);
	res->checked = false;
	res->passed = true;
}

void sqlrule_judge(struct sqlrule_session *s, const struct quality_rule *q, struct validate_rule_result *res)
{
	if (!s->tried)
		load(s);
	if (!s->db) {
		not_checked(res, s->problem);
		return;
	}
	char *sql = expand(s, q);
	sqlite3_stmt *st = NULL;
	const char *tail = NULL;
	clock_gettime(CLOCK_MONOTONIC, &s->deadline);
	s->deadline.tv_sec += SQLRULE_MAX_SECONDS;
	int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, &tail);
	while (rc == SQLITE_OK && tail && (*tail == ' ' || *tail == '\n' || *tail == '\t' || *tail == ';' ||
					   *tail == '\r'))
		tail++;
	char why[600] = "";
	if (rc != SQLITE_OK)
		snprintf(why, sizeof why, "SQLite cannot run it: %s", sqlite3_errmsg(s->db));
	else if (!st)
		snprintf(why, sizeof why, "the query is empty");
	else if (tail && *tail)
		snprintf(why, sizeof why, "one statement only");
	else if (!sqlite3_stmt_readonly(st))
		snprintf(why, sizeof why, "a quality query only reads");
	double value = 0;
	if (!*why) {
		rc = sqlite3_step(st);
		int type = rc == SQLITE_ROW ? sqlite3_column_type(st, 0) : SQLITE_NULL;
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			snprintf(why, sizeof why, "SQLite stopped: %s%s", sqlite3_errmsg(s->db),
				 rc == SQLITE_INTERRUPT ? " (longer than the time allowed)" : "");
		else if (type != SQLITE_INTEGER && type != SQLITE_FLOAT)
			snprintf(why, sizeof why, "the query's first value is not a number");
		else
			value = sqlite3_column_double(st, 0);
	}
	sqlite3_finalize(st);
	free(sql);
	if (*why) {
		not_checked(res, why);
		return;
	}
	res->checked = true;
	bool ok = (!q->has_metric_min || value >= q->metric_min) && (!q->has_metric_max || value <= q->metric_max);
	char note[200];
	snprintf(note, sizeof note, "query returned %.15g", value);
	free(res->note);
	res->note = xstrdup(note);
	if (ok)
		return;
	res->passed = false;
	res->failures = 1;
	if (res->n_examples < VALIDATE_MAX_EXAMPLES) {
		char msg[300], lo[40] = "", hi[40] = "";
		if (q->has_metric_min)
			snprintf(lo, sizeof lo, "at least %.15g", q->metric_min);
		if (q->has_metric_max)
			snprintf(hi, sizeof hi, "%sat most %.15g", q->has_metric_min ? " and " : "", q->metric_max);
		snprintf(msg, sizeof msg, "the query returned %.15g, the rule wants %s%s", value, lo, hi);
		struct validate_failure *f = &res->examples[res->n_examples++];
		memset(f, 0, sizeof *f);
		f->column = q->column ? xstrdup(q->column) : NULL;
		f->message = xstrdup(msg);
	}
}
