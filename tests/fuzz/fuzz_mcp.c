/* libFuzzer target: the MCP server's JSON-RPC message handling (mcp.h) on
 * arbitrary lines: every message gets a well-formed answer or none, and a
 * response is always one line of JSON. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mcp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct mcp_server *s;
	if (!s) {
		struct mcp_options o = {.store = "/nonexistent-meshfs-store", .mount = "/nonexistent-mount"};
		identity_from_ids(&o.caller, 65534, 65534, NULL, 0);
		s = mcp_server_new(&o);
	}
	char *out = mcp_handle(s, (const char *)data, size);
	if (out) {
		if (strchr(out, '\n'))
			abort();
		json_t *j = json_loads(out, 0, NULL);
		if (!j || !json_is_object(j) || strcmp(json_string_value(json_object_get(j, "jsonrpc")), "2.0"))
			abort();
		json_decref(j);
		free(out);
	}
	return 0;
}
