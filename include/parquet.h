/*
 * parquet.h - reading Apache Parquet files: the footer (schema, row count,
 * column statistics) and the values of flat columns.
 *
 * The footer and page headers are Thrift compact-protocol structs, read
 * with libthrift-c-glib from our IDL (fs/formats/parquet_footer.thrift);
 * the generated types stay inside fs/formats/parquet.c.  Values are decoded
 * for flat columns (required or optional, not repeated, not nested) in the
 * PLAIN and dictionary encodings (PLAIN_DICTIONARY, RLE_DICTIONARY; RLE for
 * booleans), data pages v1 and v2, uncompressed or compressed with Snappy,
 * gzip or Zstandard.  Anything else (DELTA_* and BYTE_STREAM_SPLIT
 * encodings, LZ4, Brotli, LZO, nested columns, encrypted files) is
 * refused with -ENOTSUP and a message saying what, so callers can report
 * the rules they could not run.
 *
 * Values are handed out as text in the form meshfs's CSV checks expect:
 * integers in decimal, DATE as YYYY-MM-DD, TIMESTAMP and INT96 as RFC 3339
 * UTC, booleans true/false, DECIMAL with its scale, UUID in 8-4-4-4-12 form,
 * other fixed-length binary in hex, strings as stored.
 *
 * It also rewrites a footer for a copy of the file without some columns
 * (parquet_project_footer; the copying is fs/views/view_parquet.c's).
 *
 * Not here: what a contract requires of the file (validate.c).
 *
 * Thread-safety: a parquet_file and its cursors belong to one thread.
 * Input is untrusted: every offset and length is checked against the file
 * size and PARQUET_MAX_* limits; errors are -EINVAL (corrupt), -ENOTSUP
 * (valid but not supported) or an I/O errno, with `err` naming the file.
 */
#ifndef PARQUET_H
#define PARQUET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "contract.h"
#include "mesh_err.h"
#include "mesh_util.h"

#define PARQUET_MAX_FOOTER (64u << 20)   /* bytes of FileMetaData */
#define PARQUET_MAX_PAGE   (256u << 20)  /* bytes of one page, compressed or not */
#define PARQUET_MAX_COLUMNS 10000

enum parquet_physical {
	PARQUET_BOOLEAN = 0,
	PARQUET_INT32,
	PARQUET_INT64,
	PARQUET_INT96,
	PARQUET_FLOAT,
	PARQUET_DOUBLE,
	PARQUET_BYTE_ARRAY,
	PARQUET_FIXED_LEN_BYTE_ARRAY,
};

/* The annotation that decides how a value is shown. */
enum parquet_annotation {
	PARQUET_ANN_NONE = 0,
	PARQUET_ANN_STRING,        /* STRING, UTF8, ENUM, JSON */
	PARQUET_ANN_DATE,
	PARQUET_ANN_TIME,
	PARQUET_ANN_TIMESTAMP,
	PARQUET_ANN_DECIMAL,
	PARQUET_ANN_INT,           /* INT(bits, signed) */
	PARQUET_ANN_UUID,
	PARQUET_ANN_OTHER,         /* known to the format, not to meshfs */
};

struct parquet_column {
	char *name;                /* leaf name ("a.b" for nested paths) */
	enum parquet_physical physical;
	enum parquet_annotation annotation;
	int type_length;           /* FIXED_LEN_BYTE_ARRAY */
	int time_unit;             /* 1 ms, 2 us, 3 ns (TIME, TIMESTAMP) */
	int scale, precision;      /* DECIMAL */
	bool is_signed;            /* INT annotation (true without one) */
	bool optional;             /* repetition OPTIONAL: may hold nulls */
	bool flat;                 /* top-level, not repeated: values decodable */
	enum logical_type logical; /* meshfs/ODCS type the column holds */
	char type_text[64];        /* "INT64 TIMESTAMP(us)" for messages */
	/* statistics over all row groups; has_* false when any lacks them */
	bool has_null_count;
	int64_t null_count;
	bool has_min_max;          /* exact enough to judge bounds (numeric, dates, times) */
	char *min_text, *max_text; /* as text (see above) */
	/* why values cannot be decoded (NULL when they can) */
	char *unsupported;
};

struct parquet_file;

/* Read and check the footer of the file open on fd (which the caller keeps
 * open and closes after parquet_close).  `name` is used in messages.
 * Checks: PAR1 at both ends, footer length inside the file, the footer
 * parses, row groups' row counts add up to the file's, every column chunk
 * lies inside the file. */
int parquet_open(int fd, const char *name, struct parquet_file **out, struct mesh_err *err);
void parquet_close(struct parquet_file *pf);

int64_t parquet_num_rows(const struct parquet_file *pf);
size_t parquet_num_row_groups(const struct parquet_file *pf);
size_t parquet_num_columns(const struct parquet_file *pf);
const struct parquet_column *parquet_column_at(const struct parquet_file *pf, size_t i);
uint64_t parquet_file_size(const struct parquet_file *pf);
/* The writer's name, or NULL. */
const char *parquet_created_by(const struct parquet_file *pf);

/* A reader of one column's values across all row groups.  Fails with
 * -ENOTSUP (and the reason) when parquet_column_at(i)->unsupported. */
struct parquet_cursor;
int parquet_cursor_open(struct parquet_file *pf, size_t column, struct parquet_cursor **out,
			struct mesh_err *err);
/* Next value: 1 with *text and *len (valid until the next call; not
 * NUL-terminated) or *is_null, 0 at the end, negative on a corrupt or
 * unsupported page (err). */
int parquet_cursor_next(struct parquet_cursor *cur, const char **text, size_t *len, bool *is_null,
			struct mesh_err *err);
/* Bytes of pages read so far (compressed, as in the file). */
uint64_t parquet_cursor_bytes(const struct parquet_cursor *cur);
void parquet_cursor_free(struct parquet_cursor *cur);

/* ---- rewriting: the footer of a file without some columns (masked views) ---- */

/* Where column chunk (row group rg, leaf col) lies: its dictionary page if
 * any, then its data pages (parquet_open checked the range lies inside the
 * file's data).  rg < parquet_num_row_groups, col < parquet_num_columns. */
void parquet_chunk_range(const struct parquet_file *pf, size_t rg, size_t col, uint64_t *start,
			 uint64_t *len);

/* Appends to `out` the FileMetaData (Thrift compact bytes, without the
 * length and magic that follow it) of a file holding only the leaves with
 * keep[leaf] (parquet_num_columns entries), the kept chunk (rg, leaf) copied
 * unchanged to new_start[rg * parquet_num_columns + leaf].  The schema loses
 * the other leaves, and every group left without a leaf; page offsets are
 * rebased; index pages, page indexes and bloom filters are left out (fields
 * this IDL does not read are not written), and so are the ARROW:schema and
 * pandas key-value entries once a column is left out (they name it).
 * -ENOTSUP when no leaf is kept, -EINVAL on a footer that no longer parses
 * as it did at parquet_open. */
int parquet_project_footer(const struct parquet_file *pf, const bool *keep, const uint64_t *new_start,
			   struct strbuf *out, struct mesh_err *err);

#endif
