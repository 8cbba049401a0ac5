/*
 * adoption.h - who reads a product, in the shape discovery needs: the
 * distinct consumers of a product over the last days (for lineage's
 * downstream by usage, show and product cards) and the consumer count of
 * every product (the tie-breaker of search).  Built on usage_report.h.
 *
 * Names of consumers are for the product's owners and governance; callers
 * decide whom to show them to (visibility_is_owner).  Not thread-safe
 * concerns: each call opens its own connections.
 */
#ifndef ADOPTION_H
#define ADOPTION_H

#include <stddef.h>
#include <stdint.h>

#include "mesh_err.h"

struct adoption_consumer {
	char *user;
	char *programs;          /* "duckdb, python3" */
	uint64_t reads;
	char *last_read;         /* RFC 3339, or "" */
};

/* Distinct users who read domain/product (any version) in the last `days`
 * days, most reads first.  A store without usage data gives none. */
int adoption_consumers(const char *store, const char *domain, const char *product, unsigned days,
		       struct adoption_consumer **out, size_t *n, struct mesh_err *err);
void adoption_consumers_free(struct adoption_consumer *c, size_t n);

struct adoption_count {
	char *domain, *product;
	uint64_t consumers, reads;
};

/* Consumers and reads of every product read in the last `days` days. */
int adoption_counts(const char *store, unsigned days, struct adoption_count **out, size_t *n,
		    struct mesh_err *err);
/* The same from the usage under state root `state_dir` (state_dir.h; NULL:
 * the default), as `meshctl --state-dir` names it. */
int adoption_counts_in(const char *store, const char *state_dir, unsigned days, struct adoption_count **out,
		       size_t *n, struct mesh_err *err);
void adoption_counts_free(struct adoption_count *c, size_t n);

struct adoption_read {
	char *domain, *product;
	uint64_t reads;
	char *last_read;         /* RFC 3339, or "" */
};

/* The products `user` read (allow or mask) in [since_ns, until_ns), by
 * this host and every shipped segment.  For observed lineage hints. */
int adoption_reads_by(const char *store, const char *user, int64_t since_ns, int64_t until_ns,
		      struct adoption_read **out, size_t *n, struct mesh_err *err);
void adoption_reads_free(struct adoption_read *r, size_t n);

/* Reads of domain/product per day over the last `days` days (out[0] the
 * oldest day, out[days - 1] today; `out` has room for `days`). */
int adoption_daily(const char *store, const char *domain, const char *product, unsigned days, uint64_t *out,
		   struct mesh_err *err);

#endif
