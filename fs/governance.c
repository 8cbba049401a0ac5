/*
 * governance.c - mesh.yaml and domain.yaml, and the publish rules they
 * set (contract in include/governance.h).
 */
#include "governance.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "csv.h"
#include "mesh_util.h"
#include "name_hint.h"
#include "parquet.h"
#include "pii.h"
#include "store.h"
#include "yamltree.h"

static const char default_mesh_yaml[] =
	"# Mesh-wide policy of this meshfs store, owned by the governance team.\n"
	"apiVersion: meshfs/v1\n"
	"kind: MeshPolicy\n"
	"governance:\n"
	"  # root and members of this Unix group create domains and may act in any domain\n"
	"  group: " GOV_DEFAULT_GROUP "\n"
	"publish:\n"
	"  # fields every contract must fill in\n"
	"  requiredFields: [description.purpose, owner, support]\n"
	"  # every column name must match (POSIX extended regular expression);\n"
	"  # nested columns (Parquet, JSON) are named by dotted paths\n"
	"  columnNames: '^[a-z][a-z0-9_]*([.][a-z][a-z0-9_]*)*$'\n"
	"  allowedClassifications: [public, internal, confidential, restricted, pii]\n"
	"  # a column whose data looks like personal data must carry a classification\n"
	"  classifyPersonalData: true\n"
	"masking:\n"
	"  # columns classified pii are masked for readers who are neither an owner of\n"
	"  # the product's domain nor a member of the Unix group mesh-pii\n"
	"  - classification: pii\n"
	"    unmaskedFor: [group:mesh-pii, owners]\n";

const char *gov_default_mesh_yaml(void)
{
	return default_mesh_yaml;
}

static const struct ytree_limits limits = {1u << 20, 32, 100000};

static int load_tree(const char *path, struct ynode **root, struct mesh_err *err)
{
	char *text;
	size_t len;
	int rc = mesh_read_file_at(AT_FDCWD, path, limits.max_bytes, &text, &len, err);
	if (rc)
		return rc;
	rc = yamltree_parse(text, len, path, &limits, root, err);
	free(text);
	if (!rc && (!*root || (*root)->kind != Y_MAPPING)) {
		yamltree_free(*root);
		*root = NULL;
		return mesh_errf(err, -EINVAL, "%s:1:1: expected a mapping", path);
	}
	return rc;
}

static int str_list(const char *path, const struct ynode *n, const char *field, char ***out, size_t *count,
		    struct mesh_err *err)
{
	*out = NULL;
	*count = 0;
	if (!n)
		return 0;
	if (n->kind != Y_SEQUENCE)
		return mesh_errf(err, -EINVAL, "%s:%d:%d: %s: expected a list", path, n->line, n->col, field);
	*out = xcalloc(n->n + 1, sizeof **out);
	for (size_t i = 0; i < n->n; i++) {
		const char *s = yscalar(n->items[i]);
		if (!s) {
			for (size_t k = 0; k < *count; k++)
				free((*out)[k]);
			free(*out);
			*out = NULL;
			*count = 0;
			return mesh_errf(err, -EINVAL, "%s:%d:%d: %s: expected text items", path, n->items[i]->line,
					 n->items[i]->col, field);
		}
		(*out)[(*count)++] = xstrdup(s);
	}
	return 0;
}

static void free_list(char **l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(l[i]);
	free(l);
}

static bool subject_ok(const char *s)
{
	if (!strcmp(s, "*"))
		return true;
	const char *name = !strncmp(s, "user:", 5) ? s + 5 : !strncmp(s, "group:", 6) ? s + 6 : NULL;
	return name && *name && strlen(name) < 64 && !strpbrk(name, " :/\n");
}

static int read_publish(const char *path, const struct ynode *n, struct publish_rules *r, struct mesh_err *err)
{
	memset(r, 0, sizeof *r);
	r->source = xstrdup(path);
	if (!n)
		return 0;
	r->line = n->line;
	if (n->kind != Y_MAPPING)
		return mesh_errf(err, -EINVAL, "%s:%d:%d: publish: expected a mapping", path, n->line, n->col);
	static const char *const known[] = {"requiredFields", "columnNames", "allowedClassifications",
					    "classifyPersonalData", "requireInputs"};
	struct gov_rule_pos *at[] = {&r->at_required, &r->at_columns, &r->at_allowed, &r->at_classify,
				     &r->at_inputs};
	for (size_t i = 0; i < n->n; i++) {
		bool ok = false;
		for (size_t k = 0; k < sizeof known / sizeof *known; k++)
			if (!strcmp(n->keys[i]->text, known[k])) {
				ok = true;
				*at[k] = (struct gov_rule_pos){n->keys[i]->line, n->keys[i]->col};
			}
		if (!ok) {
			const char *hint = name_hint_closest(n->keys[i]->text, known, sizeof known / sizeof *known);
			char *shown = mesh_escape_text(n->keys[i]->text);
			int rc = mesh_errf(err, -EINVAL, "%s:%d:%d: publish.%s: unknown rule%s%s%s (known: "
					   "requiredFields, columnNames, allowedClassifications, classifyPersonalData, "
					   "requireInputs)", path, n->keys[i]->line, n->keys[i]->col, shown,
					   hint ? "; did you mean '" : "", hint ? hint : "", hint ? "'?" : "");
			free(shown);
			return rc;
		}
	}
	int rc = str_list(path, ymap_get(n, "requiredFields"), "publish.requiredFields", &r->required_fields,
			  &r->n_required, err);
	if (!rc)
		rc = str_list(path, ymap_get(n, "allowedClassifications"), "publish.allowedClassifications",
			      &r->allowed_classifications, &r->n_allowed, err);
	const struct ynode *cn = ymap_get(n, "columnNames");
	if (!rc && cn) {
		const char *pat = yscalar(cn);
		regex_t re;
		if (!pat || regcomp(&re, pat, REG_EXTENDED | REG_NOSUB))
			return mesh_errf(err, -EINVAL, "%s:%d:%d: publish.columnNames: not a valid POSIX extended "
					 "regular expression", path, cn->line, cn->col);
		regfree(&re);
		r->column_patterns = xcalloc(1, sizeof *r->column_patterns);
		r->column_patterns[r->n_patterns++] = xstrdup(pat);
	}
	const struct ynode *cp = ymap_get(n, "classifyPersonalData");
	if (!rc && cp) {
		int b = ybool(cp);
		if (b < 0)
			return mesh_errf(err, -EINVAL, "%s:%d:%d: publish.classifyPersonalData: expected true or false",
					 path, cp->line, cp->col);
		r->classify_personal_data = b;
	}
	const struct ynode *ri = ymap_get(n, "requireInputs");
	if (!rc && ri) {
		int b = ybool(ri);
		if (b < 0)
			return mesh_errf(err, -EINVAL, "%s:%d:%d: publish.requireInputs: expected true or false",
					 path, ri->line, ri->col);
		r->require_inputs = b;
	}
	static const char *const fields[] = {"description.purpose", "description.usage", "description.limitations",
				       "owner", "support", "tags", "name"};
	const struct ynode *rf = ymap_get(n, "requiredFields");
	for (size_t i = 0; !rc && i < r->n_required; i++) {
		bool ok = false;
		for (size_t k = 0; k < sizeof fields / sizeof *fields; k++)
			ok |= !strcmp(r->required_fields[i], fields[k]);
		if (ok)
			continue;
		/* str_list keeps every text item in order, so item i is the i-th scalar */
		const struct ynode *item = rf;
		for (size_t k = 0, seen = 0; rf && rf->kind == Y_SEQUENCE && k < rf->n; k++)
			if (yscalar(rf->items[k]) && seen++ == i) {
				item = rf->items[k];
				break;
			}
		const char *hint = name_hint_closest(r->required_fields[i], fields, sizeof fields / sizeof *fields);
		rc = mesh_errf(err, -EINVAL, "%s:%d:%d: publish.requiredFields: \"%s\" is not a field meshfs "
			       "can require (description.purpose, description.usage, description.limitations, "
			       "owner, support, tags, name)%s%s%s", path, item ? item->line : n->line,
			       item ? item->col : n->col, r->required_fields[i], hint ? "; did you mean '" : "",
			       hint ? hint : "", hint ? "'?" : "");
	}
	return rc;
}

static void publish_rules_free(struct publish_rules *r)
{
	free_list(r->required_fields, r->n_required);
	free_list(r->column_patterns, r->n_patterns);
	free_list(r->allowed_classifications, r->n_allowed);
	free(r->source);
}

int gov_load_mesh(const char *store, struct mesh_policy **out, struct mesh_err *err)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/mesh.yaml", store);
	struct ynode *root = NULL;
	int rc = load_tree(path, &root, err);
	if (rc)
		return rc;
	struct mesh_policy *p = xcalloc(1, sizeof *p);
	p->path = xstrdup(path);
	const char *kind = yscalar(ymap_get(root, "kind"));
	if (!kind || strcmp(kind, "MeshPolicy"))
		rc = mesh_errf(err, -EINVAL, "%s:1:1: kind: expected MeshPolicy", path);
	const char *group = yscalar(ymap_get(ymap_get(root, "governance"), "group"));
	p->governance_group = xstrdup(group ? group : GOV_DEFAULT_GROUP);
	if (!rc)
		rc = read_publish("mesh.yaml", ymap_get(root, "publish"), &p->publish, err);
	yamltree_free(root);
	if (rc) {
		gov_mesh_free(p);
		return rc;
	}
	*out = p;
	return 0;
}

void gov_mesh_free(struct mesh_policy *p)
{
	if (!p)
		return;
	free(p->path);
	free(p->governance_group);
	publish_rules_free(&p->publish);
	free(p);
}

int gov_load_domain(const char *store, const char *domain, struct domain_info **out, struct mesh_err *err)
{
	if (!mesh_name_ok(domain))
		return mesh_errf(err, -EINVAL, "%s: not a domain name ([a-z0-9][a-z0-9_-]*)", domain);
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/domains/%s/domain.yaml", store, domain);
	struct stat st;
	if (fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT)
		return mesh_errf(err, -ENOENT, "domain %s does not exist; governance creates it with "
				 "'meshctl domain create %s --owner group:TEAM'", domain, domain);
	struct ynode *root = NULL;
	int rc = load_tree(path, &root, err);
	if (rc)
		return rc;
	char rel[PATH_MAX];
	snprintf(rel, sizeof rel, "domains/%s/domain.yaml", domain);
	struct domain_info *d = xcalloc(1, sizeof *d);
	d->name = xstrdup(domain);
	d->path = xstrdup(path);
	const struct ynode *name = ymap_get(root, "domain");
	if (!yscalar(name) || strcmp(yscalar(name), domain))
		rc = mesh_errf(err, -EINVAL, "%s:%d:1: domain: must be \"%s\" (the directory it governs)", path,
			       name ? name->line : 1, domain);
	if (!rc)
		rc = str_list(path, ymap_get(root, "owners"), "owners", &d->owners, &d->n_owners, err);
	for (size_t i = 0; !rc && i < d->n_owners; i++)
		if (!subject_ok(d->owners[i]) || !strcmp(d->owners[i], "*"))
			rc = mesh_errf(err, -EINVAL, "%s:%d: owners: \"%s\" is not user:NAME or group:NAME", path,
				       ymap_get(root, "owners")->line, d->owners[i]);
	if (!rc && d->n_owners == 0)
		rc = mesh_errf(err, -EINVAL, "%s: owners: a domain needs at least one owner", path);
	if (!rc)
		rc = str_list(path, ymap_get(root, "restricted"), "restricted", &d->restricted, &d->n_restricted, err);
	const struct ynode *pub = ymap_get(root, "publish");
	if (!rc) {
		d->has_publish = pub != NULL;
		rc = read_publish(rel, pub, &d->publish, err);
	}
	yamltree_free(root);
	if (rc) {
		gov_domain_free(d);
		return rc;
	}
	*out = d;
	return 0;
}

void gov_domain_free(struct domain_info *d)
{
	if (!d)
		return;
	free(d->name);
	free(d->path);
	free_list(d->owners, d->n_owners);
	free_list(d->restricted, d->n_restricted);
	publish_rules_free(&d->publish);
	free(d);
}

bool gov_is_governance(const struct mesh_policy *p, const struct identity *who)
{
	if (who->uid == 0)
		return true;
	long gid = p ? identity_group_id(p->governance_group) : -1;
	return gid >= 0 && identity_in_group(who, (gid_t)gid);
}

bool gov_is_owner(const struct domain_info *d, const struct identity *who)
{
	for (size_t i = 0; i < d->n_owners; i++)
		if (identity_matches(who, d->owners[i]))
			return true;
	return false;
}

char *gov_owner_list(const struct domain_info *d)
{
	struct strbuf sb = STRBUF_INIT;
	for (size_t i = 0; i < d->n_owners; i++)
		strbuf_printf(&sb, "%s%s", i ? ", " : "", d->owners[i]);
	return strbuf_detach(&sb, NULL);
}

static char *domain_yaml(const char *name, char *const *owners, size_t n, const char *rest)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_printf(&sb, "# Domain %s: its owners and domain policy, kept by the domain team.\n"
		      "apiVersion: meshfs/v1\nkind: Domain\ndomain: %s\nowners:\n", name, name);
	for (size_t i = 0; i < n; i++)
		strbuf_printf(&sb, "  - %s\n", owners[i]);
	if (rest)
		strbuf_puts(&sb, rest);
	return strbuf_detach(&sb, NULL);
}

int gov_create_domain(const char *store, const char *name, char *const *owners, size_t n_owners,
		      struct mesh_err *err)
{
	if (!mesh_name_ok(name))
		return mesh_errf(err, -EINVAL, "%s: not a safe domain name ([a-z0-9][a-z0-9_-]*)", name);
	if (n_owners == 0)
		return mesh_errf(err, -EINVAL, "a domain needs at least one --owner user:NAME or group:NAME");
	for (size_t i = 0; i < n_owners; i++) {
		if (!subject_ok(owners[i]) || !strcmp(owners[i], "*"))
			return mesh_errf(err, -EINVAL, "--owner %s: expected user:NAME or group:NAME", owners[i]);
		if (!strncmp(owners[i], "group:", 6) && identity_group_id(owners[i] + 6) < 0)
			return mesh_errf(err, -EINVAL, "--owner %s: no such group on this host", owners[i]);
		if (!strncmp(owners[i], "user:", 5) && identity_user_id(owners[i] + 5) < 0)
			return mesh_errf(err, -EINVAL, "--owner %s: no such user on this host", owners[i]);
	}
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/domains/%s", store, name);
	/* the store's owner (the mesh service) owns the domain too: its
	 * owners act through the service, which checks gov_is_owner() */
	if (mkdir(path, STORE_DIR_MODE) < 0)
		return mesh_errf(err, -errno, "%s: %s", path,
				 errno == EEXIST ? "the domain exists already" : strerror(errno));
	int rc = 0;
	int fd = mesh_open_dir_at(AT_FDCWD, path);
	if (fd < 0 || fchmod(fd, STORE_DIR_MODE) < 0)
		rc = mesh_errf(err, fd < 0 ? fd : -errno, "%s: %s", path, strerror(fd < 0 ? -fd : errno));
	static const char *subdirs[] = {"grants", "requests"};
	for (size_t i = 0; !rc && i < 2; i++)
		if (mkdirat(fd, subdirs[i], STORE_DIR_MODE) < 0 || fchmodat(fd, subdirs[i], STORE_DIR_MODE, 0) < 0)
			rc = mesh_errf(err, -errno, "%s/%s: %s", path, subdirs[i], strerror(errno));
	if (!rc) {
		char *text = domain_yaml(name, owners, n_owners, NULL);
		rc = mesh_write_file_atomic(fd, "domain.yaml", text, strlen(text), STORE_FILE_MODE, err);
		free(text);
	}
	if (rc && fd >= 0) {
		unlinkat(fd, "grants", AT_REMOVEDIR);
		unlinkat(fd, "requests", AT_REMOVEDIR);
		rmdir(path);
	}
	if (fd >= 0)
		close(fd);
	return rc;
}

int gov_set_owners(const char *store, const struct domain_info *d, char *const *owners, size_t n,
		   struct mesh_err *err)
{
	if (n == 0)
		return mesh_errf(err, -EINVAL, "a domain keeps at least one owner");
	for (size_t i = 0; i < n; i++)
		if (!subject_ok(owners[i]) || !strcmp(owners[i], "*"))
			return mesh_errf(err, -EINVAL, "%s: expected user:NAME or group:NAME", owners[i]);
	/* keep everything after the owners list as written */
	char *text;
	size_t len;
	int rc = mesh_read_file_at(AT_FDCWD, d->path, 1u << 20, &text, &len, err);
	if (rc)
		return rc;
	struct strbuf rest = STRBUF_INIT;
	bool in_owners = false, past = false;
	for (char *p = text; *p;) {
		size_t l = strcspn(p, "\n");
		bool top = l > 0 && p[0] != ' ' && p[0] != '-' && p[0] != '#';
		if (top && !strncmp(p, "owners:", 7))
			in_owners = true;
		else if (top && in_owners)
			in_owners = false, past = true;
		if (past && !in_owners)
			strbuf_add(&rest, p, l + (p[l] == '\n'));
		p += l + (p[l] == '\n');
	}
	free(text);
	char *out = domain_yaml(d->name, owners, n, rest.buf);
	strbuf_release(&rest);
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s/domains/%s", store, d->name);
	int fd = mesh_open_dir_at(AT_FDCWD, dir);
	rc = fd < 0 ? mesh_errf(err, fd, "%s: %s", dir, strerror(-fd))
		    : mesh_write_file_atomic(fd, "domain.yaml", out, strlen(out), STORE_FILE_MODE, err);
	if (fd >= 0)
		close(fd);
	free(out);
	return rc;
}

/* ---- publish rules ---- */

static bool field_present(const struct contract *c, const char *field)
{
	if (!strcmp(field, "description.purpose"))
		return c->purpose && *c->purpose && !strstr(c->purpose, "TODO");
	if (!strcmp(field, "description.usage"))
		return c->usage && *c->usage && !strstr(c->usage, "TODO");
	if (!strcmp(field, "description.limitations"))
		return c->limitations && *c->limitations && !strstr(c->limitations, "TODO");
	if (!strcmp(field, "owner")) {
		for (size_t i = 0; i < c->n_owners; i++)
			if (!strstr(c->owners[i].subject, "TODO"))
				return true;
		return false;
	}
	if (!strcmp(field, "support")) {
		for (size_t i = 0; i < c->n_support; i++)
			if (!strstr(c->support_channels[i], "TODO"))
				return true;
		return false;
	}
	if (!strcmp(field, "tags"))
		return c->n_tags > 0;
	if (!strcmp(field, "name"))
		return c->name && *c->name;
	return true;
}

/* Columns of a CSV/JSONL/Parquet data file whose sampled values look like personal
 * data: their detector mask per column (the first 1000 rows). */
static void sample_pii(int dirfd, const char *file, const struct contract_object *obj, unsigned *kinds)
{
	size_t n = obj->n_props;
	size_t *hits = xcalloc(n * 8 + 1, sizeof *hits), *seen = xcalloc(n + 1, sizeof *seen);
	int fd = mesh_open_regular_at(dirfd, file, O_RDONLY, 0, NULL);
	if (fd >= 0 && strstr(file, ".csv")) {
		struct csv_reader *r = csv_reader_fd(fd, file, 1u << 16);
		struct csv_record rec;
		struct mesh_err err = {0};
		int rows = 0;
		while (rows++ < 1001 && csv_next(r, &rec, &err) == 1) {
			if (rec.row == 1 || rec.n != n)
				continue;
			for (size_t i = 0; i < n; i++) {
				if (!rec.fields[i].len)
					continue;
				seen[i]++;
				unsigned k = pii_detect_value(rec.fields[i].ptr, rec.fields[i].len);
				for (int b = 0; b < 8; b++)
					hits[i * 8 + b] += (k >> b) & 1;
			}
		}
		csv_reader_free(r);
	} else if (fd >= 0 && strstr(file, ".parquet")) {
		/* decoded values of the columns the contract names; a column that
		 * cannot be decoded is judged by its name only */
		struct parquet_file *pf = NULL;
		struct mesh_err err = {0};
		if (parquet_open(fd, file, &pf, &err))
			pf = NULL;
		for (size_t i = 0; pf && i < n; i++) {
			size_t col = parquet_num_columns(pf);
			for (size_t k = 0; k < parquet_num_columns(pf); k++)
				if (!strcmp(parquet_column_at(pf, k)->name, obj->props[i].name))
					col = k;
			struct parquet_cursor *cur = NULL;
			if (col < parquet_num_columns(pf) && !parquet_cursor_open(pf, col, &cur, &err)) {
				const char *v;
				size_t len;
				bool is_null;
				for (int rows = 0; rows < 1000 && parquet_cursor_next(cur, &v, &len, &is_null, &err) == 1;
				     rows++) {
					if (is_null || !len)
						continue;
					seen[i]++;
					unsigned k = pii_detect_value(v, len);
					for (int b = 0; b < 8; b++)
						hits[i * 8 + b] += (k >> b) & 1;
				}
			}
			parquet_cursor_free(cur);
		}
		parquet_close(pf);
	} else if (fd >= 0 && (strstr(file, ".jsonl") || strstr(file, ".ndjson"))) {
		FILE *f = fdopen(dup(fd), "r");
		char *line = NULL;
		size_t cap = 0;
		for (int rows = 0; f && rows < 1000 && getline(&line, &cap, f) > 0; rows++) {
			json_t *o = json_loads(line, 0, NULL);
			for (size_t i = 0; o && i < n; i++) {
				json_t *v = json_object_get(o, obj->props[i].name);
				if (!json_is_string(v) || !json_string_length(v))
					continue;
				seen[i]++;
				unsigned k = pii_detect_value(json_string_value(v), json_string_length(v));
				for (int b = 0; b < 8; b++)
					hits[i * 8 + b] += (k >> b) & 1;
			}
			json_decref(o);
		}
		free(line);
		if (f)
			fclose(f);
	}
	if (fd >= 0)
		close(fd);
	for (size_t i = 0; i < n; i++) {
		kinds[i] = pii_column_name_hint(obj->props[i].name);
		for (int b = 0; b < 8 && seen[i]; b++)
			if ((double)hits[i * 8 + b] >= PII_SHARE * (double)seen[i])
				kinds[i] |= 1u << b;
	}
	free(hits);
	free(seen);
}

/* Where a required field is written, or where it would go. */
static struct contract_pos field_pos(const struct contract *c, const char *field)
{
	struct contract_pos none = {0, 0};
	if (!strcmp(field, "description.purpose"))
		return c->pos_purpose.line ? c->pos_purpose : c->pos_description;
	if (!strcmp(field, "description.usage"))
		return c->pos_usage.line ? c->pos_usage : c->pos_description;
	if (!strcmp(field, "description.limitations"))
		return c->pos_limitations.line ? c->pos_limitations : c->pos_description;
	if (!strcmp(field, "owner"))
		return c->pos_team;
	if (!strcmp(field, "support"))
		return c->pos_support;
	if (!strcmp(field, "tags"))
		return c->pos_tags;
	if (!strcmp(field, "name"))
		return c->pos_name;
	return none;
}

/* "mesh.yaml:12:3": where a rule is written (its publish: section when the
 * key's place is unknown). */
static void rule_where(const struct publish_rules *r, struct gov_rule_pos at, char *buf, size_t size)
{
	snprintf(buf, size, "%s:%d:%d", r->source, at.line ? at.line : r->line, at.line ? at.col : 1);
}

static size_t check_rules(const struct publish_rules *r, const struct contract *c, int dirfd,
			  struct strbuf *out)
{
	size_t n = 0;
	char where[PATH_MAX + 32], here[PATH_MAX + 32];
	rule_where(r, r->at_required, where, sizeof where);
	for (size_t i = 0; i < r->n_required; i++)
		if (!field_present(c, r->required_fields[i])) {
			strbuf_printf(out, "%s: requiredFields: %s is missing or still a TODO placeholder "
				      "(rule defined in %s)\n",
				      contract_where(c, field_pos(c, r->required_fields[i]), here, sizeof here),
				      r->required_fields[i], where);
			n++;
		}
	rule_where(r, r->at_columns, where, sizeof where);
	for (size_t p = 0; p < r->n_patterns; p++) {
		regex_t re;
		if (regcomp(&re, r->column_patterns[p], REG_EXTENDED | REG_NOSUB))
			continue;
		for (size_t o = 0; o < c->n_objects; o++)
			for (size_t k = 0; k < c->objects[o].n_props; k++) {
				const struct contract_property *prop = &c->objects[o].props[k];
				if (regexec(&re, prop->name, 0, NULL, 0)) {
					char *name = mesh_escape_text(prop->name);
					strbuf_printf(out, "%s: columnNames: column \"%s\" does not match %s (rule "
						      "defined in %s)\n", contract_where(c, prop->name_pos, here, sizeof here),
						      name, r->column_patterns[p], where);
					free(name);
					n++;
				}
			}
		regfree(&re);
	}
	rule_where(r, r->at_allowed, where, sizeof where);
	for (size_t o = 0; r->n_allowed && o < c->n_objects; o++)
		for (size_t k = 0; k < c->objects[o].n_props; k++) {
			const struct contract_property *prop = &c->objects[o].props[k];
			if (!prop->classification)
				continue;
			bool ok = false;
			for (size_t a = 0; a < r->n_allowed; a++)
				ok |= !strcmp(prop->classification, r->allowed_classifications[a]);
			if (!ok) {
				const char *hint = name_hint_closest(prop->classification,
								     (const char *const *)r->allowed_classifications,
								     r->n_allowed);
				strbuf_printf(out, "%s: allowedClassifications: column \"%s\" is classified \"%s\", "
					      "not one of the allowed classifications%s%s%s (rule defined in %s)\n",
					      contract_where(c, prop->class_pos, here, sizeof here), prop->name,
					      prop->classification, hint ? "; did you mean '" : "", hint ? hint : "",
					      hint ? "'?" : "", where);
				n++;
			}
		}
	rule_where(r, r->at_classify, where, sizeof where);
	if (r->classify_personal_data && dirfd >= 0) {
		for (size_t o = 0; o < c->n_objects; o++) {
			const struct contract_object *obj = &c->objects[o];
			const char *file = obj->physical_name ? obj->physical_name : obj->name;
			unsigned *kinds = xcalloc(obj->n_props + 1, sizeof *kinds);
			sample_pii(dirfd, file, obj, kinds);
			for (size_t k = 0; k < obj->n_props; k++) {
				const struct contract_property *prop = &obj->props[k];
				const char *cls = prop->classification;
				if (kinds[k] && (!cls || !strcmp(cls, "public"))) {
					strbuf_printf(out, "%s: classifyPersonalData: column \"%s\" of %s holds what "
						      "looks like personal data (%s) but is %s (rule defined in %s)\n",
						      contract_where(c, cls ? prop->class_pos : prop->pos, here, sizeof here),
						      prop->name, file, pii_kind_name(kinds[k]),
						      cls ? "classified public" : "not classified", where);
					n++;
				}
			}
			free(kinds);
		}
	}
	return n;
}

size_t gov_check_contract(const struct mesh_policy *mesh, const struct domain_info *domain,
			  const struct contract *c, int dirfd, char **problems)
{
	struct strbuf out = STRBUF_INIT;
	size_t n = 0;
	if (mesh)
		n += check_rules(&mesh->publish, c, dirfd, &out);
	if (domain && domain->has_publish)
		n += check_rules(&domain->publish, c, dirfd, &out);
	if (out.len)
		out.buf[--out.len] = '\0';
	*problems = strbuf_detach(&out, NULL);
	return n;
}
