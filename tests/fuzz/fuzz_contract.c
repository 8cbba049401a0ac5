/* libFuzzer target: contract_parse on arbitrary bytes must never crash,
 * leak or read out of bounds; a parsed contract is always freeable. */
#include <stddef.h>
#include <stdint.h>

#include "contract.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct contract *c = NULL;
	struct mesh_err err = {0};
	if (contract_parse((const char *)data, size, "fuzz.yaml", &c, &err) == 0) {
		contract_check_publishable(c, &err);
		contract_object_for_file(c, "data.csv");
		contract_free(c);
	}
	return 0;
}
