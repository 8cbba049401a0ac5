/*
 * startup.h - the parts of starting a daemon that ops depend on: clearing a
 * mount point left stale by a daemon that was killed, and going into the
 * background without losing the exit status of what fails after the fork.
 *
 * libfuse's fuse_daemonize() forks after the mount and its parent exits 0
 * at once, so a daemon refused after the fork (its usage journal held by
 * another daemon, an unreadable database) "started" with status 0 and said
 * why only to syslog.  Here the parent waits on a pipe until the child is
 * serving (status 0) or has failed and cleaned up (its status), while the
 * child's stderr still reaches the terminal: errors after the fork are
 * printed and reach the exit status, as with -f.
 *
 * Not here: mounting (libfuse, fuse_passthrough.c), readiness for systemd
 * (sd_notify in meshfs.c).
 */
#ifndef STARTUP_H
#define STARTUP_H

#include "mesh_err.h"

/* If `mountpoint` is a FUSE mount whose daemon is gone (stat gives
 * ENOTCONN, "Transport endpoint is not connected"), detach it (lazy
 * unmount: umount2 MNT_DETACH as root, else fusermount3 -uz).  Returns 1
 * when a stale mount was cleared, 0 when there was none, -errno (with err)
 * when it could not be cleared. */
int startup_clear_stale(const char *mountpoint, struct mesh_err *err);

/* Fork into the background.  The parent never returns: it exits with the
 * status the child reports (1 if the child dies without reporting).  The
 * child returns 0 with *report_fd to pass to startup_report(), in a new
 * session, with stdin and stdout on /dev/null; stderr stays until
 * startup_report(). */
int startup_detach(int *report_fd, struct mesh_err *err);

/* Tell the waiting parent the exit status (0: serving) and close the pipe;
 * on success stderr is moved to /dev/null.  report_fd < 0 is a no-op. */
void startup_report(int *report_fd, int status);

#endif
