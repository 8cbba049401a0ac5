/*
 * validate.h - checking one data file against its contract, in one
 * streaming pass: columns (set and order), types, required, unique and
 * primary keys (exact, in bounded memory), and the contract's quality rules
 * (not-null, unique, min/max, allowed values, pattern, row count,
 * freshness, ODCS logicalTypeOptions and library metrics).  CSV (RFC 4180),
 * JSON Lines and Parquet (parquet.h: schema and statistics from the footer,
 * values from decoded pages; rules it cannot run are reported as not
 * checked); other formats are opaque: accepted with a checksum and
 * reported as not checked.
 *
 * Not here: reading contracts (contract.h), deciding what a failed rule
 * means for a publish (publish.c).
 */
#ifndef VALIDATE_H
#define VALIDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "contract.h"
#include "mesh_err.h"

#define VALIDATE_MAX_EXAMPLES 20

struct validate_options {
	time_t now;                /* for freshness (0: time(NULL)) */
	size_t unique_memory;      /* bytes for unique tracking before spilling (0: 24 MiB) */
	const char *tmpdir;        /* spill files (NULL: $TMPDIR or /var/tmp) */
	unsigned threads;          /* CSV: threads reading chunks of the file (0: the online CPUs,
				      at most VALIDATE_MAX_THREADS); the report is the same for any count */
	size_t chunk_bytes;        /* CSV: chunk size (0: the data split 4 ways per thread, at least
				      4 MiB a chunk); small values are for tests */
	bool stream;               /* CSV: read the fd in blocks, one thread, no mapping (tests) */
	struct progress *progress; /* bytes read are counted here (progress.h; NULL: not) */
	uint64_t sql_max_bytes;    /* SQL rules run on files up to this size (sqlrule.h);
				      0: never (listed as not checked) */
};

#define VALIDATE_MAX_THREADS 16

struct validate_failure {
	uint64_t line, row;
	char *column;              /* NULL for row-level failures */
	char *value;               /* printable, truncated to 80 bytes; NULL if none */
	char *message;
};

struct validate_rule_result {
	char *id;                  /* "type:amount", "required:id", "pattern:email", "columns", ... */
	char *kind;                /* columns|type|required|unique|primary_key|not_null|min|max|
				      allowed_values|pattern|row_count|freshness|unsupported|format|
				      min_length|max_length|missing */
	char *column;              /* or NULL */
	bool required;             /* error (true) or warning */
	bool checked;              /* false: meshfs cannot check this rule */
	bool passed;
	uint64_t failures;
	struct validate_failure examples[VALIDATE_MAX_EXAMPLES];
	size_t n_examples;
	char *note;                /* e.g. "max 2026-11-20T10:00:00Z, 4 days old" */
};

struct validate_report {
	char *file;
	char *format;              /* csv | jsonl | parquet | opaque */
	bool checked;              /* content checked (false for opaque formats) */
	uint64_t rows, bytes;
	struct validate_rule_result *rules;
	size_t n_rules;
};

/* Validate dirfd/file against `obj` (and the contract's rules for it).
 * Returns 0 when the file was read to the end - see the report for the
 * verdict - or a negative errno when it could not be read at all (err). */
int validate_file(const struct contract *c, const struct contract_object *obj, int dirfd,
		  const char *file, const struct validate_options *opts,
		  struct validate_report **out, struct mesh_err *err);
void validate_report_free(struct validate_report *r);
/* True if a required rule failed. */
bool validate_report_failed(const struct validate_report *r);
/* Human text: one line per failed rule with its first examples (caller frees). */
char *validate_report_text(const struct validate_report *r, bool failures_only);
/* The report as a JSON object (jansson json_t *, caller decrefs). */
void *validate_report_json(const struct validate_report *r);

#endif
