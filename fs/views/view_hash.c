/*
 * view_hash.c - SHA-256 on a second thread (contract in
 * include/view_hash.h): one slot, a mutex and a condition variable; and
 * the double-buffered read loop the view builders share on top of it.
 *
 * Not here: what is hashed or why (view_build.c, view_parquet.c).
 */
#include "view_hash.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mesh_util.h"

struct view_hasher {
	struct mesh_sha256 *sha;
	pthread_t thread;
	bool threaded;
	pthread_mutex_t lock;
	pthread_cond_t changed;
	const void *buf;             /* the slot: set while a buffer waits or is hashed */
	size_t len;
	bool stop;
};

static void *hasher_main(void *arg)
{
	struct view_hasher *h = arg;
	pthread_mutex_lock(&h->lock);
	for (;;) {
		while (!h->buf && !h->stop)
			pthread_cond_wait(&h->changed, &h->lock);
		if (!h->buf)
			break;
		const void *buf = h->buf;
		size_t len = h->len;
		pthread_mutex_unlock(&h->lock);
		mesh_sha256_update(h->sha, buf, len);
		pthread_mutex_lock(&h->lock);
		h->buf = NULL;
		pthread_cond_broadcast(&h->changed);
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

struct view_hasher *view_hasher_new(void)
{
	struct view_hasher *h = xcalloc(1, sizeof *h);
	h->sha = mesh_sha256_new();
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->changed, NULL);
	h->threaded = pthread_create(&h->thread, NULL, hasher_main, h) == 0;
	if (h->threaded)
		pthread_setname_np(h->thread, "view-hasher");
	return h;
}

/* Until the slot is free. */
static void wait_idle(struct view_hasher *h)
{
	while (h->buf)
		pthread_cond_wait(&h->changed, &h->lock);
}

void view_hasher_add(struct view_hasher *h, const void *buf, size_t len)
{
	if (!len)
		return;
	if (!h->threaded) {
		mesh_sha256_update(h->sha, buf, len);
		return;
	}
	pthread_mutex_lock(&h->lock);
	wait_idle(h);
	h->buf = buf;
	h->len = len;
	pthread_cond_broadcast(&h->changed);
	pthread_mutex_unlock(&h->lock);
}

void view_hasher_finish(struct view_hasher *h, char hex[65])
{
	if (h->threaded) {
		pthread_mutex_lock(&h->lock);
		wait_idle(h);
		h->stop = true;
		pthread_cond_broadcast(&h->changed);
		pthread_mutex_unlock(&h->lock);
		pthread_join(h->thread, NULL);
	}
	mesh_sha256_final(h->sha, hex);
	pthread_mutex_destroy(&h->lock);
	pthread_cond_destroy(&h->changed);
	free(h);
}

/* ---- the hashed read ---- */

#define READ_CHUNK (1u << 20)

struct view_reader {
	int fd;
	const char *what;
	struct view_hasher *hasher;
	char *bufs[2];              /* in turn: one is hashed while the other is read */
	unsigned turn;
	uint64_t off;
};

struct view_reader *view_reader_new(int fd, const char *what)
{
	struct view_reader *r = xcalloc(1, sizeof *r);
	r->fd = fd;
	r->what = what;
	r->hasher = view_hasher_new();
	r->bufs[0] = xmalloc(READ_CHUNK);
	r->bufs[1] = xmalloc(READ_CHUNK);
	return r;
}

int view_reader_next(struct view_reader *r, const char **data, size_t *len, struct mesh_err *err)
{
	char *buf = r->bufs[r->turn];
	ssize_t n;
	/* this buffer was handed to the hasher two pieces ago, and the last
	 * view_hasher_add returned only once it was hashed: free to reuse */
	while ((n = pread(r->fd, buf, READ_CHUNK, (off_t)r->off)) < 0 && errno == EINTR)
		;
	if (n < 0)
		return mesh_errf(err, -errno, "reading %s: %s", r->what, strerror(errno));
	if (n == 0)
		return 0;
	view_hasher_add(r->hasher, buf, (size_t)n);
	r->turn ^= 1;
	r->off += (uint64_t)n;
	*data = buf;
	*len = (size_t)n;
	return 1;
}

uint64_t view_reader_offset(const struct view_reader *r)
{
	return r->off;
}

void view_reader_finish(struct view_reader *r, char hex[65])
{
	view_hasher_finish(r->hasher, hex);
	free(r->bufs[0]);
	free(r->bufs[1]);
	free(r);
}
