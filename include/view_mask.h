/*
 * view_mask.h - mask functions and mask plans: what a masked reader's view
 * puts in place of a classified value.
 *
 * A mask plan lists the columns to mask in a file and the function for
 * each; its text ("email:hash, birth_date:year") names the view (the
 * user.mesh.view attribute, the cache key, the view's inode).  Functions:
 *
 *   null      a missing value (CSV: empty field; JSON: null)
 *   redact    the fixed string "***", whatever the value (no length leaks)
 *   hash      a keyed pseudonym "h" + 16 hex digits of HMAC-SHA-256(secret,
 *             value): equal values give equal tokens in every product of
 *             the mesh (joins and distinct counts still work)
 *   last4     "***" followed by the value's last 4 characters (values of 4
 *             characters or fewer become "***")
 *   year      a date or timestamp (YYYY-..., YYYY/...) becomes its year as
 *             a number; anything else is missing
 *   truncate  a number rounded down to a multiple of the rule's precision
 *             (1000, 0.01, ...); anything else is missing
 *   omit      the column is left out of the view.  Not a rule's function
 *             (view_fn_parse refuses it): a Parquet view applies it where
 *             the rule says null or redact (view_plan_for_format); anywhere
 *             else it acts as null.  The strongest of all.
 *
 * A missing value (CSV empty field, JSON null) stays missing whatever the
 * function.  No I/O; everything is thread-safe (no hidden state).
 */
#ifndef VIEW_MASK_H
#define VIEW_MASK_H

#include <stdbool.h>
#include <stddef.h>

#include "mesh_err.h"
#include "mesh_util.h"

enum view_fn { VIEW_FN_NULL, VIEW_FN_REDACT, VIEW_FN_HASH, VIEW_FN_LAST4, VIEW_FN_YEAR, VIEW_FN_TRUNCATE,
	       VIEW_FN_OMIT };

#define VIEW_SECRET_LEN 32

/* "null", "redact", ... -> 0 and *out; -EINVAL for an unknown name (and
 * for "omit", which no rule may ask for). */
int view_fn_parse(const char *name, enum view_fn *out);
const char *view_fn_name(enum view_fn fn);
/* How much a function hides (null hides most): when two rules mask one
 * classification, the stronger function wins (rules tighten, never relax). */
int view_fn_strength(enum view_fn fn);

enum view_value { VIEW_MISSING, VIEW_STRING, VIEW_NUMBER };

/* Apply `fn` to one value (`value`, `len`: the decoded text of a string, or
 * the literal text of a number).  Appends the result's text to `out` (for
 * VIEW_STRING unquoted and unescaped: the writer of each format quotes it)
 * and returns its kind.  `secret` (VIEW_SECRET_LEN bytes) is used by hash
 * only; `precision` by truncate only (> 0). */
enum view_value view_fn_apply(enum view_fn fn, double precision, const unsigned char *secret,
			      const char *value, size_t len, struct strbuf *out);

/* One masked column: the name (CSV header name; JSON Lines property path,
 * "customer.email" for a nested property; arrays are transparent). */
struct view_column {
	char *name;
	enum view_fn fn;
	double precision;          /* truncate */
};

struct view_plan {
	struct view_column *columns;
	size_t n;
	char *text;                /* "email:hash, salary:truncate(1000)" */
};

/* An empty plan; add columns in file order, then view_plan_seal() makes the
 * text.  A column named twice keeps the stronger function. */
struct view_plan *view_plan_new(void);
void view_plan_add(struct view_plan *plan, const char *name, enum view_fn fn, double precision);
void view_plan_seal(struct view_plan *plan);
void view_plan_free(struct view_plan *plan);

#endif
