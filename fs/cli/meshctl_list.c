/*
 * meshctl_list.c - `meshctl list` from this host's index (index.h): one
 * product at a time, in name order, filtered for the caller (scope.h), so
 * a listing costs a read of the index, not a read of every manifest.  The
 * index is refreshed first (cheap when nothing changed: a read of the
 * store's change counter; after a change: the change log), so a release
 * is listed right after its publish.
 *
 * Not here: listing below a release (files), and listing when the index
 * cannot be brought up to date: meshctl.c lists from a scan of the store
 * then (meshctl_list_from_index returns MESHCTL_LIST_FALLBACK).
 */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "index.h"
#include "meshctl.h"
#include "meshctl_cmds.h"
#include "mesh_util.h"
#include "scope.h"
#include "state_dir.h"
#include "store.h"

struct list_walk {
	struct scope *scope;
	json_t *products;          /* --json: the array, else NULL (text) */
	const char *version;       /* list DOMAIN/PRODUCT/VERSION: that one */
	size_t shown;
	bool found;                /* the named version exists and is visible */
	char *found_version;       /* ... its name ("latest" resolved) */
};

static int cmp_version(const void *a, const void *b)
{
	const struct index_version *x = *(const struct index_version *const *)a;
	const struct index_version *y = *(const struct index_version *const *)b;
	return semver_cmp_str(x->version, y->version);
}

/* The version `latest` points at: catalog_latest()'s rule on the index's rows. */
static const struct index_version *latest_of(const struct index_product *p)
{
	const struct index_version *best[3] = {NULL, NULL, NULL};  /* stable, pre-release, deprecated */
	for (size_t i = 0; i < p->n_versions; i++) {
		const struct index_version *v = &p->versions[i];
		struct semver sv;
		if (semver_parse(v->version, &sv))
			continue;
		int slot = !strcmp(v->status, "deprecated") ? 2 : sv.prerelease[0] ? 1 : 0;
		if (!best[slot] || semver_cmp_str(v->version, best[slot]->version) > 0)
			best[slot] = v;
	}
	return best[0] ? best[0] : best[1] ? best[1] : best[2];
}

static int list_one(void *ctx, const struct index_product *p)
{
	struct list_walk *w = ctx;
	/* a directory without a release is not a product (as in the mount) */
	if (!p->n_versions || !scope_may_discover_product(w->scope, p->domain, p->product, p->restricted))
		return 0;
	const struct index_version *latest = latest_of(p);
	const struct index_version **vs = xcalloc(p->n_versions + 1, sizeof *vs);
	size_t n = 0;
	for (size_t i = 0; i < p->n_versions; i++)
		if (!p->restricted ||
		    scope_may_discover_release(w->scope, p->domain, p->product, p->versions[i].version, true))
			vs[n++] = &p->versions[i];
	if (w->version) {
		const char *want = strcmp(w->version, "latest") ? w->version : latest ? latest->version : "";
		for (size_t i = 0; i < n && !w->found; i++)
			if (!strcmp(vs[i]->version, want)) {
				w->found = true;
				w->found_version = xstrdup(want);
			}
		free(vs);
		return 0;
	}
	qsort(vs, n, sizeof *vs, cmp_version);
	w->shown++;
	json_t *versions = w->products ? json_array() : NULL;
	if (!versions)
		printf("%s/%s\n", p->domain, p->product);
	for (size_t k = 0; k < n; k++) {
		const struct index_version *v = vs[k];
		/* a domain restricts the whole product; the index knows the releases' own flag */
		bool restricted = p->restricted;
		if (versions) {
			json_t *o = json_object();
			json_object_set_new(o, "version", json_string(v->version));
			json_object_set_new(o, "status", json_string(v->status));
			json_object_set_new(o, "published_at", json_string(v->published_at));
			json_object_set_new(o, "latest", json_boolean(v == latest));
			json_object_set_new(o, "restricted", json_boolean(restricted));
			json_array_append_new(versions, o);
			continue;
		}
		printf("  %-10s %-10s %s%s%s\n", v->version, v->status, v->published_at,
		       v == latest ? "  <- latest" : "", restricted ? "  (restricted)" : "");
	}
	if (versions) {
		json_t *o = json_object();
		json_object_set_new(o, "domain", json_string(p->domain));
		json_object_set_new(o, "product", json_string(p->product));
		json_object_set_new(o, "restricted", json_boolean(p->restricted));
		json_object_set_new(o, "versions", versions);
		json_array_append_new(w->products, o);
	}
	free(vs);
	return 0;
}

/* The index's path, brought up to date; -errno when it cannot be. */
static int fresh_index(const struct meshctl_ctx *ctx, char *path, size_t size)
{
	struct mesh_err err = {0};
	char dir[PATH_MAX];
	int rc = state_dir_for_store(ctx->store, ctx->state_dir, true, dir, sizeof dir, &err);
	if (!rc && snprintf(path, size, "%s/" INDEX_DB_NAME, dir) >= (int)size)
		rc = -ENAMETOOLONG;
	if (!rc)
		rc = index_refresh(ctx->store, path, NULL, &err);
	return rc;
}

/* Does the store have this domain (a directory under domains/)? */
static bool domain_exists(const char *store, const char *domain)
{
	char path[PATH_MAX];
	struct stat st;
	snprintf(path, sizeof path, "%s/domains/%s", store, domain);
	return mesh_name_ok(domain) && lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int meshctl_list_from_index(const struct meshctl_ctx *ctx, const char *what)
{
	char domain[MESH_NAME_MAX + 1] = "", product[MESH_NAME_MAX + 1] = "", version[MESH_NAME_MAX + 1] = "";
	size_t parts = 0;
	if (what) {
		/* DOMAIN, DOMAIN/PRODUCT or DOMAIN/PRODUCT/VERSION; deeper paths
		 * (files of a release) are the scan's */
		char *copy = xstrdup(what), *save = NULL;
		char *fields[3] = {domain, product, version};
		for (char *tok = strtok_r(copy, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
			if (parts == 3 || strlen(tok) > MESH_NAME_MAX) {
				free(copy);
				return MESHCTL_LIST_FALLBACK;
			}
			strcpy(fields[parts++], tok);
		}
		free(copy);
		if (!parts)
			return MESHCTL_LIST_FALLBACK;
	}
	char path[PATH_MAX];
	if (fresh_index(ctx, path, sizeof path))
		return MESHCTL_LIST_FALLBACK;
	struct scope *sc = NULL;
	scope_open(ctx->store, &ctx->caller, &sc, NULL);
	struct list_walk w = {.scope = sc, .products = ctx->json ? json_array() : NULL,
			      .version = parts == 3 ? version : NULL};
	struct mesh_err err = {0};
	int rc = index_products(path, parts ? domain : NULL, parts >= 2 ? product : NULL, list_one, &w, &err);
	int status = MESHCTL_OK;
	if (rc) {
		json_decref(w.products);
		scope_close(sc);
		free(w.found_version);
		return MESHCTL_LIST_FALLBACK;
	}
	/* what the caller named must exist for them: a product they may not
	 * discover is "no such" as one that is not there */
	bool missing = (parts == 1 && !domain_exists(ctx->store, domain)) || (parts == 2 && !w.shown) ||
		       (parts == 3 && !w.found);
	if (missing) {
		json_decref(w.products);
		scope_close(sc);
		free(w.found_version);
		meshctl_fail(ctx, "list", "%s: no such domain or product", what);
		return MESHCTL_FAILED;
	}
	if (parts == 3) {
		if (w.products) {
			json_t *o = json_object();
			json_object_set_new(o, "domain", json_string(domain));
			json_object_set_new(o, "product", json_string(product));
			json_object_set_new(o, "version", json_string(w.found_version));
			json_array_append_new(w.products, o);
		} else {
			printf("%s/%s %s\n", domain, product, w.found_version);
		}
	}
	if (w.products) {
		json_t *doc = json_object();
		json_object_set_new(doc, "products", w.products);
		meshctl_json_print(doc);
	}
	free(w.found_version);
	scope_close(sc);
	return status;
}

/* ---- counts for `meshctl status` ---- */

struct count_walk {
	struct scope *scope;
	struct meshctl_counts *c;
};

static int count_one(void *ctx, const struct index_product *p)
{
	struct count_walk *w = ctx;
	w->c->unreadable += p->unreadable;       /* the store's health, not a listing */
	if (!p->n_versions || !scope_may_discover_product(w->scope, p->domain, p->product, p->restricted))
		return 0;
	w->c->products++;
	for (size_t i = 0; i < p->n_versions; i++)
		if (!p->restricted ||
		    scope_may_discover_release(w->scope, p->domain, p->product, p->versions[i].version, true)) {
			w->c->versions++;
			w->c->deprecated += !strcmp(p->versions[i].status, "deprecated");
		}
	return 0;
}

int meshctl_counts_from_index(const struct meshctl_ctx *ctx, struct meshctl_counts *c)
{
	memset(c, 0, sizeof *c);
	char path[PATH_MAX];
	if (fresh_index(ctx, path, sizeof path))
		return MESHCTL_LIST_FALLBACK;
	struct scope *sc = NULL;
	scope_open(ctx->store, &ctx->caller, &sc, NULL);
	struct count_walk w = {.scope = sc, .c = c};
	struct mesh_err err = {0};
	int rc = index_products(path, NULL, NULL, count_one, &w, &err);
	scope_close(sc);
	if (rc)
		return MESHCTL_LIST_FALLBACK;
	char dpath[PATH_MAX];
	snprintf(dpath, sizeof dpath, "%s/domains", ctx->store);
	DIR *d = opendir(dpath);
	struct dirent *de;
	while (d && (de = readdir(d)))
		c->domains += mesh_name_ok(de->d_name) && (de->d_type == DT_DIR || de->d_type == DT_UNKNOWN);
	if (d)
		closedir(d);
	return 0;
}
