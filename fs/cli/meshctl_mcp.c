/*
 * meshctl_mcp.c - `meshctl mcp [--mount DIR]`: the MCP server (mcp.c) on
 * stdin/stdout, one JSON-RPC message per line, as the user running it.
 * The process names itself "mcp" so the mount records read_sample's reads
 * as that program.  Access requests are meshctl's own `request` command,
 * its output captured for the agent.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mcp.h"
#include "meshctl_cmds.h"
#include "meshctl_discovery.h"
#include "mesh_util.h"
#include "service_proto.h"

static const char mcp_help[] =
"usage: meshctl mcp [--mount DIR]\n"
"\n"
"An MCP server (Model Context Protocol " MCP_PROTOCOL_VERSION ") on stdin and stdout for\n"
"AI agents, as the user running it: tools search_products, describe_product,\n"
"read_sample (read through the mount at --mount, default $MESH_MOUNT or /mesh:\n"
"masked where you are masked, denied where you are denied, recorded as usage by\n"
"program \"mcp\"), request_access, lineage, product_usage (owners); resources\n"
"mesh://DOMAIN/PRODUCT (product cards).  For example, in an MCP client's\n"
"configuration:  {\"command\": \"meshctl\", \"args\": [\"mcp\"]}\n";

/* Run `meshctl request REF --reason TEXT` with its output captured. */
static int request_access(void *ctx, const char *ref, const char *reason, char **text)
{
	const struct meshctl_ctx *mctx = ctx;
	fflush(stdout);
	fflush(stderr);
	FILE *cap = tmpfile();
	if (!cap)
		return -errno;
	int saved_out = dup(STDOUT_FILENO), saved_err = dup(STDERR_FILENO);
	dup2(fileno(cap), STDOUT_FILENO);
	dup2(fileno(cap), STDERR_FILENO);
	char *argv[] = {"request", (char *)ref, "--reason", (char *)reason, NULL};
	int st = meshctl_cmd_request(mctx, 4, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(saved_out, STDOUT_FILENO);
	dup2(saved_err, STDERR_FILENO);
	close(saved_out);
	close(saved_err);
	struct strbuf sb = STRBUF_INIT;
	rewind(cap);
	char buf[4096];
	size_t n;
	while ((n = fread(buf, 1, sizeof buf, cap)) > 0)
		strbuf_add(&sb, buf, n);
	fclose(cap);
	*text = strbuf_detach(&sb, NULL);
	return st == MESHCTL_OK ? 0 : st == MESHCTL_DENIED ? -EACCES : -EINVAL;
}

/* Served by the mesh service, this process has the service's rights: a
 * file under the mount is opened by a child that has become the caller
 * (their uid, gid and groups), so the daemon decides, masks and records
 * for them, exactly as when they run meshctl mcp on a store they may read.
 * The child hands the open descriptor back.  A service that is not root
 * cannot become anyone: then nothing is opened. */
static int open_as_caller(void *ctx, const char *path)
{
	const struct identity *who = &((const struct meshctl_ctx *)ctx)->caller;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(sv[0]);
		close(sv[1]);
		return -e;
	}
	if (pid == 0) {
		close(sv[0]);
		int rc = identity_become(who);
		int fd = rc ? -1 : open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (!rc && fd < 0)
			rc = -errno;
		char msg[32];
		int n = snprintf(msg, sizeof msg, "{\"rc\":%d}", rc);
		service_send(sv[1], msg, (size_t)n, fd >= 0 ? &fd : NULL, fd >= 0 ? 1 : 0, NULL);
		_exit(0);
	}
	close(sv[1]);
	char *reply = NULL;
	size_t len = 0, n_fds = 0;
	int fd = -1;
	int rc = service_recv(sv[0], 256, &reply, &len, &fd, 1, &n_fds, NULL);
	close(sv[0]);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	int child_rc = -EIO;
	if (!rc && reply)
		sscanf(reply, "{\"rc\":%d}", &child_rc);
	free(reply);
	if (rc)
		return rc;
	if (n_fds == 1)
		return fd;
	return child_rc ? child_rc : -EIO;
}

int meshctl_cmd_mcp(const struct meshctl_ctx *ctx, int argc, char **argv)
{
	const char *mount = getenv("MESH_MOUNT");
	if (!mount || !*mount)
		mount = "/mesh";
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--mount") && i + 1 < argc)
			mount = argv[++i];
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(mcp_help, stdout);
			return MESHCTL_OK;
		} else {
			meshctl_fail(ctx, "mcp", "usage: meshctl mcp [--mount DIR]");
			return MESHCTL_USAGE;
		}
	}
	prctl(PR_SET_NAME, "mcp", 0, 0, 0);
	struct mcp_options o = {.store = ctx->store, .mount = mount, .caller = ctx->caller,
				.request_access = request_access, .request_ctx = (void *)ctx,
				.open_as_caller = ctx->served ? open_as_caller : NULL, .open_ctx = (void *)ctx};
	struct mcp_server *s = mcp_server_new(&o);
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	while ((len = getline(&line, &cap, stdin)) >= 0) {
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (!len)
			continue;
		char *out = mcp_handle(s, line, (size_t)len);
		if (out) {
			fputs(out, stdout);
			fputc('\n', stdout);
			fflush(stdout);
			free(out);
		}
	}
	free(line);
	mcp_server_free(s);
	return MESHCTL_OK;
}
