/*
 * publish_rules.c - the checks of a publish, one function per concern
 * (declared in include/publish_rules.h, run in order by publish.c).
 *
 * Each check adds lines to the report; only a failed required check
 * blocks the install.  Not here: parsing (contract.c, schema.c), data
 * validation itself (validate.c), ownership rules (domain.c), governance
 * rules (policy.c).
 */
#include "publish_rules.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "governance.h"
#include "identity.h"
#include "index.h"
#include "mesh_util.h"
#include "progress.h"
#include "schema.h"
#include "store.h"
#include "validate.h"

/* ---- schema and compatibility ---- */

/* The highest existing version lower than `version`: the release a new
 * version is compared with (a patch to an old line is compared with its
 * own line's newest, not with a later major). */
static char *predecessor(const char *store, const char *domain, const char *product,
			 const char *version)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/domains/%s/%s", store, domain, product);
	int fd = mesh_open_dir_at(AT_FDCWD, path);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	char *best = NULL;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || semver_parse(de->d_name, NULL))
			continue;
		if (semver_cmp_str(de->d_name, version) < 0 && (!best || semver_cmp_str(de->d_name, best) > 0)) {
			free(best);
			best = xstrdup(de->d_name);
		}
	}
	closedir(d);
	return best;
}

static bool is_major_bump(const char *old, const char *new)
{
	struct semver a, b;
	if (semver_parse(old, &a) || semver_parse(new, &b))
		return false;
	/* 0.y.z: anything may change (SemVer §4), as may a new major */
	return b.major > a.major || b.major == 0;
}

void publish_check_schema(struct publish_ctx *pc, struct publish_report *r)
{
	const struct contract *c = pc->contract;
	struct mesh_err err = {0};
	if (pc->has_schema) {
		char *text = NULL;
		size_t len = 0;
		struct table_schema *given = NULL;
		char path[PATH_MAX];
		snprintf(path, sizeof path, "%s/schema.json", pc->release_dir);
		struct table_schema *derived = NULL;
		struct schema_change *changes = NULL;
		size_t n = 0;
		if (mesh_read_file_at(pc->dirfd, "schema.json", 16u << 20, &text, &len, &err) ||
		    schema_parse(text, len, path, &given, &err)) {
			publish_report_add(r, "schema", false, false, "%s", err.msg);
		} else if (c->n_objects < 1 || schema_from_contract_object(&c->objects[0], c, &derived) ||
			   schema_diff(derived, given, &changes, &n)) {
			publish_report_add(r, "schema", false, false, "%s: cannot compare it with the contract", path);
		} else if (n) {
			/* a shipped schema.json must say what the contract says: the
			 * difference is named, from the contract's view to the file's */
			struct strbuf diff = STRBUF_INIT;
			for (size_t i = 0; i < n; i++)
				strbuf_printf(&diff, "%s%s", i ? "; " : "", changes[i].description);
			publish_report_add(r, "schema", false, false,
					   "%s disagrees with the contract (contract -> schema.json): %s; remove it "
					   "(the mount derives schema.json from the contract) or make it agree",
					   path, diff.buf);
			strbuf_release(&diff);
		} else {
			publish_report_add(r, "schema", true, false, "schema.json given, agrees with the contract");
		}
		schema_changes_free(changes, n);
		schema_free(derived);
		schema_free(given);
		free(text);
	} else if (c->n_objects >= 1) {
		struct table_schema *derived = NULL;
		if (schema_from_contract_object(&c->objects[0], c, &derived) ||
		    schema_to_json(derived, &pc->schema_json)) {
			publish_report_add(r, "schema", false, false, "cannot derive schema.json from the contract");
		} else {
			publish_report_add(r, "schema", true, false, "schema.json derived from the contract's "
					 "schema object '%s'", c->objects[0].name);
		}
		schema_free(derived);
	}

	/* compatibility with the previous version of the product */
	char *prev = predecessor(pc->store, c->domain, c->data_product, c->version);
	if (!prev) {
		publish_report_add(r, "compatibility", true, false, "first version of %s/%s",
				 c->domain, c->data_product);
		return;
	}
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/domains/%s/%s/%s/contract.yaml", pc->store, c->domain,
		 c->data_product, prev);
	struct contract *old = NULL;
	if (contract_load(path, &old, &err)) {
		publish_report_add(r, "compatibility", true, true, "cannot read %s to compare: %s", prev, err.msg);
		free(prev);
		return;
	}
	struct strbuf breaking = STRBUF_INIT, minor = STRBUF_INIT;
	size_t n_breaking = 0;
	for (size_t i = 0; i < c->n_objects; i++) {
		const struct contract_object *obj = &c->objects[i];
		const struct contract_object *old_obj = NULL;
		for (size_t k = 0; k < old->n_objects; k++)
			if (!strcmp(old->objects[k].name, obj->name))
				old_obj = &old->objects[k];
		if (!old_obj)
			continue;
		struct table_schema *a = NULL, *b = NULL;
		struct schema_change *changes = NULL;
		size_t n = 0;
		if (!schema_from_contract_object(old_obj, old, &a) && !schema_from_contract_object(obj, c, &b) &&
		    !schema_diff(a, b, &changes, &n)) {
			for (size_t k = 0; k < n; k++) {
				struct strbuf *sb = changes[k].breaking ? &breaking : &minor;
				strbuf_printf(sb, "%s%s: %s%s", sb->len ? "\n" : "", obj->name, changes[k].description,
					      changes[k].breaking ? " BREAKING" : "");
				n_breaking += changes[k].breaking;
			}
		}
		schema_changes_free(changes, n);
		schema_free(a);
		schema_free(b);
	}
	for (size_t k = 0; k < old->n_objects; k++) {
		bool kept = false;
		for (size_t i = 0; i < c->n_objects; i++)
			kept |= !strcmp(old->objects[k].name, c->objects[i].name);
		if (!kept) {
			strbuf_printf(&breaking, "%sschema object %s removed", breaking.len ? "\n" : "",
				      old->objects[k].name);
			n_breaking++;
		}
	}
	if (n_breaking && !is_major_bump(prev, c->version))
		publish_report_add(r, "compatibility", false, false,
				 "%zu breaking change(s) since %s need a new major version (%s is not one):\n%s",
				 n_breaking, prev, c->version, breaking.buf);
	else
		publish_report_add(r, "compatibility", true, false, "since %s: %zu breaking%s%s%s%s%s", prev, n_breaking,
				   n_breaking ? " (allowed: new major version):\n" : "", breaking.len ? breaking.buf : "",
				   n_breaking ? "\n" : ", ", minor.len ? minor.buf : "no other changes", "");
	strbuf_release(&breaking);
	strbuf_release(&minor);
	contract_free(old);
	free(prev);
}

/* ---- domain and governance ---- */

int publish_check_domain(const char *store, const struct contract *c, const struct identity *caller,
			 struct mesh_err *err)
{
	return meshfs_check_publisher(store, c->domain, "publish", caller, err);
}

void publish_check_governance(const char *store, const struct contract *c, int dirfd,
			      struct publish_report *r)
{
	struct mesh_policy *mesh = NULL;
	struct domain_info *domain = NULL;
	struct mesh_err err = {0};
	if (gov_load_mesh(store, &mesh, &err) || gov_load_domain(store, c->domain, &domain, &err)) {
		/* unreadable rules must not let anything through */
		publish_report_add(r, "governance", false, false, "%s", err.msg);
	} else {
		char *problems = NULL;
		size_t n = gov_check_contract(mesh, domain, c, dirfd, &problems);
		if (n)
			publish_report_add(r, "governance", false, false, "%zu rule(s) violated:\n%s", n, problems);
		else
			publish_report_add(r, "governance", true, false, "mesh rules%s passed",
					   domain->has_publish ? " and domain rules" : "");
		free(problems);
	}
	gov_mesh_free(mesh);
	gov_domain_free(domain);
}

/* ---- data ---- */

void publish_check_data(struct publish_ctx *pc, const char *file, struct publish_report *r)
{
	char what[300];
	snprintf(what, sizeof what, "data %s", file);
	const struct contract_object *obj = contract_object_for_file(pc->contract, file);
	if (!obj) {
		publish_report_add(r, what, false, false, "no schema object of the contract describes %s "
				   "(name its object's physicalName: %s)", file, file);
		return;
	}
	struct validate_options vo = {.now = pc->now, .unique_memory = pc->unique_memory, .threads = pc->threads,
				      .progress = pc->progress, .sql_max_bytes = pc->sql_max_bytes};
	char label[320];
	snprintf(label, sizeof label, "validating %s", file);
	progress_relabel(pc->progress, label);
	struct validate_report *rep = NULL;
	struct mesh_err err = {0};
	if (validate_file(pc->contract, obj, pc->dirfd, file, &vo, &rep, &err)) {
		publish_report_add(r, what, false, false, "%s", err.msg);
		return;
	}
	char *text = validate_report_text(rep, true);
	if (!rep->checked)
		publish_report_add(r, what, !validate_report_failed(rep), false,
				   "%llu bytes, opaque format: checksummed, content not checked%s%s",
				   (unsigned long long)rep->bytes, *text ? "\n" : "", text);
	else if (validate_report_failed(rep))
		publish_report_add(r, what, false, false, "%llu rows; %s", (unsigned long long)rep->rows, text);
	else
		publish_report_add(r, what, true, false, "%llu rows, %zu rules passed%s%s",
				   (unsigned long long)rep->rows, rep->n_rules, *text ? "\n" : "", text);
	free(text);
	pc->file_reports = xrealloc(pc->file_reports, (pc->n_files + 1) * sizeof *pc->file_reports);
	pc->file_reports[pc->n_files++] = rep;
}

char *publish_quality_json(struct publish_ctx *pc, const struct publish_report *r)
{
	json_t *root = json_object();
	const struct contract *c = pc->contract;
	json_object_set_new(root, "domain", json_string(c->domain));
	json_object_set_new(root, "product", json_string(c->data_product));
	json_object_set_new(root, "version", json_string(c->version));
	struct timespec now = {pc->now, 0};
	char stamp[40];
	mesh_time_rfc3339(&now, stamp, sizeof stamp);
	json_object_set_new(root, "checked_at", json_string(stamp));
	json_object_set_new(root, "passed", json_boolean(!r->failed));
	json_t *checks = json_array();
	for (size_t i = 0; i < r->n_checks; i++) {
		json_t *jc = json_object();
		json_object_set_new(jc, "check", json_string(r->checks[i].what));
		json_object_set_new(jc, "passed", json_boolean(r->checks[i].passed));
		json_object_set_new(jc, "severity", json_string(r->checks[i].warning ? "warning" : "error"));
		if (r->checks[i].detail)
			json_object_set_new(jc, "detail", json_string(r->checks[i].detail));
		json_array_append_new(checks, jc);
	}
	json_object_set_new(root, "checks", checks);
	json_t *files = json_array();
	for (size_t i = 0; i < pc->n_files; i++)
		json_array_append_new(files, validate_report_json(pc->file_reports[i]));
	json_object_set_new(root, "files", files);
	char *out = mesh_json_text(root);
	json_decref(root);
	return out;
}

void publish_classified_columns(struct publish_ctx *pc, const char *file,
				const struct manifest_column **cols, size_t *n)
{
	*cols = NULL;
	*n = 0;
	const struct contract_object *obj = contract_object_for_file(pc->contract, file);
	if (!obj)
		return;
	struct manifest_column *out = xcalloc(obj->n_props + 1, sizeof *out);
	size_t k = 0;
	for (size_t i = 0; i < obj->n_props; i++) {
		const char *cls = obj->props[i].classification;
		/* "public" is a classification that never restricts */
		if (!cls || !strcasecmp(cls, "public"))
			continue;
		out[k].name = xstrdup(obj->props[i].name);
		out[k].classification = xstrdup(cls);
		k++;
	}
	*cols = out;
	*n = k;
}

void publish_free_columns(struct manifest_column *cols, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(cols[i].name);
		free(cols[i].classification);
	}
	free(cols);
}

void publish_after_install(struct publish_ctx *pc, const struct manifest *m)
{
	/* Nothing to write but the release: every host's index is a local
	 * cache that refreshes itself when the generation moves (index.h). */
	(void)pc;
	(void)m;
}

void publish_ctx_release(struct publish_ctx *pc)
{
	free(pc->schema_json);
	pc->schema_json = NULL;
	for (size_t i = 0; i < pc->n_files; i++)
		validate_report_free(pc->file_reports[i]);
	free(pc->file_reports);
	pc->file_reports = NULL;
	pc->n_files = 0;
}

int meshfs_check_publisher(const char *store, const char *domain, const char *action,
			   const struct identity *caller, struct mesh_err *err)
{
	struct domain_info *d = NULL;
	struct mesh_policy *mesh = NULL;
	int rc = gov_load_domain(store, domain, &d, err);
	if (rc)
		return mesh_err_prefix(err, "%s: ", action), rc;
	if (gov_load_mesh(store, &mesh, err)) {
		/* without the mesh policy only the domain's owners act */
		mesh = NULL;
		mesh_err_clear(err);
	}
	/* the caller's identity decides, explicitly: the mesh service runs
	 * as the store's owner, so the store's permissions say nothing */
	if (!gov_is_owner(d, caller) && !gov_is_governance(mesh, caller)) {
		char *owners = gov_owner_list(d);
		rc = mesh_errf(err, -EACCES, "%s: %s is not an owner of domain %s (its owners: %s; governance: "
			       "root and group %s)", action, caller->user, domain, owners,
			       mesh ? mesh->governance_group : GOV_DEFAULT_GROUP);
		free(owners);
	}
	gov_domain_free(d);
	gov_mesh_free(mesh);
	return rc;
}
