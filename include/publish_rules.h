/*
 * publish_rules.h - the checks publish.c runs, one function per concern,
 * so publish.c reads as the sequence it is.  Internal to publishing.
 */
#ifndef PUBLISH_RULES_H
#define PUBLISH_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "contract.h"
#include "identity.h"
#include "descriptor.h"
#include "publish.h"
#include "validate.h"

struct publish_ctx {
	const char *store, *release_dir;
	int dirfd;                    /* the staging directory: the bytes that are installed */
	const struct contract *contract;
	time_t now;
	size_t unique_memory;
	unsigned threads;
	bool has_schema;              /* the release brings its own schema.json */
	char *schema_json;            /* derived schema text (when !has_schema) */
	void *schema;                 /* the release's schema (struct table_schema *) */
	struct validate_report **file_reports;   /* one per data file */
	size_t n_files;
	struct progress *progress;    /* validation's progress line (NULL: none) */
	uint64_t sql_max_bytes;       /* validate_options.sql_max_bytes */
};

/* The domain exists and `caller` owns it or is governance.
 * -ENOENT/-EACCES with the message; on success err->msg may say why. */
int publish_check_domain(const char *store, const struct contract *c, const struct identity *caller,
			 struct mesh_err *err);
/* Mesh-wide and domain governance rules on the contract. */
void publish_check_governance(const char *store, const struct contract *c, int dirfd,
			      struct publish_report *r);
/* Declared inputs (the contract's meshInputs and `more_inputs`, a
 * descriptor's) against the mesh's lineage as `caller` may see it: a
 * warning per problem, an error under requireInputs (fs/discovery/). */
void publish_check_lineage(const char *store, const struct contract *c, char *const *more_inputs,
			   size_t n_more, const struct identity *caller, struct publish_report *r);
/* The release's product.yaml (ODPS v1.x): valid, of the release's domain.
 * Returns the parsed descriptor (caller frees) or NULL when it failed. */
struct descriptor *publish_check_descriptor(int dirfd, const char *release_dir, const struct contract *c,
					    struct publish_report *r);
/* After an install: keep the release's descriptor for the product (when it
 * brings one) and rewrite the served product.yaml (output ports). */
void publish_update_descriptor(const char *store, const struct contract *c, const struct descriptor *d,
			       struct publish_report *r);
/* schema.json given or derived, and compatibility with the previous version. */
void publish_check_schema(struct publish_ctx *pc, struct publish_report *r);
/* One data file against the contract. */
void publish_check_data(struct publish_ctx *pc, const char *file, struct publish_report *r);
/* ODCS relationships: every end exists (here, or in the named product's
 * published contract as `caller` may see it); referential integrity of
 * CSV/Parquet data when the target is in this release
 * (fs/publish_relationships.c).  One "relationships" check when the
 * contract declares any. */
void publish_check_relationships(struct publish_ctx *pc, const struct identity *caller, struct publish_report *r);
/* Results of every rule as the quality.json document (malloc'ed). */
char *publish_quality_json(struct publish_ctx *pc, const struct publish_report *r);
/* Classified columns of a data file (for the manifest); free with publish_free_columns. */
void publish_classified_columns(struct publish_ctx *pc, const char *file,
				const struct manifest_column **cols, size_t *n);
void publish_free_columns(struct manifest_column *cols, size_t n);
/* After a successful install: update the catalog index. */
void publish_after_install(struct publish_ctx *pc, const struct manifest *m);
void publish_ctx_release(struct publish_ctx *pc);

#endif
