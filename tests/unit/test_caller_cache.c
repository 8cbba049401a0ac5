/*
 * test_caller_cache.c - the per-task groups cache: answers match the
 * kernel's, a dead task's entry is never reused for a new one, groups
 * changed with setgroups() are seen after the expiry, a different uid or
 * gid is a different key, and oversized or malformed lists fail closed.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "caller_cache.h"
#include "check.h"
#include "identity.h"

static void write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
}

static void test_self(void)
{
	struct caller_cache *c = caller_cache_new("/proc", 10);
	gid_t mine[IDENTITY_MAX_GROUPS], got[IDENTITY_MAX_GROUPS];
	int n = getgroups(IDENTITY_MAX_GROUPS, mine);
	pid_t tid = gettid();
	CHECK(caller_cache_groups(c, tid, getuid(), getgid(), got, IDENTITY_MAX_GROUPS) == n);
	CHECK(n <= 0 || !memcmp(mine, got, (size_t)n * sizeof *got));
	CHECK(caller_cache_groups(c, tid, getuid(), getgid(), got, IDENTITY_MAX_GROUPS) == n);
	unsigned long reads, hits;
	caller_cache_stats(c, &reads, &hits);
	CHECK(reads == 1 && hits == 1);
	/* another gid in the request: another key, read again */
	CHECK(caller_cache_groups(c, tid, getuid(), getgid() + 1, got, IDENTITY_MAX_GROUPS) == n);
	caller_cache_stats(c, &reads, &hits);
	CHECK(reads == 2 && hits == 1);
	/* no caller outside our pid namespace */
	CHECK(caller_cache_groups(c, 0, 0, 0, got, IDENTITY_MAX_GROUPS) < 0);
	caller_cache_free(c);
	caller_cache_free(NULL);
}

/* A child with the given groups that waits for a byte on `in` before it
 * switches to `then` (if any), and exits at the next byte. */
static pid_t child_with_groups(gid_t first, gid_t then, int *ctl_out, int *ack_in)
{
	int ctl[2], ack[2];
	if (pipe(ctl) || pipe(ack))
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		char b;
		close(ctl[1]);
		close(ack[0]);
		if (setgroups(1, &first))
			_exit(2);
		if (write(ack[1], "r", 1) != 1 || read(ctl[0], &b, 1) != 1)
			_exit(3);
		if (then && setgroups(1, &then))
			_exit(4);
		if (write(ack[1], "s", 1) != 1 || read(ctl[0], &b, 1) != 1)
			_exit(5);
		_exit(0);
	}
	close(ctl[0]);
	close(ack[1]);
	char b;
	CHECK(read(ack[0], &b, 1) == 1);
	*ctl_out = ctl[1];
	*ack_in = ack[0];
	return pid;
}

static void test_dead_task_never_answers(void)
{
	struct caller_cache *c = caller_cache_new("/proc", 60);
	int ctl, ack;
	pid_t pid = child_with_groups(4242, 0, &ctl, &ack);
	gid_t got[4];
	CHECK(caller_cache_groups(c, pid, 1000, 1000, got, 4) == 1 && got[0] == 4242);
	char b;
	CHECK(write(ctl, "x", 1) == 1 && read(ack, &b, 1) == 1 && write(ctl, "x", 1) == 1);
	waitpid(pid, NULL, 0);
	/* the entry is fresh (60 s) but its task is gone: whoever has that pid
	 * now (nobody, or a new process) must not get 4242 */
	got[0] = 0;
	int n = caller_cache_groups(c, pid, 1000, 1000, got, 4);
	CHECK(n < 0);
	CHECK(got[0] != 4242);
	close(ctl);
	close(ack);
	caller_cache_free(c);
}

static void test_setgroups_seen_after_ttl(void)
{
	struct caller_cache *c = caller_cache_new("/proc", 0.2);
	int ctl, ack;
	pid_t pid = child_with_groups(5001, 5002, &ctl, &ack);
	gid_t got[4];
	CHECK(caller_cache_groups(c, pid, 1000, 1000, got, 4) == 1 && got[0] == 5001);
	char b;
	CHECK(write(ctl, "x", 1) == 1 && read(ack, &b, 1) == 1);   /* now in 5002 only */
	struct timespec wait = {0, 300 * 1000000};
	nanosleep(&wait, NULL);
	CHECK(caller_cache_groups(c, pid, 1000, 1000, got, 4) == 1 && got[0] == 5002);
	/* ttl 0: every answer is read */
	struct caller_cache *uncached = caller_cache_new("/proc", 0);
	CHECK(caller_cache_groups(uncached, pid, 1000, 1000, got, 4) == 1 && got[0] == 5002);
	CHECK(caller_cache_groups(uncached, pid, 1000, 1000, got, 4) == 1);
	unsigned long reads, hits;
	caller_cache_stats(uncached, &reads, &hits);
	CHECK(reads == 2 && hits == 0);
	caller_cache_free(uncached);
	CHECK(write(ctl, "x", 1) == 1);
	waitpid(pid, NULL, 0);
	close(ctl);
	close(ack);
	caller_cache_free(c);
}

/* A fake /proc: lists too long for the caller's buffer, or malformed,
 * fail closed; a well-formed one parses. */
static void test_parsing(void)
{
	char root[] = "/tmp/caller-cache-XXXXXX";
	CHECK(mkdtemp(root) != NULL);
	char path[256];
	snprintf(path, sizeof path, "%s/7", root);
	mkdir(path, 0755);
	snprintf(path, sizeof path, "%s/7/task", root);
	mkdir(path, 0755);
	snprintf(path, sizeof path, "%s/7/task/7", root);
	mkdir(path, 0755);
	char status[300], comm[300];
	snprintf(status, sizeof status, "%s/status", path);
	snprintf(comm, sizeof comm, "%s/comm", path);
	write_file(comm, "fake\n");
	struct caller_cache *c = caller_cache_new(root, 0);
	gid_t got[3];
	write_file(status, "Name:\tfake\nUid:\t1\t1\t1\t1\nGroups:\t10 20 30 \nNSpid:\t7\n");
	CHECK(caller_cache_groups(c, 7, 1, 1, got, 3) == 3 && got[0] == 10 && got[2] == 30);
	CHECK(caller_cache_groups(c, 7, 1, 1, got, 2) < 0);        /* never a partial list */
	write_file(status, "Name:\tfake\nGroups:\t\nNSpid:\t7\n");
	CHECK(caller_cache_groups(c, 7, 1, 1, got, 3) == 0);
	write_file(status, "Name:\tfake\nGroups:\t10 x20\n");
	CHECK(caller_cache_groups(c, 7, 1, 1, got, 3) < 0);
	write_file(status, "Name:\tfake\nGroups:\t99999999999\n");
	CHECK(caller_cache_groups(c, 7, 1, 1, got, 3) < 0);
	write_file(status, "Name:\tfake\n");
	CHECK(caller_cache_groups(c, 7, 1, 1, got, 3) < 0);
	CHECK(caller_cache_groups(c, 8, 1, 1, got, 3) < 0);        /* no such task */
	caller_cache_free(c);
	unlink(status);
	unlink(comm);
	rmdir(path);
	snprintf(path, sizeof path, "%s/7/task", root);
	rmdir(path);
	snprintf(path, sizeof path, "%s/7", root);
	rmdir(path);
	rmdir(root);
}

/* A thread (not a thread-group leader: its own pidfd on Linux 6.9+, its
 * /proc comm before) that exits: its entry never answers again, although
 * its process, the same uid and gid, and the ttl are all still there. */
static pid_t thread_tid;
static int thread_ready[2], thread_go[2];   /* thread -> main, main -> thread */

static void *thread_main(void *arg)
{
	(void)arg;
	thread_tid = gettid();
	char b;
	CHECK(write(thread_ready[1], "t", 1) == 1);
	CHECK(read(thread_go[0], &b, 1) == 1);
	return NULL;
}

static void test_dead_thread_never_answers(void)
{
	struct caller_cache *c = caller_cache_new("/proc", 60);
	CHECK(pipe(thread_ready) == 0 && pipe(thread_go) == 0);
	pthread_t t;
	CHECK(pthread_create(&t, NULL, thread_main, NULL) == 0);
	char b;
	CHECK(read(thread_ready[0], &b, 1) == 1);
	gid_t got[IDENTITY_MAX_GROUPS];
	int n = caller_cache_groups(c, thread_tid, getuid(), getgid(), got, IDENTITY_MAX_GROUPS);
	CHECK(n >= 0);
	CHECK(caller_cache_groups(c, thread_tid, getuid(), getgid(), got, IDENTITY_MAX_GROUPS) == n);
	unsigned long reads, hits;
	caller_cache_stats(c, &reads, &hits);
	CHECK(reads == 1 && hits == 1);
	CHECK(write(thread_go[1], "x", 1) == 1);
	pthread_join(t, NULL);
	/* joined: glibc returns once the kernel cleared the thread's tid,
	 * which it does before the task is released; the tid is free for a
	 * new task (what the cache must never confuse with this one) only
	 * once /proc no longer lists it */
	char task[64];
	snprintf(task, sizeof task, "/proc/self/task/%d", (int)thread_tid);
	for (int i = 0; i < 5000 && access(task, F_OK) == 0; i++)
		usleep(1000);
	CHECK(access(task, F_OK) < 0);
	CHECK(caller_cache_groups(c, thread_tid, getuid(), getgid(), got, IDENTITY_MAX_GROUPS) < 0);
	caller_cache_stats(c, &reads, &hits);
	CHECK(hits == 1);
	close(thread_ready[0]);
	close(thread_ready[1]);
	close(thread_go[0]);
	close(thread_go[1]);
	caller_cache_free(c);
}

int main(void)
{
	test_self();
	test_parsing();
	test_dead_thread_never_answers();
	if (geteuid() == 0) {   /* setgroups() needs CAP_SETGID */
		test_dead_task_never_answers();
		test_setgroups_seen_after_ttl();
	} else {
		printf("test_caller_cache: not root, setgroups tests skipped\n");
	}
	return check_done("test_caller_cache");
}
