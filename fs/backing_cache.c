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
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mesh_util.h"

struct slot {
	pthread_mutex_t lock;
	uint64_t ino;
	char *relpath;        /* NULL: empty */
	int fd;
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
	for (size_t i = 0; i < slots; i++) {
		pthread_mutex_init(&c->slots[i].lock, NULL);
		c->slots[i].fd = -1;
	}
	return c;
}

static void empty(struct slot *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
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

int backing_cache_open(struct backing_cache *c, uint64_t ino, const char *relpath)
{
	if (!c->n)
		return c->opener(c->ctx, relpath);
	struct slot *s = &c->slots[((ino * 0x9e3779b97f4a7c15ull) >> 32) % c->n];
	pthread_mutex_lock(&s->lock);
	int fd;
	if (s->relpath && s->ino == ino && !strcmp(s->relpath, relpath)) {
		fd = fcntl(s->fd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0)
			fd = -errno;
	} else {
		fd = c->opener(c->ctx, relpath);
		if (fd >= 0) {
			int keep = fcntl(fd, F_DUPFD_CLOEXEC, 0);
			empty(s);
			if (keep >= 0) {
				s->fd = keep;
				s->ino = ino;
				s->relpath = xstrdup(relpath);
			}
		}
	}
	pthread_mutex_unlock(&s->lock);
	return fd;
}
