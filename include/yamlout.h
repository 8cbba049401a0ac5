/*
 * yamlout.h - writing YAML through libyaml's emitter, so that any text
 * (names with '#', ': ', a leading '-', words YAML reads as booleans or
 * nulls, unicode, newlines) reads back as the same string.  Strings are
 * written plain only when plain text would resolve to a string under YAML
 * 1.1 and 1.2 (PyYAML, libyaml readers, yamltree.h), else quoted.
 *
 * Not here: comments (libyaml's emitter writes none; callers put a comment
 * block before the document with yamlout_comment), anchors, tags.
 *
 * Usage: yamlout_new, then a balanced sequence of _map_start/_map_end,
 * _seq_start/_seq_end and scalars (in a mapping: key, value, key, value),
 * then yamlout_finish.  The first failure (invalid UTF-8, an unbalanced
 * call) is remembered and returned by yamlout_finish; later calls are
 * no-ops.  Not thread-safe per object; objects are independent.
 */
#ifndef YAMLOUT_H
#define YAMLOUT_H

#include <stdbool.h>

#include "mesh_err.h"

struct yamlout;

struct yamlout *yamlout_new(void);
/* Free an unfinished or finished writer; NULL is a no-op. */
void yamlout_free(struct yamlout *y);

/* A "# ..." line before the document (only before the first node).  Line
 * breaks, other control characters and invalid UTF-8 in `text` are shown
 * escaped (mesh_escape_text), so a
 * comment can never end early and start YAML of its own. */
void yamlout_comment(struct yamlout *y, const char *text);

void yamlout_map_start(struct yamlout *y);
void yamlout_map_end(struct yamlout *y);
/* flow: written as [a, b] on one line */
void yamlout_seq_start(struct yamlout *y, bool flow);
void yamlout_seq_end(struct yamlout *y);

/* A string: plain when that reads back as the same string, else quoted.
 * NULL writes a YAML null. */
void yamlout_str(struct yamlout *y, const char *s);
/* A string always in double quotes (placeholders a person should notice). */
void yamlout_str_quoted(struct yamlout *y, const char *s);
void yamlout_bool(struct yamlout *y, bool v);
void yamlout_int(struct yamlout *y, long long v);
/* Shorthands for a mapping entry: key then value. */
void yamlout_kv_str(struct yamlout *y, const char *key, const char *value);
void yamlout_kv_bool(struct yamlout *y, const char *key, bool value);

/* End the document.  On success *text is the YAML (free() it) and 0 is
 * returned; else -EINVAL/-ENOMEM with `err` naming the first failure. */
int yamlout_finish(struct yamlout *y, char **text, struct mesh_err *err);

/* Whether `s` written plain would read back as the string `s` (not a
 * null, boolean, number or timestamp).  Exposed for tests. */
bool yamlout_plain_is_string(const char *s);

#endif
