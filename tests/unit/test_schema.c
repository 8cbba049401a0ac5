/* Unit tests for schema.c: derivation from a contract, JSON round trip,
 * parse errors, and every compatibility rule of schema_diff. */
#include "check.h"
#include "contract.h"
#include "schema.h"

#include <errno.h>

static const char contract_text[] =
	"apiVersion: v3.1.0\nkind: DataContract\nid: x\nversion: 1.0.0\nstatus: active\n"
	"schema:\n"
	"  - name: orders\n"
	"    properties:\n"
	"      - {name: id, logicalType: integer, primaryKey: true}\n"
	"      - {name: state, logicalType: string, quality: [{metric: invalidValues, arguments: {validValues: [open, done]}, mustBe: 0}]}\n"
	"      - {name: amount, logicalType: number, customProperties: [{property: min, value: 0}]}\n"
	"      - {name: email, logicalType: string, classification: pii}\n";

static struct table_schema *from_text(const char *json)
{
	struct table_schema *s = NULL;
	struct mesh_err err = {0};
	if (schema_parse(json, strlen(json), "s.json", &s, &err))
		fprintf(stderr, "%s\n", err.msg);
	return s;
}

static int count_breaking(const char *a, const char *b, enum schema_change_kind *kind)
{
	struct table_schema *x = from_text(a), *y = from_text(b);
	struct schema_change *ch = NULL;
	size_t n = 0;
	schema_diff(x, y, &ch, &n);
	int breaking = 0;
	for (size_t i = 0; i < n; i++) {
		breaking += ch[i].breaking;
		if (kind && i == 0)
			*kind = ch[i].kind;
	}
	if (n == 0)
		breaking = -1;   /* no change at all */
	schema_changes_free(ch, n);
	schema_free(x);
	schema_free(y);
	return breaking;
}

#define F(name, type) "{\"name\":\"" name "\",\"type\":\"" type "\"}"
#define FR(name, type) "{\"name\":\"" name "\",\"type\":\"" type "\",\"constraints\":{\"required\":true}}"
#define S(...) "{\"fields\":[" __VA_ARGS__ "]}"

int main(void)
{
	struct contract *c = NULL;
	struct mesh_err err = {0};
	CHECK(contract_parse(contract_text, sizeof contract_text - 1, "c.yaml", &c, &err) == 0);
	struct table_schema *s = NULL;
	CHECK(c && schema_from_contract_object(&c->objects[0], c, &s) == 0);
	CHECK(s && s->n_fields == 4 && s->n_primary_key == 1);
	CHECK(s && s->fields[0].required && s->fields[0].type == ST_INTEGER);
	CHECK(s && s->fields[1].n_enum == 2);
	CHECK(s && s->fields[2].has_minimum && s->fields[2].minimum == 0);
	char *json = NULL;
	CHECK(s && schema_to_json(s, &json) == 0);
	CHECK_CONTAINS(json, "\"primaryKey\": \"id\"");
	CHECK_CONTAINS(json, "\"classification\": \"pii\"");
	struct table_schema *back = json ? from_text(json) : NULL;
	CHECK(back && back->n_fields == 4 && back->fields[1].n_enum == 2 && back->fields[0].required);
	struct schema_change *ch = NULL;
	size_t n = 0;
	CHECK(back && schema_diff(s, back, &ch, &n) == 0 && n == 0);   /* round trip is lossless */
	schema_changes_free(ch, n);
	schema_free(back);
	free(json);
	schema_free(s);
	contract_free(c);

	/* parse errors */
	struct table_schema *bad = NULL;
	CHECK(schema_parse("{\"fields\": 3}", 13, "x.json", &bad, &err) == -EINVAL);
	CHECK_CONTAINS(err.msg, "x.json");
	CHECK(schema_parse("{\"fields\": [], \"fields\": []}", 28, "x.json", &bad, &err) == -EINVAL);
	CHECK(schema_parse("{\"fields\": [{\"type\": \"string\"}]}", 32, "x.json", &bad, &err) == -EINVAL);
	CHECK_CONTAINS(err.msg, "fields[0]");
	CHECK(schema_parse("{\"fields\": [", 12, "x.json", &bad, &err) == -EINVAL);
	CHECK_CONTAINS(err.msg, "x.json:1:");

	/* compatibility rules */
	enum schema_change_kind k;
	CHECK(count_breaking(S(F("a", "string")), S(F("a", "string")), NULL) == -1);
	CHECK(count_breaking(S(F("a", "string")), S(F("a", "string") "," F("b", "integer")), &k) == 0 &&
	      k == SC_COLUMN_ADDED);
	CHECK(count_breaking(S(F("a", "string")), S(F("a", "string") "," FR("b", "integer")), NULL) == 1);
	CHECK(count_breaking(S(F("a", "string") "," F("b", "string")), S(F("a", "string")), &k) == 1 &&
	      k == SC_COLUMN_REMOVED);
	CHECK(count_breaking(S(F("a", "string") "," F("b", "string")), S(F("a", "string") "," F("c", "string")), &k) == 1
	      && k == SC_COLUMN_RENAMED);
	CHECK(count_breaking(S(F("a", "string")), S(F("a", "integer")), NULL) == 1);      /* narrowing */
	CHECK(count_breaking(S(F("a", "number")), S(F("a", "integer")), NULL) == 1);
	CHECK(count_breaking(S(F("a", "integer")), S(F("a", "number")), NULL) == 0);      /* widening */
	CHECK(count_breaking(S(F("a", "date")), S(F("a", "string")), NULL) == 0);
	CHECK(count_breaking(S(F("a", "any")), S(F("a", "integer")), NULL) == 1);
	CHECK(count_breaking(S(F("a", "string")), S(FR("a", "string")), NULL) == 1);      /* optional -> required */
	CHECK(count_breaking(S(FR("a", "string")), S(F("a", "string")), NULL) == 0);
	const char *e2 = S("{\"name\":\"a\",\"type\":\"string\",\"constraints\":{\"enum\":[\"x\",\"y\"]}}");
	const char *e1 = S("{\"name\":\"a\",\"type\":\"string\",\"constraints\":{\"enum\":[\"x\"]}}");
	const char *e3 = S("{\"name\":\"a\",\"type\":\"string\",\"constraints\":{\"enum\":[\"x\",\"y\",\"z\"]}}");
	CHECK(count_breaking(e2, e1, NULL) == 1);     /* removing an allowed value */
	CHECK(count_breaking(e2, e3, NULL) == 0);     /* adding one */
	CHECK(count_breaking(S(F("a", "string") "," F("b", "string")), S(F("b", "string") "," F("a", "string")), NULL) == 1);
	return check_done("test_schema");
}
