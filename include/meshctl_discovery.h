/*
 * meshctl_discovery.h - meshctl's discovery commands (fs/cli/): lineage,
 * show.  Every one filters by ctx->caller (visibility.h).
 */
#ifndef MESHCTL_DISCOVERY_H
#define MESHCTL_DISCOVERY_H

#include <stddef.h>

#include "meshctl.h"

int meshctl_cmd_lineage(const struct meshctl_ctx *ctx, int argc, char **argv);
int meshctl_cmd_show(const struct meshctl_ctx *ctx, int argc, char **argv);
int meshctl_cmd_search(const struct meshctl_ctx *ctx, int argc, char **argv);
int meshctl_cmd_mcp(const struct meshctl_ctx *ctx, int argc, char **argv);
int meshctl_cmd_catalog(const struct meshctl_ctx *ctx, int argc, char **argv);

/* The search `meshctl search` runs (the index rebuilt when stale), hits
 * the caller `who` may discover, best first, ties by readers over 30 days,
 * from the index and usage under `state_dir` (--state-dir; NULL: the
 * default).  *hits is malloc'ed (index_hits_free). */
struct index_hit;
struct index_query;
struct mesh_err;
int meshctl_search_run(const char *store, const char *state_dir, const struct identity *who,
		       const struct index_query *q, size_t limit, struct index_hit **hits, size_t *n,
		       struct mesh_err *err);

#define MESHCTL_DISCOVERY_COMMANDS \
	{"search", meshctl_cmd_search, "full-text search over products, descriptions and columns", MESHCTL_SERVED}, \
	{"show", meshctl_cmd_show, "one product: owners, status, SLA, quality, versions, inputs, outputs", \
	 MESHCTL_SERVED}, \
	{"lineage", meshctl_cmd_lineage, "what a product is built from and what is built from it", MESHCTL_SERVED}, \
	{"mcp", meshctl_cmd_mcp, "an MCP server on stdio for AI agents, as you", MESHCTL_SERVED}, \
	{"catalog", meshctl_cmd_catalog, "write a static, offline catalog site (--html DIR)", MESHCTL_SERVED},

#endif
