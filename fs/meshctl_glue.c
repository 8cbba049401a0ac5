/*
 * meshctl_glue.c - temporary bridges from the store commands to areas that
 * are not wired yet.  Each function here is replaced by its area's module.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <fcntl.h>
#include <sys/stat.h>

#include "meshctl_cmds.h"
#include "mesh_util.h"
#include "publish.h"
#include "store.h"

const char *meshctl_default_mesh_yaml(void)
{
	return NULL;
}

int meshctl_cmd_draft(const struct meshctl_ctx *ctx, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	meshctl_fail(ctx, "init", "drafting a contract from data is not available in this build");
	return MESHCTL_ERROR;
}

int meshctl_check_publisher(const struct meshctl_ctx *ctx, const char *domain,
			    const char *action, struct mesh_err *err)
{
	return meshfs_check_publisher(ctx->store, domain, action, err);
}

/* `meshctl domain create NAME --owner SUBJECT...`: the first cut, until the
 * domain module owns domain files. */
int meshctl_cmd_domain(const struct meshctl_ctx *ctx, int argc, char **argv)
{
	if (argc < 3 || strcmp(argv[1], "create")) {
		meshctl_fail(ctx, "domain", "usage: meshctl domain create NAME --owner SUBJECT...");
		return MESHCTL_USAGE;
	}
	const char *name = argv[2];
	if (!mesh_name_ok(name)) {
		meshctl_fail(ctx, "domain", "%s: not a safe name ([a-z0-9][a-z0-9_-]*)", name);
		return MESHCTL_USAGE;
	}
	struct strbuf yaml = STRBUF_INIT;
	strbuf_printf(&yaml, "apiVersion: meshfs/v1\nkind: Domain\ndomain: %s\nowners:\n", name);
	for (int i = 3; i + 1 < argc; i += 2)
		if (!strcmp(argv[i], "--owner"))
			strbuf_printf(&yaml, "  - %s\n", argv[i + 1]);
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/domains/%s", ctx->store, name);
	struct mesh_err err = {0};
	int rc = store_check(ctx->store, &err);
	if (!rc && mkdir(path, 02775) < 0)
		rc = mesh_errf(&err, -errno, "%s: %s", path, strerror(errno));
	if (!rc && chmod(path, 02775) < 0)
		rc = mesh_errf(&err, -errno, "%s: %s", path, strerror(errno));
	if (!rc) {
		int fd = open(path, O_RDONLY | O_DIRECTORY);
		rc = mesh_write_file_atomic(fd, "domain.yaml", yaml.buf, yaml.len, 0644, &err);
		close(fd);
	}
	strbuf_release(&yaml);
	if (rc) {
		meshctl_fail(ctx, "domain", "%s", err.msg);
		return meshctl_exit_for(rc);
	}
	printf("created domain %s\n", name);
	return MESHCTL_OK;
}

int meshctl_usage_status(const struct meshctl_ctx *ctx, FILE *out)
{
	(void)ctx;
	(void)out;
	return MESHCTL_OK;
}
