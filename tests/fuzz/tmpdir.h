/*
 * tmpdir.h - the fuzz targets' scratch file: a directory of the process's
 * own under /tmp holding one file that each input overwrites, for code
 * that reads files by name (validate_file opens relative to a directory,
 * never through a link, and picks the format by the suffix).
 *
 * Not a fuzz target itself (the Makefile builds every fuzz_*.c as one and
 * links this file into each).  Not thread-safe: one per process.
 */
#ifndef FUZZ_TMPDIR_H
#define FUZZ_TMPDIR_H

#include <stddef.h>

/* Writes data[0..size) to DIR/name, DIR being /tmp/PREFIX.PID, made on the
 * first call and removed with the file at exit.  Returns DIR's descriptor
 * (the same on every call).  `name` must be the same on every call.
 * Aborts on any failure: a target cannot go on without its file. */
int fuzz_tmpdir_file(const char *prefix, const char *name, const void *data, size_t size);

#endif
