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
	{"domain", meshctl_cmd_domain, "create and show domains and their owners"}, \
	{"grant", meshctl_cmd_grant, "let a user or group read a domain, product or version"}, \
	{"revoke", meshctl_cmd_revoke, "take a grant back"}, \
	{"grants", meshctl_cmd_grants, "list grants with their expiry"}, \
	{"request", meshctl_cmd_request, "ask a domain's owners for read access"}, \
	{"requests", meshctl_cmd_requests, "list access requests"}, \
	{"approve", meshctl_cmd_approve, "approve a request (creates a grant)"}, \
	{"deny", meshctl_cmd_deny, "deny a request"}, \
	{"access", meshctl_cmd_access, "what you may do with a product, and why"}, \
	{"explain", meshctl_cmd_explain, "another user's access and the rule behind it (owners)"}, \
	{"usage", meshctl_cmd_usage, "who reads what: adoption and audit reports"}, \
	{"consumers", meshctl_cmd_consumers, "who still reads a version (before retiring it)"},

#endif
