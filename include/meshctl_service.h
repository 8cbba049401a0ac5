/*
 * meshctl_service.h - meshctl's two ends of the mesh service: the client
 * (an ordinary user's meshctl sends its command to the service) and the
 * served side (the process the service starts per connection, which runs
 * that command for the caller the kernel names).
 *
 * The wire format is service_proto.h's; which commands travel and how is
 * decided here.
 */
#ifndef MESHCTL_SERVICE_H
#define MESHCTL_SERVICE_H

#include <stdbool.h>

#include "meshctl.h"

/* May this process work on the store directly (root, or the account that
 * owns the store)?  Everyone else goes through the service. */
bool meshctl_store_direct(const char *store);

/* Send the command argv[0..argc) to the service of ctx->store and wait for
 * it; returns its exit code.  `release` (publish, validate): pass the
 * release directory's entries open.  Errors reaching the service (none
 * runs, wrong owner) are printed here and give MESHCTL_ERROR. */
int meshctl_client_run(const struct meshctl_ctx *ctx, int argc, char **argv, bool release);

/* The served side: `meshctl --serve-fd FD` with the connection as FD.
 * Reads the caller from the socket and the request from it, runs the
 * command through `dispatch` with ctx->caller set to the caller, answers,
 * and returns the process's exit status (0 when an answer was sent). */
int meshctl_serve(struct meshctl_ctx *ctx, int sock,
		  int (*dispatch)(const struct meshctl_ctx *ctx, int argc, char **argv,
				  enum meshctl_where *where));

/* A spare worker: `meshctl --serve-spare FD`, started by the service
 * before any request so a request does not wait for a process to start.
 * Waits on FD (its end of a socket pair with the service) for the one
 * connection handed over as a descriptor (with the service's stderr,
 * which becomes its own), then does what meshctl_serve() does with it.  Returns 0 when the service closed FD without handing
 * anything over (it stopped). */
int meshctl_serve_spare(struct meshctl_ctx *ctx, int wait_fd,
			int (*dispatch)(const struct meshctl_ctx *ctx, int argc, char **argv,
					enum meshctl_where *where));

/* For publish and validate run by the service: copy the release's entries,
 * as the client passed them, into a private directory the caller cannot
 * touch (so what is validated is what is installed) and give its path in
 * `dir`.  Non-regular entries are recreated as what they are (a symlink,
 * a directory, a FIFO) so publish refuses them by name.  Returns 0, or an
 * exit code after printing why.  meshctl_release_done() removes it. */
int meshctl_release_receive(const struct meshctl_ctx *ctx, const char *cmd, const char *typed,
			    char *dir, size_t size);
void meshctl_release_done(const char *dir);

#endif
