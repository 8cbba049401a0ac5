/* libFuzzer target: schema_parse, then JSON round trip and a diff against
 * itself (which must find no change). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct table_schema *s = NULL;
	struct mesh_err err = {0};
	if (schema_parse((const char *)data, size, "fuzz.json", &s, &err))
		return 0;
	char *json = NULL;
	if (schema_to_json(s, &json) == 0) {
		struct table_schema *back = NULL;
		if (schema_parse(json, strlen(json), "round.json", &back, &err) == 0) {
			struct schema_change *ch = NULL;
			size_t n = 0;
			schema_diff(s, back, &ch, &n);
			schema_changes_free(ch, n);
			schema_free(back);
		}
		free(json);
	}
	schema_free(s);
	return 0;
}
