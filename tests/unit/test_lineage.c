/* Unit tests for lineage: SemVer ranges, input parsing, a diamond, a cycle,
 * the checks of a publish, hidden (restricted) products, the renderings. */
#include "check.h"
#include "lineage.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static void test_ranges(void)
{
	struct { const char *range, *version; bool match; } cases[] = {
		{"", "1.0.0", true}, {"*", "3.2.1", true}, {"x", "0.0.1", true},
		{"1.2.3", "1.2.3", true}, {"1.2.3", "1.2.4", false}, {"=1.2.3", "1.2.3", true},
		{"^1.2", "1.9.0", true}, {"^1.2", "2.0.0", false}, {"^1.2", "1.1.9", false},
		{"^1.2.3", "1.2.2", false}, {"^0.2.3", "0.2.9", true}, {"^0.2.3", "0.3.0", false},
		{"^0.0.3", "0.0.3", true}, {"^0.0.3", "0.0.4", false}, {"^1", "1.99.0", true},
		{"~1.2.3", "1.2.9", true}, {"~1.2.3", "1.3.0", false}, {"~1", "1.5.0", true},
		{"1.x", "1.4.2", true}, {"1.x", "2.0.0", false}, {"1.2.*", "1.2.7", true},
		{"1.2", "1.3.0", false}, {"1", "1.0.0", true},
		{">=1.0.0 <2.0.0", "1.5.0", true}, {">=1.0.0 <2.0.0", "2.0.0", false},
		{">1.2", "1.2.9", false}, {">1.2", "1.3.0", true}, {"<=1.2", "1.2.9", true},
		{"<=1.2", "1.3.0", false}, {"<1.2", "1.1.9", true}, {"<1.2", "1.2.0", false},
		{"^1.0 || ^3.0", "3.1.0", true}, {"^1.0 || ^3.0", "2.1.0", false},
		/* pre-releases only when the range names one of the same version */
		{"^1.0", "1.1.0-rc.1", false}, {"*", "1.0.0-rc.1", false},
		{">=1.1.0-rc.1", "1.1.0-rc.2", true}, {">=1.1.0-rc.1", "1.2.0-rc.1", false},
		{"1.0.0-beta", "1.0.0-beta", true}, {"<2.0.0", "2.0.0-rc.1", false},
		{"^1.2", "not-a-version", false},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		bool got = lineage_range_match(cases[i].range, cases[i].version);
		if (got != cases[i].match)
			fprintf(stderr, "range \"%s\" on %s: got %d\n", cases[i].range, cases[i].version, got);
		CHECK(got == cases[i].match);
	}
	const char *bad[] = {"^", ">=", "1.x.3", "01.2.3", "1.2.3 - 2.0.0", "=>1.0", "abc", "1.2.3-", "^^1",
			     ">>1.0.0"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		struct mesh_err err = {0};
		int rc = lineage_range_check(bad[i], &err);
		if (!rc)
			fprintf(stderr, "range \"%s\" accepted\n", bad[i]);
		CHECK(rc == -EINVAL);
		CHECK_CONTAINS(err.msg, "version range");
		CHECK(!lineage_range_match(bad[i], "1.2.3"));
	}
}

static void test_inputs(void)
{
	struct lineage_input in;
	struct mesh_err err = {0};
	CHECK(lineage_input_parse("sales/orders@^1.2", &in, &err) == 0);
	CHECK_STR(in.domain, "sales");
	CHECK_STR(in.product, "orders");
	CHECK_STR(in.range, "^1.2");
	CHECK(lineage_input_parse("crm/customers", &in, &err) == 0 && in.range[0] == '\0');
	CHECK(lineage_input_parse("orders", &in, &err) == -EINVAL);
	CHECK_CONTAINS(err.msg, "domain/product");
	CHECK(lineage_input_parse("Sales/Orders@1.0.0", &in, &err) == -EINVAL);
	CHECK(lineage_input_parse("sales/orders@", &in, &err) == -EINVAL);
	CHECK(lineage_input_parse("sales/orders@^x.y", &in, &err) == -EINVAL);
	CHECK_CONTAINS(err.msg, "sales/orders@^x.y");
	CHECK(lineage_input_parse("../x/y", &in, &err) == -EINVAL);
}

static void add(struct lineage *g, const char *d, const char *p, const char *v, enum lifecycle st,
		bool restricted)
{
	lineage_add_version(g, d, p, v, st, restricted, true);
}

/*   raw/events                 diamond:  raw/events -> a/left  -> b/joined
 *     |       \                                     -> a/right -> b/joined
 *   a/left   a/right
 *      \     /
 *      b/joined  -> c/report
 */
static struct lineage *diamond(void)
{
	struct lineage *g = lineage_new();
	add(g, "raw", "events", "1.0.0", LC_DEPRECATED, false);
	add(g, "raw", "events", "1.1.0", LC_ACTIVE, false);
	add(g, "raw", "events", "2.0.0", LC_ACTIVE, false);
	add(g, "a", "left", "1.0.0", LC_ACTIVE, false);
	add(g, "a", "right", "1.0.0", LC_ACTIVE, false);
	add(g, "b", "joined", "3.0.0", LC_ACTIVE, false);
	add(g, "c", "report", "1.0.0", LC_ACTIVE, false);
	lineage_add_input(g, "a", "left", "raw/events@^1.0", "contract 1.0.0");
	lineage_add_input(g, "a", "right", "raw/events@>=2.0.0", "contract 1.0.0");
	lineage_add_input(g, "b", "joined", "a/left", "contract 3.0.0");
	lineage_add_input(g, "b", "joined", "a/right@1.0.0", "contract 3.0.0");
	lineage_add_input(g, "c", "report", "b/joined@^3", "contract 1.0.0");
	lineage_finish(g);
	return g;
}

static void test_diamond(void)
{
	struct lineage *g = diamond();
	char *t = lineage_format(g, "c", "report", LINEAGE_UP, LINEAGE_TREE, NULL, NULL);
	CHECK_CONTAINS(t, "c/report 1.0.0 (active)");
	CHECK_CONTAINS(t, "<- b/joined @^3 = 3.0.0");
	CHECK_CONTAINS(t, "<- a/left @* = 1.0.0");
	CHECK_CONTAINS(t, "<- raw/events @^1.0 = 1.1.0");     /* newest in range, not 2.0.0 */
	CHECK_CONTAINS(t, "<- raw/events @>=2.0.0 = 2.0.0");
	CHECK(!strstr(t, "(cycle)"));
	free(t);
	/* downstream of the source reaches the sink through both arms; the
	 * second time b/joined is met it is not expanded again */
	t = lineage_format(g, "raw", "events", LINEAGE_DOWN, LINEAGE_TREE, NULL, NULL);
	CHECK_CONTAINS(t, "-> a/left (declares @^1.0 = 1.1.0)");
	CHECK_CONTAINS(t, "-> a/right");
	CHECK_CONTAINS(t, "(see above)");
	CHECK_CONTAINS(t, "-> c/report");
	free(t);
	/* JSON: each node once, each edge once */
	t = lineage_format(g, "raw", "events", LINEAGE_DOWN, LINEAGE_JSON, NULL, NULL);
	json_t *doc = json_loads(t, 0, NULL);
	CHECK(doc != NULL);
	CHECK(json_array_size(json_object_get(doc, "nodes")) == 5);
	CHECK(json_array_size(json_object_get(doc, "edges")) == 5);
	json_decref(doc);
	free(t);
	t = lineage_format(g, "b", "joined", LINEAGE_BOTH, LINEAGE_DOT, NULL, NULL);
	CHECK_CONTAINS(t, "digraph lineage {");
	CHECK_CONTAINS(t, "\"a/left\" -> \"b/joined\" [label=\"*\"];");
	CHECK_CONTAINS(t, "\"b/joined\" -> \"c/report\" [label=\"^3\"];");
	CHECK_CONTAINS(t, "\"b/joined\" [label=\"b/joined\\n3.0.0\", style=\"rounded,bold\"");
	free(t);
	char **cons;
	size_t n = lineage_consumers(g, "raw", "events", NULL, NULL, &cons);
	CHECK(n == 2 && !strcmp(cons[0], "a/left") && !strcmp(cons[1], "a/right"));
	for (size_t i = 0; i < n; i++)
		free(cons[i]);
	free(cons);
	/* a publish of a new diamond member: fine */
	char *problems = NULL;
	char *ok[] = {"b/joined@^3", "raw/events@^1"};
	CHECK(lineage_check(g, "d", "dash", ok, 2, NULL, NULL, &problems) == 0 && problems == NULL);
	/* raw/events declaring c/report closes the loop raw -> ... -> c -> raw */
	char *loop[] = {"c/report@1.0.0"};
	CHECK(lineage_check(g, "raw", "events", loop, 1, NULL, NULL, &problems) == 1);
	CHECK_CONTAINS(problems, "closes a cycle: raw/events <- c/report <- b/joined <- a/left <- raw/events");
	free(problems);
	lineage_free(g);
}

static void test_cycle(void)
{
	struct lineage *g = lineage_new();
	add(g, "x", "one", "1.0.0", LC_ACTIVE, false);
	add(g, "x", "two", "1.0.0", LC_ACTIVE, false);
	add(g, "x", "three", "1.0.0", LC_ACTIVE, false);
	lineage_add_input(g, "x", "one", "x/three", "contract 1.0.0");
	lineage_add_input(g, "x", "two", "x/one", "contract 1.0.0");
	lineage_add_input(g, "x", "three", "x/two", "contract 1.0.0");
	lineage_finish(g);
	char *t = lineage_format(g, "x", "one", LINEAGE_BOTH, LINEAGE_TREE, NULL, NULL);
	CHECK_CONTAINS(t, "  <- x/three @* = 1.0.0\n    <- x/two @* = 1.0.0\n      <- x/one @* = 1.0.0  (cycle)\n");
	CHECK_CONTAINS(t, "  -> x/two");
	free(t);
	t = lineage_format(g, "x", "two", LINEAGE_BOTH, LINEAGE_JSON, NULL, NULL);
	json_t *doc = json_loads(t, 0, NULL);
	CHECK(json_array_size(json_object_get(doc, "nodes")) == 3);
	CHECK(json_array_size(json_object_get(doc, "edges")) == 3);
	json_decref(doc);
	free(t);
	char *problems = NULL;
	char *again[] = {"x/three@1.0.0"};
	CHECK(lineage_check(g, "x", "one", again, 1, NULL, NULL, &problems) == 1);
	CHECK_CONTAINS(problems, "closes a cycle: x/one <- x/three <- x/two <- x/one");
	free(problems);
	char *self[] = {"x/one"};
	CHECK(lineage_check(g, "x", "one", self, 1, NULL, NULL, &problems) == 1);
	CHECK_CONTAINS(problems, "names itself");
	free(problems);
	lineage_free(g);
}

static bool only_owner_sees(void *ctx, const char *domain, const char *product)
{
	(void)domain;
	(void)product;
	return *(bool *)ctx;
}

static void test_checks_and_hidden(void)
{
	struct lineage *g = lineage_new();
	add(g, "sales", "orders", "1.0.0", LC_DEPRECATED, false);
	add(g, "sales", "orders", "2.0.0", LC_ACTIVE, false);
	add(g, "sales", "old", "1.0.0", LC_RETIRED, false);
	add(g, "hr", "salaries", "1.0.0", LC_ACTIVE, true);
	add(g, "fin", "payroll", "1.0.0", LC_ACTIVE, false);
	lineage_add_input(g, "fin", "payroll", "hr/salaries@^1", "contract 1.0.0");
	lineage_add_input(g, "fin", "payroll", "sales/orders@2.0.0", "contract 1.0.0");
	lineage_add_input(g, "fin", "payroll", "broken input", "contract 1.0.0");
	lineage_finish(g);
	char *problems = NULL;
	char *inputs[] = {"nope/nothing@9.9.9", "sales/orders@^1", "sales/old", "sales/orders@^3",
			  "bad", "hr/salaries"};
	bool owner = false;
	CHECK(lineage_check(g, "new", "thing", inputs, 6, only_owner_sees, &owner, &problems) == 6);
	CHECK_CONTAINS(problems, "input nope/nothing@9.9.9: no product nope/nothing in the mesh");
	CHECK_CONTAINS(problems, "input sales/orders@^1: resolves to sales/orders 1.0.0, which is deprecated "
		       "(active: 2.0.0)");
	CHECK_CONTAINS(problems, "input sales/old: resolves to sales/old 1.0.0, which is retired");
	CHECK_CONTAINS(problems, "input sales/orders@^3: no version of sales/orders satisfies ^3");
	CHECK_CONTAINS(problems, "input \"bad\": expected domain/product");
	/* a restricted product the publisher may not see is reported as absent */
	CHECK_CONTAINS(problems, "input hr/salaries: no product hr/salaries in the mesh (or not visible to you)");
	free(problems);
	owner = true;
	char *one[] = {"hr/salaries"};
	CHECK(lineage_check(g, "new", "thing", one, 1, only_owner_sees, &owner, &problems) == 0);

	/* hidden products: not found upstream, absent downstream, no lineage of their own */
	owner = false;
	char *t = lineage_format(g, "fin", "payroll", LINEAGE_UP, LINEAGE_TREE, only_owner_sees, &owner);
	CHECK_CONTAINS(t, "<- hr/salaries @^1: not found (no such product, or not visible to you)");
	CHECK_CONTAINS(t, "<- sales/orders @2.0.0 = 2.0.0");
	free(t);
	CHECK(lineage_format(g, "hr", "salaries", LINEAGE_BOTH, LINEAGE_TREE, only_owner_sees, &owner) == NULL);
	CHECK(!lineage_has(g, "hr", "salaries", only_owner_sees, &owner));
	t = lineage_format(g, "fin", "payroll", LINEAGE_UP, LINEAGE_JSON, only_owner_sees, &owner);
	CHECK_CONTAINS(t, "\"found\": false");
	CHECK(!strstr(t, "\"latest\": \"1.0.0\",\n      \"status\": \"active\"\n    },\n    {\n      \"id\": \"fin"));
	free(t);
	g = (lineage_free(g), lineage_new());
	add(g, "hr", "salaries", "1.0.0", LC_ACTIVE, false);
	add(g, "hr", "secret", "1.0.0", LC_ACTIVE, true);
	lineage_add_input(g, "hr", "secret", "hr/salaries", "contract 1.0.0");
	lineage_finish(g);
	t = lineage_format(g, "hr", "salaries", LINEAGE_DOWN, LINEAGE_TREE, only_owner_sees, &owner);
	CHECK(!strstr(t, "hr/secret"));
	CHECK_CONTAINS(t, "downstream (declared inputs): none");
	free(t);
	char **cons;
	CHECK(lineage_consumers(g, "hr", "salaries", only_owner_sees, &owner, &cons) == 0);
	owner = true;
	CHECK(lineage_consumers(g, "hr", "salaries", only_owner_sees, &owner, &cons) == 1);
	free(cons[0]);
	free(cons);
	lineage_free(g);
}

int main(void)
{
	test_ranges();
	test_inputs();
	test_diamond();
	test_cycle();
	test_checks_and_hidden();
	return check_done("test_lineage");
}
