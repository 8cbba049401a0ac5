/*
 * snapshot_source.c - the daemon's snapshot from this host's index, or
 * from a walk of the store when the index cannot vouch for it (contract in
 * include/snapshot.h).
 *
 * Not here: loading a product's releases (catalog.c), keeping them
 * (snapshot_cache.c), when to rebuild (daemon.c).
 */
#include "snapshot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index.h"
#include "mesh_util.h"
#include "store.h"

struct add_ctx {
	struct catalog_builder *builder;
	struct catalog_release_info *releases;
	size_t cap, products;
};

static int add_product(void *ctx, const struct index_product *p)
{
	struct add_ctx *a = ctx;
	if (p->n_versions > a->cap) {
		a->cap = p->n_versions * 2;
		a->releases = xrealloc(a->releases, a->cap * sizeof *a->releases);
	}
	for (size_t i = 0; i < p->n_versions; i++)
		a->releases[i] = (struct catalog_release_info){
			.version = p->versions[i].version,
			.state = p->versions[i].status && !strcmp(p->versions[i].status, "deprecated") ? LC_DEPRECATED
												: LC_ACTIVE,
			.published_at = p->versions[i].published_at,
			.restricted = p->versions[i].restricted,
		};
	catalog_builder_add(a->builder, p->domain, p->product, a->releases, p->n_versions);
	a->products++;
	return 0;
}

/* The snapshot from the index, or non-zero with res->reason set. */
static int from_index(const char *store, const char *state_dir, struct catalog **out,
		      struct snapshot_result *res)
{
	struct mesh_err e = {0};
	if (index_path_for_store(store, state_dir, res->index_path, sizeof res->index_path, &e)) {
		snprintf(res->reason, sizeof res->reason, "no state directory for the index: %s", e.msg);
		return -1;
	}
	/* the generation before the refresh: a change during it is seen by
	 * the next poll (the snapshot says it is older than the store) */
	char gen[64] = "";
	store_read_generation(store, gen, sizeof gen);
	struct index_refresh_stats st;
	int rc = index_refresh_existing(store, res->index_path, &st, &e);
	if (rc == -ENOENT) {
		snprintf(res->reason, sizeof res->reason, "no index at %s yet (meshctl reindex builds it)",
			 res->index_path);
		return -1;
	}
	if (rc) {
		snprintf(res->reason, sizeof res->reason, "the index cannot be refreshed (%s)%s", e.msg,
			 rc == -EPROTO ? ": meshctl reindex rebuilds it" : "");
		return -1;
	}
	struct add_ctx a = {0};
	mesh_err_clear(&e);
	if (catalog_builder_new(store, &a.builder, &e)) {
		snprintf(res->reason, sizeof res->reason, "%s", e.msg);
		return -1;
	}
	rc = index_products(res->index_path, NULL, NULL, add_product, &a, &e);
	free(a.releases);
	if (rc) {
		catalog_builder_free(a.builder);
		snprintf(res->reason, sizeof res->reason, "the index cannot be read (%s)", e.msg);
		return -1;
	}
	*out = catalog_builder_finish(a.builder, gen);
	res->products = a.products;
	res->settled = st.up_to_date != 0;
	return 0;
}

int snapshot_build(const char *store, const char *state_dir, const struct catalog *previous,
		   struct catalog **out, struct snapshot_result *res, struct mesh_err *err)
{
	memset(res, 0, sizeof *res);
	*out = NULL;
	if (from_index(store, state_dir, out, res) == 0) {
		res->from_index = true;
		return 0;
	}
	res->settled = true;
	return catalog_scan(store, previous && !catalog_is_lazy(previous) ? previous : NULL, out, err);
}
