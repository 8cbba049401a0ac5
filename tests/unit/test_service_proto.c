/* Unit tests for service_proto.c: a request survives encode and parse
 * (argv, streams, the client's progress pace), and a malformed pace is
 * refused rather than guessed. */
#include "check.h"
#include "service_proto.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

/* Parse `text` with two fresh descriptors (the streams). */
static int parse_with_streams(const char *text, struct service_request *out, struct mesh_err *err)
{
	int fds[2] = {open("/dev/null", O_RDONLY | O_CLOEXEC), open("/dev/null", O_WRONLY | O_CLOEXEC)};
	return service_request_parse(text, strlen(text), fds, 2, out, err);
}

int main(void)
{
	char *argv[] = {"publish", "rel", NULL};
	struct service_request req = {.argv = argv, .argc = 2, .streams = true, .stdout_fd = 1,
				      .stderr_fd = 2, .progress_ms = 250, .stdin_fd = -1};
	int fds[SERVICE_MAX_FDS + 2];
	size_t n_fds = 0;
	char *text = service_request_encode(&req, fds, &n_fds);
	CHECK(n_fds == 2);
	CHECK_CONTAINS(text, "\"progress\":250");
	struct service_request got = {0};
	struct mesh_err err = {0};
	CHECK(parse_with_streams(text, &got, &err) == 0);
	CHECK(got.argc == 2 && !strcmp(got.argv[0], "publish"));
	CHECK(got.streams && got.progress_ms == 250);
	service_request_free(&got);
	free(text);

	/* no pace: no field, and none after parsing */
	req.progress_ms = 0;
	text = service_request_encode(&req, fds, &n_fds);
	CHECK(!strstr(text, "progress"));
	memset(&got, 0, sizeof got);
	CHECK(parse_with_streams(text, &got, &err) == 0);
	CHECK(got.progress_ms == 0);
	service_request_free(&got);
	free(text);

	static const char *bad[] = {
		"{\"meshfs\": 1, \"argv\": [\"publish\"], \"streams\": true, \"progress\": -1}",
		"{\"meshfs\": 1, \"argv\": [\"publish\"], \"streams\": true, \"progress\": 60001}",
		"{\"meshfs\": 1, \"argv\": [\"publish\"], \"streams\": true, \"progress\": \"250\"}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		memset(&got, 0, sizeof got);
		err.msg[0] = '\0';
		CHECK(parse_with_streams(bad[i], &got, &err) == -EPROTO);
		CHECK_CONTAINS(err.msg, "\"progress\" must be milliseconds");
		service_request_free(&got);
	}
	return check_done("test_service_proto");
}
