/*
 * fuzz_mask.c - libFuzzer target for the view transform (view_build.c)
 * and the mask functions (view_mask.c).
 *
 * Input: byte 0 picks the format (bit 0) and the functions (bits 1-3),
 * byte 1 picks the columns to mask, the rest is the file.  A build either
 * refuses the file (-EINVAL, or -ENOENT for a column the CSV header lacks,
 * with a message) or succeeds; then its output is accepted again by the
 * same plan, and under null/redact masking the output again changes
 * nothing (missing stays missing, "***" stays "***").  CSV: the per-line
 * fast path gives what the state machine gives (bytes and errors).  The file-descriptor
 * build gives the same bytes as the in-memory one.  Anything else aborts.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mesh_util.h"
#include "view_build.h"
#include "view_mask.h"

#define REQUIRE(cond) do { if (!(cond)) { fprintf(stderr, "fuzz_mask: %s failed at line %d\n", #cond, __LINE__); abort(); } } while (0)

static const unsigned char secret[VIEW_SECRET_LEN] = "fuzz-secret-fuzz-secret-fuzz-sec";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	enum view_format format = data[0] & 1 ? VIEW_JSONL : VIEW_CSV;
	unsigned fns = (data[0] >> 1) & 7;
	unsigned pick = data[1];
	const char *body = (const char *)data + 2;
	size_t len = size - 2;

	/* candidate names: CSV header fields (naively split), or fixed keys */
	static const char *keys[] = {"a", "b", "email", "a.b", "\"", "é", "items.k", "ab"};
	struct view_plan *plan = view_plan_new();
	bool idempotent = fns < 2;
	if (format == VIEW_CSV) {
		size_t end = 0;
		while (end < len && body[end] != '\n' && body[end] != '\r')
			end++;
		char *header = xstrndup(body, end), *save = NULL;
		unsigned i = 0;
		for (char *tok = strtok_r(header, ",", &save); tok && i < 8; tok = strtok_r(NULL, ",", &save), i++)
			if (pick >> i & 1)
				view_plan_add(plan, tok, fns == 1 ? VIEW_FN_REDACT : fns == 0 ? VIEW_FN_NULL
							  : (enum view_fn)(i % 6), 10);
		free(header);
	} else {
		for (unsigned i = 0; i < 8; i++)
			if (pick >> i & 1)
				view_plan_add(plan, keys[i], fns == 1 ? VIEW_FN_REDACT : fns == 0 ? VIEW_FN_NULL
							     : (enum view_fn)(i % 6), 0.5);
	}
	view_plan_seal(plan);

	struct strbuf out = STRBUF_INIT;
	struct mesh_err err = {0};
	int rc = view_build_buffer(body, len, format, plan, secret, &out, &err);
	if (format == VIEW_CSV) {
		/* the per-line fast path and the state machine agree, byte for byte */
		struct strbuf slow = STRBUF_INIT;
		struct mesh_err serr = {0};
		view_build_csv_fast_path(false);
		int src = view_build_buffer(body, len, format, plan, secret, &slow, &serr);
		view_build_csv_fast_path(true);
		REQUIRE(src == rc && !strcmp(serr.msg, err.msg));
		REQUIRE(rc || (slow.len == out.len && !memcmp(slow.buf, out.buf, out.len)));
		strbuf_release(&slow);
	}
	if (rc) {
		REQUIRE((rc == -EINVAL || rc == -ENOENT) && err.msg[0]);
	} else {
		/* the same from a file descriptor */
		int in = memfd_create("fuzz-in", 0), dst = memfd_create("fuzz-out", 0);
		REQUIRE(in >= 0 && dst >= 0 && mesh_write_all(in, body, len) == 0);
		struct view_build_result res;
		REQUIRE(view_build(in, dst, format, plan, secret, &res, &err) == 0);
		REQUIRE(res.in_bytes == len && res.out_bytes == out.len);
		char *back = xmalloc(out.len + 1);
		REQUIRE(pread(dst, back, out.len + 1, 0) == (ssize_t)out.len);
		REQUIRE(!memcmp(back, out.buf, out.len));
		free(back);
		close(in), close(dst);
		/* the view is itself a file the transform accepts */
		struct strbuf again = STRBUF_INIT;
		rc = view_build_buffer(out.buf, out.len, format, plan, secret, &again, &err);
		if (rc)
			fprintf(stderr, "fuzz_mask: the view does not parse: %s\n", err.msg);
		REQUIRE(rc == 0);
		if (idempotent)
			REQUIRE(again.len == out.len && !memcmp(again.buf, out.buf, out.len));
		strbuf_release(&again);
	}
	strbuf_release(&out);
	view_plan_free(plan);
	return 0;
}
