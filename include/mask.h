/*
 * mask.h - masked views of CSV and JSON Lines files for readers who lack
 * clearance for classified columns.
 *
 * A masked file has exactly the length of the original and every byte
 * outside masked values is the original byte, so sizes, row offsets and
 * byte-range splits (pandas chunks, DuckDB parallel scans) are the same for
 * every reader.  Rules:
 *
 *   CSV (RFC 4180): each byte of a masked field's content becomes '*'.  The
 *     quotes around a quoted field stay; inside them everything becomes
 *     '*' (a doubled quote "" becomes **, an embedded newline *).  The CR
 *     of a CRLF line end stays.  The header row is never masked.
 *   JSON Lines: for a masked top-level key, a string value keeps its
 *     quotes and each byte between them (escapes included) becomes '*'; a
 *     number becomes "0" padded with spaces; true/false/null become "null"
 *     padded with spaces; in a nested object or array every string value,
 *     number and literal is masked the same way while the structure ({}[]:,
 *     spaces) and the keys of nested objects stay: they are names, and
 *     masking them would make duplicate keys, which some readers (DuckDB)
 *     refuse.  Lines that are valid JSON but not objects, and blank lines,
 *     are left as they are.
 *
 * Fail closed: mask_index_build() reads the whole file once and refuses
 * (-EINVAL, naming line and column) any file whose structure is
 * ambiguous: CSV with a quote inside an unquoted field, text after a
 * closing quote, a CR not followed by LF outside quotes, a quoted field
 * never closed, or a record with more fields than the header; JSON Lines
 * with any line that is not valid JSON.  Such a file cannot be served
 * masked at all, so the caller must deny the open.  mask_read() returns
 * -EIO when the file no longer matches its index (changed underneath).
 *
 * Windows: the index keeps the scanner's state every `interval` bytes, in
 * the middle of records too, so a window is masked by scanning at most one
 * interval before it, whatever the length of records, fields or lines.
 * The interval is MASK_INTERVAL (16 KiB), doubled for large files so that
 * the index stays within MASK_INDEX_MAX: 8 bytes per interval for CSV
 * (16 KiB intervals up to 4 GiB), 32 for JSON Lines (up to 1 GiB).
 *
 * Thread-safety: an index and a plan are immutable once built and may be
 * shared by any number of threads.  mask_read() keeps no state between
 * calls; it uses about 18 KiB of stack and no heap (scratch for the bytes
 * between the checkpoint and the window).
 */
#ifndef MASK_H
#define MASK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mesh_err.h"

#define MASK_INTERVAL (16u << 10)
#define MASK_INDEX_MAX (2u << 20)
#define MASK_NAME_MAX 256          /* longest column name a plan accepts, bytes */
#define MASK_HEADER_MAX (1u << 20) /* a longer CSV header row is refused */
#define MASK_JSON_DEPTH_MAX 64     /* deeper JSON nesting is refused */

enum mask_format { MASK_CSV, MASK_JSONL };

struct mask_index;
struct mask_plan;

/* The format for a data file name: ".csv" is CSV; ".jsonl", ".ndjson" and
 * ".json" (read as JSON Lines) are JSON Lines.  0, or -ENOTSUP for any
 * other name (compressed files included): the caller fails closed. */
int mask_format_for_name(const char *name, enum mask_format *out);

/* Read `fd` once with pread (the file offset is not used) and build its
 * index: the CSV header's column names and the scanner's state every
 * interval.  Memory: the header names plus at most MASK_INDEX_MAX; a
 * 1 MiB read buffer while building.
 * *out is freed with mask_index_free().  Errors: -EINVAL for content that
 * cannot be masked safely (err: "line L, column C: what"; the caller adds
 * the file name), or a pread error. */
int mask_index_build(int fd, enum mask_format format, struct mask_index **out, struct mesh_err *err);
/* The same with another checkpoint interval (rounded up to a multiple of
 * 64, at least 64): for tests and fuzzing, where small intervals put
 * checkpoints inside every construct. */
int mask_index_build_interval(int fd, enum mask_format format, size_t interval,
			      struct mask_index **out, struct mesh_err *err);
void mask_index_free(struct mask_index *index);

/* The file size the index was built for; mask_read() serves exactly this
 * many bytes, so the daemon should report it as the masked file's size. */
uint64_t mask_index_size(const struct mask_index *index);
enum mask_format mask_index_format(const struct mask_index *index);
/* CSV header: number of columns and the i-th name (unquoted, unescaped,
 * BOM removed; owned by the index).  0 / NULL for JSON Lines. */
size_t mask_index_columns(const struct mask_index *index);
const char *mask_index_column(const struct mask_index *index, size_t i);

/* Which columns to mask.  CSV: names are header names (exact bytes; every
 * column of that name is masked); a name the header lacks is -ENOENT with
 * err naming it.  JSON Lines: names are top-level keys (compared after
 * decoding escapes, so "em\u0061il" is "email"); a key no line uses masks
 * nothing (optional fields are often left out), so any name is accepted.
 * -EINVAL for a name longer than MASK_NAME_MAX or empty.  n == 0 makes a
 * plan that masks nothing.  The plan may be used only with indexes of the
 * same format and column count (checked: -EINVAL); it does not point into
 * the index.  Free with mask_plan_free(). */
int mask_plan_new(const struct mask_index *index, const char *const *column_names, size_t n,
		  struct mask_plan **out, struct mesh_err *err);
void mask_plan_free(struct mask_plan *plan);
/* True if the plan masks nothing (mask_read is then a plain pread). */
int mask_plan_empty(const struct mask_plan *plan);

/* Fill buf with the masked bytes of [offset, offset+len) of the file; *out_len
 * is short only at the indexed end of file (0 at or past it).  `fd` is the
 * file the index was built from.  Errors: -EINVAL (negative offset, plan of
 * another index), -EIO (the file is shorter than indexed or its content no
 * longer parses), a pread error.  After an error buf may hold clear bytes:
 * never reply with it. */
int mask_read(const struct mask_index *index, const struct mask_plan *plan, int fd, char *buf,
	      size_t len, off_t offset, size_t *out_len, struct mesh_err *err);

/* The whole masked file written to out_fd (from its current position), in
 * 1 MiB windows: for `meshctl` and tests. */
int mask_file_to_fd(const struct mask_index *index, const struct mask_plan *plan, int in_fd,
		    int out_fd, struct mesh_err *err);

#endif
