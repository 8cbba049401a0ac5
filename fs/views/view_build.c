/*
 * view_build.c - the streaming view transform (contract in
 * include/view_build.h): a CSV state machine with one function per state,
 * a recursive-descent JSON reader that copies every byte it does not mask.
 *
 * Not here: where views are kept (view_cache.c), which columns a reader
 * may see (policy.c).
 */
#include "view_build.h"
#include "view_hash.h"
#include "view_parquet.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/mman.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK (1u << 20)

/* ---- output: to a file descriptor or to memory, hashed on the way ---- */

struct out {
	int fd;                     /* -1: to `mem` */
	struct strbuf *mem;
	char *buf;
	size_t used;
	uint64_t total;
	struct mesh_sha256 *sha;
	int error;                  /* first write error (negative errno) */
};

static void out_flush(struct out *o)
{
	if (!o->used)
		return;
	mesh_sha256_update(o->sha, o->buf, o->used);
	if (o->fd < 0)
		strbuf_add(o->mem, o->buf, o->used);
	else if (!o->error && mesh_write_all(o->fd, o->buf, o->used) < 0)
		o->error = -(errno ? errno : EIO);
	o->total += o->used;
	o->used = 0;
}

static void out_add(struct out *o, const char *data, size_t len)
{
	while (len) {
		if (o->used == CHUNK)
			out_flush(o);
		size_t n = CHUNK - o->used < len ? CHUNK - o->used : len;
		memcpy(o->buf + o->used, data, n);
		o->used += n;
		data += n;
		len -= n;
	}
}

static void out_byte(struct out *o, char c)
{
	if (o->used == CHUNK)
		out_flush(o);
	o->buf[o->used++] = c;
}

/* ---- CSV ---- */

enum csv_state { CSV_START, CSV_UNQUOTED, CSV_QUOTED, CSV_QUOTE_SEEN, CSV_CR };

struct csv {
	const struct view_plan *plan;
	const unsigned char *secret;
	struct out *out;
	enum csv_state state;
	struct strbuf field;        /* raw bytes of the current field */
	bool quoted;
	bool direct;                /* an unmasked field: bytes go straight to the output */
	size_t col;
	uint64_t row, line, field_line;   /* field_line: where a quoted field began */
	char **names;               /* header */
	size_t n_names;
	int *map;                   /* header column -> plan column, or -1 */
	struct strbuf value, result;
	struct mesh_err *err;
};

/* The content of a raw field: quotes removed, "" as ". */
static void csv_unquote(const struct strbuf *raw, bool quoted, struct strbuf *out)
{
	out->len = 0;
	strbuf_add(out, "", 0);
	if (!quoted) {
		if (raw->len)
			strbuf_add(out, raw->buf, raw->len);
		return;
	}
	for (size_t i = 1; i + 1 < raw->len; i++) {
		strbuf_add(out, raw->buf + i, 1);
		if (raw->buf[i] == '"')
			i++;
	}
}

static void csv_write_value(struct csv *c, enum view_value kind)
{
	const char *s = c->result.buf;
	size_t len = c->result.len;
	if (kind == VIEW_MISSING)
		return;
	if (kind == VIEW_STRING && len && strpbrk(s, ",\"\r\n")) {
		out_byte(c->out, '"');
		for (size_t i = 0; i < len; i++) {
			if (s[i] == '"')
				out_byte(c->out, '"');
			out_byte(c->out, s[i]);
		}
		out_byte(c->out, '"');
	} else {
		out_add(c->out, s, len);
	}
}

static int csv_end_field(struct csv *c)
{
	if (c->row == 0) {
		csv_unquote(&c->field, c->quoted, &c->value);
		const char *name = c->value.buf;
		if (c->n_names == 0 && !strncmp(name, "\xEF\xBB\xBF", 3))
			name += 3;
		c->names = xrealloc(c->names, (c->n_names + 1) * sizeof *c->names);
		c->names[c->n_names++] = xstrdup(name);
		out_add(c->out, c->field.buf, c->field.len);
	} else if (c->direct) {
		/* already copied */
	} else {
		if (c->col >= c->n_names)
			return mesh_errf(c->err, -EINVAL, "line %llu: more fields than the header's %zu",
					 (unsigned long long)c->line, c->n_names);
		int k = c->map[c->col];
		if (k < 0) {
			out_add(c->out, c->field.buf, c->field.len);
		} else {
			csv_unquote(&c->field, c->quoted, &c->value);
			if (c->value.len) {   /* a missing value stays missing */
				const struct view_column *vc = &c->plan->columns[k];
				c->result.len = 0;
				strbuf_add(&c->result, "", 0);
				csv_write_value(c, view_fn_apply(vc->fn, vc->precision, c->secret, c->value.buf,
								 c->value.len, &c->result));
			}
		}
	}
	c->col++;
	c->field.len = 0;
	c->quoted = false;
	c->direct = c->row > 0 && c->col < c->n_names && c->map[c->col] < 0;
	return 0;
}

static int csv_end_record(struct csv *c, const char *eol)
{
	if (c->row == 0) {
		c->map = xmalloc((c->n_names ? c->n_names : 1) * sizeof *c->map);
		for (size_t i = 0; i < c->n_names; i++) {
			c->map[i] = -1;
			for (size_t k = 0; k < c->plan->n; k++)
				if (!strcmp(c->names[i], c->plan->columns[k].name))
					c->map[i] = (int)k;
		}
		for (size_t k = 0; k < c->plan->n; k++) {
			bool found = false;
			for (size_t i = 0; i < c->n_names && !found; i++)
				found = c->map[i] == (int)k;
			if (!found)
				return mesh_errf(c->err, -ENOENT, "line 1: the header has no column \"%s\" to mask",
						 c->plan->columns[k].name);
		}
	}
	out_add(c->out, eol, strlen(eol));
	c->row++;
	c->line++;
	c->col = 0;
	c->direct = c->n_names > 0 && c->map[0] < 0;
	c->state = CSV_START;
	return 0;
}

static int csv_field_add(struct csv *c, char ch)
{
	if (c->direct) {
		out_byte(c->out, ch);
		return 0;
	}
	if (c->field.len >= VIEW_LINE_MAX)
		return mesh_errf(c->err, -EINVAL, "line %llu: a field longer than %u bytes",
				 (unsigned long long)c->line, VIEW_LINE_MAX);
	strbuf_add(&c->field, &ch, 1);
	return 0;
}

/* A delimiter or line end outside quotes; 1 if ch was not one. */
static int csv_delimiter(struct csv *c, char ch)
{
	int rc;
	switch (ch) {
	case ',':
		if ((rc = csv_end_field(c)))
			return rc;
		out_byte(c->out, ',');
		c->state = CSV_START;
		return 0;
	case '\n':
		if ((rc = csv_end_field(c)))
			return rc;
		return csv_end_record(c, "\n");
	case '\r':
		c->state = CSV_CR;
		return 0;
	default:
		return 1;
	}
}

static int csv_start(struct csv *c, char ch)
{
	if (ch == '"') {
		c->quoted = true;
		c->field_line = c->line;
		c->state = CSV_QUOTED;
		return csv_field_add(c, ch);
	}
	int rc = csv_delimiter(c, ch);
	if (rc <= 0)
		return rc;
	c->state = CSV_UNQUOTED;
	return csv_field_add(c, ch);
}

static int csv_unquoted(struct csv *c, char ch)
{
	if (ch == '"')
		return mesh_errf(c->err, -EINVAL, "line %llu, field %zu: a quote inside an unquoted field",
				 (unsigned long long)c->line, c->col + 1);
	int rc = csv_delimiter(c, ch);
	return rc <= 0 ? rc : csv_field_add(c, ch);
}

static int csv_quoted(struct csv *c, char ch)
{
	if (ch == '"')
		c->state = CSV_QUOTE_SEEN;
	else if (ch == '\n')
		c->line++;
	return csv_field_add(c, ch);
}

static int csv_quote_seen(struct csv *c, char ch)
{
	if (ch == '"') {   /* "" inside quotes */
		c->state = CSV_QUOTED;
		return csv_field_add(c, ch);
	}
	int rc = csv_delimiter(c, ch);
	if (rc > 0)
		return mesh_errf(c->err, -EINVAL, "line %llu, field %zu: text after a closing quote",
				 (unsigned long long)c->line, c->col + 1);
	return rc;
}

static int csv_cr(struct csv *c, char ch)
{
	if (ch != '\n')
		return mesh_errf(c->err, -EINVAL, "line %llu: a CR not followed by LF", (unsigned long long)c->line);
	int rc = csv_end_field(c);
	return rc ? rc : csv_end_record(c, "\r\n");
}

/* The next byte `ch` at or after p (before end), cached in *at: lines
 * without quotes or CRs are found without scanning each line twice. */
static const char *next_of(const char *p, const char *end, char ch, const char **at)
{
	if (*at == NULL || (*at != end && *at < p)) {
		const char *q = memchr(p, ch, (size_t)(end - p));
		*at = q ? q : end;
	}
	return *at;
}

/* The fast path of a whole record: at the start of a data row, a line
 * that ends inside this buffer and holds no quote and no CR is split at
 * its commas with memchr, and every run of unmasked fields (with their
 * commas) is copied in one piece.  What it does is what the state machine
 * would do with the same bytes (errors included); 0 when the line is not
 * such a line (the state machine takes it), else the bytes consumed, or a
 * negative errno. */
static long csv_fast_line(struct csv *c, const char *p, const char *end, const char **quote_at,
			  const char **cr_at)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	if (!nl || next_of(p, end, '"', quote_at) < nl || next_of(p, end, '\r', cr_at) < nl)
		return 0;
	const char *span = p, *f = p;
	for (size_t col = 0;; col++) {
		const char *comma = memchr(f, ',', (size_t)(nl - f));
		const char *fend = comma ? comma : nl;
		if (col >= c->n_names)
			return mesh_errf(c->err, -EINVAL, "line %llu: more fields than the header's %zu",
					 (unsigned long long)c->line, c->n_names);
		int k = c->map[col];
		if (k >= 0) {
			out_add(c->out, span, (size_t)(f - span));
			const struct view_column *vc = &c->plan->columns[k];
			if (fend > f && vc->fn != VIEW_FN_NULL) {   /* a missing value stays missing */
				c->value.len = 0;
				strbuf_add(&c->value, f, (size_t)(fend - f));
				c->result.len = 0;
				strbuf_add(&c->result, "", 0);
				csv_write_value(c, view_fn_apply(vc->fn, vc->precision, c->secret, c->value.buf,
								 c->value.len, &c->result));
			}
			span = fend;
		}
		if (!comma)
			break;
		f = comma + 1;
	}
	out_add(c->out, span, (size_t)(nl + 1 - span));
	c->row++;
	c->line++;
	c->direct = c->n_names > 0 && c->map[0] < 0;
	return (long)(nl + 1 - p);
}

static bool csv_fast_path = true;

void view_build_csv_fast_path(bool on)
{
	csv_fast_path = on;
}

static int csv_feed(struct csv *c, const char *data, size_t len)
{
	static int (*const states[])(struct csv *, char) = {
		[CSV_START] = csv_start, [CSV_UNQUOTED] = csv_unquoted, [CSV_QUOTED] = csv_quoted,
		[CSV_QUOTE_SEEN] = csv_quote_seen, [CSV_CR] = csv_cr,
	};
	const char *quote_at = NULL, *cr_at = NULL, *end = data + len;
	for (size_t i = 0; i < len; i++) {
		if (csv_fast_path && c->state == CSV_START && c->col == 0 && c->row > 0 && c->field.len == 0) {
			long n;
			while (i < len && (n = csv_fast_line(c, data + i, end, &quote_at, &cr_at)) > 0)
				i += (size_t)n;
			if (n < 0)
				return (int)n;
			if (i == len)
				break;
		}
		/* fast path: plain bytes of a field */
		if (c->state == CSV_UNQUOTED || c->state == CSV_QUOTED) {
			size_t j = i;
			if (c->state == CSV_UNQUOTED)
				while (j < len && data[j] != ',' && data[j] != '\n' && data[j] != '\r' && data[j] != '"')
					j++;
			else
				while (j < len && data[j] != '"' && data[j] != '\n')
					j++;
			if (j > i) {
				if (c->direct)
					out_add(c->out, data + i, j - i);
				else if (c->field.len + (j - i) > VIEW_LINE_MAX)
					return mesh_errf(c->err, -EINVAL, "line %llu: a field longer than %u bytes",
							 (unsigned long long)c->line, VIEW_LINE_MAX);
				else
					strbuf_add(&c->field, data + i, j - i);
				i = j;
				if (i == len)
					break;
			}
		}
		int rc = states[c->state](c, data[i]);
		if (rc)
			return rc;
	}
	return 0;
}

static int csv_finish(struct csv *c)
{
	switch (c->state) {
	case CSV_QUOTED:
		return mesh_errf(c->err, -EINVAL, "line %llu: a quoted field is never closed",
				 (unsigned long long)c->field_line);
	case CSV_CR:
		return mesh_errf(c->err, -EINVAL, "line %llu: a CR not followed by LF", (unsigned long long)c->line);
	case CSV_START:
		if (c->col == 0)
			break;
		/* a last field after a comma */
		__attribute__((fallthrough));
	default: {
		int rc = csv_end_field(c);
		if (rc)
			return rc;
	}
	}
	if (c->row == 0 && (c->col > 0 || c->n_names > 0))
		return csv_end_record(c, "");
	if (c->row == 0 && c->plan->n)
		return mesh_errf(c->err, -ENOENT, "the file has no header row");
	return 0;
}

static void csv_free(struct csv *c)
{
	for (size_t i = 0; i < c->n_names; i++)
		free(c->names[i]);
	free(c->names);
	free(c->map);
	strbuf_release(&c->field);
	strbuf_release(&c->value);
	strbuf_release(&c->result);
}

/* ---- JSON Lines ---- */

struct json {
	const struct view_plan *plan;
	const unsigned char *secret;
	struct out *out;
	struct strbuf line;           /* a line that spans chunks */
	uint64_t line_no;
	/* per line */
	const char *s;
	size_t pos, len, copied;
	struct strbuf keys[VIEW_JSON_DEPTH_MAX + 1];   /* decoded key at each object depth */
	struct strbuf value, result;
	char **comps;                 /* plan column i's path components, flat */
	size_t *n_comps, *first_comp;
	struct mesh_err *err;
};

static int json_fail(struct json *j, const char *what)
{
	return mesh_errf(j->err, -EINVAL, "line %llu, byte %zu: %s", (unsigned long long)j->line_no, j->pos + 1, what);
}

static void json_ws(struct json *j)
{
	while (j->pos < j->len && (j->s[j->pos] == ' ' || j->s[j->pos] == '\t' || j->s[j->pos] == '\r' ||
				   j->s[j->pos] == '\n'))
		j->pos++;
}

static void utf8_put(struct strbuf *sb, unsigned cp)
{
	char b[4];
	size_t n;
	if (cp < 0x80) {
		b[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xC0 | cp >> 6);
		b[1] = (char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (char)(0xE0 | cp >> 12);
		b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		b[2] = (char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		b[0] = (char)(0xF0 | cp >> 18);
		b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
		b[3] = (char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	strbuf_add(sb, b, n);
}

static int hex4(const char *s, unsigned *out)
{
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		char c = s[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

/* A string at pos (the opening quote); decoded into `dec` when not NULL. */
static int json_string(struct json *j, struct strbuf *dec)
{
	if (dec) {
		dec->len = 0;
		strbuf_add(dec, "", 0);
	}
	j->pos++;
	for (;;) {
		size_t run = j->pos;
		while (run < j->len && j->s[run] != '"' && j->s[run] != '\\' && (unsigned char)j->s[run] >= 0x20)
			run++;
		if (dec)
			strbuf_add(dec, j->s + j->pos, run - j->pos);
		j->pos = run;
		if (j->pos >= j->len)
			return json_fail(j, "a string is never closed");
		char c = j->s[j->pos];
		if (c == '"') {
			j->pos++;
			return 0;
		}
		if (c != '\\')
			return json_fail(j, "a control character inside a string");
		if (j->pos + 1 >= j->len)
			return json_fail(j, "a string is never closed");
		char e = j->s[j->pos + 1];
		const char *plain = strchr("\"\\/bfnrt", e);
		if (plain && e) {
			static const char map[] = "\"\\/\b\f\n\r\t";
			if (dec)
				strbuf_add(dec, &map[plain - "\"\\/bfnrt"], 1);
			j->pos += 2;
			continue;
		}
		unsigned cp;
		if (e != 'u' || j->pos + 6 > j->len || hex4(j->s + j->pos + 2, &cp))
			return json_fail(j, "a bad escape in a string");
		j->pos += 6;
		if (cp >= 0xD800 && cp < 0xDC00 && j->pos + 6 <= j->len && j->s[j->pos] == '\\' &&
		    j->s[j->pos + 1] == 'u') {
			unsigned lo;
			if (!hex4(j->s + j->pos + 2, &lo) && lo >= 0xDC00 && lo < 0xE000) {
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
				j->pos += 6;
			}
		}
		if (cp >= 0xD800 && cp < 0xE000)
			cp = 0xFFFD;
		if (dec)
			utf8_put(dec, cp);
	}
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int json_number(struct json *j)
{
	size_t p = j->pos;
	if (p < j->len && j->s[p] == '-')
		p++;
	if (p < j->len && j->s[p] == '0')
		p++;
	else if (p < j->len && is_digit(j->s[p]))
		while (p < j->len && is_digit(j->s[p]))
			p++;
	else
		return json_fail(j, "not a JSON value");
	if (p < j->len && j->s[p] == '.') {
		p++;
		if (p >= j->len || !is_digit(j->s[p]))
			return json_fail(j, "a number without digits after '.'");
		while (p < j->len && is_digit(j->s[p]))
			p++;
	}
	if (p < j->len && (j->s[p] == 'e' || j->s[p] == 'E')) {
		p++;
		if (p < j->len && (j->s[p] == '+' || j->s[p] == '-'))
			p++;
		if (p >= j->len || !is_digit(j->s[p]))
			return json_fail(j, "a number without exponent digits");
		while (p < j->len && is_digit(j->s[p]))
			p++;
	}
	j->pos = p;
	return 0;
}

/* Put `text` of `kind` in place of [start, j->pos) of the line. */
static void json_replace(struct json *j, size_t start, enum view_value kind, const char *text, size_t len)
{
	out_add(j->out, j->s + j->copied, start - j->copied);
	if (kind == VIEW_MISSING) {
		out_add(j->out, "null", 4);
	} else if (kind == VIEW_NUMBER) {
		out_add(j->out, text, len);
	} else {
		out_byte(j->out, '"');
		for (size_t i = 0; i < len; i++) {
			unsigned char c = (unsigned char)text[i];
			if (c == '"' || c == '\\') {
				out_byte(j->out, '\\');
				out_byte(j->out, (char)c);
			} else if (c < 0x20) {
				char esc[8];
				static const char hex[] = "0123456789abcdef";
				memcpy(esc, "\\u00", 4);
				esc[4] = hex[c >> 4];
				esc[5] = hex[c & 15];
				out_add(j->out, esc, 6);
			} else {
				out_byte(j->out, (char)c);
			}
		}
		out_byte(j->out, '"');
	}
	j->copied = j->pos;
}

static void json_mask_scalar(struct json *j, const struct view_column *col, size_t start, const char *v, size_t len)
{
	j->result.len = 0;
	strbuf_add(&j->result, "", 0);
	enum view_value kind = view_fn_apply(col->fn, col->precision, j->secret, v, len, &j->result);
	json_replace(j, start, kind, j->result.buf, j->result.len);
}

/* The plan column for the key path keys[1..depth], or NULL. */
static const struct view_column *json_match(struct json *j, size_t depth)
{
	for (size_t k = 0; k < j->plan->n; k++) {
		const struct view_column *c = &j->plan->columns[k];
		if (depth == 1 && !strcmp(c->name, j->keys[1].buf))
			return c;
		if (j->n_comps[k] != depth || strcmp(j->comps[j->first_comp[k] + depth - 1], j->keys[depth].buf))
			continue;
		size_t i = 1;
		while (i < depth && !strcmp(j->comps[j->first_comp[k] + i - 1], j->keys[i].buf))
			i++;
		if (i == depth)
			return c;
	}
	return NULL;
}

static int json_value(struct json *j, size_t depth, size_t nesting, const struct view_column *col, bool quiet);

static int json_object(struct json *j, size_t depth, size_t nesting, const struct view_column *col, bool quiet)
{
	size_t start = j->pos;
	j->pos++;
	bool inner_quiet = quiet || col;
	json_ws(j);
	if (j->pos < j->len && j->s[j->pos] == '}') {
		j->pos++;
	} else {
		for (;;) {
			json_ws(j);
			if (j->pos >= j->len || j->s[j->pos] != '"')
				return json_fail(j, "expected a property name");
			bool track = !inner_quiet && depth + 1 <= VIEW_JSON_DEPTH_MAX;
			int rc = json_string(j, track ? &j->keys[depth + 1] : NULL);
			if (rc)
				return rc;
			json_ws(j);
			if (j->pos >= j->len || j->s[j->pos] != ':')
				return json_fail(j, "expected ':'");
			j->pos++;
			const struct view_column *child = track ? json_match(j, depth + 1) : NULL;
			if ((rc = json_value(j, depth + 1, nesting + 1, child, inner_quiet)))
				return rc;
			json_ws(j);
			if (j->pos < j->len && j->s[j->pos] == ',') {
				j->pos++;
				continue;
			}
			if (j->pos < j->len && j->s[j->pos] == '}') {
				j->pos++;
				break;
			}
			return json_fail(j, "expected ',' or '}'");
		}
	}
	if (col && !quiet) {
		if (col->fn == VIEW_FN_REDACT)
			json_replace(j, start, VIEW_STRING, "***", 3);
		else
			json_replace(j, start, VIEW_MISSING, NULL, 0);
	}
	return 0;
}

static int json_array(struct json *j, size_t depth, size_t nesting, const struct view_column *col, bool quiet)
{
	j->pos++;
	json_ws(j);
	if (j->pos < j->len && j->s[j->pos] == ']') {
		j->pos++;
		return 0;
	}
	for (;;) {
		int rc = json_value(j, depth, nesting + 1, col, quiet);
		if (rc)
			return rc;
		json_ws(j);
		if (j->pos < j->len && j->s[j->pos] == ',') {
			j->pos++;
			continue;
		}
		if (j->pos < j->len && j->s[j->pos] == ']') {
			j->pos++;
			return 0;
		}
		return json_fail(j, "expected ',' or ']'");
	}
}

static int json_literal(struct json *j, const char *word)
{
	size_t n = strlen(word);
	if (j->len - j->pos < n || memcmp(j->s + j->pos, word, n))
		return json_fail(j, "not a JSON value");
	j->pos += n;
	return 0;
}

static int json_value(struct json *j, size_t depth, size_t nesting, const struct view_column *col, bool quiet)
{
	if (nesting > VIEW_JSON_DEPTH_MAX)
		return json_fail(j, "nested deeper than the limit");
	json_ws(j);
	if (j->pos >= j->len)
		return json_fail(j, "a value is missing");
	size_t start = j->pos;
	bool mask = col && !quiet;
	int rc;
	switch (j->s[j->pos]) {
	case '{':
		return json_object(j, depth, nesting, col, quiet);
	case '[':
		return json_array(j, depth, nesting, col, quiet);
	case '"':
		if ((rc = json_string(j, mask ? &j->value : NULL)))
			return rc;
		if (mask)
			json_mask_scalar(j, col, start, j->value.buf, j->value.len);
		return 0;
	case 't':
	case 'f':
		if ((rc = json_literal(j, j->s[j->pos] == 't' ? "true" : "false")))
			return rc;
		if (mask)
			json_mask_scalar(j, col, start, j->s + start, j->pos - start);
		return 0;
	case 'n':
		return json_literal(j, "null");   /* missing stays missing */
	default:
		if ((rc = json_number(j)))
			return rc;
		if (mask)
			json_mask_scalar(j, col, start, j->s + start, j->pos - start);
		return 0;
	}
}

static int json_line(struct json *j, const char *s, size_t len)
{
	j->line_no++;
	j->s = s;
	j->len = len;
	j->pos = j->copied = 0;
	if (j->line_no == 1 && len >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3))
		j->pos = 3;   /* a byte order mark, copied */
	json_ws(j);
	if (j->pos < len) {
		int rc = json_value(j, 0, 0, NULL, false);
		if (rc)
			return rc;
		json_ws(j);
		if (j->pos < len)
			return json_fail(j, "text after the value");
	}
	out_add(j->out, s + j->copied, len - j->copied);
	return 0;
}

static int json_feed(struct json *j, const char *data, size_t len)
{
	while (len) {
		const char *nl = memchr(data, '\n', len);
		size_t n = nl ? (size_t)(nl - data) + 1 : len;
		if (j->line.len + n > VIEW_LINE_MAX)
			return mesh_errf(j->err, -EINVAL, "line %llu: longer than %u bytes",
					 (unsigned long long)j->line_no + 1, VIEW_LINE_MAX);
		if (nl && j->line.len == 0) {
			int rc = json_line(j, data, n);
			if (rc)
				return rc;
		} else {
			strbuf_add(&j->line, data, n);
			if (nl) {
				int rc = json_line(j, j->line.buf, j->line.len);
				j->line.len = 0;
				if (rc)
					return rc;
			}
		}
		data += n;
		len -= n;
	}
	return 0;
}

static int json_finish(struct json *j)
{
	if (!j->line.len)
		return 0;
	int rc = json_line(j, j->line.buf, j->line.len);
	j->line.len = 0;
	return rc;
}

static void json_setup(struct json *j)
{
	size_t total = 0;
	j->n_comps = xcalloc(j->plan->n + 1, sizeof *j->n_comps);
	j->first_comp = xcalloc(j->plan->n + 1, sizeof *j->first_comp);
	for (size_t k = 0; k < j->plan->n; k++) {
		j->first_comp[k] = total;
		const char *p = j->plan->columns[k].name;
		for (;;) {
			const char *dot = strchr(p, '.');
			size_t n = dot ? (size_t)(dot - p) : strlen(p);
			j->comps = xrealloc(j->comps, (total + 1) * sizeof *j->comps);
			j->comps[total++] = xstrndup(p, n);
			j->n_comps[k]++;
			if (!dot)
				break;
			p = dot + 1;
		}
	}
	j->comps = xrealloc(j->comps, (total + 1) * sizeof *j->comps);
	j->comps[total] = NULL;
	for (size_t i = 0; i <= VIEW_JSON_DEPTH_MAX; i++)
		strbuf_add(&j->keys[i], "", 0);
}

static void json_free(struct json *j)
{
	for (size_t i = 0; j->comps && j->comps[i]; i++)
		free(j->comps[i]);
	free(j->comps);
	free(j->n_comps);
	free(j->first_comp);
	for (size_t i = 0; i <= VIEW_JSON_DEPTH_MAX; i++)
		strbuf_release(&j->keys[i]);
	strbuf_release(&j->line);
	strbuf_release(&j->value);
	strbuf_release(&j->result);
}

/* ---- the pass ---- */

int view_format_for_name(const char *name, enum view_format *out)
{
	const char *dot = strrchr(name, '.');
	if (dot && !strcmp(dot, ".csv")) {
		*out = VIEW_CSV;
		return 0;
	}
	if (dot && (!strcmp(dot, ".jsonl") || !strcmp(dot, ".ndjson") || !strcmp(dot, ".json"))) {
		*out = VIEW_JSONL;
		return 0;
	}
	if (dot && !strcmp(dot, ".parquet")) {
		*out = VIEW_PARQUET;
		return 0;
	}
	return -ENOTSUP;
}

int view_plan_for_format(struct view_plan *plan, enum view_format format, char *why, size_t why_len)
{
	if (format != VIEW_PARQUET)
		return 0;
	for (size_t i = 0; i < plan->n; i++) {
		struct view_column *c = &plan->columns[i];
		if (c->fn == VIEW_FN_NULL || c->fn == VIEW_FN_REDACT || c->fn == VIEW_FN_OMIT) {
			c->fn = VIEW_FN_OMIT;
			continue;
		}
		snprintf(why, why_len, "a Parquet view can only leave column %s out, not apply %s to it", c->name,
			 view_fn_name(c->fn));
		return -ENOTSUP;
	}
	view_plan_seal(plan);
	return 0;
}

struct pass {
	enum view_format format;
	struct csv csv;
	struct json json;
	struct out out;
};

static void pass_init(struct pass *p, enum view_format format, const struct view_plan *plan,
		      const unsigned char *secret, struct mesh_err *err)
{
	memset(p, 0, sizeof *p);
	p->format = format;
	p->out.buf = xmalloc(CHUNK);
	p->out.sha = mesh_sha256_new();
	p->out.fd = -1;
	p->csv = (struct csv){.plan = plan, .secret = secret, .out = &p->out, .line = 1, .err = err};
	p->json.plan = plan;
	p->json.secret = secret;
	p->json.out = &p->out;
	p->json.err = err;
	if (format == VIEW_JSONL)
		json_setup(&p->json);
}

static int pass_feed(struct pass *p, const char *data, size_t len)
{
	int rc = p->format == VIEW_CSV ? csv_feed(&p->csv, data, len) : json_feed(&p->json, data, len);
	return rc ? rc : p->out.error;
}

static int pass_finish(struct pass *p, struct mesh_err *err)
{
	int rc = p->format == VIEW_CSV ? csv_finish(&p->csv) : json_finish(&p->json);
	out_flush(&p->out);
	if (!rc && p->out.error)
		rc = mesh_errf(err, p->out.error, "writing the view: %s", strerror(-p->out.error));
	return rc;
}

static void pass_free(struct pass *p, char out_sha[65])
{
	char hex[65];
	mesh_sha256_final(p->out.sha, out_sha ? out_sha : hex);
	free(p->out.buf);
	if (p->format == VIEW_CSV)
		csv_free(&p->csv);
	else
		json_free(&p->json);
}

int view_build(int in_fd, int out_fd, enum view_format format, const struct view_plan *plan,
	       const unsigned char *secret, struct view_build_result *res, struct mesh_err *err)
{
	if (format == VIEW_PARQUET)
		return view_parquet_build(in_fd, out_fd, plan, res, err);
	struct pass p;
	pass_init(&p, format, plan, secret, err);
	p.out.fd = out_fd;
	/* the input is hashed on a second thread while it is transformed */
	struct view_reader *in = view_reader_new(in_fd, "the release file");
	const char *data;
	size_t len;
	int rc;
	while ((rc = view_reader_next(in, &data, &len, err)) > 0)
		if ((rc = pass_feed(&p, data, len))) {
			if (rc == p.out.error)
				mesh_errf(err, rc, "writing the view: %s", strerror(-rc));
			break;
		}
	if (!rc)
		rc = pass_finish(&p, err);
	struct view_build_result r = {.in_bytes = view_reader_offset(in), .out_bytes = p.out.total};
	view_reader_finish(in, r.in_sha256);
	pass_free(&p, r.out_sha256);
	if (res)
		*res = r;
	return rc;
}

/* Parquet is read with pread: over memory through two memfds. */
static int parquet_buffer(const char *data, size_t len, const struct view_plan *plan, struct strbuf *out,
			  struct mesh_err *err)
{
	int in = memfd_create("meshfs-view-in", MFD_CLOEXEC);
	int fd = memfd_create("meshfs-view-out", MFD_CLOEXEC);
	int rc = in < 0 || fd < 0 || mesh_write_all(in, data, len) < 0 ? -errno : 0;
	if (rc)
		mesh_errf(err, rc, "memfd: %s", strerror(-rc));
	else
		rc = view_parquet_build(in, fd, plan, NULL, err);
	strbuf_add(out, "", 0);
	char buf[65536];
	ssize_t r;
	off_t off = 0;
	while (!rc && (r = pread(fd, buf, sizeof buf, off)) > 0) {
		strbuf_add(out, buf, (size_t)r);
		off += r;
	}
	if (in >= 0)
		close(in);
	if (fd >= 0)
		close(fd);
	return rc;
}

int view_build_buffer(const char *data, size_t len, enum view_format format,
		      const struct view_plan *plan, const unsigned char *secret, struct strbuf *out,
		      struct mesh_err *err)
{
	if (format == VIEW_PARQUET)
		return parquet_buffer(data, len, plan, out, err);
	struct pass p;
	pass_init(&p, format, plan, secret, err);
	p.out.mem = out;
	strbuf_add(out, "", 0);
	int rc = pass_feed(&p, data, len);
	if (!rc)
		rc = pass_finish(&p, err);
	pass_free(&p, NULL);
	return rc;
}
