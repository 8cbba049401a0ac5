/*
 * visibility.h - what a caller may discover, outside the mount: the same
 * rule the daemon applies (daemon_may_discover): a product that is not
 * restricted is visible to everyone; a restricted one only to callers whose
 * read decision is not a deny (owners, governance, grants).  Commands that
 * list, search, describe or draw products (lineage, show, search, catalog,
 * MCP) ask here with the caller's identity (ctx->caller), never getuid().
 *
 * Fails closed: a policy that does not load hides every restricted product.
 * A visibility is immutable once open; it may be shared by threads.
 */
#ifndef VISIBILITY_H
#define VISIBILITY_H

#include <stdbool.h>

#include "catalog.h"
#include "identity.h"
#include "mesh_err.h"

struct policy;

struct visibility;

/* For `who` over the products of `cat` (referenced until _close).  Never
 * fails for a bad policy (that hides restricted products); -errno only for
 * an unreadable store. */
int visibility_open(const char *store, struct catalog *cat, const struct identity *who,
		    struct visibility **out, struct mesh_err *err);
void visibility_close(struct visibility *v);

/* Without a catalog, for callers that already know from the search index
 * whether a product's releases mark it restricted (index_hit.restricted):
 * the domains' names are read at open, each domain's restricted list (a
 * domain.yaml that does not load restricts all its products) and the
 * policy when first needed, so a search over 100,000 products never scans
 * the store and reads the files of the domains it shows only.  Such a visibility answers visibility_marked,
 * visibility_is_owner and visibility_policy only. */
int visibility_open_marked(const char *store, const struct identity *who, struct visibility **out,
			   struct mesh_err *err);
/* May the caller discover domain/product, whose releases say `marked`
 * (meshRestricted) or not?  `retired`: the index's hit is a retired
 * version, so the product is in the mount only if a version of it is not
 * retired (its directory and lifecycle records are read). */
bool visibility_marked(const struct visibility *v, const char *domain, const char *product, bool marked,
		       bool retired);

/* May the caller discover domain/product (false when it is not a product)? */
bool visibility_product(const struct visibility *v, const char *domain, const char *product);
/* May the caller discover catalog node n (anything at or above a product is
 * asked about its product; the root and domains are visible). */
bool visibility_node(const struct visibility *v, const struct cat_node *n);
/* The shape of lineage_visible_fn: ctx is a struct visibility *. */
bool visibility_lineage_cb(void *ctx, const char *domain, const char *product);
/* Is the caller an owner of `domain` or governance (who may see who reads)? */
bool visibility_is_owner(const struct visibility *v, const char *domain);
/* The policy snapshot behind the answers (NULL: it did not load, and
 * every read decision is a deny); valid until _close. */
const struct policy *visibility_policy(const struct visibility *v);
/* The caller, as given. */
const struct identity *visibility_caller(const struct visibility *v);

#endif
