/*
 * caller_cache.h - the supplementary groups of the tasks that call the
 * daemon, read from /proc once per task and kept for a short time.
 *
 * A FUSE request carries the caller's uid, gid and thread id, not its
 * supplementary groups: libfuse's fuse_req_getgroups() renders
 * /proc/TID/task/TID/status (twice, its first buffer is too small) for
 * every request, which cost a fifth of the daemon's CPU during open
 * storms.  This cache reads the file once per task and answers later
 * requests of the same task from memory.
 *
 * What a cached answer means (the reasoning is in caller_cache.c):
 *   - it belongs to the very task that sent the request: an entry keeps a
 *     file descriptor on that task's /proc directory entry, which fails
 *     once the task is gone, so a pid reused by another process never
 *     finds the old task's groups;
 *   - it is at most `ttl` seconds old: a task that drops groups with
 *     setgroups() (which needs CAP_SETGID) is decided by its new groups
 *     within ttl; a change of uid or gid (setuid programs, su, setpriv)
 *     is a different key and is read at once;
 *   - a new process always starts with a fresh read (new task).
 *
 * Not here: what the groups allow (policy.h), FUSE.
 *
 * Thread-safety: every function but _free may be called from any thread
 * at once (one mutex per slot).  Holds at most CALLER_CACHE_SLOTS open
 * file descriptors.
 */
#ifndef CALLER_CACHE_H
#define CALLER_CACHE_H

#include <sys/types.h>

#define CALLER_CACHE_SLOTS 256
#define CALLER_CACHE_TTL 1.0       /* seconds: the daemon's choice */

struct caller_cache;

/* A cache reading `proc` (normally "/proc"; copied) whose answers live at
 * most ttl seconds (0: never reuse an answer, every call reads /proc). */
struct caller_cache *caller_cache_new(const char *proc, double ttl);
/* Close every descriptor and free.  NULL is a no-op. */
void caller_cache_free(struct caller_cache *c);

/* The supplementary groups of task `tid` as the request (uid, gid) saw it:
 * fills list[0..size) and returns the count; < 0 when they cannot be
 * known (no such task, /proc unreadable, pid 0 for a caller outside the
 * daemon's pid namespace, or more than `size` groups: the caller must
 * fail closed, never decide on a partial list). */
int caller_cache_groups(struct caller_cache *c, pid_t tid, uid_t uid, gid_t gid, gid_t *list, int size);

/* Counters for tests and metrics: reads of /proc status files (misses)
 * and answers from memory (hits). */
void caller_cache_stats(struct caller_cache *c, unsigned long *reads, unsigned long *hits);

#endif
