/* libFuzzer target: mesh_escape_text over arbitrary bytes (user-written
 * reasons, descriptions and names shown on terminals).  Whatever comes in,
 * what comes out is valid UTF-8 with no C0 control, DEL or C1 control
 * (U+0080..U+009F), so it cannot drive a terminal. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mesh_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size + 1);
	memcpy(in, data, size);
	in[size] = '\0';
	char *out = mesh_escape_text(in);
	for (const unsigned char *p = (const unsigned char *)out; *p;) {
		if (*p < 0x20 || *p == 0x7f)
			abort();
		if (*p < 0x80) {
			p++;
			continue;
		}
		size_t n = *p >= 0xf0 ? 4 : *p >= 0xe0 ? 3 : *p >= 0xc2 ? 2 : 0;
		if (!n || *p > 0xf4)
			abort();
		for (size_t i = 1; i < n; i++)
			if ((p[i] & 0xc0) != 0x80)
				abort();
		if (n == 2 && p[0] == 0xc2 && p[1] < 0xa0)
			abort();
		p += n;
	}
	free(out);
	free(in);
	return 0;
}
