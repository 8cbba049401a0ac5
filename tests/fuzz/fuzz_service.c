/*
 * fuzz_service.c - the mesh service's request parser (service_proto.h):
 * any bytes, with a few descriptors attached, must parse or be refused
 * with a message, close every descriptor either way, and round-trip.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "service_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t n_fds = size ? data[0] % 4 : 0;
	int fds[4];
	for (size_t i = 0; i < n_fds; i++)
		fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int lowest = n_fds ? fds[0] : -1;
	struct service_request req;
	struct mesh_err err = {0};
	const char *text = size ? (const char *)data + 1 : "";
	size_t len = size ? size - 1 : 0;
	if (service_request_parse(text, len, fds, n_fds, &req, &err) == 0) {
		int out[SERVICE_MAX_FDS + 2];
		size_t n_out = 0;
		char *again = service_request_encode(&req, out, &n_out);
		if (!again || n_out != n_fds)
			abort();
		free(again);
		service_request_free(&req);
	} else if (!err.msg[0]) {
		abort();
	}
	/* every descriptor was taken over or closed: the next open reuses the lowest */
	int probe = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (n_fds && probe > lowest)
		abort();
	close(probe);
	return 0;
}
