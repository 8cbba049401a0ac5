/*
 * view_sidecar.h - a version's sidecars as a reader with masked or hidden
 * columns must see them.
 *
 * schema.json (Frictionless Table Schema): each field the reader gets
 * masked is marked ("masked": "hash") and typed as what its mask function
 * produces (redact, hash, last4: string; year: year; truncate: number;
 * null: unchanged, its values are missing), and loses the constraints its
 * masked values no longer meet; a field the view leaves out (omit: the
 * Parquet views) is removed; the top level names the plan ("meshView").
 *
 * quality.json: every example of a failing rule on a column the reader
 * may not see in clear loses its value and message, anywhere in the
 * document (failing samples would otherwise show clear values); the rules
 * of a column the view leaves out (omit) are removed from "files".
 *
 * Input is the release's own sidecar (at most 16 MiB); an input that is not
 * the expected JSON is -EINVAL (the caller denies).  Output is malloc'ed
 * JSON text with a trailing newline.  Thread-safe (no shared state).
 */
#ifndef VIEW_SIDECAR_H
#define VIEW_SIDECAR_H

#include <stddef.h>

#include "mesh_err.h"
#include "view_mask.h"

int view_sidecar_schema(const char *json, size_t len, const struct view_plan *plan, char **out,
			size_t *out_len, struct mesh_err *err);
/* `hidden`: the columns whose values the reader may not see (functions
 * are ignored). */
int view_sidecar_quality(const char *json, size_t len, const struct view_plan *hidden, char **out,
			 size_t *out_len, struct mesh_err *err);

#endif
