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

#include "changelog.h"
#include "index.h"
#include "mesh_util.h"
#include "store.h"

/* a first position less the margin still covers what a settling index reads again */
_Static_assert(CHANGELOG_MARGIN_SECONDS > INDEX_SETTLE_SECONDS, "changelog margin must exceed the settle time");

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

void snapshot_memory_clear(struct snapshot_memory *m)
{
	if (!m)
		return;
	free(m->cursor);
	m->cursor = NULL;
}

static int cmp_key(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The new snapshot: `previous`'s products as they were, but those `log`
 * names, read again from the index (one lookup each). */
static int changed_only(const char *db, const struct catalog *previous, struct changelog_read *log,
			struct add_ctx *a, struct mesh_err *err)
{
	if (log->n_keys)
		qsort(log->keys, log->n_keys, sizeof *log->keys, cmp_key);
	const struct cat_node *root = catalog_root(previous);
	char key[2 * MESH_NAME_MAX + 2];
	for (uint32_t d = 0; d < root->n_children; d++)
		for (uint32_t p = 0; p < root->children[d]->n_children; p++) {
			const struct cat_node *prod = root->children[d]->children[p];
			snprintf(key, sizeof key, "%s/%s", prod->domain, prod->name);
			const char *k = key;
			if (!log->n_keys || !bsearch(&k, log->keys, log->n_keys, sizeof *log->keys, cmp_key))
				catalog_builder_keep(a->builder, prod);
		}
	for (size_t i = 0; i < log->n_keys; i++) {
		char *slash = strchr(log->keys[i], '/');
		if (!slash)
			continue;
		*slash = '\0';
		int rc = index_products(db, log->keys[i], slash + 1, add_product, a, err);
		*slash = '/';
		if (rc)
			return rc;
	}
	return 0;
}

/* The snapshot from the index, or non-zero with res->reason set. */
static int from_index(const char *store, const char *state_dir, const struct catalog *previous,
		      struct snapshot_memory *mem, struct catalog **out, struct snapshot_result *res)
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
	/* what changed since the snapshot was current, read before the index
	 * refresh reads the log (an entry written meanwhile is read again) */
	struct changelog_read log = {0};
	if (changelog_read_since(store, mem ? mem->cursor : NULL, &log, NULL))
		log.complete = false;
	struct index_refresh_stats st;
	int rc = index_refresh_existing(store, res->index_path, &st, &e);
	if (rc == -ENOENT) {
		snprintf(res->reason, sizeof res->reason, "no index at %s yet (meshctl reindex builds it)",
			 res->index_path);
		changelog_read_free(&log);
		return -1;
	}
	if (rc) {
		snprintf(res->reason, sizeof res->reason, "the index cannot be refreshed (%s)%s", e.msg,
			 rc == -EPROTO ? ": meshctl reindex rebuilds it" : "");
		changelog_read_free(&log);
		return -1;
	}
	struct add_ctx a = {0};
	mesh_err_clear(&e);
	if (catalog_builder_new(store, &a.builder, &e)) {
		snprintf(res->reason, sizeof res->reason, "%s", e.msg);
		changelog_read_free(&log);
		return -1;
	}
	/* only what the log names, when it can say and the refresh did not
	 * have to look at every product (it may have found what nobody logged) */
	res->incremental = previous && catalog_is_lazy(previous) && mem && mem->cursor && log.complete &&
			   (st.incremental || st.up_to_date) && log.n_keys <= SNAPSHOT_INCREMENTAL_MAX;
	if (res->incremental)
		rc = changed_only(res->index_path, previous, &log, &a, &e);
	else
		rc = index_products(res->index_path, NULL, NULL, add_product, &a, &e);
	free(a.releases);
	if (rc) {
		catalog_builder_free(a.builder);
		changelog_read_free(&log);
		snprintf(res->reason, sizeof res->reason, "the index cannot be read (%s)", e.msg);
		return -1;
	}
	*out = catalog_builder_finish(a.builder, gen);
	res->products = a.products;
	res->settled = st.up_to_date != 0;
	/* The position moves once the index has settled at it (index.h: a
	 * release a shared filesystem lists late is read by a later refresh,
	 * and its product is read again here until then).  A first position
	 * before that is the log's newest entries less its margin, which is
	 * longer than the settle time (changelog_cursor_merge). */
	if (mem && log.cursor && res->settled) {
		free(mem->cursor);
		mem->cursor = log.cursor;
		log.cursor = NULL;
	} else if (mem && log.cursor && !mem->cursor) {
		mem->cursor = changelog_cursor_merge(NULL, log.cursor);
	}
	changelog_read_free(&log);
	return 0;
}

int snapshot_build(const char *store, const char *state_dir, const struct catalog *previous,
		   struct snapshot_memory *mem, struct catalog **out, struct snapshot_result *res,
		   struct mesh_err *err)
{
	memset(res, 0, sizeof *res);
	*out = NULL;
	if (from_index(store, state_dir, previous, mem, out, res) == 0) {
		res->from_index = true;
		return 0;
	}
	snapshot_memory_clear(mem);     /* a walk: the next snapshot from the index reads it all */
	res->settled = true;
	return catalog_scan(store, previous && !catalog_is_lazy(previous) ? previous : NULL, out, err);
}
