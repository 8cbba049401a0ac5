/*
 * mesh_err.h - how every meshfs module reports failure.
 *
 * Functions return 0 on success or a negative errno-style code, and fill the
 * caller's struct mesh_err with one human sentence naming the file, line and
 * field where that is known.  Only the programs' main functions print.
 */
#ifndef MESH_ERR_H
#define MESH_ERR_H

#include <stddef.h>

#define MESH_ERR_MAX 1024

struct mesh_err {
	int code;                 /* negative errno, 0 when no error */
	char msg[MESH_ERR_MAX];   /* "file:line: field: what is wrong" */
};

/* Record an error and return `code` (a negative errno) for tail calls:
 *     return mesh_errf(err, -EINVAL, "%s:%d: version: not SemVer", ...);
 * `err` may be NULL (the message is dropped).  A new error replaces an
 * older one; to add context to an inner error, use mesh_err_prefix(). */
int mesh_errf(struct mesh_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prefix an already recorded message ("publish: " + msg).  Returns err->code. */
int mesh_err_prefix(struct mesh_err *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

void mesh_err_clear(struct mesh_err *err);

#endif
