/*
 * service_proto.h - the mesh service's wire protocol, shared by its two
 * ends: meshctl (the client) and the served side (what the service runs
 * for each connection).  It is the API the catalog page and the agent
 * interface build on, documented in README.md ("The mesh service").
 *
 * A connection carries one request and one response over a Unix stream
 * socket.  Each message is a 4-byte big-endian length and that many bytes
 * of JSON (jansson); the request's file descriptors ride as SCM_RIGHTS on
 * its first bytes.  Version 1:
 *
 *   request  {"meshfs": 1, "argv": ["list", "sales"], "json": false,
 *             "streams": true,                 stdout, stderr: fds 0 and 1
 *             "stdin": true,                   with streams: stdin too, fd 2 (mcp)
 *             "release": {"path": "/home/bob/orders-1.2.0",
 *                         "entries": [{"name": "orders.csv", "type": "file"},
 *                                     {"name": "tmp", "type": "dir"}]}}
 *   response {"meshfs": 1, "exit": 0}
 *            {"meshfs": 1, "exit": 0, "stdout": "...", "stderr": "..."}
 *            {"meshfs": 1, "exit": 2, "error": {"message": "..."}}
 *
 * With "streams" the command's stderr is the caller's own descriptor, so
 * isatty() on the served side answers for the caller's terminal; whether
 * that terminal can draw a progress line, and at what pace, depends on
 * the caller's environment (TERM, MESHCTL_PROGRESS_INTERVAL_MS), which
 * the worker does not share: the client sends its choice as "progress"
 * (milliseconds between lines; absent or 0: none).
 * Without "streams" the service captures what the command prints and
 * returns it in the response (what programs such as the catalog page
 * use).  A release's regular files are passed open, in the order of their
 * entries (after the two stream fds when "streams"), so the kernel has
 * checked that the caller may read each of them; entries that are not
 * regular files carry no descriptor and are refused by publish by name.
 *
 * Who asks is never in the request: the served side reads it from the
 * socket (SO_PEERCRED, SO_PEERGROUPS).
 *
 * Thread-safety: no shared state; every function works on its arguments.
 */
#ifndef SERVICE_PROTO_H
#define SERVICE_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "identity.h"
#include "mesh_err.h"

#define SERVICE_PROTO_VERSION 1
#define SERVICE_MAX_REQUEST   (256 * 1024)        /* bytes of request JSON */
#define SERVICE_MAX_RESPONSE  (64u * 1024 * 1024) /* bytes of response JSON */
#define SERVICE_MAX_ARGS      256
#define SERVICE_MAX_FDS       250                 /* < SCM_MAX_FD (253) */

enum service_entry_type { SERVICE_ENTRY_FILE, SERVICE_ENTRY_DIR, SERVICE_ENTRY_SYMLINK,
			  SERVICE_ENTRY_OTHER };

struct service_entry {
	char *name;
	enum service_entry_type type;
	int fd;                      /* open file (FILE entries), else -1 */
};

struct service_request {
	char **argv;                 /* NULL-terminated, argc entries */
	int argc;
	bool json;                   /* meshctl --json */
	bool streams;                /* stdout_fd and stderr_fd are the caller's */
	int stdout_fd, stderr_fd;    /* -1 unless streams */
	unsigned progress_ms;        /* with streams: the caller's progress pace (0: none) */
	bool has_stdin;              /* with streams: stdin_fd is the caller's stdin */
	int stdin_fd;
	char *release_path;          /* as the caller typed it (NULL: none) */
	struct service_entry *entries;
	size_t n_entries;
};

/* Parse a request received with its descriptors.  Takes ownership of
 * every fd in `fds` (they end up in *out, or are closed on error).
 * Limits: SERVICE_MAX_ARGS arguments, SERVICE_MAX_FDS descriptors, names
 * without '/' or NUL; anything else is -EPROTO with a message. */
int service_request_parse(const char *json, size_t len, int *fds, size_t n_fds,
			  struct service_request *out, struct mesh_err *err);
/* The request's JSON text (caller frees) and, in *fds / *n_fds, the
 * descriptors to send with it (borrowed from the request). */
char *service_request_encode(const struct service_request *r, int *fds, size_t *n_fds);
/* Close its descriptors and free it; NULL or zeroed is a no-op. */
void service_request_free(struct service_request *r);

/* Send one message (length, JSON, descriptors).  0 or -errno. */
int service_send(int sock, const char *json, size_t len, const int *fds, size_t n_fds,
		 struct mesh_err *err);
/* Receive one message of at most `limit` bytes: *json is malloc'd and NUL
 * terminated (caller frees); up to `max_fds` descriptors go to fds[]
 * (O_CLOEXEC) and their count to *n_fds.  A message with more descriptors
 * than max_fds is refused (-EPROTO) and every received one closed. */
int service_recv(int sock, size_t limit, char **json, size_t *len, int *fds, size_t max_fds,
		 size_t *n_fds, struct mesh_err *err);

/* The identity of the process at the other end of a connected Unix
 * socket, from the kernel: SO_PEERCRED (uid, gid, pid) and SO_PEERGROUPS
 * (supplementary groups).  A caller with more groups than struct identity
 * holds is refused (-E2BIG): a dropped group could hide a deny rule. */
int service_peer_identity(int sock, struct identity *who, pid_t *pid, struct mesh_err *err);

/* The path of the control socket of the store (or mount point) at `path`:
 * RUNDIR/s-<first 16 hex digits of SHA-256 of the store's real path>.sock
 * for a store, RUNDIR/m-<...>.sock for a mount point (a symlink to the
 * store's).  RUNDIR is $MESHFS_RUNTIME_DIR or /run/meshfs.  Works on a
 * store the caller cannot read (realpath needs only its parents). */
int service_socket_path(const char *path, bool mountpoint, char *buf, size_t size,
			struct mesh_err *err);
/* RUNDIR itself. */
const char *service_runtime_dir(void);

#endif
