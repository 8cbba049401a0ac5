/* libFuzzer target: descriptor_parse (ODPS product.yaml from a release),
 * then rendering it as served, with and without output ports. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "descriptor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct descriptor *d = NULL;
	struct mesh_err err = {0};
	if (descriptor_parse((const char *)data, size, "fuzz.yaml", &d, &err))
		return 0;
	struct descriptor_port ports[] = {{"1.0.0", "id-1", "active"}, {"1.1.0", NULL, "deprecated"}};
	char *out = descriptor_render(d, NULL, "a", "b", "active", ports, 2);
	/* what meshfs serves must parse again */
	struct descriptor *back = NULL;
	if (descriptor_parse(out, strlen(out), "served.yaml", &back, &err))
		abort();
	descriptor_free(back);
	free(out);
	descriptor_free(d);
	return 0;
}
