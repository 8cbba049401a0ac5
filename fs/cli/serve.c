/*
 * serve.c - the served side of the mesh service: `meshctl --serve-fd 3`,
 * started by the service (fs/service/listener.c) with its own credentials
 * for one connection.
 *
 * Who asks comes from the kernel (SO_PEERCRED/SO_PEERGROUPS on the
 * connection), never from the request.  The command then runs exactly as
 * it would for that user on the store, with ctx->caller set to them: every
 * command authorizes and filters on ctx->caller.  Paths in the arguments
 * are never opened with the service's rights: a release directory arrives
 * as descriptors the client opened (so the kernel checked the caller may
 * read each file) and is copied into a private directory first.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "meshctl_service.h"
#include "mesh_util.h"
#include "service_proto.h"

#define RELEASE_FILE_LIMIT (4ull << 30)   /* publish's own limit: larger is refused by size */

static int answer(int sock, int code, const char *error, int out_fd, int err_fd)
{
	json_t *doc = json_object();
	json_object_set_new(doc, "meshfs", json_integer(SERVICE_PROTO_VERSION));
	json_object_set_new(doc, "exit", json_integer(code));
	if (error) {
		json_t *e = json_object();
		json_object_set_new(e, "message", json_string(error));
		json_object_set_new(doc, "error", e);
	}
	const char *names[2] = {"stdout", "stderr"};
	int fds[2] = {out_fd, err_fd};
	for (int i = 0; i < 2; i++) {
		if (fds[i] < 0)
			continue;
		off_t size = lseek(fds[i], 0, SEEK_END);
		if (size < 0 || (uint64_t)size > SERVICE_MAX_RESPONSE / 2) {
			json_object_set_new(doc, "exit", json_integer(MESHCTL_ERROR));
			json_t *e = json_object();
			json_object_set_new(e, "message", json_string("the output is too large to return: "
				"pass stdout and stderr as streams"));
			json_object_set(doc, "error", e);
			json_decref(e);
			continue;
		}
		char *buf = xmalloc((size_t)size + 1);
		ssize_t n = pread(fds[i], buf, (size_t)size, 0);
		json_object_set_new(doc, names[i], json_stringn(buf, n > 0 ? (size_t)n : 0));
		free(buf);
	}
	char *text = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	int rc = text ? service_send(sock, text, strlen(text), NULL, 0, NULL) : -ENOMEM;
	free(text);
	return rc ? 1 : 0;
}

int meshctl_serve(struct meshctl_ctx *ctx, int sock,
		  int (*dispatch)(const struct meshctl_ctx *ctx, int argc, char **argv, enum meshctl_where *where))
{
	signal(SIGPIPE, SIG_IGN);
	openlog("meshfs-service", LOG_PID, LOG_DAEMON);
	struct mesh_err err = {0};
	pid_t pid = 0;
	if (service_peer_identity(sock, &ctx->caller, &pid, &err))
		return answer(sock, MESHCTL_DENIED, err.msg, -1, -1);

	char *text = NULL;
	size_t len = 0, n_fds = 0;
	int fds[SERVICE_MAX_FDS + 2];
	if (service_recv(sock, SERVICE_MAX_REQUEST, &text, &len, fds, SERVICE_MAX_FDS + 2, &n_fds, &err)) {
		syslog(LOG_WARNING, "uid %u pid %d: bad request: %s", (unsigned)ctx->caller.uid, (int)pid, err.msg);
		return answer(sock, MESHCTL_USAGE, err.msg, -1, -1);
	}
	struct service_request req;
	int rc = service_request_parse(text, len, fds, n_fds, &req, &err);
	free(text);
	if (rc) {
		syslog(LOG_WARNING, "uid %u pid %d: bad request: %s", (unsigned)ctx->caller.uid, (int)pid, err.msg);
		return answer(sock, MESHCTL_USAGE, err.msg, -1, -1);
	}
	ctx->json = req.json;
	ctx->served = &req;

	/* the command prints to the caller's own stdout/stderr, or into files
	 * returned with the answer */
	int out_fd = -1, err_fd = -1;
	fflush(stdout);
	fflush(stderr);
	if (req.streams) {
		dup2(req.stdout_fd, STDOUT_FILENO);
		dup2(req.stderr_fd, STDERR_FILENO);
		if (req.has_stdin)
			dup2(req.stdin_fd, STDIN_FILENO);
	} else {
		out_fd = memfd_create("meshctl-stdout", MFD_CLOEXEC);
		err_fd = memfd_create("meshctl-stderr", MFD_CLOEXEC);
		if (out_fd < 0 || err_fd < 0) {
			service_request_free(&req);
			return answer(sock, MESHCTL_ERROR, "cannot capture the output", -1, -1);
		}
		dup2(out_fd, STDOUT_FILENO);
		dup2(err_fd, STDERR_FILENO);
	}
	enum meshctl_where where = MESHCTL_SERVED;
	int code = dispatch(ctx, req.argc, req.argv, &where);
	fflush(stdout);
	fflush(stderr);
	syslog(LOG_INFO, "uid %u (%s) pid %d: %s -> exit %d", (unsigned)ctx->caller.uid, ctx->caller.user, (int)pid,
	       req.argv[0], code);
	service_request_free(&req);
	ctx->served = NULL;
	int status = answer(sock, code, NULL, out_fd, err_fd);
	if (out_fd >= 0)
		close(out_fd);
	if (err_fd >= 0)
		close(err_fd);
	return status;
}

/* A spare worker, started ahead of any request: wait on `wait_fd` for the
 * one connection the service hands over (a message carrying exactly two
 * descriptors: the connection, and the service's stderr, which becomes
 * ours), then serve it.  The service closing its end first is a
 * normal end (0): it stopped, or it replaces its spare. */
int meshctl_serve_spare(struct meshctl_ctx *ctx, int wait_fd,
			int (*dispatch)(const struct meshctl_ctx *ctx, int argc, char **argv,
					enum meshctl_where *where))
{
	char *text = NULL;
	size_t len = 0, n_fds = 0;
	int fds[2] = {-1, -1};          /* the connection, the service's stderr */
	struct mesh_err err = {0};
	int rc = service_recv(wait_fd, 64, &text, &len, fds, 2, &n_fds, &err);
	free(text);
	close(wait_fd);
	if (rc == -ECONNRESET && !n_fds)
		return 0;
	if (rc || n_fds != 2) {
		openlog("meshfs-service", LOG_PID, LOG_DAEMON);
		syslog(LOG_ERR, "spare worker: no connection handed over: %s", rc ? err.msg : "wrong descriptors");
		for (size_t i = 0; i < n_fds; i++)
			close(fds[i]);
		return MESHCTL_ERROR;
	}
	dup2(fds[1], STDERR_FILENO);
	close(fds[1]);
	return meshctl_serve(ctx, fds[0], dispatch);
}

/* ---- a release directory, received ---- */

void meshctl_release_done(const char *dir)
{
	if (!dir || !*dir)
		return;
	mesh_remove_tree_at(AT_FDCWD, dir);
}

/* Leftovers of served publishes that died: names are PID-RANDOM. */
static void clean_incoming(int incoming_fd)
{
	DIR *d = fdopendir(dup(incoming_fd));
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		if (pid <= 0 || *end != '-')
			continue;
		if (kill((pid_t)pid, 0) == 0 || errno == EPERM)
			continue;
		mesh_remove_tree_at(incoming_fd, e->d_name);
	}
	closedir(d);
}

static int copy_fd(int from, int to, off_t size)
{
	off_t done = 0;
	while (done < size) {
		ssize_t n = copy_file_range(from, NULL, to, NULL, (size_t)(size - done), 0);
		if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP))
			break;
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;    /* shrank while we read: what we have is what is validated */
		done += n;
	}
	if (done < size) {
		char *buf = xmalloc(1 << 20);
		if (lseek(from, done, SEEK_SET) < 0) {
			free(buf);
			return -errno;
		}
		for (;;) {
			ssize_t n = read(from, buf, 1 << 20);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				free(buf);
				return n < 0 ? -errno : 0;
			}
			if (mesh_write_all(to, buf, (size_t)n)) {
				free(buf);
				return -errno;
			}
		}
	}
	return 0;
}

int meshctl_release_receive(const struct meshctl_ctx *ctx, const char *cmd, const char *typed, char *dir,
			    size_t size)
{
	const struct service_request *req = ctx->served;
	dir[0] = '\0';
	if (!req->release_path || strcmp(req->release_path, typed)) {
		meshctl_fail(ctx, cmd, "%s: the release directory must come from meshctl (its files are passed "
			     "open to the service)", typed);
		return MESHCTL_USAGE;
	}
	char incoming[PATH_MAX];
	snprintf(incoming, sizeof incoming, "%s/.incoming", ctx->store);
	if (mkdir(incoming, 0700) < 0 && errno != EEXIST) {
		meshctl_fail(ctx, cmd, "%s: %s", incoming, strerror(errno));
		return MESHCTL_ERROR;
	}
	int in_fd = open(incoming, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (in_fd < 0 || fstat(in_fd, &st) < 0 || st.st_uid != geteuid() || (st.st_mode & 077)) {
		meshctl_fail(ctx, cmd, "%s: not a private directory of the service (owner %u, mode %o)", incoming,
			     in_fd < 0 ? 0 : (unsigned)st.st_uid, in_fd < 0 ? 0 : (unsigned)(st.st_mode & 07777));
		if (in_fd >= 0)
			close(in_fd);
		return MESHCTL_ERROR;
	}
	clean_incoming(in_fd);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	char name[64];
	snprintf(name, sizeof name, "%ld-%lx", (long)getpid(), (unsigned long)now.tv_nsec);
	if (mkdirat(in_fd, name, 0700) < 0) {
		meshctl_fail(ctx, cmd, "%s/%s: %s", incoming, name, strerror(errno));
		close(in_fd);
		return MESHCTL_ERROR;
	}
	snprintf(dir, size, "%s/%s", incoming, name);
	int dfd = openat(in_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	close(in_fd);
	int code = dfd < 0 ? MESHCTL_ERROR : MESHCTL_OK;
	for (size_t i = 0; i < req->n_entries && code == MESHCTL_OK; i++) {
		const struct service_entry *e = &req->entries[i];
		int r = 0;
		enum service_entry_type type = e->type;
		struct stat fst;
		if (type == SERVICE_ENTRY_FILE && (fstat(e->fd, &fst) < 0 || !S_ISREG(fst.st_mode)))
			type = SERVICE_ENTRY_OTHER;   /* what it is, not what the client said */
		switch (type) {
		case SERVICE_ENTRY_FILE: {
			int to = openat(dfd, e->name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
			if (to < 0) {
				r = -errno;
				break;
			}
			if ((uint64_t)fst.st_size > RELEASE_FILE_LIMIT)
				r = ftruncate(to, fst.st_size) < 0 ? -errno : 0;   /* refused by its size */
			else
				r = copy_fd(e->fd, to, fst.st_size);
			close(to);
			break;
		}
		case SERVICE_ENTRY_DIR:
			r = mkdirat(dfd, e->name, 0700) < 0 ? -errno : 0;
			break;
		case SERVICE_ENTRY_SYMLINK:
			r = symlinkat("(a symbolic link)", dfd, e->name) < 0 ? -errno : 0;
			break;
		default:
			r = mkfifoat(dfd, e->name, 0600) < 0 ? -errno : 0;
			break;
		}
		if (r) {
			meshctl_fail(ctx, cmd, "%s/%s: %s", typed, e->name, strerror(-r));
			code = MESHCTL_ERROR;
		}
	}
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	if (code) {
		meshctl_release_done(dir);
		dir[0] = '\0';
	}
	return code;
}
