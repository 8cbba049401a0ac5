/*
 * lineage_hints.c - observed lineage hints from usage (contract in
 * include/lineage_hints.h): publishes from the releases' manifests, reads
 * from usage (adoption.c), matched by user and time.
 *
 * Not here: printing (meshctl_lineage.c), who may see what (the caller's
 * callbacks, visibility.c).
 */
#include "lineage_hints.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "adoption.h"
#include "mesh_util.h"
#include "store.h"

#define NS ((int64_t)1000000000)

struct publish {
	const struct cat_node *version;
	char *user;
	int64_t at_ns;
	char *at;
};

/* Every visible version published in the last `days` days, with its
 * publisher (from the manifest). */
static size_t publishes(const char *store, const struct catalog *cat, unsigned days, lineage_visible_fn visible,
			void *ctx, struct publish **out)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	int64_t since = ((int64_t)now.tv_sec - (int64_t)days * 86400) * NS;
	size_t n = 0, cap = 0;
	*out = NULL;
	int root = open(store, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	const struct cat_node *r = catalog_root(cat);
	for (uint32_t d = 0; root >= 0 && d < r->n_children; d++)
		for (uint32_t p = 0; p < r->children[d]->n_children; p++) {
			const struct cat_node *pn = r->children[d]->children[p];
			if (pn->kind != CAT_PRODUCT || !visible(ctx, pn->domain, pn->name))
				continue;
			for (uint32_t v = 0; v < pn->n_children; v++) {
				const struct cat_node *vn = pn->children[v];
				int64_t at = (int64_t)vn->mtime.tv_sec * NS + vn->mtime.tv_nsec;
				if (vn->kind != CAT_VERSION || at < since)
					continue;
				char path[PATH_MAX];
				snprintf(path, sizeof path, "domains/%s/%s/%s/" STORE_MANIFEST, pn->domain, pn->name,
					 vn->name);
				struct manifest *m = NULL;
				if (manifest_load_at(root, path, &m, NULL) || !m->publisher_name || !*m->publisher_name) {
					manifest_free(m);
					continue;
				}
				if (n == cap)
					*out = xrealloc(*out, (cap = cap ? cap * 2 : 64) * sizeof **out);
				(*out)[n++] = (struct publish){vn, xstrdup(m->publisher_name),
							       (int64_t)m->published.tv_sec * NS + m->published.tv_nsec,
							       xstrdup(m->published_at ? m->published_at : "")};
				manifest_free(m);
			}
		}
	if (root >= 0)
		close(root);
	return n;
}

static bool declares(const struct lineage *g, const char *domain, const char *product, const char *in_domain,
		     const char *in_product, lineage_visible_fn visible, void *ctx)
{
	if (!g)
		return false;
	char **users = NULL;
	size_t n = lineage_consumers(g, in_domain, in_product, visible, ctx, &users);
	char want[2 * MESH_NAME_MAX + 2];
	snprintf(want, sizeof want, "%s/%s", domain, product);
	bool yes = false;
	for (size_t i = 0; i < n; i++) {
		yes |= !strcmp(users[i], want);
		free(users[i]);
	}
	free(users);
	return yes;
}

static int64_t parse_ns(const char *rfc3339)
{
	time_t t;
	return mesh_time_parse(rfc3339, &t) ? 0 : (int64_t)t * NS;
}

int lineage_hints_find(const char *store, const struct catalog *cat, const struct lineage *g,
		       const char *domain, const char *product, int64_t window_seconds, unsigned days,
		       lineage_visible_fn visible, lineage_names_fn names, void *ctx,
		       struct lineage_hint **out, size_t *n, struct mesh_err *err)
{
	*out = NULL;
	*n = 0;
	if (!visible(ctx, domain, product))
		return mesh_errf(err, -ENOENT, "%s/%s: no such product", domain, product);
	struct publish *pubs = NULL;
	size_t np = publishes(store, cat, days, visible, ctx, &pubs);
	/* downstream needs only publishes by someone who read the product */
	struct adoption_consumer *readers = NULL;
	size_t nr = 0;
	int rc = adoption_consumers(store, domain, product, days + 1, &readers, &nr, err);
	size_t cap = 0;
	for (size_t i = 0; !rc && i < np; i++) {
		const struct cat_node *v = pubs[i].version;
		bool upstream = !strcmp(v->domain, domain) && !strcmp(v->product, product);
		bool reader = false;
		for (size_t k = 0; k < nr && !reader; k++)
			reader = !strcmp(readers[k].user, pubs[i].user);
		if (!upstream && !reader)
			continue;
		struct adoption_read *reads = NULL;
		size_t nreads = 0;
		rc = adoption_reads_by(store, pubs[i].user, pubs[i].at_ns - window_seconds * NS, pubs[i].at_ns + 1,
				       &reads, &nreads, err);
		for (size_t k = 0; !rc && k < nreads; k++) {
			const struct adoption_read *a = &reads[k];
			if (!strcmp(a->domain, v->domain) && !strcmp(a->product, v->product))
				continue;     /* read itself: not lineage */
			if (!upstream && (strcmp(a->domain, domain) || strcmp(a->product, product)))
				continue;     /* downstream: only reads of this product */
			if (!visible(ctx, a->domain, a->product))
				continue;
			if (*n == cap)
				*out = xrealloc(*out, (cap = cap ? cap * 2 : 16) * sizeof **out);
			struct lineage_hint *h = &(*out)[(*n)++];
			bool named = names && names(ctx, a->domain) && names(ctx, v->domain);
			int64_t lead = (pubs[i].at_ns - parse_ns(a->last_read)) / NS;
			*h = (struct lineage_hint){
				.from_domain = xstrdup(a->domain), .from_product = xstrdup(a->product),
				.to_domain = xstrdup(v->domain), .to_product = xstrdup(v->product),
				.to_version = xstrdup(v->name), .user = named ? xstrdup(pubs[i].user) : NULL,
				.last_read = xstrdup(a->last_read), .published_at = xstrdup(pubs[i].at),
				.lead_seconds = lead < 0 ? 0 : lead,
				.declared = declares(g, v->domain, v->product, a->domain, a->product, visible, ctx),
			};
		}
		adoption_reads_free(reads, nreads);
	}
	adoption_consumers_free(readers, nr);
	for (size_t i = 0; i < np; i++) {
		free(pubs[i].user);
		free(pubs[i].at);
	}
	free(pubs);
	if (rc) {
		lineage_hints_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return rc;
}

void lineage_hints_free(struct lineage_hint *h, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(h[i].from_domain);
		free(h[i].from_product);
		free(h[i].to_domain);
		free(h[i].to_product);
		free(h[i].to_version);
		free(h[i].user);
		free(h[i].last_read);
		free(h[i].published_at);
	}
	free(h);
}
