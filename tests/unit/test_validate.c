/* Unit tests for csv.c, unique.c and validate.c. */
#include "check.h"
#include "contract.h"
#include "csv.h"
#include "mesh_util.h"
#include "unique.h"
#include "validate.h"

#include <fcntl.h>
#include <jansson.h>
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

static struct validate_report *run_with(const char *name, const char *text, size_t len,
				       struct validate_options *opts);

static struct validate_report *run(const char *name, const char *text, size_t memory)
{
	struct validate_options opts = {.unique_memory = memory};
	return run_with(name, text, strlen(text), &opts);
}

static struct validate_report *run_with(const char *name, const char *text, size_t len,
				       struct validate_options *opts)
{
	static struct contract *c;
	struct mesh_err err = {0};
	if (!c)
		CHECK(contract_parse(contract_text, sizeof contract_text - 1, "c.yaml", &c, &err) == 0);
	char dir[] = "/tmp/test_validate.XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	int fd = openat(dfd, name, O_WRONLY | O_CREAT, 0644);
	CHECK(write(fd, text, len) == (ssize_t)len);
	close(fd);
	time_t now;
	mesh_time_parse("2026-11-24T12:00:00Z", &now);
	opts->now = now;
	struct validate_report *rep = NULL;
	CHECK(validate_file(c, &c->objects[0], dfd, name, opts, &rep, &err) == 0);
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

/* ---- one thread or many: the same report ---- */

static uint64_t rnd_state;
static unsigned rnd(unsigned n)
{
	rnd_state = rnd_state * 6364136223846793005ull + 1442695040888963407ull;
	return (unsigned)((rnd_state >> 33) % n);
}

/* Rows meant to break a chunked reader: duplicates far apart and close
 * by, quoted newlines (many in one field, so chunk guesses land inside
 * quotes), "" escapes, CRLF and CR line ends, every kind of failure more
 * than 20 times, ragged and blank rows. */
static void adversarial(struct strbuf *sb, unsigned seed, int rows, const char *line_end)
{
	rnd_state = seed;
	strbuf_printf(sb, "%sid,email,state,amount,day,at,ok%s", seed % 2 ? "\xef\xbb\xbf" : "", line_end);
	for (int i = 0; i < rows; i++) {
		int id = rnd(4) ? i : (int)rnd((unsigned)i + 1);   /* a quarter repeat an earlier id */
		const char *email = (const char *[]){"a@x.io", "\"q@x.io\"", "bad", "", "\"multi\nline@x\r\n.io\"",
						     "\"he said \"\"x\"\"@y\"", "\"\n\n\n\n@\n\n\n\n\""}[rnd(7)];
		const char *state = (const char *[]){"a", "b", "c", "", "\"a\""}[rnd(5)];
		const char *amount = (const char *[]){"1", "50.5", "-3", "1e2", "x", "", "nan", "101"}[rnd(8)];
		const char *day = (const char *[]){"2026-01-01", "2026-02-30", "2024-02-29", "2026-1-1", ""}[rnd(5)];
		const char *at = (const char *[]){"2026-11-24T00:00:00Z", "2026-11-23 10:00:00", "2026-11-24T25:00:00Z",
						  "2026-11-22T00:00:00.5+01:00", "yesterday", ""}[rnd(6)];
		const char *ok = (const char *[]){"true", "FALSE", "1", "yes", ""}[rnd(5)];
		switch (rnd(40)) {
		case 0:
			strbuf_printf(sb, "%d,a@x.io%s", id, line_end);   /* ragged */
			continue;
		case 1:
			strbuf_puts(sb, line_end);   /* blank: one empty field */
			continue;
		default:
			break;
		}
		strbuf_printf(sb, "%d,%s,%s,%s,%s,%s,%s%s", id, email, state, amount, day, at, ok, line_end);
	}
}

/* The report as text: every rule, count, example, line and row. */
static char *report_text(const struct validate_report *r, bool with_bytes)
{
	json_t *j = validate_report_json(r);
	if (!with_bytes)
		json_object_del(j, "bytes");
	char *text = json_dumps(j, JSON_SORT_KEYS | JSON_INDENT(1));
	json_decref(j);
	return text;
}

static void compare_threads(const char *what, const char *text, size_t len, bool against_stream)
{
	struct validate_options one = {.threads = 1};
	struct validate_report *base = run_with("t.csv", text, len, &one);
	char *want = report_text(base, true);
	if (against_stream) {
		/* the reader before chunks (fd, blocks): the same report, but for
		 * the bytes it counted when it stopped at a malformed record */
		struct validate_options stream = {.threads = 1, .stream = true};
		struct validate_report *old = run_with("t.csv", text, len, &stream);
		char *a = report_text(base, false), *b = report_text(old, false);
		if (strcmp(a, b))
			fprintf(stderr, "%s: mapped and streamed reports differ\n--- mapped\n%s\n--- streamed\n%s\n", what,
				a, b);
		CHECK(!strcmp(a, b));
		free(a);
		free(b);
		validate_report_free(old);
	}
	static const size_t chunk[] = {1, 2, 3, 7, 16, 61, 250, 1000, 4096};
	for (size_t k = 0; k < sizeof chunk / sizeof *chunk; k++)
		for (unsigned threads = 1; threads <= 4; threads += 1 + (k % 2)) {
			/* spilling (64 bytes of memory) or not gives the same report too */
			struct validate_options o = {.threads = threads, .chunk_bytes = chunk[k],
						     .unique_memory = k % 3 == 0 ? 64 : 0};
			struct validate_report *r = run_with("t.csv", text, len, &o);
			char *got = report_text(r, true);
			if (strcmp(got, want))
				fprintf(stderr, "%s: %u threads, %zu-byte chunks differ\n--- 1 thread\n%s\n--- chunked\n%s\n",
					what, threads, chunk[k], want, got);
			CHECK(!strcmp(got, want));
			free(got);
			validate_report_free(r);
		}
	free(want);
	validate_report_free(base);
}

static void test_threads(void)
{
	static const char *ends[] = {"\n", "\r\n", "\r"};
	for (unsigned seed = 1; seed <= 6; seed++) {
		struct strbuf sb = STRBUF_INIT;
		adversarial(&sb, seed, 300, ends[seed % 3]);
		char what[64];
		snprintf(what, sizeof what, "seed %u", seed);
		compare_threads(what, sb.buf, sb.len, true);
		/* malformed from the middle on: nothing after it counts */
		size_t cut = sb.len / 2;
		struct strbuf bad = STRBUF_INIT;
		strbuf_add(&bad, sb.buf, cut);
		strbuf_puts(&bad, seed % 2 ? "\n7,x\"y,a,1,,,\n" : "\n7,\"never closed,a,1\n");
		strbuf_add(&bad, sb.buf + cut, sb.len - cut);
		snprintf(what, sizeof what, "seed %u, malformed", seed);
		compare_threads(what, bad.buf, bad.len, true);
		/* no line end after the last record */
		snprintf(what, sizeof what, "seed %u, no last newline", seed);
		compare_threads(what, sb.buf, sb.len - strlen(ends[seed % 3]), true);
		strbuf_release(&bad);
		strbuf_release(&sb);
	}
	/* the duplicates of a spilled set: every one counted, the first 20 in file order */
	struct strbuf sb = STRBUF_INIT;
	strbuf_puts(&sb, "id,email,state,amount,day,at,ok\n");
	for (int i = 0; i < 30000; i++)
		strbuf_printf(&sb, "%d,a@x.io,a,1,2026-01-01,2026-11-24T00:00:00Z,true\n", (i * 7919) % 25000);
	compare_threads("spilled duplicates", sb.buf, sb.len, false);
	struct validate_options o = {.threads = 2, .chunk_bytes = 10000, .unique_memory = 4096};
	struct validate_report *r = run_with("t.csv", sb.buf, sb.len, &o);
	const struct validate_rule_result *pk = rule(r, "primary_key:id");
	CHECK(pk->failures == 5000 && pk->n_examples == 20);
	for (size_t k = 1; k < pk->n_examples; k++)
		CHECK(pk->examples[k].row > pk->examples[k - 1].row);
	CHECK(pk->examples[0].row == 25002 && pk->examples[0].line == 25002);   /* i = 25000 repeats 0 */
	validate_report_free(r);
	strbuf_release(&sb);
}

int main(void)
{
	test_csv();
	test_unique();
	test_validate();
	test_threads();
	return check_done("test_validate");
}
