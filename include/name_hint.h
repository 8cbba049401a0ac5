/*
 * name_hint.h - "did you mean ...?": the known name closest to a misspelt
 * one, by edit distance (optimal string alignment: insertions, deletions,
 * substitutions and swaps of two neighbours each cost 1; ASCII letters
 * compared without case).  Pure functions, thread-safe.
 */
#ifndef NAME_HINT_H
#define NAME_HINT_H

#include <stddef.h>

/* Edit distance between a and b; SIZE_MAX when either is longer than
 * NAME_HINT_MAX_LEN (names, not texts). */
#define NAME_HINT_MAX_LEN 256
size_t name_hint_distance(const char *a, const char *b);

/* The name in names[0..n) closest to `word` when it is close enough to be
 * a likely typo (at most 1 edit for words up to 4 characters, 2 up to 8,
 * 3 beyond), else NULL.  Ties go to the earlier name.  The result points
 * into `names`. */
const char *name_hint_closest(const char *word, const char *const *names, size_t n);

/* For a header that disagrees with the contract: "; 'CustomerID' is not a
 * contract column, did you mean 'customer_id'?" for every name in got[]
 * that is not in want[] but close to one of them (malloc'ed, "" if none). */
char *name_hint_columns(const char *const *got, size_t n_got, const char *const *want, size_t n_want);

#endif
