/* Unit tests for csv.c, unique.c and validate.c. */
#include "check.h"
#include "contract.h"
#include "csv.h"
#include "mesh_util.h"
#include "unique.h"
#include "validate.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static int count_records(const char *text, size_t block, char fields[][64], size_t *nf, struct mesh_err *err)
{
	/* through a pipe-less fd: write a temp file and read it back in small blocks */
	char path[] = "/tmp/test_csv.XXXXXX";
	int fd = mkstemp(path);
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		return -1;
	lseek(fd, 0, SEEK_SET);
	unlink(path);
	struct csv_reader *r = csv_reader_fd(fd, "t.csv", block);
	struct csv_record rec;
	int n = 0, rc;
	*nf = 0;
	while ((rc = csv_next(r, &rec, err)) == 1) {
		n++;
		for (size_t i = 0; i < rec.n && *nf < 32; i++)
			snprintf(fields[(*nf)++], 64, "%.*s", (int)rec.fields[i].len, rec.fields[i].ptr);
	}
	csv_reader_free(r);
	close(fd);
	return rc < 0 ? rc : n;
}

static void test_csv(void)
{
	char f[32][64];
	size_t nf;
	struct mesh_err err = {0};
	const char *t1 = "a,b,c\r\n1,\"x,y\",\"he said \"\"hi\"\"\"\r\n2,\"two\nlines\",\r\n";
	for (size_t block = 1; block <= 64; block *= 2) {   /* fields straddle every block boundary */
		CHECK(count_records(t1, block, f, &nf, &err) == 3);
		CHECK(nf == 9);
		CHECK_STR(f[4], "x,y");
		CHECK_STR(f[5], "he said \"hi\"");
		CHECK_STR(f[7], "two\nlines");
		CHECK_STR(f[8], "");
	}
	CHECK(count_records("\xef\xbb\xbfid\n1", 4, f, &nf, &err) == 2 && !strcmp(f[0], "id") && !strcmp(f[1], "1"));
	CHECK(count_records("a,b\n1,\"open\n", 8, f, &nf, &err) < 0);
	CHECK_CONTAINS(err.msg, "t.csv:2:3: a quoted field is never closed");
	CHECK(count_records("a,b\n1,x\"y\n", 8, f, &nf, &err) < 0);
	CHECK_CONTAINS(err.msg, "t.csv:2:4: a quote inside an unquoted field");
	CHECK(count_records("a,b\n1,\"x\"y\n", 8, f, &nf, &err) < 0);
	CHECK_CONTAINS(err.msg, "text after the closing quote");
	CHECK(count_records("a,b\n1,caf\xe9\n", 8, f, &nf, &err) < 0);
	CHECK_CONTAINS(err.msg, "t.csv:2:6: invalid UTF-8");
	CHECK(utf8_valid((const unsigned char *)"\xf0\x9f\x98\x80 ok", 7, NULL));
	CHECK(!utf8_valid((const unsigned char *)"\xed\xa0\x80", 3, NULL));   /* a surrogate */
	CHECK(!utf8_valid((const unsigned char *)"\xc0\xaf", 2, NULL));       /* overlong */
}

static int dups;
static void on_dup(void *ctx, const char *v, size_t n, uint64_t line, uint64_t row)
{
	(void)ctx, (void)v, (void)n, (void)line, (void)row;
	dups++;
}

static void test_unique(void)
{
	for (int limit = 0; limit < 2; limit++) {
		struct unique_set *s = unique_new(limit ? 1 : 64 << 20, "/tmp");
		struct mesh_err err = {0};
		dups = 0;
		char v[32];
		int errors = 0;
		for (int i = 0; i < 200000; i++) {
			int n = snprintf(v, sizeof v, "key-%d", i % 150000);
			errors += unique_add(s, v, (size_t)n, (uint64_t)i + 2, (uint64_t)i + 2, on_dup, NULL, &err) != 0;
		}
		CHECK(errors == 0);
		CHECK(unique_finish(s, on_dup, NULL, &err) == 0);
		CHECK(dups == 50000);                 /* same answer in memory and spilled */
		CHECK(unique_spilled(s) == limit);
		unique_free(s);
	}
}

static const char contract_text[] =
	"apiVersion: v3.1.0\nkind: DataContract\nid: v\nversion: 1.0.0\nstatus: active\n"
	"schema:\n  - name: t\n    physicalName: t.csv\n"
	"    quality:\n      - {metric: rowCount, mustBeGreaterThan: 2}\n"
	"    properties:\n"
	"      - {name: id, logicalType: integer, primaryKey: true}\n"
	"      - {name: email, logicalType: string, required: true, quality: [{metric: invalidValues, arguments: {pattern: '[^@]+@[^@]+'}, mustBe: 0}]}\n"
	"      - {name: state, logicalType: string, quality: [{metric: invalidValues, arguments: {validValues: [a, b]}, mustBe: 0}]}\n"
	"      - {name: amount, logicalType: number, customProperties: [{property: min, value: 0}, {property: max, value: 100}]}\n"
	"      - {name: day, logicalType: date}\n"
	"      - {name: at, logicalType: timestamp}\n"
	"      - {name: ok, logicalType: boolean}\n"
	"slaProperties:\n  - {property: freshness, value: 1, unit: d, element: t.at}\n";

static struct validate_report *run(const char *name, const char *text, size_t memory)
{
	static struct contract *c;
	struct mesh_err err = {0};
	if (!c)
		CHECK(contract_parse(contract_text, sizeof contract_text - 1, "c.yaml", &c, &err) == 0);
	char dir[] = "/tmp/test_validate.XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	int fd = openat(dfd, name, O_WRONLY | O_CREAT, 0644);
	CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
	time_t now;
	mesh_time_parse("2026-11-24T12:00:00Z", &now);
	struct validate_options opts = {.now = now, .unique_memory = memory};
	struct validate_report *rep = NULL;
	CHECK(validate_file(c, &c->objects[0], dfd, name, &opts, &rep, &err) == 0);
	unlinkat(dfd, name, 0);
	close(dfd);
	rmdir(dir);
	return rep;
}

static const struct validate_rule_result *rule(const struct validate_report *r, const char *id)
{
	for (size_t i = 0; i < r->n_rules; i++)
		if (!strncmp(r->rules[i].id, id, strlen(id)))
			return &r->rules[i];
	return NULL;
}

static void test_validate(void)
{
	const char *header = "id,email,state,amount,day,at,ok\n";
	char good[1024];
	snprintf(good, sizeof good, "%s1,a@x.io,a,1.5,2026-11-01,2026-11-24T01:00:00Z,true\n"
		 "2,b@x.io,b,100,2026-02-28,2026-11-23 10:00:00,0\n3,c@x.io,,0,,,\n", header);
	struct validate_report *r = run("t.csv", good, 0);
	CHECK(r && !validate_report_failed(r) && r->rows == 3);
	validate_report_free(r);

	char bad[2048];
	snprintf(bad, sizeof bad, "%s1,a@x.io,c,-1,2026-02-30,2026-13-01T00:00:00Z,yes\n"
		 "1,,a,101,x,2026-11-01T00:00:00Z,true\n", header);
	r = run("t.csv", bad, 0);
	CHECK(r && validate_report_failed(r));
	CHECK(rule(r, "primary_key:id")->failures == 1);
	CHECK(rule(r, "required:email")->failures == 1);
	CHECK(rule(r, "allowed_values:state")->failures == 1);
	CHECK(rule(r, "min:amount")->failures == 1 && rule(r, "max:amount")->failures == 1);
	CHECK(rule(r, "type:day")->failures == 2);
	CHECK(rule(r, "type:at")->failures == 1);
	CHECK(rule(r, "type:ok")->failures == 1);
	CHECK(rule(r, "row_count")->failures == 1);
	CHECK(rule(r, "freshness")->failures == 1);   /* newest is 23 days old */
	const struct validate_failure *f = &rule(r, "type:day")->examples[0];
	CHECK(f->line == 2 && f->row == 2 && !strcmp(f->column, "day") && !strcmp(f->value, "2026-02-30"));
	char *text = validate_report_text(r, true);
	CHECK_CONTAINS(text, "t.csv:2 row 2 column day value \"2026-02-30\": not a valid date");
	free(text);
	validate_report_free(r);

	/* 25 type errors: 20 examples, all counted */
	struct strbuf many = STRBUF_INIT;
	strbuf_puts(&many, header);
	for (int i = 0; i < 25; i++)
		strbuf_printf(&many, "%d,a@x.io,a,1,bad,2026-11-24T00:00:00Z,true\n", i);
	r = run("t.csv", many.buf, 0);
	CHECK(rule(r, "type:day")->failures == 25 && rule(r, "type:day")->n_examples == VALIDATE_MAX_EXAMPLES);
	validate_report_free(r);
	strbuf_release(&many);

	/* the spill path gives the same answer */
	struct strbuf big = STRBUF_INIT;
	strbuf_puts(&big, header);
	for (int i = 0; i < 20000; i++)
		strbuf_printf(&big, "%d,a@x.io,a,1,2026-01-01,2026-11-24T00:00:00Z,true\n", i % 19000);
	struct validate_report *in_memory = run("t.csv", big.buf, 0), *spilled = run("t.csv", big.buf, 4096);
	CHECK(rule(in_memory, "primary_key:id")->failures == 1000);
	CHECK(rule(spilled, "primary_key:id")->failures == 1000);
	validate_report_free(in_memory);
	validate_report_free(spilled);
	strbuf_release(&big);

	/* header mismatch, ragged rows, empty file, JSON Lines, opaque */
	r = run("t.csv", "id,mail\n1,x\n", 0);
	CHECK(rule(r, "columns")->failures == 1);
	CHECK_CONTAINS(rule(r, "columns")->examples[0].message, "header is \"id,mail\"");
	validate_report_free(r);
	char ragged[256];
	snprintf(ragged, sizeof ragged, "%s1,a@x.io,a,1,2026-01-01,2026-11-24T00:00:00Z\n", header);
	r = run("t.csv", ragged, 0);
	CHECK(rule(r, "row_shape")->failures == 1);
	validate_report_free(r);
	r = run("t.csv", "", 0);
	CHECK(validate_report_failed(r) && rule(r, "format")->failures == 1);
	validate_report_free(r);
	r = run("t.jsonl", "{\"id\": 1, \"email\": \"a@b\", \"amount\": \"x\", \"at\": \"2026-11-24T00:00:00Z\"}\n"
		"{\"id\": 1, \"email\": null, \"extra\": 1}\n[1]\n", 0);
	CHECK(r && r->rows == 3);
	CHECK(rule(r, "type:amount")->failures == 1);
	CHECK(rule(r, "required:email")->failures == 1);
	CHECK(rule(r, "primary_key:id")->failures == 1);
	CHECK(rule(r, "format")->failures == 1);
	CHECK(rule(r, "columns")->failures == 1 && !rule(r, "columns")->required);
	validate_report_free(r);
	r = run("t.bin", "PAR1", 0);
	CHECK(r && !r->checked && !validate_report_failed(r) && r->bytes == 4);
	validate_report_free(r);
	/* Parquet is read, not opaque: 4 bytes of magic are not a Parquet file */
	r = run("t.parquet", "PAR1", 0);
	CHECK(r && r->checked && validate_report_failed(r) && rule(r, "format")->failures == 1);
	CHECK(r && strstr(rule(r, "format")->examples[0].message, "not a Parquet file"));
	validate_report_free(r);
}

int main(void)
{
	test_csv();
	test_unique();
	test_validate();
	return check_done("test_validate");
}
