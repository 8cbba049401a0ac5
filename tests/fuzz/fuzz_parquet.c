/* libFuzzer target: the Parquet reader over arbitrary bytes - the footer
 * (magic, length, Thrift compact FileMetaData, schema walk, row-group
 * checks, statistics) and every column's pages (headers, decompression,
 * levels, PLAIN and dictionary values). */
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "parquet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz.parquet", 0);
	if (fd < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	struct parquet_file *pf = NULL;
	struct mesh_err err = {0};
	if (parquet_open(fd, "fuzz.parquet", &pf, &err) == 0) {
		size_t budget = 1u << 20;
		for (size_t i = 0; i < parquet_num_columns(pf); i++) {
			struct parquet_cursor *cur = NULL;
			if (parquet_cursor_open(pf, i, &cur, &err))
				continue;
			const char *v;
			size_t n;
			bool is_null;
			volatile unsigned sum = 0;
			while (budget-- && parquet_cursor_next(cur, &v, &n, &is_null, &err) == 1)
				if (!is_null && n)
					sum += (unsigned char)v[n - 1];   /* touch the value's bytes */
			parquet_cursor_free(cur);
		}
		parquet_close(pf);
	}
	close(fd);
	return 0;
}
