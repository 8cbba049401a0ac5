/*
 * unique.c - exact duplicate detection in bounded memory (contract in
 * include/unique.h).
 *
 * In memory: an open-addressing table of {hash, offset, length} into an
 * arena of value bytes.  Spilled: records {hash, line, row, length, bytes}
 * appended to one of 64 partition files chosen by the hash's top bits; at
 * the end each partition is loaded into a fresh in-memory table.
 */
#include "unique.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mesh_util.h"

#define PARTITIONS 64

/* 8 bytes a slot: memory is the limit that matters.  The arena holds each
 * value as a length (LEB128) followed by its bytes; the full 64-bit hash is
 * recomputed only when a table grows. */
struct slot {
	uint32_t hash;     /* low bits of the hash */
	uint32_t offset;   /* into the arena; 0 = empty (arena starts with a pad byte) */
};

struct table {
	struct slot *slots;
	size_t size, used;
	char *arena;
	size_t arena_len, arena_cap;
};

struct unique_set {
	size_t limit;
	char *tmpdir;
	struct table t;
	FILE *parts[PARTITIONS];
	int spilled;
};

uint64_t mesh_hash64(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = 0x9e3779b97f4a7c15ull ^ (len * 0xff51afd7ed558ccdull);
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		w *= 0xbf58476d1ce4e5b9ull;
		w ^= w >> 31;
		h = (h ^ w) * 0x94d049bb133111ebull;
		p += 8;
		len -= 8;
	}
	uint64_t tail = 0;
	memcpy(&tail, p, len);
	h = (h ^ (tail * 0xbf58476d1ce4e5b9ull)) * 0x94d049bb133111ebull;
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 32;
	return h;
}

static void table_init(struct table *t)
{
	t->size = 1024;
	t->used = 0;
	t->slots = xcalloc(t->size, sizeof *t->slots);
	t->arena_cap = 65536;
	t->arena = xmalloc(t->arena_cap);
	t->arena_len = 1;   /* offset 0 means empty */
}

static void table_free(struct table *t)
{
	free(t->slots);
	free(t->arena);
	memset(t, 0, sizeof *t);
}

static size_t table_bytes(const struct table *t)
{
	return t->size * sizeof *t->slots + t->arena_cap;
}

static size_t read_len(const char *p, size_t *len)
{
	size_t n = 0, shift = 0, i = 0;
	unsigned char c;
	do {
		c = (unsigned char)p[i++];
		n |= (size_t)(c & 0x7f) << shift;
		shift += 7;
	} while (c & 0x80);
	*len = n;
	return i;
}

static size_t write_len(char *p, size_t len)
{
	size_t i = 0;
	do {
		unsigned char c = len & 0x7f;
		len >>= 7;
		p[i++] = (char)(c | (len ? 0x80 : 0));
	} while (len);
	return i;
}

static uint64_t slot_hash(const struct table *t, const struct slot *s)
{
	size_t len;
	size_t h = read_len(t->arena + s->offset, &len);
	return mesh_hash64(t->arena + s->offset + h, len);
}

/* Insert; 1 if the value was there already.  -1 if the arena would pass
 * 4 GiB (the caller spills long before). */
static int table_add(struct table *t, uint64_t hash, const void *v, size_t len)
{
	if ((t->used + 1) * 10 > t->size * 7) {
		struct slot *old = t->slots;
		size_t old_size = t->size;
		t->size *= 2;
		t->slots = xcalloc(t->size, sizeof *t->slots);
		for (size_t i = 0; i < old_size; i++) {
			if (!old[i].offset)
				continue;
			size_t k = slot_hash(t, &old[i]) & (t->size - 1);
			while (t->slots[k].offset)
				k = (k + 1) & (t->size - 1);
			t->slots[k] = old[i];
		}
		free(old);
	}
	size_t k = hash & (t->size - 1);
	uint32_t h32 = (uint32_t)(hash >> 32);
	while (t->slots[k].offset) {
		struct slot *s = &t->slots[k];
		if (s->hash == h32) {
			size_t slen;
			size_t hl = read_len(t->arena + s->offset, &slen);
			if (slen == len && !memcmp(t->arena + s->offset + hl, v, len))
				return 1;
		}
		k = (k + 1) & (t->size - 1);
	}
	if (t->arena_len + len + 10 > t->arena_cap) {
		while (t->arena_len + len + 10 > t->arena_cap)
			t->arena_cap *= 2;
		t->arena = xrealloc(t->arena, t->arena_cap);
	}
	if (t->arena_len > UINT32_MAX - len - 10)
		return -1;
	t->slots[k] = (struct slot){h32, (uint32_t)t->arena_len};
	t->arena_len += write_len(t->arena + t->arena_len, len);
	memcpy(t->arena + t->arena_len, v, len);
	t->arena_len += len;
	t->used++;
	return 0;
}

struct unique_set *unique_new(size_t memory_limit, const char *tmpdir)
{
	struct unique_set *s = xcalloc(1, sizeof *s);
	s->limit = memory_limit ? memory_limit : (24u << 20);
	s->tmpdir = xstrdup(tmpdir ? tmpdir : "/var/tmp");
	table_init(&s->t);
	return s;
}

struct spill_rec {
	uint64_t hash, line, row;
	uint32_t len;
};

static int spill_write(struct unique_set *s, uint64_t hash, const void *v, size_t len, uint64_t line,
		       uint64_t row, struct mesh_err *err)
{
	FILE *f = s->parts[hash >> 58];
	struct spill_rec r = {hash, line, row, (uint32_t)len};
	if (fwrite(&r, sizeof r, 1, f) != 1 || (len && fwrite(v, len, 1, f) != 1))
		return mesh_errf(err, -EIO, "unique-key spill file in %s: %s", s->tmpdir, strerror(errno));
	return 0;
}

static int spill(struct unique_set *s, struct mesh_err *err)
{
	for (int i = 0; i < PARTITIONS; i++) {
		char path[4096];
		snprintf(path, sizeof path, "%s/meshfs-unique.XXXXXX", s->tmpdir);
		int fd = mkstemp(path);
		if (fd < 0)
			return mesh_errf(err, -errno, "%s: %s", path, strerror(errno));
		unlink(path);   /* gone with the process, whatever happens */
		s->parts[i] = fdopen(fd, "w+");
		setvbuf(s->parts[i], NULL, _IOFBF, 64 << 10);
	}
	/* in-memory values keep their place: line/row 0 mark "seen before the spill" */
	for (size_t i = 0; i < s->t.size; i++) {
		struct slot *sl = &s->t.slots[i];
		if (sl->offset) {
			size_t len, hl = read_len(s->t.arena + sl->offset, &len);
			const char *v = s->t.arena + sl->offset + hl;
			int rc = spill_write(s, mesh_hash64(v, len), v, len, 0, 0, err);
			if (rc)
				return rc;
		}
	}
	table_free(&s->t);
	s->spilled = 1;
	return 0;
}

int unique_add(struct unique_set *s, const void *value, size_t len, uint64_t line, uint64_t row,
	       unique_dup_fn dup, void *ctx, struct mesh_err *err)
{
	uint64_t h = mesh_hash64(value, len);
	if (s->spilled)
		return spill_write(s, h, value, len, line, row, err);
	int seen = table_add(&s->t, h, value, len);
	if (seen > 0)
		dup(ctx, value, len, line, row);
	if (seen < 0 || table_bytes(&s->t) > s->limit) {
		int rc = spill(s, err);
		if (rc == 0 && seen < 0)
			rc = spill_write(s, h, value, len, line, row, err);
		return rc;
	}
	return 0;
}

int unique_finish(struct unique_set *s, unique_dup_fn dup, void *ctx, struct mesh_err *err)
{
	if (!s->spilled)
		return 0;
	char *buf = NULL;
	size_t cap = 0;
	for (int i = 0; i < PARTITIONS; i++) {
		FILE *f = s->parts[i];
		if (fflush(f) || fseek(f, 0, SEEK_SET))
			return mesh_errf(err, -EIO, "unique-key spill file: %s", strerror(errno));
		struct table t;
		table_init(&t);
		struct spill_rec r;
		while (fread(&r, sizeof r, 1, f) == 1) {
			if (r.len > cap) {
				cap = r.len * 2;
				buf = xrealloc(buf, cap);
			}
			if (r.len && fread(buf, r.len, 1, f) != 1)
				break;
			if (table_add(&t, r.hash, buf, r.len) > 0 && r.row)
				dup(ctx, buf, r.len, r.line, r.row);
		}
		table_free(&t);
	}
	free(buf);
	return 0;
}

int unique_spilled(const struct unique_set *s)
{
	return s->spilled;
}

void unique_free(struct unique_set *s)
{
	if (!s)
		return;
	table_free(&s->t);
	for (int i = 0; i < PARTITIONS; i++)
		if (s->parts[i])
			fclose(s->parts[i]);
	free(s->tmpdir);
	free(s);
}
