/*
 * fpset.h - exact duplicate detection for values that can be read again
 * from where they came (a locator: for CSV, the byte offset of the record
 * in the mapped file), in bounded memory and from several threads.
 *
 * A value is added as its 64-bit hash and its locator only: 16 bytes,
 * whatever its length.  Entries go to 256 partitions by the hash's top
 * bits, kept in memory up to a limit and appended to one unlinked spill
 * file beyond it.  fpset_finish() takes the partitions one at a time (in
 * parallel), and compares the values themselves (through a fetch callback)
 * only when two hashes are equal, so a hash collision never counts as a
 * duplicate.  The first occurrence of a value, in locator order, is the
 * original; every later one is a duplicate.
 *
 * Entries are added through runs: a run is the entries of one stretch of
 * the input, written by one thread; runs are ordered by a key the caller
 * gives (locators of a run with a smaller key are all smaller), and a run
 * may be discarded (its stretch was read again).  Not here: hashing or
 * reading the values (the caller's), reporting (validate.c).
 *
 * Thread-safety: fpset_run_new() and fpset_add() on distinct runs may run
 * in any threads at once; everything else from one thread.
 */
#ifndef FPSET_H
#define FPSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mesh_err.h"
#include "mesh_util.h"

#define FPSET_EXAMPLES 20

struct fpset;
struct fpset_run;

/* memory_limit: bytes of entries kept in memory (0: 24 MiB); tmpdir for
 * the spill file (NULL: /var/tmp).  Never NULL (aborts on no memory). */
struct fpset *fpset_new(size_t memory_limit, const char *tmpdir);
void fpset_free(struct fpset *s);

/* A run of entries ordered by `order`; owned by the set. */
struct fpset_run *fpset_run_new(struct fpset *s, uint64_t order);
/* 0, or -errno when the spill file cannot be written (err). */
int fpset_add(struct fpset_run *r, uint64_t hash, uint64_t locator, struct mesh_err *err);
/* The run is complete: its partial buffers become blocks (0 or -errno). */
int fpset_run_close(struct fpset_run *r, struct mesh_err *err);
/* Leave this run's entries out of the result. */
void fpset_run_discard(struct fpset_run *r);
/* Leave out every entry with a locator >= `limit` (input after an error). */
void fpset_run_limit(struct fpset_run *r, uint64_t limit);

/* The value at `locator`, into `out` (reset first); 0 or -errno.  Called
 * from `threads` threads at once. */
typedef int (*fpset_fetch_fn)(void *ctx, uint64_t locator, struct strbuf *out, struct mesh_err *err);

struct fpset_result {
	uint64_t duplicates;                      /* later occurrences of values */
	uint64_t examples[FPSET_EXAMPLES];        /* the first duplicates' locators, ascending */
	size_t n_examples;
};

/* Find the duplicates among the runs not discarded; call once. */
int fpset_finish(struct fpset *s, unsigned threads, fpset_fetch_fn fetch, void *ctx, struct fpset_result *out,
		 struct mesh_err *err);
/* True once entries went to the spill file (for tests and reports). */
bool fpset_spilled(const struct fpset *s);

#endif
