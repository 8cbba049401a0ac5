/*
 * card_reader.c - a product card rendered for one reader (contract in
 * include/card_reader.h): the markers card.c leaves in the columns table
 * and the reader's section, filled in from the read decision.
 *
 * Not here: writing the templates (card.c), deciding (policy.c), serving
 * (daemon.c).
 */
#include "card_reader.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh_util.h"
#include "view_build.h"

static const char hexdigits[] = "0123456789abcdef";

void card_mark_classification(struct strbuf *sb, const char *classification)
{
	char c = CARD_MARK_START;
	strbuf_add(sb, &c, 1);
	strbuf_puts(sb, "C");
	for (const unsigned char *s = (const unsigned char *)classification; s && *s; s++) {
		char two[2] = {hexdigits[*s >> 4], hexdigits[*s & 15]};
		strbuf_add(sb, two, 2);
	}
	c = CARD_MARK_END;
	strbuf_add(sb, &c, 1);
}

void card_mark_reader(struct strbuf *sb)
{
	const char mark[] = {CARD_MARK_START, 'R', CARD_MARK_END};
	strbuf_add(sb, mark, sizeof mark);
}

void card_reader_decide(const struct policy *p, const struct identity *who, const char *domain,
			const char *product, const struct cat_node *version, time_t now,
			struct policy_decision *out)
{
	if (!p) {
		memset(out, 0, sizeof *out);
		out->result = POLICY_DENY;
		snprintf(out->reason, sizeof out->reason, "no valid policy loaded: reads are denied");
		return;
	}
	size_t n = 0, cap = 0;
	const char **classes = NULL;
	for (uint32_t i = 0; version && i < version->n_children; i++) {
		const struct cat_node *f = version->children[i];
		if (f->kind != CAT_FILE || f->role != ROLE_DATA)
			continue;
		for (uint32_t k = 0; k < f->n_columns; k++) {
			bool seen = false;
			for (size_t j = 0; j < n && !seen; j++)
				seen = !strcmp(classes[j], f->columns[k].classification);
			if (seen)
				continue;
			if (n == cap)
				classes = xrealloc(classes, (cap = cap ? cap * 2 : 8) * sizeof *classes);
			classes[n++] = f->columns[k].classification;
		}
	}
	policy_decide(p, who, domain, product, version ? version->name : NULL, classes, n, now, out);
	free(classes);
}

static const struct policy_mask *mask_of(const struct policy_decision *dec, const char *classification)
{
	if (dec->result != POLICY_MASK)
		return NULL;
	for (size_t i = 0; i < dec->n_masked; i++)
		if (!strcmp(dec->masked[i].classification, classification))
			return &dec->masked[i];
	return NULL;
}

static void function_text(struct strbuf *sb, const struct policy_mask *m)
{
	strbuf_puts(sb, m->function ? m->function : "null");
	if (m->function && !strcmp(m->function, "truncate"))
		strbuf_printf(sb, "(%g)", m->precision);
}

/* Markdown-safe text of something that came from a policy or a manifest. */
static void plain(struct strbuf *sb, const char *s)
{
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '|')
			strbuf_puts(sb, "\\|");
		else if (c < 0x20 || c == 0x7f)
			strbuf_puts(sb, " ");
		else
			strbuf_add(sb, s, 1);
	}
}

enum file_access { FILE_CLEAR, FILE_MASKED, FILE_DENIED, FILE_UNMASKABLE };

static enum file_access file_access(const struct cat_node *f, const struct policy_decision *dec)
{
	if (dec->result == POLICY_DENY)
		return FILE_DENIED;
	bool masked = false;
	for (uint32_t k = 0; k < f->n_columns && !masked; k++)
		masked = mask_of(dec, f->columns[k].classification) != NULL;
	if (!masked)
		return FILE_CLEAR;
	enum view_format fmt;
	return view_format_for_name(f->name, &fmt) ? FILE_UNMASKABLE : FILE_MASKED;
}

static bool data_file(const struct cat_node *f)
{
	return f->kind == CAT_FILE && f->role == ROLE_DATA;
}

char *card_reader_section(const char *domain, const char *product, const struct cat_node *version,
			  const struct policy_decision *dec)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_puts(&sb, "## What you see\n\n");
	if (dec->result == POLICY_DENY) {
		strbuf_printf(&sb, "You may not read the data of `%s/%s`: ", domain, product);
		plain(&sb, dec->reason);
		strbuf_printf(&sb, ".\n\nTo request access, say what you need it for; the owners decide:\n\n"
			      "```sh\nmeshctl request %s/%s --reason \"what you need it for\"\n```\n\n",
			      domain, product);
		return strbuf_detach(&sb, NULL);
	}
	strbuf_puts(&sb, dec->result == POLICY_MASK ? "You may read this product, with masked columns: "
						    : "You may read this product in clear: ");
	plain(&sb, dec->reason);
	strbuf_puts(&sb, ".\n\n");
	if (!version)
		return strbuf_detach(&sb, NULL);
	strbuf_printf(&sb, "| File of %s | What you read |\n|---|---|\n", version->name);
	bool any = false;
	for (uint32_t i = 0; i < version->n_children; i++) {
		const struct cat_node *f = version->children[i];
		if (!data_file(f))
			continue;
		any = true;
		strbuf_puts(&sb, "| ");
		plain(&sb, f->name);
		switch (file_access(f, dec)) {
		case FILE_CLEAR:
			strbuf_puts(&sb, " | clear |\n");
			break;
		case FILE_DENIED:
			strbuf_puts(&sb, " | no access |\n");
			break;
		case FILE_UNMASKABLE:
			strbuf_puts(&sb, " | denied: you would be masked, and meshfs cannot mask this format |\n");
			break;
		case FILE_MASKED:
			strbuf_puts(&sb, " | a masked view: ");
			bool first = true;
			for (uint32_t k = 0; k < f->n_columns; k++) {
				const struct policy_mask *m = mask_of(dec, f->columns[k].classification);
				if (!m)
					continue;
				strbuf_puts(&sb, first ? "" : ", ");
				first = false;
				plain(&sb, f->columns[k].name);
				strbuf_puts(&sb, " ");
				function_text(&sb, m);
			}
			strbuf_puts(&sb, " |\n");
			break;
		}
	}
	if (!any)
		strbuf_puts(&sb, "| (no data files) | |\n");
	strbuf_printf(&sb, "\n`meshctl access %s/%s` gives the rules behind this.\n\n", domain, product);
	return strbuf_detach(&sb, NULL);
}

void *card_reader_json(const char *domain, const char *product, const struct cat_node *version,
		       const struct policy_decision *dec)
{
	json_t *files = json_array();
	for (uint32_t i = 0; version && i < version->n_children; i++) {
		const struct cat_node *f = version->children[i];
		if (!data_file(f))
			continue;
		enum file_access a = file_access(f, dec);
		json_t *masked = json_array();
		for (uint32_t k = 0; a == FILE_MASKED && k < f->n_columns; k++) {
			const struct policy_mask *m = mask_of(dec, f->columns[k].classification);
			if (!m)
				continue;
			json_t *jm = json_pack("{s:s, s:s, s:s}", "column", f->columns[k].name, "classification",
					       m->classification, "function", m->function ? m->function : "null");
			if (m->function && !strcmp(m->function, "truncate"))
				json_object_set_new(jm, "precision", json_real(m->precision));
			json_array_append_new(masked, jm);
		}
		json_array_append_new(files, json_pack("{s:s, s:s, s:o}", "file", f->name, "decision",
						       a == FILE_CLEAR ? "allow" : a == FILE_MASKED ? "mask" : "deny",
						       "masked", masked));
	}
	json_t *out = json_pack("{s:s, s:s, s:s?, s:o}", "decision", policy_result_name(dec->result), "reason",
				dec->reason, "version", version ? version->name : NULL, "files", files);
	if (dec->result == POLICY_DENY) {
		char cmd[2 * MESH_NAME_MAX + 64];
		snprintf(cmd, sizeof cmd, "meshctl request %s/%s --reason \"...\"", domain, product);
		json_object_set_new(out, "request", json_string(cmd));
	}
	return out;
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* What the reader gets for a classification cell's marker. */
static void classification_text(struct strbuf *sb, const char *classification, const struct policy_decision *dec)
{
	if (dec->result == POLICY_DENY) {
		strbuf_puts(sb, " (no access for you)");
		return;
	}
	const struct policy_mask *m = mask_of(dec, classification);
	if (!m) {
		strbuf_puts(sb, " (clear for you)");
		return;
	}
	strbuf_puts(sb, " (masked for you: ");
	function_text(sb, m);
	strbuf_puts(sb, ")");
}

char *card_render(const char *tmpl, size_t len, const char *domain, const char *product,
		  const struct cat_node *version, const struct policy_decision *dec, size_t *out_len)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_puts(&sb, "");
	bool placed = false;
	size_t i = 0;
	while (i < len) {
		const char *mark = memchr(tmpl + i, CARD_MARK_START, len - i);
		size_t upto = mark ? (size_t)(mark - tmpl) : len;
		strbuf_add(&sb, tmpl + i, upto - i);
		if (!mark)
			break;
		const char *end = memchr(mark, CARD_MARK_END, len - upto);
		if (!end) {               /* a broken marker: dropped, never shown */
			i = len;
			break;
		}
		i = (size_t)(end - tmpl) + 1;
		if (mark[1] == 'R' && end == mark + 2 && !placed) {
			char *section = card_reader_section(domain, product, version, dec);
			strbuf_puts(&sb, section);
			free(section);
			placed = true;
		} else if (mark[1] == 'C' && (end - mark - 2) % 2 == 0) {
			struct strbuf cls = STRBUF_INIT;
			bool ok = true;
			for (const char *h = mark + 2; h < end && ok; h += 2) {
				int hi = hexval(h[0]), lo = hexval(h[1]);
				ok = hi >= 0 && lo >= 0 && (hi || lo);
				if (ok) {
					char c = (char)(hi << 4 | lo);
					strbuf_add(&cls, &c, 1);
				}
			}
			if (ok && cls.len)
				classification_text(&sb, cls.buf, dec);
			strbuf_release(&cls);
		}
	}
	if (!placed) {
		char *section = card_reader_section(domain, product, version, dec);
		strbuf_puts(&sb, sb.len && sb.buf[sb.len - 1] != '\n' ? "\n\n" : "\n");
		strbuf_puts(&sb, section);
		free(section);
	}
	return strbuf_detach(&sb, out_len);
}

char *card_reader_key(const struct cat_node *version, const struct policy_decision *dec)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_printf(&sb, "%s\n%s\n%s\n", version ? version->name : "-", policy_result_name(dec->result),
		      dec->reason);
	for (size_t i = 0; dec->result == POLICY_MASK && i < dec->n_masked; i++)
		strbuf_printf(&sb, "%s=%s:%g\n", dec->masked[i].classification,
			      dec->masked[i].function ? dec->masked[i].function : "null", dec->masked[i].precision);
	for (uint32_t i = 0; version && i < version->n_children; i++)
		if (data_file(version->children[i]))
			strbuf_printf(&sb, "f %s %d\n", version->children[i]->name,
				      (int)file_access(version->children[i], dec));
	return strbuf_detach(&sb, NULL);
}
