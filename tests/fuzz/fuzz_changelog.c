/* libFuzzer target: changelog_entry_parse, the change-log entries any host
 * sharing the store may write (STORE/changes/<host>/<bucket>/<entry>).
 * An accepted entry must name a valid domain and product. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "changelog.h"
#include "mesh_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char domain[65], product[65];
	if (changelog_entry_parse((const char *)data, size, domain, product) == 0 &&
	    (!mesh_name_ok(domain) || !mesh_name_ok(product) || strlen(domain) + strlen(product) + 2 != size))
		abort();
	return 0;
}
