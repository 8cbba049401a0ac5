/*
 * view_inodes.c - the daemon's view inodes in a chained hash table
 * (contract in include/view_inodes.h).
 */
#include "view_inodes.h"

#include <stdlib.h>

#include "mesh_util.h"

struct node {
	struct view_inode v;
	struct node *chain;
};

struct view_inodes {
	struct node **buckets;
	size_t n_buckets;            /* a power of two */
	size_t count;
};

/* Inode numbers are hashes already, but views' share their top bits
 * (mesh_ino.h): mix before taking the low bits. */
static size_t slot_of(uint64_t ino, size_t n_buckets)
{
	return (size_t)((ino * 0x9e3779b97f4a7c15ull) >> 17) & (n_buckets - 1);
}

struct view_inodes *view_inodes_new(void)
{
	struct view_inodes *t = xcalloc(1, sizeof *t);
	t->n_buckets = 64;
	t->buckets = xcalloc(t->n_buckets, sizeof *t->buckets);
	return t;
}

void view_inodes_free(struct view_inodes *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n_buckets; i++)
		while (t->buckets[i]) {
			struct node *n = t->buckets[i];
			t->buckets[i] = n->chain;
			free(n->v.plan);
			free(n->v.refused);
			free(n);
		}
	free(t->buckets);
	free(t);
}

struct view_inode *view_inodes_find(struct view_inodes *t, uint64_t ino)
{
	struct node *n = t->buckets[slot_of(ino, t->n_buckets)];
	while (n && n->v.ino != ino)
		n = n->chain;
	return n ? &n->v : NULL;
}

static void grow(struct view_inodes *t)
{
	size_t size = t->n_buckets * 2;
	struct node **b = xcalloc(size, sizeof *b);
	for (size_t i = 0; i < t->n_buckets; i++)
		while (t->buckets[i]) {
			struct node *n = t->buckets[i];
			t->buckets[i] = n->chain;
			size_t s = slot_of(n->v.ino, size);
			n->chain = b[s];
			b[s] = n;
		}
	free(t->buckets);
	t->buckets = b;
	t->n_buckets = size;
}

struct view_inode *view_inodes_add(struct view_inodes *t, uint64_t ino, bool *added)
{
	struct view_inode *v = view_inodes_find(t, ino);
	if (added)
		*added = !v;
	if (v)
		return v;
	if (t->count >= t->n_buckets)
		grow(t);
	struct node *n = xcalloc(1, sizeof *n);
	n->v.ino = ino;
	size_t s = slot_of(ino, t->n_buckets);
	n->chain = t->buckets[s];
	t->buckets[s] = n;
	t->count++;
	return &n->v;
}

size_t view_inodes_count(const struct view_inodes *t)
{
	return t->count;
}
