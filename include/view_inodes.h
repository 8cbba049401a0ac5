/*
 * view_inodes.h - the daemon's table of view inodes: the inodes it gives
 * the kernel that are not catalog nodes (a masked reader's view of a
 * file, a card rendered for one reader), and what the kernel may ask
 * about each (whose file it shows, its size and SHA-256 once built, why a
 * build refused the content).
 *
 * A chained hash table keyed by inode number, doubled when it holds more
 * entries than buckets: finding an inode costs the same with ten entries
 * or a million (the table grows with readers x cards: a card's inode is
 * the reader's decision's, and an outsider's decision names the outsider).
 * Entries are allocated one by one, so a pointer view_inodes_find or
 * view_inodes_add returned stays valid until view_inodes_free; nothing is
 * removed before then (the kernel may ask about any inode it was given,
 * and a view's size is what a later lookup answers without building it).
 *
 * Not here: computing the inode numbers (daemon.c), views themselves
 * (view_cache.h).  Thread-safety: none; the daemon calls it under its lock.
 */
#ifndef VIEW_INODES_H
#define VIEW_INODES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct view_inode {
	uint64_t ino, base_ino;      /* the view's inode; the catalog node it shows */
	uint64_t product_ino;        /* base's product: base found again after an eviction (0: none) */
	uint64_t size;               /* once known (sha256[0] != 0) */
	char sha256[65];             /* hex of the bytes served, "" until built */
	char *plan;                  /* the mask plan's text, or what the inode is ("card for this reader") */
	char *refused;               /* the build refused the content: deny, and why (NULL: not refused) */
};

struct view_inodes;

struct view_inodes *view_inodes_new(void);
void view_inodes_free(struct view_inodes *t);
/* The entry of `ino`, or NULL. */
struct view_inode *view_inodes_find(struct view_inodes *t, uint64_t ino);
/* The entry of `ino`, made (zeroed but for ino) if there was none; *added
 * (may be NULL) says which. */
struct view_inode *view_inodes_add(struct view_inodes *t, uint64_t ino, bool *added);
size_t view_inodes_count(const struct view_inodes *t);

#endif
