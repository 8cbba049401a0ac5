/* libFuzzer target: audit_state_parse, the record of the last clean store
 * audit that the daemon reads back from its state directory (a file on
 * disk: damaged, truncated or planted, it must be refused, never trusted
 * in part).  Each input is parsed as it is and again with its trailing
 * SHA-256 made right, so the fuzzer gets past the checksum. */
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit_state.h"

static void parse(const uint8_t *data, size_t size)
{
	struct audit_state *st = NULL;
	struct mesh_err err = {0};
	if (audit_state_parse(data, size, "/store", 1, 2, &st, &err) == 0) {
		/* what parses is whole: every parent earlier, every name findable */
		for (size_t i = 1; i < st->n; i++) {
			const struct audit_dir_rec *r = &st->recs[i];
			if (r->parent >= i || audit_state_find(st, r->parent, st->names + r->name_off, r->name_len) != i)
				abort();
		}
		char *buf;
		size_t len;
		audit_state_serialize(st, &buf, &len);
		if (len != size || memcmp(buf, data, size))
			abort();
		free(buf);
		audit_state_free(st);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	parse(data, size);
	if (size >= 32) {
		uint8_t *copy = malloc(size);
		memcpy(copy, data, size);
		unsigned int n = 0;
		EVP_Digest(copy, size - 32, copy + size - 32, &n, EVP_sha256(), NULL);
		parse(copy, size);
		free(copy);
	}
	return 0;
}
