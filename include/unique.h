/*
 * unique.h - exact duplicate detection over a stream of values in bounded
 * memory.  Values are kept in an in-memory hash table (compared byte for
 * byte, so hash collisions never count as duplicates) until a memory limit
 * is reached; then everything is spilled to 64 temporary partition files by
 * hash and each partition is checked on its own at the end, so memory is
 * bounded by the limit or by the largest partition (~1/64 of the values).
 */
#ifndef UNIQUE_H
#define UNIQUE_H

#include <stddef.h>
#include <stdint.h>

#include "mesh_err.h"

struct unique_set;

/* memory_limit: bytes (0: 24 MiB, so validation stays under 64 MiB); tmpdir: for spill files (NULL: /var/tmp). */
struct unique_set *unique_new(size_t memory_limit, const char *tmpdir);
/* Called once per duplicate (each later occurrence of a value). */
typedef void (*unique_dup_fn)(void *ctx, const char *value, size_t len, uint64_t line, uint64_t row);
/* Add a value.  Duplicates found now are reported through `dup`. */
int unique_add(struct unique_set *s, const void *value, size_t len, uint64_t line, uint64_t row,
	       unique_dup_fn dup, void *ctx, struct mesh_err *err);
/* Report the duplicates still unknown (spilled values); call once. */
int unique_finish(struct unique_set *s, unique_dup_fn dup, void *ctx, struct mesh_err *err);
/* True once the set spilled to disk (for tests and reports). */
int unique_spilled(const struct unique_set *s);
void unique_free(struct unique_set *s);

uint64_t mesh_hash64(const void *data, size_t len);

#endif
