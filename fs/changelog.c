/*
 * changelog.c - the store's change log (contract and layout in
 * include/changelog.h): appending an entry, pruning this host's old
 * buckets, reading what changed since a position.
 *
 * Not here: the index's use of it (index.c), the generation counter
 * (store.c).
 */
#include "changelog.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mesh_util.h"
#include "store.h"
#include "store_rename.h"

#define NS 1000000000LL
#define ENTRY_MAX 256                /* an entry is "domain/product\n": <= 131 bytes */

/* This host's directory name: gethostname() with anything but
 * [A-Za-z0-9._-] replaced, never starting with '.'. */
static void host_name(char *out, size_t size)
{
	if (gethostname(out, size - 1) < 0 || !out[0])
		snprintf(out, size, "localhost");
	out[size - 1] = '\0';
	for (char *p = out; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '.' || *p == '-' || *p == '_'))
			*p = '_';
	if (out[0] == '.')
		out[0] = '_';
}

static void bucket_name(int64_t ns, char out[32])
{
	time_t t = (time_t)(ns / NS);
	t -= t % CHANGELOG_BUCKET_SECONDS;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y%m%dT%H%M", &tm);
}

static bool bucket_name_ok(const char *name)
{
	if (strlen(name) != 13 || name[8] != 'T')
		return false;
	for (int i = 0; i < 13; i++)
		if (i != 8 && (name[i] < '0' || name[i] > '9'))
			return false;
	return true;
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

/* The store's owner, when this process is root working on a store owned
 * by a service account: what it creates is given to that account, as the
 * service must go on writing the same directories. */
struct owner {
	bool chown;
	uid_t uid;
	gid_t gid;
};

static void give(const struct owner *o, int dirfd, const char *name)
{
	if (o->chown && fchownat(dirfd, name, o->uid, o->gid, AT_SYMLINK_NOFOLLOW) < 0) {
		/* best effort: `meshctl doctor --fix` says and fixes the rest */
	}
}

static int mkdir_open(int dirfd, const char *name, const struct owner *o, bool *created)
{
	if (created)
		*created = false;
	if (mkdirat(dirfd, name, STORE_DIR_MODE) == 0) {
		give(o, dirfd, name);
		if (created)
			*created = true;
	} else if (errno != EEXIST) {
		return -errno;
	}
	return mesh_open_dir_at(dirfd, name);
}

int changelog_entry_parse(const char *text, size_t len, char domain[65], char product[65])
{
	if (len == 0 || len > ENTRY_MAX || text[len - 1] != '\n' || memchr(text, '\0', len))
		return -EINVAL;
	const char *slash = memchr(text, '/', len);
	if (!slash)
		return -EINVAL;
	size_t dl = (size_t)(slash - text), pl = len - 1 - dl - 1;
	if (dl == 0 || dl > MESH_NAME_MAX || pl == 0 || pl > MESH_NAME_MAX || slash + 1 + pl != text + len - 1)
		return -EINVAL;
	memcpy(domain, text, dl);
	domain[dl] = '\0';
	memcpy(product, slash + 1, pl);
	product[pl] = '\0';
	return mesh_name_ok(domain) && mesh_name_ok(product) ? 0 : -EINVAL;
}

/* Remove a bucket directory and its entries (one level: entries are files). */
static void remove_bucket(int hostfd, const char *name)
{
	int fd = mesh_open_dir_at(hostfd, name);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d && fd >= 0)
		close(fd);
	struct dirent *de;
	while (d && (de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			unlinkat(dirfd(d), de->d_name, 0);
	if (d)
		closedir(d);
	unlinkat(hostfd, name, AT_REMOVEDIR);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* This host's buckets older than the retention: the marker first (a
 * reader then knows entries before it may be gone), then the buckets. */
static void prune(int hostfd, int64_t now)
{
	char cutoff[32];
	bucket_name(now - (int64_t)CHANGELOG_KEEP_SECONDS * NS, cutoff);
	int fd = dup(hostfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	char **old = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		if (bucket_name_ok(de->d_name) && strcmp(de->d_name, cutoff) < 0) {
			if (n == cap)
				old = xrealloc(old, (cap = cap ? 2 * cap : 16) * sizeof *old);
			old[n++] = xstrdup(de->d_name);
		}
	closedir(d);
	if (n) {
		qsort(old, n, sizeof *old, cmp_str);
		char *marker = NULL;
		size_t len;
		char text[40];
		bool newer = mesh_read_file_at(hostfd, ".pruned", 64, &marker, &len, NULL) != 0 ||
			     strncmp(marker, old[n - 1], 13) < 0;
		free(marker);
		snprintf(text, sizeof text, "%s\n", old[n - 1]);
		if (!newer || store_write_replace(hostfd, ".pruned", text, strlen(text), STORE_FILE_MODE, NULL) == 0)
			for (size_t i = 0; i < n; i++)
				remove_bucket(hostfd, old[i]);
	}
	for (size_t i = 0; i < n; i++)
		free(old[i]);
	free(old);
}

int changelog_append(const char *store, const char *domain, const char *product, struct mesh_err *err)
{
	if (!mesh_name_ok(domain) || !mesh_name_ok(product))
		return mesh_errf(err, -EINVAL, "change log: bad name %s/%s", domain, product);
	char host[256], bucket[32], path[PATH_MAX];
	host_name(host, sizeof host);
	int64_t now = now_ns();
	bucket_name(now, bucket);
	int sfd = mesh_open_dir_at(AT_FDCWD, store);
	if (sfd < 0)
		return mesh_errf(err, sfd, "%s: %s", store, strerror(-sfd));
	struct stat st;
	struct owner o = {0};
	if (fstat(sfd, &st) == 0 && geteuid() == 0 && st.st_uid != 0)
		o = (struct owner){.chown = true, .uid = st.st_uid, .gid = st.st_gid};
	int cfd = mkdir_open(sfd, CHANGELOG_DIR, &o, NULL);
	close(sfd);
	int hfd = cfd >= 0 ? mkdir_open(cfd, host, &o, NULL) : cfd;
	if (cfd >= 0)
		close(cfd);
	bool created = false;
	int bfd = hfd >= 0 ? mkdir_open(hfd, bucket, &o, &created) : hfd;
	if (bfd < 0) {
		if (hfd >= 0)
			close(hfd);
		return mesh_errf(err, bfd, "%s/" CHANGELOG_DIR "/%s/%s: %s", store, host, bucket, strerror(-bfd));
	}
	if (created)
		prune(hfd, now);
	close(hfd);
	unsigned int nonce = 0;
	if (getrandom(&nonce, sizeof nonce, GRND_NONBLOCK) != (ssize_t)sizeof nonce)
		nonce = (unsigned int)now;
	char name[64], text[2 * MESH_NAME_MAX + 3];
	snprintf(name, sizeof name, "%019lld.%ld.%08x", (long long)now, (long)getpid(), nonce);
	snprintf(text, sizeof text, "%s/%s\n", domain, product);
	struct mesh_err werr = {0};
	int rc = store_write_replace(bfd, name, text, strlen(text), STORE_FILE_MODE, &werr);
	if (!rc)
		give(&o, bfd, name);
	close(bfd);
	if (rc) {
		snprintf(path, sizeof path, "%s/" CHANGELOG_DIR "/%s/%s", store, host, bucket);
		return mesh_errf(err, rc, "%s: %s", path, werr.msg);
	}
	return 0;
}

/* ---- reading ---- */

/* A host's position: its newest entry seen, and the names of the entries
 * within the margin before it (read already: not read again). */
struct position {
	char *host;
	int64_t ns;
	char **seen;
	size_t n_seen;
};

static void positions_free(struct position *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(p[i].host);
		for (size_t k = 0; k < p[i].n_seen; k++)
			free(p[i].seen[k]);
		free(p[i].seen);
	}
	free(p);
}

static struct position *cursor_parse(const char *text, size_t *n)
{
	*n = 0;
	size_t cap = 0;
	struct position *p = NULL;
	while (text && *text) {
		size_t len = strcspn(text, "\n");
		/* "host ns [name...]" */
		char *line = xmalloc(len + 1), *save = NULL;
		memcpy(line, text, len);
		line[len] = '\0';
		char *host = strtok_r(line, " ", &save), *ns = host ? strtok_r(NULL, " ", &save) : NULL;
		if (ns) {
			if (*n == cap)
				p = xrealloc(p, (cap = cap ? 2 * cap : 4) * sizeof *p);
			struct position *q = &p[(*n)++];
			*q = (struct position){.host = xstrdup(host), .ns = strtoll(ns, NULL, 10)};
			size_t scap = 0;
			for (char *name = strtok_r(NULL, " ", &save); name; name = strtok_r(NULL, " ", &save)) {
				if (q->n_seen == scap)
					q->seen = xrealloc(q->seen, (scap = scap ? 2 * scap : 8) * sizeof *q->seen);
				q->seen[q->n_seen++] = xstrdup(name);
			}
		}
		free(line);
		text += len;
		if (*text == '\n')
			text++;
	}
	return p;
}

struct reader {
	struct changelog_read *out;
	size_t cap_keys;
	const struct position *pos;   /* the host's position being read (NULL: none) */
	struct entry_seen {
		char *name;
		int64_t ns;
	} *seen;                      /* entries of this host read, near its newest */
	size_t n_seen, cap_seen;
};

static bool seen_before(const struct position *p, const char *name)
{
	for (size_t i = 0; p && i < p->n_seen; i++)
		if (!strcmp(p->seen[i], name))
			return true;
	return false;
}

static void add_key(struct reader *r, const char *domain, const char *product)
{
	if (r->out->n_keys == r->cap_keys)
		r->out->keys = xrealloc(r->out->keys, (r->cap_keys = r->cap_keys ? 2 * r->cap_keys : 16) *
							      sizeof *r->out->keys);
	size_t len = strlen(domain) + strlen(product) + 2;
	char *k = xmalloc(len);
	snprintf(k, len, "%s/%s", domain, product);
	r->out->keys[r->out->n_keys++] = k;
}

/* Entries of one bucket newer than `after` (ns); returns the newest ns seen. */
static int64_t read_bucket(struct reader *r, int hostfd, const char *bucket, int64_t after, bool want_keys)
{
	int64_t newest = 0;
	int fd = mesh_open_dir_at(hostfd, bucket);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		if (fd != -ENOENT)
			r->out->complete = false;     /* unreadable: the store must be walked */
		return 0;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;          /* ".", "..", temporaries */
		int64_t ns = strtoll(de->d_name, NULL, 10);
		if (ns > newest)
			newest = ns;
		if (ns <= after)
			continue;
		if (r->n_seen == r->cap_seen)
			r->seen = xrealloc(r->seen, (r->cap_seen = r->cap_seen ? 2 * r->cap_seen : 16) * sizeof *r->seen);
		r->seen[r->n_seen++] = (struct entry_seen){.name = xstrdup(de->d_name), .ns = ns};
		if (!want_keys || seen_before(r->pos, de->d_name))
			continue;
		char *text = NULL, domain[65], product[65];
		size_t len = 0;
		if (mesh_read_file_at(dirfd(d), de->d_name, ENTRY_MAX, &text, &len, NULL) == 0 &&
		    changelog_entry_parse(text, len, domain, product) == 0)
			add_key(r, domain, product);
		else
			r->out->complete = false;     /* unreadable: the store must be walked */
		free(text);
	}
	closedir(d);
	return newest;
}

static int64_t max64(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

/* One host's entries since its position (`known`: the cursor has one). */
static int64_t read_host(struct reader *r, int hostfd, bool known, int64_t pos)
{
	int64_t margin = (int64_t)CHANGELOG_MARGIN_SECONDS * NS, after = pos - margin, newest = pos;
	char need[32] = "";
	if (known) {
		bucket_name(after, need);
		char *pruned = NULL;
		size_t len;
		if (mesh_read_file_at(hostfd, ".pruned", 64, &pruned, &len, NULL) == 0 && strncmp(pruned, need, 13) >= 0)
			r->out->complete = false;     /* entries after the position may be gone */
		free(pruned);
	} else {
		r->out->complete = false;
	}
	int fd = dup(hostfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		r->out->complete = false;
		return newest;
	}
	char latest[NAME_MAX + 1] = "";
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!bucket_name_ok(de->d_name))
			continue;
		if (known && strcmp(de->d_name, need) >= 0)
			newest = max64(newest, read_bucket(r, hostfd, de->d_name, after, true));
		if (strcmp(de->d_name, latest) > 0)
			snprintf(latest, sizeof latest, "%s", de->d_name);
	}
	closedir(d);
	if (!known && latest[0])
		newest = max64(newest, read_bucket(r, hostfd, latest, 0, false));
	return newest;
}

int changelog_read_since(const char *store, const char *cursor, struct changelog_read *out, struct mesh_err *err)
{
	memset(out, 0, sizeof *out);
	out->complete = cursor != NULL;
	size_t n_pos = 0;
	struct position *pos = cursor_parse(cursor, &n_pos);
	struct reader r = {.out = out};
	struct strbuf next = STRBUF_INIT;
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/" CHANGELOG_DIR, store);
	int cfd = mesh_open_dir_at(AT_FDCWD, path);
	DIR *d = cfd >= 0 ? fdopendir(cfd) : NULL;
	if (!d) {
		if (cfd >= 0)
			close(cfd);
		positions_free(pos, n_pos);
		out->complete = false;       /* a store nobody logged changes in */
		out->cursor = strbuf_detach(&next, NULL);
		if (cfd == -ENOENT)
			return 0;
		return mesh_errf(err, cfd, "%s: %s", path, strerror(-cfd));
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		int hfd = mesh_open_dir_at(dirfd(d), de->d_name);
		if (hfd < 0) {
			out->complete = false;        /* a host whose changes cannot be read */
			continue;
		}
		struct position *p = NULL;
		for (size_t i = 0; i < n_pos && !p; i++)
			if (!strcmp(pos[i].host, de->d_name))
				p = &pos[i];
		r.pos = p;
		int64_t newest = read_host(&r, hfd, p != NULL, p ? p->ns : 0);
		close(hfd);
		if (newest) {
			strbuf_printf(&next, "%s %lld", de->d_name, (long long)newest);
			for (size_t i = 0; i < r.n_seen; i++)
				if (r.seen[i].ns > newest - (int64_t)CHANGELOG_MARGIN_SECONDS * NS)
					strbuf_printf(&next, " %s", r.seen[i].name);
			strbuf_puts(&next, "\n");
		}
		for (size_t i = 0; i < r.n_seen; i++)
			free(r.seen[i].name);
		r.n_seen = 0;
	}
	closedir(d);
	free(r.seen);
	positions_free(pos, n_pos);
	/* each product once */
	if (out->n_keys)
		qsort(out->keys, out->n_keys, sizeof *out->keys, cmp_str);
	size_t k = 0;
	for (size_t i = 0; i < out->n_keys; i++) {
		if (k && !strcmp(out->keys[k - 1], out->keys[i]))
			free(out->keys[i]);
		else
			out->keys[k++] = out->keys[i];
	}
	out->n_keys = k;
	out->cursor = strbuf_detach(&next, NULL);
	return 0;
}

char *changelog_cursor_merge(const char *settled, const char *fresh)
{
	size_t n_old = 0, n_new = 0;
	struct position *old = cursor_parse(settled, &n_old), *now = cursor_parse(fresh, &n_new);
	struct strbuf out = STRBUF_INIT;
	for (size_t i = 0; i < n_new; i++) {
		const struct position *p = NULL;
		for (size_t k = 0; k < n_old && !p; k++)
			if (!strcmp(old[k].host, now[i].host))
				p = &old[k];
		if (p) {
			strbuf_printf(&out, "%s %lld", p->host, (long long)p->ns);
			for (size_t k = 0; k < p->n_seen; k++)
				strbuf_printf(&out, " %s", p->seen[k]);
		} else {
			/* a host new to the position: from a margin before its newest
			 * entry, nothing marked read */
			strbuf_printf(&out, "%s %lld", now[i].host,
				      (long long)(now[i].ns - (int64_t)CHANGELOG_MARGIN_SECONDS * NS));
		}
		strbuf_puts(&out, "\n");
	}
	positions_free(old, n_old);
	positions_free(now, n_new);
	return strbuf_detach(&out, NULL);
}

void changelog_read_free(struct changelog_read *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_keys; i++)
		free(r->keys[i]);
	free(r->keys);
	free(r->cursor);
	memset(r, 0, sizeof *r);
}
