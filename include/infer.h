/*
 * infer.h - drafting a contract from data (`meshctl init DATAFILE`): per
 * column, the narrowest type that fits every value, nullability,
 * uniqueness, examples, and a proposed classification when the values look
 * like personal data.  Reads a sample (the first rows) or the whole file;
 * for Parquet, types, nullability and the row count come from the footer
 * and a sample of decoded values feeds the rest.
 */
#ifndef INFER_H
#define INFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "contract.h"
#include "mesh_err.h"

#define INFER_SAMPLE_ROWS 10000

struct infer_options {
	bool full;                     /* read every row (default: a sample) */
	size_t sample_rows;            /* 0: INFER_SAMPLE_ROWS */
};

struct infer_column {
	char *name;
	enum logical_type type;
	bool required;                 /* no empty/null value seen */
	bool unique;                   /* all values distinct (in what was read) */
	char *examples[3];
	size_t n_examples;
	unsigned pii;                  /* pii.h detector mask, 0 if none */
	char *pii_reason;              /* "98% of values are email addresses" */
};

struct infer_result {
	char *file;                    /* base name */
	char *format;                  /* csv | jsonl | parquet */
	uint64_t rows;                 /* rows read */
	bool sampled;                  /* stopped before the end */
	struct infer_column *cols;
	size_t n_cols;
};

int infer_file(const char *path, const struct infer_options *opts, struct infer_result **out,
	       struct mesh_err *err);
void infer_result_free(struct infer_result *r);
/* ODCS v3 contract.yaml text with TODO placeholders for what data cannot
 * tell (purpose, owner, support); publish refuses until they are filled.
 * Written with libyaml's emitter (yamlout.h): every name reads back as
 * written.  The id is an RFC 4122 version 5 UUID (libuuid, SHA-1) of
 * "meshfs://DOMAIN/PRODUCT/VERSION" in the URL namespace, so drafting the
 * same release twice gives the same id.  0 and *yaml (free() it), or
 * -EINVAL naming the column whose name is not valid UTF-8. */
int infer_contract_yaml(const struct infer_result *r, const char *domain, const char *product,
			const char *version, char **yaml, struct mesh_err *err);

#endif
