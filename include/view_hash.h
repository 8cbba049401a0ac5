/*
 * view_hash.h - SHA-256 of a stream on a second thread, so a view build
 * hashes its input while it transforms it.
 *
 * The caller hands over buffers in stream order; each is hashed on the
 * hasher's thread while the caller goes on.  view_hasher_add returns once
 * the buffer handed over before this one is hashed: the caller may then
 * reuse that one (two buffers in turn are enough).  A buffer must stay
 * unchanged until the next view_hasher_add or view_hasher_finish.  Without
 * a thread (pthread_create failed) buffers are hashed in the call.
 *
 * One hasher belongs to one caller thread.
 *
 * view_reader is the loop both view builders run over it: a file read
 * from offset 0 to its end in 1 MiB pieces, two buffers in turn, each
 * piece hashed on the hasher's thread while the caller transforms it.
 */
#ifndef VIEW_HASH_H
#define VIEW_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "mesh_err.h"

struct view_hasher;

struct view_hasher *view_hasher_new(void);
void view_hasher_add(struct view_hasher *h, const void *buf, size_t len);
/* Waits for the last buffer, writes the hex digest, frees h. */
void view_hasher_finish(struct view_hasher *h, char hex[65]);

/* A hashed sequential read of `fd` (pread from offset 0: the descriptor's
 * position is neither used nor moved; the caller keeps the descriptor and
 * closes it after view_reader_finish).  `what` names the file in errors
 * ("the release file") and must outlive the reader.  Allocates two 1 MiB
 * buffers.  One reader belongs to one caller thread. */
struct view_reader;
struct view_reader *view_reader_new(int fd, const char *what);
/* The next piece of the file: 1 with *data and *len set (at least one
 * byte; valid and unchanged until the next view_reader_next or
 * view_reader_finish), 0 at the end of the file, or -errno of a failed
 * read with err filled ("reading WHAT: strerror"); EINTR is retried.
 * Every piece returned is part of the hash.  After 0 or an error the
 * reader only answers view_reader_offset and view_reader_finish. */
int view_reader_next(struct view_reader *r, const char **data, size_t *len, struct mesh_err *err);
/* The bytes returned so far (the offset of the next piece). */
uint64_t view_reader_offset(const struct view_reader *r);
/* Waits for the hash of every piece returned, writes its hex digest (of
 * the empty input if none was) and frees r with its buffers. */
void view_reader_finish(struct view_reader *r, char hex[65]);

#endif
