/*
 * view_parquet.h - a masked reader's view of a Parquet file: the same file
 * without its masked columns.
 *
 * The view is a valid Parquet file: "PAR1", the byte ranges of the kept
 * column chunks of every row group copied unchanged (pages, dictionaries,
 * compression as they were), a footer rewritten by parquet_project_footer
 * (schema without the left-out leaves, page offsets rebased; parquet.h says
 * what else goes), its length, "PAR1".  Readers query the kept columns as
 * in the clear file; the left-out ones are not there at all.
 *
 * Only omission: every column of the plan must have the function omit
 * (view_plan_for_format turns null and redact into omit and refuses the
 * others).  A plan column is a leaf's dotted path ("customer.email") or a
 * group's ("customer": all its leaves); LIST wrappers are transparent, so
 * "items.sku" names items.list.element.sku.  A plan column that names no
 * leaf is -ENOENT (the manifest and the file disagree), a plan that would
 * leave no column is -ENOTSUP, a file parquet_open refuses keeps its error
 * (-EINVAL, -ENOTSUP), column chunks that overlap are -EINVAL.
 *
 * One sequential read of the input (hashed whole, on a second thread:
 * compare with the manifest), one sequential write.  Thread-safe: no
 * shared state.
 */
#ifndef VIEW_PARQUET_H
#define VIEW_PARQUET_H

#include "mesh_err.h"
#include "view_build.h"
#include "view_mask.h"

int view_parquet_build(int in_fd, int out_fd, const struct view_plan *plan, struct view_build_result *res,
		       struct mesh_err *err);

/* Would view_parquet_build accept this file and plan?  Reads only the
 * footer: 0, or the error the build would give (meshctl access). */
int view_parquet_check(int in_fd, const struct view_plan *plan, struct mesh_err *err);

#endif
