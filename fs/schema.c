/*
 * schema.c - Frictionless Table Schema sidecars and schema comparison
 * (contract in include/schema.h).
 */
#include "schema.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh_util.h"

const char *schema_type_name(enum schema_type t)
{
	static const char *names[] = {"any", "string", "integer", "number", "boolean", "date",
				      "datetime", "object", "array"};
	return (unsigned)t < sizeof names / sizeof *names ? names[t] : "any";
}

static enum schema_type type_from_name(const char *s)
{
	for (int t = ST_ANY; t <= ST_ARRAY; t++)
		if (!strcmp(s, schema_type_name(t)))
			return t;
	if (!strcmp(s, "timestamp"))
		return ST_DATETIME;
	return ST_ANY;
}

static enum schema_type from_logical(enum logical_type t)
{
	switch (t) {
	case LT_STRING: return ST_STRING;
	case LT_INTEGER: return ST_INTEGER;
	case LT_NUMBER: return ST_NUMBER;
	case LT_BOOLEAN: return ST_BOOLEAN;
	case LT_DATE: return ST_DATE;
	case LT_TIMESTAMP: return ST_DATETIME;
	case LT_OBJECT: return ST_OBJECT;
	case LT_ARRAY: return ST_ARRAY;
	default: return ST_ANY;
	}
}

void schema_free(struct table_schema *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_fields; i++) {
		struct schema_field *f = &s->fields[i];
		free(f->name);
		free(f->description);
		free(f->classification);
		for (size_t k = 0; k < f->n_enum; k++)
			free(f->enum_values[k]);
		free(f->enum_values);
		free(f->pattern);
	}
	free(s->fields);
	for (size_t i = 0; i < s->n_primary_key; i++)
		free(s->primary_key[i]);
	free(s->primary_key);
	free(s->name);
	free(s);
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

int schema_from_contract_object(const struct contract_object *obj, const struct contract *c,
				struct table_schema **out)
{
	struct table_schema *s = xcalloc(1, sizeof *s);
	s->name = xstrdup(obj->name);
	s->fields = xcalloc(obj->n_props + 1, sizeof *s->fields);
	s->primary_key = xcalloc(obj->n_props + 1, sizeof *s->primary_key);
	for (size_t i = 0; i < obj->n_props; i++) {
		const struct contract_property *p = &obj->props[i];
		struct schema_field *f = &s->fields[s->n_fields++];
		f->name = xstrdup(p->name);
		f->type = from_logical(p->type);
		f->description = dup_or_null(p->description);
		f->classification = dup_or_null(p->classification);
		f->required = p->required || p->primary_key;
		f->unique = p->unique;
		if (p->primary_key)
			s->primary_key[s->n_primary_key++] = xstrdup(p->name);
		for (size_t r = 0; c && r < c->n_rules; r++) {
			const struct quality_rule *q = &c->rules[r];
			if (!q->column || strcmp(q->column, p->name) || !q->required || q->threshold ||
			    q->pattern_search)
				continue;
			switch (q->kind) {
			case Q_NOT_NULL:
				f->required = true;
				break;
			case Q_UNIQUE:
				f->unique = true;
				break;
			case Q_ALLOWED_VALUES:
				if (!f->n_enum) {
					f->enum_values = xcalloc(q->n_values + 1, sizeof *f->enum_values);
					for (size_t k = 0; k < q->n_values; k++)
						f->enum_values[f->n_enum++] = xstrdup(q->values[k]);
				}
				break;
			case Q_PATTERN:
				if (!f->pattern)
					f->pattern = xstrdup(q->pattern);
				break;
			case Q_MIN:
				if (q->has_min)
					f->has_minimum = true, f->minimum = q->min;
				break;
			case Q_MAX:
				if (q->has_max)
					f->has_maximum = true, f->maximum = q->max;
				break;
			default:
				break;
			}
		}
	}
	/* composite primary keys keep the contract's declared order */
	*out = s;
	return 0;
}

static json_t *number_json(double v)
{
	if (v == floor(v) && fabs(v) < 9e15)
		return json_integer((json_int_t)v);
	return json_real(v);
}

int schema_to_json(const struct table_schema *s, char **json_text)
{
	json_t *root = json_object();
	json_t *fields = json_array();
	for (size_t i = 0; i < s->n_fields; i++) {
		const struct schema_field *f = &s->fields[i];
		json_t *jf = json_object();
		json_object_set_new(jf, "name", json_string(f->name));
		json_object_set_new(jf, "type", json_string(schema_type_name(f->type)));
		if (f->description)
			json_object_set_new(jf, "description", json_string(f->description));
		if (f->classification)
			json_object_set_new(jf, "classification", json_string(f->classification));
		json_t *cons = json_object();
		if (f->required)
			json_object_set_new(cons, "required", json_true());
		if (f->unique)
			json_object_set_new(cons, "unique", json_true());
		if (f->n_enum) {
			json_t *e = json_array();
			for (size_t k = 0; k < f->n_enum; k++)
				json_array_append_new(e, json_string(f->enum_values[k]));
			json_object_set_new(cons, "enum", e);
		}
		if (f->pattern)
			json_object_set_new(cons, "pattern", json_string(f->pattern));
		if (f->has_minimum)
			json_object_set_new(cons, "minimum", number_json(f->minimum));
		if (f->has_maximum)
			json_object_set_new(cons, "maximum", number_json(f->maximum));
		if (json_object_size(cons))
			json_object_set_new(jf, "constraints", cons);
		else
			json_decref(cons);
		json_array_append_new(fields, jf);
	}
	json_object_set_new(root, "fields", fields);
	if (s->n_primary_key == 1) {
		json_object_set_new(root, "primaryKey", json_string(s->primary_key[0]));
	} else if (s->n_primary_key > 1) {
		json_t *pk = json_array();
		for (size_t i = 0; i < s->n_primary_key; i++)
			json_array_append_new(pk, json_string(s->primary_key[i]));
		json_object_set_new(root, "primaryKey", pk);
	}
	json_t *missing = json_array();
	json_array_append_new(missing, json_string(""));
	json_object_set_new(root, "missingValues", missing);
	*json_text = mesh_json_text(root);
	json_decref(root);
	return 0;
}

static int parse_fail(struct mesh_err *err, const char *path, const char *what, size_t i)
{
	return mesh_errf(err, -EINVAL, "%s: fields[%zu]: %s", path, i, what);
}

int schema_parse(const char *text, size_t len, const char *path, struct table_schema **out,
		 struct mesh_err *err)
{
	*out = NULL;
	if (len > SCHEMA_MAX_BYTES)
		return mesh_errf(err, -EFBIG, "%s: larger than %u bytes", path, SCHEMA_MAX_BYTES);
	json_error_t jerr;
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return mesh_errf(err, -EINVAL, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
	int rc = 0;
	json_t *fields = json_object_get(root, "fields");
	if (!json_is_object(root) || !json_is_array(fields)) {
		json_decref(root);
		return mesh_errf(err, -EINVAL, "%s:1:1: fields: a Table Schema is an object with a "
				 "\"fields\" list", path);
	}
	struct table_schema *s = xcalloc(1, sizeof *s);
	s->fields = xcalloc(json_array_size(fields) + 1, sizeof *s->fields);
	for (size_t i = 0; i < json_array_size(fields) && !rc; i++) {
		json_t *jf = json_array_get(fields, i);
		json_t *name = json_object_get(jf, "name"), *type = json_object_get(jf, "type");
		if (!json_is_string(name)) {
			rc = parse_fail(err, path, "needs a \"name\" string", i);
			break;
		}
		if (type && !json_is_string(type)) {
			rc = parse_fail(err, path, "\"type\" must be a string", i);
			break;
		}
		struct schema_field *f = &s->fields[s->n_fields++];
		f->name = xstrdup(json_string_value(name));
		f->type = type ? type_from_name(json_string_value(type)) : ST_ANY;
		json_t *d = json_object_get(jf, "description"), *cl = json_object_get(jf, "classification");
		f->description = json_is_string(d) ? xstrdup(json_string_value(d)) : NULL;
		f->classification = json_is_string(cl) ? xstrdup(json_string_value(cl)) : NULL;
		json_t *cons = json_object_get(jf, "constraints");
		f->required = json_is_true(json_object_get(cons, "required"));
		f->unique = json_is_true(json_object_get(cons, "unique"));
		json_t *e = json_object_get(cons, "enum");
		if (json_is_array(e)) {
			f->enum_values = xcalloc(json_array_size(e) + 1, sizeof *f->enum_values);
			for (size_t k = 0; k < json_array_size(e); k++) {
				json_t *v = json_array_get(e, k);
				char *txt = json_is_string(v) ? xstrdup(json_string_value(v))
					  : json_dumps(v, JSON_ENCODE_ANY);
				f->enum_values[f->n_enum++] = txt ? txt : xstrdup("");
			}
		}
		json_t *pat = json_object_get(cons, "pattern");
		f->pattern = json_is_string(pat) ? xstrdup(json_string_value(pat)) : NULL;
		json_t *mn = json_object_get(cons, "minimum"), *mx = json_object_get(cons, "maximum");
		if (json_is_number(mn))
			f->has_minimum = true, f->minimum = json_number_value(mn);
		if (json_is_number(mx))
			f->has_maximum = true, f->maximum = json_number_value(mx);
	}
	json_t *pk = json_object_get(root, "primaryKey");
	if (!rc && pk) {
		size_t n = json_is_array(pk) ? json_array_size(pk) : 1;
		s->primary_key = xcalloc(n + 1, sizeof *s->primary_key);
		for (size_t i = 0; i < n; i++) {
			json_t *k = json_is_array(pk) ? json_array_get(pk, i) : pk;
			if (!json_is_string(k)) {
				rc = mesh_errf(err, -EINVAL, "%s: primaryKey: expected field names", path);
				break;
			}
			s->primary_key[s->n_primary_key++] = xstrdup(json_string_value(k));
		}
	}
	json_decref(root);
	if (rc) {
		schema_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

/* ---- comparison ---- */

/* Can every value of `from` be read as `to`?  (widening or equal) */
static bool widens(enum schema_type from, enum schema_type to)
{
	if (from == to || to == ST_ANY || to == ST_STRING)
		return true;
	if (from == ST_INTEGER && to == ST_NUMBER)
		return true;
	if (from == ST_DATE && to == ST_DATETIME)
		return false;   /* a date is not a timestamp in CSV text */
	return false;
}

static const struct schema_field *find_field(const struct table_schema *s, const char *name, size_t *pos)
{
	for (size_t i = 0; i < s->n_fields; i++)
		if (!strcmp(s->fields[i].name, name)) {
			if (pos)
				*pos = i;
			return &s->fields[i];
		}
	return NULL;
}

static void add_change(struct schema_change **changes, size_t *n, enum schema_change_kind kind,
		       const char *column, const char *old_column, bool breaking, const char *fmt, ...)
	__attribute__((format(printf, 7, 8)));

static void add_change(struct schema_change **changes, size_t *n, enum schema_change_kind kind,
		       const char *column, const char *old_column, bool breaking, const char *fmt, ...)
{
	*changes = xrealloc(*changes, (*n + 1) * sizeof **changes);
	struct schema_change *c = &(*changes)[(*n)++];
	c->kind = kind;
	c->column = xstrdup(column);
	c->old_column = old_column ? xstrdup(old_column) : NULL;
	c->breaking = breaking;
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	c->description = xstrdup(buf);
}

static void compare_field(const struct schema_field *o, const struct schema_field *f,
			  struct schema_change **changes, size_t *n)
{
	if (o->type != f->type) {
		bool ok = widens(o->type, f->type);
		add_change(changes, n, SC_TYPE_CHANGED, f->name, NULL, !ok, "%s: type %s -> %s (%s)", f->name,
			   schema_type_name(o->type), schema_type_name(f->type), ok ? "widening" : "narrowing");
	}
	if (o->required != f->required)
		add_change(changes, n, SC_REQUIRED_CHANGED, f->name, NULL, f->required, "%s: %s", f->name,
			   f->required ? "optional -> required" : "required -> optional");
	if (o->unique != f->unique)
		add_change(changes, n, SC_UNIQUE_CHANGED, f->name, NULL, f->unique, "%s: %s", f->name,
			   f->unique ? "now unique" : "no longer unique");
	if (o->n_enum || f->n_enum) {
		struct strbuf removed = STRBUF_INIT, added = STRBUF_INIT;
		for (size_t i = 0; i < o->n_enum; i++) {
			bool kept = !f->n_enum;   /* no enum any more: everything allowed */
			for (size_t k = 0; k < f->n_enum; k++)
				kept |= !strcmp(o->enum_values[i], f->enum_values[k]);
			if (!kept)
				strbuf_printf(&removed, "%s%s", removed.len ? ", " : "", o->enum_values[i]);
		}
		for (size_t k = 0; k < f->n_enum; k++) {
			bool known = false;
			for (size_t i = 0; i < o->n_enum; i++)
				known |= !strcmp(o->enum_values[i], f->enum_values[k]);
			if (!known && o->n_enum)
				strbuf_printf(&added, "%s%s", added.len ? ", " : "", f->enum_values[k]);
		}
		if (!o->n_enum && f->n_enum)
			add_change(changes, n, SC_ENUM_REMOVED, f->name, NULL, true,
				   "%s: values now restricted to a list", f->name);
		if (removed.len)
			add_change(changes, n, SC_ENUM_REMOVED, f->name, NULL, true,
				   "%s: allowed values removed: %s", f->name, removed.buf);
		if (added.len)
			add_change(changes, n, SC_ENUM_ADDED, f->name, NULL, false, "%s: allowed values added: %s",
				   f->name, added.buf);
		strbuf_release(&removed);
		strbuf_release(&added);
	}
	bool pattern_changed = (o->pattern == NULL) != (f->pattern == NULL) ||
			       (o->pattern && f->pattern && strcmp(o->pattern, f->pattern));
	if (pattern_changed)
		add_change(changes, n, SC_CONSTRAINT_CHANGED, f->name, NULL, f->pattern != NULL,
			   "%s: pattern %s -> %s", f->name, o->pattern ? o->pattern : "(none)",
			   f->pattern ? f->pattern : "(none)");
	bool tighter_min = f->has_minimum && (!o->has_minimum || f->minimum > o->minimum);
	bool tighter_max = f->has_maximum && (!o->has_maximum || f->maximum < o->maximum);
	if (tighter_min || tighter_max)
		add_change(changes, n, SC_CONSTRAINT_CHANGED, f->name, NULL, true, "%s: range narrowed",
			   f->name);
	else if (o->has_minimum != f->has_minimum || o->has_maximum != f->has_maximum ||
		 o->minimum != f->minimum || o->maximum != f->maximum)
		add_change(changes, n, SC_CONSTRAINT_CHANGED, f->name, NULL, false, "%s: range widened", f->name);
	bool class_changed = (o->classification == NULL) != (f->classification == NULL) ||
			     (o->classification && f->classification && strcmp(o->classification, f->classification));
	if (class_changed)
		add_change(changes, n, SC_CLASSIFICATION_CHANGED, f->name, NULL, false, "%s: classification %s -> %s",
			   f->name, o->classification ? o->classification : "(none)",
			   f->classification ? f->classification : "(none)");
}

int schema_diff(const struct table_schema *old, const struct table_schema *new,
		struct schema_change **changes, size_t *n)
{
	*changes = NULL;
	*n = 0;
	/* pair removed and added columns at the same position with the same
	 * type as renames */
	bool *renamed_old = xcalloc(old->n_fields + 1, sizeof *renamed_old);
	bool *renamed_new = xcalloc(new->n_fields + 1, sizeof *renamed_new);
	for (size_t i = 0; i < old->n_fields && i < new->n_fields; i++) {
		const struct schema_field *o = &old->fields[i], *f = &new->fields[i];
		if (strcmp(o->name, f->name) && !find_field(new, o->name, NULL) && !find_field(old, f->name, NULL) &&
		    o->type == f->type)
			renamed_old[i] = renamed_new[i] = true;
	}
	for (size_t i = 0; i < new->n_fields; i++) {
		const struct schema_field *f = &new->fields[i];
		if (renamed_new[i]) {
			add_change(changes, n, SC_COLUMN_RENAMED, f->name, old->fields[i].name, true,
				   "%s: renamed from %s", f->name, old->fields[i].name);
			compare_field(&old->fields[i], f, changes, n);
			continue;
		}
		size_t pos;
		const struct schema_field *o = find_field(old, f->name, &pos);
		if (!o) {
			add_change(changes, n, SC_COLUMN_ADDED, f->name, NULL, f->required, "%s: column added (%s)",
				   f->name, f->required ? "required" : "optional");
			continue;
		}
		compare_field(o, f, changes, n);
	}
	for (size_t i = 0; i < old->n_fields; i++)
		if (!renamed_old[i] && !find_field(new, old->fields[i].name, NULL))
			add_change(changes, n, SC_COLUMN_REMOVED, old->fields[i].name, NULL, true,
				   "%s: column removed", old->fields[i].name);
	/* a CSV reader addresses columns by position: a reorder of kept
	 * columns breaks readers even with the same set */
	size_t last = 0;
	bool reordered = false;
	for (size_t i = 0; i < new->n_fields; i++) {
		size_t pos;
		if (renamed_new[i] || !find_field(old, new->fields[i].name, &pos))
			continue;
		if (pos < last)
			reordered = true;
		last = pos;
	}
	if (reordered)
		add_change(changes, n, SC_ORDER_CHANGED, new->name ? new->name : "", NULL, true,
			   "column order changed");
	free(renamed_old);
	free(renamed_new);
	return 0;
}

void schema_changes_free(struct schema_change *changes, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(changes[i].column);
		free(changes[i].old_column);
		free(changes[i].description);
	}
	free(changes);
}
