/*
 * meshctl.h - what the meshctl subcommand files share (fs/meshctl*.c).
 *
 * fs/meshctl.c holds main(): global options, dispatch, and the store
 * commands (init, publish, validate, reindex, list, ...).  Other
 * fs/meshctl_<area>.c files hold one area's subcommands each.  Subcommands
 * print their results to stdout and their errors to stderr as
 * "meshctl <command>: message", and return one of the exit codes below.
 */
#ifndef MESHCTL_H
#define MESHCTL_H

#include <stdbool.h>
#include <stdio.h>

#include "identity.h"

struct service_request;

/* Exit codes scripts can test (documented in meshctl --help and README). */
enum meshctl_exit {
	MESHCTL_OK = 0,
	MESHCTL_FAILED = 1,     /* the operation ran and said no: validation failed,
				   breaking change, rule violated, not found */
	MESHCTL_USAGE = 2,      /* bad arguments */
	MESHCTL_DENIED = 3,     /* the caller is not allowed (not an owner, ...) */
	MESHCTL_ERROR = 4,      /* environment: store missing/unreadable, I/O error */
};

struct meshctl_ctx {
	const char *store;      /* --store or $MESH_STORE or /srv/mesh */
	bool json;              /* --json */
	const char *prog;       /* "meshctl" */
	/* Who is asking, as the kernel says: this process's credentials when
	 * meshctl works on the store itself, the peer's (SO_PEERCRED) when the
	 * mesh service runs a command for a client.  Every decision and every
	 * filter of a command uses this, never getuid(). */
	struct identity caller;
	/* Set when the mesh service runs this command for a client: the
	 * release directory's entries (publish, validate) arrive open, and
	 * no path named in the arguments may be opened. */
	const struct service_request *served;
};

/* Where a command runs. */
enum meshctl_where {
	MESHCTL_SERVED = 0,     /* on the store: directly for root and the store's
				   owner, through the mesh service for everyone else */
	MESHCTL_LOCAL,          /* on this machine's files only (init, drafting) */
	MESHCTL_OWNER_ONLY,     /* on the store directly, never served (reindex) */
};

/* Print "meshctl CMD: message\n" to stderr.  The first message of a run
 * is also kept: with --json a failed command's stdout is
 * {"error": {"command", "message", "exit", "class"}} (meshctl_json_error). */
void meshctl_fail(const struct meshctl_ctx *ctx, const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Print a JSON document (a json_t *, stolen) as the command's answer on
 * stdout, one document and a newline. */
void meshctl_json_print(void *doc);

/* Print text that is the command's document (already formatted JSON). */
void meshctl_print_document(const char *text);

/* Print a one-line result: `text` as it is, or with --json the document
 * {"ok": true, "result": text, KEY: VALUE...} built from NULL-terminated
 * key/value string pairs (a NULL value is JSON null). */
void meshctl_result(const struct meshctl_ctx *ctx, const char *text, ...) __attribute__((sentinel));

/* After a command returned `code`: with --json, when it failed after
 * meshctl_fail and printed no document, print the error document. */
void meshctl_json_error(const struct meshctl_ctx *ctx, const char *cmd, int code);

/* Map a negative errno from a library call to an exit code:
 * -EACCES/-EPERM -> MESHCTL_DENIED, -EINVAL/-EEXIST/-ENOENT/-EPROTO -> MESHCTL_FAILED,
 * others -> MESHCTL_ERROR. */
int meshctl_exit_for(int rc);

/* Subcommand entry points: argv[0] is the subcommand name. */
typedef int (*meshctl_cmd_fn)(const struct meshctl_ctx *ctx, int argc, char **argv);

#endif
