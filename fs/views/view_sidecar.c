/*
 * view_sidecar.c - schema.json and quality.json for masked readers
 * (contract in include/view_sidecar.h).
 *
 * Not here: which columns a reader gets masked (daemon.c asks policy.c).
 */
#include "view_sidecar.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <jansson.h>
#include <string.h>

static const struct view_column *find(const struct view_plan *plan, const char *name)
{
	for (size_t i = 0; name && i < plan->n; i++)
		if (!strcmp(plan->columns[i].name, name))
			return &plan->columns[i];
	return NULL;
}

static int finish(json_t *root, char **out, size_t *out_len)
{
	char *text = mesh_json_text(root);
	json_decref(root);
	*out = text;
	*out_len = strlen(text);
	return 0;
}

int view_sidecar_schema(const char *json, size_t len, const struct view_plan *plan, char **out,
			size_t *out_len, struct mesh_err *err)
{
	json_error_t jerr;
	json_t *root = json_loadb(json, len, JSON_DECODE_ANY, &jerr);
	json_t *fields = json_object_get(root, "fields");
	if (!json_is_object(root) || !json_is_array(fields)) {
		json_decref(root);
		return mesh_errf(err, -EINVAL, "schema.json: not a Table Schema (line %d: %s)", jerr.line, jerr.text);
	}
	size_t i;
	json_t *f;
	/* a column the view leaves out (Parquet) is not in its schema */
	for (i = json_array_size(fields); i-- > 0;) {
		const struct view_column *c = find(plan, json_string_value(json_object_get(json_array_get(fields, i), "name")));
		if (c && c->fn == VIEW_FN_OMIT)
			json_array_remove(fields, i);
	}
	json_array_foreach(fields, i, f) {
		const struct view_column *c = find(plan, json_string_value(json_object_get(f, "name")));
		if (!c || !json_is_object(f))
			continue;
		json_object_set_new(f, "masked", json_string(view_fn_name(c->fn)));
		switch (c->fn) {
		case VIEW_FN_REDACT:
		case VIEW_FN_HASH:
		case VIEW_FN_LAST4:
			json_object_set_new(f, "type", json_string("string"));
			json_object_del(f, "format");
			break;
		case VIEW_FN_YEAR:
			json_object_set_new(f, "type", json_string("year"));
			json_object_del(f, "format");
			break;
		case VIEW_FN_TRUNCATE:
			json_object_set_new(f, "type", json_string("number"));
			break;
		default:
			break;
		}
		json_object_del(f, "constraints");   /* masked values need not meet them */
	}
	json_object_set_new(root, "meshView", json_string(plan->text));
	return finish(root, out, out_len);
}

#define HIDDEN "(hidden: a classified column you do not see in clear)"

struct values {
	char **v;
	size_t n;
};

/* Strip the values of hidden columns from every example below v, keeping
 * the values seen (they may be repeated in summaries). */
static void scrub(json_t *v, const struct view_plan *hidden, const char *rule_column, struct values *seen)
{
	if (json_is_array(v)) {
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e)
			scrub(e, hidden, rule_column, seen);
		return;
	}
	if (!json_is_object(v))
		return;
	const char *col = json_string_value(json_object_get(v, "column"));
	if (!col)
		col = rule_column;
	if (find(hidden, col) && (json_object_get(v, "value") || json_object_get(v, "message"))) {
		const char *value = json_string_value(json_object_get(v, "value"));
		if (value && *value) {
			seen->v = xrealloc(seen->v, (seen->n + 1) * sizeof *seen->v);
			seen->v[seen->n++] = xstrdup(value);
		}
		json_object_del(v, "value");
		json_object_set_new(v, "message", json_string(HIDDEN));
	}
	const char *key;
	json_t *child;
	json_object_foreach(v, key, child)
		scrub(child, hidden, col, seen);
}

/* In every string: lines naming a hidden column's value lose the value,
 * and any value seen in an example is replaced. */
static void scrub_text(json_t *v, const struct view_plan *hidden, const struct values *seen)
{
	if (json_is_array(v) || json_is_object(v)) {
		size_t i;
		json_t *e;
		const char *key;
		if (json_is_array(v))
			json_array_foreach(v, i, e)
				scrub_text(e, hidden, seen);
		else
			json_object_foreach(v, key, e)
				scrub_text(e, hidden, seen);
		return;
	}
	if (!json_is_string(v))
		return;
	const char *text = json_string_value(v);
	struct strbuf out = STRBUF_INIT;
	strbuf_puts(&out, "");
	bool changed = false;
	while (*text) {
		size_t len = strcspn(text, "\n");
		char *line = xstrndup(text, len);
		for (size_t k = 0; k < hidden->n; k++) {
			char needle[600];
			snprintf(needle, sizeof needle, "column %s value", hidden->columns[k].name);
			char *at = strstr(line, needle);
			if (at) {
				at[strlen(needle)] = '\0';
				char *tail = xstrdup(line);
				free(line);
				line = tail;
				changed = true;
			}
		}
		for (size_t k = 0; k < seen->n; k++) {
			char *at;
			while ((at = strstr(line, seen->v[k]))) {
				struct strbuf sb = STRBUF_INIT;
				strbuf_add(&sb, line, (size_t)(at - line));
				strbuf_puts(&sb, "***");
				strbuf_puts(&sb, at + strlen(seen->v[k]));
				free(line);
				line = strbuf_detach(&sb, NULL);
				changed = true;
			}
		}
		strbuf_puts(&out, line);
		free(line);
		text += len;
		if (*text == '\n') {
			strbuf_puts(&out, "\n");
			text++;
		}
	}
	if (changed)
		json_string_set(v, out.buf);
	strbuf_release(&out);
}

int view_sidecar_quality(const char *json, size_t len, const struct view_plan *hidden, char **out,
			 size_t *out_len, struct mesh_err *err)
{
	json_error_t jerr;
	json_t *root = json_loadb(json, len, 0, &jerr);
	if (!json_is_object(root)) {
		json_decref(root);
		return mesh_errf(err, -EINVAL, "quality.json: not a JSON object (line %d: %s)", jerr.line, jerr.text);
	}
	/* the rules of a column the view leaves out (Parquet) are not the
	 * view's: they go, so the report describes the file the reader gets */
	size_t i;
	json_t *file;
	json_array_foreach(json_object_get(root, "files"), i, file) {
		json_t *rules = json_object_get(file, "rules");
		for (size_t k = json_array_size(rules); k-- > 0;) {
			const struct view_column *c =
				find(hidden, json_string_value(json_object_get(json_array_get(rules, k), "column")));
			if (c && c->fn == VIEW_FN_OMIT)
				json_array_remove(rules, k);
		}
	}
	struct values seen = {0};
	scrub(root, hidden, NULL, &seen);
	scrub_text(root, hidden, &seen);
	for (i = 0; i < seen.n; i++)
		free(seen.v[i]);
	free(seen.v);
	json_object_set_new(root, "meshView", json_string(hidden->text));
	return finish(root, out, out_len);
}
