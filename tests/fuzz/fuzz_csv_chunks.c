/* libFuzzer target: the chunked CSV path.  The span reader over arbitrary
 * bytes must find the records the memory reader finds, and validating the
 * bytes in small chunks with several threads must give the report of one
 * thread reading the whole file (the first byte picks the chunk size). */
#include <jansson.h>
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
	"      - {name: v, logicalType: string, unique: true, quality: [{metric: invalidValues, arguments: {pattern: '^[a-z]+$'}, mustBe: 0}]}\n"
	"      - {name: t, logicalType: timestamp, required: true}\n";

static void same_records(const uint8_t *data, size_t size)
{
	struct csv_reader *a = csv_reader_mem((const char *)data, size, "f.csv");
	struct csv_reader *b = csv_reader_span((const char *)data, size, "f.csv", 0, size, 1, 0);
	struct csv_record ra, rb;
	struct mesh_err ea = {0}, eb = {0};
	for (int n = 0; n < 100000; n++) {
		int x = csv_next(a, &ra, &ea), y = csv_next(b, &rb, &eb);
		if (x != y && !(x < 0 && y < 0))
			abort();
		if (x <= 0) {
			if (x < 0 && strcmp(ea.msg, eb.msg) && !strstr(eb.msg, "a record longer than"))
				abort();
			break;
		}
		if (ra.n != rb.n || ra.line != rb.line || ra.row != rb.row || ra.offset != rb.offset)
			abort();
		for (size_t i = 0; i < ra.n; i++)
			if (ra.fields[i].len != rb.fields[i].len ||
			    memcmp(ra.fields[i].ptr, rb.fields[i].ptr, ra.fields[i].len))
				abort();
	}
	csv_reader_free(a);
	csv_reader_free(b);
}

static char *report(const struct contract *c, int dfd, struct validate_options *opts)
{
	struct validate_report *rep = NULL;
	struct mesh_err err = {0};
	if (validate_file(c, &c->objects[0], dfd, "t.csv", opts, &rep, &err))
		return NULL;
	json_t *j = validate_report_json(rep);
	char *text = json_dumps(j, JSON_SORT_KEYS);
	json_decref(j);
	validate_report_free(rep);
	return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t chunk = 1 + data[0] % 48;
	data++, size--;
	same_records(data, size);

	static struct contract *c;
	struct mesh_err err = {0};
	if (!c && contract_parse(contract_text, sizeof contract_text - 1, "c.yaml", &c, &err))
		abort();
	/* a real file named *.csv (validate_file opens by name without
	 * following links, and picks the format by the suffix) */
	int dfd = fuzz_tmpdir_file("fuzz_csv_chunks", "t.csv", data, size);
	struct validate_options one = {.threads = 1, .now = 1}, many = {.threads = 3, .chunk_bytes = chunk, .now = 1,
									  .unique_memory = chunk % 2 ? 64 : 0};
	char *a = report(c, dfd, &one), *b = report(c, dfd, &many);
	if (!a || !b || strcmp(a, b))
		abort();
	free(a);
	free(b);
	return 0;
}
