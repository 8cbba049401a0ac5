/* libFuzzer target: card_render on an arbitrary template (a stored card,
 * markers included) for a masked, a clear and a denied reader, and
 * mesh_xattr_escape on the same bytes: never a crash, a leak or a read
 * out of bounds; an escaped value is bounded and has no control byte. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "card_reader.h"
#include "mesh_xattr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct policy_mask masks[2] = {{"pii", "hash", 0, "mesh.yaml:1"}, {"x", "truncate", 2.5, "mesh.yaml:2"}};
	struct policy_decision decs[3] = {{.result = POLICY_MASK, .masked = masks, .n_masked = 2},
					  {.result = POLICY_ALLOW}, {.result = POLICY_DENY}};
	for (int i = 0; i < 3; i++) {
		size_t len = 0;
		char *out = card_render((const char *)data, size, "d", "p", NULL, &decs[i], &len);
		if (strlen(out) > len)
			abort();
		free(out);
	}
	char *text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';
	char value[MESH_XATTR_VALUE_MAX + 1];
	size_t n = mesh_xattr_escape(text, value, sizeof value);
	if (n > MESH_XATTR_VALUE_MAX || strlen(value) != n)
		abort();
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)value[i] < 0x20 || value[i] == 0x7f)
			abort();
	free(text);
	return 0;
}
