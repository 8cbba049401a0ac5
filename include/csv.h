/*
 * csv.h - a streaming RFC 4180 reader: quoted fields with embedded commas,
 * quotes ("") and newlines, LF or CRLF line ends, a UTF-8 BOM skipped,
 * UTF-8 checked.  Reads an fd in large blocks and hands out one record at
 * a time without a malloc per field.
 *
 * Not thread-safe per reader; one reader per thread.
 */
#ifndef CSV_H
#define CSV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mesh_err.h"

#define CSV_MAX_RECORD (16u << 20)   /* a longer record is an error, not unbounded memory */

struct csv_field {
	const char *ptr;        /* unescaped content, valid until the next csv_next() */
	size_t len;
	bool quoted;
	bool escaped;           /* internal: doubled quotes not yet unescaped */
};

struct csv_record {
	const struct csv_field *fields;
	size_t n;
	uint64_t line;          /* 1-based line where the record starts */
	uint64_t offset;        /* byte offset where the record starts */
	uint64_t row;           /* 1-based record number (the header is row 1) */
};

struct csv_reader;

/* Read from fd (not closed by the reader); `name` is used in messages.
 * block: read size (0: 1 MiB). */
struct csv_reader *csv_reader_fd(int fd, const char *name, size_t block);
/* Read from memory (not copied: `data` must outlive the reader). */
struct csv_reader *csv_reader_mem(const char *data, size_t len, const char *name);
/* Read the records that start in [start, stop) of data[0, len) (a file
 * mapped in memory, never written; it must outlive the reader).  A record
 * that starts before `stop` is read to its end, past `stop` if need be;
 * one longer than CSV_MAX_RECORD is an error.  `line` is the line number
 * of the record at `start`, `row` the record number before it.  A byte
 * order mark is skipped only when start is 0.  Any number of span readers
 * may read the same memory at once. */
struct csv_reader *csv_reader_span(const char *data, size_t len, const char *name, uint64_t start,
				   uint64_t stop, uint64_t line, uint64_t row);
/* Where the next record starts (absolute offset for a span), and its line. */
uint64_t csv_reader_pos(const struct csv_reader *r);
uint64_t csv_reader_line(const struct csv_reader *r);
void csv_reader_free(struct csv_reader *r);

/* 1: a record; 0: end of input; <0: malformed input or I/O error, with
 * err naming name:line:column (the reader cannot go on after an error). */
int csv_next(struct csv_reader *r, struct csv_record *rec, struct mesh_err *err);

struct progress;
/* Count every block read on `p` (progress.h; NULL: none). */
void csv_reader_set_progress(struct csv_reader *r, struct progress *p);

/* Bytes consumed so far. */
uint64_t csv_bytes(const struct csv_reader *r);

/* True if [s, s+len) is valid UTF-8; *bad_at is the offset of the first
 * invalid byte otherwise. */
bool utf8_valid(const unsigned char *s, size_t len, size_t *bad_at);

#endif
