/*
 * meshctl_glue.c - temporary bridges from the store commands to areas that
 * are not wired yet.  Each function here is replaced by its area's module.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "meshctl_cmds.h"

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
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/domains/%s", ctx->store, domain);
	if (access(path, F_OK) < 0)
		return mesh_errf(err, -ENOENT, "%s: domain %s does not exist", action, domain);
	return 0;
}
