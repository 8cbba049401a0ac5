/*
 * backing_cache.c - kept descriptors of release files (contract in
 * include/backing_cache.h).  Direct-mapped by inode number: a collision
 * just replaces the slot's descriptor.
 *
 * Not here: how a store file is opened safely (the opener, daemon.c).
 */
#include "backing_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mesh_util.h"

struct backing_ref {
	int fd;
	_Atomic unsigned refs;     /* the slot's (while kept) and every open's */
};

struct slot {
	pthread_mutex_t lock;
	uint64_t ino;
	char *relpath;        /* NULL: empty */
	struct backing_ref *ref;
};

struct backing_cache {
	size_t n;
	backing_opener opener;
	void *ctx;
	struct slot *slots;
};

struct backing_cache *backing_cache_new(size_t slots, backing_opener opener, void *ctx)
{
	struct backing_cache *c = xcalloc(1, sizeof *c);
	c->n = slots;
	c->opener = opener;
	c->ctx = ctx;
	c->slots = xcalloc(slots ? slots : 1, sizeof *c->slots);
	for (size_t i = 0; i < slots; i++)
		pthread_mutex_init(&c->slots[i].lock, NULL);
	return c;
}

void backing_cache_put(struct backing_ref *ref)
{
	if (ref && atomic_fetch_sub_explicit(&ref->refs, 1, memory_order_acq_rel) == 1) {
		close(ref->fd);
		free(ref);
	}
}

static void empty(struct slot *s)
{
	backing_cache_put(s->ref);
	s->ref = NULL;
	free(s->relpath);
	s->relpath = NULL;
}

void backing_cache_clear(struct backing_cache *c)
{
	for (size_t i = 0; c && i < c->n; i++) {
		pthread_mutex_lock(&c->slots[i].lock);
		empty(&c->slots[i]);
		pthread_mutex_unlock(&c->slots[i].lock);
	}
}

void backing_cache_free(struct backing_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++) {
		empty(&c->slots[i]);
		pthread_mutex_destroy(&c->slots[i].lock);
	}
	free(c->slots);
	free(c);
}

static struct backing_ref *ref_new(int fd, unsigned refs)
{
	struct backing_ref *r = xcalloc(1, sizeof *r);
	r->fd = fd;
	atomic_init(&r->refs, refs);
	return r;
}

int backing_cache_get(struct backing_cache *c, uint64_t ino, const char *relpath, struct backing_ref **ref)
{
	*ref = NULL;
	if (!c->n) {
		int fd = c->opener(c->ctx, relpath);
		if (fd >= 0)
			*ref = ref_new(fd, 1);
		return fd;
	}
	struct slot *s = &c->slots[((ino * 0x9e3779b97f4a7c15ull) >> 32) % c->n];
	pthread_mutex_lock(&s->lock);
	int fd;
	if (s->relpath && s->ino == ino && !strcmp(s->relpath, relpath)) {
		atomic_fetch_add_explicit(&s->ref->refs, 1, memory_order_relaxed);
		*ref = s->ref;
		fd = s->ref->fd;
	} else {
		fd = c->opener(c->ctx, relpath);
		if (fd >= 0) {
			empty(s);
			s->ref = ref_new(fd, 2);   /* the slot's and the caller's */
			s->ino = ino;
			s->relpath = xstrdup(relpath);
			*ref = s->ref;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return fd;
}
