/*
 * contract.h - ODCS v3 data contracts (YAML) in, a contract struct out.
 *
 * Reads the parts of the Open Data Contract Standard v3 that meshfs acts on
 * (identity, lifecycle status, owners, schema objects and properties,
 * quality rules, SLA freshness, support, lineage inputs).  Everything else
 * is left in the original text, which meshfs stores byte for byte: unknown
 * keys are never lost because the contract file itself is never rewritten
 * at publish.
 *
 * Not here: validation of data against the contract (validate.h), the
 * schema sidecar (schema.h), governance rules (policy.h).
 */
#ifndef CONTRACT_H
#define CONTRACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mesh_err.h"

/* Limits of the loader (libyaml has no nesting limit of its own). */
#define CONTRACT_MAX_BYTES  (4u << 20)
#define CONTRACT_MAX_DEPTH  64
#define CONTRACT_MAX_NODES  200000

/* A place in the contract text (1-based; line 0 = absent), for messages
 * that cite path:line:column. */
struct contract_pos {
	int line, col;
};

enum logical_type {
	LT_ANY = 0,      /* absent or unknown: accept any value */
	LT_STRING,
	LT_INTEGER,
	LT_NUMBER,
	LT_BOOLEAN,
	LT_DATE,
	LT_TIMESTAMP,
	LT_OBJECT,
	LT_ARRAY,
};
const char *logical_type_name(enum logical_type t);
/* Maps an ODCS logicalType ("string", "integer", "number", "boolean",
 * "date", "timestamp", "time", "object", "array") or a common physicalType
 * ("varchar(18)", "bigint", "double", ...) to an enum; LT_ANY if unknown. */
enum logical_type logical_type_parse(const char *text);

enum quality_kind {
	Q_NOT_NULL,        /* metric: nullValues (bounds below) */
	Q_UNIQUE,          /* metric: duplicateValues (bounds below) */
	Q_MIN,             /* value >= min (number or date) */
	Q_MAX,             /* value <= max */
	Q_ALLOWED_VALUES,  /* metric: invalidValues with arguments.validValues */
	Q_PATTERN,         /* metric: invalidValues with arguments.pattern (PCRE2, whole value);
			      logicalTypeOptions.pattern (JSON Schema: found anywhere) */
	Q_ROW_COUNT,       /* object-level metric: rowCount with bounds */
	Q_FRESHNESS,       /* max(timestamp column) within max_age_seconds of now */
	Q_UNSUPPORTED,     /* a rule meshfs cannot check (sql, custom): reported, not run */
	Q_MIN_LENGTH,      /* logicalTypeOptions.minLength: characters (UTF-8 code points) */
	Q_MAX_LENGTH,      /* logicalTypeOptions.maxLength */
	Q_FORMAT,          /* logicalTypeOptions.format: email, uuid, uri, date-time, ipv4, ... */
	Q_MISSING,         /* metric: missingValues (null or one of arguments.missingValues) */
	Q_SQL,             /* type: sql: `query` gives one number, judged by the mustBe* bounds
			      (has_metric_min/max); run over the file in embedded SQLite
			      (sqlrule.h) or listed as not checked */
};

/* How a metric's count is judged (ODCS library metrics): the rule passes
 * when the count of offending values (rows) or its share of the rows
 * (percent) lies inside [metric_min, metric_max]. */
enum metric_unit { METRIC_ROWS = 0, METRIC_PERCENT };

struct quality_rule {
	enum quality_kind kind;
	char *column;           /* NULL for object-level rules (row count) */
	char *name;             /* rule name or metric, for messages */
	bool has_min, has_max;  /* bounds, meaning depends on kind */
	double min, max;        /* Q_MIN/Q_MAX on numbers, Q_ROW_COUNT */
	char *min_text, *max_text; /* Q_MIN/Q_MAX bounds on dates/timestamps as text */
	char **values;          /* Q_ALLOWED_VALUES */
	size_t n_values;
	char *pattern;          /* Q_PATTERN */
	bool pattern_search;    /* JSON Schema semantics: the pattern may match anywhere */
	bool exclusive;         /* Q_MIN/Q_MAX: the bound itself is outside */
	char *option;           /* the logicalTypeOptions key the rule comes from, or NULL */
	char *format;           /* Q_FORMAT */
	char *query;            /* Q_SQL, as written (placeholders ${object} etc. unexpanded) */
	char *object;           /* the schema object the rule belongs to (Q_SQL), NULL if unknown */
	/* metric rules (Q_NOT_NULL, Q_UNIQUE, Q_ALLOWED_VALUES, Q_PATTERN, Q_MISSING) */
	bool threshold;         /* a tolerated count or share, not "none at all" */
	enum metric_unit unit;
	bool has_metric_min, has_metric_max;
	double metric_min, metric_max;
	int64_t max_age_seconds;/* Q_FRESHNESS */
	bool required;          /* severity error (default) vs warning */
	int line;               /* where the rule is written in the contract */
	struct contract_pos pos;/* ... line and column */
};

struct contract_property {
	char *name;
	enum logical_type type;
	char *logical_type;     /* as written, or NULL */
	char *physical_type;    /* as written, or NULL */
	char *description;
	char *classification;   /* e.g. "pii", "confidential", "public"; NULL if none */
	char **examples;
	size_t n_examples;
	bool required, unique, primary_key;
	int primary_key_position;
	int line;
	struct contract_pos pos, name_pos, class_pos;   /* the property, its name, its classification */
	char *id;               /* ODCS id, or NULL */
};

struct contract_object {
	char *name;
	char *physical_name;    /* file it describes when set (e.g. orders.csv) */
	char *description;
	struct contract_property *props;
	size_t n_props;
	int line;
	struct contract_pos pos;
	char *id;               /* ODCS id, or NULL */
};

/* One end of an ODCS relationship: a column of a schema object, of this
 * contract or, when `product` is set, of a published product's contract.
 * Written as "object.column" (shorthand), "schema/OBJ/properties/COL"
 * (fully qualified, names or ids), or with a contract in front:
 * "DOMAIN/PRODUCT[/VERSION]/contract.yaml#/schema/OBJ/properties/COL"
 * (the path of its contract in the mesh; no VERSION: latest). */
struct contract_ref {
	char *product;          /* "domain/product" or "domain/product/version", or NULL: this contract */
	char *object, *column;
};

/* ODCS relationships (type foreignKey) from schema objects and properties:
 * from[i] -> to[i] for i < n (composite keys have n > 1). */
struct contract_relationship {
	char *object;           /* the schema object it is declared in */
	struct contract_ref *from, *to;
	size_t n;
	struct contract_pos pos;
	char *text;             /* "orders.customer_id -> customers.id" for messages */
};

struct contract_subject {       /* "user:bob", "group:sales-team" */
	char *subject;
	char *role;
};

struct contract {
	char *path;             /* file the contract was read from (for messages) */
	char *api_version, *kind, *id, *name, *version, *status;
	char *domain, *data_product;
	char *purpose, *usage, *limitations;   /* description.* */
	char **tags;
	size_t n_tags;
	struct contract_subject *owners;       /* team members with an owner role */
	size_t n_owners;
	struct contract_object *objects;       /* schema[] */
	size_t n_objects;
	struct quality_rule *rules;            /* object- and property-level quality */
	size_t n_rules;
	char **support_channels;
	size_t n_support;
	char **inputs;          /* lineage: "domain/product[@version]" */
	size_t n_inputs;
	bool restricted;        /* customProperties meshRestricted: true */
	int64_t freshness_seconds;             /* slaProperties freshness/latency, -1 if none */
	char *freshness_column;                /* its element's column, or NULL */
	struct contract_relationship *relationships;
	size_t n_relationships;
	/* line numbers of top-level keys, for messages (0 = absent) */
	int line_version, line_domain, line_product, line_id, line_status;
	/* positions of values, for messages (line 0 = absent) */
	struct contract_pos pos_version, pos_domain, pos_product, pos_id, pos_status, pos_name,
		pos_description, pos_purpose, pos_usage, pos_limitations, pos_team, pos_support, pos_tags;
};

/* Parse ODCS v3 YAML text.  `path` names the file in messages.  On success
 * *out is a new contract (free with contract_free).  Fails, naming
 * file:line:column and the field, on YAML syntax errors, a document that is
 * not a mapping, a missing or mistyped required field (apiVersion, kind,
 * id, version, status), an apiVersion other than v3.x, a kind other than
 * DataContract, a schema section of the wrong shape, or a field name that
 * ODCS v3.1 does not define where the standard allows no others (the
 * document, description, team and its members, support, schema objects,
 * properties, logicalTypeOptions, quality rules, relationships,
 * slaProperties, roles, price, customProperties entries): "unknown field
 * 'requried' at contract.yaml:12:5; did you mean 'required'?". */
int contract_parse(const char *text, size_t len, const char *path,
		   struct contract **out, struct mesh_err *err);
/* "path:line:col" of `p` (path:1:1 when absent) into buf; returns buf. */
const char *contract_where(const struct contract *c, struct contract_pos p, char *buf, size_t size);

/* Read and parse a file (at most CONTRACT_MAX_BYTES). */
int contract_load(const char *path, struct contract **out, struct mesh_err *err);
void contract_free(struct contract *c);

/* The object describing data file `file_name`: the one whose physicalName
 * or name (with or without extension) matches, else the only object. NULL
 * when none matches. */
const struct contract_object *contract_object_for_file(const struct contract *c,
							const char *file_name);

/* Checks that make a contract publishable in meshfs: domain and
 * dataProduct are safe names, version is SemVer, at least one object.  */
int contract_check_publishable(const struct contract *c, struct mesh_err *err);

#endif
