/*
 * mask.h - masked views of CSV and JSON Lines files: every byte of a
 * masked value is replaced so that the file keeps its exact length and
 * every other byte, row and offset (pandas chunks and DuckDB's parallel
 * scans by byte range work on masked files as on clear ones).
 *
 *   CSV:   each byte of a masked field's content becomes '*'; quotes stay.
 *          The header row is never masked.
 *   JSONL: a masked string keeps its quotes, its content becomes '*'; a
 *          number becomes 0 padded with spaces; true/false/null become null
 *          padded with spaces; inside objects and arrays every scalar is
 *          masked the same way.  The output stays valid JSON.
 *
 * Reads arrive as arbitrary windows; a checkpoint index (record starts
 * outside any quote, about every MASK_CHECKPOINT bytes) lets a window be
 * masked by scanning from the nearest checkpoint only.
 *
 * An index and a plan are immutable once built: threads share them.
 * mask_read() keeps no state between calls.
 */
#ifndef MASK_H
#define MASK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mesh_err.h"

#define MASK_CHECKPOINT (64u << 10)

enum mask_format { MASK_CSV, MASK_JSONL };

struct mask_index;
struct mask_plan;

/* One pass over the file.  CSV: also reads the header's column names. */
int mask_index_build(int fd, enum mask_format format, struct mask_index **out, struct mesh_err *err);
void mask_index_free(struct mask_index *ix);
uint64_t mask_index_size(const struct mask_index *ix);

/* Columns (CSV header names / JSONL top-level keys) to mask.  -ENOENT for a
 * CSV column the header does not have. */
int mask_plan_new(const struct mask_index *ix, const char *const *columns, size_t n,
		  struct mask_plan **out, struct mesh_err *err);
void mask_plan_free(struct mask_plan *plan);

/* Masked bytes of [offset, offset+len) into buf; *out_len is short at end
 * of file.  0 or a negative errno (-EIO for unreadable content). */
int mask_read(const struct mask_index *ix, const struct mask_plan *plan, int fd, char *buf, size_t len,
	      off_t offset, size_t *out_len);

#endif
