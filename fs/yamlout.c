/*
 * yamlout.c - YAML output through libyaml's emitter (contract in
 * include/yamlout.h).  libyaml decides the quoting style from the text
 * (indicators, line breaks, unicode); what it cannot know is which plain
 * words a reader resolves to nulls, booleans or numbers, so that part is
 * decided here, conservatively: a string is left plain only when it starts
 * with a letter, '_' or '/' and is not a YAML 1.1 boolean or null word.
 */
#include "yamlout.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "mesh_util.h"

struct yamlout {
	yaml_emitter_t emitter;
	struct strbuf comments, body;
	bool started;                  /* stream and document start emitted */
	int rc;                        /* first failure, 0 if none */
	char problem[256];
};

static int write_handler(void *data, unsigned char *buffer, size_t size)
{
	strbuf_add(data, buffer, size);
	return 1;
}

static void fail(struct yamlout *y, int rc, const char *what)
{
	if (y->rc)
		return;
	y->rc = rc;
	snprintf(y->problem, sizeof y->problem, "%s%s%s", what, y->emitter.problem ? ": " : "",
		 y->emitter.problem ? y->emitter.problem : "");
}

/* Emit an initialized event, or record why not; the emitter owns it after. */
static void emit(struct yamlout *y, yaml_event_t *ev, int initialized, const char *what)
{
	if (y->rc) {
		if (initialized)
			yaml_event_delete(ev);
		return;
	}
	if (!initialized) {
		fail(y, -EINVAL, what);
		return;
	}
	if (!yaml_emitter_emit(&y->emitter, ev))
		fail(y, -EINVAL, what);
}

static void start(struct yamlout *y)
{
	if (y->started)
		return;
	y->started = true;
	yaml_event_t ev;
	emit(y, &ev, yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING), "stream start");
	emit(y, &ev, yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1), "document start");
}

struct yamlout *yamlout_new(void)
{
	struct yamlout *y = xcalloc(1, sizeof *y);
	if (!yaml_emitter_initialize(&y->emitter)) {
		free(y);
		return NULL;
	}
	yaml_emitter_set_output(&y->emitter, write_handler, &y->body);
	yaml_emitter_set_unicode(&y->emitter, 1);
	yaml_emitter_set_indent(&y->emitter, 2);
	yaml_emitter_set_width(&y->emitter, 100);
	yaml_emitter_set_break(&y->emitter, YAML_LN_BREAK);
	return y;
}

void yamlout_free(struct yamlout *y)
{
	if (!y)
		return;
	yaml_emitter_delete(&y->emitter);
	strbuf_release(&y->comments);
	strbuf_release(&y->body);
	free(y);
}

void yamlout_comment(struct yamlout *y, const char *text)
{
	if (y->rc)
		return;
	if (y->started) {
		fail(y, -EINVAL, "a comment after the first node");
		return;
	}
	/* control characters and invalid UTF-8 come out as \n, \xNN: a
	 * comment can never end early and start YAML of its own */
	char *safe = mesh_escape_text(text);
	strbuf_puts(&y->comments, "# ");
	strbuf_puts(&y->comments, safe);
	free(safe);
	strbuf_puts(&y->comments, "\n");
}

void yamlout_map_start(struct yamlout *y)
{
	start(y);
	yaml_event_t ev;
	emit(y, &ev, yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE),
	     "mapping start");
}

void yamlout_map_end(struct yamlout *y)
{
	yaml_event_t ev;
	emit(y, &ev, yaml_mapping_end_event_initialize(&ev), "mapping end");
}

void yamlout_seq_start(struct yamlout *y, bool flow)
{
	start(y);
	yaml_event_t ev;
	emit(y, &ev, yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
		     flow ? YAML_FLOW_SEQUENCE_STYLE : YAML_BLOCK_SEQUENCE_STYLE), "sequence start");
}

void yamlout_seq_end(struct yamlout *y)
{
	yaml_event_t ev;
	emit(y, &ev, yaml_sequence_end_event_initialize(&ev), "sequence end");
}

bool yamlout_plain_is_string(const char *s)
{
	unsigned char c = (unsigned char)s[0];
	if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '/' || c >= 0x80))
		return false;           /* digits, signs, '.', '~', indicators: let quotes decide */
	static const char *words[] = {"null", "true", "false", "yes", "no", "on", "off", "y", "n"};
	for (size_t i = 0; i < sizeof words / sizeof *words; i++)
		if (!strcasecmp(s, words[i]))
			return false;
	return true;
}

static void scalar(struct yamlout *y, const char *s, int plain_implicit, yaml_scalar_style_t style,
		   const char *what)
{
	start(y);
	yaml_event_t ev;
	/* no tag: quoted_implicit says a quoted scalar is a string without one */
	int ok = yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)strlen(s),
					      plain_implicit, 1, style);
	if (!ok && !y->rc) {
		y->rc = -EINVAL;
		snprintf(y->problem, sizeof y->problem, "%s is not valid UTF-8", what);
		return;
	}
	emit(y, &ev, ok, what);
}

void yamlout_str(struct yamlout *y, const char *s)
{
	if (!s)
		scalar(y, "null", 1, YAML_PLAIN_SCALAR_STYLE, "a null");
	else {
		/* line breaks and tabs read best as \n, \t in double quotes */
		bool controls = false;
		for (const char *p = s; *p; p++)
			controls |= (unsigned char)*p < 0x20;
		scalar(y, s, yamlout_plain_is_string(s),
		       controls ? YAML_DOUBLE_QUOTED_SCALAR_STYLE : YAML_ANY_SCALAR_STYLE, "a string");
	}
}

void yamlout_str_quoted(struct yamlout *y, const char *s)
{
	scalar(y, s, 0, YAML_DOUBLE_QUOTED_SCALAR_STYLE, "a string");
}

void yamlout_bool(struct yamlout *y, bool v)
{
	scalar(y, v ? "true" : "false", 1, YAML_PLAIN_SCALAR_STYLE, "a boolean");
}

void yamlout_int(struct yamlout *y, long long v)
{
	char buf[32];
	snprintf(buf, sizeof buf, "%lld", v);
	scalar(y, buf, 1, YAML_PLAIN_SCALAR_STYLE, "a number");
}

void yamlout_kv_str(struct yamlout *y, const char *key, const char *value)
{
	yamlout_str(y, key);
	yamlout_str(y, value);
}

void yamlout_kv_bool(struct yamlout *y, const char *key, bool value)
{
	yamlout_str(y, key);
	yamlout_bool(y, value);
}

int yamlout_finish(struct yamlout *y, char **text, struct mesh_err *err)
{
	*text = NULL;
	start(y);
	yaml_event_t ev;
	emit(y, &ev, yaml_document_end_event_initialize(&ev, 1), "document end");
	emit(y, &ev, yaml_stream_end_event_initialize(&ev), "stream end");
	if (!y->rc && !yaml_emitter_flush(&y->emitter))
		fail(y, -EIO, "flush");
	if (y->rc)
		return mesh_errf(err, y->rc, "YAML output: %s", y->problem);
	strbuf_add(&y->comments, y->body.buf ? y->body.buf : "", y->body.len);
	*text = strbuf_detach(&y->comments, NULL);
	return 0;
}
