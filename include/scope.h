/*
 * scope.h - what one caller may see of the mesh's listings: the same rule
 * the mount applies, for the command line, the search, the catalog page
 * and the agent interface.
 *
 *   - restricted products (and restricted releases) are visible only to
 *     callers the policy lets read them (owners and governance always);
 *   - entries about a domain (grants, requests, usage) are visible to the
 *     domain's owners and to governance;
 *   - entries about the caller (their own requests, grants naming them,
 *     their own reads) are visible to the caller.
 *
 * A scope is built once per command from the store's policy files and is
 * immutable after scope_open() except for its per-domain owner cache; one
 * thread uses it.  A policy that does not load makes every restricted
 * product invisible and the caller an owner of nothing (fail closed).
 */
#ifndef SCOPE_H
#define SCOPE_H

#include <stdbool.h>

#include "catalog.h"
#include "identity.h"
#include "mesh_err.h"

struct scope;

int scope_open(const char *store, const struct identity *who, struct scope **out, struct mesh_err *err);
void scope_close(struct scope *s);

/* Root, or a member of mesh.yaml's governance group. */
bool scope_governance(const struct scope *s);
/* An owner of `domain`, or governance. */
bool scope_administers(struct scope *s, const char *domain);
/* May the caller see this product or release node (list, search...)?
 * Nodes above products are always visible. */
bool scope_may_discover(struct scope *s, const struct cat_node *n);
/* The same by name, for hits that come from the index: `restricted` is
 * what the index knows (a release's contract says meshRestricted); the
 * domain's restricted list is added here (an unreadable domain.yaml
 * restricts every product of the domain). */
bool scope_may_discover_product(struct scope *s, const char *domain, const char *product, bool restricted);
/* The same for one release of such a product (`product_restricted`: what
 * the index knows of the product: any release restricted). */
bool scope_may_discover_release(struct scope *s, const char *domain, const char *product, const char *version,
				bool product_restricted);
/* ",d1,d2," for the domains the caller administers (governance: NULL, all).
 * Owned by the scope. */
const char *scope_domain_list(struct scope *s);

#endif
