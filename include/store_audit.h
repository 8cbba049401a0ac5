/*
 * store_audit.h - is the store locked down, checked in time proportional
 * to what changed since the last clean audit on this host.
 *
 * A full audit (store_audit() in store.h, `meshctl doctor`) walks the
 * whole tree: every entry a directory or regular file, owned by the store
 * root's owner, no group or other bits.  After a clean full audit the
 * daemon keeps a record of every directory (audit_state.h) in this host's
 * state directory; the next mount stats each recorded directory (no
 * readdir) and re-reads only those whose ino, mode, owner, ctime or mtime
 * moved, that are new, or that are gone, re-auditing their entries (and
 * new subdirectories whole).
 *
 * What that proves, and what it does not:
 *   - any entry created, removed or renamed in a directory (a planted
 *     symlink, FIFO, device, hard link or file) changes that directory's
 *     mtime and ctime: found at the next mount;
 *   - a chmod or chown of a directory changes its own ctime: found;
 *   - a chmod or chown of a regular file moves only that file's ctime, in a
 *     directory that did not change: NOT found by the incremental audit.
 *     The daemon therefore runs a full audit in a background thread (idle
 *     CPU and I/O priority) once the mount is up (store_guard.h), and
 *     refuses every open with EACCES while that audit finds a problem;
 *   - a directory changed in the same clock tick as the record was taken
 *     (timestamps are coarse) is recorded "racy" and re-read next time;
 *   - whoever can reset the clock or write the raw block device can forge
 *     ctimes: that is root, who can read the store anyway.
 * A state file that does not parse, is damaged, truncated, belongs to
 * another store or another root inode, or is not the daemon's own means a
 * full audit, never trust.
 *
 * Not here: the state file's format (audit_state.h), the background audit
 * and the refusal of opens (store_guard.h).
 * Thread-safety: no shared state; one audit per state file at a time.
 */
#ifndef STORE_AUDIT_H
#define STORE_AUDIT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "mesh_err.h"

struct store_audit_info {
	bool incremental;       /* the state file was used */
	char why_full[512];     /* why not, when it was not ("" when it was) */
	size_t dirs;            /* directories recorded (checked) */
	size_t reread, added, gone;   /* re-read, newly found, no longer there */
	double seconds;
	char note[512];         /* the state file could not be written or removed ("" if it was) */
};

/* Audit `store` (a realpath).  With `incremental` and a valid state file
 * at `state_path`, only what changed since it was written; otherwise the
 * whole store.  A clean audit (re)writes the state file when something
 * changed (state_path NULL: none kept); a failed one removes it, so the
 * next audit is a full one.  Returns the number of problems (0: locked
 * down; *report malloc'ed as store_audit()'s), or -errno with err set.
 * *info (may be NULL) says what was done.  `cancel` (may be NULL): when it
 * becomes true the walk stops, -ECANCELED, nothing recorded or removed. */
int store_audit_run(const char *store, const char *state_path, bool incremental, const atomic_bool *cancel,
		    char **report, struct store_audit_info *info, struct mesh_err *err);

/* STATE_ROOT/<store-id>/store-audit into out (the directory made if
 * missing); -errno when there is no usable state directory. */
int store_audit_state_path(const char *store, const char *state_root_option, char *out, size_t size,
			   struct mesh_err *err);

#endif
