/*
 * fuzz_mask.c - libFuzzer target for mask.c.
 *
 * Input: byte 0 picks the format (bit 0) and the checkpoint interval
 * (bits 1-3), byte 1 picks the columns to mask, the rest is the file.  For
 * every file the index accepts: the whole masked file has the same length,
 * differs only in mask bytes, parses again (same format, same header) and
 * masks to itself; every window tried equals the same slice of the whole.
 * Anything else aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mask.h"
#include "mesh_util.h"

#define REQUIRE(cond) do { if (!(cond)) { fprintf(stderr, "fuzz_mask: %s failed at line %d\n", #cond, __LINE__); abort(); } } while (0)

static int memfd_with(const uint8_t *data, size_t len)
{
	int fd = memfd_create("fuzz-mask", 0);
	REQUIRE(fd >= 0);
	REQUIRE(mesh_write_all(fd, data, len) == 0);
	return fd;
}

static char *mask_all(const struct mask_index *ix, const struct mask_plan *plan, int fd, size_t size)
{
	char *out = xmalloc(size + 1);
	size_t got = 0;
	struct mesh_err err = {0};
	int rc = mask_read(ix, plan, fd, out, size + 1, 0, &got, &err);
	if (rc)
		fprintf(stderr, "fuzz_mask: %s\n", err.msg);
	REQUIRE(rc == 0);
	REQUIRE(got == size);
	return out;
}

static void check_window(const struct mask_index *ix, const struct mask_plan *plan, int fd, const char *whole,
			 size_t size, size_t offset, size_t len)
{
	char *buf = xmalloc(len ? len : 1);
	size_t got = 0;
	struct mesh_err err = {0};
	REQUIRE(mask_read(ix, plan, fd, buf, len, (off_t)offset, &got, &err) == 0);
	size_t want = offset >= size ? 0 : (len < size - offset ? len : size - offset);
	REQUIRE(got == want);
	REQUIRE(!memcmp(buf, whole + (offset < size ? offset : 0), want));
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	static const size_t intervals[] = {64, 128, 192, 256, 320, 4096, MASK_INTERVAL, 64};
	enum mask_format format = data[0] & 1 ? MASK_JSONL : MASK_CSV;
	size_t interval = intervals[(data[0] >> 1) & 7];
	unsigned pick = data[1];
	const uint8_t *body = data + 2;
	size_t len = size - 2;

	int fd = memfd_with(body, len);
	struct mask_index *ix = NULL;
	struct mesh_err err = {0};
	if (mask_index_build_interval(fd, format, interval, &ix, &err)) {
		REQUIRE(ix == NULL && err.msg[0]);
		close(fd);
		return 0;
	}
	REQUIRE(mask_index_size(ix) == len);

	const char *names[8];
	size_t n = 0;
	static const char *keys[] = {"a", "b", "email", "k", "\"", "é", "0", "ab"};
	if (format == MASK_CSV) {
		for (size_t i = 0; i < mask_index_columns(ix) && n < 8; i++)
			if (pick >> (i % 8) & 1 && mask_index_column(ix, i)[0] &&
			    strlen(mask_index_column(ix, i)) <= MASK_NAME_MAX)   /* longer names are refused */
				names[n++] = mask_index_column(ix, i);
	} else {
		for (size_t i = 0; i < 8; i++)
			if (pick >> i & 1)
				names[n++] = keys[i];
	}
	struct mask_plan *plan = NULL;
	REQUIRE(mask_plan_new(ix, names, n, &plan, &err) == 0);

	char *whole = mask_all(ix, plan, fd, len);
	for (size_t i = 0; i < len; i++)
		if (whole[i] != (char)body[i])
			REQUIRE(format == MASK_CSV ? whole[i] == '*' : strchr("*0 nul", whole[i]) != NULL);

	/* windows: pseudo-random ones, and around the first checkpoints */
	uint64_t x = 0x9e3779b97f4a7c15ull ^ len;
	for (size_t i = 0; i < len && i < 64; i++)
		x = (x ^ body[i]) * 0x100000001b3ull;
	for (int i = 0; i < 12; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		size_t offset = (size_t)(x % (len + 2));
		size_t wlen = (size_t)((x >> 32) % (len + 3));
		check_window(ix, plan, fd, whole, len, offset, wlen);
	}
	for (size_t cp = interval; cp < len && cp < 8 * interval; cp += interval) {
		check_window(ix, plan, fd, whole, len, cp - 1, 3);
		check_window(ix, plan, fd, whole, len, cp, interval);
	}
	if (len <= 300)
		for (size_t offset = 0; offset < len; offset++)
			check_window(ix, plan, fd, whole, len, offset, 1);

	/* the masked file parses again, with the same header, and masks to itself */
	int masked_fd = memfd_with((const uint8_t *)whole, len);
	struct mask_index *again = NULL;
	int rc = mask_index_build_interval(masked_fd, format, interval, &again, &err);
	if (rc)
		fprintf(stderr, "fuzz_mask: masked output does not parse: %s\n", err.msg);
	REQUIRE(rc == 0);
	REQUIRE(mask_index_columns(again) == mask_index_columns(ix));
	for (size_t i = 0; i < mask_index_columns(ix); i++)
		REQUIRE(!strcmp(mask_index_column(again, i), mask_index_column(ix, i)));
	struct mask_plan *plan_again = NULL;
	REQUIRE(mask_plan_new(again, names, n, &plan_again, &err) == 0);
	char *twice = mask_all(again, plan_again, masked_fd, len);
	REQUIRE(!memcmp(twice, whole, len));

	free(twice);
	mask_plan_free(plan_again);
	mask_index_free(again);
	close(masked_fd);
	free(whole);
	mask_plan_free(plan);
	mask_index_free(ix);
	close(fd);
	return 0;
}
