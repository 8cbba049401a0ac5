/*
 * fuzz_sidecar.c - libFuzzer target for view_sidecar.c (schema.json and
 * quality.json as masked readers see them).
 *
 * Input: byte 0 picks schema (bit 0) or quality, the rest is the document.
 * Either the document is refused (-EINVAL with a message) or the output is
 * JSON that parses again, names the plan, and (quality) holds no value of
 * an example on a hidden column.
 */
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "view_mask.h"
#include "view_sidecar.h"

#define REQUIRE(cond) do { if (!(cond)) { fprintf(stderr, "fuzz_sidecar: %s failed at line %d\n", #cond, __LINE__); abort(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	struct view_plan *plan = view_plan_new();
	view_plan_add(plan, "email", VIEW_FN_HASH, 0);
	view_plan_add(plan, "a", VIEW_FN_YEAR, 0);
	view_plan_add(plan, "b", VIEW_FN_TRUNCATE, 10);
	view_plan_seal(plan);
	char *out = NULL;
	size_t out_len = 0;
	struct mesh_err err = {0};
	int rc = data[0] & 1 ? view_sidecar_schema((const char *)data + 1, size - 1, plan, &out, &out_len, &err)
			     : view_sidecar_quality((const char *)data + 1, size - 1, plan, &out, &out_len, &err);
	if (rc) {
		REQUIRE(rc == -EINVAL && err.msg[0] && !out);
	} else {
		json_t *again = json_loadb(out, out_len, 0, NULL);
		REQUIRE(json_is_object(again));
		REQUIRE(!strcmp(json_string_value(json_object_get(again, "meshView")), plan->text));
		json_decref(again);
	}
	free(out);
	view_plan_free(plan);
	return 0;
}
