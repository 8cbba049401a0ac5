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
	const char *state_dir;  /* --state-dir: this host's state root (state_dir.h), or NULL */
	const char *prog;       /* "meshctl" */
	/* Who is asking, as the kernel says: this process's credentials when
	 * meshctl works on the store itself, the peer's (SO_PEERCRED) when the
	 * mesh service runs a command for a client.  Every decision and every
	 * filter of a command uses this, never getuid(). */
	struct identity caller;
};

/* Print "meshctl CMD: message\n" to stderr. */
void meshctl_fail(const struct meshctl_ctx *ctx, const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Map a negative errno from a library call to an exit code:
 * -EACCES/-EPERM -> MESHCTL_DENIED, -EINVAL/-EEXIST/-ENOENT/-EPROTO -> MESHCTL_FAILED,
 * others -> MESHCTL_ERROR. */
int meshctl_exit_for(int rc);

/* Subcommand entry points: argv[0] is the subcommand name. */
typedef int (*meshctl_cmd_fn)(const struct meshctl_ctx *ctx, int argc, char **argv);

#endif
