/*
 * meshctl_usage.c - usage reports (`usage`, `consumers`) and the usage part
 * of `status`.  Reads every host's STORE/usage/<host>/usage.db read-only
 * (pruning is the one write), one database at a time, into a temporary
 * table of events and daily rollups, and aggregates there.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "meshctl_cmds.h"
#include "mesh_util.h"
#include "usage.h"

struct filters {
	const char *domain, *product, *version, *user, *decision, *kind;
	bool denied;
	int64_t since_ns, until_ns;
};

/* Gather events and rollups of every host into temp.ev.  Returns the
 * number of hosts read, or -1 (message printed). */
static int gather(const struct meshctl_ctx *ctx, const char *cmd, sqlite3 *db, const struct filters *f)
{
	sqlite3_exec(db, "CREATE TEMP TABLE ev(day TEXT, time TEXT, open_ns INTEGER, host TEXT, user TEXT, "
		     "program TEXT, domain TEXT, product TEXT, version TEXT, file TEXT, kind TEXT, decision TEXT, "
		     "bytes INTEGER, n INTEGER)", NULL, NULL, NULL);
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s/usage", ctx->store);
	DIR *d = opendir(dir);
	if (!d) {
		meshctl_fail(ctx, cmd, "%s: %s", dir, strerror(errno));
		return -1;
	}
	int hosts = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char path[PATH_MAX + 300], uri[PATH_MAX + 400];
		snprintf(path, sizeof path, "%s/%s/usage.db", dir, de->d_name);
		if (access(path, R_OK) < 0)
			continue;
		snprintf(uri, sizeof uri, "file:%s?mode=ro", path);
		sqlite3_stmt *st;
		sqlite3_prepare_v2(db, "ATTACH DATABASE ? AS h", -1, &st, NULL);
		sqlite3_bind_text(st, 1, uri, -1, SQLITE_TRANSIENT);
		int rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE) {
			fprintf(stderr, "meshctl %s: warning: %s: %s\n", cmd, path, sqlite3_errmsg(db));
			continue;
		}
		char *msg = NULL;
		rc = sqlite3_exec(db,
			"INSERT INTO temp.ev SELECT substr(time,1,10), time, open_ns, host, user_name, program, domain, "
			"product, version, file, kind, decision, bytes, 1 FROM h.events;"
			"INSERT INTO temp.ev SELECT day, day || 'T00:00:00.000Z', last_ns, host, user_name, program, "
			"domain, product, version, '', kind, decision, bytes, opens FROM h.rollups;", NULL, NULL, &msg);
		if (rc != SQLITE_OK)
			fprintf(stderr, "meshctl %s: warning: %s: %s\n", cmd, path, msg ? msg : "unreadable");
		sqlite3_free(msg);
		sqlite3_exec(db, "DETACH DATABASE h", NULL, NULL, NULL);
		hosts++;
	}
	closedir(d);
	/* the filters, once, on the gathered rows */
	sqlite3_stmt *st;
	sqlite3_prepare_v2(db,
		"DELETE FROM temp.ev WHERE (?1 IS NOT NULL AND domain <> ?1) OR (?2 IS NOT NULL AND product <> ?2) "
		"OR (?3 IS NOT NULL AND version <> ?3) OR (?4 IS NOT NULL AND user <> ?4) "
		"OR (?5 IS NOT NULL AND decision <> ?5) OR (?6 = 1 AND decision NOT IN ('deny','mask')) "
		"OR (?7 IS NOT NULL AND kind <> ?7)", -1, &st, NULL);
	sqlite3_bind_text(st, 1, f->domain, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, f->product, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, f->version, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, f->user, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, f->decision, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 6, f->denied);
	sqlite3_bind_text(st, 7, f->kind, -1, SQLITE_STATIC);
	sqlite3_step(st);
	sqlite3_finalize(st);
	return hosts;
}

enum fmt { FMT_TABLE, FMT_CSV, FMT_JSON };

/* Print the result of `sql` (bound with since/until ns as ?1, ?2). */
static void print_query(sqlite3 *db, const char *sql, int64_t since, int64_t until, enum fmt fmt,
			json_t *json_rows)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "meshctl usage: %s\n", sqlite3_errmsg(db));
		return;
	}
	sqlite3_bind_int64(st, 1, since);
	sqlite3_bind_int64(st, 2, until);
	int cols = sqlite3_column_count(st);
	/* rows are buffered for the aligned table */
	char ***rows = NULL;
	size_t n = 0;
	size_t *width = xcalloc((size_t)cols, sizeof *width);
	for (int c = 0; c < cols; c++)
		width[c] = strlen(sqlite3_column_name(st, c));
	while (sqlite3_step(st) == SQLITE_ROW) {
		rows = xrealloc(rows, (n + 1) * sizeof *rows);
		rows[n] = xcalloc((size_t)cols, sizeof **rows);
		json_t *o = json_rows ? json_object() : NULL;
		for (int c = 0; c < cols; c++) {
			const unsigned char *t = sqlite3_column_text(st, c);
			rows[n][c] = xstrdup(t ? (const char *)t : "");
			if (strlen(rows[n][c]) > width[c])
				width[c] = strlen(rows[n][c]);
			if (o) {
				int type = sqlite3_column_type(st, c);
				json_object_set_new(o, sqlite3_column_name(st, c),
						    type == SQLITE_INTEGER ? json_integer(sqlite3_column_int64(st, c))
						    : type == SQLITE_NULL ? json_null() : json_string(rows[n][c]));
			}
		}
		if (o)
			json_array_append_new(json_rows, o);
		n++;
	}
	if (fmt != FMT_JSON) {
		for (int c = 0; c < cols; c++) {
			if (fmt == FMT_CSV)
				printf("%s%s", c ? "," : "", sqlite3_column_name(st, c));
			else
				printf("%s%-*s", c ? "  " : "", (int)width[c], sqlite3_column_name(st, c));
		}
		printf("\n");
		for (size_t r = 0; r < n; r++) {
			for (int c = 0; c < cols; c++) {
				const char *v = rows[r][c];
				if (fmt == FMT_CSV) {
					bool quote = strpbrk(v, ",\"\n") != NULL;
					printf("%s%s", c ? "," : "", quote ? "\"" : "");
					for (const char *p = v; *p; p++)
						printf(*p == '"' ? "\"\"" : "%c", *p);
					printf("%s", quote ? "\"" : "");
				} else {
					printf("%s%-*s", c ? "  " : "", (int)width[c], v);
				}
			}
			printf("\n");
		}
	}
	for (size_t r = 0; r < n; r++) {
		for (int c = 0; c < cols; c++)
			free(rows[r][c]);
		free(rows[r]);
	}
	free(rows);
	free(width);
	sqlite3_finalize(st);
}

static int64_t parse_day_ns(const char *text, bool *ok)
{
	time_t t;
	*ok = mesh_time_parse(text, &t) == 0;
	return (int64_t)t * 1000000000;
}

static int prune(const struct meshctl_ctx *ctx, int64_t before_ns)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s/usage", ctx->store);
	DIR *d = opendir(dir);
	if (!d) {
		meshctl_fail(ctx, "usage", "%s: %s", dir, strerror(errno));
		return MESHCTL_ERROR;
	}
	struct dirent *de;
	int status = MESHCTL_OK;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char path[PATH_MAX + 300];
		snprintf(path, sizeof path, "%s/%s/usage.db", dir, de->d_name);
		if (access(path, F_OK) < 0)
			continue;
		sqlite3 *db = NULL;
		if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
			fprintf(stderr, "meshctl usage: %s: cannot write (only that host's daemon or root can prune it)\n", path);
			sqlite3_close(db);
			status = MESHCTL_DENIED;
			continue;
		}
		sqlite3_busy_timeout(db, 5000);
		struct mesh_err err = {0};
		long removed = usage_fold(db, before_ns, &err);
		if (removed < 0) {
			fprintf(stderr, "meshctl usage: %s: %s\n", path, err.msg);
			status = MESHCTL_ERROR;
		} else {
			printf("%s: %ld events folded into daily rollups\n", de->d_name, removed);
		}
		sqlite3_close(db);
	}
	closedir(d);
	return status;
}

int meshctl_cmd_usage(const struct meshctl_ctx *ctx, int argc, char **argv)
{
	static const struct option longopts[] = {
		{"domain", required_argument, NULL, 'd'}, {"version", required_argument, NULL, 'v'},
		{"user", required_argument, NULL, 'u'}, {"decision", required_argument, NULL, 'D'},
		{"denied", no_argument, NULL, 'x'}, {"since", required_argument, NULL, 's'},
		{"until", required_argument, NULL, 'U'}, {"by", required_argument, NULL, 'b'},
		{"format", required_argument, NULL, 'f'}, {"json", no_argument, NULL, 'j'},
		{"discovery", no_argument, NULL, 'i'}, {"prune-before", required_argument, NULL, 'p'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	struct filters f = {.kind = "data"};
	const char *by = "product", *since = NULL, *until = NULL, *prune_before = NULL;
	enum fmt fmt = ctx->json ? FMT_JSON : FMT_TABLE;
	optind = 0;
	int c;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': f.domain = optarg; break;
		case 'v': f.version = optarg; break;
		case 'u': f.user = optarg; break;
		case 'D': f.decision = optarg; break;
		case 'x': f.denied = true; break;
		case 's': since = optarg; break;
		case 'U': until = optarg; break;
		case 'b': by = optarg; break;
		case 'i': f.kind = "discovery"; break;
		case 'p': prune_before = optarg; break;
		case 'j': fmt = FMT_JSON; break;
		case 'f':
			fmt = !strcmp(optarg, "csv") ? FMT_CSV : !strcmp(optarg, "json") ? FMT_JSON : FMT_TABLE;
			if (strcmp(optarg, "csv") && strcmp(optarg, "json") && strcmp(optarg, "table")) {
				meshctl_fail(ctx, "usage", "--format %s: expected table, csv or json", optarg);
				return MESHCTL_USAGE;
			}
			break;
		default:
			printf("usage: meshctl usage [DOMAIN/PRODUCT] [--domain D] [--version V] [--user U]\n"
			       "         [--decision allow|mask|deny] [--denied] [--discovery] [--since DATE] [--until DATE]\n"
			       "         [--by product|version|consumer|host|program|day] [--format table|csv|json] [--json]\n"
			       "       meshctl usage --prune-before DATE\n"
			       "Opens of data files through the mount on every host (default: the last 30 days,\n"
			       "by product).  Opens are exact; bytes are those the daemon served (page-cache hits\n"
			       "and kernel passthrough reads do not reach it).\n");
			return c == 'h' ? MESHCTL_OK : MESHCTL_USAGE;
		}
	}
	char domain[128], product[128];
	if (optind < argc) {
		const char *ref = argv[optind++];
		const char *slash = strchr(ref, '/');
		if (!slash || optind < argc) {
			meshctl_fail(ctx, "usage", "%s: expected DOMAIN/PRODUCT", ref);
			return MESHCTL_USAGE;
		}
		snprintf(domain, sizeof domain, "%.*s", (int)(slash - ref), ref);
		snprintf(product, sizeof product, "%s", slash + 1);
		f.domain = domain;
		f.product = product;
	}
	bool ok = true;
	int64_t now = (int64_t)time(NULL) * 1000000000;
	f.until_ns = until ? parse_day_ns(until, &ok) : now + 86400LL * 1000000000;
	if (ok)
		f.since_ns = since ? parse_day_ns(since, &ok) : now - 30LL * 86400 * 1000000000;
	if (!ok) {
		meshctl_fail(ctx, "usage", "--since/--until: expected YYYY-MM-DD or an RFC 3339 time");
		return MESHCTL_USAGE;
	}
	if (prune_before) {
		int64_t cut = parse_day_ns(prune_before, &ok);
		if (!ok) {
			meshctl_fail(ctx, "usage", "--prune-before %s: expected YYYY-MM-DD", prune_before);
			return MESHCTL_USAGE;
		}
		return prune(ctx, cut);
	}
	static const struct { const char *by, *sql; } groups[] = {
		{"product", "SELECT domain || '/' || product AS product, count(DISTINCT user) AS consumers, sum(n) AS reads, "
			    "sum(bytes) AS bytes, max(time) AS last_read FROM ev WHERE open_ns >= ?1 AND open_ns < ?2 "
			    "GROUP BY 1 ORDER BY consumers DESC, reads DESC"},
		{"version", "SELECT domain || '/' || product AS product, version, count(DISTINCT user) AS consumers, "
			    "sum(n) AS reads, sum(bytes) AS bytes, max(time) AS last_read FROM ev WHERE open_ns >= ?1 "
			    "AND open_ns < ?2 GROUP BY 1, 2 ORDER BY reads DESC"},
		{"consumer", "SELECT user, host, program, max(time) AS last_read, sum(n) AS reads, sum(bytes) AS bytes "
			     "FROM ev WHERE open_ns >= ?1 AND open_ns < ?2 GROUP BY 1, 2, 3 ORDER BY reads DESC"},
		{"host", "SELECT host, count(DISTINCT user) AS consumers, sum(n) AS reads, sum(bytes) AS bytes FROM ev "
			 "WHERE open_ns >= ?1 AND open_ns < ?2 GROUP BY 1 ORDER BY reads DESC"},
		{"program", "SELECT program, count(DISTINCT user) AS consumers, sum(n) AS reads, sum(bytes) AS bytes FROM ev "
			    "WHERE open_ns >= ?1 AND open_ns < ?2 GROUP BY 1 ORDER BY reads DESC"},
		{"day", "SELECT day, count(DISTINCT user) AS consumers, sum(n) AS reads, sum(bytes) AS bytes FROM ev "
			"WHERE open_ns >= ?1 AND open_ns < ?2 GROUP BY 1 ORDER BY 1"},
	};
	const char *sql = NULL;
	if (f.denied)
		sql = "SELECT time, user, host, program, domain || '/' || product || '@' || version || '/' || file AS "
		      "resource, decision FROM ev WHERE open_ns >= ?1 AND open_ns < ?2 ORDER BY open_ns";
	for (size_t i = 0; !sql && i < sizeof groups / sizeof *groups; i++)
		if (!strcmp(by, groups[i].by))
			sql = groups[i].sql;
	if (!sql) {
		meshctl_fail(ctx, "usage", "--by %s: expected product, version, consumer, host, program or day", by);
		return MESHCTL_USAGE;
	}
	sqlite3 *db = NULL;
	sqlite3_open(":memory:", &db);
	int hosts = gather(ctx, "usage", db, &f);
	if (hosts < 0) {
		sqlite3_close(db);
		return MESHCTL_ERROR;
	}
	json_t *rows = fmt == FMT_JSON ? json_array() : NULL;
	print_query(db, sql, f.since_ns, f.until_ns, fmt, rows);
	/* the adoption summary, against the previous period of equal length */
	sqlite3_stmt *st;
	sqlite3_prepare_v2(db, "SELECT count(DISTINCT user), coalesce(sum(n),0), coalesce(sum(bytes),0), "
			   "(SELECT coalesce(sum(n),0) FROM ev WHERE open_ns >= ?1 - (?2 - ?1) AND open_ns < ?1) "
			   "FROM ev WHERE open_ns >= ?1 AND open_ns < ?2", -1, &st, NULL);
	sqlite3_bind_int64(st, 1, f.since_ns);
	sqlite3_bind_int64(st, 2, f.until_ns);
	sqlite3_step(st);
	int64_t consumers = sqlite3_column_int64(st, 0), reads = sqlite3_column_int64(st, 1),
		bytes = sqlite3_column_int64(st, 2), previous = sqlite3_column_int64(st, 3);
	sqlite3_finalize(st);
	if (fmt == FMT_JSON) {
		json_t *o = json_object();
		json_object_set_new(o, "by", json_string(f.denied ? "event" : by));
		json_object_set_new(o, "hosts", json_integer(hosts));
		json_object_set_new(o, "rows", rows);
		json_t *sum = json_object();
		json_object_set_new(sum, "consumers", json_integer(consumers));
		json_object_set_new(sum, "reads", json_integer(reads));
		json_object_set_new(sum, "bytes", json_integer(bytes));
		json_object_set_new(sum, "previous_period_reads", json_integer(previous));
		json_object_set_new(o, "summary", sum);
		char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		puts(text);
		free(text);
		json_decref(o);
	} else if (fmt == FMT_TABLE) {
		printf("\n%lld consumer(s), %lld read(s), %lld byte(s) served on %d host(s); previous period: %lld "
		       "read(s)%s\n", (long long)consumers, (long long)reads, (long long)bytes, hosts, (long long)previous,
		       previous ? (reads > previous ? " (up)" : reads < previous ? " (down)" : " (flat)") : "");
	}
	sqlite3_close(db);
	return MESHCTL_OK;
}

int meshctl_cmd_consumers(const struct meshctl_ctx *ctx, int argc, char **argv)
{
	if (argc < 3 || !strchr(argv[1], '/')) {
		printf("usage: meshctl consumers DOMAIN/PRODUCT VERSION [--since DATE] [--json]\n"
		       "Who read that version (user, host, last read, reads): whom to tell before retiring it.\n");
		return argc == 2 && !strcmp(argv[1], "--help") ? MESHCTL_OK : MESHCTL_USAGE;
	}
	char domain[128], product[128];
	const char *slash = strchr(argv[1], '/');
	snprintf(domain, sizeof domain, "%.*s", (int)(slash - argv[1]), argv[1]);
	snprintf(product, sizeof product, "%s", slash + 1);
	struct filters f = {.domain = domain, .product = product, .version = argv[2], .kind = "data"};
	bool ok = true, json = ctx->json;
	f.until_ns = (int64_t)(time(NULL) + 86400) * 1000000000;
	f.since_ns = 0;
	for (int i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "--since") && i + 1 < argc)
			f.since_ns = parse_day_ns(argv[++i], &ok);
		else if (!strcmp(argv[i], "--json"))
			json = true;
		else
			ok = false;
	}
	if (!ok) {
		meshctl_fail(ctx, "consumers", "usage: meshctl consumers DOMAIN/PRODUCT VERSION [--since DATE]");
		return MESHCTL_USAGE;
	}
	sqlite3 *db = NULL;
	sqlite3_open(":memory:", &db);
	if (gather(ctx, "consumers", db, &f) < 0) {
		sqlite3_close(db);
		return MESHCTL_ERROR;
	}
	json_t *rows = json ? json_array() : NULL;
	print_query(db, "SELECT user, host, max(time) AS last_read, sum(n) AS reads FROM ev WHERE decision <> 'deny' "
		    "AND open_ns >= ?1 AND open_ns < ?2 GROUP BY 1, 2 ORDER BY last_read DESC", f.since_ns, f.until_ns,
		    json ? FMT_JSON : FMT_TABLE, rows);
	if (json) {
		json_t *o = json_object();
		json_object_set_new(o, "rows", rows);
		char *text = json_dumps(o, JSON_INDENT(2));
		puts(text);
		free(text);
		json_decref(o);
	}
	sqlite3_close(db);
	return MESHCTL_OK;
}

int meshctl_usage_status(const struct meshctl_ctx *ctx, FILE *out)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s/usage", ctx->store);
	DIR *d = opendir(dir);
	if (!d)
		return MESHCTL_OK;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char path[PATH_MAX + 300];
		snprintf(path, sizeof path, "%s/%s/state", dir, de->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		char line[512], key[64], value[400];
		fprintf(out, "usage on host %s:\n", de->d_name);
		while (fgets(line, sizeof line, f)) {
			value[0] = '\0';
			if (sscanf(line, "%63s %399[^\n]", key, value) < 1 || !strcmp(key, "host"))
				continue;
			size_t n = strlen(value);
			while (n && value[n - 1] == ' ')
				value[--n] = '\0';
			fprintf(out, "  %-12s %s\n", key, value);
		}
		fclose(f);
	}
	closedir(d);
	return MESHCTL_OK;
}
