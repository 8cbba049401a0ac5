/*
 * lineage_hints.h - observed lineage: hints, from usage, that a product
 * may be built from another one nobody declared.  A hint A -> B is a user
 * who read data of A in the `window` before they published a version of
 * B (a job that reads its inputs and publishes its output).  Hints are
 * guesses, never edges of the declared graph (lineage.h): `meshctl
 * lineage --hints` shows them apart and marked, and only when asked.
 *
 * Only hints between two products the caller may discover (both ends are
 * asked of `visible`) are given; who read and published is for callers
 * the `names` callback clears (owners of both domains, governance), the
 * others get the hint without the user.
 *
 * Not here: reading usage (adoption.h), the declared graph (lineage.h).
 * Not thread-safe concerns: each call opens its own connections.
 */
#ifndef LINEAGE_HINTS_H
#define LINEAGE_HINTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog.h"
#include "lineage.h"
#include "mesh_err.h"

#define LINEAGE_HINT_WINDOW_DEFAULT (3600)   /* seconds: read within an hour before a publish */

struct lineage_hint {
	char *from_domain, *from_product;      /* read */
	char *to_domain, *to_product, *to_version;   /* then published */
	char *user;                            /* NULL unless the caller may see names */
	char *last_read, *published_at;        /* RFC 3339 */
	int64_t lead_seconds;                  /* from the last read to the publish */
	bool declared;                         /* B declares A too (the hint agrees) */
};

typedef bool (*lineage_names_fn)(void *ctx, const char *domain);

/* Hints with domain/product at either end, over versions published in the
 * last `days` days: upstream (someone read A before publishing it) and
 * downstream (someone who read it published B).  `g` (may be NULL) marks
 * hints that agree with a declared input.  *out malloc'ed (free with
 * lineage_hints_free); unreadable usage is an error. */
int lineage_hints_find(const char *store, const struct catalog *cat, const struct lineage *g,
		       const char *domain, const char *product, int64_t window_seconds, unsigned days,
		       lineage_visible_fn visible, lineage_names_fn names, void *ctx,
		       struct lineage_hint **out, size_t *n, struct mesh_err *err);
void lineage_hints_free(struct lineage_hint *h, size_t n);

#endif
