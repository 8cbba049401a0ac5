/*
 * view_cache.c - the host's cache of materialized views (contract in
 * include/view_cache.h) and the hash secret.
 *
 * Not here: the transform (view_build.c), who gets which plan (daemon.c).
 */
#include "view_cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define KEY_LEN 32

enum entry_state { ENTRY_UNVERIFIED, ENTRY_READY, ENTRY_BUSY };

struct entry {
	char key[KEY_LEN + 1];
	enum entry_state state;
	uint64_t size, last_use;
	char sha256[65];
	struct stat seen;            /* identity when built or verified */
};

struct view_cache {
	char *dir;
	int dir_fd;
	uint64_t max_bytes, total, clock;
	pthread_mutex_t lock;        /* protects everything below */
	pthread_cond_t changed;      /* an entry left ENTRY_BUSY */
	struct entry *entries;
	size_t n;
	unsigned tmp_seq;
};

static int mkdir_p(const char *path, mode_t mode)
{
	char buf[4096];
	snprintf(buf, sizeof buf, "%s", path);
	for (char *p = buf + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			if (mkdir(buf, 0755) < 0 && errno != EEXIST)
				return -errno;
			*p = '/';
		}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static struct entry *find(struct view_cache *c, const char *key)
{
	for (size_t i = 0; i < c->n; i++)
		if (!strcmp(c->entries[i].key, key))
			return &c->entries[i];
	return NULL;
}

static struct entry *add(struct view_cache *c, const char *key)
{
	c->entries = xrealloc(c->entries, (c->n + 1) * sizeof *c->entries);
	struct entry *e = &c->entries[c->n++];
	memset(e, 0, sizeof *e);
	snprintf(e->key, sizeof e->key, "%s", key);
	return e;
}

static void drop(struct view_cache *c, struct entry *e)
{
	c->total -= e->size;
	*e = c->entries[--c->n];
}

static bool key_name(const char *name, const char *suffix, char key[KEY_LEN + 1])
{
	size_t n = strlen(name);
	if (n != KEY_LEN + strlen(suffix) || strcmp(name + KEY_LEN, suffix))
		return false;
	memcpy(key, name, KEY_LEN);
	key[KEY_LEN] = '\0';
	return strspn(key, "0123456789abcdef") == KEY_LEN;
}

int view_cache_open(const char *dir, uint64_t max_bytes, struct view_cache **out, struct mesh_err *err)
{
	int rc = mkdir_p(dir, 0700);
	if (rc)
		return mesh_errf(err, rc, "view cache %s: %s", dir, strerror(-rc));
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		return mesh_errf(err, rc, "view cache %s: %s", dir, strerror(-rc));
	}
	if (st.st_uid != geteuid()) {
		close(fd);
		return mesh_errf(err, -EPERM, "view cache %s: owned by uid %u, not by the service (uid %u)", dir,
				 (unsigned)st.st_uid, (unsigned)geteuid());
	}
	if ((st.st_mode & 077) && fchmod(fd, 0700) < 0) {
		rc = -errno;
		close(fd);
		return mesh_errf(err, rc, "view cache %s: cannot make it 0700: %s", dir, strerror(-rc));
	}
	struct view_cache *c = xcalloc(1, sizeof *c);
	c->dir = xstrdup(dir);
	c->dir_fd = fd;
	c->max_bytes = max_bytes ? max_bytes : VIEW_CACHE_MAX_DEFAULT;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->changed, NULL);
	DIR *d = fdopendir(dup(fd));
	struct dirent *de;
	while (d && (de = readdir(d))) {
		char key[KEY_LEN + 1];
		if (!strncmp(de->d_name, ".tmp-", 5)) {
			unlinkat(fd, de->d_name, 0);   /* a build that never finished */
		} else if (key_name(de->d_name, ".view", key)) {
			struct stat es;
			if (fstatat(fd, de->d_name, &es, AT_SYMLINK_NOFOLLOW) || !S_ISREG(es.st_mode))
				continue;
			struct entry *e = add(c, key);
			e->state = ENTRY_UNVERIFIED;
			e->size = (uint64_t)es.st_size;
			e->last_use = (uint64_t)es.st_atim.tv_sec;   /* order only; clock restarts above */
			c->total += e->size;
		}
	}
	if (d)
		closedir(d);
	for (size_t i = 0; i < c->n; i++)
		if (c->entries[i].last_use > c->clock)
			c->clock = c->entries[i].last_use;
	*out = c;
	return 0;
}

void view_cache_close(struct view_cache *c)
{
	if (!c)
		return;
	close(c->dir_fd);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->changed);
	free(c->entries);
	free(c->dir);
	free(c);
}

uint64_t view_cache_bytes(struct view_cache *c, size_t *entries)
{
	pthread_mutex_lock(&c->lock);
	uint64_t t = c->total;
	if (entries)
		*entries = c->n;
	pthread_mutex_unlock(&c->lock);
	return t;
}

static const char *format_name(enum view_format f)
{
	return f == VIEW_CSV ? "csv" : f == VIEW_JSONL ? "jsonl" : "parquet";
}

static void entry_key(const struct view_source *src, const struct view_plan *plan, const unsigned char *secret,
		      char key[KEY_LEN + 1])
{
	char hex[65];
	struct mesh_sha256 *h = mesh_sha256_new();
	mesh_sha256_update(h, "meshfs-view-1\n", 14);
	mesh_sha256_update(h, src->sha256, strlen(src->sha256));
	const char *fmt = format_name(src->format);
	mesh_sha256_update(h, "\n", 1);
	mesh_sha256_update(h, fmt, strlen(fmt));
	mesh_sha256_update(h, "\n", 1);
	mesh_sha256_update(h, plan->text, strlen(plan->text));
	mesh_sha256_update(h, "\n", 1);
	mesh_sha256_update(h, secret, VIEW_SECRET_LEN);
	mesh_sha256_final(h, hex);
	memcpy(key, hex, KEY_LEN);
	key[KEY_LEN] = '\0';
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

static int open_entry(struct view_cache *c, const char *key, struct stat *st)
{
	char name[KEY_LEN + 8];
	snprintf(name, sizeof name, "%s.view", key);
	int fd = openat(c->dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
		close(fd);
		return -EIO;
	}
	return fd;
}

/* Does the open entry match its meta file and the request?  Reads it all. */
static bool verify(struct view_cache *c, const char *key, int fd, const struct stat *st,
		   const struct view_source *src, const struct view_plan *plan, char sha_out[65])
{
	char name[KEY_LEN + 8], *text = NULL;
	size_t len;
	snprintf(name, sizeof name, "%s.meta", key);
	if (mesh_read_file_at(c->dir_fd, name, 1u << 20, &text, &len, NULL))
		return false;
	json_t *meta = json_loadb(text, len, 0, NULL);
	free(text);
	const char *source = json_string_value(json_object_get(meta, "source_sha256"));
	const char *mplan = json_string_value(json_object_get(meta, "plan"));
	const char *sha = json_string_value(json_object_get(meta, "sha256"));
	json_int_t size = json_integer_value(json_object_get(meta, "size"));
	bool ok = source && mplan && sha && strlen(sha) == 64 && !strcmp(source, src->sha256) &&
		  !strcmp(mplan, plan->text) && size == (json_int_t)st->st_size;
	if (ok) {
		struct mesh_sha256 *h = mesh_sha256_new();
		char *buf = xmalloc(1u << 20);
		off_t off = 0;
		ssize_t r;
		while ((r = pread(fd, buf, 1u << 20, off)) > 0) {
			mesh_sha256_update(h, buf, (size_t)r);
			off += r;
		}
		free(buf);
		char hex[65];
		mesh_sha256_final(h, hex);
		ok = r == 0 && off == st->st_size && !strcmp(hex, sha);
		if (ok)
			memcpy(sha_out, hex, 65);
	}
	json_decref(meta);
	return ok;
}

/* Evict least recently used entries (never `keep`) until `need` more bytes
 * fit.  Under the lock. */
static int make_room(struct view_cache *c, uint64_t need, const char *keep)
{
	while (c->total + need > c->max_bytes) {
		struct entry *victim = NULL;
		for (size_t i = 0; i < c->n; i++) {
			struct entry *e = &c->entries[i];
			if (e->state != ENTRY_BUSY && strcmp(e->key, keep) && (!victim || e->last_use < victim->last_use))
				victim = e;
		}
		if (!victim)
			return -ENOSPC;
		char name[KEY_LEN + 8];
		snprintf(name, sizeof name, "%s.view", victim->key);
		unlinkat(c->dir_fd, name, 0);
		snprintf(name, sizeof name, "%s.meta", victim->key);
		unlinkat(c->dir_fd, name, 0);
		syslog(LOG_INFO, "view cache: evicted %s.view (%llu bytes)", victim->key,
		       (unsigned long long)victim->size);
		drop(c, victim);
	}
	return 0;
}

static double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Build the entry `key` (marked ENTRY_BUSY by the caller); returns an open fd. */
static int build(struct view_cache *c, const char *key, const struct view_source *src,
		 const struct view_plan *plan, const unsigned char *secret, struct view_info *info,
		 struct stat *st, struct mesh_err *err)
{
	double t0 = now_seconds();
	int in = src->open(src->ctx);
	if (in < 0)
		return mesh_errf(err, in, "cannot open the release file: %s", strerror(-in));
	char tmp[64];
	pthread_mutex_lock(&c->lock);
	snprintf(tmp, sizeof tmp, ".tmp-%s-%d-%u", key, (int)getpid(), c->tmp_seq++);
	pthread_mutex_unlock(&c->lock);
	int out = openat(c->dir_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0) {
		int e = -errno;
		close(in);
		return mesh_errf(err, e, "view cache %s: %s", c->dir, strerror(-e));
	}
	struct view_build_result res;
	int rc = view_build(in, out, src->format, plan, secret, &res, err);
	close(in);
	if (!rc && strcmp(res.in_sha256, src->sha256))
		rc = mesh_errf(err, -EIO, "the release file does not match the SHA-256 of its manifest");
	if (!rc && fsync(out) < 0)
		rc = mesh_errf(err, -errno, "view cache: fsync: %s", strerror(errno));
	if (close(out) < 0 && !rc)
		rc = mesh_errf(err, -errno, "view cache: close: %s", strerror(errno));
	if (!rc) {
		pthread_mutex_lock(&c->lock);
		rc = make_room(c, res.out_bytes, key);
		pthread_mutex_unlock(&c->lock);
		if (rc)
			mesh_errf(err, rc, "a view of %llu bytes does not fit the cache's cap of %llu bytes (-o view_cache_max)",
				  (unsigned long long)res.out_bytes, (unsigned long long)c->max_bytes);
	}
	char name[KEY_LEN + 8];
	if (!rc) {
		json_t *meta = json_pack("{s:s, s:s, s:s, s:I, s:s}", "source_sha256", src->sha256, "plan", plan->text,
					 "format", format_name(src->format), "size",
					 (json_int_t)res.out_bytes, "sha256", res.out_sha256);
		char *text = mesh_json_text(meta);
		json_decref(meta);
		snprintf(name, sizeof name, "%s.meta", key);
		rc = mesh_write_file_atomic(c->dir_fd, name, text, strlen(text), 0600, err);
		free(text);
	}
	snprintf(name, sizeof name, "%s.view", key);
	if (!rc && renameat(c->dir_fd, tmp, c->dir_fd, name) < 0)
		rc = mesh_errf(err, -errno, "view cache: rename: %s", strerror(errno));
	if (rc) {
		unlinkat(c->dir_fd, tmp, 0);
		return rc;
	}
	fsync(c->dir_fd);
	int fd = open_entry(c, key, st);
	if (fd < 0)
		return mesh_errf(err, fd, "view cache: the new entry cannot be opened: %s", strerror(-fd));
	info->size = res.out_bytes;
	memcpy(info->sha256, res.out_sha256, 65);
	info->fresh = true;
	info->build_seconds = now_seconds() - t0;
	syslog(LOG_INFO, "view cache: built %s.view (%s) in %.3f s: %llu -> %llu bytes", key, plan->text,
	       info->build_seconds, (unsigned long long)res.in_bytes, (unsigned long long)res.out_bytes);
	return fd;
}

int view_cache_get(struct view_cache *c, const struct view_source *src, const struct view_plan *plan,
		   const unsigned char *secret, int *fd_out, struct view_info *info, struct mesh_err *err)
{
	char key[KEY_LEN + 1];
	entry_key(src, plan, secret, key);
	memset(info, 0, sizeof *info);
	pthread_mutex_lock(&c->lock);
	struct entry *e;
	while ((e = find(c, key)) && e->state == ENTRY_BUSY)
		pthread_cond_wait(&c->changed, &c->lock);
	struct stat st;
	int fd = -1;
	if (e && e->state == ENTRY_READY) {
		fd = open_entry(c, key, &st);
		if (fd >= 0 && same_file(&st, &e->seen)) {
			e->last_use = ++c->clock;
			info->size = e->size;
			memcpy(info->sha256, e->sha256, 65);
			pthread_mutex_unlock(&c->lock);
			*fd_out = fd;
			return 0;
		}
	}
	/* ours to verify or build; others wait */
	if (!e) {
		e = add(c, key);
	} else {
		c->total -= e->size;
		e->size = 0;
	}
	e->state = ENTRY_BUSY;
	pthread_mutex_unlock(&c->lock);

	if (fd < 0)
		fd = open_entry(c, key, &st);
	char sha[65];
	int rc = 0;
	if (fd >= 0 && verify(c, key, fd, &st, src, plan, sha)) {
		info->size = (uint64_t)st.st_size;
		memcpy(info->sha256, sha, 65);
		info->fresh = true;
	} else {
		if (fd >= 0) {
			syslog(LOG_WARNING, "view cache: %s/%s.view does not match its record: rebuilding", c->dir, key);
			close(fd);
		}
		fd = build(c, key, src, plan, secret, info, &st, err);
		if (fd < 0)
			rc = fd;
	}
	pthread_mutex_lock(&c->lock);
	e = find(c, key);
	if (rc) {
		drop(c, e);
	} else {
		e->state = ENTRY_READY;
		e->size = info->size;
		memcpy(e->sha256, info->sha256, 65);
		e->seen = st;
		e->last_use = ++c->clock;
		c->total += e->size;
	}
	pthread_cond_broadcast(&c->changed);
	pthread_mutex_unlock(&c->lock);
	if (rc)
		return rc;
	*fd_out = fd;
	return 0;
}

/* ---- the hash secret ---- */

static int read_secret(int fd, unsigned char secret[VIEW_SECRET_LEN], const char *path, struct mesh_err *err)
{
	struct stat st;
	char hex[2 * VIEW_SECRET_LEN + 2];
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return mesh_errf(err, -EINVAL, "%s: not a regular file", path);
	if (st.st_uid != geteuid() || (st.st_mode & 077))
		return mesh_errf(err, -EPERM, "%s: must be owned by the service (uid %u) and mode 0600", path,
				 (unsigned)geteuid());
	ssize_t r = pread(fd, hex, sizeof hex, 0);
	if (r < 2 * VIEW_SECRET_LEN)
		return mesh_errf(err, -EINVAL, "%s: too short (64 hex digits expected)", path);
	for (int i = 0; i < VIEW_SECRET_LEN; i++) {
		unsigned v;
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return mesh_errf(err, -EINVAL, "%s: not hex", path);
		secret[i] = (unsigned char)v;
	}
	return 0;
}

int view_secret_load(const char *dir, unsigned char secret[VIEW_SECRET_LEN], struct mesh_err *err)
{
	int rc = mkdir_p(dir, 0700);
	if (rc)
		return mesh_errf(err, rc, "%s: %s", dir, strerror(-rc));
	char path[4096], tmp[4200];
	snprintf(path, sizeof path, "%s/view-hash.key", dir);
	for (int attempt = 0; attempt < 2; attempt++) {
		int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (fd >= 0) {
			rc = read_secret(fd, secret, path, err);
			close(fd);
			return rc;
		}
		if (errno != ENOENT)
			return mesh_errf(err, -errno, "%s: %s", path, strerror(errno));
		unsigned char fresh[VIEW_SECRET_LEN];
		if (RAND_bytes(fresh, sizeof fresh) != 1)
			return mesh_errf(err, -EIO, "no random bytes for %s", path);
		char hex[2 * VIEW_SECRET_LEN + 2];
		for (int i = 0; i < VIEW_SECRET_LEN; i++)
			snprintf(hex + 2 * i, 3, "%02x", fresh[i]);
		hex[2 * VIEW_SECRET_LEN] = '\n';
		snprintf(tmp, sizeof tmp, "%s/.view-hash.key.%d", dir, (int)getpid());
		fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0)
			return mesh_errf(err, -errno, "%s: %s", tmp, strerror(errno));
		rc = mesh_write_all(fd, hex, 2 * VIEW_SECRET_LEN + 1) < 0 || fsync(fd) < 0 ? -errno : 0;
		close(fd);
		/* link(2): the first host to create it wins, the others read it */
		if (!rc && link(tmp, path) < 0 && errno != EEXIST)
			rc = -errno;
		unlink(tmp);
		if (rc)
			return mesh_errf(err, rc, "%s: %s", path, strerror(-rc));
	}
	return mesh_errf(err, -EIO, "%s: cannot be created", path);
}
