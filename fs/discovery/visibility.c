/*
 * visibility.c - what a caller may discover (contract in
 * include/visibility.h): a catalog, a policy snapshot and an identity.
 *
 * Not here: the read decision itself (policy.c), the daemon's own copy of
 * this rule on its hot path (daemon.c).
 */
#include "visibility.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "governance.h"
#include "mesh_util.h"
#include "policy.h"

struct visibility {
	char *store;
	struct catalog *cat;
	struct policy *policy;      /* NULL: did not load, restricted products hidden */
	struct identity who;
};

int visibility_open(const char *store, struct catalog *cat, const struct identity *who,
		    struct visibility **out, struct mesh_err *err)
{
	(void)err;
	struct visibility *v = xcalloc(1, sizeof *v);
	v->store = xstrdup(store);
	v->cat = catalog_ref(cat);
	v->who = *who;
	char *warnings = NULL;
	if (policy_load(store, &v->policy, &warnings, NULL))
		v->policy = NULL;
	free(warnings);
	*out = v;
	return 0;
}

void visibility_close(struct visibility *v)
{
	if (!v)
		return;
	policy_free(v->policy);
	catalog_unref(v->cat);
	free(v->store);
	free(v);
}

bool visibility_node(const struct visibility *v, const struct cat_node *n)
{
	if (!n)
		return false;
	if (!n->product || !n->restricted)
		return true;
	if (!v->policy)
		return false;
	struct policy_decision dec;
	policy_decide(v->policy, &v->who, n->domain, n->product, NULL, NULL, 0, time(NULL), &dec);
	return dec.result != POLICY_DENY;
}

bool visibility_product(const struct visibility *v, const char *domain, const char *product)
{
	const struct cat_node *d = catalog_child(catalog_root(v->cat), domain);
	const struct cat_node *p = d ? catalog_child(d, product) : NULL;
	return p && p->kind == CAT_PRODUCT && visibility_node(v, p);
}

bool visibility_lineage_cb(void *ctx, const char *domain, const char *product)
{
	return visibility_product(ctx, domain, product);
}

bool visibility_is_owner(const struct visibility *v, const char *domain)
{
	struct mesh_policy *mesh = NULL;
	struct domain_info *d = NULL;
	bool yes = false;
	if (!gov_load_mesh(v->store, &mesh, NULL))
		yes = gov_is_governance(mesh, &v->who);
	if (!yes && !gov_load_domain(v->store, domain, &d, NULL))
		yes = gov_is_owner(d, &v->who);
	gov_mesh_free(mesh);
	gov_domain_free(d);
	return yes;
}

const struct identity *visibility_caller(const struct visibility *v)
{
	return &v->who;
}

const struct policy *visibility_policy(const struct visibility *v)
{
	return v->policy;
}
