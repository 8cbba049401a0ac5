/*
 * contract.c - ODCS v3 data contracts: YAML in, struct contract out
 * (contract in include/contract.h).
 *
 * The YAML is read into a positioned tree (yamltree.h, which enforces size,
 * depth and node limits and refuses anchors/aliases and duplicate keys),
 * then the fields meshfs acts on are taken out with their line numbers so
 * every message can say file:line:column and the field.  Keys ODCS v3.1
 * does not define are refused where the standard's JSON schema allows no
 * others, with the closest known name as a hint; keys meshfs merely does
 * not act on are kept in the contract file, which is stored verbatim.
 *
 * meshfs conventions on top of ODCS (all inside ODCS's own extension
 * points, so contracts stay valid ODCS):
 *   team members whose role contains "owner"    -> owners user:<username>
 *   customProperties meshOwners: [user:x, group:y] -> more owners
 *   customProperties meshInputs: [domain/product[@version]] -> lineage
 *   customProperties meshRestricted: true        -> restricted product
 *   property customProperties min / max          -> value range rules
 *   slaProperties freshness|latency, value+unit, element obj.column
 */
#include "contract.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>

#include "mesh_util.h"
#include "name_hint.h"
#include "yamltree.h"

/* ---- types ---- */

const char *logical_type_name(enum logical_type t)
{
	static const char *names[] = {"any", "string", "integer", "number", "boolean",
				      "date", "timestamp", "object", "array"};
	return (unsigned)t < sizeof names / sizeof *names ? names[t] : "any";
}

enum logical_type logical_type_parse(const char *text)
{
	if (!text)
		return LT_ANY;
	char t[64];
	size_t n = strcspn(text, "( ");
	if (n >= sizeof t)
		return LT_ANY;
	for (size_t i = 0; i < n; i++)
		t[i] = (char)tolower((unsigned char)text[i]);
	t[n] = '\0';
	static const struct { const char *name; enum logical_type type; } map[] = {
		{"string", LT_STRING}, {"varchar", LT_STRING}, {"char", LT_STRING}, {"text", LT_STRING},
		{"nvarchar", LT_STRING}, {"uuid", LT_STRING}, {"time", LT_STRING},
		{"integer", LT_INTEGER}, {"int", LT_INTEGER}, {"bigint", LT_INTEGER}, {"smallint", LT_INTEGER},
		{"tinyint", LT_INTEGER}, {"long", LT_INTEGER}, {"int32", LT_INTEGER}, {"int64", LT_INTEGER},
		{"number", LT_NUMBER}, {"numeric", LT_NUMBER}, {"decimal", LT_NUMBER}, {"double", LT_NUMBER},
		{"float", LT_NUMBER}, {"real", LT_NUMBER},
		{"boolean", LT_BOOLEAN}, {"bool", LT_BOOLEAN},
		{"date", LT_DATE},
		{"timestamp", LT_TIMESTAMP}, {"datetime", LT_TIMESTAMP}, {"timestamptz", LT_TIMESTAMP},
		{"timestamp_ntz", LT_TIMESTAMP}, {"timestamp_tz", LT_TIMESTAMP},
		{"object", LT_OBJECT}, {"struct", LT_OBJECT}, {"record", LT_OBJECT}, {"map", LT_OBJECT},
		{"array", LT_ARRAY}, {"list", LT_ARRAY},
	};
	for (size_t i = 0; i < sizeof map / sizeof *map; i++)
		if (!strcmp(t, map[i].name))
			return map[i].type;
	return LT_ANY;
}

/* ---- reading helpers ---- */

struct reader {
	const char *path;
	struct mesh_err *err;
	int rc;
};

static int fail(struct reader *r, const struct ynode *n, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(struct reader *r, const struct ynode *n, const char *field, const char *fmt, ...)
{
	if (r->rc)
		return r->rc;
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	r->rc = mesh_errf(r->err, -EINVAL, "%s:%d:%d: %s: %s", r->path, n ? n->line : 1, n ? n->col : 1,
			  field, msg);
	return r->rc;
}

static const char *kind_name(const struct ynode *n)
{
	return n->kind == Y_MAPPING ? "a mapping" : n->kind == Y_SEQUENCE ? "a list" : "a value";
}

static struct contract_pos pos_of(const struct ynode *n)
{
	return n ? (struct contract_pos){n->line, n->col} : (struct contract_pos){0, 0};
}

/* ---- the field names ODCS v3.1 defines, per level (from its JSON schema) ---- */

#define KNOWN(...) (const char *const[]){__VA_ARGS__, NULL}
static const char *const *const known_root = KNOWN("version", "kind", "apiVersion", "id", "name", "tenant",
	"tags", "status", "servers", "dataProduct", "description", "domain", "schema", "support", "price",
	"team", "roles", "slaDefaultElement", "slaProperties", "authoritativeDefinitions", "customProperties",
	"contractCreatedTs");
static const char *const *const known_description = KNOWN("usage", "purpose", "limitations",
	"authoritativeDefinitions", "customProperties");
static const char *const *const known_team = KNOWN("id", "name", "description", "members", "tags",
	"customProperties", "authoritativeDefinitions");
static const char *const *const known_member = KNOWN("id", "username", "name", "description", "role",
	"dateIn", "dateOut", "replacedByUsername", "tags", "customProperties", "authoritativeDefinitions");
static const char *const *const known_support = KNOWN("id", "channel", "url", "description", "tool", "scope",
	"invitationUrl", "customProperties");
static const char *const *const known_role = KNOWN("id", "role", "description", "access",
	"firstLevelApprovers", "secondLevelApprovers", "customProperties");
static const char *const *const known_price = KNOWN("id", "priceAmount", "priceCurrency", "priceUnit");
static const char *const *const known_sla = KNOWN("id", "property", "value", "valueExt", "unit", "element",
	"driver", "description", "scheduler", "schedule");
static const char *const *const known_custom = KNOWN("id", "property", "value", "description");
static const char *const *const known_object = KNOWN("id", "name", "physicalType", "description",
	"businessName", "authoritativeDefinitions", "tags", "customProperties", "logicalType", "physicalName",
	"dataGranularityDescription", "properties", "relationships", "quality");
static const char *const *const known_property = KNOWN("id", "name", "physicalType", "description",
	"businessName", "authoritativeDefinitions", "tags", "customProperties", "primaryKey",
	"primaryKeyPosition", "logicalType", "logicalTypeOptions", "physicalName", "required", "unique",
	"partitioned", "partitionKeyPosition", "classification", "encryptedName", "transformSourceObjects",
	"transformLogic", "transformDescription", "examples", "criticalDataElement", "relationships", "quality",
	"properties", "items");
static const char *const *const known_type_options = KNOWN("format", "minLength", "maxLength", "pattern",
	"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minItems", "maxItems",
	"uniqueItems", "minProperties", "maxProperties", "required", "timezone", "defaultTimezone");
/* DataQuality with its library, sql and custom variants and the operators;
 * the ...ThanOrEqualTo spellings are read too (older meshfs contracts) */
static const char *const *const known_quality = KNOWN("id", "authoritativeDefinitions", "businessImpact",
	"customProperties", "description", "dimension", "method", "name", "schedule", "scheduler", "severity",
	"tags", "type", "unit", "metric", "rule", "arguments", "query", "engine", "implementation", "mustBe",
	"mustNotBe", "mustBeGreaterThan", "mustBeGreaterOrEqualTo", "mustBeLessThan", "mustBeLessOrEqualTo",
	"mustBeBetween", "mustNotBeBetween", "mustBeGreaterThanOrEqualTo", "mustBeLessThanOrEqualTo");
static const char *const *const known_relationship = KNOWN("type", "from", "to", "customProperties");

/* Refuse a key `map` (a mapping at `field`) may not have, naming the
 * closest known one. */
static int check_keys(struct reader *r, const struct ynode *map, const char *field, const char *const *known)
{
	if (r->rc || !map || map->kind != Y_MAPPING)
		return r->rc;
	size_t n_known = 0;
	while (known[n_known])
		n_known++;
	for (size_t i = 0; i < map->n; i++) {
		const struct ynode *k = map->keys[i];
		bool ok = false;
		for (size_t j = 0; j < n_known && !ok; j++)
			ok = !strcmp(k->text, known[j]);
		if (ok)
			continue;
		const char *hint = name_hint_closest(k->text, known, n_known);
		char *shown = mesh_escape_text(k->text);
		if (hint)
			r->rc = mesh_errf(r->err, -EINVAL, "unknown field '%s' at %s:%d:%d (in %s); did you mean '%s'?",
					  shown, r->path, k->line, k->col, field, hint);
		else
			r->rc = mesh_errf(r->err, -EINVAL, "unknown field '%s' at %s:%d:%d (in %s): ODCS v3.1 "
					  "defines no such field here (extensions go in customProperties)", shown,
					  r->path, k->line, k->col, field);
		free(shown);
		return r->rc;
	}
	return 0;
}

static void check_each_keys(struct reader *r, const struct ynode *list, const char *field,
			    const char *const *known)
{
	if (!list || list->kind != Y_SEQUENCE)
		return;
	for (size_t i = 0; i < list->n && !r->rc; i++)
		check_keys(r, list->items[i], field, known);
}

/* An optional string field: scalars only. */
static char *get_str(struct reader *r, const struct ynode *map, const char *key, const char *field)
{
	const struct ynode *n = ymap_get(map, key);
	if (!n)
		return NULL;
	if (n->kind != Y_SCALAR) {
		fail(r, n, field, "expected a text value, found %s", kind_name(n));
		return NULL;
	}
	const char *s = yscalar(n);
	return s ? xstrdup(s) : NULL;
}

static bool get_bool(struct reader *r, const struct ynode *map, const char *key, const char *field)
{
	const struct ynode *n = ymap_get(map, key);
	if (!n || !yscalar(n))
		return false;
	int b = ybool(n);
	if (b < 0)
		fail(r, n, field, "expected true or false, found \"%s\"", n->text);
	return b == 1;
}

static char **get_str_list(struct reader *r, const struct ynode *n, const char *field, size_t *count)
{
	*count = 0;
	if (!n || (n->kind == Y_SCALAR && !yscalar(n)))
		return NULL;
	if (n->kind == Y_SCALAR) {   /* a single value where a list is allowed */
		char **out = xcalloc(1, sizeof *out);
		out[0] = xstrdup(yscalar(n));
		*count = 1;
		return out;
	}
	if (n->kind != Y_SEQUENCE) {
		fail(r, n, field, "expected a list, found %s", kind_name(n));
		return NULL;
	}
	char **out = xcalloc(n->n + 1, sizeof *out);
	for (size_t i = 0; i < n->n; i++) {
		const char *s = yscalar(n->items[i]);
		if (n->items[i]->kind != Y_SCALAR) {
			fail(r, n->items[i], field, "expected text items, found %s", kind_name(n->items[i]));
			break;
		}
		if (s)
			out[(*count)++] = xstrdup(s);
	}
	return out;
}

static void free_list(char **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

/* customProperties: [{property: K, value: V}] -> V node for K */
static const struct ynode *custom_property(const struct ynode *owner, const char *name)
{
	const struct ynode *cp = ymap_get(owner, "customProperties");
	if (!cp || cp->kind != Y_SEQUENCE)
		return NULL;
	for (size_t i = 0; i < cp->n; i++) {
		const char *p = yscalar(ymap_get(cp->items[i], "property"));
		if (p && !strcmp(p, name))
			return ymap_get(cp->items[i], "value");
	}
	return NULL;
}

static int64_t unit_seconds(const char *unit)
{
	if (!unit)
		return 86400;   /* ODCS examples default to days */
	static const struct { const char *name; int64_t s; } units[] = {
		{"s", 1}, {"sec", 1}, {"second", 1}, {"seconds", 1},
		{"m", 60}, {"min", 60}, {"minute", 60}, {"minutes", 60},
		{"h", 3600}, {"hr", 3600}, {"hour", 3600}, {"hours", 3600},
		{"d", 86400}, {"day", 86400}, {"days", 86400},
		{"w", 604800}, {"week", 604800}, {"weeks", 604800},
	};
	for (size_t i = 0; i < sizeof units / sizeof *units; i++)
		if (!strcasecmp(unit, units[i].name))
			return units[i].s;
	return -1;
}

/* ---- quality rules ---- */

static struct quality_rule *new_rule(struct contract *c, enum quality_kind kind, const char *column,
				     const char *name, const struct ynode *at)
{
	int line = at ? at->line : 0;
	c->rules = xrealloc(c->rules, (c->n_rules + 1) * sizeof *c->rules);
	struct quality_rule *q = &c->rules[c->n_rules++];
	memset(q, 0, sizeof *q);
	q->kind = kind;
	q->column = column ? xstrdup(column) : NULL;
	q->name = xstrdup(name);
	q->required = true;
	q->line = line;
	q->pos = pos_of(at);
	return q;
}

static bool num_of(const struct ynode *map, const char *key, double *v)
{
	return ynumber(ymap_get(map, key), v) == 0;
}

/* Bounds of an ODCS comparison (mustBe, mustBeGreaterThan, ...) as an
 * inclusive [min, max] on the metric. */
static void read_bounds(const struct ynode *q, bool *has_min, double *min, bool *has_max, double *max)
{
	double v;
	*has_min = *has_max = false;
	if (num_of(q, "mustBe", &v))
		*has_min = *has_max = true, *min = *max = v;
	if (num_of(q, "mustBeGreaterThan", &v))
		*has_min = true, *min = nextafter(v, INFINITY);
	if (num_of(q, "mustBeGreaterOrEqualTo", &v) || num_of(q, "mustBeGreaterThanOrEqualTo", &v))
		*has_min = true, *min = v;
	if (num_of(q, "mustBeLessThan", &v))
		*has_max = true, *max = nextafter(v, -INFINITY);
	if (num_of(q, "mustBeLessOrEqualTo", &v) || num_of(q, "mustBeLessThanOrEqualTo", &v))
		*has_max = true, *max = v;
	const struct ynode *between = ymap_get(q, "mustBeBetween");
	if (between && between->kind == Y_SEQUENCE && between->n == 2 &&
	    !ynumber(between->items[0], min) && !ynumber(between->items[1], max))
		*has_min = *has_max = true;
}

static void read_quality(struct reader *r, struct contract *c, const struct ynode *list,
			 const char *object, const char *column, const char *where)
{
	if (!list)
		return;
	if (list->kind != Y_SEQUENCE) {
		fail(r, list, where, "quality must be a list of rules, found %s", kind_name(list));
		return;
	}
	for (size_t i = 0; i < list->n && !r->rc; i++) {
		const struct ynode *q = list->items[i];
		if (q->kind != Y_MAPPING) {
			fail(r, q, where, "a quality rule must be a mapping, found %s", kind_name(q));
			return;
		}
		if (check_keys(r, q, "a quality rule", known_quality))
			return;
		check_each_keys(r, ymap_get(q, "customProperties"), "customProperties", known_custom);
		if (r->rc)
			return;
		const char *metric = yscalar(ymap_get(q, "metric"));
		if (!metric)
			metric = yscalar(ymap_get(q, "rule"));   /* ODCS 3.0 spelling */
		const char *type = yscalar(ymap_get(q, "type"));
		const char *severity = yscalar(ymap_get(q, "severity"));
		const char *name = yscalar(ymap_get(q, "name"));
		bool has_min, has_max;
		double min = 0, max = 0;
		read_bounds(q, &has_min, &min, &has_max, &max);
		const struct ynode *args = ymap_get(q, "arguments");
		struct quality_rule *rule = NULL;
		const char *query = yscalar(ymap_get(q, "query"));
		bool judged = has_min || has_max;
		if (type && !strcasecmp(type, "sql") && !query) {
			fail(r, q, where, "a sql quality rule needs a query");
			return;
		} else if (type && !strcasecmp(type, "sql") && judged && !ymap_get(q, "mustNotBe") &&
			   !ymap_get(q, "mustNotBeBetween")) {
			rule = new_rule(c, Q_SQL, column, name ? name : "sql", q);
			rule->query = xstrdup(query);
			rule->object = xstrdup(object);
			rule->has_metric_min = has_min;
			rule->metric_min = min;
			rule->has_metric_max = has_max;
			rule->metric_max = max;
		} else if (type && strcasecmp(type, "library") && strcasecmp(type, "text")) {
			rule = new_rule(c, Q_UNSUPPORTED, column, name ? name : type, q);
		} else if (ymap_get(q, "mustNotBe") || ymap_get(q, "mustNotBeBetween")) {
			/* not (yet) judged by meshfs: listed as not checked */
			rule = new_rule(c, Q_UNSUPPORTED, column, name ? name : metric ? metric : "quality rule", q);
		} else if (metric && column && (!strcmp(metric, "nullValues") || !strcmp(metric, "missingValues"))) {
			bool missing = !strcmp(metric, "missingValues");
			rule = new_rule(c, missing ? Q_MISSING : Q_NOT_NULL, column, name ? name : metric, q);
			if (missing && ymap_get(args, "missingValues"))
				rule->values = get_str_list(r, ymap_get(args, "missingValues"),
							    "quality.arguments.missingValues", &rule->n_values);
		} else if (metric && !strcmp(metric, "duplicateValues") && column) {
			rule = new_rule(c, Q_UNIQUE, column, name ? name : metric, q);
		} else if (metric && !strcmp(metric, "invalidValues") && column && ymap_get(args, "validValues")) {
			rule = new_rule(c, Q_ALLOWED_VALUES, column, name ? name : metric, q);
			const struct ynode *vv = ymap_get(args, "validValues");
			rule->values = get_str_list(r, vv, "quality.arguments.validValues", &rule->n_values);
		} else if (metric && !strcmp(metric, "invalidValues") && column && yscalar(ymap_get(args, "pattern"))) {
			rule = new_rule(c, Q_PATTERN, column, name ? name : metric, q);
			rule->pattern = xstrdup(yscalar(ymap_get(args, "pattern")));
		} else if (metric && !strcmp(metric, "rowCount") && (has_min || has_max)) {
			rule = new_rule(c, Q_ROW_COUNT, NULL, name ? name : metric, q);
			rule->has_min = has_min;
			rule->has_max = has_max;
			rule->min = min;
			rule->max = max;
		} else {
			rule = new_rule(c, Q_UNSUPPORTED, column, name ? name : metric ? metric : "quality rule",
					q);
		}
		if (rule->kind == Q_NOT_NULL || rule->kind == Q_MISSING || rule->kind == Q_UNIQUE ||
		    rule->kind == Q_ALLOWED_VALUES || rule->kind == Q_PATTERN) {
			/* no comparison: none at all may offend */
			rule->has_metric_min = has_min;
			rule->metric_min = min;
			rule->has_metric_max = has_max || !has_min;
			rule->metric_max = has_max ? max : 0;
			const char *unit = yscalar(ymap_get(q, "unit"));
			rule->unit = unit && !strcasecmp(unit, "percent") ? METRIC_PERCENT : METRIC_ROWS;
			/* "none at all" (mustBe 0, in rows or percent) is strict: every
			 * offending value fails; anything else is a tolerated count */
			rule->threshold = !(rule->has_metric_max && rule->metric_max == 0 &&
					    (!has_min || min <= 0));
		}
		if (severity && (!strcasecmp(severity, "warning") || !strcasecmp(severity, "info")))
			rule->required = false;
	}
}

/* ODCS logicalTypeOptions: the constraints JSON Schema users know.
 * Bounds are numbers for numeric types, text (dates, timestamps) else. */
static void read_type_options(struct reader *r, struct contract *c, const struct ynode *prop, const char *column,
			      const char *field)
{
	const struct ynode *o = ymap_get(prop, "logicalTypeOptions");
	if (!o)
		return;
	if (o->kind != Y_MAPPING) {
		fail(r, o, field, "logicalTypeOptions must be a mapping, found %s", kind_name(o));
		return;
	}
	if (check_keys(r, o, "logicalTypeOptions", known_type_options))
		return;
	static const char *bounds[] = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"};
	for (int i = 0; i < 4; i++) {
		const struct ynode *b = ymap_get(o, bounds[i]);
		if (!b || !yscalar(b))
			continue;
		bool is_min = i % 2 == 0;
		struct quality_rule *q = new_rule(c, is_min ? Q_MIN : Q_MAX, column, bounds[i], b);
		q->option = xstrdup(bounds[i]);
		q->exclusive = i >= 2;
		double v;
		if (ynumber(b, &v) == 0) {
			if (is_min)
				q->has_min = true, q->min = v;
			else
				q->has_max = true, q->max = v;
		} else {
			*(is_min ? &q->min_text : &q->max_text) = xstrdup(yscalar(b));
		}
	}
	static const char *lengths[] = {"minLength", "maxLength"};
	for (int i = 0; i < 2; i++) {
		const struct ynode *b = ymap_get(o, lengths[i]);
		double v;
		if (!b)
			continue;
		if (ynumber(b, &v) || v < 0 || v != (double)(long long)v) {
			fail(r, b, field, "logicalTypeOptions.%s must be a non-negative integer", lengths[i]);
			return;
		}
		struct quality_rule *q = new_rule(c, i ? Q_MAX_LENGTH : Q_MIN_LENGTH, column, lengths[i], b);
		q->option = xstrdup(lengths[i]);
		if (i)
			q->has_max = true, q->max = v;
		else
			q->has_min = true, q->min = v;
	}
	const struct ynode *pat = ymap_get(o, "pattern");
	if (pat && yscalar(pat)) {
		struct quality_rule *q = new_rule(c, Q_PATTERN, column, "pattern", pat);
		q->option = xstrdup("pattern");
		q->pattern = xstrdup(yscalar(pat));
		q->pattern_search = true;
		q->has_metric_max = true;
	}
	const struct ynode *fmt = ymap_get(o, "format");
	if (fmt && yscalar(fmt)) {
		struct quality_rule *q = new_rule(c, Q_FORMAT, column, "format", fmt);
		q->option = xstrdup("format");
		q->format = xstrdup(yscalar(fmt));
	}
}

/* meshfs range rules: property customProperties min/max (numbers or dates). */
static void read_range(struct contract *c, const struct ynode *prop, const char *column)
{
	const struct ynode *min = custom_property(prop, "min"), *max = custom_property(prop, "max");
	const struct ynode *bounds[2] = {min, max};
	for (int i = 0; i < 2; i++) {
		if (!bounds[i] || !yscalar(bounds[i]))
			continue;
		struct quality_rule *q = new_rule(c, i == 0 ? Q_MIN : Q_MAX, column, i == 0 ? "min" : "max",
						  bounds[i]);
		double v;
		if (ynumber(bounds[i], &v) == 0) {
			if (i == 0)
				q->has_min = true, q->min = v;
			else
				q->has_max = true, q->max = v;
		} else if (i == 0) {
			q->min_text = xstrdup(yscalar(bounds[i]));
		} else {
			q->max_text = xstrdup(yscalar(bounds[i]));
		}
	}
}

/* ---- relationships ---- */

/* One reference (see struct contract_ref).  0, or a message in why. */
static int parse_ref(const char *text, struct contract_ref *out, char *why, size_t size)
{
	memset(out, 0, sizeof *out);
	const char *rest = text;
	const char *hash = strstr(text, ".yaml#");
	if (hash) {
		/* DOMAIN/PRODUCT[/VERSION]/contract.yaml#...: a product of the mesh */
		size_t plen = (size_t)(hash - text) + 5;
		if (plen < 14 || strncmp(text + plen - 14, "/contract.yaml", 14)) {
			snprintf(why, size, "a contract elsewhere is named DOMAIN/PRODUCT[/VERSION]/contract.yaml#...");
			return -EINVAL;
		}
		char *product = xstrndup(text[0] == '/' ? text + 1 : text, plen - 14 - (text[0] == '/'));
		if (!strncmp(product, "mesh/", 5))   /* the mount's path, /mesh/DOMAIN/... */
			memmove(product, product + 5, strlen(product + 5) + 1);
		size_t slashes = 0;
		for (const char *p = product; *p; p++)
			slashes += *p == '/';
		if (slashes < 1 || slashes > 2 || strstr(product, "..") || product[0] == '/' ||
		    product[strlen(product) - 1] == '/') {
			free(product);
			snprintf(why, size, "a contract elsewhere is named DOMAIN/PRODUCT[/VERSION]/contract.yaml#...");
			return -EINVAL;
		}
		out->product = product;
		rest = hash + 6;
	}
	if (*rest == '/')
		rest++;
	if (!strncmp(rest, "schema/", 7)) {
		const char *obj = rest + 7, *p = strstr(obj, "/properties/");
		if (!p || p == obj || !p[12] || strchr(p + 12, '/')) {
			snprintf(why, size, "expected schema/OBJECT/properties/PROPERTY");
			free(out->product), out->product = NULL;
			return -EINVAL;
		}
		out->object = xstrndup(obj, (size_t)(p - obj));
		out->column = xstrdup(p + 12);
		return 0;
	}
	const char *dot = strchr(rest, '.');
	if (hash || !dot || dot == rest || !dot[1] || strchr(dot + 1, '.')) {
		snprintf(why, size, "expected OBJECT.PROPERTY, schema/OBJECT/properties/PROPERTY or "
			 "DOMAIN/PRODUCT/contract.yaml#/schema/OBJECT/properties/PROPERTY");
		free(out->product), out->product = NULL;
		return -EINVAL;
	}
	out->object = xstrndup(rest, (size_t)(dot - rest));
	out->column = xstrdup(dot + 1);
	return 0;
}

/* from/to: one reference or a list of them; *n the count. */
static struct contract_ref *read_refs(struct reader *r, const struct ynode *n, const char *field, size_t *count)
{
	*count = 0;
	size_t k = n->kind == Y_SEQUENCE ? n->n : 1;
	if (n->kind == Y_MAPPING || k == 0 || (n->kind == Y_SCALAR && !yscalar(n))) {
		fail(r, n, field, "expected a reference or a list of references");
		return NULL;
	}
	struct contract_ref *refs = xcalloc(k, sizeof *refs);
	for (size_t i = 0; i < k; i++) {
		const struct ynode *item = n->kind == Y_SEQUENCE ? n->items[i] : n;
		char why[200];
		if (!yscalar(item) || parse_ref(yscalar(item), &refs[i], why, sizeof why)) {
			if (!yscalar(item))
				snprintf(why, sizeof why, "expected a reference, found %s", kind_name(item));
			fail(r, item, field, "\"%s\": %s", yscalar(item) ? yscalar(item) : "", why);
			for (size_t j = 0; j < i; j++)
				free(refs[j].product), free(refs[j].object), free(refs[j].column);
			free(refs);
			return NULL;
		}
	}
	*count = k;
	return refs;
}

static void ref_text(struct strbuf *sb, const struct contract_ref *refs, size_t n)
{
	if (n > 1)
		strbuf_puts(sb, "(");
	for (size_t i = 0; i < n; i++)
		strbuf_printf(sb, "%s%s%s%s.%s", i ? ", " : "", refs[i].product ? refs[i].product : "",
			      refs[i].product ? ":" : "", refs[i].object, refs[i].column);
	if (n > 1)
		strbuf_puts(sb, ")");
}

/* ODCS relationships of a schema object (from and to) or of a property
 * (to only: from is the property itself). */
static void read_relationships(struct reader *r, struct contract *c, const struct ynode *list, const char *object,
			       const char *property, const char *where)
{
	if (!list || r->rc)
		return;
	if (list->kind != Y_SEQUENCE) {
		fail(r, list, where, "relationships must be a list, found %s", kind_name(list));
		return;
	}
	for (size_t i = 0; i < list->n && !r->rc; i++) {
		const struct ynode *n = list->items[i];
		if (n->kind != Y_MAPPING) {
			fail(r, n, where, "a relationship must be a mapping, found %s", kind_name(n));
			return;
		}
		const char *type = yscalar(ymap_get(n, "type"));
		if (type && strcmp(type, "foreignKey")) {
			fail(r, ymap_get(n, "type"), where, "relationship type \"%s\": ODCS v3.1 defines foreignKey", type);
			return;
		}
		const struct ynode *from = ymap_get(n, "from"), *to = ymap_get(n, "to");
		if (!to) {
			fail(r, n, where, "a relationship needs `to`");
			return;
		}
		if (property && from) {
			fail(r, from, where, "a property's relationship has no `from` (it is the property itself)");
			return;
		}
		if (!property && !from) {
			fail(r, n, where, "a schema object's relationship needs `from` and `to`");
			return;
		}
		size_t nt = 0, nf = 0;
		struct contract_ref *tos = read_refs(r, to, where, &nt), *froms = NULL;
		if (!tos)
			return;
		if (property) {
			froms = xcalloc(1, sizeof *froms);
			froms->object = xstrdup(object);
			froms->column = xstrdup(property);
			nf = 1;
		} else if (!(froms = read_refs(r, from, where, &nf))) {
			nf = 0;
		}
		bool shapes = froms && (from ? from->kind == Y_SEQUENCE : false) == (to->kind == Y_SEQUENCE);
		if (froms && (nf != nt || (from && !shapes)))
			fail(r, n, where, "`from` and `to` must both be one reference or lists of the same length "
			     "(%zu and %zu)", nf, nt);
		for (size_t k = 0; froms && !r->rc && k < nf; k++)
			if (froms[k].product)
				fail(r, from ? from : n, where, "`from` names this contract's own columns");
		c->relationships = xrealloc(c->relationships, (c->n_relationships + 1) * sizeof *c->relationships);
		struct contract_relationship *rel = &c->relationships[c->n_relationships++];
		memset(rel, 0, sizeof *rel);
		rel->object = xstrdup(object);
		rel->from = froms ? froms : xcalloc(1, sizeof *froms);
		rel->to = tos;
		/* on a failure above, free what was read (n covers both arrays) */
		rel->n = froms && nf == nt ? nt : 0;
		if (!rel->n) {
			for (size_t k = 0; k < nf; k++)
				free(rel->from[k].product), free(rel->from[k].object), free(rel->from[k].column);
			for (size_t k = 0; k < nt; k++)
				free(rel->to[k].product), free(rel->to[k].object), free(rel->to[k].column);
		}
		rel->pos = pos_of(n);
		struct strbuf sb = STRBUF_INIT;
		ref_text(&sb, rel->from, rel->n);
		strbuf_puts(&sb, " -> ");
		ref_text(&sb, rel->to, rel->n);
		rel->text = strbuf_detach(&sb, NULL);
	}
}

/* ---- schema ---- */

static void read_property(struct reader *r, struct contract *c, struct contract_object *obj,
			  const struct ynode *p, size_t index)
{
	char field[96];
	snprintf(field, sizeof field, "schema.%s.properties[%zu]", obj->name, index);
	if (p->kind != Y_MAPPING) {
		fail(r, p, field, "a property must be a mapping, found %s", kind_name(p));
		return;
	}
	if (check_keys(r, p, "a schema property", known_property))
		return;
	check_each_keys(r, ymap_get(p, "customProperties"), "customProperties", known_custom);
	check_each_keys(r, ymap_get(p, "relationships"), "relationships", known_relationship);
	if (r->rc)
		return;
	struct contract_property *prop = &obj->props[obj->n_props];
	memset(prop, 0, sizeof *prop);
	prop->line = p->line;
	prop->pos = pos_of(p);
	prop->name_pos = pos_of(ymap_get(p, "name"));
	prop->class_pos = pos_of(ymap_get(p, "classification"));
	prop->name = get_str(r, p, "name", field);
	prop->id = get_str(r, p, "id", field);
	if (!prop->name) {
		fail(r, p, field, "a property needs a name");
		free(prop->id);         /* not counted: contract_free() would miss it */
		prop->id = NULL;
		return;
	}
	obj->n_props++;
	snprintf(field, sizeof field, "schema.%s.%s", obj->name, prop->name);
	for (size_t k = 0; k + 1 < obj->n_props; k++)
		if (!strcmp(obj->props[k].name, prop->name)) {
			fail(r, p, field, "property declared twice (first at line %d)", obj->props[k].line);
			return;
		}
	prop->logical_type = get_str(r, p, "logicalType", field);
	prop->physical_type = get_str(r, p, "physicalType", field);
	prop->type = logical_type_parse(prop->logical_type ? prop->logical_type : prop->physical_type);
	prop->description = get_str(r, p, "description", field);
	prop->classification = get_str(r, p, "classification", field);
	prop->required = get_bool(r, p, "required", field);
	prop->unique = get_bool(r, p, "unique", field);
	prop->primary_key = get_bool(r, p, "primaryKey", field);
	double pos;
	if (num_of(p, "primaryKeyPosition", &pos))
		prop->primary_key_position = (int)pos;
	prop->examples = get_str_list(r, ymap_get(p, "examples"), field, &prop->n_examples);
	read_quality(r, c, ymap_get(p, "quality"), obj->name, prop->name, field);
	read_range(c, p, prop->name);
	read_type_options(r, c, p, prop->name, field);
	read_relationships(r, c, ymap_get(p, "relationships"), obj->name, prop->name, field);
}

static void read_schema(struct reader *r, struct contract *c, const struct ynode *schema)
{
	if (!schema)
		return;
	if (schema->kind != Y_SEQUENCE) {
		fail(r, schema, "schema", "expected a list of schema objects, found %s", kind_name(schema));
		return;
	}
	c->objects = xcalloc(schema->n + 1, sizeof *c->objects);
	for (size_t i = 0; i < schema->n && !r->rc; i++) {
		const struct ynode *o = schema->items[i];
		char field[64];
		snprintf(field, sizeof field, "schema[%zu]", i);
		if (o->kind != Y_MAPPING) {
			fail(r, o, field, "a schema object must be a mapping, found %s", kind_name(o));
			return;
		}
		if (check_keys(r, o, "a schema object", known_object))
			return;
		check_each_keys(r, ymap_get(o, "customProperties"), "customProperties", known_custom);
		check_each_keys(r, ymap_get(o, "relationships"), "relationships", known_relationship);
		if (r->rc)
			return;
		struct contract_object *obj = &c->objects[c->n_objects];
		obj->line = o->line;
		obj->pos = pos_of(o);
		obj->name = get_str(r, o, "name", field);
		if (!obj->name) {
			fail(r, o, field, "a schema object needs a name");
			return;
		}
		c->n_objects++;
		obj->physical_name = get_str(r, o, "physicalName", field);
		obj->id = get_str(r, o, "id", field);
		obj->description = get_str(r, o, "description", field);
		const struct ynode *props = ymap_get(o, "properties");
		if (props && props->kind != Y_SEQUENCE) {
			fail(r, props, field, "properties must be a list, found %s", kind_name(props));
			return;
		}
		obj->props = xcalloc(props ? props->n + 1 : 1, sizeof *obj->props);
		for (size_t k = 0; props && k < props->n && !r->rc; k++)
			read_property(r, c, obj, props->items[k], k);
		read_quality(r, c, ymap_get(o, "quality"), obj->name, NULL, field);
		read_relationships(r, c, ymap_get(o, "relationships"), obj->name, NULL, field);
	}
}

/* ---- top level ---- */

static void add_owner(struct contract *c, const char *subject, const char *role)
{
	for (size_t i = 0; i < c->n_owners; i++)
		if (!strcmp(c->owners[i].subject, subject))
			return;
	c->owners = xrealloc(c->owners, (c->n_owners + 1) * sizeof *c->owners);
	c->owners[c->n_owners].subject = xstrdup(subject);
	c->owners[c->n_owners].role = role ? xstrdup(role) : NULL;
	c->n_owners++;
}

static void read_team(struct reader *r, struct contract *c, const struct ynode *team)
{
	/* ODCS 3.0: team is a list of members; 3.1: {name, members: [...]} */
	const struct ynode *members = team && team->kind == Y_MAPPING ? ymap_get(team, "members") : team;
	if (team && team->kind == Y_MAPPING && check_keys(r, team, "team", known_team))
		return;
	if (!members)
		return;
	if (members->kind != Y_SEQUENCE) {
		fail(r, members, "team.members", "expected a list, found %s", kind_name(members));
		return;
	}
	check_each_keys(r, members, "team.members", known_member);
	for (size_t i = 0; i < members->n && !r->rc; i++) {
		const char *user = yscalar(ymap_get(members->items[i], "username"));
		const char *role = yscalar(ymap_get(members->items[i], "role"));
		if (!user || !role || !strcasestr(role, "owner"))
			continue;
		char subject[300];
		snprintf(subject, sizeof subject, "user:%s", user);
		add_owner(c, subject, role);
	}
}

static void read_sla(struct reader *r, struct contract *c, const struct ynode *sla)
{
	if (!sla)
		return;
	if (sla->kind != Y_SEQUENCE) {
		fail(r, sla, "slaProperties", "expected a list, found %s", kind_name(sla));
		return;
	}
	check_each_keys(r, sla, "slaProperties", known_sla);
	if (r->rc)
		return;
	for (size_t i = 0; i < sla->n; i++) {
		const struct ynode *s = sla->items[i];
		const char *prop = yscalar(ymap_get(s, "property"));
		if (!prop || (strcasecmp(prop, "freshness") && strcasecmp(prop, "latency")))
			continue;
		double v;
		int64_t unit = unit_seconds(yscalar(ymap_get(s, "unit")));
		if (ynumber(ymap_get(s, "value"), &v) || v < 0 || unit < 0) {
			fail(r, s, "slaProperties.freshness", "needs a numeric value and a unit (s, m, h, d)");
			return;
		}
		c->freshness_seconds = (int64_t)(v * (double)unit);
		const char *element = yscalar(ymap_get(s, "element"));
		const char *dot = element ? strrchr(element, '.') : NULL;
		free(c->freshness_column);
		c->freshness_column = xstrdup(dot ? dot + 1 : element);
		if (c->freshness_column) {
			struct quality_rule *q = new_rule(c, Q_FRESHNESS, c->freshness_column, prop, s);
			q->max_age_seconds = c->freshness_seconds;
		}
	}
}

static int line_of(const struct ynode *root, const char *key)
{
	const struct ynode *n = ymap_get(root, key);
	return n ? n->line : 0;
}

int contract_parse(const char *text, size_t len, const char *path, struct contract **out,
		   struct mesh_err *err)
{
	*out = NULL;
	struct ynode *root = NULL;
	static const struct ytree_limits limits = {CONTRACT_MAX_BYTES, CONTRACT_MAX_DEPTH, CONTRACT_MAX_NODES};
	int rc = yamltree_parse(text, len, path, &limits, &root, err);
	if (rc)
		return rc;
	struct reader r = {.path = path, .err = err};
	if (!root || root->kind != Y_MAPPING) {
		fail(&r, root, "contract", "an ODCS contract is a YAML mapping (apiVersion, kind, id, ...), found %s",
		     root ? kind_name(root) : "an empty document");
		yamltree_free(root);
		return r.rc;
	}
	struct contract *c = xcalloc(1, sizeof *c);
	c->path = xstrdup(path);
	c->freshness_seconds = -1;
	check_keys(&r, root, "the contract", known_root);
	check_keys(&r, ymap_get(root, "description"), "description", known_description);
	check_each_keys(&r, ymap_get(root, "support"), "support", known_support);
	check_each_keys(&r, ymap_get(root, "roles"), "roles", known_role);
	check_each_keys(&r, ymap_get(root, "customProperties"), "customProperties", known_custom);
	check_keys(&r, ymap_get(root, "price"), "price", known_price);
	static const char *required[] = {"apiVersion", "kind", "id", "version", "status"};
	for (size_t i = 0; i < 5 && !r.rc; i++) {
		const struct ynode *n = ymap_get(root, required[i]);
		if (!n)
			fail(&r, root, required[i], "required field missing (ODCS v3 requires apiVersion, kind, "
			     "id, version and status)");
		else if (!yscalar(n))
			fail(&r, n, required[i], "expected a text value, found %s",
			     n->kind == Y_SCALAR ? "nothing" : kind_name(n));
	}
	if (!r.rc) {
		c->api_version = get_str(&r, root, "apiVersion", "apiVersion");
		c->kind = get_str(&r, root, "kind", "kind");
		c->id = get_str(&r, root, "id", "id");
		c->version = get_str(&r, root, "version", "version");
		c->status = get_str(&r, root, "status", "status");
		c->name = get_str(&r, root, "name", "name");
		c->domain = get_str(&r, root, "domain", "domain");
		c->data_product = get_str(&r, root, "dataProduct", "dataProduct");
	}
	if (!r.rc && (c->api_version[0] != 'v' || c->api_version[1] != '3' ||
		      (c->api_version[2] && c->api_version[2] != '.')))
		fail(&r, ymap_get(root, "apiVersion"), "apiVersion", "\"%s\": meshfs reads ODCS v3 contracts "
		     "(v3.0.x, v3.1.x)", c->api_version);
	if (!r.rc && strcmp(c->kind, "DataContract"))
		fail(&r, ymap_get(root, "kind"), "kind", "\"%s\": expected DataContract", c->kind);
	const struct ynode *desc = ymap_get(root, "description");
	if (!r.rc && desc) {
		if (desc->kind == Y_MAPPING) {
			c->purpose = get_str(&r, desc, "purpose", "description.purpose");
			c->usage = get_str(&r, desc, "usage", "description.usage");
			c->limitations = get_str(&r, desc, "limitations", "description.limitations");
		} else if (yscalar(desc)) {
			c->purpose = xstrdup(yscalar(desc));   /* a plain description */
		}
	}
	if (!r.rc)
		c->tags = get_str_list(&r, ymap_get(root, "tags"), "tags", &c->n_tags);
	if (!r.rc)
		read_team(&r, c, ymap_get(root, "team"));
	if (!r.rc) {
		size_t n = 0;
		char **extra = get_str_list(&r, custom_property(root, "meshOwners"), "customProperties.meshOwners", &n);
		for (size_t i = 0; i < n; i++) {
			if (strncmp(extra[i], "user:", 5) && strncmp(extra[i], "group:", 6))
				fail(&r, custom_property(root, "meshOwners"), "customProperties.meshOwners",
				     "\"%s\": expected user:NAME or group:NAME", extra[i]);
			else
				add_owner(c, extra[i], "owner");
		}
		free_list(extra, n);
	}
	if (!r.rc)
		c->inputs = get_str_list(&r, custom_property(root, "meshInputs"), "customProperties.meshInputs",
					 &c->n_inputs);
	const struct ynode *restricted = custom_property(root, "meshRestricted");
	if (!r.rc && restricted && yscalar(restricted)) {
		int b = ybool(restricted);
		if (b < 0 && !strcasecmp(restricted->text, "true"))
			b = 1;
		if (b < 0)
			fail(&r, restricted, "customProperties.meshRestricted", "expected true or false");
		c->restricted = b == 1;
	}
	const struct ynode *support = ymap_get(root, "support");
	if (!r.rc && support) {
		if (support->kind != Y_SEQUENCE) {
			fail(&r, support, "support", "expected a list of channels, found %s", kind_name(support));
		} else {
			c->support_channels = xcalloc(support->n + 1, sizeof *c->support_channels);
			for (size_t i = 0; i < support->n; i++) {
				const char *ch = yscalar(ymap_get(support->items[i], "channel"));
				if (ch)
					c->support_channels[c->n_support++] = xstrdup(ch);
			}
		}
	}
	if (!r.rc)
		read_schema(&r, c, ymap_get(root, "schema"));
	if (!r.rc)
		read_sla(&r, c, ymap_get(root, "slaProperties"));
	c->line_version = line_of(root, "version");
	c->line_domain = line_of(root, "domain");
	c->line_product = line_of(root, "dataProduct");
	c->line_id = line_of(root, "id");
	c->line_status = line_of(root, "status");
	c->pos_version = pos_of(ymap_get(root, "version"));
	c->pos_domain = pos_of(ymap_get(root, "domain"));
	c->pos_product = pos_of(ymap_get(root, "dataProduct"));
	c->pos_id = pos_of(ymap_get(root, "id"));
	c->pos_status = pos_of(ymap_get(root, "status"));
	c->pos_name = pos_of(ymap_get(root, "name"));
	c->pos_description = pos_of(desc);
	c->pos_purpose = pos_of(desc && desc->kind == Y_MAPPING ? ymap_get(desc, "purpose") : desc);
	c->pos_usage = pos_of(ymap_get(desc, "usage"));
	c->pos_limitations = pos_of(ymap_get(desc, "limitations"));
	c->pos_team = pos_of(ymap_get(root, "team"));
	c->pos_support = pos_of(support);
	c->pos_tags = pos_of(ymap_get(root, "tags"));
	yamltree_free(root);
	if (r.rc) {
		contract_free(c);
		return r.rc;
	}
	*out = c;
	return 0;
}

int contract_load(const char *path, struct contract **out, struct mesh_err *err)
{
	char *text;
	size_t len;
	int rc = mesh_read_file_at(AT_FDCWD, path, CONTRACT_MAX_BYTES, &text, &len, err);
	if (rc)
		return rc;
	rc = contract_parse(text, len, path, out, err);
	free(text);
	return rc;
}

void contract_free(struct contract *c)
{
	if (!c)
		return;
	free(c->path);
	free(c->api_version);
	free(c->kind);
	free(c->id);
	free(c->name);
	free(c->version);
	free(c->status);
	free(c->domain);
	free(c->data_product);
	free(c->purpose);
	free(c->usage);
	free(c->limitations);
	free_list(c->tags, c->n_tags);
	for (size_t i = 0; i < c->n_owners; i++) {
		free(c->owners[i].subject);
		free(c->owners[i].role);
	}
	free(c->owners);
	for (size_t i = 0; i < c->n_objects; i++) {
		struct contract_object *o = &c->objects[i];
		free(o->name);
		free(o->id);
		free(o->physical_name);
		free(o->description);
		for (size_t k = 0; k < o->n_props; k++) {
			struct contract_property *p = &o->props[k];
			free(p->name);
			free(p->logical_type);
			free(p->physical_type);
			free(p->description);
			free(p->classification);
			free(p->id);
			free_list(p->examples, p->n_examples);
		}
		free(o->props);
	}
	free(c->objects);
	for (size_t i = 0; i < c->n_rules; i++) {
		struct quality_rule *q = &c->rules[i];
		free(q->column);
		free(q->name);
		free(q->min_text);
		free(q->max_text);
		free_list(q->values, q->n_values);
		free(q->pattern);
		free(q->option);
		free(q->format);
		free(q->query);
		free(q->object);
	}
	free(c->rules);
	for (size_t i = 0; i < c->n_relationships; i++) {
		struct contract_relationship *rel = &c->relationships[i];
		for (size_t k = 0; k < rel->n; k++) {
			struct contract_ref *ends[2] = {&rel->from[k], &rel->to[k]};
			for (int e = 0; e < 2; e++)
				free(ends[e]->product), free(ends[e]->object), free(ends[e]->column);
		}
		free(rel->from);
		free(rel->to);
		free(rel->object);
		free(rel->text);
	}
	free(c->relationships);
	free_list(c->support_channels, c->n_support);
	free_list(c->inputs, c->n_inputs);
	free(c->freshness_column);
	free(c);
}

static bool name_matches(const char *object_name, const char *file)
{
	if (!object_name)
		return false;
	if (!strcmp(object_name, file))
		return true;
	size_t n = strlen(object_name);
	return !strncmp(object_name, file, n) && file[n] == '.' && !strchr(file + n + 1, '.');
}

const struct contract_object *contract_object_for_file(const struct contract *c, const char *file)
{
	for (size_t i = 0; i < c->n_objects; i++)
		if (c->objects[i].physical_name && !strcmp(c->objects[i].physical_name, file))
			return &c->objects[i];
	for (size_t i = 0; i < c->n_objects; i++)
		if (name_matches(c->objects[i].physical_name, file) || name_matches(c->objects[i].name, file))
			return &c->objects[i];
	return c->n_objects == 1 ? &c->objects[0] : NULL;
}

int contract_check_publishable(const struct contract *c, struct mesh_err *err)
{
	if (!c->domain)
		return mesh_errf(err, -EINVAL, "%s:1:1: domain: required to publish (the domain that owns "
				 "the product)", c->path);
	if (!mesh_name_ok(c->domain))
		return mesh_errf(err, -EINVAL, "%s:%d:%d: domain: \"%s\" is not a safe name "
				 "([a-z0-9][a-z0-9_-]*, at most %d bytes)", c->path, c->pos_domain.line,
				 c->pos_domain.col, c->domain, MESH_NAME_MAX);
	if (!c->data_product)
		return mesh_errf(err, -EINVAL, "%s:1:1: dataProduct: required to publish (the product's name)",
				 c->path);
	if (!mesh_name_ok(c->data_product))
		return mesh_errf(err, -EINVAL, "%s:%d:%d: dataProduct: \"%s\" is not a safe name "
				 "([a-z0-9][a-z0-9_-]*, at most %d bytes)", c->path, c->pos_product.line,
				 c->pos_product.col, c->data_product, MESH_NAME_MAX);
	if (semver_parse(c->version, NULL))
		return mesh_errf(err, -EINVAL, "%s:%d:%d: version: \"%s\" is not SemVer 2.0.0 "
				 "(MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD])", c->path, c->pos_version.line,
				 c->pos_version.col, c->version);
	if (c->n_objects == 0)
		return mesh_errf(err, -EINVAL, "%s:1:1: schema: a published contract describes its data "
				 "files in at least one schema object", c->path);
	return 0;
}

const char *contract_where(const struct contract *c, struct contract_pos p, char *buf, size_t size)
{
	snprintf(buf, size, "%s:%d:%d", c->path, p.line ? p.line : 1, p.line ? p.col : 1);
	return buf;
}
