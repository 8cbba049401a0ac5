/*
 * store_guard.h - the daemon's background audit of the store, and the
 * verdict every open asks for.
 *
 * The mount comes up after an incremental audit (store_audit.h), which
 * cannot see a chmod or chown of a regular file in a directory that did
 * not change.  The guard closes that gap: once the mount serves, a thread
 * at idle CPU and I/O priority audits the whole store; on a problem it
 * logs the report (syslog LOG_ERR, one line per problem) and, unless the
 * store is served with -o insecure_store, makes store_guard_refuses() true:
 * the daemon answers every open with EACCES until a later audit is clean
 * (it re-audits every STORE_GUARD_RETRY_SECONDS, and at once on
 * store_guard_recheck: SIGHUP).  A failed audit also removes the state
 * file, so the next mount audits everything before it serves.
 *
 * Thread-safety: store_guard_refuses may be called from any thread (an
 * atomic read); start, recheck and stop from the main thread.
 */
#ifndef STORE_GUARD_H
#define STORE_GUARD_H

#include <stdbool.h>

#include "mesh_err.h"

#define STORE_GUARD_RETRY_SECONDS 10

struct store_guard;

/* Start the guard for `store` (realpath) keeping its record at
 * `state_path` (may be NULL).  With `audit_now`, a full audit runs at once
 * (the mount came up on an incremental one); otherwise only on
 * store_guard_recheck.  `insecure`: problems are logged, opens never
 * refused. */
int store_guard_start(const char *store, const char *state_path, bool audit_now, bool insecure,
		      struct store_guard **out, struct mesh_err *err);
/* Is every open to be refused (the last full audit found a problem)? */
bool store_guard_refuses(const struct store_guard *g);
/* Audit again now (in the background). */
void store_guard_recheck(struct store_guard *g);
/* Stop the thread (an audit in progress is finished first) and free.
 * NULL is a no-op. */
void store_guard_stop(struct store_guard *g);

#endif
