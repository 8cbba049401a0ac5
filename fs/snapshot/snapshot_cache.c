/*
 * snapshot_cache.c - loaded products in an LRU bounded by releases, and
 * the registry of inodes the kernel holds (contract in
 * include/snapshot_cache.h).
 *
 * Two chained hash tables keyed by inode number under one mutex: entries
 * (product inode -> loaded product, on a doubly linked LRU list) and the
 * registry (inode -> product inode, lookup count).  Loading a product
 * reads the store, so it happens with the mutex released; two threads that
 * miss the same product at once both load it and the second keeps the
 * first's.
 *
 * Not here: what a product holds (catalog.c), when the snapshot changes
 * (daemon.c), FUSE.
 */
#include "snapshot_cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mesh_util.h"

struct entry {
	uint64_t ino;                  /* the product's */
	struct catalog *loaded;        /* one reference held by the cache */
	size_t weight;                 /* its releases, at least 1 */
	struct entry *chain;           /* same bucket */
	struct entry *prev, *next;     /* LRU: head most recent */
};

struct held {
	uint64_t ino, product_ino, nlookup;
	char *name, *backing;          /* a stamp (snapshot_cache.h), or NULL */
	uint64_t size;
	struct timespec mtime;
	struct held *chain;
};

static void held_free(struct held *h)
{
	free(h->name);
	free(h->backing);
	free(h);
}

static void held_stamp(struct held *h, const struct snapshot_stamp *stamp)
{
	if (!stamp)
		return;
	free(h->name);
	free(h->backing);
	h->name = xstrdup(stamp->name);
	h->backing = xstrdup(stamp->backing);
	h->size = stamp->size;
	h->mtime = stamp->mtime;
}

struct snapshot_cache {
	pthread_mutex_t lock;
	size_t max_releases, releases, products;
	struct catalog *current;       /* compared, never dereferenced */
	struct entry **buckets;
	size_t n_buckets;              /* power of two */
	struct entry *head, *tail;
	struct held **held;
	size_t n_held_buckets, n_held;
	uint64_t loads, hits, evictions;
};

static size_t slot_of(uint64_t ino, size_t n)
{
	return (size_t)((ino * 0x9e3779b97f4a7c15ull) >> 17) & (n - 1);
}

struct snapshot_cache *snapshot_cache_new(size_t max_releases)
{
	struct snapshot_cache *c = xcalloc(1, sizeof *c);
	pthread_mutex_init(&c->lock, NULL);
	c->max_releases = max_releases ? max_releases : SNAPSHOT_CACHE_DEFAULT;
	c->n_buckets = 64;
	while (c->n_buckets < c->max_releases && c->n_buckets < (1u << 20))
		c->n_buckets *= 2;
	c->buckets = xcalloc(c->n_buckets, sizeof *c->buckets);
	c->n_held_buckets = 1024;
	c->held = xcalloc(c->n_held_buckets, sizeof *c->held);
	return c;
}

static void lru_unlink(struct snapshot_cache *c, struct entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_push(struct snapshot_cache *c, struct entry *e)
{
	e->prev = NULL;
	e->next = c->head;
	if (c->head)
		c->head->prev = e;
	c->head = e;
	if (!c->tail)
		c->tail = e;
}

/* Take e out of the table and the list (under the lock); the caller
 * drops its catalog outside the lock. */
static void entry_remove(struct snapshot_cache *c, struct entry *e)
{
	struct entry **p = &c->buckets[slot_of(e->ino, c->n_buckets)];
	while (*p && *p != e)
		p = &(*p)->chain;
	if (*p)
		*p = e->chain;
	lru_unlink(c, e);
	c->releases -= e->weight;
	c->products--;
}

static struct entry *entry_find(struct snapshot_cache *c, uint64_t ino)
{
	for (struct entry *e = c->buckets[slot_of(ino, c->n_buckets)]; e; e = e->chain)
		if (e->ino == ino)
			return e;
	return NULL;
}

/* Entries taken out under the lock, freed after it. */
struct dropped {
	struct entry *list;
};

static void drop_later(struct dropped *d, struct entry *e)
{
	e->chain = d->list;
	d->list = e;
}

static void drop_now(struct dropped *d)
{
	while (d->list) {
		struct entry *e = d->list;
		d->list = e->chain;
		catalog_unref(e->loaded);
		free(e);
	}
}

void snapshot_cache_reset(struct snapshot_cache *c, struct catalog *snapshot)
{
	if (!c)
		return;
	struct dropped d = {0};
	pthread_mutex_lock(&c->lock);
	c->current = snapshot;
	while (c->head) {
		struct entry *e = c->head;
		entry_remove(c, e);
		drop_later(&d, e);
	}
	pthread_mutex_unlock(&c->lock);
	drop_now(&d);
}

int snapshot_cache_product(struct snapshot_cache *c, const char *store, struct catalog *snapshot,
			   const struct cat_node *product, struct catalog **out, struct mesh_err *err)
{
	pthread_mutex_lock(&c->lock);
	bool current = snapshot == c->current;
	struct entry *e = current ? entry_find(c, product->ino) : NULL;
	if (e) {
		lru_unlink(c, e);
		lru_push(c, e);
		c->hits++;
		*out = catalog_ref(e->loaded);
		pthread_mutex_unlock(&c->lock);
		return 0;
	}
	c->loads++;
	pthread_mutex_unlock(&c->lock);
	struct catalog *loaded = NULL;
	int rc = catalog_product_load(store, snapshot, product, &loaded, err);
	if (rc)
		return rc;
	if (!current) {
		*out = loaded;      /* for an older snapshot's request only */
		return 0;
	}
	struct dropped d = {0};
	pthread_mutex_lock(&c->lock);
	if (snapshot != c->current) {
		pthread_mutex_unlock(&c->lock);
		*out = loaded;
		return 0;
	}
	e = entry_find(c, product->ino);
	if (e) {
		/* another thread loaded it meanwhile: keep one */
		lru_unlink(c, e);
		lru_push(c, e);
		*out = catalog_ref(e->loaded);
		pthread_mutex_unlock(&c->lock);
		catalog_unref(loaded);
		return 0;
	}
	e = xcalloc(1, sizeof *e);
	e->ino = product->ino;
	e->loaded = loaded;
	e->weight = catalog_release_count(loaded) ? catalog_release_count(loaded) : 1;
	size_t slot = slot_of(e->ino, c->n_buckets);
	e->chain = c->buckets[slot];
	c->buckets[slot] = e;
	lru_push(c, e);
	c->releases += e->weight;
	c->products++;
	/* over the cap: the least recently used go, never the one just loaded */
	while (c->releases > c->max_releases && c->tail && c->tail != e) {
		struct entry *old = c->tail;
		entry_remove(c, old);
		drop_later(&d, old);
		c->evictions++;
	}
	*out = catalog_ref(loaded);
	pthread_mutex_unlock(&c->lock);
	drop_now(&d);
	return 0;
}

/* ---- the registry ---- */

static void held_grow(struct snapshot_cache *c)
{
	size_t n = c->n_held_buckets * 2;
	struct held **b = xcalloc(n, sizeof *b);
	for (size_t i = 0; i < c->n_held_buckets; i++)
		while (c->held[i]) {
			struct held *h = c->held[i];
			c->held[i] = h->chain;
			size_t s = slot_of(h->ino, n);
			h->chain = b[s];
			b[s] = h;
		}
	free(c->held);
	c->held = b;
	c->n_held_buckets = n;
}

/* The registry's record of `ino`, or NULL.  Under c->lock. */
static struct held *held_find(struct snapshot_cache *c, uint64_t ino)
{
	struct held *h = c->held[slot_of(ino, c->n_held_buckets)];
	while (h && h->ino != ino)
		h = h->chain;
	return h;
}

void snapshot_cache_note(struct snapshot_cache *c, uint64_t ino, uint64_t product_ino,
			 const struct snapshot_stamp *stamp)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	struct held *h = held_find(c, ino);
	if (h) {
		h->nlookup++;
		h->product_ino = product_ino;
	} else {
		if (c->n_held >= c->n_held_buckets)
			held_grow(c);
		h = xcalloc(1, sizeof *h);
		h->ino = ino;
		h->product_ino = product_ino;
		h->nlookup = 1;
		size_t s = slot_of(ino, c->n_held_buckets);
		h->chain = c->held[s];
		c->held[s] = h;
		c->n_held++;
	}
	held_stamp(h, stamp);
	pthread_mutex_unlock(&c->lock);
}

void snapshot_cache_forget(struct snapshot_cache *c, uint64_t ino, uint64_t nlookup)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	struct held **p = &c->held[slot_of(ino, c->n_held_buckets)];
	while (*p && (*p)->ino != ino)
		p = &(*p)->chain;
	struct held *h = *p;
	if (h && h->nlookup <= nlookup) {
		*p = h->chain;
		c->n_held--;
		held_free(h);
	} else if (h) {
		h->nlookup -= nlookup;
	}
	pthread_mutex_unlock(&c->lock);
}

bool snapshot_cache_owner(struct snapshot_cache *c, uint64_t ino, uint64_t *product_ino)
{
	if (!c)
		return false;
	pthread_mutex_lock(&c->lock);
	struct held *h = held_find(c, ino);
	if (h)
		*product_ino = h->product_ino;
	pthread_mutex_unlock(&c->lock);
	return h != NULL;
}

size_t snapshot_cache_stamped(struct snapshot_cache *c, struct snapshot_stamped **out)
{
	*out = NULL;
	if (!c)
		return 0;
	size_t n = 0, cap = 0;
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->n_held_buckets; i++)
		for (const struct held *h = c->held[i]; h; h = h->chain) {
			if (!h->backing)
				continue;
			if (n == cap)
				*out = xrealloc(*out, (cap = cap ? cap * 2 : 64) * sizeof **out);
			(*out)[n++] = (struct snapshot_stamped){
				.ino = h->ino, .product_ino = h->product_ino, .name = xstrdup(h->name),
				.backing = xstrdup(h->backing), .size = h->size, .mtime = h->mtime,
			};
		}
	pthread_mutex_unlock(&c->lock);
	return n;
}

void snapshot_cache_stamped_free(struct snapshot_stamped *list, size_t n)
{
	for (size_t i = 0; list && i < n; i++) {
		free(list[i].name);
		free(list[i].backing);
	}
	free(list);
}

void snapshot_cache_restamp(struct snapshot_cache *c, uint64_t ino, uint64_t size, struct timespec mtime)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	struct held *h = held_find(c, ino);
	if (h && h->backing) {
		h->size = size;
		h->mtime = mtime;
	}
	pthread_mutex_unlock(&c->lock);
}

void snapshot_cache_stats(struct snapshot_cache *c, struct snapshot_cache_stats *out)
{
	memset(out, 0, sizeof *out);
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	out->products = c->products;
	out->releases = c->releases;
	out->max_releases = c->max_releases;
	out->loads = c->loads;
	out->hits = c->hits;
	out->evictions = c->evictions;
	out->inodes = c->n_held;
	pthread_mutex_unlock(&c->lock);
}

void snapshot_cache_free(struct snapshot_cache *c)
{
	if (!c)
		return;
	snapshot_cache_reset(c, NULL);
	for (size_t i = 0; i < c->n_held_buckets; i++)
		while (c->held[i]) {
			struct held *h = c->held[i];
			c->held[i] = h->chain;
			held_free(h);
		}
	free(c->held);
	free(c->buckets);
	pthread_mutex_destroy(&c->lock);
	free(c);
}
