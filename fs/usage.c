/*
 * usage.c - the usage journal and its writer thread (contract in
 * include/usage.h).
 */
#include "usage.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mesh_util.h"

enum { SLOT_FREE = 0, SLOT_BEGUN = 2, SLOT_ENDED = 3, SLOT_ABANDONED = 4 };

/* One journal slot; `state` is written last (release) and read first
 * (acquire), so a slot is either invisible or complete. */
struct slot {
	_Atomic uint32_t state;
	uint32_t magic;
	uint64_t event_id;
	int64_t open_ns, end_ns;
	uint64_t bytes, reads;
	uint32_t uid;
	int32_t pid;
	char decision[8], kind[12];
	char user[32], program[16];
	char domain[65], product[65], version[64];
	char file[160];
};
_Static_assert(sizeof(struct slot) <= USAGE_SLOT_SIZE, "a usage slot fits 512 bytes");

#define SLOT_MAGIC 0x4d455348u   /* "MESH" */

struct usage {
	char *dir, *host, *metrics_path;
	bool serve_when_full;
	unsigned interval_ms, retention_days;
	time_t last_retention;
	int fd, state_fd;
	unsigned char *map;
	size_t n_slots;
	bool *inserted;             /* writer only: begun slot already in SQLite */
	pthread_mutex_t lock;       /* the free stack */
	uint32_t *free_stack;
	size_t n_free;
	uint64_t next_id;           /* under lock */
	sqlite3 *db;                /* writer thread only (and open/close) */
	pthread_t writer;
	pthread_mutex_t wake_lock;
	pthread_cond_t wake;
	bool stop;
	_Atomic uint64_t committed, refused, lost, opens[3], bytes;
	char last_error[256];       /* under wake_lock */
	time_t last_metrics;
};

static struct slot *slot_at(struct usage *u, size_t i)
{
	return (struct slot *)(u->map + i * USAGE_SLOT_SIZE);
}

/* Program names are read from /proc once per pid per second: an open storm
 * from one process costs one read, not one per open.  A name can be a
 * second late after an exec, or a reused pid's within that second. */
#define COMM_SLOTS 256
static struct {
	pid_t pid;
	time_t at;
	char comm[32];
} comm_cache[COMM_SLOTS];
static pthread_mutex_t comm_lock = PTHREAD_MUTEX_INITIALIZER;

void usage_program(pid_t pid, char *buf, size_t size)
{
	snprintf(buf, size, "?");
	if (pid <= 0)
		return;
	time_t now = time(NULL);
	unsigned slot = (unsigned)pid % COMM_SLOTS;
	pthread_mutex_lock(&comm_lock);
	if (comm_cache[slot].pid == pid && comm_cache[slot].at == now) {
		snprintf(buf, size, "%s", comm_cache[slot].comm);
		pthread_mutex_unlock(&comm_lock);
		return;
	}
	pthread_mutex_unlock(&comm_lock);
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;   /* the process is gone */
	char comm[32];
	ssize_t n = read(fd, comm, sizeof comm - 1);
	close(fd);
	if (n <= 0)
		return;
	comm[n] = '\0';
	comm[strcspn(comm, "\n")] = '\0';
	snprintf(buf, size, "%s", comm);
	pthread_mutex_lock(&comm_lock);
	comm_cache[slot].pid = pid;
	comm_cache[slot].at = now;
	snprintf(comm_cache[slot].comm, sizeof comm_cache[slot].comm, "%s", comm);
	pthread_mutex_unlock(&comm_lock);
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static const char schema_sql[] =
	"PRAGMA journal_mode=WAL;"
	"PRAGMA synchronous=NORMAL;"
	"CREATE TABLE IF NOT EXISTS events("
	"  event_id INTEGER PRIMARY KEY, time TEXT NOT NULL, open_ns INTEGER, host TEXT NOT NULL,"
	"  uid INTEGER, user_name TEXT, pid INTEGER, program TEXT, domain TEXT, product TEXT,"
	"  version TEXT, file TEXT, kind TEXT, decision TEXT, bytes INTEGER, reads INTEGER,"
	"  duration_ms REAL, complete INTEGER);"
	"CREATE TABLE IF NOT EXISTS rollups("
	"  day TEXT, host TEXT, domain TEXT, product TEXT, version TEXT, user_name TEXT, program TEXT,"
	"  kind TEXT, decision TEXT, opens INTEGER, bytes INTEGER, last_ns INTEGER);";

static void set_error(struct usage *u, const char *msg)
{
	pthread_mutex_lock(&u->wake_lock);
	size_t n = strnlen(msg, sizeof u->last_error - 1);   /* a long message is cut */
	memcpy(u->last_error, msg, n);
	u->last_error[n] = '\0';
	pthread_mutex_unlock(&u->wake_lock);
}

static int db_open(struct usage *u)
{
	if (u->db)
		return 0;
	char path[4096];
	snprintf(path, sizeof path, "%s/usage.db", u->dir);
	if (sqlite3_open_v2(path, &u->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK ||
	    sqlite3_busy_timeout(u->db, 5000) != SQLITE_OK ||
	    sqlite3_exec(u->db, schema_sql, NULL, NULL, NULL) != SQLITE_OK) {
		set_error(u, u->db ? sqlite3_errmsg(u->db) : "cannot open usage.db");
		sqlite3_close(u->db);
		u->db = NULL;
		return -EIO;
	}
	chmod(path, 0644);
	return 0;
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
	sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
}

/* An open still in progress goes into SQLite once it has lasted a second
 * (so reports see long reads); until then the journal alone holds it, and
 * most opens end first and are written once. */
static bool old_enough(const struct slot *s, int64_t now)
{
	return now - s->open_ns > 1000000000LL;
}

/* Move every visible slot into SQLite in one transaction; free ended ones.
 * Returns the number of slots freed, or -1 when SQLite failed. */
static int flush(struct usage *u)
{
	int64_t now = now_ns();
	size_t work = 0;
	for (size_t i = 0; i < u->n_slots; i++) {
		uint32_t state = atomic_load_explicit(&slot_at(u, i)->state, memory_order_acquire);
		work += state == SLOT_ENDED || state == SLOT_ABANDONED ||
			(state == SLOT_BEGUN && !u->inserted[i] && old_enough(slot_at(u, i), now));
	}
	if (!work)
		return 0;
	if (db_open(u))
		return -1;
	uint32_t *freed = xmalloc(u->n_slots * sizeof *freed);
	size_t n_freed = 0, n_inserted = 0;
	bool *newly = xcalloc(u->n_slots, sizeof *newly);
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_exec(u->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(u->db,
			"INSERT OR REPLACE INTO events VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", -1, &st, NULL);
	for (size_t i = 0; rc == SQLITE_OK && i < u->n_slots; i++) {
		struct slot *s = slot_at(u, i);
		uint32_t state = atomic_load_explicit(&s->state, memory_order_acquire);
		if (state != SLOT_BEGUN && state != SLOT_ENDED && state != SLOT_ABANDONED)
			continue;
		if (s->magic != SLOT_MAGIC)
			continue;
		if (state == SLOT_BEGUN && (u->inserted[i] || !old_enough(s, now)))
			continue;   /* already in, or young: its end will come soon, write once then */
		char when[40];
		struct timespec ts = {s->open_ns / 1000000000, s->open_ns % 1000000000};
		mesh_time_rfc3339(&ts, when, sizeof when);
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, (int64_t)s->event_id);
		bind_text(st, 2, when);
		sqlite3_bind_int64(st, 3, s->open_ns);
		bind_text(st, 4, u->host);
		sqlite3_bind_int64(st, 5, s->uid);
		bind_text(st, 6, s->user);
		sqlite3_bind_int64(st, 7, s->pid);
		bind_text(st, 8, s->program);
		bind_text(st, 9, s->domain);
		bind_text(st, 10, s->product);
		bind_text(st, 11, s->version);
		bind_text(st, 12, s->file);
		bind_text(st, 13, s->kind);
		bind_text(st, 14, s->decision);
		/* an open a dead daemon never saw end: recorded, marked incomplete */
		bool ended = state == SLOT_ENDED;
		sqlite3_bind_int64(st, 15, ended ? (int64_t)s->bytes : 0);
		sqlite3_bind_int64(st, 16, ended ? (int64_t)s->reads : 0);
		if (ended)
			sqlite3_bind_double(st, 17, (double)(s->end_ns - s->open_ns) / 1e6);
		else
			sqlite3_bind_null(st, 17);
		sqlite3_bind_int(st, 18, ended);
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
		if (state != SLOT_BEGUN)
			freed[n_freed++] = (uint32_t)i;
		else
			newly[i] = true;
		n_inserted++;
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_OK && n_inserted)
		rc = sqlite3_exec(u->db, "COMMIT", NULL, NULL, NULL);
	else if (rc == SQLITE_OK)
		rc = sqlite3_exec(u->db, "ROLLBACK", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		set_error(u, sqlite3_errmsg(u->db));
		sqlite3_exec(u->db, "ROLLBACK", NULL, NULL, NULL);
		free(freed);
		free(newly);
		return -1;
	}
	/* committed: only now do the journal slots go */
	for (size_t i = 0; i < u->n_slots; i++)
		if (newly[i])
			u->inserted[i] = true;
	pthread_mutex_lock(&u->lock);
	for (size_t k = 0; k < n_freed; k++) {
		struct slot *s = slot_at(u, freed[k]);
		uint32_t was = atomic_exchange_explicit(&s->state, SLOT_FREE, memory_order_acq_rel);
		u->inserted[freed[k]] = false;
		/* only a slot this flush saw ended goes back, once: the stack can
		 * never hold more than n_slots entries */
		if ((was == SLOT_ENDED || was == SLOT_ABANDONED) && u->n_free < u->n_slots)
			u->free_stack[u->n_free++] = freed[k];
	}
	pthread_mutex_unlock(&u->lock);
	atomic_fetch_add(&u->committed, n_freed);
	if (n_inserted)
		set_error(u, "");
	free(freed);
	free(newly);
	return (int)n_freed;
}

static void write_metrics(struct usage *u)
{
	if (!u->metrics_path)
		return;
	struct usage_stats s;
	usage_get_stats(u, &s);
	char tmp[4200];
	snprintf(tmp, sizeof tmp, "%s.tmp", u->metrics_path);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return;
	fprintf(f, "# HELP meshfs_opens_total Data opens through the mount, by decision.\n"
		"# TYPE meshfs_opens_total counter\n"
		"meshfs_opens_total{host=\"%s\",decision=\"allow\"} %llu\n"
		"meshfs_opens_total{host=\"%s\",decision=\"mask\"} %llu\n"
		"meshfs_opens_total{host=\"%s\",decision=\"deny\"} %llu\n"
		"# HELP meshfs_read_bytes_total Bytes served by the daemon.\n# TYPE meshfs_read_bytes_total counter\n"
		"meshfs_read_bytes_total{host=\"%s\"} %llu\n"
		"# HELP meshfs_usage_journal_backlog Events waiting in the journal.\n# TYPE meshfs_usage_journal_backlog gauge\n"
		"meshfs_usage_journal_backlog{host=\"%s\"} %llu\n"
		"# HELP meshfs_usage_journal_capacity Journal slots.\n# TYPE meshfs_usage_journal_capacity gauge\n"
		"meshfs_usage_journal_capacity{host=\"%s\"} %llu\n"
		"# HELP meshfs_usage_refused_total Opens refused because usage could not be recorded.\n"
		"# TYPE meshfs_usage_refused_total counter\nmeshfs_usage_refused_total{host=\"%s\"} %llu\n"
		"# HELP meshfs_usage_lost_total Events served without a record (serve_when_full).\n"
		"# TYPE meshfs_usage_lost_total counter\nmeshfs_usage_lost_total{host=\"%s\"} %llu\n",
		u->host, (unsigned long long)s.opens_allow, u->host, (unsigned long long)s.opens_mask, u->host,
		(unsigned long long)s.opens_deny, u->host, (unsigned long long)s.bytes, u->host,
		(unsigned long long)s.backlog, u->host, (unsigned long long)s.capacity, u->host,
		(unsigned long long)s.refused, u->host, (unsigned long long)s.lost);
	if (fclose(f) == 0)
		rename(tmp, u->metrics_path);
}

/* The state file `meshctl status` reads: preallocated at open and
 * rewritten in place, so it can be updated while the disk is full (which
 * is when it matters most). */
#define STATE_SIZE 1024

static void write_state(struct usage *u)
{
	struct usage_stats s;
	usage_get_stats(u, &s);
	char text[STATE_SIZE];
	int n = snprintf(text, sizeof text,
		"host %s\npid %d\ncapacity %llu\nbacklog %llu\ncommitted %llu\nrefused %llu\nlost %llu\n"
		"opens_allow %llu\nopens_mask %llu\nopens_deny %llu\nbytes %llu\nupdated %lld\nlast_error %s\n",
		u->host, (int)getpid(), (unsigned long long)s.capacity, (unsigned long long)s.backlog,
		(unsigned long long)s.committed, (unsigned long long)s.refused, (unsigned long long)s.lost,
		(unsigned long long)s.opens_allow, (unsigned long long)s.opens_mask, (unsigned long long)s.opens_deny,
		(unsigned long long)s.bytes, (long long)time(NULL), s.last_error[0] ? s.last_error : "-");
	if (n < 0)
		return;
	if ((size_t)n >= sizeof text)
		n = sizeof text - 1;
	memset(text + n, ' ', sizeof text - (size_t)n - 1);   /* blank out the rest */
	text[sizeof text - 1] = '\n';
	if (u->state_fd >= 0 && pwrite(u->state_fd, text, sizeof text, 0) < 0)
		set_error(u, "cannot write the state file");
}

long usage_fold(void *sqlite_db, int64_t before_ns, struct mesh_err *err)
{
	sqlite3 *db = sqlite_db;
	sqlite3_stmt *st = NULL;
	long folded = -1;
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	if (sqlite3_prepare_v2(db,
		"INSERT INTO rollups SELECT substr(time,1,10), host, domain, product, version, user_name, program, "
		"kind, decision, count(*), sum(bytes), max(open_ns) FROM events WHERE open_ns < ?1 "
		"GROUP BY 1,2,3,4,5,6,7,8,9", -1, &st, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_int64(st, 1, before_ns);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto fail;
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(db, "DELETE FROM events WHERE open_ns < ?1", -1, &st, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_int64(st, 1, before_ns);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto fail;
	folded = sqlite3_changes(db);
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		folded = -1;
		goto fail;
	}
	return folded;
fail:
	mesh_errf(err, -EIO, "usage rollup: %s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/* mesh.yaml usage.retentionDays: applied by the writer once an hour. */
static void apply_retention(struct usage *u)
{
	time_t now = time(NULL);
	if (!u->retention_days || now - u->last_retention < 3600 || db_open(u))
		return;
	u->last_retention = now;
	struct mesh_err err = {0};
	int64_t before = ((int64_t)now - (int64_t)u->retention_days * 86400) * 1000000000LL;
	if (usage_fold(u->db, before, &err) < 0)
		set_error(u, err.msg);
}

static void *writer_main(void *arg)
{
	struct usage *u = arg;
	/* the journal only drains as fast as this thread runs: when the FUSE
	 * workers and the readers keep every core busy it must still get its
	 * turn (allowed as root; otherwise the default priority stays) */
	setpriority(PRIO_PROCESS, (id_t)gettid(), -10);
	unsigned backoff = u->interval_ms;
	for (;;) {
		pthread_mutex_lock(&u->wake_lock);
		if (!u->stop) {
			struct timespec until;
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_nsec += (long)backoff * 1000000L;
			until.tv_sec += until.tv_nsec / 1000000000L;
			until.tv_nsec %= 1000000000L;
			pthread_cond_timedwait(&u->wake, &u->wake_lock, &until);
		}
		bool stop = u->stop;
		pthread_mutex_unlock(&u->wake_lock);
		int r = flush(u);
		/* SQLite failing (disk full, read-only): retry less often, up to 2 s */
		backoff = r < 0 ? (backoff * 2 > 2000 ? 2000 : backoff * 2) : u->interval_ms;
		apply_retention(u);
		if (time(NULL) != u->last_metrics) {
			u->last_metrics = time(NULL);
			write_state(u);
			write_metrics(u);
		}
		if (stop)
			break;
	}
	return NULL;
}

int usage_open(const char *dir, const struct usage_config *cfg, struct usage **out, struct mesh_err *err)
{
	struct usage *u = xcalloc(1, sizeof *u);
	u->dir = xstrdup(dir);
	char host[256] = "localhost";
	if (cfg->hostname)
		snprintf(host, sizeof host, "%s", cfg->hostname);
	else
		gethostname(host, sizeof host - 1);
	u->host = xstrdup(host);
	u->metrics_path = cfg->metrics_path ? xstrdup(cfg->metrics_path) : NULL;
	u->serve_when_full = cfg->serve_when_full;
	u->interval_ms = cfg->interval_ms ? cfg->interval_ms : 50;
	u->retention_days = cfg->retention_days;
	u->n_slots = cfg->slots ? cfg->slots : USAGE_DEFAULT_SLOTS;
	u->fd = u->state_fd = -1;
	pthread_mutex_init(&u->lock, NULL);
	pthread_mutex_init(&u->wake_lock, NULL);
	pthread_cond_init(&u->wake, NULL);
	int rc = 0;
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		rc = mesh_errf(err, -errno, "%s: %s", dir, strerror(errno));
	char path[4096];
	snprintf(path, sizeof path, "%s/journal", dir);
	size_t size = u->n_slots * USAGE_SLOT_SIZE;
	if (!rc && (u->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0)
		rc = mesh_errf(err, -errno, "%s: %s", path, strerror(errno));
	struct stat st;
	if (!rc && fstat(u->fd, &st) == 0 && (size_t)st.st_size > size) {
		/* a larger journal from an earlier run: keep (and replay) it all */
		u->n_slots = (size_t)st.st_size / USAGE_SLOT_SIZE;
		size = u->n_slots * USAGE_SLOT_SIZE;
	}
	/* preallocated: appending an event never needs a new block (no ENOSPC) */
	int e = rc ? 0 : posix_fallocate(u->fd, 0, (off_t)size);
	if (!rc && e)
		rc = mesh_errf(err, -e, "%s: cannot preallocate %zu bytes: %s", path, size, strerror(e));
	if (!rc && (u->map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, u->fd, 0)) == MAP_FAILED) {
		u->map = NULL;
		rc = mesh_errf(err, -errno, "%s: mmap: %s", path, strerror(errno));
	}
	snprintf(path, sizeof path, "%s/state", dir);
	if (!rc && ((u->state_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644)) < 0 ||
		    (e = posix_fallocate(u->state_fd, 0, STATE_SIZE)) != 0))
		rc = mesh_errf(err, u->state_fd < 0 ? -errno : -e, "%s: %s", path,
			       strerror(u->state_fd < 0 ? errno : e));
	if (rc) {
		usage_close(u);
		return rc;
	}
	u->inserted = xcalloc(u->n_slots, sizeof *u->inserted);
	u->free_stack = xmalloc(u->n_slots * sizeof *u->free_stack);
	/* ids: start time in the high bits, a counter below: unique across runs */
	u->next_id = (uint64_t)(now_ns() / 1000000) << 20;
	/* replay what a dead daemon left: its opens that never ended are
	 * recorded as incomplete; what cannot be committed now stays in the
	 * journal for the writer */
	for (size_t i = 0; i < u->n_slots; i++) {
		struct slot *s = slot_at(u, i);
		uint32_t state = atomic_load(&s->state);
		if (s->magic != SLOT_MAGIC || (state != SLOT_BEGUN && state != SLOT_ENDED && state != SLOT_ABANDONED))
			atomic_store(&s->state, SLOT_FREE);
		else if (state == SLOT_BEGUN)
			atomic_store(&s->state, SLOT_ABANDONED);
	}
	flush(u);
	/* the free stack is built here, from scratch (flush pushed what it
	 * freed: those slots are FREE now and counted below) */
	u->n_free = 0;
	for (size_t i = u->n_slots; i-- > 0;)
		if (atomic_load(&slot_at(u, i)->state) == SLOT_FREE)
			u->free_stack[u->n_free++] = (uint32_t)i;
	rc = pthread_create(&u->writer, NULL, writer_main, u);
	if (rc) {
		int e2 = rc;
		u->writer = 0;
		usage_close(u);
		return mesh_errf(err, -e2, "usage writer thread: %s", strerror(e2));
	}
	*out = u;
	return 0;
}

int usage_begin(struct usage *u, const struct usage_event *ev, uint64_t *handle)
{
	int d = !strcmp(ev->decision, "allow") ? 0 : !strcmp(ev->decision, "mask") ? 1 : 2;
	if (!strcmp(ev->kind, "data"))
		atomic_fetch_add(&u->opens[d], 1);
	pthread_mutex_lock(&u->lock);
	if (u->n_free == 0) {
		pthread_mutex_unlock(&u->lock);
		*handle = UINT64_MAX;
		if (u->serve_when_full) {
			atomic_fetch_add(&u->lost, 1);
			return 0;
		}
		atomic_fetch_add(&u->refused, 1);
		return -EIO;
	}
	uint32_t i = u->free_stack[--u->n_free];
	uint64_t id = u->next_id++;
	if (atomic_load_explicit(&slot_at(u, i)->state, memory_order_acquire) != SLOT_FREE) {
		/* never reuse a slot still in use: drop the entry (the journal
		 * loses one slot of capacity, an event is never overwritten) */
		pthread_mutex_unlock(&u->lock);
		atomic_fetch_add(&u->refused, 1);
		*handle = UINT64_MAX;
		return u->serve_when_full ? 0 : -EIO;
	}
	bool wake = u->n_free < u->n_slots / 2;
	pthread_mutex_unlock(&u->lock);
	struct slot *s = slot_at(u, i);
	s->magic = SLOT_MAGIC;
	s->event_id = id;
	s->open_ns = now_ns();
	s->end_ns = 0;
	s->bytes = s->reads = 0;
	s->uid = ev->uid;
	s->pid = ev->pid;
	snprintf(s->decision, sizeof s->decision, "%s", ev->decision);
	snprintf(s->kind, sizeof s->kind, "%s", ev->kind);
	snprintf(s->user, sizeof s->user, "%s", ev->user ? ev->user : "");
	snprintf(s->program, sizeof s->program, "%s", ev->program ? ev->program : "?");
	snprintf(s->domain, sizeof s->domain, "%s", ev->domain ? ev->domain : "");
	snprintf(s->product, sizeof s->product, "%s", ev->product ? ev->product : "");
	snprintf(s->version, sizeof s->version, "%s", ev->version ? ev->version : "");
	snprintf(s->file, sizeof s->file, "%s", ev->file ? ev->file : "");
	atomic_store_explicit(&s->state, SLOT_BEGUN, memory_order_release);
	if (wake) {
		pthread_mutex_lock(&u->wake_lock);
		pthread_cond_signal(&u->wake);
		pthread_mutex_unlock(&u->wake_lock);
	}
	*handle = i;
	return 0;
}

void usage_end(struct usage *u, uint64_t handle, uint64_t bytes, uint64_t reads)
{
	if (handle >= u->n_slots)
		return;   /* an unrecorded open (serve_when_full) */
	struct slot *s = slot_at(u, handle);
	s->bytes = bytes;
	s->reads = reads;
	s->end_ns = now_ns();
	atomic_fetch_add(&u->bytes, bytes);
	atomic_store_explicit(&s->state, SLOT_ENDED, memory_order_release);
}

void usage_get_stats(struct usage *u, struct usage_stats *out)
{
	memset(out, 0, sizeof *out);
	out->capacity = u->n_slots;
	pthread_mutex_lock(&u->lock);
	out->backlog = u->n_slots - u->n_free;
	pthread_mutex_unlock(&u->lock);
	out->committed = atomic_load(&u->committed);
	out->refused = atomic_load(&u->refused);
	out->lost = atomic_load(&u->lost);
	out->opens_allow = atomic_load(&u->opens[0]);
	out->opens_mask = atomic_load(&u->opens[1]);
	out->opens_deny = atomic_load(&u->opens[2]);
	out->bytes = atomic_load(&u->bytes);
	pthread_mutex_lock(&u->wake_lock);
	snprintf(out->last_error, sizeof out->last_error, "%s", u->last_error);
	pthread_mutex_unlock(&u->wake_lock);
}

void usage_close(struct usage *u)
{
	if (!u)
		return;
	if (u->writer) {
		pthread_mutex_lock(&u->wake_lock);
		u->stop = true;
		pthread_cond_signal(&u->wake);
		pthread_mutex_unlock(&u->wake_lock);
		pthread_join(u->writer, NULL);
		/* A clean stop: every event goes in now and the journal is left
		 * empty.  An open whose RELEASE the kernel had not delivered when
		 * the mount went away (releases are asynchronous) is recorded
		 * without its byte counts, marked incomplete. */
		for (size_t i = 0; i < u->n_slots; i++) {
			struct slot *s = slot_at(u, i);
			uint32_t begun = SLOT_BEGUN;
			atomic_compare_exchange_strong(&s->state, &begun, SLOT_ABANDONED);
		}
		for (int tries = 0; tries < 3 && flush(u) < 0; tries++)
			usleep(100000);
		write_state(u);
		write_metrics(u);
	}
	if (u->db)
		sqlite3_close(u->db);
	if (u->map)
		munmap(u->map, u->n_slots * USAGE_SLOT_SIZE);
	if (u->fd >= 0)
		close(u->fd);
	if (u->state_fd >= 0)
		close(u->state_fd);
	pthread_mutex_destroy(&u->lock);
	pthread_mutex_destroy(&u->wake_lock);
	pthread_cond_destroy(&u->wake);
	free(u->inserted);
	free(u->free_stack);
	free(u->dir);
	free(u->host);
	free(u->metrics_path);
	free(u);
}
