/*
 * meshctl_discovery.h - meshctl's discovery commands (fs/cli/): lineage,
 * show.  Every one filters by ctx->caller (visibility.h).
 */
#ifndef MESHCTL_DISCOVERY_H
#define MESHCTL_DISCOVERY_H

#include "meshctl.h"

int meshctl_cmd_lineage(const struct meshctl_ctx *ctx, int argc, char **argv);
int meshctl_cmd_show(const struct meshctl_ctx *ctx, int argc, char **argv);

#define MESHCTL_DISCOVERY_COMMANDS \
	{"show", meshctl_cmd_show, "one product: owners, status, SLA, quality, versions, inputs, outputs"}, \
	{"lineage", meshctl_cmd_lineage, "what a product is built from and what is built from it"},

#endif
