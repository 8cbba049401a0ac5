/*
 * view_build.h - the streaming transform that turns a clear CSV or JSON
 * Lines file into a masked reader's view, in one pass.
 *
 * Masked values become typed missing values or what the column's mask
 * function makes of them (view_mask.h); every other byte is copied, so the
 * unmasked columns of a view read exactly as the clear file's.
 *
 *   CSV (RFC 4180): the header row is copied; in a masked column a field
 *     becomes its function's result (null: an empty field; strings are
 *     quoted when they need it).  Every column of a masked name is masked.
 *     A plan column the header lacks is -ENOENT (the manifest and the file
 *     disagree: the caller denies).
 *   JSON Lines: a masked property at any depth ("customer.email"; arrays
 *     of objects are transparent, so "items.sku" masks the sku of every
 *     item) becomes null or its function's result; a masked object becomes
 *     null ("***" under redact); a masked array has each element masked.
 *     Blank lines are copied.
 *
 * Fail closed: input whose structure is ambiguous is refused with -EINVAL
 * (err: "line L: what"): CSV with a quote inside an unquoted field, text
 * after a closing quote, a CR not followed by LF, an unterminated quote, a
 * record with more fields than the header; JSON Lines with a line that is
 * not valid JSON, nested deeper than VIEW_JSON_DEPTH_MAX, or longer than
 * VIEW_LINE_MAX.  A CSV field longer than VIEW_LINE_MAX is refused too.
 * Nothing is served from a failed build (the caller removes the output).
 *
 * Parquet: see view_parquet.h (view_build hands it over).

 *
 * CSV speed: a data line that ends inside the read buffer and holds no
 * quote or CR is split with memchr and its unmasked runs copied whole;
 * every other line goes byte by byte through the state machine.  The
 * input is hashed on a second thread (view_hash.h) while it is
 * transformed.
 *
 * Memory: two 1 MiB read buffers (view_hash.h), a 1 MiB write buffer,
 * and the longest field or JSON line.  Thread-safe: no shared state.
 */
#ifndef VIEW_BUILD_H
#define VIEW_BUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mesh_err.h"
#include "mesh_util.h"
#include "view_mask.h"

#define VIEW_JSON_DEPTH_MAX 64
#define VIEW_LINE_MAX (64u << 20)

enum view_format { VIEW_CSV, VIEW_JSONL, VIEW_PARQUET };

/* ".csv" is CSV; ".jsonl", ".ndjson", ".json" are JSON Lines; ".parquet"
 * is Parquet (include/view_parquet.h).  -ENOTSUP for any other name (the
 * caller fails closed). */
int view_format_for_name(const char *name, enum view_format *out);

/* Adapts a plan made of the rules' functions to what a view of `format`
 * can do, and re-seals it: a Parquet view leaves masked columns out, so
 * null and redact become omit there; hash, last4, year and truncate cannot
 * be had by leaving a column out: -ENOTSUP with `why` naming the column and
 * function (the caller denies the file).  CSV and JSON Lines: unchanged. */
int view_plan_for_format(struct view_plan *plan, enum view_format format, char *why, size_t why_len);

struct view_build_result {
	uint64_t in_bytes, out_bytes;
	char in_sha256[65];        /* of the bytes read: compare with the manifest */
	char out_sha256[65];       /* of the view */
};

/* Read in_fd from offset 0 to its end (pread) and write the view to out_fd
 * (write, from its current position).  Errors: -EINVAL (refused content),
 * -ENOENT (CSV header lacks a plan column), a read or write error such as
 * -ENOSPC.  `secret` is VIEW_SECRET_LEN bytes (hash). */
int view_build(int in_fd, int out_fd, enum view_format format, const struct view_plan *plan,
	       const unsigned char *secret, struct view_build_result *res, struct mesh_err *err);

/* Tests and fuzzing only (call before any build; not thread-safe): off,
 * every CSV byte goes through the state machine instead of the per-line
 * fast path, which must give the same bytes and errors. */
void view_build_csv_fast_path(bool on);

/* The same over memory, appending the view to `out` (tests, fuzzing). */
int view_build_buffer(const char *data, size_t len, enum view_format format,
		      const struct view_plan *plan, const unsigned char *secret, struct strbuf *out,
		      struct mesh_err *err);

#endif
