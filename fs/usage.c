/*
 * usage.c - the usage journal, its writer thread, replay after a crash, and
 * the state and metrics files (contract in include/usage.h).
 *
 * Not here: the database layout and pruning SQL, and everything that reads
 * usage (usage_report.c); FUSE and access decisions (the daemon).
 *
 * Concurrency.  FUSE threads call usage_begin/usage_end; they touch only
 * atomics (the free-slot stack, the in-use bitmap, counters, the header's
 * id counter) and the slot they own.  A slot's owner changes by its state
 * word: FREE (on the stack) -> BEGUN (usage_begin's caller wrote it) ->
 * ENDED (usage_end's caller wrote the end) -> FREE again, and only the
 * writer thread frees, after its transaction committed.  The writer thread
 * alone uses SQLite, the `written` flags and the batch buffers.
 */
#include "usage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "mesh_util.h"
#include "usage_report.h"

#define HEADER_SIZE 4096
#define SLOT_HEAD 72
#define SLOT_TEXT (USAGE_SLOT_SIZE - SLOT_HEAD)
#define JOURNAL_MAGIC "MESHUSG1"
#define JOURNAL_LAYOUT 1u
#define BATCH_MAX 4096
#define INCOMPLETE_AFTER_NS 1000000000LL   /* opens in progress written to SQLite after 1 s */
#define CLOSE_RETRY_NS 2000000000LL
#define FULL_WAIT_NS 1000000000LL        /* the longest a begin waits for a free slot */
#define BACKOFF_MAX_MS 2000u
#define STATE_SIZE 4096
#define NS ((int64_t)1000000000)

/* Distinct non-zero patterns: a slot of garbage does not look valid. */
enum {
	SLOT_FREE = 0,
	SLOT_BEGUN = 0x4e474542,       /* "BEGN" */
	SLOT_ENDED = 0x444e4445,       /* "EDND" */
	SLOT_ABANDONED = 0x4e424141,   /* "AABN": begun by a daemon that stopped */
};

enum { FLAG_TRUNCATED = 1 };

struct journal_header {
	char magic[8];
	uint32_t layout, slot_size;
	uint64_t slots;
	int64_t created_ns;
	_Alignas(64) _Atomic uint64_t last_id;   /* the last event id handed out */
	_Alignas(64) _Atomic uint64_t lost;
	_Atomic uint64_t refused;
};
_Static_assert(sizeof(struct journal_header) <= HEADER_SIZE, "the journal header fits its page");

/* One event.  begin_sum covers event_id..pad2 and the text; end_sum covers
 * the end fields: a slot torn by a power loss is recognised, not replayed. */
struct slot {
	_Atomic uint32_t state;            /* written last */
	uint32_t begin_sum;
	uint64_t event_id;
	int64_t open_ns;
	uint32_t uid;
	int32_t pid;
	uint8_t kind, decision, flags, pad;
	uint16_t text_len, pad2;
	uint32_t end_sum;
	uint32_t pad3;
	uint64_t bytes, read_calls, duration_ns;
	char text[SLOT_TEXT];              /* user, program, domain, product, version, file; each NUL-ended */
};
_Static_assert(sizeof(struct slot) == USAGE_SLOT_SIZE, "a usage slot is 512 bytes");
_Static_assert(offsetof(struct slot, text) == SLOT_HEAD, "slot text offset");

struct usage {
	char *dir, *host, *metrics_path;
	char *ship_dir;                 /* NULL: no shipping */
	unsigned ship_interval_ms;
	sqlite3 *ship_db;               /* the shipper thread's connection */
	pthread_t shipper;
	bool shipper_running;
	pthread_cond_t ship_wake;       /* with wake_lock: stop */
	bool serve_when_full;
	unsigned metrics_interval_ms, flush_interval_ms, retention_days;
	unsigned ship_retention_days;    /* ops: usage_configure; 0: keep shipped events */
	int64_t ship_horizon_ns;         /* shipper: events before it were dropped from segments */
	int64_t next_ship_retention_ns;  /* shipper: next look at the horizon */
	int64_t ship_prune_seen;         /* shipper: the newest prune it looked at */
	/* ops: the forwarder's figures for the state and metrics files (under error_lock) */
	usage_sink_status_fn sink_status;
	void *sink_ctx;
	/* ops: the outbox of final events for a forwarder (pgsink.h) */
	bool outbox;
	sqlite3_stmt *outbox_insert, *outbox_delete;
	_Atomic int64_t outbox_shipped;
	int64_t outbox_deleted, outbox_deleting;

	int journal_fd, state_fd;
	unsigned char *map;
	size_t map_size, n_slots, n_words;
	struct journal_header *header;

	/* the free-slot stack (Treiber, tagged head against ABA) */
	_Alignas(64) _Atomic uint64_t free_head;      /* tag << 32 | (index + 1) */
	_Atomic uint32_t *free_next;                  /* index + 1 of the next, 0: none */
	_Atomic uint64_t *in_use;                     /* a bit per slot that is not FREE */

	_Alignas(64) _Atomic uint64_t pending;        /* begins and ends since the writer looked */
	uint64_t wake_threshold;
	_Alignas(64) _Atomic uint64_t opens[3], opens_discovery, bytes, read_calls;

	/* the writer thread (and usage_open/usage_close around it) */
	sqlite3 *db;
	sqlite3_stmt *insert_final, *insert_incomplete, *save_counter;
	sqlite3_stmt *queue_insert;                   /* ship_queue, when shipping (else NULL) */
	sqlite3_stmt *mark_select;                    /* meta's ship_mark, read once per batch */
	uint64_t batch_mark;                          /* rows at or below it are queued (late rows) */
	uint64_t batch_rows;                          /* rows the batch inserted or changed */
	_Atomic int64_t rows_written;                 /* writer -> shipper: rows committed since start */
	int64_t rows_at_mark;                         /* shipper: rows_written when it last marked (-1: unknown) */
	bool wal;
	_Atomic unsigned char *written;               /* the slot's incomplete row is in SQLite */
	uint32_t *batch, *freed;
	size_t cursor_word;
	unsigned backoff_ms;
	int64_t retry_at_ns, next_state_ns, next_retention_ns;
	uint64_t saved_lost, saved_refused;
	int64_t when_sec;                             /* the second when_text holds (INT64_MIN: none) */
	char when_text[40];                           /* its RFC 3339 text, "...T12:34:56" */

	pthread_t writer;
	bool writer_running;
	pthread_mutex_t wake_lock;
	pthread_cond_t wake;
	bool stop;                                    /* under wake_lock */
	/* a full journal: begins wait (under wake_lock) for the writer's pass */
	pthread_cond_t pass_done_cond;
	_Atomic unsigned full_waiters;
	_Atomic uint64_t pass_begun, pass_done;      /* writer passes started, finished */

	_Atomic uint64_t committed, replayed, damaged, batches, batch_max;
	_Atomic int64_t last_commit_ns;
	int64_t started_ns;
	pthread_mutex_t error_lock;                   /* the texts below */
	char last_error[256];
	char prune_result[256];
};

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

/* The CLOCK_MONOTONIC time `ns` from now, normalized, as the deadline of a
 * pthread_cond_timedwait on a condition set to CLOCK_MONOTONIC (usage_open):
 * a step of the wall clock neither stalls nor hurries the waits. */
static struct timespec monotonic_deadline(int64_t ns)
{
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	int64_t nsec = until.tv_nsec + ns % NS;
	until.tv_sec += (time_t)(ns / NS + nsec / NS);
	until.tv_nsec = (long)(nsec % NS);
	return until;
}

static struct slot *slot_at(const struct usage *u, size_t i)
{
	return (struct slot *)(u->map + HEADER_SIZE + i * USAGE_SLOT_SIZE);
}

static void set_error(struct usage *u, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_error(struct usage *u, const char *fmt, ...)
{
	va_list ap;
	pthread_mutex_lock(&u->error_lock);
	va_start(ap, fmt);
	vsnprintf(u->last_error, sizeof u->last_error, fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&u->error_lock);
}

/* ---- checksums: multiply-xorshift over 8-byte words (the journal never
 * leaves its host, so byte order does not matter) ---- */

static uint64_t mix(const void *data, size_t len, uint64_t h)
{
	const unsigned char *p = data;
	h ^= len * 0x9e3779b97f4a7c15ULL;
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
		h ^= h >> 31;
		p += 8;
		len -= 8;
	}
	uint64_t w = 0;
	memcpy(&w, p, len);
	h = (h ^ w) * 0x94d049bb133111ebULL;
	return h ^ (h >> 29);
}

static uint32_t sum_begin(const struct slot *s)
{
	uint64_t h = mix((const char *)s + offsetof(struct slot, event_id),
			 offsetof(struct slot, end_sum) - offsetof(struct slot, event_id), 0x4d455348);
	h = mix(s->text, s->text_len, h);
	return (uint32_t)(h ^ (h >> 32));
}

static uint32_t sum_end(const struct slot *s)
{
	uint64_t h = mix(&s->bytes, 3 * sizeof(uint64_t), s->event_id);
	return (uint32_t)(h ^ (h >> 32));
}

/* ---- the free-slot stack ---- */

static bool pop_free(struct usage *u, uint32_t *index)
{
	uint64_t head = atomic_load_explicit(&u->free_head, memory_order_acquire);
	for (;;) {
		uint32_t top = (uint32_t)head;
		if (!top)
			return false;
		uint32_t next = atomic_load_explicit(&u->free_next[top - 1], memory_order_relaxed);
		uint64_t new_head = (((head >> 32) + 1) << 32) | next;
		if (atomic_compare_exchange_weak_explicit(&u->free_head, &head, new_head,
							  memory_order_acq_rel, memory_order_acquire)) {
			*index = top - 1;
			return true;
		}
	}
}

/* Push a chain of slots at once (the writer only; poppers run meanwhile). */
static void push_free(struct usage *u, const uint32_t *index, size_t n)
{
	if (!n)
		return;
	for (size_t k = 0; k + 1 < n; k++)
		atomic_store_explicit(&u->free_next[index[k]], index[k + 1] + 1, memory_order_relaxed);
	uint64_t head = atomic_load_explicit(&u->free_head, memory_order_relaxed);
	uint64_t new_head;
	do {
		atomic_store_explicit(&u->free_next[index[n - 1]], (uint32_t)head, memory_order_relaxed);
		new_head = (((head >> 32) + 1) << 32) | (index[0] + 1);
	} while (!atomic_compare_exchange_weak_explicit(&u->free_head, &head, new_head,
							memory_order_release, memory_order_relaxed));
}

static void mark_in_use(struct usage *u, size_t i, bool on)
{
	uint64_t bit = 1ULL << (i % 64);
	if (on)
		atomic_fetch_or_explicit(&u->in_use[i / 64], bit, memory_order_relaxed);
	else
		atomic_fetch_and_explicit(&u->in_use[i / 64], ~bit, memory_order_relaxed);
}

/* ---- recording (FUSE threads) ---- */

static void note_pending(struct usage *u)
{
	if (atomic_fetch_add_explicit(&u->pending, 1, memory_order_relaxed) + 1 == u->wake_threshold) {
		pthread_mutex_lock(&u->wake_lock);
		pthread_cond_signal(&u->wake);
		pthread_mutex_unlock(&u->wake_lock);
	}
}

/* Ids are at least the open time in microseconds and always above the last
 * one: unique on the host across restarts (the counter is in the journal
 * header) and even if the journal is lost (the clock), and ordered like
 * the opens, which lets reports start a time range on the primary key. */
static uint64_t next_event_id(struct usage *u, int64_t open_ns)
{
	uint64_t floor = open_ns > 0 ? (uint64_t)(open_ns / 1000) : 0;
	uint64_t last = atomic_load_explicit(&u->header->last_id, memory_order_relaxed);
	uint64_t id;
	do
		id = last + 1 > floor ? last + 1 : floor;
	while (!atomic_compare_exchange_weak_explicit(&u->header->last_id, &last, id,
						      memory_order_relaxed, memory_order_relaxed));
	return id;
}

static size_t cut_utf8(const char *s, size_t limit, uint8_t *flags)
{
	size_t n = strnlen(s, limit + 1);
	if (n <= limit)
		return n;
	*flags |= FLAG_TRUNCATED;
	n = limit;
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;    /* never half a character */
	return n;
}

static size_t pack_text(char *text, const struct usage_open_info *info, uint8_t *flags)
{
	const char *field[6] = {info->user, info->program, info->domain, info->product, info->version, info->file};
	static const size_t limit[5] = {64, 16, 64, 64, 100};
	size_t len = 0;
	for (int f = 0; f < 6; f++) {
		const char *v = field[f] ? field[f] : f == 1 ? "?" : "";
		size_t room = SLOT_TEXT - len - 1 - (size_t)(5 - f);   /* a NUL for this and each later field */
		size_t n = cut_utf8(v, f < 5 && limit[f] < room ? limit[f] : room, flags);
		memcpy(text + len, v, n);
		len += n;
		text[len++] = '\0';
	}
	return len;
}

/* The journal is full: wake the writer and wait until one of its passes
 * that began after this call has finished (it frees every slot whose event
 * is final and committed) or FULL_WAIT_NS have passed, whichever is first,
 * trying for a slot each time it is woken.  An overloaded host, where the
 * writer lags behind the opens, so slows opens down instead of refusing
 * them; a journal full of files held open, or a database that cannot be
 * written, still refuses after at most one pass.  false: no slot. */
static bool wait_for_slot(struct usage *u, uint32_t *index)
{
	struct timespec until = monotonic_deadline(FULL_WAIT_NS);
	bool got = false;
	pthread_mutex_lock(&u->wake_lock);
	atomic_fetch_add(&u->full_waiters, 1);
	uint64_t after = atomic_load(&u->pass_begun);
	pthread_cond_signal(&u->wake);
	while (!(got = pop_free(u, index)) && !u->stop && atomic_load(&u->pass_done) <= after)
		if (pthread_cond_timedwait(&u->pass_done_cond, &u->wake_lock, &until) == ETIMEDOUT) {
			got = pop_free(u, index);
			break;
		}
	atomic_fetch_sub(&u->full_waiters, 1);
	pthread_mutex_unlock(&u->wake_lock);
	return got;
}

int (usage_begin)(struct usage *u, const struct usage_open_info *info, uint64_t *handle)
{
	*handle = 0;
	bool data = info->kind == USAGE_DATA;
	unsigned decision = info->decision <= USAGE_DENY ? (unsigned)info->decision : USAGE_DENY;
	if (data)
		atomic_fetch_add_explicit(&u->opens[decision], 1, memory_order_relaxed);
	else
		atomic_fetch_add_explicit(&u->opens_discovery, 1, memory_order_relaxed);
	uint32_t i;
	if (!pop_free(u, &i) && !wait_for_slot(u, &i)) {
		if (!__atomic_load_n(&u->serve_when_full, __ATOMIC_RELAXED) && data && decision != USAGE_DENY) {
			atomic_fetch_add_explicit(&u->header->refused, 1, memory_order_relaxed);
			return -EIO;
		}
		atomic_fetch_add_explicit(&u->header->lost, 1, memory_order_relaxed);
		return 0;
	}
	struct slot *s = slot_at(u, i);
	int64_t t = info->time_ns ? info->time_ns : now_ns();
	s->event_id = next_event_id(u, t);
	s->open_ns = t;
	s->uid = info->uid;
	s->pid = info->pid;
	s->kind = data ? USAGE_DATA : USAGE_DISCOVERY;
	s->decision = (uint8_t)decision;
	s->flags = 0;
	s->pad = 0;
	s->pad2 = 0;
	s->text_len = (uint16_t)pack_text(s->text, info, &s->flags);
	s->begin_sum = sum_begin(s);
	atomic_store_explicit(&s->state, SLOT_BEGUN, memory_order_release);
	mark_in_use(u, i, true);
	*handle = ((uint64_t)(uint32_t)s->event_id << 32) | (i + 1);
	note_pending(u);
	return 0;
}

void (usage_end)(struct usage *u, uint64_t handle, uint64_t bytes, uint64_t read_calls, uint64_t duration_ns)
{
	uint64_t i1 = handle & 0xffffffffu;
	if (!u || i1 == 0 || i1 > u->n_slots)
		return;
	struct slot *s = slot_at(u, i1 - 1);
	if (atomic_load_explicit(&s->state, memory_order_acquire) != SLOT_BEGUN ||
	    (uint32_t)s->event_id != (uint32_t)(handle >> 32))
		return;
	if (!duration_ns) {
		int64_t d = now_ns() - s->open_ns;
		duration_ns = d > 0 ? (uint64_t)d : 0;
	}
	s->bytes = bytes;
	s->read_calls = read_calls;
	s->duration_ns = duration_ns;
	s->end_sum = sum_end(s);
	atomic_store_explicit(&s->state, SLOT_ENDED, memory_order_release);
	atomic_fetch_add_explicit(&u->bytes, bytes, memory_order_relaxed);
	atomic_fetch_add_explicit(&u->read_calls, read_calls, memory_order_relaxed);
	note_pending(u);
}

int usage_read_comm(pid_t pid, char *buf, size_t size)
{
	if (!size)
		return -EINVAL;
	snprintf(buf, size, "?");
	if (pid <= 0)
		return -ESRCH;
	char path[48];
	snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	char comm[64];
	ssize_t n;
	do
		n = read(fd, comm, sizeof comm - 1);
	while (n < 0 && errno == EINTR);
	int e = errno;
	close(fd);
	if (n <= 0)
		return n < 0 ? -e : -ESRCH;   /* the pid went away meanwhile */
	while (n > 0 && comm[n - 1] == '\n')
		n--;
	if (n == 0)
		return -ESRCH;
	size_t len = (size_t)n < size - 1 ? (size_t)n : size - 1;
	for (size_t k = 0; k < len; k++) {
		unsigned char c = (unsigned char)comm[k];
		buf[k] = c < 0x20 || c == 0x7f ? '?' : (char)c;   /* names go into tables and logs */
	}
	buf[len] = '\0';
	return 0;
}

#define COMM_CACHE 256
static struct {
	pid_t pid;
	time_t at;
	char comm[16];
} comm_cache[COMM_CACHE];
static pthread_mutex_t comm_lock = PTHREAD_MUTEX_INITIALIZER;

void usage_program_name(pid_t pid, char *buf, size_t size)
{
	if (!size)
		return;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
	unsigned k = (unsigned)pid % COMM_CACHE;
	pthread_mutex_lock(&comm_lock);
	bool hit = pid > 0 && comm_cache[k].pid == pid && comm_cache[k].at == now.tv_sec;
	if (hit)
		snprintf(buf, size, "%s", comm_cache[k].comm);
	pthread_mutex_unlock(&comm_lock);
	if (hit)
		return;
	char comm[16];
	if (usage_read_comm(pid, comm, sizeof comm)) {
		snprintf(buf, size, "?");
		return;
	}
	snprintf(buf, size, "%s", comm);
	pthread_mutex_lock(&comm_lock);
	comm_cache[k].pid = pid;
	comm_cache[k].at = now.tv_sec;
	memcpy(comm_cache[k].comm, comm, sizeof comm);
	pthread_mutex_unlock(&comm_lock);
}

/* ---- the writer: SQLite ---- */

static bool network_filesystem(const char *dir)
{
	struct statfs sf;
	if (statfs(dir, &sf) < 0)
		return false;
	switch ((unsigned long)sf.f_type) {
	case 0x6969:        /* NFS */
	case 0x517b:        /* SMB */
	case 0xff534d42:    /* CIFS */
	case 0xfe534d42:    /* SMB2 */
	case 0x00c36400:    /* CephFS */
	case 0x65735546:    /* FUSE (GlusterFS, JuiceFS, ...) */
	case 0x0bd00bd0:    /* Lustre */
	case 0x47504653:    /* GPFS */
	case 0x7461636f:    /* OCFS2 */
	case 0x01161970:    /* GFS2 */
	case 0x5346414f:    /* AFS */
		return true;
	default:
		return false;
	}
}

static void db_close(struct usage *u)
{
	sqlite3_finalize(u->insert_final);
	sqlite3_finalize(u->insert_incomplete);
	sqlite3_finalize(u->save_counter);
	sqlite3_finalize(u->queue_insert);
	sqlite3_finalize(u->mark_select);
	sqlite3_finalize(u->outbox_insert);
	sqlite3_finalize(u->outbox_delete);
	u->insert_final = u->insert_incomplete = u->save_counter = u->queue_insert = u->mark_select = NULL;
	u->outbox_insert = u->outbox_delete = NULL;
	sqlite3_close(u->db);
	u->db = NULL;
}

#define EVENT_COLUMNS "event_id, time, open_ns, host, uid, user_name, pid, program, domain, product, version, " \
		      "file, kind, decision, bytes, read_calls, duration_ns, complete"

/* The ship mark's first value, and the queue of late rows, in one
 * transaction (see "shipping closed segments" below).  A database of the
 * queue design (a ship_queue, no mark): every row it did not hold had been
 * shipped (that design queued each row in the transaction that wrote it,
 * and dequeued it only after its segment was renamed), so the mark starts
 * at the newest row and the queued rows ship as late rows.  No ship_queue
 * at all: the database never shipped (shipping was off), so the mark
 * starts at 0 and its whole history ships. */
#define SELECT_SHIP_MARK    "SELECT value FROM meta WHERE key = 'ship_mark'"
#define SELECT_SHIP_PENDING "SELECT value FROM meta WHERE key = 'ship_pending'"

static const char ship_mark_sql[] =
	"BEGIN IMMEDIATE;"
	"INSERT INTO meta(key, value) SELECT 'ship_mark',"
	" CASE WHEN EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'ship_queue')"
	" THEN (SELECT coalesce(max(event_id), 0) FROM events) ELSE 0 END"
	" WHERE NOT EXISTS (SELECT 1 FROM meta WHERE key = 'ship_mark');"
	"CREATE TABLE IF NOT EXISTS ship_queue(event_id INTEGER PRIMARY KEY, ver INTEGER NOT NULL);"
	"COMMIT;";

/* The connection, opened when needed: after a failure it is closed and
 * reopened at the next attempt, so a database moved aside, recreated or
 * repaired is picked up without restarting the daemon. */
static int db_ready(struct usage *u)
{
	if (u->db)
		return 0;
	char path[4200];
	snprintf(path, sizeof path, "%s/usage.db", u->dir);
	struct mesh_err err = {0};
	int rc = sqlite3_open_v2(path, &u->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
				 SQLITE_OPEN_URI | SQLITE_OPEN_NOFOLLOW, NULL);
	if (rc != SQLITE_OK) {
		set_error(u, "%s: %s (events wait in the journal)", path,
			  u->db ? sqlite3_errmsg(u->db) : sqlite3_errstr(rc));
		db_close(u);
		return -EIO;
	}
	sqlite3_busy_timeout(u->db, 5000);
	if (usage_db_prepare(u->db, u->wal, &err)) {
		set_error(u, "%s: %s (events wait in the journal)", path, err.msg);
		db_close(u);
		return -EIO;
	}
	/* shipping: the watermark and the queue of late rows (see "shipping
	 * closed segments" below).  A row written at or below the mark is
	 * queued in the same transaction (insert_slot); a statement of its
	 * own, not a trigger: the trigger's sub-program cost twice as much per
	 * row (2.85 against 2.43 us per row with the insert, measured apart).
	 * The first open of a database without a mark sets it (ship_mark_sql). */
	if (u->ship_dir &&
	    (sqlite3_exec(u->db, ship_mark_sql, NULL, NULL, NULL) != SQLITE_OK ||
	     sqlite3_prepare_v2(u->db, "INSERT INTO ship_queue VALUES(?1, 1) ON CONFLICT(event_id) DO UPDATE SET ver = ver + 1",
				-1, &u->queue_insert, NULL) != SQLITE_OK ||
	     sqlite3_prepare_v2(u->db, SELECT_SHIP_MARK, -1, &u->mark_select, NULL) != SQLITE_OK)) {
		set_error(u, "%s: %s (events wait in the journal)", path, sqlite3_errmsg(u->db));
		if (!sqlite3_get_autocommit(u->db))
			sqlite3_exec(u->db, "ROLLBACK", NULL, NULL, NULL);
		db_close(u);
		return -EIO;
	}
	if (sqlite3_prepare_v2(u->db,
		"INSERT INTO events(" EVENT_COLUMNS ") VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,1)"
		" ON CONFLICT(event_id) DO UPDATE SET bytes = excluded.bytes, read_calls = excluded.read_calls,"
		" duration_ns = excluded.duration_ns, complete = 1", -1, &u->insert_final, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(u->db,
		"INSERT OR IGNORE INTO events(" EVENT_COLUMNS ") VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,"
		"0,0,NULL,0)", -1, &u->insert_incomplete, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(u->db, "INSERT OR REPLACE INTO meta(key, value) VALUES(?1, ?2)", -1,
			       &u->save_counter, NULL) != SQLITE_OK) {
		set_error(u, "%s: %s (events wait in the journal)", path, sqlite3_errmsg(u->db));
		db_close(u);
		return -EIO;
	}
	/* ops: events become final in seq order, the forwarder's cursor */
	if (u->outbox &&
	    (sqlite3_exec(u->db, "CREATE TABLE IF NOT EXISTS outbox(seq INTEGER PRIMARY KEY AUTOINCREMENT,"
				 " event_id INTEGER NOT NULL)", NULL, NULL, NULL) != SQLITE_OK ||
	     sqlite3_prepare_v2(u->db, "INSERT INTO outbox(event_id) VALUES(?1)", -1, &u->outbox_insert, NULL) ||
	     sqlite3_prepare_v2(u->db, "DELETE FROM outbox WHERE seq <= ?1", -1, &u->outbox_delete, NULL))) {
		set_error(u, "%s: outbox: %s (events wait in the journal)", path, sqlite3_errmsg(u->db));
		db_close(u);
		return -EIO;
	}
	return 0;
}

/* ops: note a final event for the forwarder, and forget what it shipped */
static int outbox_note(struct usage *u, uint64_t event_id)
{
	if (!u->outbox_insert)
		return 0;
	sqlite3_bind_int64(u->outbox_insert, 1, (sqlite3_int64)event_id);
	int rc = sqlite3_step(u->outbox_insert);
	sqlite3_reset(u->outbox_insert);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

static int outbox_forget(struct usage *u)
{
	int64_t shipped = atomic_load(&u->outbox_shipped);
	if (!u->outbox_delete || shipped <= u->outbox_deleted)
		return 0;
	u->outbox_deleting = shipped;
	sqlite3_bind_int64(u->outbox_delete, 1, shipped);
	int rc = sqlite3_step(u->outbox_delete);
	sqlite3_reset(u->outbox_delete);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

static const char *const kind_name[] = {"data", "discovery"};
static const char *const decision_name[] = {"allow", "mask", "deny"};

/* Split a slot's text into its 6 fields; false when it is malformed. */
static bool slot_fields(const struct slot *s, const char *field[6])
{
	if (s->text_len > SLOT_TEXT || s->kind > USAGE_DISCOVERY || s->decision > USAGE_DENY)
		return false;
	size_t at = 0;
	for (int f = 0; f < 6; f++) {
		const char *end = at < s->text_len ? memchr(s->text + at, '\0', s->text_len - at) : NULL;
		if (!end)
			return false;
		field[f] = s->text + at;
		at = (size_t)(end - s->text) + 1;
	}
	return at == s->text_len;
}

/* Write one slot with the final or the incomplete statement. */
static int insert_slot(struct usage *u, const struct slot *s, const char *field[6], bool final)
{
	sqlite3_stmt *st = final ? u->insert_final : u->insert_incomplete;
	char when[48];
	struct timespec ts = {.tv_sec = s->open_ns / NS, .tv_nsec = s->open_ns % NS};
	if (ts.tv_nsec < 0) {
		ts.tv_sec--;
		ts.tv_nsec += NS;
	}
	/* a batch holds events of the same few seconds: the date and time
	 * are formatted once per second, the milliseconds per event (the
	 * same text as mesh_time_rfc3339) */
	if (ts.tv_sec != u->when_sec) {
		mesh_time_rfc3339(&ts, u->when_text, sizeof u->when_text);
		char *dot = strrchr(u->when_text, '.');
		if (dot)
			*dot = '\0';
		u->when_sec = ts.tv_sec;
	}
	unsigned ms = (unsigned)(ts.tv_nsec / 1000000);
	size_t len = strlen(u->when_text);
	memcpy(when, u->when_text, len);
	when[len++] = '.';
	when[len++] = (char)('0' + ms / 100);
	when[len++] = (char)('0' + ms / 10 % 10);
	when[len++] = (char)('0' + ms % 10);
	when[len++] = 'Z';
	when[len] = '\0';
	sqlite3_bind_int64(st, 1, (sqlite3_int64)s->event_id);
	sqlite3_bind_text(st, 2, when, (int)len, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, s->open_ns);
	sqlite3_bind_text(st, 4, u->host, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, s->uid);
	sqlite3_bind_text(st, 6, field[0], -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, s->pid);
	for (int f = 1; f < 6; f++)
		sqlite3_bind_text(st, 7 + f, field[f], -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 13, kind_name[s->kind], -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 14, decision_name[s->decision], -1, SQLITE_STATIC);
	if (final) {
		sqlite3_bind_int64(st, 15, (sqlite3_int64)s->bytes);
		sqlite3_bind_int64(st, 16, (sqlite3_int64)s->read_calls);
		sqlite3_bind_int64(st, 17, (sqlite3_int64)s->duration_ns);
	}
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return -EIO;
	bool changed = sqlite3_changes(u->db) > 0;
	u->batch_rows += changed;
	/* a row inserted or completed (not an incomplete one already there)
	 * at or below the ship mark is late: its range was shipped (or is
	 * being shipped), so it is queued for the next segment; above the
	 * mark, the next range takes it */
	if (u->queue_insert && changed && s->event_id <= u->batch_mark) {
		sqlite3_bind_int64(u->queue_insert, 1, (sqlite3_int64)s->event_id);
		rc = sqlite3_step(u->queue_insert);
		sqlite3_reset(u->queue_insert);
		if (rc != SQLITE_DONE)
			return -EIO;
	}
	return 0;
}

/* The ship mark, inside the batch's write transaction: only the shipper
 * moves it, under the same write lock, so it holds until the commit.  No
 * mark (a database the writer has not prepared: cannot happen after
 * db_ready): every row is queued, which is always safe. */
static int read_mark(struct usage *u)
{
	int rc = sqlite3_step(u->mark_select);
	if (rc == SQLITE_ROW && sqlite3_column_type(u->mark_select, 0) == SQLITE_INTEGER &&
	    sqlite3_column_int64(u->mark_select, 0) >= 0)
		u->batch_mark = (uint64_t)sqlite3_column_int64(u->mark_select, 0);
	else
		u->batch_mark = UINT64_MAX;
	sqlite3_reset(u->mark_select);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -EIO;
}

static int save_counter(struct usage *u, const char *key, uint64_t value)
{
	sqlite3_bind_text(u->save_counter, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(u->save_counter, 2, (sqlite3_int64)value);
	int rc = sqlite3_step(u->save_counter);
	sqlite3_reset(u->save_counter);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

/* Up to BATCH_MAX slots ready for SQLite: ended or abandoned ones, opens in
 * progress for a second and not yet written, and (closing) every open. */
static size_t collect(struct usage *u, bool closing, int64_t now)
{
	size_t n = 0;
	for (size_t k = 0; k < u->n_words && n < BATCH_MAX; k++) {
		size_t w = (u->cursor_word + k) % u->n_words;
		uint64_t bits = atomic_load_explicit(&u->in_use[w], memory_order_relaxed);
		while (bits && n < BATCH_MAX) {
			size_t i = w * 64 + (size_t)__builtin_ctzll(bits);
			bits &= bits - 1;
			const struct slot *s = slot_at(u, i);
			uint32_t state = atomic_load_explicit(&s->state, memory_order_acquire);
			if (state == SLOT_ENDED || state == SLOT_ABANDONED ||
			    (state == SLOT_BEGUN && (closing || (!atomic_load_explicit(&u->written[i], memory_order_relaxed) &&
								 now - s->open_ns >= INCOMPLETE_AFTER_NS))))
				u->batch[n++] = (uint32_t)i;
		}
		if (n == BATCH_MAX)
			u->cursor_word = w;   /* the next batch goes on from here */
	}
	return n;
}

/* Write u->batch[0..n) in one transaction; free what is final, after the
 * commit.  0, or -EIO (nothing freed: the slots wait). */
static int write_batch(struct usage *u, size_t n, bool closing)
{
	if (db_ready(u))
		return -EIO;
	size_t n_freed = 0, n_damaged = 0;
	int rc = sqlite3_exec(u->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;
	if (!rc && u->mark_select)
		rc = read_mark(u);
	u->batch_rows = 0;
	for (size_t k = 0; !rc && k < n; k++) {
		uint32_t i = u->batch[k];
		const struct slot *s = slot_at(u, i);
		uint32_t state = atomic_load_explicit(&s->state, memory_order_acquire);
		const char *field[6];
		if (!slot_fields(s, field) || s->begin_sum != sum_begin(s)) {
			n_damaged++;                      /* torn or foreign: not an event */
			u->freed[n_freed++] = i;
			continue;
		}
		bool ended = state == SLOT_ENDED && s->end_sum == sum_end(s);
		rc = insert_slot(u, s, field, ended);
		if (state != SLOT_BEGUN || closing) {
			u->freed[n_freed++] = i;          /* final: ended, abandoned, or the daemon stops */
			if (!rc)
				rc = outbox_note(u, s->event_id);   /* ops */
		}
	}
	if (!rc)
		rc = outbox_forget(u);                    /* ops */
	uint64_t lost = atomic_load(&u->header->lost), refused = atomic_load(&u->header->refused);
	if (!rc && lost != u->saved_lost)
		rc = save_counter(u, "lost_events", lost);
	if (!rc && refused != u->saved_refused)
		rc = save_counter(u, "refused_opens", refused);
	if (!rc)   /* counted under the write lock, before the commit (next_range_end) */
		atomic_fetch_add(&u->rows_written, (int64_t)u->batch_rows);
	if (!rc && sqlite3_exec(u->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		rc = -EIO;
	if (rc) {
		set_error(u, "%s/usage.db: %s (events wait in the journal)", u->dir, sqlite3_errmsg(u->db));
		if (!sqlite3_get_autocommit(u->db))
			sqlite3_exec(u->db, "ROLLBACK", NULL, NULL, NULL);
		db_close(u);
		return -EIO;
	}
	u->saved_lost = lost;
	u->saved_refused = refused;
	if (u->outbox_delete)                             /* ops */
		u->outbox_deleted = u->outbox_deleting > u->outbox_deleted ? u->outbox_deleting : u->outbox_deleted;
	/* committed: only now may the journal forget these events */
	size_t f = 0;
	for (size_t k = 0; k < n; k++) {
		uint32_t i = u->batch[k];
		if (f < n_freed && u->freed[f] == i) {
			f++;
			atomic_store_explicit(&slot_at(u, i)->state, SLOT_FREE, memory_order_release);
			atomic_store_explicit(&u->written[i], 0, memory_order_relaxed);
			mark_in_use(u, i, false);
		} else {
			atomic_store_explicit(&u->written[i], 1, memory_order_relaxed);
		}
	}
	push_free(u, u->freed, n_freed);
	atomic_fetch_add(&u->committed, n_freed - n_damaged);
	atomic_fetch_add(&u->damaged, n_damaged);
	atomic_fetch_add(&u->batches, 1);
	if (n > atomic_load(&u->batch_max))
		atomic_store(&u->batch_max, n);
	atomic_store(&u->last_commit_ns, now_ns());
	set_error(u, "%s", "");
	return 0;
}

/* Write everything ready.  0, or -EIO when SQLite failed. */
static int drain(struct usage *u, bool closing)
{
	for (;;) {
		size_t n = collect(u, closing, now_ns());
		if (!n)
			return 0;
		if (write_batch(u, n, closing))
			return -EIO;
		if (n < BATCH_MAX)
			return 0;
	}
}

/* ---- shipping closed segments to the store ----
 *
 * What is shipped is decided by a watermark over event ids, not by a queue
 * of every row: ids are handed out in open order and the writer writes
 * rows in nearly that order, so "every row up to M" is one number, and a
 * range of the primary key is copied without a join or a dequeue per row.
 * In usage.db's meta:
 *   ship_mark     M: rows with event_id <= M are shipped, being shipped, or
 *                 queued (below); rows above M wait for the next range
 *   ship_pending  P, only while the range (P, M] is being shipped
 *   ship_seq      the sequence number of the last segment
 * and ship_queue(event_id, ver): late rows, written at or below M after M
 * passed them (an open that ended after its range was shipped, an
 * incomplete row completed, a slot replayed after a crash); ver grows with
 * each write of the row.
 *
 * The invariant.  Every row of events, as it is now, is
 *   (a) above M, or
 *   (b) in the pending range (P, M], or
 *   (c) queued in ship_queue, or
 *   (d) in a renamed segment, as it is now (or completed there over an
 *       incomplete copy in an older one).
 * Each step keeps it:
 * - a writer batch (BEGIN IMMEDIATE; it reads M after taking the write
 *   lock, and the shipper moves M only under that lock, so M holds until
 *   the batch commits) queues, with ver + 1, every row it inserts or
 *   completes at or below M (c); a row above M is (a);
 * - the mark (ship_once, BEGIN IMMEDIATE, when no range is pending) sets
 *   P = M and M = H: rows of (P, H] go from (a) to (b).  Any H >= M keeps
 *   the invariant; H is the newest row, or the one SEGMENT_MAX_EVENTS rows
 *   past M, to bound a segment;
 * - the copy (one read transaction, begun after the mark committed) takes
 *   the rows of (P, M] by a range of the key and the queued rows with the
 *   ver they have in the same snapshot; then fsync, rename, fsync of the
 *   directory.  usage.db does not change;
 * - done (BEGIN IMMEDIATE) dequeues the shipped late rows whose ver is
 *   still the snapshot's (unchanged since: (d)) and clears P: a row of
 *   (P, M] unchanged since the snapshot is in the segment (d), and one
 *   written after it was written after the mark at or below M, so queued
 *   (c);
 * - a crash (kill -9, power) or an error between the mark and done leaves
 *   P in usage.db: the next round, also after a restart, ships (P, M]
 *   again before it marks anything new.  Rows that the failed round had
 *   already renamed into place are then shipped twice; readers
 *   (usage_report.c) keep one row per event id, the complete over the
 *   incomplete, so they read each event once;
 * - a prune (usage_db_prune, by retention_days or `meshctl usage
 *   --prune-before`) folds rows into rollups and deletes them: a deleted
 *   row has nothing left to ship (the rollups travel with the merged
 *   segments), and its queue entry leaves at the next done (the copy finds
 *   no row; a row pruned out of a pending range is simply not copied);
 * - compact() renames a merged segment into place before it removes the
 *   old ones and keeps each id's complete row, so (d) holds across a
 *   merge; it drops only events before the horizon (ship_horizon:
 *   ship_retention_days, the newest prune), on purpose;
 * - a restart finds M, P and the queue in usage.db and the segments in
 *   the store; the journal's replay goes through the writer (queued when
 *   at or below M).
 * Readers never look at M, P or the queue, so usage.db's layout number
 * (USAGE_DB_LAYOUT, which guards the events and rollups that readers and
 * segments share) does not change with them; the migration from the queue
 * design is ship_mark_sql.  (An older meshfs run on a database migrated
 * here would not ship the rows above M: after a clean stop there are none,
 * usage_close ships up to the newest row.)
 */

#define SEGMENT_MAX_EVENTS 100000
#define SEGMENT_COMPACT_AT 32

static void uri_escape(const char *path, char *out, size_t size)
{
	size_t o = 0;
	for (const char *p = path; *p && o + 4 < size; p++) {
		if (*p == '%' || *p == '?' || *p == '#')
			o += (size_t)snprintf(out + o, size - o, "%%%02X", (unsigned char)*p);
		else
			out[o++] = *p;
	}
	out[o] = '\0';
}

/* One integer from `sql` into *out: 1, 0 when the answer is NULL or no
 * row (*out unchanged), -1 on error. */
static int query_value(sqlite3 *db, const char *sql, int64_t *out)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	int rc = sqlite3_step(st), got = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
		*out = sqlite3_column_int64(st, 0);
		got = 1;
	}
	sqlite3_finalize(st);
	return got;
}

/* One integer from `sql`, or `fallback` (no row, NULL, an error). */
static int64_t query_int(sqlite3 *db, const char *sql, int64_t fallback)
{
	int64_t v = fallback;
	return query_value(db, sql, &v) > 0 ? v : fallback;
}

/* The shipper's own connection to usage.db (WAL: it reads while the
 * writer writes; its short dequeue waits on busy_timeout).  CREATE: an
 * attached database is opened with the connection's flags, and segments
 * are new files. */
static int ship_db_ready(struct usage *u)
{
	if (u->ship_db)
		return 0;
	char path[4200];
	snprintf(path, sizeof path, "%s/usage.db", u->dir);
	if (sqlite3_open_v2(path, &u->ship_db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI,
			    NULL) != SQLITE_OK) {
		set_error(u, "%s: %s (usage waits to be shipped)", path, sqlite3_errmsg(u->ship_db));
		sqlite3_close(u->ship_db);
		u->ship_db = NULL;
		return -EIO;
	}
	sqlite3_busy_timeout(u->ship_db, 5000);
	return 0;
}

static void ship_db_close(struct usage *u)
{
	sqlite3_close(u->ship_db);
	u->ship_db = NULL;
}

/* Bound the next range: 0 when it may end at the newest row (the mark
 * reads it under its lock), else the row SEGMENT_MAX_EVENTS rows past
 * `mark`, found by a scan of the key (*capped: more rows wait above it).
 * The scan is needed only when that many rows may be new: the writer
 * counts the rows it writes under its write lock (rows_written), and the
 * mark reads the count and the newest row under the same lock, so the
 * rows above the last mark are at most the count since.  -1 on error. */
static int64_t next_range_end(struct usage *u, int64_t mark, bool *capped)
{
	*capped = false;
	if (u->rows_at_mark >= 0 && atomic_load(&u->rows_written) - u->rows_at_mark < SEGMENT_MAX_EVENTS)
		return 0;
	char sql[256];
	snprintf(sql, sizeof sql, "SELECT event_id FROM events WHERE event_id > %" PRId64
		 " ORDER BY event_id LIMIT 1 OFFSET %d", mark, SEGMENT_MAX_EVENTS - 1);
	int64_t cut = 0;
	int got = query_value(u->ship_db, sql, &cut);
	if (got < 0)
		return -1;
	*capped = got > 0;
	return got > 0 ? cut : 0;
}

/* Move the mark from `mark` to `end` (0: the newest row) and record the
 * pending range, in one write transaction (see the invariant above).
 * *hi: the new mark (`mark` when no row is new).  0, or -EIO. */
static int mark_range(struct usage *u, int64_t mark, int64_t end, bool capped, int64_t *hi)
{
	sqlite3 *db = u->ship_db;
	*hi = mark;
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return -EIO;
	/* only this thread moves the mark, and only with no range pending:
	 * still so (checked under the lock anyway) */
	int64_t now_mark = -1, pending = -1, newest = mark;
	int rc = query_value(db, SELECT_SHIP_MARK, &now_mark) < 0 ||
		 query_value(db, SELECT_SHIP_PENDING, &pending) < 0 ||
		 query_value(db, "SELECT max(event_id) FROM events", &newest) < 0 ? -EIO
		 : now_mark != mark || pending >= 0 ? -EAGAIN : 0;
	int64_t written = atomic_load(&u->rows_written);   /* no batch is under way: exact */
	int64_t to = end > 0 ? end : newest;
	if (!rc && to > mark) {
		char sql[512];
		snprintf(sql, sizeof sql, "INSERT OR REPLACE INTO meta(key, value) VALUES('ship_pending', %" PRId64 "),"
			 " ('ship_mark', %" PRId64 "); COMMIT;", mark, to);
		rc = sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;
		if (!rc)
			*hi = to;
	}
	if (!rc)
		u->rows_at_mark = capped ? -1 : written;   /* capped: how many wait is not known */
	if (!sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

/* One round: the pending range if a failed round left one (before anything
 * else), else a new range (mark, H], plus the queued late rows, into one
 * segment; then done.  0 (also when nothing is new), or -EIO with the
 * error recorded: a pending range stays pending, late rows stay queued,
 * and the next round ships them.  *more: a range or the queue was cut at
 * SEGMENT_MAX_EVENTS, or a pending range was shipped again. */
static int ship_once(struct usage *u, bool *more)
{
	*more = false;
	if (ship_db_ready(u))
		return -EIO;
	sqlite3 *db = u->ship_db;
	int64_t mark = -1, lo = -1, queued = -1;
	if (query_value(db, SELECT_SHIP_MARK, &mark) < 0 ||
	    query_value(db, SELECT_SHIP_PENDING, &lo) < 0) {
		set_error(u, "%s/usage.db: %s (usage waits to be shipped)", u->dir, sqlite3_errmsg(db));
		return -EIO;
	}
	if (mark < 0)
		return 0;          /* the writer has not prepared the database yet: it sets the mark */
	int64_t hi = mark;
	if (lo >= 0) {
		*more = true;      /* shipped again: a new range follows at once */
	} else {
		bool capped;
		int64_t end = next_range_end(u, mark, &capped);
		int rc = end < 0 ? -EIO : mark_range(u, mark, end, capped, &hi);
		if (rc) {
			set_error(u, "%s/usage.db: cannot move the ship mark: %s (usage waits to be shipped)", u->dir,
				  rc == -EAGAIN ? "moved meanwhile" : sqlite3_errmsg(db));
			return -EIO;
		}
		*more = capped;
		lo = mark;
	}
	if (query_value(db, "SELECT min(event_id) FROM ship_queue", &queued) < 0) {
		set_error(u, "%s/usage.db: %s (usage waits to be shipped)", u->dir, sqlite3_errmsg(db));
		return -EIO;
	}
	if (lo == hi && queued < 0)
		return 0;          /* nothing new, nothing late */
	int64_t seq = query_int(db, "SELECT value FROM meta WHERE key = 'ship_seq'", 0) + 1;
	char tmp[4400], final[4400], uri[9000];
	snprintf(tmp, sizeof tmp, "%s/.tmp-seg-%" PRId64 ".%ld.db", u->ship_dir, seq, (long)getpid());
	unlink(tmp);
	char escaped[8800];
	uri_escape(tmp, escaped, sizeof escaped);
	/* unix-none: the segment is new and private until renamed; no lock is
	 * taken on the shared filesystem */
	snprintf(uri, sizeof uri, "file:%s?vfs=unix-none", escaped);
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, "ATTACH DATABASE ?1 AS seg", -1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, uri, -1, SQLITE_STATIC);
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
	}
	sqlite3_finalize(st);
	char *msg = NULL;
	int64_t rows = 0, first = 0, last = 0, n_late = 0;
	if (rc == SQLITE_OK) {
		char copy[2048];
		/* one read snapshot of main for the range, the late rows and
		 * their versions: a row the writer changes meanwhile keeps its
		 * newer version queued */
		snprintf(copy, sizeof copy,
			 "PRAGMA seg.journal_mode=OFF; PRAGMA seg.synchronous=OFF;"
			 "DROP TABLE IF EXISTS temp.shipped; BEGIN;"
			 /* keyed: done looks each late row up by its key */
			 "CREATE TEMP TABLE shipped(event_id INTEGER PRIMARY KEY, ver INTEGER NOT NULL);"
			 "INSERT INTO temp.shipped SELECT event_id, ver FROM main.ship_queue ORDER BY event_id LIMIT %d;"
			 /* the range: a scan of the primary key, no join */
			 "CREATE TABLE seg.events AS SELECT * FROM main.events"
			 " WHERE event_id > %" PRId64 " AND event_id <= %" PRId64 ";"
			 /* late rows outside it (inside, the range copied them), each
			  * found by its key (CROSS JOIN: the queue drives; a plain
			  * join let the planner scan every event the host kept) */
			 "INSERT INTO seg.events SELECT e.* FROM temp.shipped q CROSS JOIN main.events e"
			 " ON e.event_id = q.event_id WHERE q.event_id <= %" PRId64 " OR q.event_id > %" PRId64 ";"
			 "CREATE TABLE seg.meta(key TEXT PRIMARY KEY, value);"
			 "INSERT INTO seg.meta SELECT 'layout', %d UNION ALL SELECT 'seq', %" PRId64
			 " UNION ALL SELECT 'first', min(event_id) FROM seg.events"
			 " UNION ALL SELECT 'last', max(event_id) FROM seg.events; COMMIT;",
			 SEGMENT_MAX_EVENTS, lo, hi, lo, hi, USAGE_DB_LAYOUT, seq);
		rc = sqlite3_exec(db, copy, NULL, NULL, &msg);
		if (!rc) {
			rows = query_int(db, "SELECT count(*) FROM seg.events", 0);
			first = query_int(db, "SELECT value FROM seg.meta WHERE key = 'first'", 0);
			last = query_int(db, "SELECT value FROM seg.meta WHERE key = 'last'", 0);
			n_late = query_int(db, "SELECT count(*) FROM temp.shipped", 0);
			sqlite3_stmt *h;
			if (sqlite3_prepare_v2(db, "INSERT INTO seg.meta VALUES('host', ?1)", -1, &h, NULL) == SQLITE_OK) {
				sqlite3_bind_text(h, 1, u->host, -1, SQLITE_STATIC);
				sqlite3_step(h);
				sqlite3_finalize(h);
			}
		}
		if (!sqlite3_get_autocommit(db))
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		sqlite3_exec(db, "DETACH DATABASE seg", NULL, NULL, NULL);
	}
	if (rc != SQLITE_OK) {
		set_error(u, "%s: %s (usage waits to be shipped)", tmp, msg ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		unlink(tmp);
		return -EIO;
	}
	if (n_late >= SEGMENT_MAX_EVENTS)
		*more = true;
	if (rows > 0) {
		/* durable under its temporary name, then in place, then done */
		snprintf(final, sizeof final, "%s/seg-%012" PRId64 "-%" PRId64 "-%" PRId64 ".db", u->ship_dir, seq,
			 first, last);
		int fd = open(tmp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		int e = fd < 0 ? errno : fsync(fd) < 0 ? errno : 0;
		if (fd >= 0)
			close(fd);
		if (!e) {
			chmod(tmp, 0600);
			if (rename(tmp, final) < 0)
				e = errno;
		}
		if (e) {
			set_error(u, "%s: %s (usage waits to be shipped)", final, strerror(e));
			unlink(tmp);
			return -EIO;
		}
		mesh_fsync_dir_at(AT_FDCWD, u->ship_dir);
	} else {
		unlink(tmp);       /* every row pruned meanwhile: nothing to ship */
		seq--;
	}
	char sql[512];
	snprintf(sql, sizeof sql,
		 "BEGIN IMMEDIATE; DELETE FROM ship_queue WHERE event_id IN (SELECT event_id FROM temp.shipped)"
		 " AND ver = (SELECT s.ver FROM temp.shipped s WHERE s.event_id = ship_queue.event_id);"
		 "DELETE FROM meta WHERE key = 'ship_pending';"
		 "INSERT OR REPLACE INTO meta(key, value) VALUES('ship_seq', %" PRId64 "); COMMIT;", seq);
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
		/* shipped, but still pending or queued: shipped again later, read once */
		set_error(u, "%s/usage.db: %s (a segment may be shipped twice)", u->dir, sqlite3_errmsg(db));
		if (!sqlite3_get_autocommit(db))
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return -EIO;
	}
	return 0;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Merge this host's segments when there are more than SEGMENT_COMPACT_AT,
 * so a report opens a few files, not one per second of a busy day.  Size
 * tiered: the oldest segments that are each at least as large as all
 * newer ones together stay as they are, and the newer ones are merged
 * into one (with the host's current rollups, so it is also the newest
 * carrier of rollups); an event is then copied O(log n) times, where
 * merging everything each time copied the host's whole history every
 * SEGMENT_COMPACT_AT seconds of a busy mount.  `force` (a new retention
 * horizon) merges them all, dropping what it no longer keeps.  The merged
 * segment is renamed into place before the old ones are removed: a reader
 * sees the old ones, the new one, or both (an event counted once: rows
 * are merged by event id).  Best effort: on any failure the segments stay
 * as they are. */
static void compact(struct usage *u, int64_t horizon, bool force)
{
	DIR *d = opendir(u->ship_dir);
	if (!d)
		return;
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		if (strncmp(de->d_name, "seg-", 4) || len < 8 || strcmp(de->d_name + len - 3, ".db"))
			continue;
		if (n == cap)
			names = xrealloc(names, (cap = cap ? cap * 2 : 64) * sizeof *names);
		names[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	if ((n <= SEGMENT_COMPACT_AT && !(force && n > 0)) || ship_db_ready(u)) {
		for (size_t i = 0; i < n; i++)
			free(names[i]);
		free(names);
		return;
	}
	qsort(names, n, sizeof *names, cmp_name);
	size_t first = 0;   /* names[first..n-1] are merged */
	if (!force) {
		off_t *size = xcalloc(n + 1, sizeof *size);   /* size[i]: of names[i..n-1] */
		for (size_t i = n; i-- > 0;) {
			char path[4400];
			struct stat st;
			snprintf(path, sizeof path, "%s/%s", u->ship_dir, names[i]);
			size[i] = size[i + 1] + (stat(path, &st) == 0 ? st.st_size : 0);
		}
		while (first + 1 < n && size[first] - size[first + 1] >= size[first + 1])
			first++;
		free(size);
	}
	if (n - first < 2 && !force) {
		for (size_t i = 0; i < n; i++)
			free(names[i]);
		free(names);
		return;
	}
	sqlite3 *db = u->ship_db;
	int64_t seq = query_int(db, "SELECT value FROM meta WHERE key = 'ship_seq'", 0) + 1;
	char tmp[4400], uri[9000], escaped[8800], sql[1024];
	snprintf(tmp, sizeof tmp, "%s/.tmp-seg-%" PRId64 ".%ld.db", u->ship_dir, seq, (long)getpid());
	unlink(tmp);
	uri_escape(tmp, escaped, sizeof escaped);
	snprintf(uri, sizeof uri, "file:%s?vfs=unix-none", escaped);
	sqlite3_stmt *st = NULL;
	bool ok = sqlite3_prepare_v2(db, "ATTACH DATABASE ?1 AS seg", -1, &st, NULL) == SQLITE_OK;
	if (ok) {
		sqlite3_bind_text(st, 1, uri, -1, SQLITE_STATIC);
		ok = sqlite3_step(st) == SQLITE_DONE;
	}
	sqlite3_finalize(st);
	ok = ok && sqlite3_exec(db, "PRAGMA seg.journal_mode=OFF; PRAGMA seg.synchronous=OFF;"
				"CREATE TABLE seg.events AS SELECT * FROM main.events WHERE 0;"
				"CREATE UNIQUE INDEX seg.events_id ON events(event_id);"
				"CREATE TABLE seg.meta(key TEXT PRIMARY KEY, value);", NULL, NULL, NULL) == SQLITE_OK;
	for (size_t i = first; i < n && ok; i++) {
		char path[4400], opath[9000];
		snprintf(path, sizeof path, "%s/%s", u->ship_dir, names[i]);
		uri_escape(path, escaped, sizeof escaped);
		snprintf(opath, sizeof opath, "file:%s?immutable=1", escaped);
		ok = sqlite3_prepare_v2(db, "ATTACH DATABASE ?1 AS old", -1, &st, NULL) == SQLITE_OK;
		if (ok) {
			sqlite3_bind_text(st, 1, opath, -1, SQLITE_STATIC);
			ok = sqlite3_step(st) == SQLITE_DONE;
		}
		sqlite3_finalize(st);
		if (!ok)
			break;
		/* events that opened before the horizon are not kept (retention) */
		snprintf(sql, sizeof sql,
			 "INSERT INTO seg.events SELECT * FROM old.events WHERE open_ns >= %" PRId64
			 " ON CONFLICT(event_id) DO UPDATE"
			 " SET bytes = excluded.bytes, read_calls = excluded.read_calls, duration_ns = excluded.duration_ns,"
			 " complete = excluded.complete WHERE excluded.complete >= complete", horizon);
		ok = sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK;
		sqlite3_exec(db, "DETACH DATABASE old", NULL, NULL, NULL);
	}
	/* this host's rollups as they are now: what a prune folded is still
	 * counted by readers on other hosts (the newest segment's rollups are
	 * the current ones; usage_report.c) */
	ok = ok && sqlite3_exec(db, "CREATE TABLE seg.rollups AS SELECT * FROM main.rollups", NULL, NULL, NULL) == SQLITE_OK;
	int64_t lo = ok ? query_int(db, "SELECT min(event_id) FROM seg.events", 0) : 0;
	int64_t hi = ok ? query_int(db, "SELECT max(event_id) FROM seg.events", 0) : 0;
	if (ok) {
		snprintf(sql, sizeof sql, "INSERT INTO seg.meta VALUES('layout', %d), ('seq', %" PRId64 "),"
			 " ('first', %" PRId64 "), ('last', %" PRId64 "), ('compacted', %zu), ('horizon_ns', %" PRId64 ")",
			 USAGE_DB_LAYOUT, seq, lo, hi, n - first, horizon);
		ok = sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK;
	}
	sqlite3_exec(db, "DETACH DATABASE seg", NULL, NULL, NULL);
	char final[4400];
	snprintf(final, sizeof final, "%s/seg-%012" PRId64 "-%" PRId64 "-%" PRId64 ".db", u->ship_dir, seq, lo, hi);
	if (ok) {
		int fd = open(tmp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		ok = fd >= 0 && fsync(fd) == 0;
		if (fd >= 0)
			close(fd);
		chmod(tmp, 0600);
		ok = ok && rename(tmp, final) == 0;
	}
	if (ok) {
		mesh_fsync_dir_at(AT_FDCWD, u->ship_dir);
		u->ship_horizon_ns = horizon;
		snprintf(sql, sizeof sql, "INSERT OR REPLACE INTO meta(key, value) VALUES('ship_seq', %" PRId64 ")", seq);
		sqlite3_exec(db, sql, NULL, NULL, NULL);
		for (size_t i = first; i < n; i++) {
			char path[4400];
			snprintf(path, sizeof path, "%s/%s", u->ship_dir, names[i]);
			unlink(path);
		}
		mesh_fsync_dir_at(AT_FDCWD, u->ship_dir);
	} else {
		set_error(u, "%s: merging %zu segments failed: %s (kept as they are)", u->ship_dir, n - first,
			  sqlite3_errmsg(db));
		unlink(tmp);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* The retention horizon of shipped events (0: keep all): the later of
 * mesh.yaml's usage.shippedRetentionDays and the newest prune of this
 * host's database (`meshctl usage --prune-before`, or retentionDays): raw
 * events folded into rollups here leave the shipped copies too.  Looked
 * at hourly, and at once when a prune moved it; a compaction that applies
 * a new horizon runs however few segments there are. */
static int64_t ship_horizon(struct usage *u, int64_t now)
{
	int64_t horizon = 0;
	unsigned days = __atomic_load_n(&u->ship_retention_days, __ATOMIC_RELAXED);
	if (days)
		horizon = now - (int64_t)days * 86400 * NS;
	int64_t pruned = u->ship_db ? query_int(u->ship_db, "SELECT value FROM meta WHERE key = 'pruned_before_ns'", 0)
				    : 0;
	if (pruned > horizon)
		horizon = pruned;
	bool moved_by_prune = pruned > u->ship_prune_seen;
	if (horizon <= u->ship_horizon_ns || (!moved_by_prune && now < u->next_ship_retention_ns))
		return 0;
	u->ship_prune_seen = pruned;
	u->next_ship_retention_ns = now + 3600 * NS;
	return horizon;
}

static void ship(struct usage *u)
{
	bool more = true;
	for (int i = 0; more && i < 16; i++)
		if (ship_once(u, &more))
			return;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t horizon = ship_horizon(u, (int64_t)ts.tv_sec * NS + ts.tv_nsec);
	compact(u, horizon > 0 ? horizon : u->ship_horizon_ns, horizon > 0);
}

/* ---- the writer: state, metrics, retention, prune requests ---- */

void usage_stats(struct usage *u, struct usage_stats *out)
{
	memset(out, 0, sizeof *out);
	out->capacity = u->n_slots;
	for (size_t w = 0; w < u->n_words; w++) {
		uint64_t bits = atomic_load_explicit(&u->in_use[w], memory_order_relaxed);
		out->in_use += (uint64_t)__builtin_popcountll(bits);
		while (bits) {
			size_t i = w * 64 + (size_t)__builtin_ctzll(bits);
			bits &= bits - 1;
			uint32_t state = atomic_load_explicit(&slot_at(u, i)->state, memory_order_acquire);
			out->backlog += state != SLOT_FREE &&
					!(state == SLOT_BEGUN && atomic_load_explicit(&u->written[i], memory_order_relaxed));
		}
	}
	out->committed = atomic_load(&u->committed);
	out->replayed = atomic_load(&u->replayed);
	out->damaged = atomic_load(&u->damaged);
	out->refused = atomic_load(&u->header->refused);
	out->lost = atomic_load(&u->header->lost);
	out->opens_allow = atomic_load(&u->opens[USAGE_ALLOW]);
	out->opens_mask = atomic_load(&u->opens[USAGE_MASK]);
	out->opens_deny = atomic_load(&u->opens[USAGE_DENY]);
	out->opens_discovery = atomic_load(&u->opens_discovery);
	out->bytes = atomic_load(&u->bytes);
	out->read_calls = atomic_load(&u->read_calls);
	out->batches = atomic_load(&u->batches);
	out->batch_max = atomic_load(&u->batch_max);
	out->last_commit_ns = atomic_load(&u->last_commit_ns);
	out->wal = u->wal;
	pthread_mutex_lock(&u->error_lock);
	snprintf(out->last_error, sizeof out->last_error, "%s", u->last_error);
	pthread_mutex_unlock(&u->error_lock);
}

/* One line: a newline would end a state file value early. */
static void one_line(char *s)
{
	for (; *s; s++)
		if (*s == '\n' || *s == '\r')
			*s = ' ';
}

/* The state file: preallocated and rewritten in place, so it still updates
 * when the disk is full, which is when it matters most. */
/* The forwarder's figures, if one is attached (valid = false: none). */
static void sink_figures(struct usage *u, struct usage_sink_status *out)
{
	memset(out, 0, sizeof *out);
	pthread_mutex_lock(&u->error_lock);
	usage_sink_status_fn fn = u->sink_status;
	void *ctx = u->sink_ctx;
	pthread_mutex_unlock(&u->error_lock);
	if (fn) {
		fn(ctx, out);
		out->valid = true;
		one_line(out->last_error);
	}
}

static void write_state(struct usage *u, bool running)
{
	struct usage_stats s;
	usage_stats(u, &s);
	struct usage_sink_status sink;
	sink_figures(u, &sink);
	char prune[256];
	pthread_mutex_lock(&u->error_lock);
	snprintf(prune, sizeof prune, "%s", u->prune_result[0] ? u->prune_result : "-");
	pthread_mutex_unlock(&u->error_lock);
	if (!s.last_error[0])
		snprintf(s.last_error, sizeof s.last_error, "-");
	one_line(s.last_error);
	one_line(prune);
	char text[STATE_SIZE];
	int n = snprintf(text, sizeof text,
		"meshfs-usage-state 1\nhost %s\npid %d\nrunning %d\nstarted_ns %" PRId64 "\nupdated_ns %" PRId64 "\n"
		"policy %s\nsqlite_journal %s\ncapacity %" PRIu64 "\nin_use %" PRIu64 "\nbacklog %" PRIu64 "\n"
		"committed %" PRIu64 "\nreplayed %" PRIu64 "\ndamaged %" PRIu64 "\nrefused %" PRIu64 "\nlost %" PRIu64 "\n"
		"opens_allow %" PRIu64 "\nopens_mask %" PRIu64 "\nopens_deny %" PRIu64 "\nopens_discovery %" PRIu64 "\n"
		"bytes %" PRIu64 "\nread_calls %" PRIu64 "\nbatches %" PRIu64 "\nbatch_max %" PRIu64 "\n"
		"last_commit_ns %" PRId64 "\nretention_days %u\nprune %s\nlast_error %s\nend\n",
		u->host, (int)getpid(), running, u->started_ns, now_ns(), u->serve_when_full ? "serve" : "refuse",
		u->wal ? "wal" : "rollback", s.capacity, s.in_use, s.backlog, s.committed, s.replayed, s.damaged,
		s.refused, s.lost, s.opens_allow, s.opens_mask, s.opens_deny, s.opens_discovery, s.bytes,
		s.read_calls, s.batches, s.batch_max, s.last_commit_ns, u->retention_days, prune, s.last_error);
	if (n > 0 && sink.valid && (size_t)n < sizeof text) {
		n -= 4;                    /* before "end\n" */
		n += snprintf(text + n, sizeof text - (size_t)n,
			      "sink_connected %d\nsink_backlog %" PRId64 "\nsink_oldest_ns %" PRId64 "\nsink_shipped %" PRIu64
			      "\nsink_last_error %s\nend\n", sink.connected, sink.backlog, sink.oldest_ns, sink.shipped,
			      sink.last_error[0] ? sink.last_error : "-");
	}
	if (n < 0 || u->state_fd < 0)
		return;
	if ((size_t)n >= sizeof text)
		n = sizeof text - 1;
	memset(text + n, '\n', sizeof text - (size_t)n);
	if (pwrite(u->state_fd, text, sizeof text, 0) != (ssize_t)sizeof text)
		set_error(u, "%s/state: %s", u->dir, strerror(errno));
}

static void prom_label(FILE *f, const char *value)
{
	for (const char *p = value; *p; p++) {
		if (*p == '\n') {
			fputs("\\n", f);
			continue;
		}
		if (*p == '\\' || *p == '"')
			fputc('\\', f);
		fputc(*p, f);
	}
}

static void prom_metric(FILE *f, const char *name, const char *type, const char *help, const char *host,
			const char *decision, double value)
{
	if (help)
		fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
	fprintf(f, "%s{host=\"", name);
	prom_label(f, host);
	fputc('"', f);
	if (decision)
		fprintf(f, ",decision=\"%s\"", decision);
	fprintf(f, "} %.17g\n", value);
}

/* The Prometheus textfile, for node_exporter's textfile collector: written
 * whole under a temporary name and renamed, so a scrape never sees half. */
static void write_metrics(struct usage *u)
{
	if (!u->metrics_path)
		return;
	struct usage_stats s;
	usage_stats(u, &s);
	size_t len = strlen(u->metrics_path) + 8;
	char *tmp = xmalloc(len);
	snprintf(tmp, len, "%s.tmp", u->metrics_path);
	FILE *f = fopen(tmp, "we");
	if (!f) {
		free(tmp);
		return;
	}
	/* outside the store, for the metrics collector (the daemon's umask is 077) */
	fchmod(fileno(f), 0644);
	const char *h = u->host;
	prom_metric(f, "meshfs_opens_total", "counter", "Data opens through the mount by decision, since the daemon started.",
		    h, "allow", (double)s.opens_allow);
	prom_metric(f, "meshfs_opens_total", NULL, NULL, h, "mask", (double)s.opens_mask);
	prom_metric(f, "meshfs_opens_total", NULL, NULL, h, "deny", (double)s.opens_deny);
	prom_metric(f, "meshfs_discovery_opens_total", "counter", "Opens of contracts, schemas and docs.", h, NULL,
		    (double)s.opens_discovery);
	prom_metric(f, "meshfs_read_bytes_total", "counter", "Bytes served by the daemon (page-cache hits never reach it).",
		    h, NULL, (double)s.bytes);
	prom_metric(f, "meshfs_usage_journal_capacity", "gauge", "Usage journal slots.", h, NULL, (double)s.capacity);
	prom_metric(f, "meshfs_usage_journal_in_use", "gauge", "Journal slots holding an open or a waiting event.", h,
		    NULL, (double)s.in_use);
	prom_metric(f, "meshfs_usage_journal_backlog", "gauge", "Events not yet written to the usage database.", h,
		    NULL, (double)s.backlog);
	prom_metric(f, "meshfs_usage_events_committed_total", "counter", "Events written to the usage database.", h,
		    NULL, (double)s.committed);
	prom_metric(f, "meshfs_usage_refused_total", "counter",
		    "Opens refused because the journal was full (kept across restarts).", h, NULL, (double)s.refused);
	prom_metric(f, "meshfs_usage_lost_total", "counter",
		    "Events not recorded because the journal was full (kept across restarts).", h, NULL, (double)s.lost);
	prom_metric(f, "meshfs_usage_last_commit_timestamp_seconds", "gauge",
		    "When the writer last committed (0: not since start).", h, NULL, (double)s.last_commit_ns / 1e9);
	prom_metric(f, "meshfs_usage_writer_failing", "gauge", "1 while the usage database cannot be written.", h, NULL,
		    s.last_error[0] ? 1 : 0);
	struct usage_sink_status sink;
	sink_figures(u, &sink);
	if (sink.valid) {
		int64_t now = now_ns();
		prom_metric(f, "meshfs_usage_sink_connected", "gauge", "1 while the PostgreSQL sink is connected.", h, NULL,
			    sink.connected ? 1 : 0);
		prom_metric(f, "meshfs_usage_sink_backlog", "gauge", "Events in the outbox not yet in PostgreSQL.", h, NULL,
			    (double)sink.backlog);
		prom_metric(f, "meshfs_usage_sink_oldest_age_seconds", "gauge",
			    "Age of the oldest event not yet in PostgreSQL (0: none waits).", h, NULL,
			    sink.backlog > 0 && sink.oldest_ns > 0 ? (double)(now - sink.oldest_ns) / 1e9 : 0);
		prom_metric(f, "meshfs_usage_sink_shipped_total", "counter", "Events shipped to PostgreSQL since start.", h,
			    NULL, (double)sink.shipped);
		prom_metric(f, "meshfs_usage_sink_failing", "gauge", "1 while the last attempt to ship failed.", h, NULL,
			    sink.last_error[0] ? 1 : 0);
	}
	bool ok = !ferror(f);
	if (fclose(f) != 0 || !ok || rename(tmp, u->metrics_path) < 0)
		unlink(tmp);
	free(tmp);
}

static int64_t day_start(int64_t t_ns)
{
	int64_t day = 86400 * NS;
	return t_ns - ((t_ns % day) + day) % day;
}

/* A prune asked for by `meshctl usage --prune-before` (usage_report.c):
 * done here so that the database keeps its one writer. */
static void serve_prune_request(struct usage *u)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/%s", u->dir, USAGE_PRUNE_REQUEST);
	int fd = mesh_open_regular_at(AT_FDCWD, path, O_RDONLY, 0, NULL);
	if (fd < 0)
		return;
	char text[64];
	ssize_t n = read(fd, text, sizeof text - 1);
	close(fd);
	text[n > 0 ? n : 0] = '\0';
	char *end;
	long long before = strtoll(text, &end, 10);
	if (end == text || before <= 0) {
		unlink(path);
		return;
	}
	if (db_ready(u))
		return;                                  /* kept: tried again next time */
	struct mesh_err err = {0};
	uint64_t folded = 0;
	int rc = usage_db_prune(u->db, before, &folded, &err);
	pthread_mutex_lock(&u->error_lock);
	if (rc)
		snprintf(u->prune_result, sizeof u->prune_result, "before_ns %lld failed: %.200s", before, err.msg);
	else
		snprintf(u->prune_result, sizeof u->prune_result, "before_ns %lld folded %" PRIu64, before, folded);
	pthread_mutex_unlock(&u->error_lock);
	if (rc)
		db_close(u);
	unlink(path);
}

static void apply_retention(struct usage *u, int64_t now)
{
	unsigned retention_days = __atomic_load_n(&u->retention_days, __ATOMIC_RELAXED);   /* ops: usage_configure */
	if (!retention_days || now < u->next_retention_ns || db_ready(u))
		return;
	struct mesh_err err = {0};
	uint64_t folded = 0;
	if (usage_db_prune(u->db, day_start(now) - (int64_t)retention_days * 86400 * NS, &folded, &err)) {
		set_error(u, "retention: %s", err.msg);
		db_close(u);
		u->next_retention_ns = now + 60 * NS;
		return;
	}
	u->next_retention_ns = now + 3600 * NS;
}

static void *writer_main(void *arg)
{
	struct usage *u = arg;
	/* the journal drains only as fast as this thread runs: when FUSE
	 * workers and readers keep every core busy it must still get its turn
	 * (allowed as root; otherwise the default priority stays) */
	setpriority(PRIO_PROCESS, (id_t)gettid(), -10);
	for (;;) {
		pthread_mutex_lock(&u->wake_lock);
		if (!u->stop) {
			struct timespec until = monotonic_deadline((int64_t)u->flush_interval_ms * 1000000);
			pthread_cond_timedwait(&u->wake, &u->wake_lock, &until);
		}
		bool stop = u->stop;
		pthread_mutex_unlock(&u->wake_lock);
		if (stop)
			break;          /* usage_close drains */
		atomic_store_explicit(&u->pending, 0, memory_order_relaxed);
		uint64_t pass = atomic_fetch_add(&u->pass_begun, 1) + 1;
		int64_t now = now_ns();
		if (now >= u->retry_at_ns) {
			if (drain(u, false)) {
				/* SQLite failing (disk full, unwritable): retry less often */
				u->backoff_ms = u->backoff_ms ? u->backoff_ms * 2 : 100;
				if (u->backoff_ms > BACKOFF_MAX_MS)
					u->backoff_ms = BACKOFF_MAX_MS;
				u->retry_at_ns = now + (int64_t)u->backoff_ms * 1000000;
			} else {
				u->backoff_ms = 0;
			}
		}
		atomic_store(&u->pass_done, pass);
		if (atomic_load(&u->full_waiters)) {
			pthread_mutex_lock(&u->wake_lock);
			pthread_cond_broadcast(&u->pass_done_cond);
			pthread_mutex_unlock(&u->wake_lock);
		}
		if (now >= u->next_state_ns) {
			u->next_state_ns = now + (int64_t)u->metrics_interval_ms * 1000000;
			if (!u->backoff_ms) {
				serve_prune_request(u);
				apply_retention(u, now);
			}
			write_state(u, true);
			write_metrics(u);
		}
	}
	return NULL;
}

/* Ships segments every ship_interval_ms, apart from the writer so that a
 * slow shared filesystem never delays the journal's draining. */
static void *shipper_main(void *arg)
{
	struct usage *u = arg;
	for (;;) {
		pthread_mutex_lock(&u->wake_lock);
		if (!u->stop) {
			struct timespec until = monotonic_deadline((int64_t)u->ship_interval_ms * 1000000);
			pthread_cond_timedwait(&u->ship_wake, &u->wake_lock, &until);
		}
		bool stop = u->stop;
		pthread_mutex_unlock(&u->wake_lock);
		if (stop)
			break;          /* usage_close ships the rest */
		ship(u);
	}
	return NULL;
}

/* ---- open and close ---- */

static int make_dirs(const char *dir, struct mesh_err *err)
{
	char *path = xstrdup(dir);
	int rc = 0;
	for (char *p = path + 1;; p++) {
		bool last = *p == '\0';
		if (*p != '/' && !last)
			continue;
		*p = '\0';
		if (mkdir(path, 0700) < 0 && errno != EEXIST) {
			rc = mesh_errf(err, -errno, "%s: %s", path, strerror(errno));
			break;
		}
		if (last)
			break;
		*p = '/';
	}
	free(path);
	return rc;
}

static void destroy(struct usage *u)
{
	db_close(u);
	if (u->map)
		munmap(u->map, u->map_size);
	if (u->journal_fd >= 0)
		close(u->journal_fd);      /* also drops the lock */
	if (u->state_fd >= 0)
		close(u->state_fd);
	pthread_mutex_destroy(&u->wake_lock);
	pthread_mutex_destroy(&u->error_lock);
	pthread_cond_destroy(&u->wake);
	pthread_cond_destroy(&u->pass_done_cond);
	pthread_cond_destroy(&u->ship_wake);
	ship_db_close(u);
	free(u->free_next);
	free(u->in_use);
	free((void *)u->written);
	free(u->batch);
	free(u->freed);
	free(u->dir);
	free(u->host);
	free(u->metrics_path);
	free(u->ship_dir);
	free(u);
}

static int map_journal(struct usage *u, size_t slots, const char *path, struct mesh_err *err)
{
	if (u->map)
		munmap(u->map, u->map_size);
	u->map_size = HEADER_SIZE + slots * USAGE_SLOT_SIZE;
	u->map = mmap(NULL, u->map_size, PROT_READ | PROT_WRITE, MAP_SHARED, u->journal_fd, 0);
	if (u->map == MAP_FAILED) {
		u->map = NULL;
		return mesh_errf(err, -errno, "%s: mmap: %s", path, strerror(errno));
	}
	u->header = (struct journal_header *)u->map;
	u->n_slots = slots;
	u->n_words = (slots + 63) / 64;
	return 0;
}

/* Open the journal file, locked, its header checked or written, at least
 * the size the configuration asks (grown in place; shrunk later, if empty). */
static int open_journal(struct usage *u, size_t want, struct mesh_err *err)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/journal", u->dir);
	for (int attempt = 0;; attempt++) {
		u->journal_fd = mesh_open_regular_at(AT_FDCWD, path, O_RDWR | O_CREAT, 0600, NULL);
		if (u->journal_fd < 0)
			return mesh_errf(err, u->journal_fd, "%s: %s", path, mesh_open_strerror(u->journal_fd));
		/* `meshctl usage --prune-before` holds the lock for a moment
		 * while it prunes a stopped host's database: wait that out */
		int locked, tries = 0;
		while ((locked = flock(u->journal_fd, LOCK_EX | LOCK_NB)) < 0 && errno == EWOULDBLOCK && ++tries < 100)
			usleep(50000);
		if (locked < 0)
			return mesh_errf(err, errno == EWOULDBLOCK ? -EBUSY : -errno,
					 "%s: another meshfs daemon records usage here (%s)", path, strerror(errno));
		struct stat st;
		if (fstat(u->journal_fd, &st) < 0)
			return mesh_errf(err, -errno, "%s: %s", path, strerror(errno));
		struct journal_header h;
		memset(&h, 0, sizeof h);
		if (st.st_size == 0) {
			memcpy(h.magic, JOURNAL_MAGIC, 8);
			h.layout = JOURNAL_LAYOUT;
			h.slot_size = USAGE_SLOT_SIZE;
			h.slots = want;
			h.created_ns = now_ns();
			/* preallocated: recording never needs a new block (no ENOSPC) */
			int e = posix_fallocate(u->journal_fd, 0, (off_t)(HEADER_SIZE + want * USAGE_SLOT_SIZE));
			if (e)
				return mesh_errf(err, -e, "%s: cannot preallocate %zu events: %s", path, want, strerror(e));
			if (pwrite(u->journal_fd, &h, sizeof h, 0) != (ssize_t)sizeof h || fsync(u->journal_fd) < 0)
				return mesh_errf(err, -errno, "%s: %s", path, strerror(errno));
			return map_journal(u, want, path, err);
		}
		ssize_t got = pread(u->journal_fd, &h, sizeof h, 0);
		size_t fits = st.st_size > HEADER_SIZE ? ((size_t)st.st_size - HEADER_SIZE) / USAGE_SLOT_SIZE : 0;
		if (got == (ssize_t)sizeof h && !memcmp(h.magic, JOURNAL_MAGIC, 8) && h.layout == JOURNAL_LAYOUT &&
		    h.slot_size == USAGE_SLOT_SIZE && h.slots >= USAGE_MIN_SLOTS && h.slots <= fits) {
			size_t slots = h.slots;
			if (want > slots) {
				int e = posix_fallocate(u->journal_fd, 0, (off_t)(HEADER_SIZE + want * USAGE_SLOT_SIZE));
				if (e)
					return mesh_errf(err, -e, "%s: cannot grow to %zu events: %s", path, want, strerror(e));
				slots = want;
			}
			int rc = map_journal(u, slots, path, err);
			if (!rc)
				u->header->slots = slots;
			return rc;
		}
		if (attempt)
			return mesh_errf(err, -EPROTO, "%s: not a usage journal", path);
		/* not ours, or of another layout: kept aside for a human, never replayed */
		char aside[4300];
		snprintf(aside, sizeof aside, "%s.unreadable-%" PRId64, path, now_ns() / NS);
		close(u->journal_fd);
		u->journal_fd = -1;
		if (rename(path, aside) < 0)
			return mesh_errf(err, -errno, "%s: not a usage journal, and cannot move it aside: %s", path,
					 strerror(errno));
		set_error(u, "%s: not a usage journal of layout %u; moved to %s", path, JOURNAL_LAYOUT, aside);
	}
}

int usage_probe(const char *host_dir, struct mesh_err *err)
{
	int rc = make_dirs(host_dir, err);
	if (rc)
		return rc;
	char path[4200];
	snprintf(path, sizeof path, "%s/journal", host_dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return mesh_errf(err, -errno, "%s: %s", path, strerror(errno));
	/* a daemon that was just unmounted may still be flushing: wait for it
	 * as usage_open does (5 s), then say who holds the directory */
	int locked, tries = 0;
	while ((locked = flock(fd, LOCK_EX | LOCK_NB)) < 0 && errno == EWOULDBLOCK && ++tries < 100)
		usleep(50000);
	if (locked < 0)
		rc = mesh_errf(err, errno == EWOULDBLOCK ? -EBUSY : -errno,
			       "%s: another meshfs daemon records usage here (%s; give each daemon its own "
			       "-o hostname=)", path, errno == EWOULDBLOCK ? "locked" : strerror(errno));
	close(fd);
	return rc;
}

int usage_open(const char *host_dir, const struct usage_config *cfg, struct usage **out, struct mesh_err *err)
{
	*out = NULL;
	struct usage *u = xcalloc(1, sizeof *u);
	u->when_sec = INT64_MIN;
	u->journal_fd = u->state_fd = -1;
	pthread_mutex_init(&u->wake_lock, NULL);
	pthread_mutex_init(&u->error_lock, NULL);
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);   /* clock steps do not stall the writer */
	pthread_cond_init(&u->wake, &attr);
	pthread_cond_init(&u->pass_done_cond, &attr);
	pthread_cond_init(&u->ship_wake, &attr);
	pthread_condattr_destroy(&attr);
	u->dir = xstrdup(host_dir);
	char host[256] = "";
	if (cfg->hostname && *cfg->hostname)
		snprintf(host, sizeof host, "%s", cfg->hostname);
	else if (gethostname(host, sizeof host - 1) < 0 || !*host)
		snprintf(host, sizeof host, "localhost");
	u->host = xstrdup(host);
	u->metrics_path = cfg->metrics_path && *cfg->metrics_path ? xstrdup(cfg->metrics_path) : NULL;
	u->serve_when_full = cfg->serve_when_full;
	u->metrics_interval_ms = cfg->metrics_interval_ms ? cfg->metrics_interval_ms : 1000;
	u->flush_interval_ms = cfg->flush_interval_ms ? cfg->flush_interval_ms : 50;
	u->retention_days = cfg->retention_days;
	u->ship_retention_days = cfg->ship_retention_days;
	u->ship_dir = cfg->ship_dir && *cfg->ship_dir ? xstrdup(cfg->ship_dir) : NULL;
	u->ship_interval_ms = cfg->ship_interval_ms ? cfg->ship_interval_ms : 1000;
	u->outbox = cfg->outbox;                          /* ops */
	u->rows_at_mark = -1;                             /* the first range is bounded by a scan */
	u->started_ns = now_ns();
	size_t want = cfg->slots ? cfg->slots : USAGE_DEFAULT_SLOTS;
	if (want < USAGE_MIN_SLOTS)
		want = USAGE_MIN_SLOTS;
	if (want > UINT32_MAX / 2)
		want = UINT32_MAX / 2;
	int rc = make_dirs(host_dir, err);
	if (!rc && u->ship_dir)
		rc = make_dirs(u->ship_dir, err);
	if (!rc)
		rc = open_journal(u, want, err);
	char path[4200];
	snprintf(path, sizeof path, "%s/state", host_dir);
	if (!rc && (u->state_fd = mesh_open_regular_at(AT_FDCWD, path, O_RDWR | O_CREAT, 0600, NULL)) < 0)
		rc = mesh_errf(err, u->state_fd, "%s: %s", path, mesh_open_strerror(u->state_fd));
	int e;
	if (!rc && (e = posix_fallocate(u->state_fd, 0, STATE_SIZE)) != 0)
		rc = mesh_errf(err, -e, "%s: %s", path, strerror(e));
	if (rc) {
		destroy(u);
		return rc;
	}
	u->wal = !network_filesystem(host_dir);
	u->batch = xmalloc(BATCH_MAX * sizeof *u->batch);
	u->freed = xmalloc(BATCH_MAX * sizeof *u->freed);
	size_t slots = u->n_slots;
	u->wake_threshold = slots / 4 < 1024 ? slots / 4 : 1024;
	u->in_use = xcalloc(u->n_words, sizeof *u->in_use);
	u->written = xcalloc(slots, sizeof *u->written);
	u->free_next = xcalloc(slots, sizeof *u->free_next);

	/* what a stopped daemon left: opens it never ended are abandoned (they
	 * will never end now); anything else unrecognised is free space */
	uint64_t left = 0;
	for (size_t i = 0; i < slots; i++) {
		struct slot *s = slot_at(u, i);
		uint32_t state = atomic_load(&s->state);
		if (state == SLOT_BEGUN)
			atomic_store(&s->state, state = SLOT_ABANDONED);
		if (state == SLOT_ENDED || state == SLOT_ABANDONED) {
			mark_in_use(u, i, true);
			left++;
		} else if (state != SLOT_FREE) {
			atomic_store(&s->state, SLOT_FREE);
		}
	}
	atomic_store(&u->replayed, left);
	uint64_t floor = (uint64_t)(now_ns() / 1000);
	if (atomic_load(&u->header->last_id) < floor)
		atomic_store(&u->header->last_id, floor);
	u->saved_lost = u->saved_refused = UINT64_MAX;     /* into the database with the first batch */
	if (!db_ready(u)) {
		/* ids stay above the database's even if the journal was lost */
		sqlite3_stmt *st;
		if (sqlite3_prepare_v2(u->db, "SELECT max(event_id) FROM events", -1, &st, NULL) == SQLITE_OK) {
			if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) > 0 &&
			    (uint64_t)sqlite3_column_int64(st, 0) > atomic_load(&u->header->last_id))
				atomic_store(&u->header->last_id, (uint64_t)sqlite3_column_int64(st, 0));
			sqlite3_finalize(st);
		}
		if (left)
			drain(u, false);   /* what fails waits for the writer */
	}
	size_t remaining = 0;
	for (size_t w = 0; w < u->n_words; w++)
		remaining += (size_t)__builtin_popcountll(atomic_load(&u->in_use[w]));
	if (want < slots && !remaining) {
		/* a smaller journal asked for, and nothing left in this one */
		if (ftruncate(u->journal_fd, (off_t)(HEADER_SIZE + want * USAGE_SLOT_SIZE)) == 0) {
			rc = map_journal(u, want, "journal", err);
			if (rc) {
				destroy(u);
				return rc;
			}
			u->header->slots = want;
			slots = want;
		}
	}
	/* the free stack, from scratch: every free slot, the lowest on top.
	 * The replay's commit above already pushed the slots it freed; they
	 * are free now and in the chain below, so the stack is emptied first
	 * (nothing else runs yet): a slot pushed twice links the stack into a
	 * cycle that hands out slots still in use. */
	atomic_store(&u->free_head, ((atomic_load(&u->free_head) >> 32) + 1) << 32);
	uint32_t *chain = xmalloc(slots * sizeof *chain);
	size_t n_free = 0;
	for (size_t i = 0; i < slots; i++)
		if (!(atomic_load(&u->in_use[i / 64]) & (1ULL << (i % 64))))
			chain[n_free++] = (uint32_t)i;
	push_free(u, chain, n_free);
	free(chain);
	write_state(u, true);
	u->next_state_ns = now_ns() + (int64_t)u->metrics_interval_ms * 1000000;
	rc = pthread_create(&u->writer, NULL, writer_main, u);
	if (rc) {
		destroy(u);
		return mesh_errf(err, -rc, "usage writer thread: %s", strerror(rc));
	}
	pthread_setname_np(u->writer, "usage-writer");
	u->writer_running = true;
	if (u->ship_dir) {
		rc = pthread_create(&u->shipper, NULL, shipper_main, u);
		if (rc) {
			usage_close(u);
			return mesh_errf(err, -rc, "usage shipper thread: %s", strerror(rc));
		}
		pthread_setname_np(u->shipper, "usage-shipper");
		u->shipper_running = true;
	}
	*out = u;
	return 0;
}

int usage_close(struct usage *u)
{
	if (!u)
		return 0;
	if (u->writer_running) {
		pthread_mutex_lock(&u->wake_lock);
		u->stop = true;
		pthread_cond_signal(&u->wake);
		pthread_cond_signal(&u->ship_wake);
		pthread_cond_broadcast(&u->pass_done_cond);
		pthread_mutex_unlock(&u->wake_lock);
		pthread_join(u->writer, NULL);
	}
	if (u->shipper_running)
		pthread_join(u->shipper, NULL);
	/* a clean stop: every event into SQLite, the journal left empty; a
	 * database that still fails after a while keeps them for the next start */
	int64_t give_up = now_ns() + CLOSE_RETRY_NS;
	int rc;
	while ((rc = drain(u, true)) != 0 && now_ns() < give_up)
		usleep(100000);
	if (!rc && u->ship_dir)
		ship(u);          /* a clean stop leaves nothing unshipped */
	write_state(u, false);
	write_metrics(u);
	if (u->wal && u->db)
		sqlite3_exec(u->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
	destroy(u);
	return rc;
}

/* ---- ops: settings changed at SIGHUP (mesh.yaml's usage: block) ---- */

void usage_configure(struct usage *u, bool serve_when_full, unsigned retention_days, unsigned ship_retention_days)
{
	if (!u)
		return;
	__atomic_store_n(&u->serve_when_full, serve_when_full, __ATOMIC_RELAXED);
	__atomic_store_n(&u->retention_days, retention_days, __ATOMIC_RELAXED);
	__atomic_store_n(&u->ship_retention_days, ship_retention_days, __ATOMIC_RELAXED);
}

void usage_set_sink_status(struct usage *u, usage_sink_status_fn fn, void *ctx)
{
	if (!u)
		return;
	pthread_mutex_lock(&u->error_lock);
	u->sink_status = fn;
	u->sink_ctx = ctx;
	pthread_mutex_unlock(&u->error_lock);
}

void usage_outbox_shipped(struct usage *u, int64_t seq)
{
	if (u && seq > atomic_load(&u->outbox_shipped))
		atomic_store(&u->outbox_shipped, seq);
}
