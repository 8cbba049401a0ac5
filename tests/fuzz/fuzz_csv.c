/* libFuzzer target: the CSV reader over arbitrary bytes, and validation of
 * the same bytes as a data file against a small typed contract. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <fcntl.h>

#include "contract.h"
#include "csv.h"
#include "validate.h"

static const char contract_text[] =
	"apiVersion: v3.1.0\nkind: DataContract\nid: f\nversion: 1.0.0\nstatus: active\n"
	"schema:\n  - name: t\n    physicalName: t.csv\n    properties:\n"
	"      - {name: id, logicalType: integer, primaryKey: true}\n"
	"      - {name: v, logicalType: string, quality: [{metric: invalidValues, arguments: {pattern: '^[a-z]+$'}, mustBe: 0}]}\n"
	"      - {name: t, logicalType: timestamp, unique: true}\n";

static char tmp_dir[64];

static void remove_tmp(void)
{
	char path[96];
	snprintf(path, sizeof path, "%s/t.csv", tmp_dir);
	unlink(path);
	rmdir(tmp_dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct csv_reader *r = csv_reader_mem((const char *)data, size, "fuzz.csv");
	struct csv_record rec;
	struct mesh_err err = {0};
	int n = 0;
	while (csv_next(r, &rec, &err) == 1 && n++ < 100000)
		for (size_t i = 0; i < rec.n; i++)
			if (rec.fields[i].len && rec.fields[i].ptr[rec.fields[i].len - 1] == '\0')
				n++;   /* touch every field's bytes */
	csv_reader_free(r);

	static struct contract *c;
	if (!c && contract_parse(contract_text, sizeof contract_text - 1, "c.yaml", &c, &err))
		abort();
	/* a real file named *.csv (validate_file opens by name without
	 * following links, and picks the format by the suffix) */
	static int dfd = -1;
	if (dfd < 0) {
		snprintf(tmp_dir, sizeof tmp_dir, "/tmp/fuzz_csv.%d", (int)getpid());
		mkdir(tmp_dir, 0700);
		dfd = open(tmp_dir, O_RDONLY | O_DIRECTORY);
		if (dfd < 0)
			abort();
		atexit(remove_tmp);
	}
	int fd = openat(dfd, "t.csv", O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	close(fd);
	struct validate_report *rep = NULL;
	struct validate_options opts = {.unique_memory = 4096};   /* exercise the spill path */
	if (validate_file(c, &c->objects[0], dfd, "t.csv", &opts, &rep, &err) != 0)
		abort();   /* a readable file is always reported on */
	{
		char *text = validate_report_text(rep, false);
		free(text);
		validate_report_free(rep);
	}
	return 0;
}
