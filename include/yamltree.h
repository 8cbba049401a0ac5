/*
 * yamltree.h - a small YAML document tree with positions, built from
 * libyaml's event API with the limits untrusted input needs: a size, depth
 * and node budget, no anchors or aliases (no "billion laughs"), no
 * duplicate mapping keys.  Used by the contract and policy readers.
 *
 * Scalars keep their text and whether they were quoted, so readers can
 * tell the string "true" from the boolean true.  Nodes are immutable after
 * yamltree_parse(); a tree may be read from several threads.
 */
#ifndef YAMLTREE_H
#define YAMLTREE_H

#include <stdbool.h>
#include <stddef.h>

#include "mesh_err.h"

enum ynode_kind { Y_SCALAR, Y_SEQUENCE, Y_MAPPING };

struct ynode {
	enum ynode_kind kind;
	int line, col;                 /* 1-based position of the node */
	/* Y_SCALAR */
	char *text;
	size_t len;
	bool quoted;                   /* written in quotes or as a block */
	/* Y_SEQUENCE: items; Y_MAPPING: keys[i] -> items[i] */
	struct ynode **items;
	struct ynode **keys;
	size_t n;
};

struct ytree_limits {
	size_t max_bytes, max_depth, max_nodes;
};

/* Parse one YAML document.  An empty document gives *root == NULL.
 * Errors name path:line:column. */
int yamltree_parse(const char *text, size_t len, const char *path,
		   const struct ytree_limits *limits, struct ynode **root, struct mesh_err *err);
void yamltree_free(struct ynode *n);

/* Mapping lookup (NULL if absent or `map` is not a mapping). */
const struct ynode *ymap_get(const struct ynode *map, const char *key);
/* A scalar's text, or NULL for non-scalars and YAML nulls (~, null, empty). */
const char *yscalar(const struct ynode *n);
/* YAML 1.1/1.2 booleans (true/false/yes/no/on/off, unquoted). -1 if not. */
int ybool(const struct ynode *n);
/* An unquoted number; 0 on success. */
int ynumber(const struct ynode *n, double *out);

#endif
