/*
 * schema.h - the schema sidecar: a Frictionless Table Schema (JSON) per
 * data file, derived from the contract or given by the producer, and the
 * comparison of two schemas that decides what a new version must be.
 *
 * Not here: data validation (validate.h), contracts (contract.h).
 */
#ifndef SCHEMA_H
#define SCHEMA_H

#include <stdbool.h>
#include <stddef.h>

#include "contract.h"
#include "mesh_err.h"

#define SCHEMA_MAX_BYTES (16u << 20)

/* Frictionless field types meshfs uses. */
enum schema_type { ST_ANY, ST_STRING, ST_INTEGER, ST_NUMBER, ST_BOOLEAN, ST_DATE, ST_DATETIME,
		   ST_OBJECT, ST_ARRAY };
const char *schema_type_name(enum schema_type t);

struct schema_field {
	char *name;
	enum schema_type type;
	char *description;
	char *classification;         /* custom key "classification" */
	bool required, unique;
	char **enum_values;           /* constraints.enum */
	size_t n_enum;
	char *pattern;                /* constraints.pattern */
	bool has_minimum, has_maximum;
	double minimum, maximum;
};

struct table_schema {
	char *name;                   /* the schema object / resource name */
	struct schema_field *fields;
	size_t n_fields;
	char **primary_key;
	size_t n_primary_key;
};

int schema_from_contract_object(const struct contract_object *obj, const struct contract *c,
				struct table_schema **out);
/* Pretty JSON with a trailing newline, stable key order; caller frees. */
int schema_to_json(const struct table_schema *s, char **json_text);
/* Parse a Table Schema (duplicate keys rejected); messages name
 * path:line:column. */
int schema_parse(const char *text, size_t len, const char *path, struct table_schema **out,
		 struct mesh_err *err);
void schema_free(struct table_schema *s);

enum schema_change_kind {
	SC_COLUMN_ADDED, SC_COLUMN_REMOVED, SC_COLUMN_RENAMED, SC_TYPE_CHANGED,
	SC_REQUIRED_CHANGED, SC_UNIQUE_CHANGED, SC_ENUM_REMOVED, SC_ENUM_ADDED,
	SC_CONSTRAINT_CHANGED, SC_CLASSIFICATION_CHANGED, SC_ORDER_CHANGED,
};

struct schema_change {
	enum schema_change_kind kind;
	char *column;                 /* the (new) column */
	char *old_column;             /* renames */
	char *description;            /* "email: type string -> integer (narrowing)" */
	bool breaking;
};

/* Changes from `old` to `new`, in column order.  Breaking: removing or
 * renaming a column, narrowing a type, an optional column becoming
 * required, a new required column, removing allowed values, a tighter
 * range or a new pattern.  Not breaking: a new optional column, widening a
 * type, relaxing required, new allowed values. */
int schema_diff(const struct table_schema *old, const struct table_schema *new,
		struct schema_change **changes, size_t *n);
void schema_changes_free(struct schema_change *changes, size_t n);

#endif
