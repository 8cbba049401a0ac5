/*
 * client.c - meshctl as a client of the mesh service: find the service of
 * a store on this host, make sure it is the store's (its peer is root or
 * the store's owner), send one command with our stdout and stderr (and a
 * release directory's files, open), and return its exit code.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "meshctl_service.h"
#include "mesh_util.h"
#include "progress.h"
#include "service_proto.h"

bool meshctl_store_direct(const char *store)
{
	if (getuid() == 0)
		return true;
	struct stat st;
	return stat(store, &st) == 0 && st.st_uid == getuid();
}

static int connect_to(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

/* The store's service, from the store's path or a mount point's. */
static int connect_service(const struct meshctl_ctx *ctx, const char *cmd)
{
	char spath[PATH_MAX], mpath[PATH_MAX];
	struct mesh_err err = {0};
	if (service_socket_path(ctx->store, false, spath, sizeof spath, &err)) {
		meshctl_fail(ctx, cmd, "store %s: %s (say --store DIR or set MESH_STORE)", ctx->store,
			     strerror(-err.code));
		return -1;
	}
	service_socket_path(ctx->store, true, mpath, sizeof mpath, NULL);
	int fd = connect_to(spath);
	if (fd < 0)
		fd = connect_to(mpath);
	if (fd < 0) {
		meshctl_fail(ctx, cmd, "no mesh service runs for %s on this host (%s: %s). The store belongs to "
			     "the service: start one as root with 'meshfs %s MOUNTPOINT' (or 'meshfs --service %s', "
			     "or 'systemctl start meshfs'); only root and the store's owner use the store directly",
			     ctx->store, spath, strerror(-fd), ctx->store, ctx->store);
		return -1;
	}
	/* the service is root or the store's owner: anyone else could have
	 * planted a socket to read what we send */
	struct ucred cred;
	socklen_t len = sizeof cred;
	struct stat st;
	bool store_known = stat(ctx->store, &st) == 0;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0
	    || (cred.uid != 0 && (!store_known || cred.uid != st.st_uid))) {
		meshctl_fail(ctx, cmd, "the socket %s is not served by root or the store's owner (uid %u): refused",
			     spath, (unsigned)cred.uid);
		close(fd);
		return -1;
	}
	return fd;
}

static enum service_entry_type entry_type(mode_t mode)
{
	return S_ISREG(mode) ? SERVICE_ENTRY_FILE : S_ISDIR(mode) ? SERVICE_ENTRY_DIR
	       : S_ISLNK(mode) ? SERVICE_ENTRY_SYMLINK : SERVICE_ENTRY_OTHER;
}

/* Open every entry of the release directory: the service reads what we
 * could open, nothing else. */
static int open_release(const struct meshctl_ctx *ctx, const char *cmd, const char *path,
			struct service_request *req)
{
	int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		meshctl_fail(ctx, cmd, "%s: %s", path, strerror(errno));
		return errno == EACCES ? MESHCTL_DENIED : MESHCTL_FAILED;
	}
	DIR *d = fdopendir(dfd);
	struct dirent *e;
	size_t cap = 16;
	req->entries = xcalloc(cap, sizeof *req->entries);
	req->release_path = xstrdup(path);
	int code = MESHCTL_OK;
	while (code == MESHCTL_OK && (e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (req->n_entries == SERVICE_MAX_FDS) {
			meshctl_fail(ctx, cmd, "%s: more than %d entries (a release is a few files)", path,
				     SERVICE_MAX_FDS);
			code = MESHCTL_FAILED;
			break;
		}
		if (req->n_entries == cap)
			req->entries = xrealloc(req->entries, (cap *= 2) * sizeof *req->entries);
		struct service_entry *se = &req->entries[req->n_entries++];
		se->name = xstrdup(e->d_name);
		se->fd = -1;
		struct stat st;
		if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			meshctl_fail(ctx, cmd, "%s/%s: %s", path, e->d_name, strerror(errno));
			code = MESHCTL_FAILED;
			break;
		}
		se->type = entry_type(st.st_mode);
		if (se->type != SERVICE_ENTRY_FILE)
			continue;
		se->fd = openat(dfd, e->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (se->fd < 0) {
			meshctl_fail(ctx, cmd, "%s/%s: %s", path, e->d_name, strerror(errno));
			code = errno == EACCES ? MESHCTL_DENIED : MESHCTL_FAILED;
		} else if (fstat(se->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
			se->type = entry_type(st.st_mode);   /* swapped since: let publish refuse it */
			close(se->fd);
			se->fd = -1;
		}
	}
	closedir(d);
	return code;
}

/* The release directory among publish's and validate's arguments: the
 * first non-option argument that is a directory. */
static const char *release_argument(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (argv[i][0] != '-' && stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
			return argv[i];
	}
	return NULL;
}

int meshctl_client_run(const struct meshctl_ctx *ctx, int argc, char **argv, bool release)
{
	const char *cmd = argv[0];
	/* a session on stdin (mcp) gets our stdin too */
	bool session = !strcmp(cmd, "mcp");
	struct service_request req = {.argv = argv, .argc = argc, .json = ctx->json, .streams = true,
				      .stdout_fd = STDOUT_FILENO, .stderr_fd = STDERR_FILENO,
				      .progress_ms = progress_terminal_ms(STDERR_FILENO),
				      .has_stdin = session, .stdin_fd = session ? STDIN_FILENO : -1};
	/* the worker's working directory is not ours: paths it is given
	 * (the site to write, the mount to read) travel absolute */
	char **abs_args = xcalloc((size_t)argc + 1, sizeof *abs_args);
	char cwd[PATH_MAX];
	for (int i = 0; i < argc; i++) {
		bool path_arg = i > 0 && (!strcmp(argv[i - 1], "--html") || !strcmp(argv[i - 1], "--mount"));
		if (path_arg && argv[i][0] != '/' && getcwd(cwd, sizeof cwd)) {
			size_t len = strlen(cwd) + strlen(argv[i]) + 2;
			abs_args[i] = xmalloc(len);
			snprintf(abs_args[i], len, "%s/%s", cwd, argv[i]);
		} else {
			abs_args[i] = xstrdup(argv[i]);
		}
	}
	req.argv = abs_args;
	int code = MESHCTL_OK;
	const char *rel = release ? release_argument(argc, argv) : NULL;
	if (rel)
		code = open_release(ctx, cmd, rel, &req);
	int sock = code ? -1 : connect_service(ctx, cmd);
	if (!code && sock < 0)
		code = MESHCTL_ERROR;
	if (!code) {
		int fds[SERVICE_MAX_FDS + 2];
		size_t n_fds = 0;
		fflush(stdout);
		fflush(stderr);
		char *text = service_request_encode(&req, fds, &n_fds);
		struct mesh_err err = {0};
		char *reply = NULL;
		size_t len = 0, n_in = 0;
		int in_fds[1];
		if (service_send(sock, text, strlen(text), fds, n_fds, &err)
		    || service_recv(sock, SERVICE_MAX_RESPONSE, &reply, &len, in_fds, 0, &n_in, &err)) {
			meshctl_fail(ctx, cmd, "the mesh service did not answer: %s", err.msg);
			code = MESHCTL_ERROR;
		} else {
			json_t *doc = json_loadb(reply, len, 0, NULL);
			json_t *ex = json_object_get(doc, "exit");
			json_t *msg = json_object_get(json_object_get(doc, "error"), "message");
			code = json_is_integer(ex) ? (int)json_integer_value(ex) : MESHCTL_ERROR;
			if (json_is_string(msg))
				meshctl_fail(ctx, cmd, "%s", json_string_value(msg));
			else if (!json_is_integer(ex))
				meshctl_fail(ctx, cmd, "the mesh service answered something else than protocol %d",
					     SERVICE_PROTO_VERSION);
			json_decref(doc);
		}
		free(reply);
		free(text);
		close(sock);
	}
	for (size_t i = 0; i < req.n_entries; i++) {
		free(req.entries[i].name);
		if (req.entries[i].fd >= 0)
			close(req.entries[i].fd);
	}
	free(req.entries);
	free(req.release_path);
	for (int i = 0; i < argc; i++)
		free(abs_args[i]);
	free(abs_args);
	return code;
}
