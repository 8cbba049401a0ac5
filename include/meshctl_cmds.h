/*
 * meshctl_cmds.h - the subcommands that live in fs/meshctl_<area>.c files,
 * and the few helpers the store commands borrow from those areas.
 */
#ifndef MESHCTL_CMDS_H
#define MESHCTL_CMDS_H

#include <stdio.h>

#include "meshctl.h"
#include "mesh_err.h"

/* `meshctl init DATAFILE ...`: draft contract.yaml and schema.json. */
int meshctl_cmd_draft(const struct meshctl_ctx *ctx, int argc, char **argv);

/* Usage recording status for `meshctl status` (journal backlog, refusals). */
int meshctl_usage_status(const struct meshctl_ctx *ctx, FILE *out);

/* `meshctl list [WHAT]` from this host's index (fs/cli/meshctl_list.c):
 * an exit status, or MESHCTL_LIST_FALLBACK (nothing printed) when the index
 * cannot answer (cannot be refreshed, or WHAT names files of a release). */
#define MESHCTL_LIST_FALLBACK (-1000)
int meshctl_list_from_index(const struct meshctl_ctx *ctx, const char *what);
/* What `meshctl status` counts, from the index, for the caller (products
 * and versions they may discover; unreadable releases of the whole store).
 * 0, or MESHCTL_LIST_FALLBACK when the index cannot answer. */
struct meshctl_counts {
	size_t domains, products, versions, deprecated, unreadable;
};
int meshctl_counts_from_index(const struct meshctl_ctx *ctx, struct meshctl_counts *c);

int meshctl_cmd_domain(const struct meshctl_ctx *ctx, int argc, char **argv);
int meshctl_cmd_grant(const struct meshctl_ctx *ctx, int argc, char **argv);
int meshctl_cmd_revoke(const struct meshctl_ctx *ctx, int argc, char **argv);
int meshctl_cmd_grants(const struct meshctl_ctx *ctx, int argc, char **argv);
int meshctl_cmd_request(const struct meshctl_ctx *ctx, int argc, char **argv);
int meshctl_cmd_requests(const struct meshctl_ctx *ctx, int argc, char **argv);
int meshctl_cmd_approve(const struct meshctl_ctx *ctx, int argc, char **argv);
int meshctl_cmd_deny(const struct meshctl_ctx *ctx, int argc, char **argv);
int meshctl_cmd_access(const struct meshctl_ctx *ctx, int argc, char **argv);
int meshctl_cmd_explain(const struct meshctl_ctx *ctx, int argc, char **argv);
int meshctl_cmd_usage(const struct meshctl_ctx *ctx, int argc, char **argv);
int meshctl_cmd_consumers(const struct meshctl_ctx *ctx, int argc, char **argv);

/* Entries of meshctl's command table for the area files. */
#define MESHCTL_AREA_COMMANDS \
	{"domain", meshctl_cmd_domain, "create and show domains and their owners", MESHCTL_SERVED}, \
	{"grant", meshctl_cmd_grant, "let a user or group read a domain, product or version", MESHCTL_SERVED}, \
	{"revoke", meshctl_cmd_revoke, "take a grant back", MESHCTL_SERVED}, \
	{"grants", meshctl_cmd_grants, "list grants with their expiry", MESHCTL_SERVED}, \
	{"request", meshctl_cmd_request, "ask a domain's owners for read access", MESHCTL_SERVED}, \
	{"requests", meshctl_cmd_requests, "list access requests", MESHCTL_SERVED}, \
	{"approve", meshctl_cmd_approve, "approve a request (creates a grant)", MESHCTL_SERVED}, \
	{"deny", meshctl_cmd_deny, "deny a request", MESHCTL_SERVED}, \
	{"access", meshctl_cmd_access, "what you may do with a product, and why", MESHCTL_SERVED}, \
	{"explain", meshctl_cmd_explain, "another user's access and the rule behind it (owners)", MESHCTL_SERVED}, \
	{"usage", meshctl_cmd_usage, "who reads what: adoption and audit reports", MESHCTL_SERVED}, \
	{"consumers", meshctl_cmd_consumers, "who still reads a version (before retiring it)", MESHCTL_SERVED},

#endif
