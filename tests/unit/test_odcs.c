/* Unit tests for the ODCS v3.1 checks that run on files: each
 * logicalTypeOptions key and each library metric, with a passing and a
 * failing case, on a one-column CSV (validate.c, contract.c). */
#include "check.h"
#include "contract.h"
#include "validate.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Validates `csv` (header "v") against a contract whose only property is
 * `v` with the YAML mapping body `prop`; returns the result of the rule
 * whose id starts with `id` (copied into *out), or -1 when absent. */
static int judge(const char *prop, const char *csv, const char *id, struct validate_rule_result *out)
{
	char text[4096];
	snprintf(text, sizeof text,
		 "apiVersion: v3.1.0\nkind: DataContract\nid: o\nversion: 1.0.0\nstatus: active\n"
		 "schema:\n  - name: t\n    physicalName: t.csv\n    properties:\n      - name: v\n%s", prop);
	struct contract *c = NULL;
	struct mesh_err err = {0};
	if (contract_parse(text, strlen(text), "c.yaml", &c, &err)) {
		fprintf(stderr, "contract: %s\n", err.msg);
		return -2;
	}
	char dir[] = "/tmp/test_odcs.XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	int fd = openat(dfd, "t.csv", O_WRONLY | O_CREAT, 0644);
	CHECK(write(fd, csv, strlen(csv)) == (ssize_t)strlen(csv));
	close(fd);
	struct validate_report *rep = NULL;
	int found = -1;
	if (validate_file(c, &c->objects[0], dfd, "t.csv", NULL, &rep, &err) == 0) {
		for (size_t i = 0; i < rep->n_rules; i++)
			if (!strncmp(rep->rules[i].id, id, strlen(id))) {
				found = rep->rules[i].passed;
				out->checked = rep->rules[i].checked;
				out->failures = rep->rules[i].failures;
				out->required = rep->rules[i].required;
			}
		validate_report_free(rep);
	}
	unlinkat(dfd, "t.csv", 0);
	close(dfd);
	rmdir(dir);
	contract_free(c);
	return found;
}

#define PASS(prop, csv, id) do { struct validate_rule_result r_ = {0}; \
	int p_ = judge(prop, csv, id, &r_); CHECK(p_ == 1 && r_.checked); } while (0)
#define FAIL(prop, csv, id, n) do { struct validate_rule_result r_ = {0}; \
	int p_ = judge(prop, csv, id, &r_); CHECK(p_ == 0 && r_.checked && r_.failures == (n)); } while (0)

static void test_type_options(void)
{
	const char *len = "        logicalType: string\n        logicalTypeOptions: {minLength: 2, maxLength: 3}\n";
	PASS(len, "v\nab\nabc\n\xc3\xa9\xc3\xa9\xc3\xa9\n", "minLength:v");   /* characters, not bytes */
	PASS(len, "v\nab\nabc\n\xc3\xa9\xc3\xa9\xc3\xa9\n", "maxLength:v");
	FAIL(len, "v\na\nabc\n", "minLength:v", 1);
	FAIL(len, "v\nabcdef\nab\n", "maxLength:v", 1);

	/* JSON Schema semantics: found anywhere; PCRE2 syntax */
	const char *pat = "        logicalType: string\n        logicalTypeOptions: {pattern: '^\\d{3}$'}\n";
	PASS(pat, "v\n123\n456\n", "pattern:v");
	FAIL(pat, "v\n123\nddd\n1234\n", "pattern:v", 2);
	const char *acc = "        logicalType: string\n        logicalTypeOptions: {pattern: 'ACC[0-9]{8}'}\n";
	PASS(acc, "v\nACC12345678\n", "pattern:v");
	FAIL(acc, "v\nACC1234\n", "pattern:v", 1);

	const char *num = "        logicalType: number\n        logicalTypeOptions: {minimum: 10, maximum: 20}\n";
	PASS(num, "v\n10\n20\n15.5\n", "minimum:v");
	PASS(num, "v\n10\n20\n15.5\n", "maximum:v");
	FAIL(num, "v\n9.99\n10\n", "minimum:v", 1);
	FAIL(num, "v\n20\n20.01\n", "maximum:v", 1);
	const char *ex = "        logicalType: integer\n        logicalTypeOptions: {exclusiveMinimum: 0, exclusiveMaximum: 10}\n";
	PASS(ex, "v\n1\n9\n", "exclusiveMinimum:v");
	PASS(ex, "v\n1\n9\n", "exclusiveMaximum:v");
	FAIL(ex, "v\n0\n1\n", "exclusiveMinimum:v", 1);
	FAIL(ex, "v\n10\n", "exclusiveMaximum:v", 1);
	/* the issue's example: abcdef with maxLength 3 and minimum 10 */
	const char *both = "        logicalType: string\n        logicalTypeOptions: {maxLength: 3}\n";
	FAIL(both, "v\nabcdef\n", "maxLength:v", 1);

	const char *dates = "        logicalType: date\n"
			    "        logicalTypeOptions: {exclusiveMinimum: \"2020-01-01\", maximum: \"2021-01-01\"}\n";
	PASS(dates, "v\n2020-01-02\n2021-01-01\n", "exclusiveMinimum:v");
	FAIL(dates, "v\n2020-01-01\n", "exclusiveMinimum:v", 1);
	FAIL(dates, "v\n2021-01-02\n", "maximum:v", 1);
	const char *ts = "        logicalType: timestamp\n"
			 "        logicalTypeOptions: {minimum: \"2020-01-01 00:00:00\", maximum: \"2021-01-01 00:00:00\"}\n";
	PASS(ts, "v\n2020-01-01T00:00:00Z\n2020-06-01 12:00:00\n", "minimum:v");
	FAIL(ts, "v\n2019-12-31T23:59:59Z\n", "minimum:v", 1);
	FAIL(ts, "v\n2021-01-01T00:00:01Z\n", "maximum:v", 1);
}

static void test_formats(void)
{
	static const struct { const char *format, *good, *bad; } cases[] = {
		{"email", "ann@example.com", "ann@"},
		{"uuid", "6f1c2a3e-4b5d-4e6f-8a9b-0c1d2e3f4a5b", "6f1c2a3e-4b5d"},
		{"uri", "https://example.com/a?b=c", "not a uri"},
		{"date-time", "2026-11-20T10:00:00Z", "2026-11-20 10:00:00"},
		{"ipv4", "192.168.1.20", "300.1.1.1"},
		{"ipv6", "2001:db8::1", "2001:db8:::1"},
		{"hostname", "db-1.example.com", "-bad-.example"},
	};
	char prop[256], csv[256];
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		snprintf(prop, sizeof prop, "        logicalType: string\n        logicalTypeOptions: {format: %s}\n",
			 cases[i].format);
		snprintf(csv, sizeof csv, "v\n\"%s\"\n", cases[i].good);
		PASS(prop, csv, "format:v");
		snprintf(csv, sizeof csv, "v\n\"%s\"\n\"%s\"\n", cases[i].good, cases[i].bad);
		FAIL(prop, csv, "format:v", 1);
	}
	const char *i8 = "        logicalType: integer\n        logicalTypeOptions: {format: i8}\n";
	PASS(i8, "v\n-128\n127\n", "format:v");
	FAIL(i8, "v\n128\n", "format:v", 1);
	const char *u16 = "        logicalType: integer\n        logicalTypeOptions: {format: u16}\n";
	PASS(u16, "v\n65535\n", "format:v");
	FAIL(u16, "v\n-1\n65536\n", "format:v", 2);
	/* a Java pattern of an ISO timestamp (the standard's example) reads as the type check does */
	const char *jts = "        logicalType: timestamp\n        logicalTypeOptions: {format: \"yyyy-MM-dd HH:mm:ss\"}\n";
	PASS(jts, "v\n2020-01-01 00:00:00\n", "format:v");
	FAIL(jts, "v\n2020-01-01 00:00:00\n2020-13-01 00:00:00\n", "type:v", 1);   /* the type rule sees it first */
	/* a format meshfs does not know: listed as not checked, never passed */
	struct validate_rule_result r = {0};
	judge("        logicalType: string\n        logicalTypeOptions: {format: password}\n", "v\nx\n", "format:v", &r);
	CHECK(!r.checked);
}

static void test_metrics(void)
{
	/* nullValues: strict, rows, percent */
	const char *strict = "        quality: [{metric: nullValues, mustBe: 0}]\n";
	PASS(strict, "v\na\nb\n", "not_null:v");
	FAIL(strict, "v\na\n\"\"\nb\n", "not_null:v", 1);
	const char *rows = "        quality: [{metric: nullValues, mustBeLessOrEqualTo: 1, unit: rows}]\n";
	PASS(rows, "v\na\n\"\"\nb\n", "not_null:v");
	FAIL(rows, "v\n\"\"\n\"\"\nb\n", "not_null:v", 2);
	const char *pct = "        quality: [{metric: nullValues, mustBeLessThan: 30, unit: percent}]\n";
	PASS(pct, "v\na\n\"\"\nb\nc\n", "not_null:v");          /* 25% */
	FAIL(pct, "v\na\n\"\"\n\"\"\nc\n", "not_null:v", 2);     /* 50% */
	/* missingValues: nulls and the listed placeholders */
	const char *miss = "        quality: [{metric: missingValues, arguments: {missingValues: [\"N/A\", \"-\"]},"
			   " mustBeLessOrEqualTo: 10, unit: percent}]\n";
	PASS(miss, "v\na\nb\nc\nd\ne\nf\ng\nh\ni\nN/A\n", "missing:v");
	FAIL(miss, "v\na\nN/A\n-\n\"\"\n", "missing:v", 3);
	/* invalidValues with validValues, and a pattern in PCRE2 syntax */
	const char *inv = "        quality: [{metric: invalidValues, arguments: {validValues: [x, y]},"
			  " mustBeLessOrEqualTo: 50, unit: percent}]\n";
	PASS(inv, "v\nx\ny\nz\nx\n", "allowed_values:v");
	FAIL(inv, "v\nx\nz\nz\n", "allowed_values:v", 2);
	const char *ipat = "        quality: [{metric: invalidValues, arguments: {pattern: '\\d{3}'}, mustBe: 0}]\n";
	PASS(ipat, "v\n123\n", "pattern:v");
	FAIL(ipat, "v\n123\nddd\n", "pattern:v", 1);
	/* duplicateValues */
	const char *dup = "        quality: [{metric: duplicateValues, mustBe: 0}]\n";
	PASS(dup, "v\na\nb\n", "unique:v");
	FAIL(dup, "v\na\nb\na\n", "unique:v", 1);
	const char *dup2 = "        quality: [{metric: duplicateValues, mustBeLessOrEqualTo: 1, unit: rows}]\n";
	PASS(dup2, "v\na\nb\na\n", "unique:v");
	FAIL(dup2, "v\na\na\na\n", "unique:v", 2);
	/* severity: a warning never fails the file */
	struct validate_rule_result r = {0};
	CHECK(judge("        quality: [{metric: nullValues, mustBe: 0, severity: warning}]\n", "v\n\"\"\n",
		    "not_null:v", &r) == 0 && !r.required);
	/* mustNotBe: listed as not checked, never passed silently */
	memset(&r, 0, sizeof r);
	judge("        quality: [{metric: nullValues, mustNotBe: 3}]\n", "v\na\n", "unsupported:v", &r);
	CHECK(!r.checked);
}

static void test_row_count(void)
{
	static const char *text[] = {"v\na\n", "v\na\nb\n", "v\na\nb\nc\nd\n"};
	static const int want[] = {0, 1, 0};
	for (int i = 0; i < 3; i++) {
		char yaml[4096];
		snprintf(yaml, sizeof yaml,
			 "apiVersion: v3.1.0\nkind: DataContract\nid: o\nversion: 1.0.0\nstatus: active\n"
			 "schema:\n  - name: t\n    physicalName: t.csv\n"
			 "    quality: [{metric: rowCount, mustBeBetween: [2, 3]}]\n    properties:\n      - name: v\n");
		struct contract *c = NULL;
		struct mesh_err err = {0};
		CHECK(contract_parse(yaml, strlen(yaml), "c.yaml", &c, &err) == 0);
		char dir[] = "/tmp/test_odcs.XXXXXX";
		CHECK(mkdtemp(dir) != NULL);
		int dfd = open(dir, O_RDONLY | O_DIRECTORY);
		int fd = openat(dfd, "t.csv", O_WRONLY | O_CREAT, 0644);
		CHECK(write(fd, text[i], strlen(text[i])) == (ssize_t)strlen(text[i]));
		close(fd);
		struct validate_report *rep = NULL;
		CHECK(validate_file(c, &c->objects[0], dfd, "t.csv", NULL, &rep, &err) == 0);
		CHECK(rep && validate_report_failed(rep) == !want[i]);
		validate_report_free(rep);
		unlinkat(dfd, "t.csv", 0);
		close(dfd);
		rmdir(dir);
		contract_free(c);
	}
}

int main(void)
{
	test_type_options();
	test_formats();
	test_metrics();
	test_row_count();
	return check_done("test_odcs");
}
