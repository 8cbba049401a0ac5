/*
 * mesh_ino.h - how the mount's inode numbers are shared out.  The top two
 * bits say whose an inode is, so no two producers can collide:
 *
 *   00...  the catalog's (a hash of the mesh path: catalog.h)
 *   10...  a masked reader's view of a file (daemon.c: per file and plan),
 *          and a reader's product card (daemon.c: per card and decision)
 *   11...  /mesh/.search and what is under it (search_dir.h)
 */
#ifndef MESH_INO_H
#define MESH_INO_H

#include <stdbool.h>
#include <stdint.h>

#define MESH_INO_KIND_MASK (3ull << 62)
#define MESH_INO_VIEW      (2ull << 62)
#define MESH_INO_SEARCH    (3ull << 62)

static inline uint64_t mesh_ino_catalog(uint64_t hash) { return hash & ~MESH_INO_KIND_MASK; }
static inline uint64_t mesh_ino_view(uint64_t hash) { return (hash & ~MESH_INO_KIND_MASK) | MESH_INO_VIEW; }
static inline uint64_t mesh_ino_search(uint64_t hash) { return hash | MESH_INO_SEARCH; }
static inline bool mesh_ino_is_view(uint64_t ino) { return (ino & MESH_INO_KIND_MASK) == MESH_INO_VIEW; }
static inline bool mesh_ino_is_search(uint64_t ino) { return (ino & MESH_INO_KIND_MASK) == MESH_INO_SEARCH; }

#endif
