/*
 * fpset.c - duplicate detection by hash fingerprints, exact by fetching
 * values on equal hashes (contract in include/fpset.h).
 *
 * A run has a buffer of BUF_ENTRIES per partition; a full buffer becomes a
 * block, kept in memory while the set's blocks stay under the limit, else
 * written to the spill file (pwrite at an offset taken under the set's
 * lock).  At the end each partition is gathered in run order (so locators
 * ascend), and put through an open-addressing table of {hash, locator}:
 * an equal hash costs two fetches and a comparison.  Not here: what a
 * value is (the fetch callback knows).
 */
#include "fpset.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PARTITION_BITS 8
#define PARTITIONS (1u << PARTITION_BITS)
#define BUF_ENTRIES 256u

struct entry {
	uint64_t hash, locator;
};

struct block {
	struct entry *mem;      /* or NULL: in the spill file at `offset` */
	uint64_t offset;
	uint32_t n;
};

struct part {
	struct entry *buf;      /* BUF_ENTRIES, allocated on first use */
	uint32_t n;
	struct block *blocks;
	size_t n_blocks, cap_blocks;
};

struct fpset_run {
	struct fpset *set;
	uint64_t order, limit;
	bool discarded;
	struct part parts[PARTITIONS];
};

struct fpset {
	size_t limit;
	char *tmpdir;
	pthread_mutex_t lock;   /* runs, in_memory, spill_fd, spill_len */
	struct fpset_run **runs;
	size_t n_runs, cap_runs;
	size_t in_memory;
	int spill_fd;
	uint64_t spill_len;
};

struct fpset *fpset_new(size_t memory_limit, const char *tmpdir)
{
	struct fpset *s = xcalloc(1, sizeof *s);
	s->limit = memory_limit ? memory_limit : (24u << 20);
	s->tmpdir = xstrdup(tmpdir ? tmpdir : "/var/tmp");
	s->spill_fd = -1;
	pthread_mutex_init(&s->lock, NULL);
	return s;
}

static void run_free(struct fpset_run *r)
{
	for (unsigned p = 0; p < PARTITIONS; p++) {
		struct part *pt = &r->parts[p];
		free(pt->buf);
		for (size_t b = 0; b < pt->n_blocks; b++)
			free(pt->blocks[b].mem);
		free(pt->blocks);
	}
	free(r);
}

void fpset_free(struct fpset *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_runs; i++)
		run_free(s->runs[i]);
	free(s->runs);
	if (s->spill_fd >= 0)
		close(s->spill_fd);
	pthread_mutex_destroy(&s->lock);
	free(s->tmpdir);
	free(s);
}

bool fpset_spilled(const struct fpset *s)
{
	return s->spill_fd >= 0;
}

struct fpset_run *fpset_run_new(struct fpset *s, uint64_t order)
{
	struct fpset_run *r = xcalloc(1, sizeof *r);
	r->set = s;
	r->order = order;
	r->limit = UINT64_MAX;
	pthread_mutex_lock(&s->lock);
	if (s->n_runs == s->cap_runs) {
		s->cap_runs = s->cap_runs ? s->cap_runs * 2 : 16;
		s->runs = xrealloc(s->runs, s->cap_runs * sizeof *s->runs);
	}
	s->runs[s->n_runs++] = r;
	pthread_mutex_unlock(&s->lock);
	return r;
}

void fpset_run_discard(struct fpset_run *r)
{
	r->discarded = true;
}

void fpset_run_limit(struct fpset_run *r, uint64_t limit)
{
	r->limit = limit;
}

static void add_block(struct part *pt, struct block b)
{
	if (pt->n_blocks == pt->cap_blocks) {
		pt->cap_blocks = pt->cap_blocks ? pt->cap_blocks * 2 : 8;
		pt->blocks = xrealloc(pt->blocks, pt->cap_blocks * sizeof *pt->blocks);
	}
	pt->blocks[pt->n_blocks++] = b;
}

/* The partition's buffer becomes a block: in memory or in the spill file. */
static int flush_part(struct fpset_run *r, struct part *pt, struct mesh_err *err)
{
	struct fpset *s = r->set;
	size_t bytes = (size_t)pt->n * sizeof(struct entry);
	pthread_mutex_lock(&s->lock);
	if (s->in_memory + bytes <= s->limit) {
		s->in_memory += bytes;
		pthread_mutex_unlock(&s->lock);
		struct entry *mem = xmalloc(bytes);
		memcpy(mem, pt->buf, bytes);
		add_block(pt, (struct block){mem, 0, pt->n});
		pt->n = 0;
		return 0;
	}
	if (s->spill_fd < 0) {
		char path[4096];
		snprintf(path, sizeof path, "%s/meshfs-unique.XXXXXX", s->tmpdir);
		int fd = mkostemp(path, O_CLOEXEC);
		if (fd < 0) {
			int e = errno;
			pthread_mutex_unlock(&s->lock);
			return mesh_errf(err, -e, "unique-key spill file %s: %s", path, strerror(e));
		}
		unlink(path);   /* gone with the process, whatever happens */
		s->spill_fd = fd;
	}
	uint64_t off = s->spill_len;
	s->spill_len += bytes;
	int fd = s->spill_fd;
	pthread_mutex_unlock(&s->lock);
	const char *p = (const char *)pt->buf;
	size_t done = 0;
	while (done < bytes) {
		ssize_t n = pwrite(fd, p + done, bytes - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return mesh_errf(err, n < 0 ? -errno : -EIO, "unique-key spill file in %s: %s", s->tmpdir,
					 n < 0 ? strerror(errno) : "short write");
		done += (size_t)n;
	}
	add_block(pt, (struct block){NULL, off, pt->n});
	pt->n = 0;
	return 0;
}

int fpset_add(struct fpset_run *r, uint64_t hash, uint64_t locator, struct mesh_err *err)
{
	struct part *pt = &r->parts[hash >> (64 - PARTITION_BITS)];
	if (!pt->buf)
		pt->buf = xmalloc(BUF_ENTRIES * sizeof *pt->buf);
	pt->buf[pt->n++] = (struct entry){hash, locator};
	return pt->n == BUF_ENTRIES ? flush_part(r, pt, err) : 0;
}

int fpset_run_close(struct fpset_run *r, struct mesh_err *err)
{
	int rc = 0;
	for (unsigned p = 0; p < PARTITIONS; p++) {
		struct part *pt = &r->parts[p];
		if (pt->n && !rc)
			rc = flush_part(r, pt, err);
		pt->n = 0;
		free(pt->buf);
		pt->buf = NULL;
	}
	return rc;
}

/* ---- finish ---- */

static int run_order(const void *a, const void *b)
{
	const struct fpset_run *x = *(const struct fpset_run *const *)a, *y = *(const struct fpset_run *const *)b;
	return (x->order > y->order) - (x->order < y->order);
}

struct finish {
	struct fpset *s;
	fpset_fetch_fn fetch;
	void *ctx;
	pthread_mutex_t lock;   /* next, rc, err */
	unsigned next;
	int rc;
	struct mesh_err *err;
	struct fpset_result parts[PARTITIONS];
};

/* Append partition p's entries of run r (below its limit) to *v. */
static int gather(struct fpset *s, struct fpset_run *r, unsigned p, struct entry **v, size_t *n, size_t *cap,
		  struct mesh_err *err)
{
	struct part *pt = &r->parts[p];
	for (size_t b = 0; b <= pt->n_blocks; b++) {
		bool tail = b == pt->n_blocks;
		size_t count = tail ? pt->n : pt->blocks[b].n;
		if (!count)
			continue;
		if (*n + count > *cap) {
			*cap = (*n + count) * 2;
			*v = xrealloc(*v, *cap * sizeof **v);
		}
		struct entry *dst = *v + *n;
		if (tail) {
			memcpy(dst, pt->buf, count * sizeof *dst);
		} else if (pt->blocks[b].mem) {
			memcpy(dst, pt->blocks[b].mem, count * sizeof *dst);
		} else {
			size_t bytes = count * sizeof *dst, done = 0;
			while (done < bytes) {
				ssize_t k = pread(s->spill_fd, (char *)dst + done, bytes - done,
						  (off_t)(pt->blocks[b].offset + done));
				if (k < 0 && errno == EINTR)
					continue;
				if (k <= 0)
					return mesh_errf(err, k < 0 ? -errno : -EIO, "unique-key spill file: %s",
							 k < 0 ? strerror(errno) : "short read");
				done += (size_t)k;
			}
		}
		size_t kept = 0;
		for (size_t i = 0; i < count; i++)
			if (dst[i].locator < r->limit)
				dst[kept++] = dst[i];
		*n += kept;
	}
	return 0;
}

static int same_value(struct finish *f, uint64_t a, uint64_t b, struct strbuf *va, struct strbuf *vb, bool *same,
		      struct mesh_err *err)
{
	int rc = f->fetch(f->ctx, a, va, err);
	if (!rc)
		rc = f->fetch(f->ctx, b, vb, err);
	*same = !rc && va->len == vb->len && (!va->len || !memcmp(va->buf, vb->buf, va->len));
	return rc;
}

static int finish_part(struct finish *f, unsigned p, struct entry **v, size_t *cap, struct entry **table,
		       size_t *table_cap, struct strbuf *va, struct strbuf *vb, struct mesh_err *err)
{
	struct fpset *s = f->s;
	size_t n = 0;
	for (size_t i = 0; i < s->n_runs; i++) {
		if (s->runs[i]->discarded)
			continue;
		int rc = gather(s, s->runs[i], p, v, &n, cap, err);
		if (rc)
			return rc;
	}
	struct fpset_result *res = &f->parts[p];
	if (n < 2)
		return 0;
	size_t size = 16;
	while (size < n * 2)
		size *= 2;
	if (size > *table_cap) {
		free(*table);
		*table = xmalloc(size * sizeof **table);
		*table_cap = size;
	}
	struct entry *t = *table;
	for (size_t i = 0; i < size; i++)
		t[i].locator = UINT64_MAX;   /* empty */
	size_t mask = size - 1;
	for (size_t i = 0; i < n; i++) {
		const struct entry *e = &(*v)[i];
		size_t k = (size_t)e->hash & mask;
		bool dup = false;
		for (; t[k].locator != UINT64_MAX; k = (k + 1) & mask) {
			if (t[k].hash != e->hash)
				continue;
			int rc = same_value(f, t[k].locator, e->locator, va, vb, &dup, err);
			if (rc)
				return rc;
			if (dup)
				break;
		}
		if (dup) {
			res->duplicates++;
			if (res->n_examples < FPSET_EXAMPLES)
				res->examples[res->n_examples++] = e->locator;
			continue;
		}
		t[k] = *e;
	}
	return 0;
}

static void *finish_worker(void *arg)
{
	struct finish *f = arg;
	struct entry *v = NULL, *table = NULL;
	size_t cap = 0, table_cap = 0;
	struct strbuf va = STRBUF_INIT, vb = STRBUF_INIT;
	for (;;) {
		pthread_mutex_lock(&f->lock);
		unsigned p = f->rc ? PARTITIONS : f->next++;
		pthread_mutex_unlock(&f->lock);
		if (p >= PARTITIONS)
			break;
		struct mesh_err e = {0};
		int rc = finish_part(f, p, &v, &cap, &table, &table_cap, &va, &vb, &e);
		if (rc) {
			pthread_mutex_lock(&f->lock);
			if (!f->rc) {
				f->rc = rc;
				*f->err = e;
			}
			pthread_mutex_unlock(&f->lock);
		}
	}
	free(v);
	free(table);
	strbuf_release(&va);
	strbuf_release(&vb);
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

int fpset_finish(struct fpset *s, unsigned threads, fpset_fetch_fn fetch, void *ctx, struct fpset_result *out,
		 struct mesh_err *err)
{
	memset(out, 0, sizeof *out);
	if (s->n_runs > 1)
		qsort(s->runs, s->n_runs, sizeof *s->runs, run_order);
	struct finish *f = xcalloc(1, sizeof *f);
	f->s = s;
	f->fetch = fetch;
	f->ctx = ctx;
	f->err = err;
	pthread_mutex_init(&f->lock, NULL);
	if (threads < 1)
		threads = 1;
	if (threads > 64)
		threads = 64;
	pthread_t tid[64];
	unsigned started = 0;
	for (unsigned i = 1; i < threads; i++)
		if (pthread_create(&tid[started], NULL, finish_worker, f) == 0)
			started++;
	finish_worker(f);
	for (unsigned i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	int rc = f->rc;
	/* the first duplicates: the smallest of every partition's first ones */
	uint64_t all[PARTITIONS * FPSET_EXAMPLES];
	size_t n = 0;
	for (unsigned p = 0; p < PARTITIONS; p++) {
		out->duplicates += f->parts[p].duplicates;
		for (size_t k = 0; k < f->parts[p].n_examples; k++)
			all[n++] = f->parts[p].examples[k];
	}
	qsort(all, n, sizeof *all, cmp_u64);
	out->n_examples = n < FPSET_EXAMPLES ? n : FPSET_EXAMPLES;
	memcpy(out->examples, all, out->n_examples * sizeof *all);
	pthread_mutex_destroy(&f->lock);
	free(f);
	return rc;
}
