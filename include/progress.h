/*
 * progress.h - one line on a terminal that says how far a long job is:
 *
 *     validating orders.csv   412.3 / 1024.0 MB  40%  285 MB/s  ETA 2s
 *
 * rewritten in place ("\r", erase to end of line) at most 4 times a
 * second, and first only after a quarter of a second, so quick jobs print
 * nothing.  Used by `meshctl validate` and `meshctl publish`; shown only
 * when their stderr is a terminal and neither --json nor --quiet is given
 * (progress_terminal_ms), so scripts' output never changes.
 *
 * A NULL progress is valid everywhere and does nothing, so library code
 * calls progress_add unconditionally.  progress_add is thread-safe and
 * cheap (an atomic add and, at most once per call, a clock read): call it
 * per block read, not per value.  Rendering happens inside the call that
 * finds the quarter second passed; the others do not wait for it.
 */
#ifndef PROGRESS_H
#define PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct progress;

/* The pace this process's user asks for: milliseconds between two lines
 * if `fd` is a terminal that can draw one (isatty, TERM not "dumb"),
 * else 0.  MESHCTL_PROGRESS_INTERVAL_MS (10 to 60000) sets another pace
 * than the quarter second; anything else there is ignored.  A served
 * command gets this number from its client (the request's "progress"),
 * since the client's environment is not the worker's. */
unsigned progress_terminal_ms(int fd);

/* A progress line written to `fd` (not owned), at most one every
 * `interval_ms` (clamped to 10..60000). */
struct progress *progress_new(int fd, unsigned interval_ms);
/* Clears the line if one is shown; NULL is a no-op. */
void progress_free(struct progress *p);

/* Start a phase: `label` (copied, shown escaped) over `total` bytes (0:
 * unknown, no percentage or ETA).  Resets the count and the clock. */
void progress_phase(struct progress *p, const char *label, uint64_t total);
/* A new label for the running phase (the next file), count kept. */
void progress_relabel(struct progress *p, const char *label);
/* `bytes` more of the phase are done. */
void progress_add(struct progress *p, uint64_t bytes);
/* Erase the line (before printing a report on the same terminal). */
void progress_clear(struct progress *p);

/* The line as it would be shown (for tests): done of total after
 * `seconds`, into buf. */
void progress_format(char *buf, size_t size, const char *label, uint64_t done, uint64_t total, double seconds);

#endif
