/*
 * view_hash.c - SHA-256 on a second thread (contract in
 * include/view_hash.h): one slot, a mutex and a condition variable.
 *
 * Not here: what is hashed or why (view_build.c, view_parquet.c).
 */
#include "view_hash.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

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
