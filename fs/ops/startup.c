/*
 * startup.c - stale mount points and a fork that keeps the exit status
 * (contract in include/startup.h).
 *
 * Not here: mounting, signals, readiness notification.
 */
#include "startup.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int startup_clear_stale(const char *mountpoint, struct mesh_err *err)
{
	struct stat st;
	if (stat(mountpoint, &st) == 0 || errno != ENOTCONN)
		return 0;
	if (geteuid() == 0) {
		if (umount2(mountpoint, MNT_DETACH) < 0)
			return mesh_errf(err, -errno, "%s: stale mount (Transport endpoint is not connected) "
					 "cannot be detached: %s", mountpoint, strerror(errno));
		return 1;
	}
	pid_t pid = fork();
	if (pid < 0)
		return mesh_errf(err, -errno, "fork: %s", strerror(errno));
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		if (null >= 0) {
			dup2(null, 1);
			dup2(null, 2);
		}
		execlp("fusermount3", "fusermount3", "-uz", mountpoint, (char *)NULL);
		_exit(127);
	}
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || (stat(mountpoint, &st) < 0 && errno == ENOTCONN))
		return mesh_errf(err, -EBUSY, "%s: stale mount (Transport endpoint is not connected): "
				 "fusermount3 -uz failed; unmount it as root", mountpoint);
	return 1;
}

int startup_detach(int *report_fd, struct mesh_err *err)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0)
		return mesh_errf(err, -errno, "pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(fds[0]);
		close(fds[1]);
		return mesh_errf(err, -e, "fork: %s", strerror(e));
	}
	if (pid > 0) {
		/* the parent: the child's status is ours */
		close(fds[1]);
		unsigned char status = 1;
		ssize_t r;
		do
			r = read(fds[0], &status, 1);
		while (r < 0 && errno == EINTR);
		if (r != 1) {
			fprintf(stderr, "meshfs: the daemon stopped while starting (see the system log)\n");
			status = 1;
		}
		_exit(status);
	}
	close(fds[0]);
	if (setsid() < 0) {
		/* not fatal: we are a child, so not a group leader; ignore */
	}
	if (chdir("/") < 0) {
		/* cannot happen for "/"; keep going */
	}
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		close(null);
	}
	*report_fd = fds[1];
	return 0;
}

void startup_report(int *report_fd, int status)
{
	if (*report_fd < 0)
		return;
	if (status == 0) {
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (null >= 0) {
			dup2(null, 2);
			close(null);
		}
	}
	unsigned char byte = (unsigned char)(status & 0xff);
	/* the parent may be gone (killed): then nobody cares */
	signal(SIGPIPE, SIG_IGN);
	if (write(*report_fd, &byte, 1) < 0) {
		/* ignored: see above */
	}
	close(*report_fd);
	*report_fd = -1;
}
