/*
 * service.h - the mesh service's listener: the control socket a meshfs
 * daemon serves on its host, through which ordinary users reach the store
 * (which only the service account may read).
 *
 * The listener decides nothing.  For each connection it starts the served
 * side, `meshctl --serve-fd 3 --store STORE` (fs/cli/serve.c), with the
 * connection as fd 3 and the service's own credentials; that process reads
 * the caller's identity from the socket (SO_PEERCRED), runs one command
 * for that caller and answers.  A process per request keeps a malformed
 * request, a slow publish or a crash away from the mount's threads, and
 * needs no locks between requests.
 *
 * Bounds: at most `max_clients` requests run at once; a connection past
 * that is answered "busy" (exit 4) and logged, never queued without end.
 *
 * Thread-safety: service_listen_start/stop from the main thread only.
 */
#ifndef SERVICE_H
#define SERVICE_H

#include <stdbool.h>
#include <stddef.h>

#include "mesh_err.h"

struct service;

struct service_options {
	const char *store;           /* absolute, real path */
	const char *mountpoint;      /* NULL: none (service only) */
	const char *socket_path;     /* NULL: service_socket_path(store) */
	const char *meshctl;         /* NULL: the meshctl beside this program */
	unsigned max_clients;        /* 0: 32 */
};

/* Create the socket (mode 0666: who asks is the kernel's to say) in the
 * runtime directory (created 0755 when missing) and, with a mount point,
 * the m-*.sock link that lets meshctl find it from the mount.  When a live
 * service already answers on that socket, *busy_pid is set (pid of its
 * process, or -1 when unknown) and -EADDRINUSE returned: one service per
 * store and host.  A stale socket file (nobody listening) is replaced.
 * No thread yet (safe before fuse_daemonize's fork). */
int service_listen_open(const struct service_options *opts, struct service **out, long *busy_pid,
			struct mesh_err *err);
/* Start accepting (a thread; after the fork). */
int service_listen_start(struct service *s, struct mesh_err *err);
/* Stop accepting, wait for running requests (at most a few seconds, then
 * they are killed), remove the socket and link, free.  NULL is a no-op. */
void service_listen_close(struct service *s);
/* The socket's path (for messages). */
const char *service_listen_path(const struct service *s);

#endif
