/*
 * product_info.c - one product as discovery describes it (contract in
 * include/product_info.h): reads the catalog, the lifecycle table, the
 * latest release's contract and quality.json, usage and lineage.
 *
 * Not here: who may see it (visibility.c), cards (their own module).
 */
#include "product_info.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adoption.h"
#include "descriptor.h"
#include "governance.h"
#include "mesh_util.h"
#include "store.h"

static void push(char ***list, size_t *n, const char *s)
{
	for (size_t i = 0; i < *n; i++)
		if (!strcmp((*list)[i], s))
			return;
	*list = xrealloc(*list, (*n + 1) * sizeof **list);
	(*list)[(*n)++] = xstrdup(s);
}

static char *opt_dup(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static void human_seconds(int64_t s, char *buf, size_t size)
{
	if (s % 86400 == 0)
		snprintf(buf, size, "%lldd", (long long)(s / 86400));
	else if (s % 3600 == 0)
		snprintf(buf, size, "%lldh", (long long)(s / 3600));
	else if (s % 60 == 0)
		snprintf(buf, size, "%lldm", (long long)(s / 60));
	else
		snprintf(buf, size, "%llds", (long long)s);
}

static void read_quality(struct product_info *p, int root_fd, const struct cat_node *latest)
{
	const struct cat_node *q = latest ? catalog_child(latest, "quality.json") : NULL;
	char *text = NULL;
	size_t len = 0;
	if (!q || !q->backing || mesh_read_file_at(root_fd, q->backing, 16u << 20, &text, &len, NULL))
		return;
	json_t *doc = json_loadb(text, len, 0, NULL);
	free(text);
	json_t *checks = json_object_get(doc, "checks");
	size_t i;
	json_t *c;
	json_array_foreach(checks, i, c) {
		bool passed = json_is_true(json_object_get(c, "passed"));
		const char *sev = json_string_value(json_object_get(c, "severity"));
		p->quality_checks++;
		p->quality_passed += passed;
		p->quality_warnings += !passed && sev && !strcmp(sev, "warning");
	}
	p->has_quality = json_is_array(checks);
	json_decref(doc);
}

static int cmp_version(const void *a, const void *b)
{
	return semver_cmp_str(((const struct product_version_info *)a)->version,
			      ((const struct product_version_info *)b)->version);
}

int product_info_load(const char *store, const struct catalog *cat, const struct visibility *vis,
		      const struct lineage *g, const char *domain, const char *product,
		      struct product_info **out, struct mesh_err *err)
{
	*out = NULL;
	const struct cat_node *d = catalog_child(catalog_root(cat), domain);
	const struct cat_node *pn = d ? catalog_child(d, product) : NULL;
	if (!pn || pn->kind != CAT_PRODUCT || !visibility_node(vis, pn))
		return mesh_errf(err, -ENOENT, "%s/%s: no such product", domain, product);
	int root_fd = open(store, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root_fd < 0)
		return mesh_errf(err, -errno, "%s: %s", store, strerror(errno));
	struct product_info *p = xcalloc(1, sizeof *p);
	p->domain = xstrdup(domain);
	p->product = xstrdup(product);
	p->restricted = pn->restricted;
	const struct cat_node *latest = catalog_latest(pn);
	p->latest = latest ? xstrdup(latest->name) : NULL;
	p->status = xstrdup(latest ? lifecycle_name(latest->state) : "retired");

	/* versions: the catalog's, and retired ones from the lifecycle table */
	char rel[PATH_MAX];
	snprintf(rel, sizeof rel, "domains/%s/%s", domain, product);
	int pfd = openat(root_fd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct lifecycle_table life = {0};
	if (pfd >= 0)
		lifecycle_load_at(pfd, &life, NULL);
	p->versions = xcalloc(pn->n_children + life.n + 1, sizeof *p->versions);
	for (uint32_t i = 0; i < pn->n_children; i++) {
		const struct cat_node *v = pn->children[i];
		if (v->kind != CAT_VERSION)
			continue;
		struct product_version_info *vi = &p->versions[p->n_versions++];
		vi->version = xstrdup(v->name);
		vi->state = v->state;
		vi->latest = v == latest;
		char mpath[PATH_MAX];
		snprintf(mpath, sizeof mpath, "%s/" STORE_MANIFEST, v->name);
		struct manifest *m = NULL;
		if (pfd >= 0)
			manifest_load_at(pfd, mpath, &m, NULL);
		vi->published_at = xstrdup(m && m->published_at ? m->published_at : "");
		vi->contract_id = xstrdup(m && m->contract_id ? m->contract_id : "");
		manifest_free(m);
	}
	for (size_t i = 0; i < life.n; i++) {
		const struct lifecycle_entry *e = &life.entries[i];
		struct product_version_info *vi = NULL;
		for (size_t k = 0; k < p->n_versions; k++)
			if (!strcmp(p->versions[k].version, e->version))
				vi = &p->versions[k];
		if (!vi && e->state == LC_RETIRED) {
			vi = &p->versions[p->n_versions++];
			vi->version = xstrdup(e->version);
			vi->state = LC_RETIRED;
			vi->published_at = xstrdup("");
			vi->contract_id = xstrdup("");
		}
		if (vi) {
			vi->sunset = opt_dup(e->sunset);
			vi->reason = opt_dup(e->reason);
		}
	}
	qsort(p->versions, p->n_versions, sizeof *p->versions, cmp_version);
	lifecycle_table_free(&life);
	struct stat st;
	p->descriptor_shipped = pfd >= 0 && fstatat(pfd, DESCRIPTOR_STORED, &st, AT_SYMLINK_NOFOLLOW) == 0;
	if (pfd >= 0)
		close(pfd);

	/* the latest release's contract */
	const struct cat_node *cf = latest ? catalog_child(latest, "contract.yaml") : NULL;
	char *text = NULL;
	size_t len = 0;
	if (cf && cf->backing && !mesh_read_file_at(root_fd, cf->backing, CONTRACT_MAX_BYTES, &text, &len, NULL))
		contract_parse(text, len, cf->backing, &p->contract, NULL);
	free(text);
	const struct contract *c = p->contract;
	p->title = xstrdup(c && c->name ? c->name : product);
	if (c) {
		p->purpose = opt_dup(c->purpose);
		p->usage = opt_dup(c->usage);
		p->limitations = opt_dup(c->limitations);
		for (size_t i = 0; i < c->n_owners; i++)
			push(&p->owners, &p->n_owners, c->owners[i].subject);
		for (size_t i = 0; i < c->n_support; i++)
			push(&p->support, &p->n_support, c->support_channels[i]);
		for (size_t i = 0; i < c->n_tags; i++)
			push(&p->tags, &p->n_tags, c->tags[i]);
		if (c->freshness_seconds >= 0) {
			char h[32];
			human_seconds(c->freshness_seconds, h, sizeof h);
			struct strbuf sb = STRBUF_INIT;
			strbuf_printf(&sb, "freshness %s", h);
			if (c->freshness_column && *c->freshness_column)
				strbuf_printf(&sb, " (column %s)", c->freshness_column);
			p->sla = strbuf_detach(&sb, NULL);
		}
	}
	struct domain_info *di = NULL;
	if (!gov_load_domain(store, domain, &di, NULL))
		for (size_t i = 0; i < di->n_owners; i++)
			push(&p->owners, &p->n_owners, di->owners[i]);
	gov_domain_free(di);
	read_quality(p, root_fd, latest);
	close(root_fd);

	struct adoption_consumer *cons = NULL;
	size_t nc = 0;
	if (!adoption_consumers(store, domain, product, 30, &cons, &nc, NULL))
		p->consumers = nc;
	adoption_consumers_free(cons, nc);

	struct lineage *own = NULL;
	if (!g && !lineage_load(store, cat, &own, NULL))
		g = own;
	if (g) {
		p->n_inputs = lineage_inputs(g, domain, product, visibility_lineage_cb, (void *)vis, &p->inputs);
		p->n_built = lineage_consumers(g, domain, product, visibility_lineage_cb, (void *)vis,
					       &p->built_from_it);
	}
	lineage_free(own);
	*out = p;
	return 0;
}

static void free_list(char **l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(l[i]);
	free(l);
}

void product_info_free(struct product_info *p)
{
	if (!p)
		return;
	free(p->domain);
	free(p->product);
	free(p->title);
	free(p->purpose);
	free(p->usage);
	free(p->limitations);
	free(p->status);
	free(p->latest);
	free_list(p->owners, p->n_owners);
	free_list(p->support, p->n_support);
	free(p->sla);
	free_list(p->tags, p->n_tags);
	for (size_t i = 0; i < p->n_versions; i++) {
		free(p->versions[i].version);
		free(p->versions[i].published_at);
		free(p->versions[i].contract_id);
		free(p->versions[i].sunset);
		free(p->versions[i].reason);
	}
	free(p->versions);
	free_list(p->inputs, p->n_inputs);
	free_list(p->built_from_it, p->n_built);
	contract_free(p->contract);
	free(p);
}

static void list_line(struct strbuf *sb, const char *label, char **items, size_t n, const char *none)
{
	strbuf_printf(sb, "%-11s", label);
	if (!n)
		strbuf_printf(sb, "%s", none);
	for (size_t i = 0; i < n; i++)
		strbuf_printf(sb, "%s%s", i ? ", " : "", items[i]);
	strbuf_puts(sb, "\n");
}

char *product_info_text(const struct product_info *p)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_printf(&sb, "%s/%s  %s%s\n", p->domain, p->product, p->title, p->restricted ? "  (restricted)" : "");
	if (p->purpose)
		strbuf_printf(&sb, "  %s\n", p->purpose);
	strbuf_printf(&sb, "%-11s%s", "status", p->status);
	if (p->latest)
		strbuf_printf(&sb, " (latest %s)", p->latest);
	strbuf_puts(&sb, "\n");
	list_line(&sb, "owners", p->owners, p->n_owners, "-");
	list_line(&sb, "support", p->support, p->n_support, "-");
	strbuf_printf(&sb, "%-11s%s\n", "SLA", p->sla ? p->sla : "-");
	if (p->n_tags)
		list_line(&sb, "tags", p->tags, p->n_tags, "-");
	if (p->has_quality)
		strbuf_printf(&sb, "%-11s%s: %u checks, %u passed, %u warning(s)\n", "quality", p->latest,
			      p->quality_checks, p->quality_passed, p->quality_warnings);
	else
		strbuf_printf(&sb, "%-11s-\n", "quality");
	strbuf_printf(&sb, "%-11s%llu in the last 30 days\n", "consumers", (unsigned long long)p->consumers);
	list_line(&sb, "inputs", p->inputs, p->n_inputs, "none declared");
	list_line(&sb, "outputs", p->built_from_it, p->n_built, "no product declares it as an input");
	strbuf_printf(&sb, "%-11s%s\n", "descriptor", p->descriptor_shipped ? "product.yaml (published with a release)"
		      : "product.yaml (derived from the contract)");
	strbuf_puts(&sb, "versions\n");
	for (size_t i = 0; i < p->n_versions; i++) {
		const struct product_version_info *v = &p->versions[i];
		strbuf_printf(&sb, "  %-12s %-10s %-24s %s", v->version, lifecycle_name(v->state),
			      *v->published_at ? v->published_at : "-", *v->contract_id ? v->contract_id : "-");
		if (v->latest)
			strbuf_puts(&sb, "  <- latest");
		if (v->sunset)
			strbuf_printf(&sb, "  sunset %s", v->sunset);
		if (v->reason)
			strbuf_printf(&sb, "  (%s)", v->reason);
		strbuf_puts(&sb, "\n");
	}
	return strbuf_detach(&sb, NULL);
}

static json_t *jlist(char **items, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(items[i]));
	return a;
}

static json_t *jopt(const char *s)
{
	return s ? json_string(s) : json_null();
}

char *product_info_json(const struct product_info *p)
{
	json_t *o = json_object();
	json_object_set_new(o, "domain", json_string(p->domain));
	json_object_set_new(o, "product", json_string(p->product));
	json_object_set_new(o, "title", json_string(p->title));
	json_object_set_new(o, "purpose", jopt(p->purpose));
	json_object_set_new(o, "usage", jopt(p->usage));
	json_object_set_new(o, "limitations", jopt(p->limitations));
	json_object_set_new(o, "status", json_string(p->status));
	json_object_set_new(o, "latest", jopt(p->latest));
	json_object_set_new(o, "restricted", json_boolean(p->restricted));
	json_object_set_new(o, "owners", jlist(p->owners, p->n_owners));
	json_object_set_new(o, "support", jlist(p->support, p->n_support));
	json_object_set_new(o, "sla", jopt(p->sla));
	json_object_set_new(o, "tags", jlist(p->tags, p->n_tags));
	json_t *q = json_null();
	if (p->has_quality) {
		q = json_object();
		json_object_set_new(q, "version", jopt(p->latest));
		json_object_set_new(q, "checks", json_integer(p->quality_checks));
		json_object_set_new(q, "passed", json_integer(p->quality_passed));
		json_object_set_new(q, "warnings", json_integer(p->quality_warnings));
	}
	json_object_set_new(o, "quality", q);
	json_object_set_new(o, "consumers30d", json_integer((json_int_t)p->consumers));
	json_object_set_new(o, "inputs", jlist(p->inputs, p->n_inputs));
	json_object_set_new(o, "outputs", jlist(p->built_from_it, p->n_built));
	json_object_set_new(o, "descriptor", json_string(p->descriptor_shipped ? "published" : "derived"));
	json_t *vs = json_array();
	for (size_t i = 0; i < p->n_versions; i++) {
		const struct product_version_info *v = &p->versions[i];
		json_t *jv = json_object();
		json_object_set_new(jv, "version", json_string(v->version));
		json_object_set_new(jv, "status", json_string(lifecycle_name(v->state)));
		json_object_set_new(jv, "publishedAt", *v->published_at ? json_string(v->published_at) : json_null());
		json_object_set_new(jv, "contractId", *v->contract_id ? json_string(v->contract_id) : json_null());
		json_object_set_new(jv, "latest", json_boolean(v->latest));
		json_object_set_new(jv, "sunset", jopt(v->sunset));
		json_object_set_new(jv, "reason", jopt(v->reason));
		json_array_append_new(vs, jv);
	}
	json_object_set_new(o, "versions", vs);
	char *text = mesh_json_text(o);
	json_decref(o);
	return text;
}
