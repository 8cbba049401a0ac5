/*
 * visibility.c - what a caller may discover (contract in
 * include/visibility.h): a catalog, a policy snapshot and an identity.
 *
 * Not here: the read decision itself (policy.c), the daemon's own copy of
 * this rule on its hot path (daemon.c).
 */
#include "visibility.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "governance.h"
#include "mesh_util.h"
#include "policy.h"
#include "store.h"

struct restricted_domain {
	char *name;
	bool loaded;                /* its domain.yaml was read (on first use, under lock) */
	bool unreadable;            /* domain.yaml did not load: all its products */
	char **products;
	size_t n;
};

struct visibility {
	char *store;
	struct catalog *cat;        /* NULL when opened _marked */
	struct policy *policy;      /* NULL: did not load, restricted products hidden */
	/* The policy and each domain's restricted list are read when first
	 * needed (a search that shows 20 hits of 100 domains reads the files
	 * of those only); `lock` guards the loading, after which they do not
	 * change: the visibility stays shareable by threads. */
	pthread_mutex_t lock;
	bool policy_loaded;
	struct identity who;
	struct restricted_domain *domains;   /* _marked: every domain, sorted by name */
	size_t n_domains;
};

static int cmp_domain(const void *a, const void *b)
{
	return strcmp(((const struct restricted_domain *)a)->name, ((const struct restricted_domain *)b)->name);
}

int visibility_open_marked(const char *store, const struct identity *who, struct visibility **out,
			   struct mesh_err *err)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/domains", store);
	int dfd = mesh_open_dir_at(AT_FDCWD, path);
	DIR *dir = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!dir) {
		int rc = dfd < 0 ? dfd : -errno;
		if (dfd >= 0)
			close(dfd);
		return mesh_errf(err, rc, "%s: %s", path, strerror(-rc));
	}
	struct visibility *v = xcalloc(1, sizeof *v);
	v->store = xstrdup(store);
	v->who = *who;
	pthread_mutex_init(&v->lock, NULL);
	size_t cap = 0;
	struct dirent *de;
	while ((de = readdir(dir))) {
		if (!mesh_name_ok(de->d_name))
			continue;
		if (v->n_domains == cap)
			v->domains = xrealloc(v->domains, (cap = cap ? cap * 2 : 16) * sizeof *v->domains);
		v->domains[v->n_domains++] = (struct restricted_domain){.name = xstrdup(de->d_name)};
	}
	closedir(dir);
	qsort(v->domains, v->n_domains, sizeof *v->domains, cmp_domain);
	*out = v;
	return 0;
}

/* Has domain/product a version that is not retired (so the mount shows it)? */
static bool has_live_version(const char *store, const char *domain, const char *product)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/domains/%s/%s", store, domain, product);
	int pfd = mesh_open_dir_at(AT_FDCWD, path);
	if (pfd < 0)
		return false;
	struct lifecycle_table life = {0};
	lifecycle_load_at(pfd, &life, NULL);
	int lfd = dup(pfd);
	DIR *dir = lfd >= 0 ? fdopendir(lfd) : NULL;
	if (!dir && lfd >= 0)
		close(lfd);
	bool live = false;
	struct semver sv;
	struct dirent *de;
	while (dir && !live && (de = readdir(dir)))
		live = de->d_name[0] != '.' && !semver_parse(de->d_name, &sv) &&
		       lifecycle_of(&life, de->d_name) != LC_RETIRED;
	if (dir)
		closedir(dir);
	lifecycle_table_free(&life);
	close(pfd);
	return live;
}

/* The policy, loaded on first use (NULL: it did not load). */
static const struct policy *policy_of(const struct visibility *cv)
{
	struct visibility *v = (struct visibility *)cv;     /* only the lazily loaded part changes */
	pthread_mutex_lock(&v->lock);
	if (!v->policy_loaded) {
		char *warnings = NULL;
		if (policy_load(v->store, &v->policy, &warnings, NULL))
			v->policy = NULL;
		free(warnings);
		v->policy_loaded = true;
	}
	pthread_mutex_unlock(&v->lock);
	return v->policy;
}

/* A domain's restricted list, read on first use (a domain.yaml that does
 * not load restricts every product of the domain). */
static void domain_load(const struct visibility *cv, struct restricted_domain *d)
{
	struct visibility *v = (struct visibility *)cv;
	pthread_mutex_lock(&v->lock);
	if (!d->loaded) {
		struct domain_info *di = NULL;
		if (gov_load_domain(v->store, d->name, &di, NULL)) {
			d->unreadable = true;
		} else {
			d->products = xcalloc(di->n_restricted + 1, sizeof *d->products);
			for (size_t i = 0; i < di->n_restricted; i++)
				d->products[d->n++] = xstrdup(di->restricted[i]);
		}
		gov_domain_free(di);
		d->loaded = true;
	}
	pthread_mutex_unlock(&v->lock);
}

bool visibility_marked(const struct visibility *v, const char *domain, const char *product, bool marked,
		       bool retired)
{
	struct restricted_domain key = {.name = (char *)domain};
	struct restricted_domain *d = bsearch(&key, v->domains, v->n_domains, sizeof *v->domains, cmp_domain);
	if (!d)
		return false;             /* no such domain in the store */
	domain_load(v, d);
	if (retired && !has_live_version(v->store, domain, product))
		return false;
	bool restricted = marked || d->unreadable;
	for (size_t i = 0; i < d->n && !restricted; i++)
		restricted = !strcmp(d->products[i], product);
	if (!restricted)
		return true;
	const struct policy *policy = policy_of(v);
	if (!policy)
		return false;
	struct policy_decision dec;
	policy_decide(policy, &v->who, domain, product, NULL, NULL, 0, time(NULL), &dec);
	policy_decision_clear(&dec);
	return dec.result != POLICY_DENY;
}

int visibility_open(const char *store, struct catalog *cat, const struct identity *who,
		    struct visibility **out, struct mesh_err *err)
{
	(void)err;
	struct visibility *v = xcalloc(1, sizeof *v);
	v->store = xstrdup(store);
	v->cat = catalog_ref(cat);
	v->who = *who;
	pthread_mutex_init(&v->lock, NULL);
	*out = v;
	return 0;
}

void visibility_close(struct visibility *v)
{
	if (!v)
		return;
	policy_free(v->policy);
	pthread_mutex_destroy(&v->lock);
	catalog_unref(v->cat);
	for (size_t i = 0; i < v->n_domains; i++) {
		for (size_t k = 0; k < v->domains[i].n; k++)
			free(v->domains[i].products[k]);
		free(v->domains[i].products);
		free(v->domains[i].name);
	}
	free(v->domains);
	free(v->store);
	free(v);
}

bool visibility_node(const struct visibility *v, const struct cat_node *n)
{
	if (!n)
		return false;
	if (!n->product || !n->restricted)
		return true;
	const struct policy *policy = policy_of(v);
	if (!policy)
		return false;
	struct policy_decision dec;
	policy_decide(policy, &v->who, n->domain, n->product, NULL, NULL, 0, time(NULL), &dec);
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
	return policy_of(v);
}
