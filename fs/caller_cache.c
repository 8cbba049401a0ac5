/*
 * caller_cache.c - supplementary groups of calling tasks, cached (contract
 * in include/caller_cache.h).
 *
 * Not here: decisions, FUSE; names of users and groups (identity.c).
 *
 * Why an answer from memory is the caller's own, current enough answer:
 *
 * 1. Pid reuse.  A request names its task by thread id, and pids come back:
 *    pid_max is 32768 on many machines, so a user forking in a loop cycles
 *    through every pid in about a second.  A cache keyed by pid alone would
 *    let a new process find the groups of a dead one that had the same pid
 *    (and the same uid and gid, which are part of the key).  So the entry
 *    keeps an open descriptor on the task's /proc/TID/task/TID/comm, opened
 *    through the same directory descriptor the groups were read through.
 *    A /proc descriptor is bound to the kernel's struct pid of the task it
 *    was opened for, and a new task never gets an old struct pid back, even
 *    with the same number: once that task is reaped, every read of the
 *    descriptor fails with ESRCH (a zombie still reads, but its pid cannot
 *    be reused before it is reaped).  Every hit reads the descriptor first
 *    (a 16-byte pread, about 0.5 us, against 11 us per status rendering), so
 *    an answer is only ever given while the task it was read from is alive,
 *    and a live task's pid belongs to no one else.  On the real /proc the
 *    entry keeps a pidfd of the task instead (pidfd_open, PIDFD_THREAD
 *    where the kernel has it, Linux 6.9): a pidfd is bound to the struct
 *    pid in the same way, and asking it with poll() whether its task has
 *    exited costs a third of the comm read's rendering, which showed as
 *    3% of the daemon's CPU in an open storm.  It is opened after the
 *    groups were read and checked against the task the directory names
 *    (still readable afterwards), so it is that task's.  The process start time
 *    (/proc/TID/stat field 22) would do the same job at clock-tick
 *    resolution, but reading it costs a 7 us rendering per hit.
 *
 * 2. setgroups().  The kernel gives no cheap signal when a task's groups
 *    change, so an answer lives at most `ttl` seconds (1 s in the daemon).
 *    Only a task with CAP_SETGID can change its supplementary groups, and
 *    such a task could have given itself any group at all; the usual
 *    privilege drop (setgroups, setgid, setuid: su, login, sshd, setpriv)
 *    also changes the uid or gid the request carries, which is a different
 *    key and is read at once.  What remains is a capable task that drops
 *    groups and CAP_SETGID but keeps its uid and gid: it is decided by its
 *    old groups for at most ttl, as it keeps every file it opened before
 *    dropping them for as long as it likes (Unix checks at open).
 *
 * 3. New processes.  A process started after a user's groups changed (new
 *    login, newgrp, setpriv --groups) is a new task: its first request is a
 *    miss and reads its own groups.
 */
#include "caller_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "identity.h"
#include "mesh_util.h"

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL        /* linux/pidfd.h, Linux 6.9 */
#endif

struct slot {
	pthread_mutex_t lock;
	pid_t tid;                    /* 0: empty */
	uid_t uid;
	gid_t gid;
	int alive_fd;                 /* /proc/TID/task/TID/comm of that task, or its pidfd; -1 */
	bool alive_is_pidfd;
	int64_t expires_ns;           /* CLOCK_MONOTONIC */
	int n_groups;
	gid_t groups[IDENTITY_MAX_GROUPS];
};

struct caller_cache {
	char *proc;
	bool real_proc;               /* "/proc": tids are this pid namespace's, pidfds work */
	int64_t ttl_ns;
	unsigned long reads, hits;    /* atomics */
	struct slot slots[CALLER_CACHE_SLOTS];
};

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct caller_cache *caller_cache_new(const char *proc, double ttl)
{
	struct caller_cache *c = xcalloc(1, sizeof *c);
	c->proc = xstrdup(proc ? proc : "/proc");
	c->real_proc = !strcmp(c->proc, "/proc");
	c->ttl_ns = ttl > 0 ? (int64_t)(ttl * 1e9) : 0;
	for (int i = 0; i < CALLER_CACHE_SLOTS; i++) {
		pthread_mutex_init(&c->slots[i].lock, NULL);
		c->slots[i].alive_fd = -1;
	}
	return c;
}

void caller_cache_free(struct caller_cache *c)
{
	if (!c)
		return;
	for (int i = 0; i < CALLER_CACHE_SLOTS; i++) {
		if (c->slots[i].alive_fd >= 0)
			close(c->slots[i].alive_fd);
		pthread_mutex_destroy(&c->slots[i].lock);
	}
	free(c->proc);
	free(c);
}

/* Read all of a small /proc file (status grows with the group count). */
static char *read_all(int fd)
{
	size_t cap = 4096, len = 0;
	char *buf = xmalloc(cap);
	for (;;) {
		if (len + 1 >= cap) {
			if (cap >= (1u << 20)) {
				free(buf);
				return NULL;
			}
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
		ssize_t r = read(fd, buf + len, cap - 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			free(buf);
			return NULL;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	buf[len] = '\0';
	return buf;
}

/* "Groups:\t10 20 30 \n" of a status file: the count, or -1 when the line
 * is missing or malformed or holds more than `size` groups. */
static int parse_groups(const char *status, gid_t *list, int size)
{
	const char *p = strstr(status, "\nGroups:");
	if (!p)
		return -1;
	p += 8;
	int n = 0;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\n' || *p == '\0')
			return n;
		char *end;
		errno = 0;
		unsigned long v = strtoul(p, &end, 10);
		if (end == p || errno || v > (gid_t)-1 || n >= size)
			return -1;
		list[n++] = (gid_t)v;
		p = end;
	}
}

/* The number /proc gives the task of a pidfd ("Pid:" of its fdinfo, in
 * /proc's pid namespace), or -1. */
static pid_t pidfd_number(const struct caller_cache *c, int pidfd)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/self/fdinfo/%d", c->proc, pidfd);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	char *info = read_all(fd);
	close(fd);
	const char *p = info ? strstr(info, "\nPid:") : NULL;
	long v = p ? strtol(p + 5, NULL, 10) : -1;
	free(info);
	return v > 0 ? (pid_t)v : -1;
}

/* Fill slot s for task tid: groups from its status file, and the
 * descriptor that tells later whether that same task is still alive.
 * Both are opened through one directory descriptor, so they are the same
 * task's even if the pid is reused meanwhile. */
static int refill(struct caller_cache *c, struct slot *s, pid_t tid, uid_t uid, gid_t gid)
{
	if (s->alive_fd >= 0)
		close(s->alive_fd);
	s->alive_fd = -1;
	s->tid = 0;
	char path[4200];
	snprintf(path, sizeof path, "%s/%d/task/%d", c->proc, (int)tid, (int)tid);
	int dir = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return -1;
	int status_fd = openat(dir, "status", O_RDONLY | O_CLOEXEC);
	int alive_fd = openat(dir, "comm", O_RDONLY | O_CLOEXEC);
	close(dir);
	char *status = status_fd >= 0 ? read_all(status_fd) : NULL;
	if (status_fd >= 0)
		close(status_fd);
	__atomic_add_fetch(&c->reads, 1, __ATOMIC_RELAXED);
	int n = status ? parse_groups(status, s->groups, IDENTITY_MAX_GROUPS) : -1;
	free(status);
	if (n < 0 || alive_fd < 0) {
		if (alive_fd >= 0)
			close(alive_fd);
		return -1;
	}
	s->alive_is_pidfd = false;
	if (c->real_proc) {
		/* the task now numbered tid, and (comm still readable) the one
		 * the groups were read from: see the top of this file */
		long pidfd = syscall(SYS_pidfd_open, tid, PIDFD_THREAD);
		if (pidfd < 0 && errno == EINVAL)
			pidfd = syscall(SYS_pidfd_open, tid, 0);   /* before 6.9: thread-group leaders */
		if (pidfd >= 0 && pidfd_number(c, (int)pidfd) != tid) {
			close((int)pidfd);   /* another pid namespace than /proc's: keep comm */
			pidfd = -1;
		}
		char comm[32];
		ssize_t r;
		do
			r = pread(alive_fd, comm, sizeof comm, 0);
		while (r < 0 && errno == EINTR);
		if (pidfd >= 0 && r > 0) {
			close(alive_fd);
			alive_fd = (int)pidfd;
			s->alive_is_pidfd = true;
		} else if (pidfd >= 0) {
			close((int)pidfd);
		}
		if (r <= 0) {
			close(alive_fd);
			return -1;
		}
	}
	s->tid = tid;
	s->uid = uid;
	s->gid = gid;
	s->alive_fd = alive_fd;
	s->n_groups = n;
	s->expires_ns = now_ns() + c->ttl_ns;
	return n;
}

static bool still_alive(const struct slot *s)
{
	if (s->alive_is_pidfd) {
		/* POLLIN: the task exited (a zombie counts as gone: read again) */
		struct pollfd p = {.fd = s->alive_fd, .events = POLLIN};
		int r;
		do
			r = poll(&p, 1, 0);
		while (r < 0 && errno == EINTR);
		return r == 0;
	}
	char comm[32];
	ssize_t r;
	do
		r = pread(s->alive_fd, comm, sizeof comm, 0);
	while (r < 0 && errno == EINTR);
	return r > 0;
}

int caller_cache_groups(struct caller_cache *c, pid_t tid, uid_t uid, gid_t gid, gid_t *list, int size)
{
	if (tid <= 0)
		return -1;   /* outside our pid namespace: nothing to read */
	struct slot *s = &c->slots[((uint32_t)tid * 2654435761u) % CALLER_CACHE_SLOTS];
	pthread_mutex_lock(&s->lock);
	int n;
	if (s->tid == tid && s->uid == uid && s->gid == gid && c->ttl_ns && now_ns() < s->expires_ns &&
	    still_alive(s)) {
		n = s->n_groups;
		__atomic_add_fetch(&c->hits, 1, __ATOMIC_RELAXED);
	} else {
		n = refill(c, s, tid, uid, gid);
	}
	if (n > size)
		n = -1;   /* never a partial list */
	if (n > 0)
		memcpy(list, s->groups, (size_t)n * sizeof *list);
	pthread_mutex_unlock(&s->lock);
	return n;
}

void caller_cache_stats(struct caller_cache *c, unsigned long *reads, unsigned long *hits)
{
	*reads = __atomic_load_n(&c->reads, __ATOMIC_RELAXED);
	*hits = __atomic_load_n(&c->hits, __ATOMIC_RELAXED);
}
