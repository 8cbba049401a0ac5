/* Unit tests for contract.c: every ODCS example parses; invalid contracts
 * fail with file:line:column and the field; meshfs conventions. */
#include "check.h"
#include "contract.h"
#include "mesh_util.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>

static const char *data_dir(void)
{
	const char *d = getenv("MESH_TEST_DATA");
	return d ? d : "tests/unit/data";
}

static void test_examples_parse(void)
{
	char dir[512];
	snprintf(dir, sizeof dir, "%s/contract/odcs", data_dir());
	DIR *d = opendir(dir);
	CHECK(d != NULL);
	int parsed = 0;
	struct dirent *de;
	while (d && (de = readdir(d))) {
		size_t n = strlen(de->d_name);
		if (n < 10 || strcmp(de->d_name + n - 10, ".odcs.yaml"))
			continue;
		char path[1024];
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		struct contract *c = NULL;
		struct mesh_err err = {0};
		int rc = contract_load(path, &c, &err);
		if (rc)
			fprintf(stderr, "  %s\n", err.msg);
		CHECK(rc == 0);
		CHECK(c && !strcmp(c->kind, "DataContract"));
		parsed++;
		contract_free(c);
	}
	if (d)
		closedir(d);
	CHECK(parsed >= 17);
}

static void expect_error(const char *file, const char *field, int line)
{
	char path[512];
	snprintf(path, sizeof path, "%s/contract/bad/%s", data_dir(), file);
	struct contract *c = NULL;
	struct mesh_err err = {0};
	int rc = contract_load(path, &c, &err);
	CHECK(rc < 0);
	CHECK(c == NULL);
	CHECK_CONTAINS(err.msg, path);
	CHECK_CONTAINS(err.msg, field);
	char where[64];
	snprintf(where, sizeof where, ":%d:", line);
	CHECK_CONTAINS(err.msg, where);
}

static void test_invalid(void)
{
	expect_error("malformed.yaml", "YAML syntax error", 7);
	expect_error("not-mapping.yaml", "contract", 1);
	expect_error("no-apiversion.yaml", "apiVersion", 1);
	expect_error("v2.yaml", "apiVersion", 1);
	expect_error("wrong-kind.yaml", "kind", 2);
	expect_error("schema-not-list.yaml", "schema", 7);
	expect_error("property-no-name.yaml", "schema.t.properties[0]", 9);
	expect_error("duplicate-key.yaml", "duplicate key", 6);
	expect_error("deep.yaml", "nested more than", 6);
	expect_error("alias.yaml", "anchors", 6);
	expect_error("latin1.yaml", "YAML syntax error", 6);
	expect_error("status-list.yaml", "status", 6);
}

static const char good[] =
	"apiVersion: v3.1.0\n"
	"kind: DataContract\n"
	"id: 7d1c\n"
	"version: 1.2.0\n"
	"status: active\n"
	"domain: sales\n"
	"dataProduct: orders\n"
	"description:\n"
	"  purpose: Orders for finance\n"
	"team:\n"
	"  members:\n"
	"    - username: bob\n"
	"      role: Data Product Owner\n"
	"    - username: eve\n"
	"      role: Analyst\n"
	"support:\n"
	"  - channel: '#sales'\n"
	"customProperties:\n"
	"  - property: meshOwners\n"
	"    value: [group:sales-team]\n"
	"  - property: meshInputs\n"
	"    value: [customer/profiles@2.0.0]\n"
	"  - property: meshRestricted\n"
	"    value: true\n"
	"schema:\n"
	"  - name: orders\n"
	"    physicalName: orders.csv\n"
	"    quality:\n"
	"      - metric: rowCount\n"
	"        mustBeGreaterThan: 10\n"
	"    properties:\n"
	"      - name: id\n"
	"        logicalType: integer\n"
	"        required: true\n"
	"        primaryKey: true\n"
	"      - name: email\n"
	"        logicalType: string\n"
	"        classification: pii\n"
	"        quality:\n"
	"          - metric: invalidValues\n"
	"            arguments: {pattern: '^[^@]+@[^@]+$'}\n"
	"            mustBe: 0\n"
	"      - name: state\n"
	"        physicalType: varchar(8)\n"
	"        quality:\n"
	"          - metric: invalidValues\n"
	"            arguments: {validValues: [open, shipped]}\n"
	"            mustBe: 0\n"
	"          - metric: nullValues\n"
	"            mustBe: 0\n"
	"          - type: sql\n"
	"            query: select 1\n"
	"      - name: amount\n"
	"        logicalType: number\n"
	"        customProperties:\n"
	"          - {property: min, value: 0}\n"
	"          - {property: max, value: 1000}\n"
	"      - name: created_at\n"
	"        logicalType: timestamp\n"
	"slaProperties:\n"
	"  - property: freshness\n"
	"    value: 2\n"
	"    unit: d\n"
	"    element: orders.created_at\n";

static void test_fields(void)
{
	struct contract *c = NULL;
	struct mesh_err err = {0};
	CHECK(contract_parse(good, sizeof good - 1, "good.yaml", &c, &err) == 0);
	if (!c) {
		fprintf(stderr, "%s\n", err.msg);
		return;
	}
	CHECK(contract_check_publishable(c, &err) == 0);
	CHECK_STR(c->domain, "sales");
	CHECK_STR(c->data_product, "orders");
	CHECK_STR(c->purpose, "Orders for finance");
	CHECK(c->n_owners == 2);
	CHECK_STR(c->owners[0].subject, "user:bob");
	CHECK_STR(c->owners[1].subject, "group:sales-team");
	CHECK(c->n_inputs == 1 && !strcmp(c->inputs[0], "customer/profiles@2.0.0"));
	CHECK(c->restricted);
	CHECK(c->n_support == 1);
	CHECK(c->n_objects == 1 && c->objects[0].n_props == 5);
	const struct contract_property *p = &c->objects[0].props[0];
	CHECK(p->required && p->primary_key && p->type == LT_INTEGER);
	CHECK_STR(c->objects[0].props[1].classification, "pii");
	CHECK(c->objects[0].props[2].type == LT_STRING);
	CHECK(c->freshness_seconds == 2 * 86400);
	CHECK_STR(c->freshness_column, "created_at");
	int kinds[Q_UNSUPPORTED + 1] = {0};
	for (size_t i = 0; i < c->n_rules; i++)
		kinds[c->rules[i].kind]++;
	CHECK(kinds[Q_ROW_COUNT] == 1 && kinds[Q_PATTERN] == 1 && kinds[Q_ALLOWED_VALUES] == 1);
	CHECK(kinds[Q_NOT_NULL] == 1 && kinds[Q_UNSUPPORTED] == 1 && kinds[Q_MIN] == 1 && kinds[Q_MAX] == 1);
	CHECK(kinds[Q_FRESHNESS] == 1);
	for (size_t i = 0; i < c->n_rules; i++)
		if (c->rules[i].kind == Q_ROW_COUNT)
			CHECK(c->rules[i].has_min && c->rules[i].min > 10 && c->rules[i].min < 10.01);
	CHECK(contract_object_for_file(c, "orders.csv") == &c->objects[0]);
	CHECK(contract_object_for_file(c, "other.csv") == &c->objects[0]);   /* the only object */
	contract_free(c);

	/* publishable identity */
	const char *bad[][2] = {
		{"domain: sales\n", "domain: Sales\n"},
		{"dataProduct: orders\n", "dataProduct: my quantum\n"},
		{"version: 1.2.0\n", "version: '1.2'\n"},
	};
	for (size_t i = 0; i < 3; i++) {
		char text[sizeof good + 64];
		const char *at = strstr(good, bad[i][0]);
		snprintf(text, sizeof text, "%.*s%s%s", (int)(at - good), good, bad[i][1], at + strlen(bad[i][0]));
		CHECK(contract_parse(text, strlen(text), "c.yaml", &c, &err) == 0);
		mesh_err_clear(&err);
		CHECK(c && contract_check_publishable(c, &err) == -EINVAL);
		CHECK_CONTAINS(err.msg, "c.yaml:");
		contract_free(c);
	}
	CHECK(logical_type_parse("varchar(18)") == LT_STRING);
	CHECK(logical_type_parse("BIGINT") == LT_INTEGER);
	CHECK(logical_type_parse("double") == LT_NUMBER);
	CHECK(logical_type_parse("weird") == LT_ANY);
}

int main(void)
{
	test_examples_parse();
	test_invalid();
	test_fields();
	return check_done("test_contract");
}
