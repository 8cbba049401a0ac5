/*
 * proto.c - the mesh service's wire protocol (service_proto.h): framing,
 * descriptor passing, the request document, and the peer's identity.
 *
 * It knows nothing of commands: which requests are allowed and what they
 * do is the served side's (fs/cli/serve.c).  Every limit here refuses the
 * request with a message; nothing is truncated.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "mesh_util.h"
#include "service_proto.h"

static const char *const entry_type_names[] = {"file", "dir", "symlink", "other"};

const char *service_runtime_dir(void)
{
	const char *dir = getenv("MESHFS_RUNTIME_DIR");
	return dir && *dir == '/' ? dir : "/run/meshfs";
}

int service_socket_path(const char *path, bool mountpoint, char *buf, size_t size, struct mesh_err *err)
{
	char real[PATH_MAX];
	if (!realpath(path, real))
		return mesh_errf(err, -errno, "%s: %s", path, strerror(errno));
	struct mesh_sha256 *h = mesh_sha256_new();
	mesh_sha256_update(h, real, strlen(real));
	char hex[65];
	mesh_sha256_final(h, hex);
	hex[16] = '\0';
	int n = snprintf(buf, size, "%s/%c-%s.sock", service_runtime_dir(), mountpoint ? 'm' : 's', hex);
	if (n < 0 || (size_t)n >= size || (size_t)n >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return mesh_errf(err, -ENAMETOOLONG, "%s: control socket path too long", service_runtime_dir());
	return 0;
}

/* ---- framing ---- */

int service_send(int sock, const char *json, size_t len, const int *fds, size_t n_fds, struct mesh_err *err)
{
	if (len > SERVICE_MAX_RESPONSE || n_fds > SERVICE_MAX_FDS)
		return mesh_errf(err, -E2BIG, "message too large (%zu bytes, %zu descriptors)", len, n_fds);
	unsigned char head[4] = {(unsigned char)(len >> 24), (unsigned char)(len >> 16),
				 (unsigned char)(len >> 8), (unsigned char)len};
	struct iovec iov[2] = {{head, sizeof head}, {(void *)json, len}};
	struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
	size_t cmsg_size = CMSG_SPACE(sizeof(int) * (n_fds ? n_fds : 1));
	char *control = n_fds ? xcalloc(1, cmsg_size) : NULL;
	if (n_fds) {
		msg.msg_control = control;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
	}
	size_t total = sizeof head + len, sent = 0;
	int rc = 0;
	while (sent < total) {
		ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = mesh_errf(err, -errno, "send: %s", strerror(errno));
			break;
		}
		sent += (size_t)n;
		/* descriptors travel once, with the first bytes */
		msg.msg_control = NULL;
		msg.msg_controllen = 0;
		size_t skip = (size_t)n;
		while (skip && msg.msg_iovlen) {
			size_t take = skip < msg.msg_iov->iov_len ? skip : msg.msg_iov->iov_len;
			msg.msg_iov->iov_base = (char *)msg.msg_iov->iov_base + take;
			msg.msg_iov->iov_len -= take;
			skip -= take;
			if (!msg.msg_iov->iov_len) {
				msg.msg_iov++;
				msg.msg_iovlen--;
			}
		}
	}
	free(control);
	return rc;
}

static void close_all(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

int service_recv(int sock, size_t limit, char **json, size_t *len, int *fds, size_t max_fds, size_t *n_fds,
		 struct mesh_err *err)
{
	*json = NULL;
	*len = 0;
	*n_fds = 0;
	unsigned char head[4];
	size_t got = 0;
	/* room for more descriptors than allowed, so an excess is seen and refused */
	size_t cmsg_size = CMSG_SPACE(sizeof(int) * (SERVICE_MAX_FDS + 8));
	char *control = xcalloc(1, cmsg_size);
	int rc = 0;
	while (got < sizeof head) {
		struct iovec iov = {head + got, sizeof head - got};
		struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
		if (got == 0) {
			msg.msg_control = control;
			msg.msg_controllen = cmsg_size;
		}
		ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n == 0 ? mesh_errf(err, -ECONNRESET, "connection closed before a message")
				    : mesh_errf(err, -errno, "receive: %s", strerror(errno));
			goto out;
		}
		if (got == 0) {
			for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
				if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
					continue;
				size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
				int *in = (int *)CMSG_DATA(c);
				for (size_t i = 0; i < k; i++) {
					if (*n_fds < max_fds)
						fds[(*n_fds)++] = in[i];
					else {
						close(in[i]);
						rc = -EPROTO;
					}
				}
			}
			if (msg.msg_flags & MSG_CTRUNC)
				rc = -EPROTO;
			if (rc) {
				mesh_errf(err, rc, "too many descriptors (at most %zu)", max_fds);
				goto out;
			}
		}
		got += (size_t)n;
	}
	size_t want = (size_t)head[0] << 24 | (size_t)head[1] << 16 | (size_t)head[2] << 8 | head[3];
	if (want > limit) {
		rc = mesh_errf(err, -E2BIG, "message of %zu bytes (at most %zu)", want, limit);
		goto out;
	}
	char *buf = xmalloc(want + 1);
	size_t have = 0;
	while (have < want) {
		ssize_t n = read(sock, buf + have, want - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(buf);
			rc = n == 0 ? mesh_errf(err, -ECONNRESET, "connection closed inside a message")
				    : mesh_errf(err, -errno, "receive: %s", strerror(errno));
			goto out;
		}
		have += (size_t)n;
	}
	buf[want] = '\0';
	*json = buf;
	*len = want;
out:
	if (rc) {
		close_all(fds, *n_fds);
		*n_fds = 0;
	}
	free(control);
	return rc;
}

/* ---- the request ---- */

void service_request_free(struct service_request *r)
{
	if (!r)
		return;
	for (int i = 0; r->argv && i < r->argc; i++)
		free(r->argv[i]);
	free(r->argv);
	if (r->stdout_fd >= 0 && r->streams)
		close(r->stdout_fd);
	if (r->stderr_fd >= 0 && r->streams)
		close(r->stderr_fd);
	if (r->stdin_fd >= 0 && r->has_stdin)
		close(r->stdin_fd);
	for (size_t i = 0; i < r->n_entries; i++) {
		free(r->entries[i].name);
		if (r->entries[i].fd >= 0)
			close(r->entries[i].fd);
	}
	free(r->entries);
	free(r->release_path);
	memset(r, 0, sizeof *r);
	r->stdout_fd = r->stderr_fd = r->stdin_fd = -1;
}

static bool text_ok(const char *s, size_t max)
{
	size_t n = strnlen(s, max + 1);
	return n <= max;
}

int service_request_parse(const char *text, size_t len, int *fds, size_t n_fds, struct service_request *out,
			  struct mesh_err *err)
{
	memset(out, 0, sizeof *out);
	out->stdout_fd = out->stderr_fd = out->stdin_fd = -1;
	size_t used = 0;
	int rc = 0;
	json_error_t jerr;
	json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc || !json_is_object(doc)) {
		rc = mesh_errf(err, -EPROTO, "request: not a JSON object (%s at %d:%d)", doc ? "wrong type" : jerr.text,
			       jerr.line, jerr.column);
		goto fail;
	}
	json_t *ver = json_object_get(doc, "meshfs");
	if (!json_is_integer(ver) || json_integer_value(ver) != SERVICE_PROTO_VERSION) {
		rc = mesh_errf(err, -EPROTO, "request: protocol version %d expected in \"meshfs\"", SERVICE_PROTO_VERSION);
		goto fail;
	}
	json_t *args = json_object_get(doc, "argv");
	if (!json_is_array(args) || json_array_size(args) == 0 || json_array_size(args) > SERVICE_MAX_ARGS) {
		rc = mesh_errf(err, -EPROTO, "request: \"argv\" must be an array of 1 to %d strings", SERVICE_MAX_ARGS);
		goto fail;
	}
	out->argc = (int)json_array_size(args);
	out->argv = xcalloc((size_t)out->argc + 1, sizeof *out->argv);
	for (int i = 0; i < out->argc; i++) {
		json_t *a = json_array_get(args, (size_t)i);
		if (!json_is_string(a) || strlen(json_string_value(a)) != json_string_length(a)
		    || !text_ok(json_string_value(a), 64 * 1024)) {
			rc = mesh_errf(err, -EPROTO, "request: argv[%d] must be a string without NUL bytes", i);
			goto fail;
		}
		out->argv[i] = xstrdup(json_string_value(a));
	}
	json_t *js = json_object_get(doc, "json");
	out->json = json_is_true(js);
	out->streams = json_is_true(json_object_get(doc, "streams"));
	if (out->streams) {
		if (n_fds < 2) {
			rc = mesh_errf(err, -EPROTO, "request: \"streams\" needs two descriptors (stdout, stderr)");
			goto fail;
		}
		out->stdout_fd = fds[0];
		out->stderr_fd = fds[1];
		fds[0] = fds[1] = -1;
		used = 2;
		json_t *pace = json_object_get(doc, "progress");
		if (pace && (!json_is_integer(pace) || json_integer_value(pace) < 0
			     || json_integer_value(pace) > 60000)) {
			rc = mesh_errf(err, -EPROTO, "request: \"progress\" must be milliseconds, 0 to 60000");
			goto fail;
		}
		out->progress_ms = pace ? (unsigned)json_integer_value(pace) : 0;
		if (json_is_true(json_object_get(doc, "stdin"))) {
			if (n_fds < 3) {
				rc = mesh_errf(err, -EPROTO, "request: \"stdin\" needs a third descriptor");
				goto fail;
			}
			out->has_stdin = true;
			out->stdin_fd = fds[2];
			fds[2] = -1;
			used = 3;
		}
	}
	json_t *rel = json_object_get(doc, "release");
	if (rel && !json_is_null(rel)) {
		json_t *path = json_object_get(rel, "path");
		json_t *entries = json_object_get(rel, "entries");
		if (!json_is_object(rel) || !json_is_string(path) || !json_is_array(entries)
		    || json_array_size(entries) > SERVICE_MAX_FDS) {
			rc = mesh_errf(err, -EPROTO, "request: \"release\" needs \"path\" and at most %d \"entries\"",
				       SERVICE_MAX_FDS);
			goto fail;
		}
		out->release_path = xstrdup(json_string_value(path));
		out->n_entries = json_array_size(entries);
		out->entries = xcalloc(out->n_entries ? out->n_entries : 1, sizeof *out->entries);
		for (size_t i = 0; i < out->n_entries; i++)
			out->entries[i].fd = -1;
		for (size_t i = 0; i < out->n_entries; i++) {
			json_t *e = json_array_get(entries, i);
			json_t *name = json_object_get(e, "name");
			json_t *type = json_object_get(e, "type");
			const char *nm = json_is_string(name) ? json_string_value(name) : NULL;
			if (!nm || !*nm || strlen(nm) != json_string_length(name) || strchr(nm, '/') || strlen(nm) > NAME_MAX
			    || !strcmp(nm, ".") || !strcmp(nm, "..") || !json_is_string(type)) {
				rc = mesh_errf(err, -EPROTO, "request: release entry %zu: a file name and a type", i);
				goto fail;
			}
			enum service_entry_type t = SERVICE_ENTRY_OTHER;
			for (int k = 0; k < 4; k++)
				if (!strcmp(json_string_value(type), entry_type_names[k]))
					t = (enum service_entry_type)k;
			out->entries[i].name = xstrdup(nm);
			out->entries[i].type = t;
			if (t == SERVICE_ENTRY_FILE) {
				if (used >= n_fds) {
					rc = mesh_errf(err, -EPROTO, "request: release entry %s: no descriptor", nm);
					goto fail;
				}
				out->entries[i].fd = fds[used];
				fds[used++] = -1;
			}
		}
	}
	if (used != n_fds) {
		rc = mesh_errf(err, -EPROTO, "request: %zu descriptors sent, %zu described", n_fds, used);
		goto fail;
	}
	json_decref(doc);
	return 0;
fail:
	json_decref(doc);
	close_all(fds, n_fds);
	service_request_free(out);
	return rc;
}

char *service_request_encode(const struct service_request *r, int *fds, size_t *n_fds)
{
	json_t *doc = json_object();
	json_object_set_new(doc, "meshfs", json_integer(SERVICE_PROTO_VERSION));
	json_t *args = json_array();
	for (int i = 0; i < r->argc; i++)
		json_array_append_new(args, json_string(r->argv[i]));
	json_object_set_new(doc, "argv", args);
	json_object_set_new(doc, "json", json_boolean(r->json));
	*n_fds = 0;
	if (r->streams) {
		json_object_set_new(doc, "streams", json_true());
		fds[(*n_fds)++] = r->stdout_fd;
		fds[(*n_fds)++] = r->stderr_fd;
		if (r->progress_ms)
			json_object_set_new(doc, "progress", json_integer(r->progress_ms));
		if (r->has_stdin) {
			json_object_set_new(doc, "stdin", json_true());
			fds[(*n_fds)++] = r->stdin_fd;
		}
	}
	if (r->release_path) {
		json_t *rel = json_object(), *entries = json_array();
		json_object_set_new(rel, "path", json_string(r->release_path));
		for (size_t i = 0; i < r->n_entries; i++) {
			json_t *e = json_object();
			json_object_set_new(e, "name", json_string(r->entries[i].name));
			json_object_set_new(e, "type", json_string(entry_type_names[r->entries[i].type]));
			json_array_append_new(entries, e);
			if (r->entries[i].type == SERVICE_ENTRY_FILE)
				fds[(*n_fds)++] = r->entries[i].fd;
		}
		json_object_set_new(rel, "entries", entries);
		json_object_set_new(doc, "release", rel);
	}
	char *text = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	return text;
}

/* ---- who is asking ---- */

int service_peer_identity(int sock, struct identity *who, pid_t *pid, struct mesh_err *err)
{
	struct ucred cred;
	socklen_t len = sizeof cred;
	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return mesh_errf(err, -errno, "SO_PEERCRED: %s", strerror(errno));
	gid_t groups[IDENTITY_MAX_GROUPS + 1];
	socklen_t glen = sizeof groups;
	if (getsockopt(sock, SOL_SOCKET, SO_PEERGROUPS, groups, &glen) < 0) {
		if (errno == ERANGE)
			return mesh_errf(err, -E2BIG, "uid %u is in more than %d groups: refused (a dropped group "
				"could hide a deny rule)", (unsigned)cred.uid, IDENTITY_MAX_GROUPS);
		return mesh_errf(err, -errno, "SO_PEERGROUPS: %s", strerror(errno));
	}
	int n = (int)(glen / sizeof(gid_t));
	if (n > IDENTITY_MAX_GROUPS)
		return mesh_errf(err, -E2BIG, "uid %u is in more than %d groups: refused (a dropped group could "
			"hide a deny rule)", (unsigned)cred.uid, IDENTITY_MAX_GROUPS);
	identity_from_ids(who, cred.uid, cred.gid, groups, n);
	if (pid)
		*pid = cred.pid;
	return 0;
}
