/* Unit tests for usage (recording: journal, writer, replay, faults) and
 * usage_report (reports, formats, pruning, status).  No FUSE: the tests
 * play the daemon.  Set USAGE_BENCH=1 for the longer measurements. */
#include "check.h"
#include "usage.h"
#include "usage_report.h"
#include "mesh_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NS ((int64_t)1000000000)
#define DAY (86400 * NS)

static char root[256];      /* a scratch directory for the whole run */

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
	usleep((useconds_t)ms * 1000);
}

static char *path_of(const char *fmt, const char *a)
{
	static char buf[16][512];
	static int next;
	char *p = buf[next++ % 16];
	snprintf(p, 512, "%s/", root);
	snprintf(p + strlen(p), 512 - strlen(p), fmt, a);
	return p;
}

/* One integer from a query on a database file (-1 on error). */
static int64_t sql_int(const char *db_path, const char *sql)
{
	sqlite3 *db;
	int64_t v = -1;
	if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
		sqlite3_stmt *st;
		if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
			if (sqlite3_step(st) == SQLITE_ROW)
				v = sqlite3_column_int64(st, 0);
			sqlite3_finalize(st);
		}
	}
	sqlite3_close(db);
	return v;
}

static struct usage_open_info event(const char *user, const char *program, const char *domain, const char *product,
				    const char *version, const char *file, enum usage_kind kind,
				    enum usage_decision decision, int64_t at)
{
	struct usage_open_info in = {.time_ns = at, .uid = 1000, .pid = 42, .user = user, .program = program,
				     .domain = domain, .product = product, .version = version, .file = file,
				     .kind = kind, .decision = decision};
	return in;
}

static struct usage *open_host(const char *host, const struct usage_config *base)
{
	struct usage_config cfg = base ? *base : (struct usage_config){0};
	cfg.hostname = host;
	struct usage *u = NULL;
	struct mesh_err err = {0};
	int rc = usage_open(path_of("usage/%s", host), &cfg, &u, &err);
	if (rc)
		fprintf(stderr, "usage_open %s: %s\n", host, err.msg);
	CHECK(rc == 0 && u);
	return u;
}

static bool wait_drained(struct usage *u, double seconds)
{
	double until = mono() + seconds;
	struct usage_stats s;
	do {
		usage_stats(u, &s);
		if (s.backlog == 0 && s.in_use == 0)
			return true;
		sleep_ms(20);
	} while (mono() < until);
	return false;
}

static void record(struct usage *u, struct usage_open_info in, uint64_t bytes, uint64_t reads, int times)
{
	for (int i = 0; i < times; i++) {
		uint64_t h;
		CHECK(usage_begin(u, &in, &h) == 0);
		usage_end(u, h, bytes, reads, 1000);
		if (in.time_ns)
			in.time_ns += 1000;
	}
}

/* ---- recording ---- */

static void test_round_trip(void)
{
	struct usage_config cfg = {.metrics_path = path_of("%s", "rt.prom"), .metrics_interval_ms = 100};
	struct usage *u = open_host("rt", &cfg);
	struct usage_open_info in = event("alice", "cat", "sales", "orders", "1.0.0", "orders.csv", USAGE_DATA,
					  USAGE_MASK, 0);
	in.uid = 1001;
	in.pid = 4242;
	int64_t before = now_ns();
	uint64_t h, h2;
	CHECK(usage_begin(u, &in, &h) == 0 && h != 0);
	usage_end(u, h, 12345, 7, 5000000);
	usage_end(u, h, 1, 1, 1);                  /* a second end is ignored */
	usage_end(u, 0, 1, 1, 1);                  /* as is a lost event's handle */
	in = event("dave", "python3", "sales", "orders", "1.0.0", "orders.csv", USAGE_DATA, USAGE_DENY, 0);
	CHECK(usage_begin(u, &in, &h2) == 0);
	usage_end(u, h2, 0, 0, 0);
	in = event("carol", "less", "sales", "orders", "1.0.0", "contract.yaml", USAGE_DISCOVERY, USAGE_ALLOW, 0);
	CHECK(usage_begin(u, &in, &h2) == 0);
	usage_end(u, h2, 300, 1, 0);
	CHECK(wait_drained(u, 2));
	struct usage_stats s;
	usage_stats(u, &s);
	CHECK(s.committed == 3 && s.opens_mask == 1 && s.opens_deny == 1 && s.opens_discovery == 1);
	CHECK(s.bytes == 12345 + 300 && s.batches >= 1 && s.last_commit_ns >= before);
	CHECK(s.capacity == USAGE_DEFAULT_SLOTS && s.wal && s.last_error[0] == '\0');
	sleep_ms(250);                             /* a state and metrics update */
	CHECK(usage_close(u) == 0);

	const char *db = path_of("usage/%s/usage.db", "rt");
	CHECK(sql_int(db, "SELECT count(*) FROM events") == 3);
	CHECK(sql_int(db, "SELECT count(*) FROM events WHERE user_name = 'alice' AND uid = 1001 AND pid = 4242"
			  " AND program = 'cat' AND domain = 'sales' AND product = 'orders' AND version = '1.0.0'"
			  " AND file = 'orders.csv' AND kind = 'data' AND decision = 'mask' AND bytes = 12345"
			  " AND read_calls = 7 AND duration_ns = 5000000 AND complete = 1 AND host = 'rt'") == 1);
	CHECK(sql_int(db, "SELECT count(*) FROM events WHERE decision = 'deny' AND complete = 1 AND bytes = 0") == 1);
	CHECK(sql_int(db, "SELECT count(*) FROM events WHERE kind = 'discovery' AND file = 'contract.yaml'") == 1);
	/* the time column is RFC 3339 UTC with milliseconds, and agrees with open_ns */
	CHECK(sql_int(db, "SELECT count(*) FROM events WHERE time GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T"
			  "[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z' AND"
			  " abs(strftime('%s', substr(time, 1, 19)) - open_ns / 1000000000) <= 1") == 3);
	CHECK(sql_int(db, "SELECT count(*) FROM events WHERE time = strftime('%Y-%m-%dT%H:%M:%S', open_ns / 1000000000,"
			  " 'unixepoch') || printf('.%03dZ', open_ns / 1000000 % 1000)") == 3);
	/* ids: unique, and at least the open time in microseconds */
	CHECK(sql_int(db, "SELECT count(*) FROM events WHERE event_id >= open_ns / 1000") == 3);
	CHECK(sql_int(db, "SELECT count(*) FROM pragma_journal_mode WHERE journal_mode = 'wal'") == 1);
	CHECK(sql_int(db, "PRAGMA user_version") == USAGE_DB_LAYOUT);
	CHECK(sql_int(db, "SELECT value FROM meta WHERE key = 'lost_events'") == 0);

	/* the metrics file (Prometheus text) */
	char *prom = NULL;
	size_t len;
	CHECK(mesh_read_file_at(AT_FDCWD, path_of("%s", "rt.prom"), 1 << 20, &prom, &len, NULL) == 0);
	CHECK_CONTAINS(prom, "# TYPE meshfs_opens_total counter\n");
	CHECK_CONTAINS(prom, "meshfs_opens_total{host=\"rt\",decision=\"mask\"} 1\n");
	CHECK_CONTAINS(prom, "meshfs_opens_total{host=\"rt\",decision=\"deny\"} 1\n");
	CHECK_CONTAINS(prom, "meshfs_read_bytes_total{host=\"rt\"} 12645\n");
	CHECK_CONTAINS(prom, "meshfs_usage_journal_backlog{host=\"rt\"} 0\n");
	CHECK_CONTAINS(prom, "meshfs_usage_lost_total{host=\"rt\"} 0\n");
	free(prom);
	CHECK(access(path_of("%s", "rt.prom.tmp"), F_OK) < 0);
}

static void test_truncation(void)
{
	struct usage *u = open_host("trunc", NULL);
	char user[200], file[600];
	memset(user, 'u', sizeof user - 1);
	user[sizeof user - 1] = '\0';
	/* "é" is 2 bytes: a cut anywhere must not split one */
	for (size_t i = 0; i + 2 < sizeof file; i += 2)
		memcpy(file + i, "\xc3\xa9", 2);
	file[sizeof file - 2] = '\0';
	struct usage_open_info in = event(user, "averyveryverylongprogramname", "d", "p", "1.0.0", file, USAGE_DATA,
					  USAGE_ALLOW, 0);
	record(u, in, 1, 1, 1);
	in = event(NULL, NULL, NULL, NULL, NULL, NULL, USAGE_DATA, USAGE_ALLOW, 0);
	record(u, in, 1, 1, 1);
	CHECK(usage_close(u) == 0);
	const char *db = path_of("usage/%s/usage.db", "trunc");
	CHECK(sql_int(db, "SELECT length(user_name) FROM events WHERE user_name <> ''") == 64);
	CHECK(sql_int(db, "SELECT length(program) FROM events WHERE user_name <> ''") == 16);
	int64_t flen = sql_int(db, "SELECT length(CAST(file AS BLOB)) FROM events WHERE user_name <> ''");
	CHECK(flen > 100 && flen % 2 == 0);        /* whole characters only */
	CHECK(sql_int(db, "SELECT count(*) FROM events WHERE user_name = '' AND program = '?' AND file = ''") == 1);
}

struct storm {
	struct usage *u;
	int thread, events;
	atomic_int refused;
};

static void *storm_main(void *arg)
{
	struct storm *st = arg;
	char user[16];
	snprintf(user, sizeof user, "user%d", st->thread);
	struct usage_open_info in = event(user, "storm", "sales", "orders", "1.0.0", "orders.csv", USAGE_DATA,
					  USAGE_ALLOW, 0);
	for (int i = 0; i < st->events; i++) {
		uint64_t h;
		while (usage_begin(st->u, &in, &h) == -EIO) {
			atomic_fetch_add(&st->refused, 1);   /* a tiny journal: wait for the writer */
			sched_yield();
		}
		usage_end(st->u, h, (uint64_t)i, 1, 0);
	}
	return NULL;
}

/* 8 threads x 1000 opens: exactly 8000 rows; with a journal of 64 slots the
 * slots are reused thousands of times while the writer frees them. */
static void test_threads(const char *host, size_t slots)
{
	struct usage_config cfg = {.slots = slots, .flush_interval_ms = 5};
	struct usage *u = open_host(host, &cfg);
	pthread_t t[8];
	struct storm st[8];
	for (int i = 0; i < 8; i++) {
		st[i] = (struct storm){.u = u, .thread = i, .events = 1000};
		pthread_create(&t[i], NULL, storm_main, &st[i]);
	}
	int refused = 0;
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		refused += atomic_load(&st[i].refused);
	}
	struct usage_stats s;
	usage_stats(u, &s);
	CHECK(s.refused == (uint64_t)refused);
	CHECK(usage_close(u) == 0);
	const char *db = path_of("usage/%s/usage.db", host);
	CHECK(sql_int(db, "SELECT count(*) FROM events") == 8000);
	CHECK(sql_int(db, "SELECT count(DISTINCT event_id) FROM events") == 8000);
	CHECK(sql_int(db, "SELECT count(*) FROM events WHERE complete = 1 AND read_calls = 1") == 8000);
	CHECK(sql_int(db, "SELECT count(DISTINCT user_name) FROM events") == 8);
	CHECK(sql_int(db, "SELECT sum(bytes) FROM events") == 8 * (999 * 1000 / 2));
	if (slots && slots < 1000)
		printf("  %zu-slot journal: %d begins waited for a free slot\n", slots, refused);
}

static void copy_file(const char *from, const char *to)
{
	char cmd[1200];
	snprintf(cmd, sizeof cmd, "cp '%s' '%s'", from, to);
	CHECK(system(cmd) == 0);
}

/* A daemon killed (SIGKILL) while recording: after the next start every
 * begun event is in SQLite exactly once, those it never ended incomplete;
 * replaying the same journal again changes nothing. */
static void test_crash(void)
{
	enum { N = 3000 };
	pid_t child = fork();
	if (child == 0) {
		struct usage_config cfg = {.slots = 4096};
		struct usage *u = NULL;
		if (usage_open(path_of("usage/%s", "crash"), &(struct usage_config){.slots = cfg.slots, .hostname = "crash"},
			       &u, NULL))
			_exit(2);
		for (int i = 0; i < N; i++) {
			struct usage_open_info in = event("bob", "cat", "sales", "orders", "1.0.0", "orders.csv",
							  USAGE_DATA, USAGE_ALLOW, 0);
			uint64_t h;
			if (usage_begin(u, &in, &h))
				_exit(3);
			if (i % 10)
				usage_end(u, h, 100, 1, 0);   /* every tenth stays open */
			if (i % 500 == 0)
				usleep(20000);               /* let the writer commit some */
		}
		raise(SIGKILL);
		_exit(4);
	}
	int status;
	waitpid(child, &status, 0);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	char journal[512], db[512], copy[512];
	snprintf(journal, sizeof journal, "%s", path_of("usage/%s/journal", "crash"));
	snprintf(db, sizeof db, "%s", path_of("usage/%s/usage.db", "crash"));
	snprintf(copy, sizeof copy, "%s", path_of("%s", "crash-journal.copy"));
	int64_t before = sql_int(db, "SELECT count(*) FROM events");
	CHECK(before >= 0 && before < N);          /* the rest is only in the journal */
	copy_file(journal, copy);

	struct usage *u = open_host("crash", &(struct usage_config){.slots = 4096});
	struct usage_stats s;
	usage_stats(u, &s);
	CHECK(s.replayed > 0 && s.damaged == 0);
	CHECK(usage_close(u) == 0);
	CHECK(sql_int(db, "SELECT count(*) FROM events") == N);
	CHECK(sql_int(db, "SELECT count(DISTINCT event_id) FROM events") == N);
	CHECK(sql_int(db, "SELECT count(*) FROM events WHERE complete = 0 AND duration_ns IS NULL") == N / 10);
	CHECK(sql_int(db, "SELECT count(*) FROM events WHERE complete = 1 AND bytes = 100") == N - N / 10);

	/* the same journal replayed a second time: no duplicate, no change */
	copy_file(copy, journal);
	u = open_host("crash", &(struct usage_config){.slots = 4096});
	CHECK(usage_close(u) == 0);
	CHECK(sql_int(db, "SELECT count(*) FROM events") == N);
	CHECK(sql_int(db, "SELECT count(*) FROM events WHERE complete = 0") == N / 10);
	/* ids handed out after the replay stay above the replayed ones */
	u = open_host("crash", &(struct usage_config){.slots = 4096});
	record(u, event("bob", "cat", "sales", "orders", "1.0.0", "orders.csv", USAGE_DATA, USAGE_ALLOW, 0), 1, 1, 5);
	CHECK(usage_close(u) == 0);
	CHECK(sql_int(db, "SELECT count(DISTINCT event_id) FROM events") == N + 5);
}

/* The free-slot stack after a replay holds every slot exactly once: the
 * replay's own commit freed the slots it wrote, and the stack rebuilt after
 * it once pushed them a second time, linking the stack into a cycle that
 * handed out slots still in use (events overwritten: lost under load).  So:
 * a journal of 64 slots with replayed events takes exactly 64 opens that
 * never end, and refuses the 65th. */
static void test_free_stack_after_replay(void)
{
	enum { SLOTS = 64, LEFT = 7 };
	pid_t child = fork();
	if (child == 0) {
		struct usage *u = NULL;
		/* fewer begins and ends than wake the writer, and a long period:
		 * the events stay in the journal for the next start */
		if (usage_open(path_of("usage/%s", "restack"),
			       &(struct usage_config){.slots = SLOTS, .hostname = "restack", .flush_interval_ms = 60000},
			       &u, NULL))
			_exit(2);
		for (int i = 0; i < LEFT; i++) {
			uint64_t h;
			if (usage_begin(u, &(struct usage_open_info){.uid = 1, .user = "bob", .domain = "sales",
								     .product = "orders", .version = "1.0.0",
								     .file = "orders.csv"}, &h))
				_exit(3);
			usage_end(u, h, 1, 1, 0);
		}
		raise(SIGKILL);
		_exit(4);
	}
	int status;
	waitpid(child, &status, 0);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	struct usage *u = open_host("restack", &(struct usage_config){.slots = SLOTS, .flush_interval_ms = 60000});
	struct usage_stats s;
	usage_stats(u, &s);
	CHECK(s.replayed == LEFT && s.backlog == 0);
	uint64_t h[SLOTS + 1];
	int taken = 0;
	for (int i = 0; i < SLOTS + 1; i++)
		if (usage_begin(u, &(struct usage_open_info){.uid = 1, .user = "bob", .domain = "sales", .product = "orders",
							     .version = "1.0.0", .file = "orders.csv"}, &h[i]) == 0)
			taken++;
	CHECK(taken == SLOTS);
	for (int i = 0; i < SLOTS; i++)
		usage_end(u, h[i], 1, 1, 0);
	CHECK(usage_close(u) == 0);
	CHECK(sql_int(path_of("usage/%s/usage.db", "restack"), "SELECT count(DISTINCT event_id) FROM events") ==
	      LEFT + SLOTS);
}

/* A torn or foreign slot is recognised by its checksum and skipped. */
static void test_damaged_slot(void)
{
	CHECK(mkdir(path_of("usage/%s", "torn"), 0755) == 0);
	CHECK(mkdir(path_of("usage/%s/usage.db", "torn"), 0755) == 0);   /* keeps events in the journal */
	pid_t child = fork();
	if (child == 0) {
		struct usage *u = NULL;
		if (usage_open(path_of("usage/%s", "torn"), &(struct usage_config){.slots = 64, .hostname = "torn"}, &u,
			       NULL))
			_exit(2);
		for (int i = 0; i < 20; i++) {
			struct usage_open_info in = event("bob", "cat", "sales", "orders", "1.0.0", "orders.csv",
							  USAGE_DATA, USAGE_ALLOW, 0);
			uint64_t h;
			usage_begin(u, &in, &h);
			usage_end(u, h, 1, 1, 0);
		}
		raise(SIGKILL);
	}
	waitpid(child, NULL, 0);
	/* flip one byte of the third slot's text, as a torn write would */
	int fd = open(path_of("usage/%s/journal", "torn"), O_RDWR);
	char byte;
	CHECK(pread(fd, &byte, 1, 4096 + 2 * 512 + 80) == 1);
	byte ^= 0x20;
	CHECK(pwrite(fd, &byte, 1, 4096 + 2 * 512 + 80) == 1);
	close(fd);
	CHECK(rmdir(path_of("usage/%s/usage.db", "torn")) == 0);
	struct usage *u = open_host("torn", &(struct usage_config){.slots = 64});
	struct usage_stats s;
	usage_stats(u, &s);
	CHECK(s.replayed == 20 && s.damaged == 1 && s.committed == 19);
	CHECK(usage_close(u) == 0);
	CHECK(sql_int(path_of("usage/%s/usage.db", "torn"), "SELECT count(*) FROM events") == 19);
}

static void test_foreign_journal(void)
{
	CHECK(mkdir(path_of("usage/%s", "foreign"), 0755) == 0);
	int fd = open(path_of("usage/%s/journal", "foreign"), O_WRONLY | O_CREAT, 0600);
	CHECK(write(fd, "not a journal at all", 20) == 20);
	close(fd);
	struct usage *u = open_host("foreign", &(struct usage_config){.slots = 16});
	struct usage_stats s;
	usage_stats(u, &s);
	CHECK_CONTAINS(s.last_error, "not a usage journal");
	record(u, event("a", "b", "c", "d", "1.0.0", "f", USAGE_DATA, USAGE_ALLOW, 0), 1, 1, 3);
	CHECK(usage_close(u) == 0);
	CHECK(sql_int(path_of("usage/%s/usage.db", "foreign"), "SELECT count(*) FROM events") == 3);
}

/* Full journal: refuse (default) fails data opens that would be served with
 * -EIO, counts lost the rest; serve counts every unrecorded event lost.
 * Both counters survive a restart. */
static void test_journal_full(void)
{
	struct usage *u = open_host("full", &(struct usage_config){.slots = 8});
	uint64_t h[8], x;
	struct usage_open_info data = event("a", "cat", "s", "o", "1.0.0", "o.csv", USAGE_DATA, USAGE_ALLOW, 0);
	for (int i = 0; i < 8; i++)
		CHECK(usage_begin(u, &data, &h[i]) == 0);     /* 8 files held open */
	CHECK(usage_begin(u, &data, &x) == -EIO && x == 0);
	data.decision = USAGE_MASK;
	CHECK(usage_begin(u, &data, &x) == -EIO);
	data.decision = USAGE_DENY;
	CHECK(usage_begin(u, &data, &x) == 0 && x == 0);  /* denied anyway: lost, not refused */
	struct usage_open_info disc = event("a", "cat", "s", "o", "1.0.0", "contract.yaml", USAGE_DISCOVERY,
					    USAGE_ALLOW, 0);
	CHECK(usage_begin(u, &disc, &x) == 0 && x == 0);
	usage_end(u, x, 1, 1, 0);
	struct usage_stats s;
	usage_stats(u, &s);
	CHECK(s.refused == 2 && s.lost == 2 && s.in_use == 8);
	for (int i = 0; i < 8; i++)
		usage_end(u, h[i], 1, 1, 0);
	CHECK(wait_drained(u, 2));
	data.decision = USAGE_ALLOW;
	CHECK(usage_begin(u, &data, &x) == 0 && x != 0);  /* room again */
	usage_end(u, x, 1, 1, 0);
	CHECK(usage_close(u) == 0);
	const char *db = path_of("usage/%s/usage.db", "full");
	CHECK(sql_int(db, "SELECT count(*) FROM events") == 9);
	CHECK(sql_int(db, "SELECT value FROM meta WHERE key = 'refused_opens'") == 2);
	CHECK(sql_int(db, "SELECT value FROM meta WHERE key = 'lost_events'") == 2);
	u = open_host("full", &(struct usage_config){.slots = 8});
	usage_stats(u, &s);
	CHECK(s.refused == 2 && s.lost == 2);              /* kept in the journal header */
	CHECK(usage_close(u) == 0);

	u = open_host("serve", &(struct usage_config){.slots = 8, .serve_when_full = true});
	data.decision = USAGE_ALLOW;
	for (int i = 0; i < 8; i++)
		CHECK(usage_begin(u, &data, &h[i]) == 0);
	CHECK(usage_begin(u, &data, &x) == 0 && x == 0);
	usage_end(u, x, 1, 1, 0);
	usage_stats(u, &s);
	CHECK(s.refused == 0 && s.lost == 1);
	for (int i = 0; i < 8; i++)
		usage_end(u, h[i], 1, 1, 0);
	CHECK(usage_close(u) == 0);
	CHECK(sql_int(path_of("usage/%s/usage.db", "serve"), "SELECT count(*) FROM events") == 8);
}

/* SQLite cannot be written (here: usage.db is a directory): events wait in
 * the journal, status says so, and are committed once the fault clears. */
static void test_unwritable_database(void)
{
	CHECK(mkdir(path_of("usage/%s", "nodb"), 0755) == 0);
	CHECK(mkdir(path_of("usage/%s/usage.db", "nodb"), 0755) == 0);
	struct usage *u = open_host("nodb", &(struct usage_config){.slots = 256, .metrics_interval_ms = 100});
	record(u, event("a", "cat", "s", "o", "1.0.0", "o.csv", USAGE_DATA, USAGE_ALLOW, 0), 10, 1, 20);
	sleep_ms(400);
	struct usage_stats s;
	usage_stats(u, &s);
	CHECK(s.backlog == 20 && s.committed == 0 && s.last_error[0]);
	struct usage_host_status *hosts;
	size_t n;
	CHECK(usage_status_read(path_of("%s", "usage"), now_ns(), &hosts, &n, NULL) == 0);
	bool seen = false;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(hosts[i].host, "nodb")) {
			seen = true;
			CHECK(hosts[i].running && hosts[i].backlog == 20 && strcmp(hosts[i].last_error, "-"));
		}
	CHECK(seen);
	char *text = usage_status_format(hosts, n, now_ns(), false);
	CHECK_CONTAINS(text, "backlog      20\n");
	free(text);
	free(hosts);
	CHECK(rmdir(path_of("usage/%s/usage.db", "nodb")) == 0);
	CHECK(wait_drained(u, 5));                 /* the writer retries with backoff (at most 2 s) */
	usage_stats(u, &s);
	CHECK(s.committed == 20 && s.last_error[0] == '\0');
	CHECK(usage_close(u) == 0);
	CHECK(sql_int(path_of("usage/%s/usage.db", "nodb"), "SELECT count(*) FROM events") == 20);
}

/* A real full disk: the database on a small tmpfs, filled up. */
static void test_disk_full(void)
{
	const char *mnt = path_of("%s", "tiny");
	CHECK(mkdir(mnt, 0755) == 0);
	if (mount("tmpfs", mnt, "tmpfs", 0, "size=256k") < 0) {
		printf("  disk full: skipped (cannot mount a tmpfs: %s)\n", strerror(errno));
		return;
	}
	char dir[600], filler[600];
	snprintf(dir, sizeof dir, "%s/usage/full", mnt);
	snprintf(filler, sizeof filler, "%s/filler", mnt);
	struct usage *u = NULL;
	struct mesh_err err = {0};
	CHECK(usage_open(dir, &(struct usage_config){.slots = 128, .hostname = "tiny", .metrics_interval_ms = 100}, &u,
			 &err) == 0);
	record(u, event("a", "cat", "s", "o", "1.0.0", "o.csv", USAGE_DATA, USAGE_ALLOW, 0), 1, 1, 5);
	CHECK(wait_drained(u, 2));
	int fd = open(filler, O_WRONLY | O_CREAT, 0600);
	static char block[4096];
	while (write(fd, block, sizeof block) > 0)
		;
	close(fd);
	/* long names: the database needs new pages for these */
	char file[200];
	memset(file, 'f', sizeof file - 1);
	file[sizeof file - 1] = '\0';
	for (int i = 0; i < 100; i++) {
		char user[32];
		snprintf(user, sizeof user, "user-%d", i);
		struct usage_open_info in = event(user, "cat", "s", "o", "1.0.0", file, USAGE_DATA, USAGE_ALLOW, 0);
		uint64_t h;
		CHECK(usage_begin(u, &in, &h) == 0);   /* the journal is preallocated: never ENOSPC */
		usage_end(u, h, 1, 1, 0);
	}
	sleep_ms(500);
	struct usage_stats s;
	usage_stats(u, &s);
	CHECK(s.backlog > 0 && s.last_error[0]);
	char state[700], *text = NULL;
	size_t len;
	snprintf(state, sizeof state, "%s/state", dir);
	sleep_ms(150);
	CHECK(mesh_read_file_at(AT_FDCWD, state, 65536, &text, &len, NULL) == 0);
	CHECK(text && !strstr(text, "\nbacklog 0\n"));   /* the state file still updates on a full disk */
	free(text);
	unlink(filler);
	CHECK(wait_drained(u, 5));
	CHECK(usage_close(u) == 0);
	char db[700];
	snprintf(db, sizeof db, "%s/usage.db", dir);
	CHECK(sql_int(db, "SELECT count(*) FROM events") == 105);
	CHECK(sql_int(db, "SELECT count(*) FROM pragma_integrity_check WHERE integrity_check = 'ok'") == 1);
	umount2(mnt, MNT_DETACH);
}

static void test_busy(void)
{
	struct usage *u = open_host("busy", &(struct usage_config){.slots = 8});
	struct usage *v = NULL;
	struct mesh_err err = {0};
	CHECK(usage_open(path_of("usage/%s", "busy"), &(struct usage_config){.slots = 8}, &v, &err) == -EBUSY);
	CHECK_CONTAINS(err.msg, "another meshfs daemon");
	CHECK(usage_close(u) == 0);
	CHECK(usage_close(NULL) == 0);
}

static void test_read_comm(void)
{
	char buf[32];
	CHECK(usage_read_comm(getpid(), buf, sizeof buf) == 0);
	CHECK_STR(buf, "test_usage");
	CHECK(usage_read_comm(0, buf, sizeof buf) == -ESRCH);
	CHECK_STR(buf, "?");
	CHECK(usage_read_comm(0x3ffffff0, buf, sizeof buf) == -ESRCH);
	CHECK_STR(buf, "?");
	char small[4];
	CHECK(usage_read_comm(getpid(), small, sizeof small) == 0);
	CHECK_STR(small, "tes");
	usage_program_name(getpid(), buf, sizeof buf);
	CHECK_STR(buf, "test_usage");
	usage_program_name(getpid(), buf, sizeof buf);   /* cached */
	CHECK_STR(buf, "test_usage");
	usage_program_name(-1, buf, sizeof buf);
	CHECK_STR(buf, "?");
}

/* ---- reports ---- */

static const int64_t D = 1772323200LL * NS;     /* 2026-03-01T00:00:00Z */

/* Two hosts; the current period is [D, D+30d), the previous one 30 days before. */
static void make_report_data(void)
{
	struct usage *h1 = open_host("rep-h1", NULL), *h2 = open_host("rep-h2", NULL);
	record(h1, event("alice", "cat", "sales", "orders", "1.0.0", "orders.csv", USAGE_DATA, USAGE_ALLOW, D + DAY + 3600 * NS), 100, 2, 3);
	record(h1, event("bob", "python3", "sales", "orders", "1.1.0", "orders.csv", USAGE_DATA, USAGE_ALLOW, D + 2 * DAY), 50, 1, 2);
	record(h2, event("alice", "head", "sales", "orders", "1.1.0", "orders.csv", USAGE_DATA, USAGE_MASK, D + 3 * DAY), 10, 1, 1);
	record(h2, event("dave", "cat", "sales", "orders", "1.0.0", "orders.csv", USAGE_DATA, USAGE_DENY, D + 3 * DAY + NS), 0, 0, 1);
	record(h2, event("carol", "cat", "sales", "orders", "1.0.0", "contract.yaml", USAGE_DISCOVERY, USAGE_ALLOW, D + 4 * DAY), 900, 1, 1);
	record(h1, event("alice", "my,prog", "finance", "ledger", "2.0.0", "ledger \"q1\".csv", USAGE_DATA, USAGE_ALLOW, D + 5 * DAY), 7, 1, 1);
	record(h1, event("bob", "cat", "sales", "orders", "1.0.0", "orders.csv", USAGE_DATA, USAGE_ALLOW, D - 10 * DAY), 5, 1, 2);
	record(h1, event("erin", "cat", "sales", "orders", "1.0.0", "orders.csv", USAGE_DATA, USAGE_ALLOW, D + 40 * DAY), 5, 1, 1);
	record(h2, event("erin", "cat", "sales", "orders", "1.0.0", "orders.csv", USAGE_DATA, USAGE_ALLOW, D - 40 * DAY), 5, 1, 1);
	CHECK(usage_close(h1) == 0);
	CHECK(usage_close(h2) == 0);
}

/* Reports read only the rep-* hosts: a usage root of their own. */
static const char *report_root(void)
{
	return path_of("%s", "reproot");
}

static void link_report_hosts(void)
{
	CHECK(mkdir(report_root(), 0755) == 0);
	CHECK(symlink(path_of("usage/%s", "rep-h1"), path_of("reproot/%s", "rep-h1")) == 0);
	CHECK(symlink(path_of("usage/%s", "rep-h2"), path_of("reproot/%s", "rep-h2")) == 0);
}

static struct usage_report *run(enum usage_by by, const char *domain, const char *product)
{
	struct usage_query q = {.domain = domain, .product = product, .since_ns = D, .until_ns = D + 30 * DAY, .by = by};
	struct usage_report *r = NULL;
	struct mesh_err err = {0};
	int rc = usage_report_run(report_root(), &q, &r, &err);
	if (rc)
		fprintf(stderr, "report: %s\n", err.msg);
	CHECK(rc == 0 && r);
	return r;
}

static json_t *as_json(const struct usage_report *r)
{
	char *text = usage_report_format(r, USAGE_FORMAT_JSON);
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);
	CHECK(j != NULL);
	if (!j)
		fprintf(stderr, "json: %s\n%s\n", e.text, text);
	free(text);
	return j;
}

static int64_t jint(json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

static const char *jstr(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* A tiny RFC 4180 reader: rows of fields, to check quoting round-trips. */
static size_t csv_parse(const char *text, char fields[][8][64], size_t max_rows, size_t *cols)
{
	size_t row = 0, col = 0, len = 0;
	bool quoted = false;
	*cols = 0;
	for (const char *p = text; *p && row < max_rows; p++) {
		if (quoted) {
			if (*p == '"' && p[1] == '"')
				fields[row][col][len++] = *++p;
			else if (*p == '"')
				quoted = false;
			else
				fields[row][col][len++] = *p;
		} else if (*p == '"') {
			quoted = true;
		} else if (*p == ',') {
			fields[row][col++][len] = '\0';
			len = 0;
		} else if (*p == '\r') {
			continue;
		} else if (*p == '\n') {
			fields[row][col][len] = '\0';
			if (row == 0)
				*cols = col + 1;
			row++;
			col = 0;
			len = 0;
		} else if (len < 63 && col < 8) {
			fields[row][col][len++] = *p;
		}
		if (len >= 63)
			len = 62;
		if (col >= 8)
			col = 7;
	}
	return row;
}

static void test_reports(void)
{
	make_report_data();
	link_report_hosts();

	struct usage_report *r = run(USAGE_BY_PRODUCT, NULL, NULL);
	const struct usage_summary *s = usage_report_summary(r);
	CHECK(s->hosts == 2 && s->consumers == 2 && s->reads == 7 && s->bytes == 417);
	CHECK(s->discovery == 1 && s->masked == 1 && s->denied == 1);
	CHECK(s->previous_consumers == 1 && s->previous_reads == 2 && s->previous_since_ns == D - 30 * DAY);
	CHECK(usage_report_row_count(r) == 2 && usage_report_warning(r, 0) == NULL);
	json_t *j = as_json(r);
	json_t *rows = json_object_get(j, "rows"), *first = json_array_get(rows, 0);
	CHECK_STR(jstr(j, "report"), "usage");
	CHECK_STR(jstr(j, "by"), "product");
	CHECK_STR(jstr(j, "since"), "2026-03-01T00:00:00.000Z");
	CHECK_STR(jstr(first, "domain"), "sales");
	CHECK_STR(jstr(first, "product"), "orders");
	CHECK(jint(first, "consumers") == 2 && jint(first, "reads") == 6 && jint(first, "bytes") == 410);
	CHECK(jint(first, "masked") == 1 && jint(first, "denied") == 1 && jint(first, "discovery") == 1);
	CHECK(jint(first, "hosts") == 2 && jint(first, "previous_reads") == 2);
	CHECK(json_real_value(json_object_get(first, "trend")) == 2.0);
	CHECK_STR(jstr(first, "last_read"), "2026-03-04T00:00:00.000Z");
	CHECK(json_is_null(json_object_get(json_array_get(rows, 1), "trend")));   /* new: nothing before */
	json_t *sum = json_object_get(j, "summary");
	CHECK(jint(sum, "reads") == 7 && jint(json_object_get(sum, "previous"), "reads") == 2);
	CHECK(json_real_value(json_object_get(json_object_get(sum, "trend"), "reads")) == 2.5);
	json_decref(j);
	char *table = usage_report_format(r, USAGE_FORMAT_TABLE);
	CHECK_CONTAINS(table, "usage of all products, 2026-03-01 .. 2026-03-30 (30 days), 2 hosts\n");
	CHECK_CONTAINS(table, "consumers  2  (previous period 1, +100%)\n");
	CHECK_CONTAINS(table, "reads      7  (previous period 2, +250%)\n");
	CHECK_CONTAINS(table, "PRODUCT         CONSUMERS  READS  BYTES  MASKED  DENIED  DISCOVERY  LAST READ");
	CHECK_CONTAINS(table, "sales/orders            2      6  410 B       1       1          1  2026-03-04T00:00:00.000Z  +200%\n");
	CHECK_CONTAINS(table, "finance/ledger          1      1    7 B       0       0          0  2026-03-06T00:00:00.000Z    new\n");
	free(table);
	usage_report_free(r);

	/* by version: product by product, the newest version first */
	r = run(USAGE_BY_VERSION, NULL, NULL);
	j = as_json(r);
	rows = json_object_get(j, "rows");
	CHECK(json_array_size(rows) == 3);
	CHECK_STR(jstr(json_array_get(rows, 0), "product"), "ledger");
	CHECK_STR(jstr(json_array_get(rows, 1), "version"), "1.1.0");
	CHECK(jint(json_array_get(rows, 1), "reads") == 3 && jint(json_array_get(rows, 1), "consumers") == 2);
	CHECK_STR(jstr(json_array_get(rows, 2), "version"), "1.0.0");
	CHECK(jint(json_array_get(rows, 2), "reads") == 3 && jint(json_array_get(rows, 2), "denied") == 1);
	json_decref(j);
	usage_report_free(r);

	/* by consumer, one product: user, host, program */
	r = run(USAGE_BY_CONSUMER, "sales", "orders");
	j = as_json(r);
	rows = json_object_get(j, "rows");
	CHECK(json_array_size(rows) == 4);
	CHECK_STR(jstr(json_array_get(rows, 0), "user"), "alice");
	CHECK_STR(jstr(json_array_get(rows, 0), "host"), "rep-h1");
	CHECK_STR(jstr(json_array_get(rows, 0), "program"), "cat");
	CHECK(jint(json_array_get(rows, 0), "reads") == 3 && jint(json_array_get(rows, 0), "bytes") == 300);
	CHECK_STR(jstr(json_array_get(rows, 3), "user"), "dave");
	CHECK(jint(json_array_get(rows, 3), "reads") == 0 && jint(json_array_get(rows, 3), "denied") == 1);
	CHECK_STR(jstr(json_object_get(j, "filters"), "product"), "orders");
	json_decref(j);
	usage_report_free(r);

	/* by host */
	r = run(USAGE_BY_HOST, NULL, NULL);
	j = as_json(r);
	rows = json_object_get(j, "rows");
	CHECK(json_array_size(rows) == 2 && jint(json_array_get(rows, 0), "reads") == 6 &&
	      jint(json_array_get(rows, 1), "reads") == 1);
	json_decref(j);
	usage_report_free(r);

	/* by program, as CSV: quoting round-trips */
	r = run(USAGE_BY_PROGRAM, NULL, NULL);
	char *csv = usage_report_format(r, USAGE_FORMAT_CSV);
	static char f[16][8][64];
	size_t cols, n = csv_parse(csv, f, 16, &cols);
	CHECK(n == 5 && cols == 7);                 /* header + cat, python3, my,prog, head */
	CHECK_STR(f[0][0], "program");
	bool comma = false;
	for (size_t i = 1; i < n; i++)
		comma |= !strcmp(f[i][0], "my,prog") && !strcmp(f[i][2], "1");
	CHECK(comma);
	CHECK_CONTAINS(csv, "\"my,prog\"");
	free(csv);
	usage_report_free(r);

	/* by day: every day of the window */
	r = run(USAGE_BY_DAY, NULL, NULL);
	csv = usage_report_format(r, USAGE_FORMAT_CSV);
	n = csv_parse(csv, f, 16, &cols);
	CHECK(usage_report_row_count(r) == 30);
	CHECK_STR(f[0][0], "day");
	CHECK_STR(f[1][0], "2026-03-01");
	CHECK_STR(f[2][0], "2026-03-02");
	CHECK_STR(f[2][2], "3");
	CHECK_STR(f[1][2], "0");
	free(csv);
	usage_report_free(r);

	/* the audit listing: denied and masked opens, one row each */
	struct usage_query q = {.denied = true, .since_ns = D, .until_ns = D + 30 * DAY};
	struct mesh_err err = {0};
	CHECK(usage_report_run(report_root(), &q, &r, &err) == 0);
	CHECK(usage_report_row_count(r) == 2);
	CHECK(usage_report_summary(r)->denied == 1 && usage_report_summary(r)->masked == 1);
	j = as_json(r);
	rows = json_object_get(j, "rows");
	CHECK_STR(jstr(j, "report"), "denied");
	CHECK_STR(jstr(json_array_get(rows, 0), "decision"), "mask");
	CHECK_STR(jstr(json_array_get(rows, 0), "user"), "alice");
	CHECK_STR(jstr(json_array_get(rows, 1), "decision"), "deny");
	CHECK_STR(jstr(json_array_get(rows, 1), "time"), "2026-03-04T00:00:01.000Z");
	CHECK(jint(json_array_get(rows, 1), "pid") == 42 && jint(json_array_get(rows, 1), "uid") == 1000);
	json_decref(j);
	usage_report_free(r);
	q.decision = "deny";
	CHECK(usage_report_run(report_root(), &q, &r, &err) == 0 && usage_report_row_count(r) == 1);
	usage_report_free(r);
	q.decision = NULL;
	q.limit = 1;                               /* the counts stay whole */
	CHECK(usage_report_run(report_root(), &q, &r, &err) == 0 && usage_report_row_count(r) == 1);
	CHECK(usage_report_summary(r)->denied == 1 && usage_report_summary(r)->masked == 1);
	usage_report_free(r);

	/* filters: user, and a version */
	q = (struct usage_query){.user = "bob", .since_ns = D, .until_ns = D + 30 * DAY};
	CHECK(usage_report_run(report_root(), &q, &r, &err) == 0);
	CHECK(usage_report_summary(r)->reads == 2 && usage_report_summary(r)->previous_reads == 2);
	usage_report_free(r);
	q = (struct usage_query){.domain = "sales", .product = "orders", .version = "1.0.0", .since_ns = D,
				 .until_ns = D + 30 * DAY};
	CHECK(usage_report_run(report_root(), &q, &r, &err) == 0);
	CHECK(usage_report_summary(r)->reads == 3 && usage_report_summary(r)->denied == 1);
	usage_report_free(r);
	q.decision = "maybe";
	CHECK(usage_report_run(report_root(), &q, &r, &err) == -EINVAL);
	q = (struct usage_query){.since_ns = D, .until_ns = D};
	CHECK(usage_report_run(report_root(), &q, &r, &err) == -EINVAL);

	/* consumers of a version: who read it (denied opens are not reads) */
	CHECK(usage_consumers_run(report_root(), NULL, "sales", "orders", "1.0.0", D, D + 30 * DAY, &r, &err) == 0);
	j = as_json(r);
	rows = json_object_get(j, "rows");
	CHECK_STR(jstr(j, "report"), "consumers");
	CHECK(json_array_size(rows) == 1);
	CHECK_STR(jstr(json_array_get(rows, 0), "user"), "alice");
	CHECK(jint(json_array_get(rows, 0), "reads") == 3);
	CHECK_STR(jstr(json_array_get(rows, 0), "last_read"), "2026-03-02T01:00:00.000Z");
	json_decref(j);
	table = usage_report_format(r, USAGE_FORMAT_TABLE);
	CHECK_CONTAINS(table, "USER   HOST    PROGRAMS  READS  BYTES  LAST READ\n");
	CHECK_CONTAINS(table, "alice  rep-h1  cat           3  300 B  2026-03-02T01:00:00.000Z\n");
	free(table);
	usage_report_free(r);
	CHECK(usage_consumers_run(report_root(), NULL, "sales", "orders", "1.0.0", D - 30 * DAY, D + 60 * DAY, &r, &err) == 0);
	CHECK(usage_report_row_count(r) == 3);     /* alice, bob (before), erin (after; not her older read) */
	usage_report_free(r);
	CHECK(usage_consumers_run(report_root(), NULL, "finance", "ledger", "2.0.0", D, D + 30 * DAY, &r, &err) == 0);
	csv = usage_report_format(r, USAGE_FORMAT_CSV);
	n = csv_parse(csv, f, 16, &cols);
	CHECK(n == 2);
	CHECK_STR(f[1][2], "my,prog");
	free(csv);
	usage_report_free(r);

	/* an unreadable host database is a warning, not a failure */
	CHECK(mkdir(path_of("reproot/%s", "broken"), 0755) == 0);
	int fd = open(path_of("reproot/%s/usage.db", "broken"), O_WRONLY | O_CREAT, 0644);
	CHECK(write(fd, "garbage, not sqlite at all, garbage, garbage, garbage, garbage, garbage, garbage, garbage, "
			"garbage, garbage", 100) == 100);
	close(fd);
	r = run(USAGE_BY_PRODUCT, NULL, NULL);
	CHECK(usage_report_summary(r)->reads == 7 && usage_report_warning(r, 0) != NULL);
	CHECK(usage_report_warning(r, 1) == NULL);
	usage_report_free(r);
	unlink(path_of("reproot/%s/usage.db", "broken"));
	rmdir(path_of("reproot/%s", "broken"));

	/* a missing usage root is an empty report */
	q = (struct usage_query){.since_ns = D, .until_ns = D + DAY};
	CHECK(usage_report_run(path_of("%s", "nowhere"), &q, &r, &err) == 0 && usage_report_row_count(r) == 0);
	table = usage_report_format(r, USAGE_FORMAT_TABLE);
	CHECK_CONTAINS(table, "(no events)");
	free(table);
	usage_report_free(r);
}

/* Pruning folds raw events into daily rollups; every report gives the same
 * totals after.  The stopped hosts are pruned here; a running daemon is
 * asked and does it itself. */
static void test_prune(void)
{
	struct usage_query q = {.since_ns = D, .until_ns = D + 30 * DAY};
	struct usage_report *before, *after;
	struct mesh_err err = {0};
	CHECK(usage_report_run(report_root(), &q, &before, &err) == 0);
	q.by = USAGE_BY_CONSUMER;
	struct usage_report *cb, *ca;
	CHECK(usage_report_run(report_root(), &q, &cb, &err) == 0);

	/* rep-h1 runs (a daemon holds its journal), rep-h2 does not */
	struct usage *h1 = open_host("rep-h1", &(struct usage_config){.metrics_interval_ms = 100});
	struct usage_prune_result *res;
	size_t n;
	CHECK(usage_prune_store(report_root(), D + 4 * DAY, 5000, &res, &n, &err) == 0);
	CHECK(n == 2);
	CHECK_STR(res[0].host, "rep-h1");
	CHECK(res[0].outcome == USAGE_PRUNE_ASKED && res[0].done_by_daemon && res[0].folded == 7);
	CHECK_STR(res[1].host, "rep-h2");
	CHECK(res[1].outcome == USAGE_PRUNED && res[1].folded == 3);
	CHECK_CONTAINS(res[1].message, "3 events folded");
	free(res);
	CHECK(access(path_of("usage/%s/" USAGE_PRUNE_REQUEST, "rep-h1"), F_OK) < 0);
	CHECK(usage_close(h1) == 0);
	const char *db1 = path_of("usage/%s/usage.db", "rep-h1"), *db2 = path_of("usage/%s/usage.db", "rep-h2");
	CHECK(sql_int(db1, "SELECT count(*) FROM events WHERE open_ns < 1772668800000000000") == 0);
	CHECK(sql_int(db1, "SELECT sum(opens) FROM rollups") == 7);
	CHECK(sql_int(db2, "SELECT sum(opens) FROM rollups") == 3);

	q.by = USAGE_BY_PRODUCT;
	CHECK(usage_report_run(report_root(), &q, &after, &err) == 0);
	const struct usage_summary *a = usage_report_summary(after), *b = usage_report_summary(before);
	CHECK(a->consumers == b->consumers && a->reads == b->reads && a->bytes == b->bytes);
	CHECK(a->masked == b->masked && a->denied == b->denied && a->discovery == b->discovery);
	CHECK(a->previous_reads == b->previous_reads && a->previous_consumers == b->previous_consumers);
	char *x = usage_report_format(before, USAGE_FORMAT_CSV), *y = usage_report_format(after, USAGE_FORMAT_CSV);
	CHECK_STR(y, x);
	free(x);
	free(y);
	q.by = USAGE_BY_CONSUMER;
	CHECK(usage_report_run(report_root(), &q, &ca, &err) == 0);
	x = usage_report_format(cb, USAGE_FORMAT_JSON);
	y = usage_report_format(ca, USAGE_FORMAT_JSON);
	CHECK_STR(y, x);                          /* down to the last read of each consumer */
	free(x);
	free(y);
	usage_report_free(before);
	usage_report_free(after);
	usage_report_free(cb);
	usage_report_free(ca);

	/* again: nothing left to fold, same totals */
	CHECK(usage_prune_store(report_root(), D + 4 * DAY, 5000, &res, &n, &err) == 0);
	CHECK(n == 2 && res[0].folded == 0 && res[1].folded == 0 && res[0].outcome == USAGE_PRUNED);
	free(res);

	/* status after all this: both stopped, nothing waiting */
	struct usage_host_status *hosts;
	CHECK(usage_status_read(report_root(), now_ns(), &hosts, &n, &err) == 0);
	CHECK(n == 2 && !hosts[0].running && hosts[0].backlog == 0 && hosts[0].capacity == USAGE_DEFAULT_SLOTS);
	CHECK_CONTAINS(hosts[0].prune, "folded 7");
	char *text = usage_status_format(hosts, n, now_ns(), true);
	json_t *j = json_loads(text, 0, NULL);
	CHECK(json_is_array(j) && json_array_size(j) == 2);
	CHECK_STR(jstr(json_array_get(j, 0), "host"), "rep-h1");
	json_decref(j);
	free(text);
	free(hosts);
}

static void test_state_parse(void)
{
	struct usage_host_status s;
	CHECK(usage_state_parse("meshfs-usage-state 1\nhost a\nbacklog 5\nlast_error disk full\nend\n", &s) == 0);
	CHECK_STR(s.host, "a");
	CHECK(s.backlog == 5);
	CHECK_STR(s.last_error, "disk full");
	CHECK(usage_state_parse("meshfs-usage-state 1\nhost a\nback", &s) == -EPROTO);   /* torn */
	CHECK(usage_state_parse("something else\nend\n", &s) == -EPROTO);
}

/* ---- measurements (printed, not checked) ---- */

struct bench {
	struct usage *u;
	long events;
	pthread_barrier_t *go;
	atomic_long waited;
	double seconds;
};

static void *bench_main(void *arg)
{
	struct bench *b = arg;
	struct usage_open_info in = event("alice", "cat", "sales", "orders", "1.0.0", "orders.csv", USAGE_DATA,
					  USAGE_ALLOW, 0);
	pthread_barrier_wait(b->go);
	double t0 = mono();
	for (long i = 0; i < b->events; i++) {
		uint64_t h;
		while (usage_begin(b->u, &in, &h) == -EIO) {
			atomic_fetch_add(&b->waited, 1);
			sched_yield();
		}
		usage_end(b->u, h, 4096, 1, 0);
	}
	b->seconds = mono() - t0;
	return NULL;
}

/* 2 threads, `per_thread` begin+end pairs each; seconds until both are done. */
static double bench_round(struct usage *u, long per_thread, long *waited)
{
	pthread_barrier_t go;
	pthread_barrier_init(&go, NULL, 2);
	struct bench b[2] = {{.u = u, .events = per_thread, .go = &go}, {.u = u, .events = per_thread, .go = &go}};
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, bench_main, &b[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&go);
	*waited += atomic_load(&b[0].waited) + atomic_load(&b[1].waited);
	return b[0].seconds > b[1].seconds ? b[0].seconds : b[1].seconds;
}

/* 20,000 begin+end pairs per second for one second, 20 per millisecond */
static void *paced_main(void *arg)
{
	struct usage *u = arg;
	struct usage_open_info in = event("alice", "cat", "sales", "orders", "1.0.0", "orders.csv", USAGE_DATA,
					  USAGE_ALLOW, 0);
	double start = mono();
	for (int ms = 0; ms < 1000; ms++) {
		for (int k = 0; k < 20; k++) {
			uint64_t h;
			if (usage_begin(u, &in, &h) == 0)
				usage_end(u, h, 4096, 1, 0);
		}
		double next = start + (ms + 1) / 1000.0, now = mono();
		if (next > now)
			usleep((useconds_t)((next - now) * 1e6));
	}
	return NULL;
}

static void measure(int rounds, long sustained)
{
	/* the hot path alone: bursts that fit the journal, drained in between */
	struct usage *u = open_host("bench", NULL);
	long waited = 0, burst = USAGE_DEFAULT_SLOTS / 2 - 512;
	double busy = 0;
	for (int r = 0; r < rounds; r++) {
		busy += bench_round(u, burst, &waited);
		wait_drained(u, 30);
	}
	printf("  measure: begin+end from 2 threads, bursts within the journal: %.0f events/s (%.0f ns per pair per"
	       " thread; %ld waited)\n", 2.0 * burst * rounds / busy, busy * 1e9 / ((double)burst * rounds), waited);
	/* sustained: the writer must keep up */
	struct usage_stats s0, s;
	usage_stats(u, &s0);
	waited = 0;
	double t0 = mono(), seconds = bench_round(u, sustained, &waited);
	wait_drained(u, 60);
	double total = mono() - t0;
	usage_stats(u, &s);
	CHECK(usage_close(u) == 0);
	uint64_t batches = s.batches - s0.batches, committed = s.committed - s0.committed;
	printf("  measure: sustained, %ld pairs from 2 threads: recorded in %.3f s, all in SQLite after %.3f s ="
	       " %.0f events/s through the writer; %ld begins waited for a slot\n", 2 * sustained, seconds, total,
	       (double)committed / total, waited);
	printf("  measure: writer: %llu transactions, %.0f events each on average, %llu at most; journal %d bytes per"
	       " event\n", (unsigned long long)batches, batches ? (double)committed / (double)batches : 0.0,
	       (unsigned long long)s.batch_max, USAGE_SLOT_SIZE);
	/* paced like a busy mount (2 x 20,000 opens/s for a second): the batches the writer really makes */
	u = open_host("bench-paced", NULL);
	usage_stats(u, &s0);
	pthread_t pt[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&pt[i], NULL, paced_main, u);
	for (int i = 0; i < 2; i++)
		pthread_join(pt[i], NULL);
	wait_drained(u, 10);
	usage_stats(u, &s);
	CHECK(usage_close(u) == 0);
	batches = s.batches - s0.batches;
	printf("  measure: paced at 40,000 events/s: %llu transactions, %.0f events each on average, %llu at most\n",
	       (unsigned long long)batches, batches ? (double)(s.committed - s0.committed) / (double)batches : 0.0,
	       (unsigned long long)s.batch_max);
	char buf[32];
	int reps = 20000;
	t0 = mono();
	for (int i = 0; i < reps; i++)
		usage_read_comm(getpid(), buf, sizeof buf);
	double comm = (mono() - t0) / reps;
	t0 = mono();
	for (int i = 0; i < reps; i++)
		usage_program_name(getpid(), buf, sizeof buf);
	double cached = (mono() - t0) / reps;
	printf("  measure: usage_read_comm %.2f us, usage_program_name (cached) %.3f us\n", comm * 1e6, cached * 1e6);
}

/* ---- shipping segments ---- */

static size_t count_segments(const char *dir)
{
	DIR *d = opendir(dir);
	size_t n = 0;
	struct dirent *de;
	while (d && (de = readdir(d)))
		n += !strncmp(de->d_name, "seg-", 4);
	if (d)
		closedir(d);
	return n;
}

static uint64_t shipped_reads(const char *local_root, const char *host, size_t *warnings)
{
	struct usage_query q = {.since_ns = D, .until_ns = D + 30 * DAY, .by = USAGE_BY_HOST,
				.shipped_root = path_of("%s", "shipped")};
	struct usage_report *r = NULL;
	struct mesh_err err = {0};
	uint64_t reads = UINT64_MAX;
	CHECK(usage_report_run(local_root, &q, &r, &err) == 0);
	if (!r)
		return reads;
	*warnings = 0;
	while (usage_report_warning(r, *warnings))
		(*warnings)++;
	char *json = usage_report_format(r, USAGE_FORMAT_JSON);
	json_t *doc = json_loads(json, 0, NULL);
	json_t *row;
	size_t i;
	json_array_foreach(json_object_get(doc, "rows"), i, row)
		if (!strcmp(json_string_value(json_object_get(row, "host")), host))
			reads = (uint64_t)json_integer_value(json_object_get(row, "reads"));
	json_decref(doc);
	free(json);
	usage_report_free(r);
	return reads;
}

/* Reads of a host's usage.db (and its WAL) by every connection of this
 * process: a default VFS that forwards to "unix" and counts xRead. */
static _Atomic unsigned long db_reads;
static sqlite3_vfs counting_vfs;
static const sqlite3_io_methods *unix_methods;
static sqlite3_io_methods counting_methods;

struct counting_file {
	sqlite3_file base;           /* pMethods: counting_methods */
	bool usage_db;
	sqlite3_file real[];         /* the unix VFS's file, szOsFile bytes */
};

#define REAL(f) (((struct counting_file *)(f))->real)

static int cf_read(sqlite3_file *f, void *buf, int amt, sqlite3_int64 off)
{
	if (((struct counting_file *)f)->usage_db)
		atomic_fetch_add(&db_reads, 1);
	return REAL(f)->pMethods->xRead(REAL(f), buf, amt, off);
}
static int cf_close(sqlite3_file *f) { return REAL(f)->pMethods->xClose(REAL(f)); }
static int cf_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 o) { return REAL(f)->pMethods->xWrite(REAL(f), b, n, o); }
static int cf_truncate(sqlite3_file *f, sqlite3_int64 n) { return REAL(f)->pMethods->xTruncate(REAL(f), n); }
static int cf_sync(sqlite3_file *f, int fl) { return REAL(f)->pMethods->xSync(REAL(f), fl); }
static int cf_size(sqlite3_file *f, sqlite3_int64 *n) { return REAL(f)->pMethods->xFileSize(REAL(f), n); }
static int cf_lock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xLock(REAL(f), l); }
static int cf_unlock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xUnlock(REAL(f), l); }
static int cf_check(sqlite3_file *f, int *r) { return REAL(f)->pMethods->xCheckReservedLock(REAL(f), r); }
static int cf_control(sqlite3_file *f, int op, void *a) { return REAL(f)->pMethods->xFileControl(REAL(f), op, a); }
static int cf_sector(sqlite3_file *f) { return REAL(f)->pMethods->xSectorSize(REAL(f)); }
static int cf_chars(sqlite3_file *f) { return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f)); }
static int cf_shm_map(sqlite3_file *f, int pg, int sz, int ext, void volatile **pp)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), pg, sz, ext, pp);
}
static int cf_shm_lock(sqlite3_file *f, int off, int n, int fl) { return REAL(f)->pMethods->xShmLock(REAL(f), off, n, fl); }
static void cf_shm_barrier(sqlite3_file *f) { REAL(f)->pMethods->xShmBarrier(REAL(f)); }
static int cf_shm_unmap(sqlite3_file *f, int del) { return REAL(f)->pMethods->xShmUnmap(REAL(f), del); }

static int cv_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
	sqlite3_vfs *unix_vfs = vfs->pAppData;
	struct counting_file *cf = (struct counting_file *)f;
	cf->base.pMethods = NULL;
	int rc = unix_vfs->xOpen(unix_vfs, name, cf->real, flags, out_flags);
	if (rc != SQLITE_OK || !cf->real->pMethods)
		return rc;
	if (!unix_methods) {
		unix_methods = cf->real->pMethods;
		counting_methods = (sqlite3_io_methods){
			.iVersion = unix_methods->iVersion < 2 ? unix_methods->iVersion : 2, .xClose = cf_close,
			.xRead = cf_read, .xWrite = cf_write, .xTruncate = cf_truncate, .xSync = cf_sync,
			.xFileSize = cf_size, .xLock = cf_lock, .xUnlock = cf_unlock, .xCheckReservedLock = cf_check,
			.xFileControl = cf_control, .xSectorSize = cf_sector, .xDeviceCharacteristics = cf_chars,
			.xShmMap = cf_shm_map, .xShmLock = cf_shm_lock, .xShmBarrier = cf_shm_barrier,
			.xShmUnmap = cf_shm_unmap};
	}
	size_t len = name ? strlen(name) : 0;
	cf->usage_db = (len >= 9 && !strcmp(name + len - 9, "/usage.db")) ||
		       (len >= 13 && !strcmp(name + len - 13, "/usage.db-wal"));
	cf->base.pMethods = &counting_methods;
	return SQLITE_OK;
}

static void counting_vfs_install(void)
{
	sqlite3_vfs *unix_vfs = sqlite3_vfs_find("unix");
	CHECK(unix_vfs != NULL);
	counting_vfs = *unix_vfs;
	counting_vfs.iVersion = 1;                /* no xSetSystemCall and friends */
	counting_vfs.zName = "usage-test-counting";
	counting_vfs.szOsFile = (int)sizeof(struct counting_file) + unix_vfs->szOsFile;
	counting_vfs.pAppData = unix_vfs;
	counting_vfs.xOpen = cv_open;
	CHECK(sqlite3_vfs_register(&counting_vfs, 1) == SQLITE_OK);
}

/* `n` opens by `user` on `host` with a shipper that never wakes by
 * itself, then a clean stop, which ships them all: timing-free, where a
 * running shipper split them over as many segments as a slow machine made. */
static void record_then_ship(const char *host, const char *user, int n)
{
	struct usage_config once = {.ship_dir = path_of("shipped/%s", host), .ship_interval_ms = 600000,
				    .flush_interval_ms = 5};
	struct usage *u = open_host(host, &once);
	record(u, event(user, "cat", "sales", "orders", "1.0.0", "orders.csv", USAGE_DATA, USAGE_ALLOW, D + DAY),
	       1, 1, n);
	CHECK(usage_close(u) == 0);
}

/* Shipping one new event reads a few pages of usage.db, however many
 * events the host keeps: the segment copy takes the rows past the ship
 * mark by a range of the key (a copy driven from a queue once let the
 * planner scan every kept event for each segment, which grew with the
 * host's history and cost more CPU than the opens). */
static void test_shipping_reads_only_new_rows(void)
{
	record_then_ship("ship-h", "hi", 30000);
	size_t before = count_segments(path_of("shipped/%s", "ship-h"));
	CHECK(before >= 1);
	counting_vfs_install();
	struct usage_config cfg = {.ship_dir = path_of("shipped/%s", "ship-h"), .ship_interval_ms = 50,
				   .flush_interval_ms = 5};
	struct usage *u = open_host("ship-h", &cfg);
	sleep_ms(300);                               /* opened, the shipper idle */
	atomic_store(&db_reads, 0);
	record(u, event("hi", "cat", "sales", "orders", "1.0.0", "orders.csv", USAGE_DATA, USAGE_ALLOW,
			D + 2 * DAY), 1, 1, 1);
	double until = mono() + 20;
	while (count_segments(path_of("shipped/%s", "ship-h")) == before && mono() < until)
		sleep_ms(20);
	unsigned long reads = atomic_load(&db_reads);
	CHECK(count_segments(path_of("shipped/%s", "ship-h")) == before + 1);
	printf("  ship-h: one event shipped past 30,000 kept ones: %lu reads of usage.db\n", reads);
	CHECK(reads < 200);                          /* a scan of 30,000 rows reads about 1,000 pages */
	CHECK(usage_close(u) == 0);
	sqlite3_vfs_unregister(&counting_vfs);
}

/* A host ships closed segments; another host's report reads them, counts
 * an event shipped incomplete and then complete once, and names a host
 * whose segment it cannot read. */
static void test_shipping(void)
{
	CHECK(mkdir(path_of("%s", "shipped"), 0755) == 0);
	CHECK(mkdir(path_of("%s", "nolocal"), 0755) == 0);
	struct usage_config cfg = {.ship_dir = path_of("shipped/%s", "ship-a"), .ship_interval_ms = 50,
				   .flush_interval_ms = 10};
	struct usage *u = open_host("ship-a", &cfg);
	record(u, event("bob", "cat", "sales", "orders", "1.0.0", "orders.csv", USAGE_DATA, USAGE_ALLOW, D + DAY),
	       10, 1, 500);
	/* an open in progress for more than a second ships as incomplete */
	struct usage_open_info in = event("ann", "cat", "sales", "orders", "1.0.0", "orders.csv", USAGE_DATA,
					  USAGE_ALLOW, D + DAY + NS);
	uint64_t h;
	CHECK(usage_begin(u, &in, &h) == 0);
	sleep_ms(1500);
	size_t before = count_segments(path_of("shipped/%s", "ship-a"));
	struct usage_stats ss;
	usage_stats(u, &ss);
	if (before < 1)
		fprintf(stderr, "no segment shipped: %s\n", ss.last_error);
	CHECK(before >= 1);
	size_t warnings = 99;
	uint64_t got = shipped_reads(path_of("%s", "nolocal"), "ship-a", &warnings);
	if (got != 501)
		fprintf(stderr, "shipped reads %llu, warnings %zu\n", (unsigned long long)got, warnings);
	CHECK(got == 501);
	CHECK(warnings == 0);
	usage_end(u, h, 7, 1, 0);
	CHECK(usage_close(u) == 0);
	CHECK(count_segments(path_of("shipped/%s", "ship-a")) > before);
	CHECK(shipped_reads(path_of("%s", "nolocal"), "ship-a", &warnings) == 501);   /* once, not twice */
	/* nothing left in temporary names */
	DIR *d = opendir(path_of("shipped/%s", "ship-a"));
	struct dirent *de;
	int tmp = 0;
	while (d && (de = readdir(d)))
		tmp += de->d_name[0] == '.' && strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	if (d)
		closedir(d);
	CHECK(tmp == 0);
	/* the host's own database is preferred where it records (here it is
	 * the same numbers) */
	CHECK(shipped_reads(path_of("%s", "usage"), "ship-a", &warnings) == 501);
	/* a busy host's many small segments are merged: counts stay exact */
	struct usage_config cc = {.ship_dir = path_of("shipped/%s", "ship-c"), .ship_interval_ms = 20,
				  .flush_interval_ms = 5};
	struct usage *c = open_host("ship-c", &cc);
	for (int i = 0; i < 45; i++) {
		record(c, event("cy", "cat", "sales", "orders", "1.0.0", "orders.csv", USAGE_DATA, USAGE_ALLOW,
				D + DAY + i * NS), 1, 1, 3);
		sleep_ms(45);
	}
	CHECK(usage_close(c) == 0);
	size_t segs = count_segments(path_of("shipped/%s", "ship-c"));
	printf("  ship-c: 45 bursts shipped as %zu segment(s) after merging\n", segs);
	CHECK(segs >= 1 && segs <= 33);
	CHECK(shipped_reads(path_of("%s", "nolocal"), "ship-c", &warnings) == 135);
	CHECK(warnings == 0);
	/* size tiered: a large segment is not copied again by the merges of
	 * the small ones that follow it (merging everything each time copied a
	 * busy host's whole history every few dozen seconds) */
	struct usage_config cd = {.ship_dir = path_of("shipped/%s", "ship-d"), .ship_interval_ms = 20,
				  .flush_interval_ms = 5};
	/* the 20,000 shipped as one segment first (a shipper that never wakes,
	 * then a clean stop ships them together: timing-free, where a running
	 * shipper split them over as many segments as a slow machine made) */
	struct usage_config once = cd;
	once.ship_interval_ms = 600000;
	struct usage *dd = open_host("ship-d", &once);
	record(dd, event("di", "cat", "sales", "orders", "1.0.0", "orders.csv", USAGE_DATA, USAGE_ALLOW, D + DAY),
	       1, 1, 20000);
	CHECK(usage_close(dd) == 0);
	char big[512] = "";
	DIR *sd = opendir(path_of("shipped/%s", "ship-d"));
	struct dirent *e;
	size_t n_big = 0;
	while (sd && (e = readdir(sd)))
		if (!strncmp(e->d_name, "seg-", 4) && n_big++ == 0)
			snprintf(big, sizeof big, "%s", e->d_name);
	if (sd)
		closedir(sd);
	CHECK(n_big == 1);
	/* 80 small bursts: their merges leave the large segment alone */
	dd = open_host("ship-d", &cd);
	for (int i = 0; i < 80; i++) {
		record(dd, event("di", "cat", "sales", "orders", "1.0.0", "orders.csv", USAGE_DATA, USAGE_ALLOW,
				 D + DAY + (i + 1) * NS), 1, 1, 1);
		sleep_ms(45);
	}
	CHECK(big[0] != '\0');
	CHECK(usage_close(dd) == 0);
	char big_path[1024];
	snprintf(big_path, sizeof big_path, "%s/%s", path_of("shipped/%s", "ship-d"), big);
	CHECK(access(big_path, F_OK) == 0);                     /* never merged again */
	segs = count_segments(path_of("shipped/%s", "ship-d"));
	printf("  ship-d: 20000 events and 80 bursts as %zu segment(s), the large one kept\n", segs);
	CHECK(segs >= 2 && segs <= 33);                          /* the small ones were merged */
	CHECK(shipped_reads(path_of("%s", "nolocal"), "ship-d", &warnings) == 20080);
	CHECK(warnings == 0);
	/* an unreadable segment: the host is named, the others still count */
	FILE *f = fopen(path_of("shipped/%s", "ship-b/seg-000000000001-1-2.db"), "w");
	if (!f) {
		CHECK(mkdir(path_of("shipped/%s", "ship-b"), 0755) == 0);
		f = fopen(path_of("shipped/%s", "ship-b/seg-000000000001-1-2.db"), "w");
	}
	fputs("this is not a database, it is a damaged copy", f);
	fclose(f);
	CHECK(shipped_reads(path_of("%s", "nolocal"), "ship-a", &warnings) == 501);
	CHECK(warnings == 1);
	CHECK(unlink(path_of("shipped/%s", "ship-b/seg-000000000001-1-2.db")) == 0);   /* the next tests count warnings */
}

/* ---- shipping by a watermark: every event shipped, read once ---- */

/* What a host's segments hold against its usage.db: *rows (every copy),
 * *distinct (event ids), *stale (events of usage.db not shipped as they are
 * now: missing, or only an older copy: incomplete, other bytes), *foreign
 * (shipped ids usage.db does not have).  Each segment is read apart and
 * merged as readers do (the complete row over an incomplete one).  false:
 * a segment went away while it was read (merged by its running host). */
static bool census_once(const char *host, int64_t out[4])
{
	sqlite3 *db;
	CHECK(sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI, NULL) ==
	      SQLITE_OK);
	CHECK(sqlite3_exec(db, "CREATE TABLE r(event_id); CREATE TABLE m(event_id INTEGER PRIMARY KEY, complete, bytes)",
			   NULL, NULL, NULL) == SQLITE_OK);
	bool whole = true;
	DIR *d = opendir(path_of("shipped/%s", host));
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (strncmp(de->d_name, "seg-", 4))
			continue;
		char sql[1400], path[1024];
		snprintf(path, sizeof path, "%s/%s", path_of("shipped/%s", host), de->d_name);
		snprintf(sql, sizeof sql, "ATTACH 'file:%s?immutable=1' AS s; INSERT INTO r SELECT event_id FROM s.events;"
			 "INSERT INTO m SELECT event_id, complete, bytes FROM s.events WHERE true ON CONFLICT(event_id)"
			 " DO UPDATE SET complete = excluded.complete, bytes = excluded.bytes"
			 " WHERE excluded.complete >= m.complete", path);
		char *msg = NULL;
		if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
			if (access(path, F_OK) < 0)
				whole = false;
			else
				fprintf(stderr, "%s: %s\n", de->d_name, msg);
			CHECK(!whole || msg == NULL);
		}
		sqlite3_exec(db, "DETACH s", NULL, NULL, NULL);
		sqlite3_free(msg);
	}
	if (d)
		closedir(d);
	char sql[1400];
	snprintf(sql, sizeof sql, "ATTACH 'file:%s?mode=ro' AS h", path_of("usage/%s/usage.db", host));
	CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, "SELECT (SELECT count(*) FROM r), (SELECT count(*) FROM m),"
			       " (SELECT count(*) FROM h.events e WHERE NOT EXISTS (SELECT 1 FROM m WHERE m.event_id ="
			       " e.event_id AND m.complete = e.complete AND m.bytes = e.bytes)),"
			       " (SELECT count(*) FROM m WHERE m.event_id NOT IN (SELECT event_id FROM h.events))",
			       -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		for (int i = 0; i < 4; i++)
			out[i] = sqlite3_column_int64(st, i);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return whole;
}

static void shipped_census(const char *host, int64_t *rows, int64_t *distinct, int64_t *stale, int64_t *foreign)
{
	int64_t out[4] = {-1, -1, -1, -1};
	for (int attempt = 0; attempt < 5 && !census_once(host, out); attempt++)
		;
	*rows = out[0];
	*distinct = out[1];
	*stale = out[2];
	*foreign = out[3];
}

static int64_t meta_value(const char *host, const char *key)
{
	char sql[200];
	snprintf(sql, sizeof sql, "SELECT coalesce((SELECT value FROM meta WHERE key = '%s'), -1)", key);
	return sql_int(path_of("usage/%s/usage.db", host), sql);
}

struct ship_storm {
	struct usage *u;
	int n, held_every;
	uint64_t *held;           /* handles of opens held past the storm */
	size_t n_held;
};

static void *ship_storm_main(void *arg)
{
	struct ship_storm *st = arg;
	for (int i = 0; i < st->n; i++) {
		struct usage_open_info in = event("storm", "cat", "sales", "orders", "1.0.0", "orders.csv", USAGE_DATA,
						  USAGE_ALLOW, D + DAY + i * 1000);
		uint64_t h;
		CHECK(usage_begin(st->u, &in, &h) == 0);
		if (i % st->held_every == 0)
			st->held[st->n_held++] = h;
		else
			usage_end(st->u, h, 3, 1, 1000);
		if (i % 500 == 0)
			sleep_ms(10);      /* spread over many ship rounds */
	}
	return NULL;
}

/* A storm from 4 threads with a shipper that runs every 20 ms, some opens
 * held for 1.5 s (written incomplete, their range shipped, then closed:
 * late rows): every event is in the segments as it is in usage.db, and a
 * report reads each once. */
static void test_shipping_storm(void)
{
	enum { THREADS = 4, PER = 3000, HELD_EVERY = 300 };
	struct usage_config cfg = {.ship_dir = path_of("shipped/%s", "ship-s"), .ship_interval_ms = 20,
				   .flush_interval_ms = 5};
	struct usage *u = open_host("ship-s", &cfg);
	struct ship_storm st[THREADS];
	pthread_t t[THREADS];
	for (int k = 0; k < THREADS; k++) {
		st[k] = (struct ship_storm){.u = u, .n = PER, .held_every = HELD_EVERY,
					   .held = calloc(PER / HELD_EVERY + 1, sizeof(uint64_t))};
		CHECK(pthread_create(&t[k], NULL, ship_storm_main, &st[k]) == 0);
	}
	for (int k = 0; k < THREADS; k++)
		pthread_join(t[k], NULL);
	sleep_ms(1500);
	for (int k = 0; k < THREADS; k++) {
		for (size_t i = 0; i < st[k].n_held; i++)
			usage_end(u, st[k].held[i], 7, 2, 0);
		free(st[k].held);
	}
	/* shipped by the running shipper (not by the clean stop) */
	int64_t rows, distinct, stale, foreign;
	double until = mono() + 20;
	do {
		sleep_ms(50);
		shipped_census("ship-s", &rows, &distinct, &stale, &foreign);
	} while ((stale != 0 || distinct != THREADS * PER) && mono() < until);
	printf("  ship-s: %d events shipped as %lld rows in %zu segment(s) while running\n", THREADS * PER,
	       (long long)rows, count_segments(path_of("shipped/%s", "ship-s")));
	CHECK(distinct == THREADS * PER && stale == 0 && foreign == 0);
	CHECK(usage_close(u) == 0);
	shipped_census("ship-s", &rows, &distinct, &stale, &foreign);
	CHECK(distinct == THREADS * PER && stale == 0 && foreign == 0);
	CHECK(sql_int(path_of("usage/%s/usage.db", "ship-s"), "SELECT count(*) FROM events") == THREADS * PER);
	CHECK(sql_int(path_of("usage/%s/usage.db", "ship-s"), "SELECT count(*) FROM ship_queue") == 0);
	CHECK(meta_value("ship-s", "ship_pending") == -1);
	CHECK(meta_value("ship-s", "ship_mark") ==
	      sql_int(path_of("usage/%s/usage.db", "ship-s"), "SELECT max(event_id) FROM events"));
	size_t warnings = 99;
	CHECK(shipped_reads(path_of("%s", "nolocal"), "ship-s", &warnings) == THREADS * PER);
	CHECK(warnings == 0);
}

/* An open held while the mark passes it, then closed: its final row is
 * queued as late and ships in a later segment. */
static void test_shipping_late_row(void)
{
	struct usage_config cfg = {.ship_dir = path_of("shipped/%s", "ship-l"), .ship_interval_ms = 20,
				   .flush_interval_ms = 5};
	struct usage *u = open_host("ship-l", &cfg);
	char db[512];
	snprintf(db, sizeof db, "%s", path_of("usage/%s/usage.db", "ship-l"));   /* path_of's buffers rotate */
	struct usage_open_info in = event("late", "cat", "sales", "orders", "1.0.0", "orders.csv", USAGE_DATA,
					  USAGE_ALLOW, D + DAY);
	uint64_t h;
	CHECK(usage_begin(u, &in, &h) == 0);
	record(u, event("on", "cat", "sales", "orders", "1.0.0", "orders.csv", USAGE_DATA, USAGE_ALLOW, D + DAY + NS),
	       1, 1, 50);
	/* written incomplete after a second; the mark passes it and the 50 */
	int64_t id = -1;
	double until = mono() + 10;
	while (mono() < until) {
		id = sql_int(db, "SELECT coalesce((SELECT event_id FROM events WHERE complete = 0), -1)");
		if (id > 0 && meta_value("ship-l", "ship_mark") >= id + 50 && meta_value("ship-l", "ship_pending") == -1 &&
		    sql_int(db, "SELECT count(*) FROM ship_queue") == 0)
			break;
		sleep_ms(20);
	}
	CHECK(id > 0 && meta_value("ship-l", "ship_mark") >= id + 50);
	int64_t rows, distinct, stale, foreign;
	shipped_census("ship-l", &rows, &distinct, &stale, &foreign);
	CHECK(distinct == 51 && stale == 0);         /* the open one shipped incomplete, as it is */
	size_t segs = count_segments(path_of("shipped/%s", "ship-l"));
	usage_end(u, h, 7, 1, 0);
	until = mono() + 10;
	do {
		sleep_ms(20);
		shipped_census("ship-l", &rows, &distinct, &stale, &foreign);
	} while ((stale != 0 || sql_int(db, "SELECT count(*) FROM ship_queue") != 0) && mono() < until);
	CHECK(stale == 0 && distinct == 51 && foreign == 0);     /* its final row, shipped late */
	CHECK(count_segments(path_of("shipped/%s", "ship-l")) > segs);
	CHECK(sql_int(db, "SELECT count(*) FROM ship_queue") == 0);
	CHECK(usage_close(u) == 0);
	size_t warnings = 99;
	CHECK(shipped_reads(path_of("%s", "nolocal"), "ship-l", &warnings) == 51);
}

/* A backlog past SEGMENT_MAX_EVENTS (100,000) ships as several segments,
 * each range cut at that many rows. */
static void test_shipping_cap(void)
{
	record_then_ship("ship-m", "cap", 100050);
	CHECK(count_segments(path_of("shipped/%s", "ship-m")) == 2);
	int64_t rows, distinct, stale, foreign;
	shipped_census("ship-m", &rows, &distinct, &stale, &foreign);
	CHECK(rows == 100050 && distinct == 100050 && stale == 0 && foreign == 0);
	DIR *d = opendir(path_of("shipped/%s", "ship-m"));
	struct dirent *de;
	int64_t biggest = 0;
	while (d && (de = readdir(d))) {
		if (strncmp(de->d_name, "seg-", 4))
			continue;
		char path[1024];
		snprintf(path, sizeof path, "%s/%s", path_of("shipped/%s", "ship-m"), de->d_name);
		int64_t n = sql_int(path, "SELECT count(*) FROM events");
		biggest = n > biggest ? n : biggest;
	}
	if (d)
		closedir(d);
	CHECK(biggest == 100000);
}

/* A usage.db of the queue design: rows shipped (in a segment) and rows
 * still queued, no ship_mark.  The first open sets the mark at the newest
 * row: the queued ones ship as late rows, the shipped ones are not shipped
 * again, new ones ship by range.  A database that never shipped (no
 * ship_queue) ships its whole history. */
static void test_shipping_migration(void)
{
	/* 300 events recorded without shipping, then made into the queue
	 * design's state: the 200 oldest shipped in segment 1, except one
	 * completed late and queued again, and the 100 newest queued */
	struct usage *u = open_host("ship-g", NULL);
	record(u, event("mig", "cat", "sales", "orders", "1.0.0", "orders.csv", USAGE_DATA, USAGE_ALLOW, D + DAY),
	       1, 1, 300);
	CHECK(usage_close(u) == 0);
	char db_path[512];
	snprintf(db_path, sizeof db_path, "%s", path_of("usage/%s/usage.db", "ship-g"));
	CHECK(mkdir(path_of("shipped/%s", "ship-g"), 0700) == 0);
	sqlite3 *db;
	CHECK(sqlite3_open(db_path, &db) == SQLITE_OK);
	int64_t cut = sql_int(db_path, "SELECT event_id FROM events ORDER BY event_id LIMIT 1 OFFSET 199");
	int64_t again = sql_int(db_path, "SELECT event_id FROM events ORDER BY event_id LIMIT 1 OFFSET 99");
	char sql[2000];
	snprintf(sql, sizeof sql,
		 "CREATE TABLE ship_queue(event_id INTEGER PRIMARY KEY, ver INTEGER NOT NULL);"
		 "INSERT INTO ship_queue SELECT event_id, 1 FROM events WHERE event_id > %lld OR event_id = %lld;"
		 "INSERT INTO meta VALUES('ship_seq', 1);"
		 "ATTACH '%s/seg-000000000001-1-%lld.db' AS s;"
		 "CREATE TABLE s.events AS SELECT * FROM main.events WHERE event_id <= %lld;"
		 "CREATE TABLE s.meta(key TEXT PRIMARY KEY, value);"
		 "INSERT INTO s.meta VALUES('layout', %d), ('seq', 1), ('host', 'ship-g'); DETACH s;",
		 (long long)cut, (long long)again, path_of("shipped/%s", "ship-g"), (long long)cut, (long long)cut,
		 USAGE_DB_LAYOUT);
	CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);
	CHECK(sql_int(db_path, "SELECT count(*) FROM ship_queue") == 101);
	CHECK(meta_value("ship-g", "ship_mark") == -1);

	struct usage_config cfg = {.ship_dir = path_of("shipped/%s", "ship-g"), .ship_interval_ms = 20,
				   .flush_interval_ms = 5};
	u = open_host("ship-g", &cfg);
	record(u, event("mig", "cat", "sales", "orders", "1.0.0", "orders.csv", USAGE_DATA, USAGE_ALLOW,
			D + DAY + NS), 1, 1, 20);
	CHECK(usage_close(u) == 0);
	int64_t rows, distinct, stale, foreign;
	shipped_census("ship-g", &rows, &distinct, &stale, &foreign);
	if (rows != 321)
		fprintf(stderr, "migration: %lld rows shipped, %lld events\n", (long long)rows, (long long)distinct);
	CHECK(rows == 321 && distinct == 320 && stale == 0 && foreign == 0);   /* only the late one twice */
	CHECK(sql_int(db_path, "SELECT count(*) FROM ship_queue") == 0);
	size_t warnings = 99;
	CHECK(shipped_reads(path_of("%s", "nolocal"), "ship-g", &warnings) == 320);

	/* never shipped: everything ships */
	u = open_host("ship-n", NULL);
	record(u, event("new", "cat", "sales", "orders", "1.0.0", "orders.csv", USAGE_DATA, USAGE_ALLOW, D + DAY),
	       1, 1, 40);
	CHECK(usage_close(u) == 0);
	cfg.ship_dir = path_of("shipped/%s", "ship-n");
	u = open_host("ship-n", &cfg);
	CHECK(usage_close(u) == 0);
	shipped_census("ship-n", &rows, &distinct, &stale, &foreign);
	CHECK(rows == 40 && distinct == 40 && stale == 0 && foreign == 0);
}

/* A round that marked its range and could not write the segment (the ship
 * directory is a file), then kill -9: the range stays pending, no new mark
 * is taken over it, and the next start ships it before anything else. */
static void test_shipping_pending_after_kill(void)
{
	enum { N = 500 };
	char ship[512];
	snprintf(ship, sizeof ship, "%s", path_of("shipped/%s", "ship-k"));
	int fd = open(ship, O_WRONLY | O_CREAT | O_EXCL, 0600);
	CHECK(fd >= 0);
	close(fd);
	pid_t child = fork();
	if (child == 0) {
		/* the shipper's first round after the writer's first batch */
		struct usage_config cfg = {.ship_dir = path_of("shipped/%s", "ship-k"), .ship_interval_ms = 300,
					   .flush_interval_ms = 5, .hostname = "ship-k"};
		struct usage *u = NULL;
		if (usage_open(path_of("usage/%s", "ship-k"), &cfg, &u, NULL))
			_exit(2);
		record(u, event("kill", "cat", "sales", "orders", "1.0.0", "orders.csv", USAGE_DATA, USAGE_ALLOW,
				D + DAY), 1, 1, N);
		if (!wait_drained(u, 10))
			_exit(3);
		/* the mark moved over every event, and the copy failed (it
		 * cannot have succeeded: there is no directory) */
		double until = mono() + 10;
		while (mono() < until && !(meta_value("ship-k", "ship_pending") >= 0 &&
					   meta_value("ship-k", "ship_mark") ==
					   sql_int(path_of("usage/%s/usage.db", "ship-k"), "SELECT max(event_id) FROM events")))
			sleep_ms(10);
		sleep_ms(100);      /* a few more failed rounds */
		raise(SIGKILL);
		_exit(4);
	}
	int status;
	waitpid(child, &status, 0);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	char db[512];
	snprintf(db, sizeof db, "%s", path_of("usage/%s/usage.db", "ship-k"));
	int64_t pending = meta_value("ship-k", "ship_pending");
	CHECK(pending >= 0 && pending < sql_int(db, "SELECT min(event_id) FROM events"));
	CHECK(meta_value("ship-k", "ship_mark") == sql_int(db, "SELECT max(event_id) FROM events"));
	CHECK(sql_int(db, "SELECT count(*) FROM events") == N);
	CHECK(unlink(ship) == 0 && mkdir(ship, 0700) == 0);
	struct usage_config cfg = {.ship_dir = ship, .ship_interval_ms = 20, .flush_interval_ms = 5};
	struct usage *u = open_host("ship-k", &cfg);
	double until = mono() + 10;
	while (meta_value("ship-k", "ship_pending") >= 0 && mono() < until)
		sleep_ms(20);
	CHECK(meta_value("ship-k", "ship_pending") == -1);
	int64_t rows, distinct, stale, foreign;
	shipped_census("ship-k", &rows, &distinct, &stale, &foreign);
	CHECK(rows == N && distinct == N && stale == 0 && foreign == 0);
	CHECK(usage_close(u) == 0);
	size_t warnings = 99;
	CHECK(shipped_reads(path_of("%s", "nolocal"), "ship-k", &warnings) == N);
}

int main(void)
{
	snprintf(root, sizeof root, "/tmp/test_usage.XXXXXX");
	if (!mkdtemp(root)) {
		perror("mkdtemp");
		return 1;
	}
	chmod(root, 0755);
	mkdir(path_of("%s", "usage"), 0755);
	test_read_comm();
	test_state_parse();
	test_round_trip();
	test_truncation();
	test_threads("threads", 0);
	test_threads("threads-small", 64);
	test_crash();
	test_free_stack_after_replay();
	test_damaged_slot();
	test_foreign_journal();
	test_journal_full();
	test_unwritable_database();
	test_disk_full();
	test_busy();
	test_reports();
	test_prune();
	test_shipping();
	test_shipping_reads_only_new_rows();
	test_shipping_storm();
	test_shipping_late_row();
	test_shipping_cap();
	test_shipping_migration();
	test_shipping_pending_after_kill();
	if (getenv("USAGE_BENCH"))
		measure(20, 1000000);
	else
		measure(2, 100000);
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
	if (!check_failures && system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", root);
	return check_done("test_usage");
}
