/*
 * meshctl_glue.c - small bridges from the store commands to other areas.
 */
#include <stdio.h>

#include "governance.h"
#include "meshctl_cmds.h"
#include "publish.h"

const char *meshctl_default_mesh_yaml(void)
{
	return gov_default_mesh_yaml();
}

int meshctl_check_publisher(const struct meshctl_ctx *ctx, const char *domain,
			    const char *action, struct mesh_err *err)
{
	return meshfs_check_publisher(ctx->store, domain, action, err);
}
