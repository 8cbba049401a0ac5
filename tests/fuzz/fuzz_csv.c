/* libFuzzer target: the CSV reader over arbitrary bytes, and validation of
 * the same bytes as a data file against a small typed contract. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "contract.h"
#include "csv.h"
#include "validate.h"

#include "tmpdir.h"

static const char contract_text[] =
	"apiVersion: v3.1.0\nkind: DataContract\nid: f\nversion: 1.0.0\nstatus: active\n"
	"schema:\n  - name: t\n    physicalName: t.csv\n    properties:\n"
	"      - {name: id, logicalType: integer, primaryKey: true}\n"
	"      - {name: v, logicalType: string, quality: [{metric: invalidValues, arguments: {pattern: '^[a-z]+$'}, mustBe: 0}]}\n"
	"      - {name: t, logicalType: timestamp, unique: true}\n";

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
	int dfd = fuzz_tmpdir_file("fuzz_csv", "t.csv", data, size);
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
