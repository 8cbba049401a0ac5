/*
 * search_dir.h - the /mesh/.search tree: `ls /mesh/.search/<words>/`
 * answers the search for the calling user, one symlink per product
 * ("sales.orders -> ../../sales/orders"), and /mesh/.search/README says
 * how.  This module holds the tree's inodes and answers; the FUSE glue
 * (fs/fuse_search.c) only translates.
 *
 * Nothing here is cached across users: every listing runs the search for
 * the caller, and the glue answers with zero entry and attribute timeouts.
 * Inodes of query directories and links are hashes of their text with the
 * top bit set, remembered in a bounded table (a forgotten one is looked up
 * again by the kernel); the table is protected by a mutex.
 */
#ifndef SEARCH_DIR_H
#define SEARCH_DIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mesh_ino.h"

#include "mesh_err.h"
#include "search.h"

#define SEARCH_DIR_NAME   ".search"
#define SEARCH_DIR_INO    0xfffffffffff5ea00ull   /* /mesh/.search */
#define SEARCH_README_INO 0xfffffffffff5ea01ull   /* /mesh/.search/README */
#define SEARCH_TABLE_MAX  4096

enum search_ino_kind { SEARCH_NONE, SEARCH_ROOT, SEARCH_README, SEARCH_QUERY, SEARCH_LINK };

struct search_dir;

/* Inodes whose top two bits are set are this tree's (mesh_ino.h). */
static inline bool search_dir_owns(uint64_t ino)
{
	return mesh_ino_is_search(ino);
}

struct search_dir *search_dir_new(void);
void search_dir_free(struct search_dir *sd);

/* What `ino` is; for SEARCH_QUERY the query text, for SEARCH_LINK the
 * target ("../../sales/orders"), copied into buf. */
enum search_ino_kind search_dir_kind(struct search_dir *sd, uint64_t ino, char *buf, size_t size);
/* The inode of the query directory named `name` (any text up to 255
 * bytes; words separated by spaces), or of the link `entry` in it. */
uint64_t search_dir_query_ino(struct search_dir *sd, const char *name);
uint64_t search_dir_link_ino(struct search_dir *sd, const char *query, const char *entry, const char *target);

/* The README's text (static). */
const char *search_dir_readme(void);

/* One answer: entry names "domain.product" and targets "../../domain/product". */
struct search_dir_entry {
	char name[2 * 64 + 2];
	char target[2 * 64 + 8];
};
/* Run the search `query` (a directory name) for the caller. */
int search_dir_answer(const char *store, const char *query, search_visible_fn visible, void *ctx,
		      struct search_dir_entry **out, size_t *n, struct mesh_err *err);

#endif
