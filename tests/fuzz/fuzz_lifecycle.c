/* libFuzzer target: lifecycle_record_parse, the per-version lifecycle
 * records any host may write into a shared store. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lifecycle_entry e;
	struct mesh_err err = {0};
	if (lifecycle_record_parse((const char *)data, size, "1.0.0", &e, &err) == 0) {
		struct lifecycle_table t = {.entries = malloc(sizeof e), .n = 1};
		t.entries[0] = e;
		if (lifecycle_of(&t, "1.0.0") > LC_RETIRED)
			abort();
		lifecycle_table_free(&t);
	}
	return 0;
}
