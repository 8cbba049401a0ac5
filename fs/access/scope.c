/*
 * scope.c - what one caller may see of listings (scope.h): the policy's
 * read decision for restricted products, ownership for domain entries.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "governance.h"
#include "mesh_util.h"
#include "policy.h"
#include "scope.h"

struct owned {
	char *domain;
	bool administers;
	bool loaded;                    /* domain.yaml read */
	char **restricted;              /* its restricted list (NULL + loaded: none) */
	size_t n_restricted;
};

struct scope {
	char *store;
	struct identity who;
	struct policy *policy;          /* NULL: did not load (restricted: invisible) */
	bool governance;
	struct owned *owned;
	size_t n_owned, cap_owned;
	char *domain_list;
};

int scope_open(const char *store, const struct identity *who, struct scope **out, struct mesh_err *err)
{
	(void)err;
	struct scope *s = xcalloc(1, sizeof *s);
	s->store = xstrdup(store);
	s->who = *who;
	struct mesh_err perr = {0};
	if (policy_load(store, &s->policy, NULL, &perr))
		s->policy = NULL;
	struct mesh_policy *mesh = NULL;
	if (gov_load_mesh(store, &mesh, &perr) == 0) {
		s->governance = gov_is_governance(mesh, who);
		gov_mesh_free(mesh);
	} else {
		s->governance = who->uid == 0;
	}
	*out = s;
	return 0;
}

void scope_close(struct scope *s)
{
	if (!s)
		return;
	policy_free(s->policy);
	for (size_t i = 0; i < s->n_owned; i++) {
		free(s->owned[i].domain);
		for (size_t k = 0; k < s->owned[i].n_restricted; k++)
			free(s->owned[i].restricted[k]);
		free(s->owned[i].restricted);
	}
	free(s->owned);
	free(s->domain_list);
	free(s->store);
	free(s);
}

bool scope_governance(const struct scope *s)
{
	return s->governance;
}

/* What the scope knows of a domain: loaded once per command. */
static struct owned *domain_facts(struct scope *s, const char *domain)
{
	for (size_t i = 0; i < s->n_owned; i++)
		if (!strcmp(s->owned[i].domain, domain))
			return &s->owned[i];
	struct domain_info *d = NULL;
	struct owned o = {.domain = xstrdup(domain)};
	if (gov_load_domain(s->store, domain, &d, NULL) == 0) {
		o.loaded = true;
		o.administers = gov_is_owner(d, &s->who);
		o.restricted = xcalloc(d->n_restricted + 1, sizeof *o.restricted);
		for (size_t k = 0; k < d->n_restricted; k++)
			o.restricted[o.n_restricted++] = xstrdup(d->restricted[k]);
	}
	gov_domain_free(d);
	if (s->n_owned == s->cap_owned)
		s->owned = xrealloc(s->owned, (s->cap_owned = s->cap_owned ? 2 * s->cap_owned : 8) * sizeof *s->owned);
	s->owned[s->n_owned] = o;
	return &s->owned[s->n_owned++];
}

bool scope_administers(struct scope *s, const char *domain)
{
	return s->governance || domain_facts(s, domain)->administers;
}

bool scope_may_discover(struct scope *s, const struct cat_node *n)
{
	if (!n->product || !n->restricted)
		return true;
	if (scope_administers(s, n->domain))
		return true;
	if (!s->policy)
		return false;
	struct policy_decision dec;
	policy_decide(s->policy, &s->who, n->domain, n->product, n->kind == CAT_PRODUCT ? NULL : n->version,
		      NULL, 0, time(NULL), &dec);
	bool visible = dec.result != POLICY_DENY;
	policy_decision_clear(&dec);
	return visible;
}

static bool may_discover_named(struct scope *s, const char *domain, const char *product, const char *version,
			       bool restricted)
{
	const struct owned *d = domain_facts(s, domain);
	if (!d->loaded)
		restricted = true;          /* an unreadable domain.yaml: fail closed */
	for (size_t k = 0; k < d->n_restricted && !restricted; k++)
		restricted = !strcmp(d->restricted[k], product);
	if (!restricted || s->governance || d->administers)
		return true;
	if (!s->policy)
		return false;
	struct policy_decision dec;
	policy_decide(s->policy, &s->who, domain, product, version, NULL, 0, time(NULL), &dec);
	bool visible = dec.result != POLICY_DENY;
	policy_decision_clear(&dec);
	return visible;
}

bool scope_may_discover_product(struct scope *s, const char *domain, const char *product, bool restricted)
{
	return may_discover_named(s, domain, product, NULL, restricted);
}

bool scope_may_discover_release(struct scope *s, const char *domain, const char *product, const char *version,
				bool product_restricted)
{
	return may_discover_named(s, domain, product, version, product_restricted);
}

const char *scope_domain_list(struct scope *s)
{
	if (s->governance)
		return NULL;
	if (s->domain_list)
		return s->domain_list;
	struct strbuf sb = {0};
	strbuf_puts(&sb, ",");
	char path[4096];
	snprintf(path, sizeof path, "%s/domains", s->store);
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.' && mesh_name_ok(e->d_name) && scope_administers(s, e->d_name))
			strbuf_printf(&sb, "%s,", e->d_name);
	if (d)
		closedir(d);
	else if (fd >= 0)
		close(fd);
	s->domain_list = strbuf_detach(&sb, NULL);
	return s->domain_list;
}
