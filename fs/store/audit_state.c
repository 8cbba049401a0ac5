/*
 * audit_state.c - the record of a clean store audit on local disk: build,
 * look up, serialize, parse and check it (format and contract in
 * include/audit_state.h).
 *
 * Not here: what the records are compared with and when (store_audit.c).
 */
#include "audit_state.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mesh_util.h"

#define HEADER_FIXED (8 + 8 + 4 + 8 + 4 + 4)
#define RECORD_FIXED (4 + 8 + 8 + 8 + 4 + 8 + 4 + 4 + 4 + 1 + 2)
#define DIGEST_LEN 32

struct audit_state *audit_state_new(const char *store, uint64_t root_dev, uint64_t root_ino, uint32_t owner)
{
	struct audit_state *st = xcalloc(1, sizeof *st);
	st->store = xstrdup(store);
	st->root_dev = root_dev;
	st->root_ino = root_ino;
	st->owner = owner;
	st->names_cap = 64;   /* never NULL: the root's empty name points into it */
	st->names = xmalloc(st->names_cap);
	return st;
}

void audit_state_free(struct audit_state *st)
{
	if (!st)
		return;
	free(st->store);
	free(st->recs);
	free(st->names);
	free(st->slots);
	free(st);
}

static uint64_t name_hash(uint32_t parent, const char *name, size_t len)
{
	uint64_t h = 1469598103934665603ull ^ parent;
	h *= 1099511628211ull;
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)name[i];
		h *= 1099511628211ull;
	}
	return h ^ (h >> 29);
}

static void slot_insert(uint32_t *slots, size_t n_slots, const struct audit_state *st, uint32_t i)
{
	const struct audit_dir_rec *r = &st->recs[i];
	size_t mask = n_slots - 1, s = name_hash(r->parent, st->names + r->name_off, r->name_len) & mask;
	while (slots[s])
		s = (s + 1) & mask;
	slots[s] = i + 1;
}

/* keep the table at most half full */
static void slots_reserve(struct audit_state *st, size_t want)
{
	if (want * 2 <= st->n_slots)
		return;
	size_t n = st->n_slots ? st->n_slots : 64;
	while (want * 2 > n)
		n *= 2;
	free(st->slots);
	st->slots = xcalloc(n, sizeof *st->slots);
	st->n_slots = n;
	for (size_t i = 0; i < st->n; i++)
		slot_insert(st->slots, n, st, (uint32_t)i);
}

uint32_t audit_state_find(const struct audit_state *st, uint32_t parent, const char *name, size_t len)
{
	if (!st->n_slots)
		return AUDIT_STATE_NONE;
	size_t mask = st->n_slots - 1, s = name_hash(parent, name, len) & mask;
	for (; st->slots[s]; s = (s + 1) & mask) {
		const struct audit_dir_rec *r = &st->recs[st->slots[s] - 1];
		if (r->parent == parent && r->name_len == len && !memcmp(st->names + r->name_off, name, len))
			return st->slots[s] - 1;
	}
	return AUDIT_STATE_NONE;
}

static void rec_fill(struct audit_dir_rec *r, const struct stat *sb, uint8_t flags)
{
	r->flags = flags;
	r->dev = (uint64_t)sb->st_dev;
	r->ino = (uint64_t)sb->st_ino;
	r->ctime_sec = (int64_t)sb->st_ctim.tv_sec;
	r->ctime_nsec = (uint32_t)sb->st_ctim.tv_nsec;
	r->mtime_sec = (int64_t)sb->st_mtim.tv_sec;
	r->mtime_nsec = (uint32_t)sb->st_mtim.tv_nsec;
	r->mode = (uint32_t)sb->st_mode;
	r->uid = (uint32_t)sb->st_uid;
}

static uint32_t add_raw(struct audit_state *st, uint32_t parent, const char *name, size_t len)
{
	if (st->n == st->cap)
		st->recs = xrealloc(st->recs, (st->cap = st->cap ? st->cap * 2 : 256) * sizeof *st->recs);
	if (st->names_len + len > st->names_cap) {
		while (st->names_len + len > st->names_cap)
			st->names_cap = st->names_cap ? st->names_cap * 2 : 4096;
		st->names = xrealloc(st->names, st->names_cap);
	}
	struct audit_dir_rec *r = &st->recs[st->n];
	memset(r, 0, sizeof *r);
	r->parent = parent;
	r->name_len = (uint16_t)len;
	r->name_off = (uint32_t)st->names_len;
	if (len)
		memcpy(st->names + st->names_len, name, len);
	st->names_len += len;
	return (uint32_t)st->n++;
}

uint32_t audit_state_add(struct audit_state *st, uint32_t parent, const char *name, size_t len,
			 const struct stat *sb, uint8_t flags)
{
	slots_reserve(st, st->n + 1);
	uint32_t i = add_raw(st, parent, name, len);
	rec_fill(&st->recs[i], sb, flags);
	slot_insert(st->slots, st->n_slots, st, i);
	return i;
}

void audit_state_set(struct audit_state *st, uint32_t i, const struct stat *sb, uint8_t flags)
{
	rec_fill(&st->recs[i], sb, flags);
}

bool audit_state_same(const struct audit_state *st, uint32_t i, const struct stat *sb)
{
	const struct audit_dir_rec *r = &st->recs[i];
	return r->dev == (uint64_t)sb->st_dev && r->ino == (uint64_t)sb->st_ino &&
	       r->mode == (uint32_t)sb->st_mode && r->uid == (uint32_t)sb->st_uid &&
	       r->ctime_sec == (int64_t)sb->st_ctim.tv_sec && r->ctime_nsec == (uint32_t)sb->st_ctim.tv_nsec &&
	       r->mtime_sec == (int64_t)sb->st_mtim.tv_sec && r->mtime_nsec == (uint32_t)sb->st_mtim.tv_nsec;
}

/* ---- the file ---- */

static void put(struct strbuf *sb, uint64_t v, int bytes)
{
	unsigned char b[8];
	for (int i = 0; i < bytes; i++)
		b[i] = (unsigned char)(v >> (8 * i));
	strbuf_add(sb, b, (size_t)bytes);
}

static void digest(const void *data, size_t len, unsigned char out[DIGEST_LEN])
{
	unsigned int n = 0;
	EVP_Digest(data, len, out, &n, EVP_sha256(), NULL);
}

void audit_state_serialize(const struct audit_state *st, char **buf, size_t *len)
{
	struct strbuf sb = STRBUF_INIT;
	size_t path_len = strlen(st->store);
	strbuf_add(&sb, AUDIT_STATE_MAGIC, strlen(AUDIT_STATE_MAGIC));
	put(&sb, st->root_dev, 8);
	put(&sb, st->root_ino, 8);
	put(&sb, st->owner, 4);
	put(&sb, (uint64_t)st->written_at, 8);
	put(&sb, st->n, 4);
	put(&sb, path_len, 4);
	strbuf_add(&sb, st->store, path_len);
	for (size_t i = 0; i < st->n; i++) {
		const struct audit_dir_rec *r = &st->recs[i];
		put(&sb, r->parent, 4);
		put(&sb, r->dev, 8);
		put(&sb, r->ino, 8);
		put(&sb, (uint64_t)r->ctime_sec, 8);
		put(&sb, r->ctime_nsec, 4);
		put(&sb, (uint64_t)r->mtime_sec, 8);
		put(&sb, r->mtime_nsec, 4);
		put(&sb, r->mode, 4);
		put(&sb, r->uid, 4);
		put(&sb, r->flags, 1);
		put(&sb, r->name_len, 2);
		strbuf_add(&sb, st->names + r->name_off, r->name_len);
	}
	unsigned char d[DIGEST_LEN];
	digest(sb.buf, sb.len, d);
	strbuf_add(&sb, d, DIGEST_LEN);
	*buf = strbuf_detach(&sb, len);
}

struct reader {
	const unsigned char *p;
	size_t left;
	bool short_read;
};

static uint64_t get(struct reader *rd, int bytes)
{
	if (rd->left < (size_t)bytes) {
		rd->short_read = true;
		rd->left = 0;
		return 0;
	}
	uint64_t v = 0;
	for (int i = 0; i < bytes; i++)
		v |= (uint64_t)rd->p[i] << (8 * i);
	rd->p += bytes;
	rd->left -= (size_t)bytes;
	return v;
}

static bool component_ok(const char *name, size_t len)
{
	if (len == 0 || (len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
		return false;
	return !memchr(name, '/', len) && !memchr(name, '\0', len);
}

int audit_state_parse(const void *buf, size_t len, const char *store, uint64_t root_dev, uint64_t root_ino,
		      struct audit_state **out, struct mesh_err *err)
{
	*out = NULL;
	size_t magic_len = strlen(AUDIT_STATE_MAGIC);
	if (len < magic_len + HEADER_FIXED + DIGEST_LEN || memcmp(buf, AUDIT_STATE_MAGIC, magic_len))
		return mesh_errf(err, -EINVAL, "not a meshfs store audit record (format 1)");
	unsigned char d[DIGEST_LEN];
	digest(buf, len - DIGEST_LEN, d);
	if (memcmp(d, (const unsigned char *)buf + len - DIGEST_LEN, DIGEST_LEN))
		return mesh_errf(err, -EINVAL, "checksum does not match (damaged or truncated)");
	struct reader rd = {(const unsigned char *)buf + magic_len, len - magic_len - DIGEST_LEN, false};
	uint64_t dev = get(&rd, 8), ino = get(&rd, 8);
	uint32_t owner = (uint32_t)get(&rd, 4);
	int64_t written = (int64_t)get(&rd, 8);
	uint64_t n = get(&rd, 4), path_len = get(&rd, 4);
	if (path_len > rd.left || path_len != strlen(store) || memcmp(rd.p, store, path_len))
		return mesh_errf(err, -EINVAL, "made for another store");
	if (dev != root_dev || ino != root_ino)
		return mesh_errf(err, -EINVAL, "made for another directory at %s (its root inode differs)", store);
	rd.p += path_len;
	rd.left -= path_len;
	/* every record takes RECORD_FIXED bytes or more: a count the bytes
	 * cannot hold is refused before anything is allocated for it */
	if (n == 0 || n > rd.left / RECORD_FIXED)
		return mesh_errf(err, -EINVAL, "%llu records do not fit in the file", (unsigned long long)n);
	struct audit_state *st = audit_state_new(store, dev, ino, owner);
	st->written_at = written;
	st->recs = xcalloc(n, sizeof *st->recs);
	st->cap = n;
	slots_reserve(st, n);
	int rc = 0;
	for (uint64_t i = 0; i < n && !rc; i++) {
		struct audit_dir_rec r = {0};
		r.parent = (uint32_t)get(&rd, 4);
		r.dev = get(&rd, 8);
		r.ino = get(&rd, 8);
		r.ctime_sec = (int64_t)get(&rd, 8);
		r.ctime_nsec = (uint32_t)get(&rd, 4);
		r.mtime_sec = (int64_t)get(&rd, 8);
		r.mtime_nsec = (uint32_t)get(&rd, 4);
		r.mode = (uint32_t)get(&rd, 4);
		r.uid = (uint32_t)get(&rd, 4);
		r.flags = (uint8_t)get(&rd, 1);
		r.name_len = (uint16_t)get(&rd, 2);
		if (rd.short_read || r.name_len > rd.left) {
			rc = mesh_errf(err, -EINVAL, "record %llu: truncated", (unsigned long long)i);
			break;
		}
		const char *name = (const char *)rd.p;
		rd.p += r.name_len;
		rd.left -= r.name_len;
		if (i == 0 ? r.parent != AUDIT_STATE_NONE || r.name_len != 0 || r.dev != dev || r.ino != ino
			   : r.parent >= i || !component_ok(name, r.name_len))
			rc = mesh_errf(err, -EINVAL, "record %llu: bad parent or name", (unsigned long long)i);
		else if (r.flags & ~AUDIT_REC_RACY)
			rc = mesh_errf(err, -EINVAL, "record %llu: unknown flags 0x%x", (unsigned long long)i, r.flags);
		else if (!S_ISDIR(r.mode))
			rc = mesh_errf(err, -EINVAL, "record %llu: not a directory", (unsigned long long)i);
		else if (i && audit_state_find(st, r.parent, name, r.name_len) != AUDIT_STATE_NONE)
			rc = mesh_errf(err, -EINVAL, "record %llu: a name recorded twice", (unsigned long long)i);
		if (rc)
			break;
		uint32_t k = add_raw(st, r.parent, name, r.name_len);
		r.name_off = st->recs[k].name_off;
		st->recs[k] = r;
		slot_insert(st->slots, st->n_slots, st, k);
	}
	if (!rc && rd.left)
		rc = mesh_errf(err, -EINVAL, "%zu bytes after the last record", rd.left);
	if (rc) {
		audit_state_free(st);
		return rc;
	}
	*out = st;
	return 0;
}

int audit_state_load(const char *path, const char *store, uint64_t root_dev, uint64_t root_ino,
		     struct audit_state **out, struct mesh_err *err)
{
	*out = NULL;
	struct stat sb;
	int fd = mesh_open_regular_at(AT_FDCWD, path, O_RDONLY, 0, &sb);
	if (fd < 0)
		return mesh_errf(err, fd, "%s: %s", path, mesh_open_strerror(fd));
	if (sb.st_uid != geteuid() || (sb.st_mode & 022)) {
		close(fd);
		return mesh_errf(err, -EPERM, "%s: not this daemon's own file (owner %u, mode %04o)", path,
				 (unsigned)sb.st_uid, (unsigned)(sb.st_mode & 07777));
	}
	if ((uint64_t)sb.st_size > AUDIT_STATE_MAX_BYTES) {
		close(fd);
		return mesh_errf(err, -EINVAL, "%s: too large", path);
	}
	size_t size = (size_t)sb.st_size, got = 0;
	char *buf = xmalloc(size ? size : 1);
	while (got < size) {
		ssize_t r = pread(fd, buf + got, size - got, (off_t)got);
		if (r <= 0) {
			int e = r < 0 ? -errno : -EINVAL;
			close(fd);
			free(buf);
			return mesh_errf(err, e, "%s: %s", path, r < 0 ? strerror(-e) : "shorter than its size");
		}
		got += (size_t)r;
	}
	close(fd);
	struct mesh_err perr = {0};
	int rc = audit_state_parse(buf, size, store, root_dev, root_ino, out, &perr);
	free(buf);
	return rc ? mesh_errf(err, rc, "%s: %s", path, perr.msg) : 0;
}

int audit_state_save(const char *path, const struct audit_state *st, struct mesh_err *err)
{
	char *buf;
	size_t len;
	audit_state_serialize(st, &buf, &len);
	int rc = mesh_write_file_atomic(AT_FDCWD, path, buf, len, 0600, err);
	free(buf);
	return rc;
}
