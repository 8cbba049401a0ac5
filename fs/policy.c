/*
 * policy.c - the policy snapshot and read decisions (contract in
 * include/policy.h).
 */
#include "policy.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "governance.h"
#include "mesh_util.h"
#include "store.h"
#include "view_mask.h"
#include "yamltree.h"

/* A subject resolved once, at load: decisions never ask NSS. */
struct subject {
	enum { SUBJ_ANY, SUBJ_USER, SUBJ_GROUP, SUBJ_OWNERS } kind;
	const char *name;
	long gid;                           /* groups: -1 when unknown on this host */
};

static struct subject resolve(const char *text)
{
	struct subject s = {SUBJ_ANY, text, -1};
	if (!strcmp(text, "owners")) {
		s.kind = SUBJ_OWNERS;
	} else if (!strncmp(text, "user:", 5)) {
		s.kind = SUBJ_USER;
		s.name = text + 5;
	} else if (!strncmp(text, "group:", 6)) {
		s.kind = SUBJ_GROUP;
		s.name = text + 6;
		s.gid = identity_group_id(s.name);
	}
	return s;
}

static bool subject_matches(const struct subject *s, const struct identity *who)
{
	switch (s->kind) {
	case SUBJ_ANY:
		return true;
	case SUBJ_USER:
		return !strcmp(s->name, who->user);
	case SUBJ_GROUP:
		return s->gid >= 0 && identity_in_group(who, (gid_t)s->gid);
	default:
		return false;
	}
}

struct access_rule {
	char *subject;
	struct subject who;
	char *domain, *product, *version;   /* NULL = any */
	bool deny;
	time_t until;
	char *source;                       /* "domains/sales/domain.yaml:12" or "grant g-17 ..." */
};

struct mask_rule {
	char *classification;
	enum view_fn fn;
	double precision;
	char **unmasked_for;                /* subjects, or "owners" */
	struct subject *unmasked;           /* the same, resolved */
	size_t n;
	char *domain;                       /* NULL: mesh-wide */
	char *source;
};

struct domain_entry {
	char *name;
	char **owners;
	struct subject *owner_subjects;
	size_t n_owners;
	char *broken;    /* why its domain.yaml did not load: all its data denied */
};

struct policy {
	char *governance_group;
	long governance_gid;
	struct access_rule *rules;
	size_t n_rules;
	struct mask_rule *masks;
	size_t n_masks;
	struct domain_entry *domains;
	size_t n_domains;
	bool needs_groups;
};

const char *policy_result_name(enum policy_result r)
{
	return r == POLICY_ALLOW ? "allow" : r == POLICY_MASK ? "mask" : "deny";
}

static bool subject_ok(const char *s)
{
	if (!strcmp(s, "*"))
		return true;
	const char *name = !strncmp(s, "user:", 5) ? s + 5 : !strncmp(s, "group:", 6) ? s + 6 : NULL;
	return name && *name && strlen(name) < 64 && !strpbrk(name, " :/\n");
}

static void note_subject(struct policy *p, const char *s)
{
	if (!strncmp(s, "group:", 6))
		p->needs_groups = true;
}

/* "sales", "sales/orders", "sales/orders@1.0.0", "*" -> parts */
static int parse_resource(const char *text, char **domain, char **product, char **version)
{
	*domain = *product = *version = NULL;
	if (!strcmp(text, "*"))
		return 0;
	char buf[256];
	if (strlen(text) >= sizeof buf)
		return -EINVAL;
	snprintf(buf, sizeof buf, "%s", text);
	char *at = strchr(buf, '@');
	if (at) {
		*at++ = '\0';
		if (semver_parse(at, NULL))
			return -EINVAL;
	}
	char *slash = strchr(buf, '/');
	if (slash)
		*slash++ = '\0';
	if (!mesh_name_ok(buf) || (slash && !mesh_name_ok(slash)) || (at && !slash))
		return -EINVAL;
	*domain = xstrdup(buf);
	*product = slash ? xstrdup(slash) : NULL;
	*version = at ? xstrdup(at) : NULL;
	return 0;
}

static void add_rule(struct policy *p, const char *subject, const char *domain, const char *product,
		     const char *version, bool deny, time_t until, const char *source)
{
	p->rules = xrealloc(p->rules, (p->n_rules + 1) * sizeof *p->rules);
	struct access_rule *r = &p->rules[p->n_rules++];
	r->subject = xstrdup(subject);
	r->domain = domain ? xstrdup(domain) : NULL;
	r->product = product ? xstrdup(product) : NULL;
	r->version = version ? xstrdup(version) : NULL;
	r->deny = deny;
	r->until = until;
	r->source = xstrdup(source);
	r->who = resolve(r->subject);
	note_subject(p, subject);
}

/* access: [{allow|deny: SUBJECT, resource: R | product: P, version: V, until: DATE}] */
static int read_access(struct policy *p, const struct ynode *list, const char *file, const char *domain,
		       struct mesh_err *err)
{
	if (!list)
		return 0;
	if (list->kind != Y_SEQUENCE)
		return mesh_errf(err, -EINVAL, "%s:%d:%d: access: expected a list", file, list->line, list->col);
	for (size_t i = 0; i < list->n; i++) {
		const struct ynode *e = list->items[i];
		const char *allow = yscalar(ymap_get(e, "allow")), *deny = yscalar(ymap_get(e, "deny"));
		if (e->kind != Y_MAPPING || (!allow == !deny))
			return mesh_errf(err, -EINVAL, "%s:%d:%d: access[%zu]: needs exactly one of allow: SUBJECT "
					 "or deny: SUBJECT", file, e->line, e->col, i);
		const char *subject = allow ? allow : deny;
		if (!subject_ok(subject))
			return mesh_errf(err, -EINVAL, "%s:%d:%d: access[%zu]: \"%s\" is not a subject (user:NAME, "
					 "group:NAME or *)", file, e->line, e->col, i, subject);
		char *d = NULL, *pr = NULL, *v = NULL;
		const char *resource = yscalar(ymap_get(e, "resource"));
		if (domain) {
			if (resource)
				return mesh_errf(err, -EINVAL, "%s:%d:%d: access[%zu]: a domain file names product: "
						 "and version:, not resource:", file, e->line, e->col, i);
			d = xstrdup(domain);
			const char *prod = yscalar(ymap_get(e, "product")), *ver = yscalar(ymap_get(e, "version"));
			if ((prod && !mesh_name_ok(prod)) || (ver && (semver_parse(ver, NULL) || !prod))) {
				free(d);
				return mesh_errf(err, -EINVAL, "%s:%d:%d: access[%zu]: product must be a product name "
						 "and version a SemVer version of it", file, e->line, e->col, i);
			}
			pr = prod ? xstrdup(prod) : NULL;
			v = ver ? xstrdup(ver) : NULL;
		} else if (!resource || parse_resource(resource, &d, &pr, &v)) {
			return mesh_errf(err, -EINVAL, "%s:%d:%d: access[%zu]: resource: expected *, DOMAIN, "
					 "DOMAIN/PRODUCT or DOMAIN/PRODUCT@VERSION", file, e->line, e->col, i);
		}
		time_t until = 0;
		const char *u = yscalar(ymap_get(e, "until"));
		if (u && mesh_time_parse(u, &until)) {
			free(d), free(pr), free(v);
			return mesh_errf(err, -EINVAL, "%s:%d:%d: access[%zu]: until: \"%s\" is not a date or RFC 3339 "
					 "time", file, e->line, e->col, i, u);
		}
		if (u && strlen(u) == 10)
			until += 86399;   /* a date: through the last second of that day */
		char source[PATH_MAX];
		snprintf(source, sizeof source, "%s:%d:%d", file, e->line, e->col);
		add_rule(p, subject, d, pr, v, deny != NULL, until, source);
		free(d), free(pr), free(v);
	}
	return 0;
}

static int read_masking(struct policy *p, const struct ynode *list, const char *file, const char *domain,
			struct mesh_err *err)
{
	if (!list)
		return 0;
	if (list->kind != Y_SEQUENCE)
		return mesh_errf(err, -EINVAL, "%s:%d:%d: masking: expected a list", file, list->line, list->col);
	for (size_t i = 0; i < list->n; i++) {
		const struct ynode *e = list->items[i];
		const char *cls = yscalar(ymap_get(e, "classification"));
		const struct ynode *un = ymap_get(e, "unmaskedFor");
		if (!cls || (un && un->kind != Y_SEQUENCE))
			return mesh_errf(err, -EINVAL, "%s:%d:%d: masking[%zu]: needs classification: NAME and "
					 "unmaskedFor: [SUBJECT, ..., owners]", file, e->line, e->col, i);
		p->masks = xrealloc(p->masks, (p->n_masks + 1) * sizeof *p->masks);
		struct mask_rule *m = &p->masks[p->n_masks++];
		memset(m, 0, sizeof *m);
		m->classification = xstrdup(cls);
		m->domain = domain ? xstrdup(domain) : NULL;
		char source[PATH_MAX];
		snprintf(source, sizeof source, "%s:%d:%d", file, e->line, e->col);
		m->source = xstrdup(source);
		const char *fname = yscalar(ymap_get(e, "function"));
		if (view_fn_parse(fname ? fname : "null", &m->fn))
			return mesh_errf(err, -EINVAL, "%s:%d:%d: masking[%zu].function: \"%s\" is not one of null, "
					 "redact, hash, last4, year, truncate", file, e->line, e->col, i, fname);
		if (m->fn == VIEW_FN_TRUNCATE &&
		    (ynumber(ymap_get(e, "precision"), &m->precision) || !(m->precision > 0)))
			return mesh_errf(err, -EINVAL, "%s:%d:%d: masking[%zu]: truncate needs precision: N (a "
					 "number > 0, e.g. 1000 or 0.01)", file, e->line, e->col, i);
		m->unmasked_for = xcalloc(un ? un->n + 1 : 1, sizeof *m->unmasked_for);
		for (size_t k = 0; un && k < un->n; k++) {
			const char *s = yscalar(un->items[k]);
			if (!s || (strcmp(s, "owners") && !subject_ok(s)))
				return mesh_errf(err, -EINVAL, "%s:%d:%d: masking[%zu].unmaskedFor: \"%s\" is not a "
						 "subject or \"owners\"", file, un->items[k]->line, un->items[k]->col, i,
						 s ? s : "");
			m->unmasked_for[m->n++] = xstrdup(s);
			note_subject(p, s);
		}
		m->unmasked = xcalloc(m->n + 1, sizeof *m->unmasked);
		for (size_t k = 0; k < m->n; k++)
			m->unmasked[k] = resolve(m->unmasked_for[k]);
	}
	return 0;
}

static int load_yaml(const char *path, struct ynode **root, struct mesh_err *err)
{
	char *text;
	size_t len;
	int rc = mesh_read_file_at(AT_FDCWD, path, 1u << 20, &text, &len, err);
	if (rc)
		return rc;
	static const struct ytree_limits limits = {1u << 20, 32, 100000};
	rc = yamltree_parse(text, len, path, &limits, root, err);
	free(text);
	return rc;
}

static void grant_free_fields(struct grant *g)
{
	free(g->id), free(g->subject), free(g->domain), free(g->product), free(g->version);
	free(g->grantor), free(g->granted_at), free(g->reason), free(g->request), free(g->file);
}

void grants_free(struct grant *g, size_t n)
{
	for (size_t i = 0; i < n; i++)
		grant_free_fields(&g[i]);
	free(g);
}

static const char *jstr(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

/* Grant files of one domain; unreadable or malformed ones are skipped with
 * a warning (a grant only ever adds access: skipping it fails closed). */
static void read_grants_dir(const char *store, const char *domain, struct grant **out, size_t *n,
			    struct strbuf *warnings)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s/domains/%s/grants", store, domain);
	int dfd = mesh_open_dir_at(AT_FDCWD, dir);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d) {
		if (dfd >= 0)
			close(dfd);
		return;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		if (de->d_name[0] == '.' || len < 6 || strcmp(de->d_name + len - 5, ".json"))
			continue;
		char path[PATH_MAX + 300];
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		json_error_t jerr;
		char *text = NULL;
		size_t tlen = 0;
		json_t *o = NULL;
		if (!mesh_read_file_at(dfd, de->d_name, 1u << 20, &text, &tlen, NULL))
			o = json_loadb(text, tlen, JSON_REJECT_DUPLICATES, &jerr);
		free(text);
		const char *subject = jstr(o, "subject"), *resource = jstr(o, "resource");
		char *dd = NULL, *pp = NULL, *vv = NULL;
		if (!o || !subject || !subject_ok(subject) || !resource || parse_resource(resource, &dd, &pp, &vv) ||
		    !dd || strcmp(dd, domain)) {
			if (warnings)
				strbuf_printf(warnings, "%s: not a valid grant of domain %s (ignored: it grants nothing)\n",
					      path, domain);
			free(dd), free(pp), free(vv);
			json_decref(o);
			continue;
		}
		*out = xrealloc(*out, (*n + 1) * sizeof **out);
		struct grant *g = &(*out)[(*n)++];
		memset(g, 0, sizeof *g);
		g->id = xstrndup(de->d_name, len - 5);
		g->subject = xstrdup(subject);
		g->domain = dd;
		g->product = pp;
		g->version = vv;
		const char *until = jstr(o, "until");
		if (until)
			mesh_time_parse(until, &g->until);
		g->grantor = dup_or_null(jstr(o, "grantor"));
		g->granted_at = dup_or_null(jstr(o, "granted_at"));
		g->reason = dup_or_null(jstr(o, "reason"));
		g->request = dup_or_null(jstr(o, "request"));
		g->file = xstrdup(path);
		if (warnings && pp) {
			char pdir[PATH_MAX];
			snprintf(pdir, sizeof pdir, "%s/domains/%s/%s", store, domain, pp);
			if (access(pdir, F_OK) < 0)
				strbuf_printf(warnings, "%s: grants %s on %s/%s, which does not exist\n", path, subject,
					      domain, pp);
		}
		json_decref(o);
	}
	closedir(d);
}

int grant_list(const char *store, const char *domain, struct grant **out, size_t *n, struct mesh_err *err)
{
	*out = NULL;
	*n = 0;
	if (domain) {
		read_grants_dir(store, domain, out, n, NULL);
		return 0;
	}
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s/domains", store);
	int dfd = mesh_open_dir_at(AT_FDCWD, dir);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d) {
		int e = dfd < 0 ? dfd : -errno;
		if (dfd >= 0)
			close(dfd);
		return mesh_errf(err, e, "%s: %s", dir, strerror(-e));
	}
	struct dirent *de;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' && mesh_name_ok(de->d_name))
			read_grants_dir(store, de->d_name, out, n, NULL);
	closedir(d);
	return 0;
}

int policy_load(const char *store, struct policy **out, char **warnings, struct mesh_err *err)
{
	struct policy *p = xcalloc(1, sizeof *p);
	struct strbuf warn = STRBUF_INIT;
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/mesh.yaml", store);
	struct ynode *root = NULL;
	int rc = load_yaml(path, &root, err);
	if (!rc && (!root || root->kind != Y_MAPPING))
		rc = mesh_errf(err, -EINVAL, "%s:1:1: expected the mesh policy mapping", path);
	if (!rc) {
		const char *g = yscalar(ymap_get(ymap_get(root, "governance"), "group"));
		p->governance_group = xstrdup(g ? g : GOV_DEFAULT_GROUP);
		p->governance_gid = identity_group_id(p->governance_group);
		rc = read_access(p, ymap_get(root, "access"), "mesh.yaml", NULL, err);
		if (!rc)
			rc = read_masking(p, ymap_get(root, "masking"), "mesh.yaml", NULL, err);
	}
	yamltree_free(root);
	snprintf(path, sizeof path, "%s/domains", store);
	int dfd = rc ? -1 : mesh_open_dir_at(AT_FDCWD, path);
	DIR *dir = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!rc && !dir) {
		int e = dfd < 0 ? dfd : -errno;
		if (dfd >= 0)
			close(dfd);
		rc = mesh_errf(err, e, "%s: %s", path, strerror(-e));
	}
	struct dirent *de;
	while (!rc && (de = readdir(dir))) {
		if (de->d_name[0] == '.' || !mesh_name_ok(de->d_name))
			continue;
		/* A domain whose domain.yaml does not load (a syntax error, a FIFO,
		 * a symlink) is denied to all but governance, and the rest of the
		 * mesh loads as usual: one domain's broken file must not hold back
		 * every other domain's changes (a revoke elsewhere applies). */
		struct domain_info *di = NULL;
		struct mesh_err derr = {0};
		struct ynode *droot = NULL;
		char rel[PATH_MAX];
		snprintf(rel, sizeof rel, "domains/%s/domain.yaml", de->d_name);
		p->domains = xrealloc(p->domains, (p->n_domains + 1) * sizeof *p->domains);
		struct domain_entry *e = &p->domains[p->n_domains++];
		memset(e, 0, sizeof *e);
		e->name = xstrdup(de->d_name);
		int drc = gov_load_domain(store, de->d_name, &di, &derr);
		if (!drc) {
			e->owners = xcalloc(di->n_owners + 1, sizeof *e->owners);
			e->n_owners = di->n_owners;
			e->owner_subjects = xcalloc(di->n_owners + 1, sizeof *e->owner_subjects);
			for (size_t i = 0; i < di->n_owners; i++) {
				e->owners[i] = xstrdup(di->owners[i]);
				e->owner_subjects[i] = resolve(e->owners[i]);
				note_subject(p, e->owners[i]);
			}
			drc = load_yaml(di->path, &droot, &derr);
		}
		if (!drc)
			drc = read_access(p, ymap_get(droot, "access"), rel, di->name, &derr);
		if (!drc)
			drc = read_masking(p, ymap_get(droot, "masking"), rel, di->name, &derr);
		yamltree_free(droot);
		gov_domain_free(di);
		if (drc) {
			e->broken = xstrdup(derr.msg[0] ? derr.msg : rel);
			strbuf_printf(&warn, "%s: does not load, so domain %s is denied to all but governance "
				      "(fail closed): %s\n", rel, e->name, e->broken);
			continue;
		}
		struct grant *grants = NULL;
		size_t ng = 0;
		read_grants_dir(store, e->name, &grants, &ng, &warn);
		for (size_t i = 0; i < ng; i++) {
			char source[1024];
			snprintf(source, sizeof source, "grant %s (%s on %s%s%s%s%s, by %s%s%s)", grants[i].id,
				 grants[i].subject, grants[i].domain, grants[i].product ? "/" : "",
				 grants[i].product ? grants[i].product : "", grants[i].version ? "@" : "",
				 grants[i].version ? grants[i].version : "", grants[i].grantor ? grants[i].grantor : "?",
				 grants[i].until ? ", until " : "", grants[i].until ? "the date set" : "");
			add_rule(p, grants[i].subject, grants[i].domain, grants[i].product, grants[i].version, false,
				 grants[i].until, source);
		}
		grants_free(grants, ng);
	}
	if (dir)
		closedir(dir);
	if (rc) {
		strbuf_release(&warn);
		policy_free(p);
		return rc;
	}
	if (warnings)
		*warnings = strbuf_detach(&warn, NULL);
	else
		strbuf_release(&warn);
	*out = p;
	return 0;
}

void policy_free(struct policy *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_rules; i++) {
		struct access_rule *r = &p->rules[i];
		free(r->subject), free(r->domain), free(r->product), free(r->version), free(r->source);
	}
	free(p->rules);
	for (size_t i = 0; i < p->n_masks; i++) {
		struct mask_rule *m = &p->masks[i];
		for (size_t k = 0; k < m->n; k++)
			free(m->unmasked_for[k]);
		free(m->unmasked_for), free(m->unmasked), free(m->classification), free(m->domain), free(m->source);
	}
	free(p->masks);
	for (size_t i = 0; i < p->n_domains; i++) {
		struct domain_entry *e = &p->domains[i];
		for (size_t k = 0; k < e->n_owners; k++)
			free(e->owners[k]);
		free(e->owners), free(e->owner_subjects), free(e->name), free(e->broken);
	}
	free(p->domains);
	free(p->governance_group);
	free(p);
}

static const struct domain_entry *find_domain(const struct policy *p, const char *name)
{
	for (size_t i = 0; name && i < p->n_domains; i++)
		if (!strcmp(p->domains[i].name, name))
			return &p->domains[i];
	return NULL;
}

static const char *owner_match(const struct domain_entry *d, const struct identity *who)
{
	for (size_t i = 0; d && i < d->n_owners; i++)
		if (subject_matches(&d->owner_subjects[i], who))
			return d->owners[i];
	return NULL;
}

static bool is_governance(const struct policy *p, const struct identity *who)
{
	return who->uid == 0 || (p->governance_gid >= 0 && identity_in_group(who, (gid_t)p->governance_gid));
}

static bool covers(const struct access_rule *r, const char *domain, const char *product, const char *version)
{
	if (r->domain && (!domain || strcmp(r->domain, domain)))
		return false;
	if (r->product && (!product || strcmp(r->product, product)))
		return false;
	if (r->version && (!version || strcmp(r->version, version)))
		return false;
	return true;
}

void policy_decide(const struct policy *p, const struct identity *who, const char *domain,
		   const char *product, const char *version, const char *const *classifications,
		   size_t n, time_t now, struct policy_decision *out)
{
	memset(out, 0, sizeof *out);
	if (who->groups_truncated) {
		/* a deny rule may name a group we did not keep: fail closed */
		out->result = POLICY_DENY;
		snprintf(out->reason, sizeof out->reason, "denied: %s is in more than %d groups, more than meshfs "
			 "can check (fail closed)", who->user, IDENTITY_MAX_GROUPS);
		return;
	}
	const struct domain_entry *d = find_domain(p, domain);
	if (d && d->broken && !is_governance(p, who)) {
		out->result = POLICY_DENY;
		snprintf(out->reason, sizeof out->reason, "denied: domains/%s/domain.yaml does not load (fail "
			 "closed): %s", domain, d->broken);
		return;
	}
	const char *owner = owner_match(d, who);
	const struct access_rule *allow = NULL;
	if (owner) {
		snprintf(out->reason, sizeof out->reason, "owner of domain %s (%s, domains/%s/domain.yaml)", domain,
			 owner, domain);
	} else if (is_governance(p, who)) {
		snprintf(out->reason, sizeof out->reason, "governance (%s)",
			 who->uid == 0 ? "root" : p->governance_group);
	} else {
		for (size_t i = 0; i < p->n_rules; i++) {
			const struct access_rule *r = &p->rules[i];
			if ((r->until && now > r->until) || !covers(r, domain, product, version) ||
			    !subject_matches(&r->who, who))
				continue;
			if (r->deny) {
				out->result = POLICY_DENY;
				snprintf(out->reason, sizeof out->reason, "denied: %s for %s (%s)", r->deny ? "deny" : "",
					 r->subject, r->source);
				return;
			}
			if (!allow)
				allow = r;
		}
		if (!allow) {
			out->result = POLICY_DENY;
			snprintf(out->reason, sizeof out->reason, "no grant for %s on %s/%s: denied by default (ask with "
				 "'meshctl request %s/%s')", who->user, domain, product ? product : "*", domain,
				 product ? product : "PRODUCT");
			return;
		}
		snprintf(out->reason, sizeof out->reason, "allowed: %s (%s)", allow->subject, allow->source);
	}
	out->result = POLICY_ALLOW;
	/* masking: a classification is masked when some rule for it (mesh-wide
	 * or this domain's) does not list the caller */
	for (size_t c = 0; c < n; c++) {
		for (size_t m = 0; m < p->n_masks; m++) {
			const struct mask_rule *mr = &p->masks[m];
			if (strcmp(mr->classification, classifications[c]) || (mr->domain && strcmp(mr->domain, domain)))
				continue;
			bool cleared = false;
			for (size_t k = 0; k < mr->n && !cleared; k++)
				cleared = mr->unmasked[k].kind == SUBJ_OWNERS ? owner != NULL
									      : subject_matches(&mr->unmasked[k], who);
			if (cleared)
				continue;
			struct policy_mask *listed = NULL;
			for (size_t k = 0; k < out->n_masked && !listed; k++)
				if (!strcmp(out->masked[k].classification, mr->classification))
					listed = &out->masked[k];
			if (!listed) {
				out->masked = xrealloc(out->masked, (out->n_masked + 1) * sizeof *out->masked);
				listed = &out->masked[out->n_masked++];
				listed->function = NULL;
			}
			enum view_fn have;
			if (!listed->function || (view_fn_parse(listed->function, &have) == 0 &&
						  view_fn_strength(mr->fn) > view_fn_strength(have)))
				*listed = (struct policy_mask){mr->classification, view_fn_name(mr->fn), mr->precision,
							       mr->source};
			if (out->result != POLICY_MASK) {
				size_t len = strlen(out->reason);
				snprintf(out->reason + len, sizeof out->reason - len, "; %s masked (%s)", mr->classification,
					 mr->source);
			}
			out->result = POLICY_MASK;
		}
	}
}

void policy_decision_clear(struct policy_decision *d)
{
	if (!d)
		return;
	free(d->masked);
	d->masked = NULL;
	d->n_masked = 0;
}

bool policy_needs_groups(const struct policy *p)
{
	return p->needs_groups;
}

int grant_write(const char *store, const struct grant *g, char **id_out, struct mesh_err *err)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s/domains/%s/grants", store, g->domain);
	if (mkdir(dir, STORE_DIR_MODE) < 0 && errno != EEXIST)
		return mesh_errf(err, -errno, "%s: %s", dir, strerror(errno));
	json_t *o = json_object();
	json_object_set_new(o, "subject", json_string(g->subject));
	struct strbuf res = STRBUF_INIT;
	strbuf_printf(&res, "%s%s%s%s%s", g->domain, g->product ? "/" : "", g->product ? g->product : "",
		      g->version ? "@" : "", g->version ? g->version : "");
	json_object_set_new(o, "resource", json_string(res.buf));
	strbuf_release(&res);
	json_object_set_new(o, "action", json_string("read"));
	if (g->until) {
		struct timespec ts = {g->until, 0};
		char buf[40];
		mesh_time_rfc3339(&ts, buf, sizeof buf);
		json_object_set_new(o, "until", json_string(buf));
	}
	json_object_set_new(o, "grantor", json_string(g->grantor ? g->grantor : "?"));
	json_object_set_new(o, "granted_at", json_string(g->granted_at ? g->granted_at : ""));
	if (g->reason)
		json_object_set_new(o, "reason", json_string(g->reason));
	if (g->request)
		json_object_set_new(o, "request", json_string(g->request));
	char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(o);
	int fd = mesh_open_dir_at(AT_FDCWD, dir);
	int rc = fd < 0 ? mesh_errf(err, fd, "%s: %s", dir, strerror(-fd)) : 0;
	char id[64];
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	snprintf(id, sizeof id, "g%lld%03ld-%d", (long long)now.tv_sec, now.tv_nsec / 1000000, (int)getpid() % 1000);
	char name[80];
	snprintf(name, sizeof name, "%s.json", id);
	if (!rc) {
		if (faccessat(fd, name, F_OK, 0) == 0)
			rc = mesh_errf(err, -EEXIST, "grant %s exists", id);
		else
			rc = mesh_write_file_atomic(fd, name, text, strlen(text), STORE_FILE_MODE, err);
	}
	if (fd >= 0)
		close(fd);
	free(text);
	if (!rc && id_out)
		*id_out = xstrdup(id);
	return rc;
}

int grant_revoke(const char *store, const char *domain, const char *product, const char *version,
		 const char *subject, size_t *removed, struct mesh_err *err)
{
	*removed = 0;
	struct grant *g = NULL;
	size_t n = 0;
	read_grants_dir(store, domain, &g, &n, NULL);
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		bool same = !strcmp(g[i].subject, subject) &&
			    ((!g[i].product && !product) || (g[i].product && product && !strcmp(g[i].product, product))) &&
			    ((!g[i].version && !version) || (g[i].version && version && !strcmp(g[i].version, version)));
		if (!same)
			continue;
		if (unlink(g[i].file) < 0)
			rc = mesh_errf(err, -errno, "%s: %s", g[i].file, strerror(errno));
		else
			(*removed)++;
	}
	grants_free(g, n);
	return rc;
}

void policy_audit(const char *store, const char *domain, const struct identity *who, const char *what)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/domains/%s/access.log", store, domain);
	int fd = mesh_open_regular_at(AT_FDCWD, path, O_WRONLY | O_APPEND | O_CREAT, STORE_FILE_MODE, NULL);
	if (fd < 0)
		return;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	char stamp[40];
	mesh_time_rfc3339(&now, stamp, sizeof stamp);
	json_t *o = json_object();
	json_object_set_new(o, "time", json_string(stamp));
	json_object_set_new(o, "uid", json_integer(who->uid));
	json_object_set_new(o, "user", json_string(who->user));
	json_object_set_new(o, "event", json_string(what));
	char *line = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	size_t len = strlen(line);
	line = xrealloc(line, len + 2);
	line[len] = '\n';
	mesh_write_all(fd, line, len + 1);   /* one write: O_APPEND keeps lines whole */
	free(line);
	close(fd);
}
