/* libFuzzer target: the Parquet view writer over arbitrary bytes - picking
 * the leaves a plan covers, laying out the kept column chunks, rewriting
 * the footer through Thrift.  The first input byte chooses which leaf the
 * plan leaves out; the rest is the file.  A view that is built must be a
 * Parquet file parquet_open accepts, with one leaf fewer (or fewer, when
 * the name covers a group) and the same row count. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "parquet.h"
#include "view_build.h"

static int memfd_of(const void *data, size_t size)
{
	int fd = memfd_create("fuzz.parquet", 0);
	if (fd >= 0 && write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return -1;
	}
	return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int fd = memfd_of(data + 1, size - 1);
	if (fd < 0)
		return 0;
	struct parquet_file *pf = NULL;
	struct mesh_err err = {0};
	if (parquet_open(fd, "fuzz.parquet", &pf, &err)) {
		close(fd);
		return 0;
	}
	size_t n = parquet_num_columns(pf);
	int64_t rows = parquet_num_rows(pf);
	struct view_plan *plan = view_plan_new();
	view_plan_add(plan, parquet_column_at(pf, data[0] % n)->name, VIEW_FN_OMIT, 0);
	view_plan_seal(plan);
	parquet_close(pf);
	close(fd);

	struct strbuf out = STRBUF_INIT;
	if (view_build_buffer((const char *)data + 1, size - 1, VIEW_PARQUET, plan, NULL, &out, &err) == 0) {
		int vfd = memfd_of(out.buf, out.len);
		struct parquet_file *view = NULL;
		if (vfd < 0 || parquet_open(vfd, "view.parquet", &view, &err))
			abort();            /* the writer wrote something its own reader refuses */
		if (parquet_num_columns(view) >= n || parquet_num_rows(view) != rows)
			abort();
		parquet_close(view);
		close(vfd);
	}
	strbuf_release(&out);
	view_plan_free(plan);
	return 0;
}
