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
 */
#ifndef VIEW_HASH_H
#define VIEW_HASH_H

#include <stddef.h>

struct view_hasher;

struct view_hasher *view_hasher_new(void);
void view_hasher_add(struct view_hasher *h, const void *buf, size_t len);
/* Waits for the last buffer, writes the hex digest, frees h. */
void view_hasher_finish(struct view_hasher *h, char hex[65]);

#endif
