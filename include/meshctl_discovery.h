/*
 * meshctl_discovery.h - meshctl's discovery commands (fs/cli/): lineage,
 * show.  Every one filters by ctx->caller (visibility.h).
 */
#ifndef MESHCTL_DISCOVERY_H
#define MESHCTL_DISCOVERY_H

#include "meshctl.h"

int meshctl_cmd_lineage(const struct meshctl_ctx *ctx, int argc, char **argv);

#define MESHCTL_DISCOVERY_COMMANDS \
	{"lineage", meshctl_cmd_lineage, "what a product is built from and what is built from it"},

#endif
