/*
 * yamltree.c - YAML to a positioned tree with safety limits (contract in
 * include/yamltree.h).  Built on libyaml's event parser so that every limit
 * is checked while reading, before any large structure exists.
 */
#include "yamltree.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "mesh_util.h"

void yamltree_free(struct ynode *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n; i++) {
		yamltree_free(n->items[i]);
		if (n->keys)
			yamltree_free(n->keys[i]);
	}
	free(n->items);
	free(n->keys);
	free(n->text);
	free(n);
}

static void append(struct ynode *parent, struct ynode *key, struct ynode *child)
{
	/* grow by doubling: n is a power of two when full */
	if ((parent->n & (parent->n - 1)) == 0) {
		size_t cap = parent->n ? parent->n * 2 : 4;
		parent->items = xrealloc(parent->items, cap * sizeof *parent->items);
		if (parent->kind == Y_MAPPING)
			parent->keys = xrealloc(parent->keys, cap * sizeof *parent->keys);
	}
	parent->items[parent->n] = child;
	if (parent->kind == Y_MAPPING)
		parent->keys[parent->n] = key;
	parent->n++;
}

struct frame {
	struct ynode *node;
	struct ynode *pending_key;    /* mapping: key waiting for its value */
};

int yamltree_parse(const char *text, size_t len, const char *path,
		   const struct ytree_limits *limits, struct ynode **root, struct mesh_err *err)
{
	*root = NULL;
	if (len > limits->max_bytes)
		return mesh_errf(err, -EFBIG, "%s: %zu bytes, more than the %zu allowed", path, len,
				 limits->max_bytes);
	yaml_parser_t parser;
	if (!yaml_parser_initialize(&parser))
		return mesh_errf(err, -ENOMEM, "%s: cannot start the YAML parser", path);
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);

	struct frame *stack = xcalloc(limits->max_depth + 1, sizeof *stack);
	size_t depth = 0, nodes = 0, documents = 0;
	struct ynode *top = NULL;
	int rc = 0;
	bool done = false;
	while (!done) {
		yaml_event_t ev;
		if (!yaml_parser_parse(&parser, &ev)) {
			size_t eline = parser.problem_mark.line, ecol = parser.problem_mark.column;
			if (parser.error == YAML_READER_ERROR) {
				/* encoding errors carry a byte offset, not a mark */
				eline = ecol = 0;
				for (size_t i = 0; i < parser.problem_offset && i < len; i++, ecol++)
					if (text[i] == '\n')
						eline++, ecol = (size_t)-1;
			}
			rc = mesh_errf(err, -EINVAL, "%s:%zu:%zu: YAML syntax error: %s%s%s", path,
				       eline + 1, ecol + 1,
				       parser.problem ? parser.problem : "invalid YAML",
				       parser.context ? " " : "", parser.context ? parser.context : "");
			break;
		}
		int line = (int)ev.start_mark.line + 1, col = (int)ev.start_mark.column + 1;
		struct ynode *node = NULL;
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (++documents > 1) {
				rc = mesh_errf(err, -EINVAL, "%s:%d:%d: more than one YAML document", path, line, col);
				done = true;
			}
			break;
		case YAML_ALIAS_EVENT:
			rc = mesh_errf(err, -EINVAL, "%s:%d:%d: YAML aliases (*%s) are not accepted here", path,
				       line, col, ev.data.alias.anchor);
			done = true;
			break;
		case YAML_SCALAR_EVENT:
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT: {
			const yaml_char_t *anchor = ev.type == YAML_SCALAR_EVENT ? ev.data.scalar.anchor
						  : ev.type == YAML_SEQUENCE_START_EVENT ? ev.data.sequence_start.anchor
						  : ev.data.mapping_start.anchor;
			if (anchor) {
				rc = mesh_errf(err, -EINVAL, "%s:%d:%d: YAML anchors (&%s) are not accepted here",
					       path, line, col, anchor);
				done = true;
				break;
			}
			if (++nodes > limits->max_nodes) {
				rc = mesh_errf(err, -EFBIG, "%s:%d:%d: more than %zu YAML nodes", path, line, col,
					       limits->max_nodes);
				done = true;
				break;
			}
			node = xcalloc(1, sizeof *node);
			node->line = line;
			node->col = col;
			if (ev.type == YAML_SCALAR_EVENT) {
				node->kind = Y_SCALAR;
				node->text = xstrndup((const char *)ev.data.scalar.value, ev.data.scalar.length);
				node->len = ev.data.scalar.length;
				node->quoted = ev.data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
			} else {
				node->kind = ev.type == YAML_MAPPING_START_EVENT ? Y_MAPPING : Y_SEQUENCE;
			}
			break;
		}
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			depth--;
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
		if (!node)
			continue;
		/* attach the new node to its parent */
		if (depth == 0) {
			top = node;
		} else {
			struct frame *f = &stack[depth - 1];
			if (f->node->kind == Y_SEQUENCE) {
				append(f->node, NULL, node);
			} else if (!f->pending_key) {
				if (node->kind != Y_SCALAR) {
					rc = mesh_errf(err, -EINVAL, "%s:%d:%d: a mapping key must be a plain value",
						       path, node->line, node->col);
					yamltree_free(node);
					break;
				}
				for (size_t i = 0; i < f->node->n; i++)
					if (!strcmp(f->node->keys[i]->text, node->text)) {
						rc = mesh_errf(err, -EINVAL, "%s:%d:%d: %s: duplicate key (first at line %d)",
							       path, node->line, node->col, node->text,
							       f->node->keys[i]->line);
						break;
					}
				if (rc) {
					yamltree_free(node);
					break;
				}
				f->pending_key = node;
				continue;
			} else {
				append(f->node, f->pending_key, node);
				f->pending_key = NULL;
			}
		}
		if (node->kind != Y_SCALAR) {
			if (depth >= limits->max_depth) {
				rc = mesh_errf(err, -EINVAL, "%s:%d:%d: nested more than %zu levels deep", path,
					       node->line, node->col, limits->max_depth);
				break;
			}
			stack[depth++] = (struct frame){node, NULL};
		}
	}
	/* a pending key that never got its value belongs to nobody */
	for (size_t i = 0; i < depth; i++)
		yamltree_free(stack[i].pending_key);
	free(stack);
	yaml_parser_delete(&parser);
	if (rc) {
		yamltree_free(top);
		return rc;
	}
	*root = top;
	return 0;
}

const struct ynode *ymap_get(const struct ynode *map, const char *key)
{
	if (!map || map->kind != Y_MAPPING)
		return NULL;
	for (size_t i = 0; i < map->n; i++)
		if (!strcmp(map->keys[i]->text, key))
			return map->items[i];
	return NULL;
}

const char *yscalar(const struct ynode *n)
{
	if (!n || n->kind != Y_SCALAR)
		return NULL;
	if (!n->quoted && (n->len == 0 || !strcmp(n->text, "~") || !strcasecmp(n->text, "null")))
		return NULL;
	return n->text;
}

int ybool(const struct ynode *n)
{
	if (!n || n->kind != Y_SCALAR || n->quoted)
		return -1;
	static const char *yes[] = {"true", "yes", "on"}, *no[] = {"false", "no", "off"};
	for (int i = 0; i < 3; i++) {
		if (!strcasecmp(n->text, yes[i]))
			return 1;
		if (!strcasecmp(n->text, no[i]))
			return 0;
	}
	return -1;
}

int ynumber(const struct ynode *n, double *out)
{
	if (!n || n->kind != Y_SCALAR || n->quoted || n->len == 0)
		return -EINVAL;
	char *end;
	double v = strtod(n->text, &end);
	if (*end)
		return -EINVAL;
	*out = v;
	return 0;
}
