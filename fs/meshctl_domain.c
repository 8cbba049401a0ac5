/*
 * meshctl_domain.c - `meshctl domain create|show|list|owners`: domains and
 * their owners (governance creates domains; owners manage their owners).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "governance.h"
#include "identity.h"
#include "meshctl_cmds.h"
#include "mesh_util.h"
#include "scope.h"
#include "store.h"

#include <jansson.h>

static int usage(const struct meshctl_ctx *ctx, bool ok)
{
	(void)ctx;
	FILE *out = ok ? stdout : stderr;
	fprintf(out, "usage: meshctl domain create NAME --owner SUBJECT...\n"
		"       meshctl domain show NAME\n"
		"       meshctl domain list\n"
		"       meshctl domain owners NAME [--add SUBJECT]... [--remove SUBJECT]...\n"
		"SUBJECT is user:NAME or group:NAME.  create is for governance (root or the\n"
		"governance group of mesh.yaml); owners is for the domain's owners and governance.\n");
	return ok ? MESHCTL_OK : MESHCTL_USAGE;
}

static int create(const struct meshctl_ctx *ctx, int argc, char **argv)
{
	if (argc < 3)
		return usage(ctx, false);
	const char *name = argv[2];
	char **owners = xcalloc((size_t)argc, sizeof *owners);
	size_t n = 0;
	for (int i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "--owner") && i + 1 < argc)
			owners[n++] = argv[++i];
		else {
			free(owners);
			return usage(ctx, false);
		}
	}
	struct mesh_err err = {0};
	struct mesh_policy *mesh = NULL;
	const struct identity *me = &ctx->caller;
	int rc = store_check(ctx->store, &err);
	if (!rc)
		rc = gov_load_mesh(ctx->store, &mesh, &err);
	/* the caller's identity decides (the service runs as the store's owner) */
	if (!rc && !gov_is_governance(mesh, me))
		rc = mesh_errf(&err, -EACCES, "%s is not governance: domains are created by root or members of "
			       "group %s", me->user, mesh->governance_group);
	if (!rc)
		rc = gov_create_domain(ctx->store, name, owners, n, &err);
	if (!rc)
		store_bump_generation(ctx->store, NULL);
	gov_mesh_free(mesh);
	free(owners);
	if (rc) {
		meshctl_fail(ctx, "domain create", "%s", err.msg);
		return meshctl_exit_for(rc);
	}
	if (ctx->json) {
		json_t *doc = json_object();
		json_object_set_new(doc, "created", json_string(name));
		meshctl_json_print(doc);
	} else {
		printf("created domain %s\n", name);
	}
	return MESHCTL_OK;
}

static json_t *owners_json(const struct domain_info *d)
{
	json_t *a = json_array();
	for (size_t i = 0; i < d->n_owners; i++)
		json_array_append_new(a, json_string(d->owners[i]));
	return a;
}

static int show(const struct meshctl_ctx *ctx, const char *name)
{
	struct domain_info *d = NULL;
	struct mesh_err err = {0};
	int rc = gov_load_domain(ctx->store, name, &d, &err);
	if (rc) {
		meshctl_fail(ctx, "domain show", "%s", err.msg);
		return meshctl_exit_for(rc);
	}
	/* the names of restricted products are for those who administer them */
	struct scope *sc = NULL;
	scope_open(ctx->store, &ctx->caller, &sc, NULL);
	bool admin = scope_administers(sc, d->name);
	scope_close(sc);
	if (ctx->json) {
		json_t *doc = json_object(), *restricted = json_array();
		json_object_set_new(doc, "domain", json_string(d->name));
		json_object_set_new(doc, "owners", owners_json(d));
		json_object_set_new(doc, "file", json_string(d->path));
		for (size_t i = 0; admin && i < d->n_restricted; i++)
			json_array_append_new(restricted, json_string(d->restricted[i]));
		json_object_set_new(doc, "restricted", restricted);
		json_object_set_new(doc, "domain_publish_rules", json_boolean(d->has_publish));
		meshctl_json_print(doc);
		gov_domain_free(d);
		return MESHCTL_OK;
	}
	char *owners = gov_owner_list(d);
	char *safe = mesh_escape_text(owners);
	printf("domain      %s\nowners      %s\nfile        %s\n", d->name, safe, d->path);
	free(safe);
	for (size_t i = 0; admin && i < d->n_restricted; i++) {
		safe = mesh_escape_text(d->restricted[i]);
		printf("restricted  %s\n", safe);
		free(safe);
	}
	if (d->has_publish)
		printf("publish     domain rules in addition to the mesh's\n");
	free(owners);
	gov_domain_free(d);
	return MESHCTL_OK;
}

static int list(const struct meshctl_ctx *ctx)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/domains", ctx->store);
	struct mesh_err err = {0};
	if (store_check(ctx->store, &err)) {
		meshctl_fail(ctx, "domain list", "%s", err.msg);
		return MESHCTL_ERROR;
	}
	int dfd = mesh_open_dir_at(AT_FDCWD, path);
	DIR *dir = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!dir) {
		int e = dfd < 0 ? -dfd : errno;
		if (dfd >= 0)
			close(dfd);
		meshctl_fail(ctx, "domain list", "%s: %s", path, strerror(e));
		return MESHCTL_ERROR;
	}
	struct dirent *de;
	int status = MESHCTL_OK;
	json_t *all = ctx->json ? json_array() : NULL;
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		struct domain_info *d = NULL;
		mesh_err_clear(&err);
		if (gov_load_domain(ctx->store, de->d_name, &d, &err)) {
			fprintf(stderr, "meshctl domain list: %s\n", err.msg);
			status = MESHCTL_FAILED;
			continue;
		}
		if (all) {
			json_t *o = json_object();
			json_object_set_new(o, "domain", json_string(d->name));
			json_object_set_new(o, "owners", owners_json(d));
			json_array_append_new(all, o);
		} else {
			char *owners = gov_owner_list(d);
			char *safe = mesh_escape_text(owners);
			printf("%-20s %s\n", d->name, safe);
			free(safe);
			free(owners);
		}
		gov_domain_free(d);
	}
	closedir(dir);
	if (all) {
		json_t *doc = json_object();
		json_object_set_new(doc, "domains", all);
		meshctl_json_print(doc);
	}
	return status;
}

static int owners(const struct meshctl_ctx *ctx, int argc, char **argv)
{
	if (argc < 3)
		return usage(ctx, false);
	struct domain_info *d = NULL;
	struct mesh_err err = {0};
	int rc = gov_load_domain(ctx->store, argv[2], &d, &err);
	if (rc) {
		meshctl_fail(ctx, "domain owners", "%s", err.msg);
		return meshctl_exit_for(rc);
	}
	if (argc == 3) {
		if (ctx->json) {
			json_t *doc = json_object();
			json_object_set_new(doc, "domain", json_string(d->name));
			json_object_set_new(doc, "owners", owners_json(d));
			meshctl_json_print(doc);
		}
		for (size_t i = 0; !ctx->json && i < d->n_owners; i++) {
			char *safe = mesh_escape_text(d->owners[i]);
			printf("%s\n", safe);
			free(safe);
		}
		gov_domain_free(d);
		return MESHCTL_OK;
	}
	const struct identity *me = &ctx->caller;
	struct mesh_policy *mesh = NULL;
	gov_load_mesh(ctx->store, &mesh, NULL);
	if (!gov_is_owner(d, me) && !gov_is_governance(mesh, me)) {
		char *list = gov_owner_list(d);
		meshctl_fail(ctx, "domain owners", "%s is not an owner of domain %s (its owners: %s)", me->user,
			     d->name, list);
		free(list);
		gov_domain_free(d);
		gov_mesh_free(mesh);
		return MESHCTL_DENIED;
	}
	gov_mesh_free(mesh);
	char **next = xcalloc(d->n_owners + (size_t)argc, sizeof *next);
	size_t n = 0;
	for (size_t i = 0; i < d->n_owners; i++)
		next[n++] = d->owners[i];
	for (int i = 3; i + 1 < argc || i < argc; i += 2) {
		if (i + 1 >= argc || (strcmp(argv[i], "--add") && strcmp(argv[i], "--remove"))) {
			free(next);
			gov_domain_free(d);
			return usage(ctx, false);
		}
		const char *subject = argv[i + 1];
		size_t k = 0;
		while (k < n && strcmp(next[k], subject))
			k++;
		if (!strcmp(argv[i], "--add") && k == n)
			next[n++] = (char *)subject;
		else if (!strcmp(argv[i], "--remove") && k < n)
			next[k] = next[--n];
	}
	rc = gov_set_owners(ctx->store, d, next, n, &err);
	free(next);
	if (!rc)
		store_bump_generation(ctx->store, NULL);
	int status = MESHCTL_OK;
	if (rc) {
		meshctl_fail(ctx, "domain owners", "%s", err.msg);
		status = meshctl_exit_for(rc);
	} else {
		struct domain_info *after = NULL;
		if (!gov_load_domain(ctx->store, argv[2], &after, NULL)) {
			if (ctx->json) {
				json_t *doc = json_object();
				json_object_set_new(doc, "domain", json_string(after->name));
				json_object_set_new(doc, "owners", owners_json(after));
				meshctl_json_print(doc);
			} else {
				char *list = gov_owner_list(after);
				char *safe = mesh_escape_text(list);
				printf("domain %s owners: %s\n", after->name, safe);
				free(safe);
				free(list);
			}
			gov_domain_free(after);
		}
	}
	gov_domain_free(d);
	return status;
}

int meshctl_cmd_domain(const struct meshctl_ctx *ctx, int argc, char **argv)
{
	if (argc < 2)
		return usage(ctx, false);
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
		return usage(ctx, true);
	if (!strcmp(argv[1], "create"))
		return create(ctx, argc, argv);
	if (!strcmp(argv[1], "show") && argc == 3)
		return show(ctx, argv[2]);
	if (!strcmp(argv[1], "list") && argc == 2)
		return list(ctx);
	if (!strcmp(argv[1], "owners"))
		return owners(ctx, argc, argv);
	return usage(ctx, false);
}
