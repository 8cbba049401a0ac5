/*
 * validate.c - one streaming pass over a data file against its contract
 * (contract in include/validate.h).
 *
 * Every check is a "rule" with a result; the implicit ones (columns, type,
 * required, unique, primary key) come from the schema, the others from the
 * contract's quality section.  A value is type-checked first; the other
 * rules of its column only see values of the right type.
 *
 * Parquet: the footer's schema stands for the header and its types for
 * the per-value type checks; null counts and statistics judge what they
 * can without reading pages; the other rules see decoded values, every
 * needed column read in step so a row's values arrive together.
 */
#include "validate.h"

#include <ctype.h>
#include <pthread.h>
#include <sys/mman.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <arpa/inet.h>
#include <float.h>
#include <math.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "csv.h"
#include "fpset.h"
#include "mesh_util.h"
#include "name_hint.h"
#include "progress.h"
#include "sqlrule.h"
#include "parquet.h"
#include "unique.h"

/* ---- value checks (no allocation, no NUL needed) ---- */

/* s[0, n) equals the lowercase letters `word` in any case (strncasecmp() in
 * the C locale: c | 0x20 is a lowercase letter only for that letter and its
 * capital). */
static inline bool same_word(const char *s, const char *word, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (((unsigned char)s[i] | 0x20) != (unsigned char)word[i])
			return false;
	return true;
}

static inline bool digit(char c)
{
	return (unsigned char)(c - '0') < 10;   /* isdigit() in the C locale, without the table call */
}

static bool is_integer(const char *s, size_t n)
{
	size_t i = 0;
	if (i < n && (s[i] == '-' || s[i] == '+'))
		i++;
	if (i == n || n - i > 19)
		return false;
	for (; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static bool is_number(const char *s, size_t n)
{
	size_t i = 0;
	if (i < n && (s[i] == '-' || s[i] == '+'))
		i++;
	if (n - i == 3 && (same_word(s + i, "nan", 3) || same_word(s + i, "inf", 3)))
		return true;
	size_t digits = 0;
	while (i < n && s[i] >= '0' && s[i] <= '9')
		i++, digits++;
	if (i < n && s[i] == '.') {
		i++;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++, digits++;
	}
	if (!digits)
		return false;
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '-' || s[i] == '+'))
			i++;
		size_t e = 0;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++, e++;
		if (!e)
			return false;
	}
	return i == n;
}

static bool is_boolean(const char *s, size_t n)
{
	if (n == 1)
		return *s == '1' || *s == '0';
	return (n == 4 && same_word(s, "true", 4)) || (n == 5 && same_word(s, "false", 5));
}

static inline int two(const char *s)
{
	return digit(s[0]) && digit(s[1]) ? (s[0] - '0') * 10 + s[1] - '0' : -1;
}

static bool is_date(const char *s, size_t n)
{
	if (n != 10 || s[4] != '-' || s[7] != '-')
		return false;
	for (int i = 0; i < 4; i++)
		if (!digit(s[i]))
			return false;
	int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
	int m = two(s + 5), d = two(s + 8);
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
		return false;
	if (m != 2 || d != 29)
		return true;
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;   /* a leap year */
}

/* RFC 3339 or "YYYY-MM-DD HH:MM:SS[.fff][Z|+hh:mm]"; *t gets the time. */
static bool parse_timestamp(const char *s, size_t n, time_t *t)
{
	char buf[64];
	if (n < 19 || n >= sizeof buf || !is_date(s, 10))
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (buf[10] == ' ')
		buf[10] = 'T';
	/* no zone: read as UTC */
	const char *tail = buf + 19;
	if (*tail == '.')
		for (tail++; isdigit((unsigned char)*tail); tail++)
			;
	if (!*tail && n + 1 < sizeof buf) {
		buf[n] = 'Z';
		buf[n + 1] = '\0';
	}
	return mesh_time_parse(buf, t) == 0;
}

/* The common form "YYYY-MM-DDTHH:MM:SS[Z]" judged without copying; 1 valid,
 * 0 invalid, -1 another form (parse_timestamp() decides).  Accepts exactly
 * what parse_timestamp() accepts for these forms. */
static int timestamp_fast(const char *s, size_t n)
{
	if (!(n == 19 || (n == 20 && (s[19] == 'Z' || s[19] == 'z'))))
		return -1;
	if ((s[10] != 'T' && s[10] != 't' && s[10] != ' ') || s[13] != ':' || s[16] != ':')
		return -1;
	int h = two(s + 11), mi = two(s + 14), sec = two(s + 17);
	if (h < 0 || mi < 0 || sec < 0)
		return -1;
	return is_date(s, 10) && h <= 23 && mi <= 59 && sec <= 60;
}

static bool type_ok(enum logical_type t, const char *s, size_t n)
{
	time_t ts;
	switch (t) {
	case LT_INTEGER: return is_integer(s, n);
	case LT_NUMBER: return is_number(s, n);
	case LT_BOOLEAN: return is_boolean(s, n);
	case LT_DATE: return is_date(s, n);
	case LT_TIMESTAMP: {
		int fast = timestamp_fast(s, n);
		return fast >= 0 ? fast == 1 : parse_timestamp(s, n, &ts);
	}
	default: return true;
	}
}

/* ---- rule results ---- */

struct rule {
	struct validate_rule_result res;
	enum quality_kind qkind;       /* for contract rules */
	int col;                       /* column index, -1 for row-level */
	const struct quality_rule *q;  /* the contract rule, or NULL */
	pcre2_code *re;                /* patterns and formats (PCRE2, JIT when available) */
	pcre2_match_data *md;          /* one per thread: each chunk's copy has its own */
	bool jit;
	int format;                    /* enum value_format for Q_FORMAT */
	time_t bound_time;             /* a timestamp bound, parsed once */
	bool has_bound_time;
	struct unique_set *uniq;       /* JSON Lines and Parquet */
	struct fpset *fps;             /* CSV: values found again by their record's offset */
	time_t freshest;
	bool seen_freshness;
};

struct run {
	const struct contract *c;
	const struct contract_object *obj;
	const struct validate_options *opts;
	const char *file;
	struct rule *rules;
	size_t n_rules;
	/* per column: indexes of its rules */
	int *type_rule, *required_rule;
	int **col_rules;               /* per column: value rules, -1 terminated */
	int **col_null_rules;          /* per column: not-null rules, -1 terminated */
	int pk_rule;
	size_t n_cols;
	char **col_names;
	char scratch[4096];
	struct strbuf key;
	uint64_t rows;
	/* a CSV chunk's copy of the run: the entries of its unique rules */
	struct fpset_run **fp_runs;    /* per rule, or NULL */
	uint64_t record_offset;        /* of the record being checked */
	struct mesh_err fp_err;        /* the first spill error of the chunk */
};

static char *printable(const char *s, size_t n)
{
	size_t m = n > 80 ? 80 : n;
	char *out = xmalloc(m * 4 + 8);
	size_t k = 0;
	for (size_t i = 0; i < m; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch < 0x20 || ch == 0x7f)
			k += (size_t)sprintf(out + k, "\\x%02x", ch);
		else
			out[k++] = (char)ch;
	}
	if (n > m) {
		memcpy(out + k, "...", 3);
		k += 3;
	}
	out[k] = '\0';
	return out;
}

static void fail_rule(struct rule *r, uint64_t line, uint64_t row, const char *column, const char *v,
		      size_t n, const char *msg)
{
	r->res.passed = false;
	r->res.failures++;
	if (r->res.n_examples < VALIDATE_MAX_EXAMPLES) {
		struct validate_failure *f = &r->res.examples[r->res.n_examples++];
		f->line = line;
		f->row = row;
		f->column = column ? xstrdup(column) : NULL;
		f->value = v ? printable(v, n) : NULL;
		f->message = xstrdup(msg);
	}
}

static struct rule *add_rule(struct run *run, const char *id, const char *kind, const char *column,
			     bool required, int col)
{
	run->rules = xrealloc(run->rules, (run->n_rules + 1) * sizeof *run->rules);
	struct rule *r = &run->rules[run->n_rules++];
	memset(r, 0, sizeof *r);
	r->res.id = xstrdup(id);
	r->res.kind = xstrdup(kind);
	r->res.column = column ? xstrdup(column) : NULL;
	r->res.required = required;
	r->res.checked = true;
	r->res.passed = true;
	r->col = col;
	return r;
}

static void dup_found(void *ctx, const char *v, size_t n, uint64_t line, uint64_t row)
{
	struct rule *r = ctx;
	fail_rule(r, line, row, r->res.column, v, n, "duplicate value");
}

static int col_index(const struct run *run, const char *name)
{
	for (size_t i = 0; i < run->n_cols; i++)
		if (!strcmp(run->col_names[i], name))
			return (int)i;
	return -1;
}

/* A PCRE2 pattern for rule r: the whole value must match (anchored), or,
 * with JSON Schema semantics, a match anywhere is enough.  A pattern that
 * does not compile fails the rule, naming the offset. */
static bool compile_pattern(struct rule *r, const char *pattern, bool anchored)
{
	int code;
	PCRE2_SIZE off;
	uint32_t flags = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | (anchored ? PCRE2_ANCHORED | PCRE2_ENDANCHORED : 0);
	r->re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, flags, &code, &off, NULL);
	if (!r->re) {
		PCRE2_UCHAR msg[160];
		pcre2_get_error_message(code, msg, sizeof msg);
		char text[300];
		snprintf(text, sizeof text, "not a valid regular expression (in the contract): %s at offset %zu",
			 (const char *)msg, (size_t)off);
		fail_rule(r, r->q ? (uint64_t)r->q->line : 0, 0, r->res.column, pattern, strlen(pattern), text);
		return false;
	}
	r->jit = pcre2_jit_compile(r->re, PCRE2_JIT_COMPLETE) == 0;   /* else the interpreter */
	r->md = pcre2_match_data_create_from_pattern(r->re, NULL);
	return true;
}

/* 1 match, 0 no match, -1 the matcher gave up (limits). */
static int pattern_match(struct rule *r, const char *v, size_t n)
{
	int rc = r->jit ? pcre2_jit_match(r->re, (PCRE2_SPTR)v, n, 0, 0, r->md, NULL)
			: pcre2_match(r->re, (PCRE2_SPTR)v, n, 0, 0, r->md, NULL);
	return rc >= 0 ? 1 : rc == PCRE2_ERROR_NOMATCH ? 0 : -1;
}

enum value_format {
	FMT_UNKNOWN = 0, FMT_REGEX, FMT_DATE_TIME, FMT_TIMESTAMP, FMT_DATE, FMT_IPV4, FMT_IPV6, FMT_INT_RANGE, FMT_F32, FMT_F64,
};

/* logicalTypeOptions.format: JSON Schema formats for strings, Rust-style
 * widths for integers and numbers, the ISO forms of dates and times. */
static void plan_format(struct rule *r, const struct contract_property *p)
{
	const char *f = r->q->format;
	static const struct { const char *name; const char *re; } regexes[] = {
		{"email", "[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
			  "(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+"},
		{"uuid", "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"},
		{"uri", "[A-Za-z][A-Za-z0-9+.-]*:[^\\s]*"},
		{"hostname", "(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
			     "(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"},
		{"HH:mm:ss", "(?:[01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d"},
		{"time", "(?:[01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d(?:\\.\\d+)?(?:[Zz]|[+-]\\d{2}:\\d{2})?"},
	};
	for (size_t i = 0; i < sizeof regexes / sizeof *regexes; i++)
		if (!strcmp(f, regexes[i].name)) {
			r->format = FMT_REGEX;
			compile_pattern(r, regexes[i].re, true);
			return;
		}
	if (!strcmp(f, "date-time") || !strcmp(f, "yyyy-MM-dd'T'HH:mm:ssXXX"))
		r->format = FMT_DATE_TIME;
	else if (p->type == LT_TIMESTAMP && !strncmp(f, "yyyy-MM-dd", 10))
		r->format = FMT_TIMESTAMP;   /* a Java pattern of an ISO form: what the type check reads */
	else if (!strcmp(f, "date") || !strcmp(f, "yyyy-MM-dd"))
		r->format = FMT_DATE;
	else if (!strcmp(f, "ipv4"))
		r->format = FMT_IPV4;
	else if (!strcmp(f, "ipv6"))
		r->format = FMT_IPV6;
	else if ((f[0] == 'i' || f[0] == 'u') && (!strcmp(f + 1, "8") || !strcmp(f + 1, "16") || !strcmp(f + 1, "32") ||
						   !strcmp(f + 1, "64") || !strcmp(f + 1, "128")))
		r->format = FMT_INT_RANGE;
	else if (!strcmp(f, "f32"))
		r->format = FMT_F32;
	else if (!strcmp(f, "f64"))
		r->format = FMT_F64;
	if (!r->format) {
		char note[200];
		snprintf(note, sizeof note, "format \"%s\": meshfs does not know this format; not checked", f);
		r->res.checked = false;
		r->res.note = xstrdup(note);
	}
}

static bool integer_in_width(const char *f, const char *v, size_t n)
{
	char buf[64];
	if (n >= sizeof buf || !is_integer(v, n))
		return false;
	memcpy(buf, v, n);
	buf[n] = '\0';
	int bits = atoi(f + 1);
	if (bits >= 64)
		return f[0] == 'i' || buf[0] != '-';   /* is_integer already bounds the digits */
	errno = 0;
	long long x = strtoll(buf, NULL, 10);
	if (errno)
		return false;
	if (f[0] == 'u')
		return x >= 0 && (unsigned long long)x < (1ull << bits);
	long long lim = 1ll << (bits - 1);
	return x >= -lim && x < lim;
}

static bool format_ok(struct rule *r, const char *v, size_t n, char *scratch, size_t cap)
{
	time_t t;
	switch (r->format) {
	case FMT_REGEX: return !r->re || pattern_match(r, v, n) == 1;
	case FMT_DATE_TIME:
		/* RFC 3339: a time zone is required */
		return n >= 20 && (v[n - 1] == 'Z' || v[n - 1] == 'z' || v[n - 6] == '+' || v[n - 6] == '-') &&
		       (v[10] == 'T' || v[10] == 't' || v[10] == ' ') && parse_timestamp(v, n, &t);
	case FMT_TIMESTAMP: return parse_timestamp(v, n, &t);
	case FMT_DATE: return is_date(v, n);
	case FMT_IPV4:
	case FMT_IPV6: {
		unsigned char addr[16];
		if (n >= cap)
			return false;
		memcpy(scratch, v, n);
		scratch[n] = '\0';
		return inet_pton(r->format == FMT_IPV4 ? AF_INET : AF_INET6, scratch, addr) == 1;
	}
	case FMT_INT_RANGE: return integer_in_width(r->q->format, v, n);
	case FMT_F32: {
		if (n >= cap || !is_number(v, n))
			return false;
		memcpy(scratch, v, n);
		scratch[n] = '\0';
		double d = strtod(scratch, NULL);
		return isnan(d) || isinf(d) || fabs(d) <= FLT_MAX;
	}
	case FMT_F64: return is_number(v, n);
	default: return true;
	}
}

/* Characters (UTF-8 code points; an invalid byte counts as one). */
static size_t utf8_length(const char *s, size_t n)
{
	size_t count = 0;
	for (size_t i = 0; i < n; i++)
		count += ((unsigned char)s[i] & 0xc0) != 0x80;
	return count;
}

/* Rules from the schema and the contract, once the columns are known. */
static void plan_rules(struct run *run, bool json)
{
	const struct contract_object *obj = run->obj;
	run->type_rule = xcalloc(run->n_cols + 1, sizeof *run->type_rule);
	run->required_rule = xcalloc(run->n_cols + 1, sizeof *run->required_rule);
	run->pk_rule = -1;
	size_t pk_cols = 0;
	char id[300];
	for (size_t i = 0; i < run->n_cols; i++) {
		run->type_rule[i] = run->required_rule[i] = -1;
		const struct contract_property *p = &obj->props[i];
		/* CSV text is always a string; JSON values have types of their own */
		bool typed = json ? p->type != LT_ANY
				  : p->type != LT_ANY && p->type != LT_STRING && p->type != LT_OBJECT && p->type != LT_ARRAY;
		if (typed) {
			snprintf(id, sizeof id, "type:%s", p->name);
			add_rule(run, id, "type", p->name, true, (int)i);
			run->type_rule[i] = (int)run->n_rules - 1;
		}
		if (p->required || p->primary_key) {
			snprintf(id, sizeof id, "required:%s", p->name);
			add_rule(run, id, "required", p->name, true, (int)i);
			run->required_rule[i] = (int)run->n_rules - 1;
		}
		if (p->unique) {
			snprintf(id, sizeof id, "unique:%s", p->name);
			struct rule *r = add_rule(run, id, "unique", p->name, true, (int)i);
			r->qkind = Q_UNIQUE;
			r->uniq = unique_new(run->opts->unique_memory, run->opts->tmpdir);
		}
		pk_cols += p->primary_key;
	}
	if (pk_cols) {
		struct strbuf names = STRBUF_INIT;
		for (size_t i = 0; i < run->n_cols; i++)
			if (obj->props[i].primary_key)
				strbuf_printf(&names, "%s%s", names.len ? "," : "", obj->props[i].name);
		snprintf(id, sizeof id, "primary_key:%s", names.buf);
		struct rule *r = add_rule(run, id, "primary_key", names.buf, true, -1);
		r->uniq = unique_new(run->opts->unique_memory, run->opts->tmpdir);
		run->pk_rule = (int)run->n_rules - 1;
		strbuf_release(&names);
	}
	const struct contract *c = run->c;
	for (size_t k = 0; k < c->n_rules; k++) {
		const struct quality_rule *q = &c->rules[k];
		int col = q->column ? col_index(run, q->column) : -1;
		if (q->column && col < 0)
			continue;   /* a rule of another schema object */
		if (!q->column && q->kind != Q_ROW_COUNT && q->kind != Q_UNSUPPORTED && q->kind != Q_SQL)
			continue;
		if (q->kind == Q_SQL && q->object && strcmp(q->object, run->obj->name))
			continue;   /* another object's query */
		if (!q->column && c->n_objects > 1) {
			/* object-level rules are read for every object; keep those whose
			 * line falls inside this object's block */
			bool mine = q->line >= run->obj->line;
			for (size_t o = 0; o < c->n_objects; o++)
				if (c->objects[o].line > run->obj->line && q->line >= c->objects[o].line)
					mine = false;
			if (!mine)
				continue;
		}
		static const char *names[] = {"not_null", "unique", "min", "max", "allowed_values", "pattern",
					      "row_count", "freshness", "unsupported", "min_length", "max_length",
					      "format", "missing", "sql"};
		/* the id cites where the rule is written in the contract; readers
		 * of quality.json split it at " (line" */
		snprintf(id, sizeof id, "%s%s%s (line %d, column %d)", q->option ? q->option : names[q->kind],
			 q->column ? ":" : "", q->column ? q->column : "", q->pos.line ? q->pos.line : q->line,
			 q->pos.line ? q->pos.col : 1);
		struct rule *r = add_rule(run, id, names[q->kind], q->column, q->required, col);
		r->qkind = q->kind;
		r->q = q;
		if (q->kind == Q_SQL) {
			r->res.checked = false;   /* until sqlrule runs it (validate_file) */
			r->res.note = xstrdup("not checked: sql rule");
		} else if (q->kind == Q_UNSUPPORTED) {
			r->res.checked = false;
			char note[300];
			snprintf(note, sizeof note, "%s: meshfs cannot run this kind of rule (sql, custom, "
				 "or a metric it does not know); not checked", q->name ? q->name : "rule");
			r->res.note = xstrdup(note);
		} else if (q->kind == Q_PATTERN) {
			compile_pattern(r, q->pattern, !q->pattern_search);
		} else if (q->kind == Q_FORMAT) {
			plan_format(r, &run->obj->props[col]);
		} else if ((q->kind == Q_MIN || q->kind == Q_MAX) && (q->min_text || q->max_text)) {
			const char *b = q->kind == Q_MIN ? q->min_text : q->max_text;
			r->has_bound_time = b && parse_timestamp(b, strlen(b), &r->bound_time);
		} else if (q->kind == Q_UNIQUE) {
			r->uniq = unique_new(run->opts->unique_memory, run->opts->tmpdir);
		}
	}
	/* per-column rule lists: a value only looks at its own column's rules */
	run->col_rules = xcalloc(run->n_cols + 1, sizeof *run->col_rules);
	run->col_null_rules = xcalloc(run->n_cols + 1, sizeof *run->col_null_rules);
	for (size_t i = 0; i < run->n_cols; i++) {
		run->col_rules[i] = xcalloc(run->n_rules + 1, sizeof **run->col_rules);
		run->col_null_rules[i] = xcalloc(run->n_rules + 1, sizeof **run->col_null_rules);
		size_t a = 0, b = 0;
		for (size_t k = 0; k < run->n_rules; k++) {
			const struct rule *r = &run->rules[k];
			if (r->col != (int)i)
				continue;
			if (r->q && (r->qkind == Q_NOT_NULL || r->qkind == Q_MISSING))
				run->col_null_rules[i][b++] = (int)k;
			if (r->q && r->qkind == Q_NOT_NULL)
				continue;
			if (r->q || r->uniq)
				run->col_rules[i][a++] = (int)k;
		}
		run->col_rules[i][a] = run->col_null_rules[i][b] = -1;
	}
}

/* Check one non-null value of column i against the column's rules. */
static void check_value(struct run *run, size_t i, const char *v, size_t n, uint64_t line, uint64_t row,
			struct mesh_err *err)
{
	const char *col = run->col_names[i];
	for (const int *k = run->col_rules[i]; *k >= 0; k++) {
		struct rule *r = &run->rules[*k];
		const struct quality_rule *q = r->q;
		switch (r->qkind) {
		case Q_UNIQUE:
			if (run->fp_runs)
				fpset_add(run->fp_runs[*k], mesh_hash64(v, n), run->record_offset, err);
			else
				unique_add(r->uniq, v, n, line, row, dup_found, r, err);
			break;
		case Q_ALLOWED_VALUES: {
			bool ok = false;
			for (size_t a = 0; a < q->n_values && !ok; a++)
				ok = strlen(q->values[a]) == n && !memcmp(q->values[a], v, n);
			if (!ok)
				fail_rule(r, line, row, col, v, n, "not one of the allowed values");
			break;
		}
		case Q_PATTERN:
			if (r->re) {
				int m = pattern_match(r, v, n);
				if (m == 0)
					fail_rule(r, line, row, col, v, n, "does not match the pattern");
				else if (m < 0)
					fail_rule(r, line, row, col, v, n, "the pattern could not be evaluated (match limit)");
			}
			break;
		case Q_MISSING:
			for (size_t a = 0; a < q->n_values; a++)
				if (strlen(q->values[a]) == n && !memcmp(q->values[a], v, n)) {
					fail_rule(r, line, row, col, v, n, "a missing value");
					break;
				}
			break;
		case Q_MIN_LENGTH:
		case Q_MAX_LENGTH: {
			size_t chars = utf8_length(v, n);
			if (r->qkind == Q_MIN_LENGTH ? (double)chars < q->min : (double)chars > q->max) {
				char msg[96];
				snprintf(msg, sizeof msg, "%zu characters, %s %.0f", chars,
					 r->qkind == Q_MIN_LENGTH ? "shorter than minLength" : "longer than maxLength",
					 r->qkind == Q_MIN_LENGTH ? q->min : q->max);
				fail_rule(r, line, row, col, v, n, msg);
			}
			break;
		}
		case Q_FORMAT:
			if (r->format && !format_ok(r, v, n, run->scratch, sizeof run->scratch)) {
				char msg[120];
				snprintf(msg, sizeof msg, "not a valid %s", q->format);
				fail_rule(r, line, row, col, v, n, msg);
			}
			break;
		case Q_MIN:
		case Q_MAX: {
			bool is_min = r->qkind == Q_MIN;
			const char *what = is_min ? (q->exclusive ? "not above the exclusive minimum" : "below the minimum")
						  : (q->exclusive ? "not below the exclusive maximum" : "above the maximum");
			if ((is_min && q->has_min) || (!is_min && q->has_max)) {
				if (n >= sizeof run->scratch || !is_number(v, n))
					break;
				memcpy(run->scratch, v, n);
				run->scratch[n] = '\0';
				double d = strtod(run->scratch, NULL), bound = is_min ? q->min : q->max;
				bool bad = is_min ? (q->exclusive ? d <= bound : d < bound)
						  : (q->exclusive ? d >= bound : d > bound);
				if (bad)
					fail_rule(r, line, row, col, v, n, what);
			} else {
				const char *bound = is_min ? q->min_text : q->max_text;
				if (!bound)
					break;
				int c;
				time_t t;
				if (r->has_bound_time && parse_timestamp(v, n, &t)) {
					c = (t > r->bound_time) - (t < r->bound_time);
				} else {
					size_t bl = strlen(bound);
					c = memcmp(v, bound, n < bl ? n : bl);
					if (!c)
						c = (n > bl) - (n < bl);
				}
				bool bad = is_min ? (q->exclusive ? c <= 0 : c < 0) : (q->exclusive ? c >= 0 : c > 0);
				if (bad)
					fail_rule(r, line, row, col, v, n, what);
			}
			break;
		}
		case Q_FRESHNESS: {
			time_t t;
			if (parse_timestamp(v, n, &t) && (!r->seen_freshness || t > r->freshest)) {
				r->freshest = t;
				r->seen_freshness = true;
			}
			break;
		}
		default:
			break;
		}
	}
}

static void check_null(struct run *run, size_t i, uint64_t line, uint64_t row)
{
	const char *col = run->col_names[i];
	if (run->required_rule[i] >= 0)
		fail_rule(&run->rules[run->required_rule[i]], line, row, col, NULL, 0, "missing (required)");
	for (const int *k = run->col_null_rules[i]; *k >= 0; k++)
		fail_rule(&run->rules[*k], line, row, col, NULL, 0,
			  run->rules[*k].q->threshold ? "null" : "null (the contract says no nulls)");
}

static void check_field(struct run *run, size_t i, const char *v, size_t n, bool is_null, uint64_t line,
			uint64_t row, struct mesh_err *err)
{
	if (is_null) {
		check_null(run, i, line, row);
		return;
	}
	const struct contract_property *p = &run->obj->props[i];
	if (run->type_rule[i] >= 0 && !type_ok(p->type, v, n)) {
		char msg[64];
		snprintf(msg, sizeof msg, "not a valid %s", logical_type_name(p->type));
		fail_rule(&run->rules[run->type_rule[i]], line, row, run->col_names[i], v, n, msg);
		return;
	}
	check_value(run, i, v, n, line, row, err);
}

static void add_pk_part(struct run *run, const char *v, size_t n)
{
	if (run->key.len)
		strbuf_add(&run->key, "\x1f", 1);
	strbuf_add(&run->key, v, n);
}

/* ODCS library metrics: the count of offending values, or its share of
 * the rows, against the rule's bounds (mustBe 0 unless it says more). */
static void judge_metric(struct rule *r, uint64_t rows)
{
	const struct quality_rule *q = r->q;
	if (!q->threshold)
		return;   /* "none at all": every offending value already failed the rule */
	double count = (double)r->res.failures;
	double value = q->unit == METRIC_PERCENT ? (rows ? 100.0 * count / (double)rows : 0) : count;
	bool ok = (!q->has_metric_min || value >= q->metric_min) && (!q->has_metric_max || value <= q->metric_max);
	char note[240], lo[40] = "", hi[40] = "";
	if (q->has_metric_min)
		snprintf(lo, sizeof lo, ">= %g", q->metric_min);
	if (q->has_metric_max)
		snprintf(hi, sizeof hi, "%s<= %g", *lo ? " and " : "", q->metric_max);
	snprintf(note, sizeof note, "%.0f of %llu rows (%.2f%%); the rule allows %s%s%s", count,
		 (unsigned long long)rows, rows ? 100.0 * count / (double)rows : 0.0, lo, hi,
		 q->unit == METRIC_PERCENT ? " percent" : " rows");
	free(r->res.note);
	r->res.note = xstrdup(note);
	r->res.passed = ok;
}

static void finish_rules(struct run *run, struct mesh_err *err)
{
	time_t now = run->opts->now ? run->opts->now : time(NULL);
	for (size_t k = 0; k < run->n_rules; k++) {
		struct rule *r = &run->rules[k];
		if (r->uniq)
			unique_finish(r->uniq, dup_found, r, err);
		if (r->q && r->res.checked && (r->qkind == Q_NOT_NULL || r->qkind == Q_MISSING || r->qkind == Q_UNIQUE ||
					       r->qkind == Q_ALLOWED_VALUES || r->qkind == Q_PATTERN))
			judge_metric(r, run->rows);
		if (r->qkind == Q_ROW_COUNT && r->q) {
			const struct quality_rule *q = r->q;
			double rows = (double)run->rows;
			if ((q->has_min && rows < q->min) || (q->has_max && rows > q->max)) {
				char msg[160];
				snprintf(msg, sizeof msg, "%llu rows, outside the bounds of the rule",
					 (unsigned long long)run->rows);
				fail_rule(r, 0, 0, NULL, NULL, 0, msg);
			}
		}
		if (r->qkind == Q_FRESHNESS && r->q) {
			char note[200];
			if (!r->seen_freshness) {
				fail_rule(r, 0, 0, r->res.column, NULL, 0, "no timestamp values to judge freshness");
			} else {
				struct timespec ts = {r->freshest, 0};
				char when[40];
				mesh_time_rfc3339(&ts, when, sizeof when);
				long long age = (long long)(now - r->freshest);
				snprintf(note, sizeof note, "newest %s, %lld s old (allowed %lld s)", when, age,
					 (long long)r->q->max_age_seconds);
				free(r->res.note);
				r->res.note = xstrdup(note);
				if (age > r->q->max_age_seconds)
					fail_rule(r, 0, 0, r->res.column, when, strlen(when), "data older than the SLA allows");
			}
		}
	}
}

/* ---- CSV, in chunks of the mapped file ----
 *
 * The file is mapped (read only) and cut into chunks at newlines; each
 * chunk is read by a span reader in some thread, with its own copy of the
 * rule results.  A chunk's first record is only a guess (the newline may
 * be inside a quoted field), so the chunks are merged in file order and a
 * chunk is kept only if the previous one ended exactly where it starts;
 * otherwise it is read again from there, in this thread.  So the kept
 * chunks are the records a single reader finds, and the merged report
 * (counts, first examples, line and row numbers, the first malformed
 * record and nothing after it) is the single-threaded one.  Unique values
 * go to an fpset as {hash, record offset}; the values are read again from
 * the mapping only to compare equal hashes and to show examples.
 */

#define CHECKPOINT_EVERY 4096        /* records between (offset, line, row) marks of a chunk */
#define DROP_EVERY (8u << 20)        /* pages read are dropped from the mapping this often */

struct checkpoint {
	uint64_t offset, line, rows;     /* local line of the record at offset; records before it */
};

struct chunk {
	uint64_t start, stop;            /* reads the records that start in [start, stop) */
	uint64_t end, end_line;          /* where the next record starts; its local line */
	uint64_t rows;
	int error;                       /* a malformed record at error_offset */
	uint64_t error_offset, error_line;
	struct run w;                    /* this chunk's rule results (lines local, from 1) */
	bool scanned;
	struct checkpoint *cps;
	size_t n_cps, cap_cps;
	uint64_t line_base, row_base;    /* once merged: line of its first record - 1, rows before it */
};

/* What a column's values need, from the plan. */
struct colplan {
	enum logical_type type;          /* LT_ANY: no type rule */
	bool nulls;                      /* a rule sees empty values */
	bool values;                     /* a rule sees non-empty values */
	bool pk;                         /* part of the primary key */
};

struct csv_job {
	struct run *run;                 /* the plan, read only while chunks are read */
	struct colplan *cols;
	const char *map;
	size_t size;
	size_t ragged;                   /* the row_shape rule */
	struct chunk *chunks;
	size_t n_chunks;
	pthread_mutex_t lock;            /* next */
	size_t next;
	long page;
};

static void chunk_begin(struct csv_job *job, struct chunk *c)
{
	const struct run *plan = job->run;
	struct run *w = &c->w;
	*w = *plan;   /* the plan's arrays are shared, read only */
	w->rules = xmalloc(plan->n_rules * sizeof *w->rules);
	w->key = (struct strbuf)STRBUF_INIT;
	w->rows = 0;
	w->fp_runs = xcalloc(plan->n_rules + 1, sizeof *w->fp_runs);
	memset(&w->fp_err, 0, sizeof w->fp_err);
	for (size_t k = 0; k < plan->n_rules; k++) {
		struct rule *r = &w->rules[k];
		*r = plan->rules[k];
		r->res.failures = 0;
		r->res.n_examples = 0;
		r->res.passed = true;
		r->seen_freshness = false;
		r->freshest = 0;
		r->uniq = NULL;
		r->md = r->re ? pcre2_match_data_create_from_pattern(r->re, NULL) : NULL;
		if (r->fps)
			w->fp_runs[k] = fpset_run_new(r->fps, c->start);
	}
	c->scanned = true;
}

/* Free a chunk's results; `discard`: its unique entries do not count. */
static void chunk_end(struct chunk *c, bool discard)
{
	if (!c->scanned)
		return;
	struct run *w = &c->w;
	for (size_t k = 0; k < w->n_rules; k++) {
		struct rule *r = &w->rules[k];
		for (size_t e = 0; e < r->res.n_examples; e++) {
			free(r->res.examples[e].column);
			free(r->res.examples[e].value);
			free(r->res.examples[e].message);
		}
		pcre2_match_data_free(r->md);
		if (discard && w->fp_runs[k])
			fpset_run_discard(w->fp_runs[k]);
	}
	free(w->rules);
	free(w->fp_runs);
	strbuf_release(&w->key);
	free(c->cps);
	c->cps = NULL;
	c->n_cps = c->cap_cps = 0;
	c->scanned = false;
}

static void chunk_scan(struct csv_job *job, struct chunk *c)
{
	chunk_begin(job, c);
	struct run *w = &c->w;
	struct csv_reader *rd = csv_reader_span(job->map, job->size, w->file, c->start, c->stop, 1, 0);
	struct csv_record rec;
	struct mesh_err perr = {0};
	uint64_t dropped = c->start & ~(uint64_t)(job->page - 1);
	uint64_t counted = c->start;     /* bytes given to the progress line */
	int rc;
	c->rows = 0;
	c->error = 0;
	while ((rc = csv_next(rd, &rec, &perr)) == 1) {
		if (c->rows % CHECKPOINT_EVERY == 0) {
			if (c->n_cps == c->cap_cps) {
				c->cap_cps = c->cap_cps ? c->cap_cps * 2 : 16;
				c->cps = xrealloc(c->cps, c->cap_cps * sizeof *c->cps);
			}
			c->cps[c->n_cps++] = (struct checkpoint){rec.offset, rec.line, c->rows};
		}
		c->rows++;
		w->record_offset = rec.offset;
		if (w->n_cols && rec.n != w->n_cols) {
			char msg[96];
			snprintf(msg, sizeof msg, "%zu fields, the header has %zu", rec.n, w->n_cols);
			fail_rule(&w->rules[job->ragged], rec.line, rec.row, NULL, NULL, 0, msg);
			continue;
		}
		w->key.len = 0;
		for (size_t i = 0; i < w->n_cols; i++) {
			/* check_field(), without a call for the values no rule looks at */
			const struct csv_field *f = &rec.fields[i];
			const struct colplan *cp = &job->cols[i];
			if (!f->len) {
				if (cp->nulls)
					check_null(w, i, rec.line, rec.row);
			} else if (cp->type && !type_ok(cp->type, f->ptr, f->len)) {
				check_field(w, i, f->ptr, f->len, false, rec.line, rec.row, &w->fp_err);
			} else if (cp->values) {
				check_value(w, i, f->ptr, f->len, rec.line, rec.row, &w->fp_err);
			}
			if (cp->pk)
				add_pk_part(w, f->ptr, f->len);
		}
		if (w->pk_rule >= 0)
			fpset_add(w->fp_runs[w->pk_rule], mesh_hash64(w->key.buf ? w->key.buf : "", w->key.len),
				  rec.offset, &w->fp_err);
		/* the pages behind: a 1 GiB file need not stay in this process's memory */
		if (rec.offset - dropped >= DROP_EVERY) {
			uint64_t upto = rec.offset & ~(uint64_t)(job->page - 1);
			madvise((char *)job->map + dropped, upto - dropped, MADV_DONTNEED);
			dropped = upto;
			progress_add(w->opts->progress, rec.offset - counted);   /* thread-safe */
			counted = rec.offset;
		}
	}
	c->end = csv_reader_pos(rd);
	if (c->end > counted)
		progress_add(w->opts->progress, c->end - counted);
	c->end_line = csv_reader_line(rd);
	if (rc < 0) {
		c->error = rc;
		c->error_offset = c->end;
		c->error_line = c->end_line;
	}
	csv_reader_free(rd);
	for (size_t k = 0; k < w->n_rules; k++)
		if (w->fp_runs[k] && fpset_run_close(w->fp_runs[k], &w->fp_err) && !w->fp_err.code)
			w->fp_err.code = -EIO;
}

static void *chunk_worker(void *arg)
{
	struct csv_job *job = arg;
	for (;;) {
		pthread_mutex_lock(&job->lock);
		size_t i = job->next++;
		pthread_mutex_unlock(&job->lock);
		if (i >= job->n_chunks)
			return NULL;
		chunk_scan(job, &job->chunks[i]);
	}
}

/* A chunk's results into the run's, its lines and rows made the file's. */
static void chunk_merge(struct run *run, struct chunk *c)
{
	for (size_t k = 0; k < run->n_rules; k++) {
		struct rule *m = &run->rules[k], *x = &c->w.rules[k];
		m->res.failures += x->res.failures;
		m->res.passed = m->res.passed && x->res.passed;
		for (size_t e = 0; e < x->res.n_examples; e++) {
			struct validate_failure *f = &x->res.examples[e];
			if (m->res.n_examples < VALIDATE_MAX_EXAMPLES) {
				struct validate_failure *to = &m->res.examples[m->res.n_examples++];
				*to = *f;
				to->line = f->line ? f->line + c->line_base : 0;
				to->row = f->row ? f->row + c->row_base : 0;
			} else {
				free(f->column);
				free(f->value);
				free(f->message);
			}
		}
		x->res.n_examples = 0;
		if (x->seen_freshness && (!m->seen_freshness || x->freshest > m->freshest)) {
			m->freshest = x->freshest;
			m->seen_freshness = true;
		}
		if (x->fps && c->w.fp_err.code && m->res.checked) {
			m->res.checked = false;
			free(m->res.note);
			m->res.note = xstrdup(c->w.fp_err.msg[0] ? c->w.fp_err.msg : "unique-key spill file: I/O error");
		}
	}
}

struct fetch_ctx {
	const struct csv_job *job;
	const struct rule *rule;
};

/* The value of the unique rule for the record at `offset`: the column's
 * field, or the primary key's parts joined as while reading. */
static int fetch_value(void *ctx, uint64_t offset, struct strbuf *out, struct mesh_err *err)
{
	const struct fetch_ctx *f = ctx;
	const struct run *run = f->job->run;
	struct csv_reader *rd = csv_reader_span(f->job->map, f->job->size, run->file, offset, offset + 1, 1, 0);
	struct csv_record rec;
	int rc = csv_next(rd, &rec, err);
	out->len = 0;
	if (rc == 1 && rec.n == run->n_cols) {
		for (size_t i = 0; i < rec.n; i++) {
			bool part = f->rule->col < 0 ? run->obj->props[i].primary_key : (int)i == f->rule->col;
			if (!part)
				continue;
			if (f->rule->col < 0 && out->len)
				strbuf_add(out, "\x1f", 1);
			strbuf_add(out, rec.fields[i].ptr, rec.fields[i].len);
		}
		rc = 0;
	} else if (rc >= 0) {
		rc = mesh_errf(err, -EIO, "%s: record at byte %llu changed while it was read", run->file,
			       (unsigned long long)offset);
	}
	csv_reader_free(rd);
	return rc;
}

/* Line and row of the record at `offset`, from the checkpoint before it. */
static void locate(const struct csv_job *job, uint64_t offset, uint64_t *line, uint64_t *row)
{
	*line = *row = 0;
	for (size_t i = 0; i < job->n_chunks; i++) {
		const struct chunk *c = &job->chunks[i];
		if (!c->scanned || offset < c->start || offset >= c->end || !c->n_cps)
			continue;
		size_t lo = 0, hi = c->n_cps;
		while (hi - lo > 1) {
			size_t mid = (lo + hi) / 2;
			if (c->cps[mid].offset <= offset)
				lo = mid;
			else
				hi = mid;
		}
		const struct checkpoint *cp = &c->cps[lo];
		struct csv_reader *rd = csv_reader_span(job->map, job->size, job->run->file, cp->offset, c->end,
							c->line_base + cp->line, c->row_base + cp->rows);
		struct csv_record rec;
		struct mesh_err ignored = {0};
		while (csv_next(rd, &rec, &ignored) == 1)
			if (rec.offset == offset) {
				*line = rec.line;
				*row = rec.row;
				break;
			}
		csv_reader_free(rd);
		return;
	}
}

static void finish_unique(struct csv_job *job, struct rule *r, unsigned threads)
{
	struct fpset_result res;
	struct mesh_err e = {0};
	struct fetch_ctx f = {job, r};
	if (fpset_finish(r->fps, threads, fetch_value, &f, &res, &e)) {
		r->res.checked = false;
		free(r->res.note);
		r->res.note = xstrdup(e.msg);
		return;
	}
	uint64_t before = r->res.failures;
	struct strbuf v = STRBUF_INIT;
	for (size_t i = 0; i < res.n_examples; i++) {
		uint64_t line, row;
		locate(job, res.examples[i], &line, &row);
		fetch_value(&f, res.examples[i], &v, &e);
		fail_rule(r, line, row, r->res.column, v.buf ? v.buf : "", v.len, "duplicate value");
	}
	strbuf_release(&v);
	r->res.failures = before + res.duplicates;
	if (res.duplicates)
		r->res.passed = false;
}

static unsigned validate_threads(const struct validate_options *opts)
{
	long n = opts->threads ? (long)opts->threads : sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > VALIDATE_MAX_THREADS ? VALIDATE_MAX_THREADS : (unsigned)n;
}

/* Chunks of [data_start, size), each starting after a newline. */
static size_t plan_chunks(struct csv_job *job, uint64_t data_start, unsigned threads, size_t chunk_bytes)
{
	uint64_t data = job->size - data_start;
	uint64_t step = chunk_bytes;
	if (!step) {
		step = threads > 1 ? data / (threads * 4u) : data;
		if (step < (4u << 20))
			step = 4u << 20;
	}
	size_t cap = (size_t)(data / step) + 2;
	job->chunks = xcalloc(cap, sizeof *job->chunks);
	size_t n = 0;
	uint64_t start = data_start;
	while (n < cap && start < job->size) {
		job->chunks[n].start = start;
		uint64_t next = job->size;
		uint64_t nominal = start + step;
		if (nominal < job->size) {
			const char *nl = memchr(job->map + nominal - 1, '\n', job->size - (nominal - 1));
			if (nl)
				next = (uint64_t)(nl - job->map) + 1;
		}
		if (n == cap - 1)
			next = job->size;
		job->chunks[n++].stop = next;
		start = next;
	}
	job->n_chunks = n;
	return n;
}

static int validate_csv_stream(struct run *run, int fd, struct validate_report *rep, struct mesh_err *err);
static bool header_matches(struct run *run, const struct csv_record *rec, struct rule *columns);

/* The first record of a CSV file (csv_next gave `rc`): the format rule
 * (an empty or malformed file fails it) and the columns rule (the header
 * against the contract's columns).  False when either failed: no rows. */
static bool header_record(struct run *run, int rc, const struct csv_record *rec, const struct mesh_err *perr)
{
	size_t format = run->n_rules;
	add_rule(run, "format", "format", NULL, true, -1);
	if (rc <= 0) {
		fail_rule(&run->rules[format], rc < 0 ? 0 : 1, 0, NULL, NULL, 0,
			  rc < 0 ? perr->msg : "empty file: a CSV data file starts with a header row");
		return false;
	}
	size_t columns = run->n_rules;
	add_rule(run, "columns", "columns", NULL, true, -1);
	const struct contract_object *obj = run->obj;
	run->n_cols = obj->n_props;
	run->col_names = xcalloc(run->n_cols + 1, sizeof *run->col_names);
	for (size_t i = 0; i < run->n_cols; i++)
		run->col_names[i] = obj->props[i].name;
	return header_matches(run, rec, &run->rules[columns]);
}

static int validate_csv(struct run *run, int fd, struct validate_report *rep, struct mesh_err *err)
{
	struct stat st;
	if (fstat(fd, &st))
		return mesh_errf(err, -errno, "%s: %s", run->file, strerror(errno));
	size_t size = (size_t)st.st_size;
	const char *map = "";
	if (run->opts->stream)
		return validate_csv_stream(run, fd, rep, err);
	if (size) {
		void *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (m == MAP_FAILED)
			return validate_csv_stream(run, fd, rep, err);
		map = m;
		madvise(m, size, MADV_SEQUENTIAL);
	}
	rep->bytes = size;
	struct csv_reader *rd = csv_reader_span(map, size, run->file, 0, size, 1, 0);
	struct csv_record rec;
	struct mesh_err perr = {0};
	int rc = csv_next(rd, &rec, &perr);
	const struct contract_object *obj = run->obj;
	size_t format = run->n_rules;   /* header_record adds it first */
	if (!header_record(run, rc, &rec, &perr)) {
		csv_reader_free(rd);
		if (size)
			munmap((void *)map, size);
		return 0;
	}
	uint64_t data_start = csv_reader_pos(rd), line = csv_reader_line(rd);
	csv_reader_free(rd);
	size_t ragged = run->n_rules;
	add_rule(run, "row_shape", "format", NULL, true, -1);
	plan_rules(run, false);   /* no rule is added after this: rule pointers stay valid */
	for (size_t k = 0; k < run->n_rules; k++)
		if (run->rules[k].uniq) {
			unique_free(run->rules[k].uniq);
			run->rules[k].uniq = NULL;
			run->rules[k].fps = fpset_new(run->opts->unique_memory, run->opts->tmpdir);
		}

	unsigned threads = validate_threads(run->opts);
	struct csv_job job = {.run = run, .map = map, .size = size, .ragged = ragged, .page = sysconf(_SC_PAGESIZE)};
	job.cols = xcalloc(run->n_cols + 1, sizeof *job.cols);
	for (size_t i = 0; i < run->n_cols; i++) {
		job.cols[i].type = run->type_rule[i] >= 0 ? obj->props[i].type : LT_ANY;
		job.cols[i].nulls = run->required_rule[i] >= 0 || run->col_null_rules[i][0] >= 0;
		job.cols[i].values = run->col_rules[i][0] >= 0;
		job.cols[i].pk = run->pk_rule >= 0 && obj->props[i].primary_key;
	}
	pthread_mutex_init(&job.lock, NULL);
	size_t n = plan_chunks(&job, data_start, threads, run->opts->chunk_bytes);
	pthread_t tid[VALIDATE_MAX_THREADS];
	unsigned started = 0;
	for (unsigned i = 1; i < threads && i < n; i++)
		if (pthread_create(&tid[started], NULL, chunk_worker, &job) == 0)
			started++;
	chunk_worker(&job);
	for (unsigned i = 0; i < started; i++)
		pthread_join(tid[i], NULL);

	/* merge in file order; a chunk that did not start where the one
	 * before it ended is read again from there */
	uint64_t pos = data_start, rows = 1;   /* the header is row 1 */
	bool stopped = false;
	for (size_t i = 0; i < n; i++) {
		struct chunk *c = &job.chunks[i];
		if (stopped || c->stop <= pos) {
			chunk_end(c, true);
			continue;
		}
		if (c->start != pos) {
			chunk_end(c, true);
			c->start = pos;
			chunk_scan(&job, c);
		}
		c->line_base = line - 1;
		c->row_base = rows;
		chunk_merge(run, c);
		pos = c->end;
		line += c->end_line - 1;
		rows += c->rows;
		if (c->error) {
			/* the message again, with the file's line numbers */
			struct csv_reader *er = csv_reader_span(map, size, run->file, c->error_offset, size,
								c->line_base + c->error_line, rows - 1);
			struct csv_record bad;
			if (csv_next(er, &bad, &perr) >= 0)
				snprintf(perr.msg, sizeof perr.msg, "%s: malformed record at byte %llu", run->file,
					 (unsigned long long)c->error_offset);
			csv_reader_free(er);
			fail_rule(&run->rules[format], 0, 0, NULL, NULL, 0, perr.msg);
			stopped = true;
		}
	}
	run->rows = rows - 1;
	for (size_t k = 0; k < run->n_rules; k++)
		if (run->rules[k].fps)
			finish_unique(&job, &run->rules[k], threads);
	for (size_t i = 0; i < n; i++)
		chunk_end(&job.chunks[i], false);
	free(job.chunks);
	free(job.cols);
	pthread_mutex_destroy(&job.lock);
	if (size)
		munmap((void *)map, size);
	return 0;
}

/* The header against the contract's columns; false (and the rule failed) if not. */
static bool header_matches(struct run *run, const struct csv_record *rec, struct rule *columns)
{
	const struct contract_object *obj = run->obj;
	bool header_ok = rec->n == run->n_cols || run->n_cols == 0;
	for (size_t i = 0; header_ok && i < run->n_cols; i++)
		header_ok = strlen(obj->props[i].name) == rec->fields[i].len &&
			    !memcmp(obj->props[i].name, rec->fields[i].ptr, rec->fields[i].len);
	if (header_ok)
		return true;
	struct strbuf got = STRBUF_INIT, want = STRBUF_INIT;
	for (size_t i = 0; i < rec->n; i++)
		strbuf_printf(&got, "%s%.*s", i ? "," : "", (int)rec->fields[i].len, rec->fields[i].ptr);
	for (size_t i = 0; i < run->n_cols; i++)
		strbuf_printf(&want, "%s%s", i ? "," : "", obj->props[i].name);
	char **names = xcalloc(rec->n + 1, sizeof *names);
	for (size_t i = 0; i < rec->n; i++)
		names[i] = xstrndup(rec->fields[i].ptr, rec->fields[i].len);
	char *hint = name_hint_columns((const char *const *)names, rec->n, (const char *const *)run->col_names,
				       run->n_cols);
	char *msg = xmalloc(got.len + want.len + strlen(hint) + 64);
	sprintf(msg, "header is \"%s\", the contract's columns are \"%s\"%s", got.buf ? got.buf : "",
		want.buf ? want.buf : "", hint);
	for (size_t i = 0; i < rec->n; i++)
		free(names[i]);
	free(names);
	free(hint);
	fail_rule(columns, rec->line, rec->row, NULL, NULL, 0, msg);
	free(msg);
	strbuf_release(&got);
	strbuf_release(&want);
	return false;
}

/* The same checks streaming from the fd, for a file that cannot be mapped. */
static int validate_csv_stream(struct run *run, int fd, struct validate_report *rep, struct mesh_err *err)
{
	struct csv_reader *rd = csv_reader_fd(fd, run->file, 0);
	csv_reader_set_progress(rd, run->opts->progress);
	struct csv_record rec;
	struct mesh_err perr = {0};
	int rc = csv_next(rd, &rec, &perr);
	const struct contract_object *obj = run->obj;
	size_t format = run->n_rules;   /* header_record adds it first */
	if (!header_record(run, rc, &rec, &perr)) {
		rep->rows = 0;
		csv_reader_free(rd);
		return 0;
	}
	size_t ragged = run->n_rules;
	add_rule(run, "row_shape", "format", NULL, true, -1);
	plan_rules(run, false);   /* no rule is added after this: rule pointers stay valid */
	while ((rc = csv_next(rd, &rec, &perr)) == 1) {
		run->rows++;
		if (run->n_cols && rec.n != run->n_cols) {
			char msg[96];
			snprintf(msg, sizeof msg, "%zu fields, the header has %zu", rec.n, run->n_cols);
			fail_rule(&run->rules[ragged], rec.line, rec.row, NULL, NULL, 0, msg);
			continue;
		}
		run->key.len = 0;
		for (size_t i = 0; i < run->n_cols; i++) {
			const struct csv_field *f = &rec.fields[i];
			check_field(run, i, f->ptr, f->len, f->len == 0, rec.line, rec.row, err);
			if (run->pk_rule >= 0 && obj->props[i].primary_key)
				add_pk_part(run, f->ptr, f->len);
		}
		if (run->pk_rule >= 0)
			unique_add(run->rules[run->pk_rule].uniq, run->key.buf ? run->key.buf : "", run->key.len,
				   rec.line, rec.row, dup_found, &run->rules[run->pk_rule], err);
	}
	if (rc < 0)
		fail_rule(&run->rules[format], 0, 0, NULL, NULL, 0, perr.msg);
	rep->bytes = csv_bytes(rd);
	csv_reader_free(rd);
	return 0;
}

/* ---- JSON Lines ---- */

static int validate_jsonl(struct run *run, int fd, struct validate_report *rep, struct mesh_err *err)
{
	const struct contract_object *obj = run->obj;
	run->n_cols = obj->n_props;
	run->col_names = xcalloc(run->n_cols + 1, sizeof *run->col_names);
	for (size_t i = 0; i < run->n_cols; i++)
		run->col_names[i] = obj->props[i].name;
	add_rule(run, "format", "format", NULL, true, -1);
	add_rule(run, "columns", "columns", NULL, false, -1);
	plan_rules(run, true);   /* no rule is added after this: rule pointers stay valid */
	struct rule *format = &run->rules[0], *keys = &run->rules[1];
	FILE *f = fdopen(dup(fd), "r");
	if (!f)
		return mesh_errf(err, -errno, "%s: %s", run->file, strerror(errno));
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	uint64_t lineno = 0;
	while ((n = getline(&line, &cap, f)) > 0) {
		lineno++;
		rep->bytes += (uint64_t)n;
		progress_add(run->opts->progress, (uint64_t)n);
		if ((size_t)n > CSV_MAX_RECORD) {
			fail_rule(format, lineno, lineno, NULL, NULL, 0, "line longer than 16 MiB");
			continue;
		}
		size_t len = (size_t)n;
		while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			len--;
		if (len == 0)
			continue;   /* blank lines are allowed between records */
		run->rows++;
		size_t bad;
		if (!utf8_valid((unsigned char *)line, len, &bad)) {
			fail_rule(format, lineno, run->rows, NULL, NULL, 0, "invalid UTF-8");
			continue;
		}
		json_error_t jerr;
		json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_DISABLE_EOF_CHECK, &jerr);
		if (!o || !json_is_object(o) || jerr.position < (int)len) {
			char msg[200];
			snprintf(msg, sizeof msg, "not a JSON object: %s", o ? "one object per line" : jerr.text);
			fail_rule(format, lineno, run->rows, NULL, line, len, msg);
			json_decref(o);
			continue;
		}
		const char *key;
		json_t *value;
		json_object_foreach(o, key, value) {
			if (run->n_cols && col_index(run, key) < 0)
				fail_rule(keys, lineno, run->rows, key, NULL, 0, "key not in the contract's schema");
		}
		run->key.len = 0;
		for (size_t i = 0; i < run->n_cols; i++) {
			json_t *v = json_object_get(o, run->col_names[i]);
			enum logical_type t = obj->props[i].type;
			if (!v || json_is_null(v)) {
				check_field(run, i, NULL, 0, true, lineno, run->rows, err);
				continue;
			}
			bool ok;
			switch (t) {
			case LT_INTEGER: ok = json_is_integer(v); break;
			case LT_NUMBER: ok = json_is_number(v); break;
			case LT_BOOLEAN: ok = json_is_boolean(v); break;
			case LT_STRING: case LT_DATE: case LT_TIMESTAMP: ok = json_is_string(v); break;
			case LT_OBJECT: ok = json_is_object(v); break;
			case LT_ARRAY: ok = json_is_array(v); break;
			default: ok = true;
			}
			char *text = json_is_string(v) ? NULL : json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
			const char *s = text ? text : json_string_value(v);
			size_t sl = text ? strlen(text) : json_string_length(v);
			if (!ok) {
				char msg[64];
				snprintf(msg, sizeof msg, "not a JSON %s", logical_type_name(t));
				fail_rule(&run->rules[run->type_rule[i]], lineno, run->rows, run->col_names[i], s, sl, msg);
			} else {
				/* the JSON type is right: check the text (dates, rules) */
				int saved = run->type_rule[i];
				if (t != LT_DATE && t != LT_TIMESTAMP)
					run->type_rule[i] = -1;
				check_field(run, i, s, sl, false, lineno, run->rows, err);
				run->type_rule[i] = saved;
			}
			if (run->pk_rule >= 0 && obj->props[i].primary_key)
				add_pk_part(run, s, sl);
			free(text);
		}
		if (run->pk_rule >= 0)
			unique_add(run->rules[run->pk_rule].uniq, run->key.buf ? run->key.buf : "", run->key.len,
				   lineno, run->rows, dup_found, &run->rules[run->pk_rule], err);
		json_decref(o);
	}
	free(line);
	fclose(f);
	if (lineno == 0)
		fail_rule(format, 1, 0, NULL, NULL, 0, "empty file: no records");
	return 0;
}

/* ---- Parquet ---- */

/* Does a Parquet column hold the contract's type? */
static bool parquet_type_fits(const struct contract_property *p, const struct parquet_column *col)
{
	if (p->physical_type) {
		static const char *names[] = {"BOOLEAN", "INT32", "INT64", "INT96", "FLOAT", "DOUBLE", "BYTE_ARRAY",
					      "FIXED_LEN_BYTE_ARRAY"};
		for (size_t k = 0; k < sizeof names / sizeof *names; k++)
			if (!strcasecmp(p->physical_type, names[k]) && (size_t)col->physical != k)
				return false;
	}
	switch (p->type) {
	case LT_ANY: return true;
	case LT_NUMBER: return col->logical == LT_NUMBER || col->logical == LT_INTEGER;
	case LT_OBJECT: case LT_ARRAY: return !col->flat;
	default: return col->logical == p->type && col->flat;
	}
}

/* Rules of column i judged from the footer's statistics instead of the
 * values: nulls from null counts, bounds and freshness from min/max. */
static bool parquet_stats_can(const struct run *run, size_t i, const struct parquet_column *col)
{
	for (const int *k = run->col_rules[i]; *k >= 0; k++) {
		enum quality_kind q = run->rules[*k].qkind;
		if (!((q == Q_MIN || q == Q_MAX || q == Q_FRESHNESS) && col->has_min_max))
			return false;
	}
	bool nulls = run->required_rule[i] >= 0 || run->col_null_rules[i][0] >= 0;
	return !nulls || col->has_null_count || !col->optional;
}

static void parquet_fail_nulls(struct rule *r, const struct parquet_column *col, const char *msg)
{
	fail_rule(r, 0, 0, col->name, NULL, 0, msg);
	r->res.failures = (uint64_t)col->null_count;
}

static void parquet_from_stats(struct run *run, size_t i, const struct parquet_column *col, bool note_source)
{
	int64_t nulls = col->optional ? col->null_count : 0;
	char msg[200];
	bool known = col->has_null_count || !col->optional;
	snprintf(msg, sizeof msg, "%lld null values (Parquet column statistics)", (long long)nulls);
	if (run->required_rule[i] >= 0) {
		struct rule *r = &run->rules[run->required_rule[i]];
		if (!known) {
			r->res.checked = false;
			r->res.note = xstrdup("not checked: the Parquet file has no null counts for this column and "
					      "its values cannot be decoded");
		} else if (nulls > 0) {
			parquet_fail_nulls(r, col, msg);
		}
	}
	for (const int *k = run->col_null_rules[i]; *k >= 0; k++) {
		struct rule *r = &run->rules[*k];
		if (!known) {
			r->res.checked = false;
			r->res.note = xstrdup("not checked: no Parquet null counts for this column");
		} else if (nulls > 0) {
			parquet_fail_nulls(r, col, msg);
		}
	}
	for (const int *k = run->col_rules[i]; *k >= 0; k++) {
		struct rule *r = &run->rules[*k];
		bool stat_kind = r->qkind == Q_MIN || r->qkind == Q_MAX || r->qkind == Q_FRESHNESS;
		if (!stat_kind || !col->has_min_max) {
			r->res.checked = false;
			snprintf(msg, sizeof msg, "not checked: Parquet column %s: %s", col->name,
				 col->unsupported ? col->unsupported : "values not decoded and no statistics");
			free(r->res.note);
			r->res.note = xstrdup(msg);
			continue;
		}
		if (note_source && !r->res.note)
			r->res.note = xstrdup("from Parquet column statistics");
		if (r->qkind == Q_FRESHNESS) {
			time_t t;
			if (parse_timestamp(col->max_text, strlen(col->max_text), &t)) {
				r->freshest = t;
				r->seen_freshness = true;
			}
			continue;
		}
		/* the bound is checked against the statistic as if it were a value */
		const char *v = r->qkind == Q_MIN ? col->min_text : col->max_text;
		int only[2] = {*k, -1};
		int *saved = run->col_rules[i];
		run->col_rules[i] = only;
		struct mesh_err ignored = {0};
		check_value(run, i, v, strlen(v), 0, 0, &ignored);
		run->col_rules[i] = saved;
	}
}

static int validate_parquet(struct run *run, int fd, struct validate_report *rep, struct mesh_err *err)
{
	struct rule *format = add_rule(run, "format", "format", NULL, true, -1);
	struct parquet_file *pf = NULL;
	struct mesh_err perr = {0};
	off_t size = lseek(fd, 0, SEEK_END);
	rep->bytes = size > 0 ? (uint64_t)size : 0;
	if (parquet_open(fd, run->file, &pf, &perr)) {
		/* the report names the file already */
		size_t fl = strlen(run->file);
		const char *msg = !strncmp(perr.msg, run->file, fl) && !strncmp(perr.msg + fl, ": ", 2) ? perr.msg + fl + 2
												: perr.msg;
		fail_rule(format, 0, 0, NULL, NULL, 0, msg);
		return 0;
	}
	const struct contract_object *obj = run->obj;
	size_t columns = run->n_rules;
	add_rule(run, "columns", "columns", NULL, true, -1);
	size_t ncols = parquet_num_columns(pf);
	bool same = ncols == obj->n_props || obj->n_props == 0;
	for (size_t i = 0; same && i < obj->n_props; i++)
		same = !strcmp(parquet_column_at(pf, i)->name, obj->props[i].name);
	run->rows = (uint64_t)parquet_num_rows(pf);
	if (!same) {
		struct strbuf got = STRBUF_INIT, want = STRBUF_INIT;
		for (size_t i = 0; i < ncols; i++)
			strbuf_printf(&got, "%s%s", i ? "," : "", parquet_column_at(pf, i)->name);
		for (size_t i = 0; i < obj->n_props; i++)
			strbuf_printf(&want, "%s%s", i ? "," : "", obj->props[i].name);
		char *msg = xmalloc(got.len + want.len + 80);
		sprintf(msg, "the Parquet columns are \"%s\", the contract's columns are \"%s\"", got.buf ? got.buf : "",
			want.buf ? want.buf : "");
		fail_rule(&run->rules[columns], 0, 0, NULL, NULL, 0, msg);
		free(msg);
		strbuf_release(&got);
		strbuf_release(&want);
		parquet_close(pf);
		return 0;
	}
	run->n_cols = obj->n_props;
	run->col_names = xcalloc(run->n_cols + 1, sizeof *run->col_names);
	for (size_t i = 0; i < run->n_cols; i++)
		run->col_names[i] = obj->props[i].name;
	plan_rules(run, true);   /* no rule is added after this: rule pointers stay valid */
	format = &run->rules[0];
	/* types are the schema's: judged once, not per value */
	for (size_t i = 0; i < run->n_cols; i++) {
		const struct parquet_column *col = parquet_column_at(pf, i);
		if (run->type_rule[i] < 0)
			continue;
		struct rule *r = &run->rules[run->type_rule[i]];
		if (!parquet_type_fits(&obj->props[i], col)) {
			char msg[300];
			snprintf(msg, sizeof msg, "Parquet column %s is %s%s, the contract says %s%s%s", col->name,
				 col->type_text, col->flat ? "" : " (nested)", logical_type_name(obj->props[i].type),
				 obj->props[i].physical_type ? " / " : "",
				 obj->props[i].physical_type ? obj->props[i].physical_type : "");
			fail_rule(r, 0, 0, col->name, NULL, 0, msg);
		} else {
			char note[100];
			snprintf(note, sizeof note, "Parquet %s%s", col->type_text, col->optional ? ", optional" : "");
			r->res.note = xstrdup(note);
		}
		run->type_rule[i] = -1;
	}
	/* which columns need their values decoded */
	struct parquet_cursor **cur = xcalloc(run->n_cols + 1, sizeof *cur);
	size_t decoding = 0;
	for (size_t i = 0; i < run->n_cols; i++) {
		const struct parquet_column *col = parquet_column_at(pf, i);
		bool pk = run->pk_rule >= 0 && obj->props[i].primary_key;
		if (!pk && parquet_stats_can(run, i, col)) {
			parquet_from_stats(run, i, col, true);
			continue;
		}
		if (parquet_cursor_open(pf, i, &cur[i], &perr)) {
			parquet_from_stats(run, i, col, true);
			if (pk) {
				struct rule *r = &run->rules[run->pk_rule];
				r->res.checked = false;
				free(r->res.note);
				r->res.note = xstrdup(perr.msg);
			}
			continue;
		}
		decoding++;
	}
	/* one pass over the rows, every decoded column in step; progress in
	 * shares of the file per 64 Ki rows (pages are read by the cursors) */
	off_t pq_size = lseek(fd, 0, SEEK_END);
	uint64_t pq_counted = 0;
	for (uint64_t row = 1; decoding && row <= run->rows; row++) {
		if ((row & 0xffff) == 0 && pq_size > 0) {
			uint64_t at = (uint64_t)((double)pq_size * (double)row / (double)run->rows);
			progress_add(run->opts->progress, at - pq_counted);
			pq_counted = at;
		}
		run->key.len = 0;
		for (size_t i = 0; i < run->n_cols; i++) {
			if (!cur[i])
				continue;
			const char *v;
			size_t n;
			bool is_null;
			int rc = parquet_cursor_next(cur[i], &v, &n, &is_null, &perr);
			if (rc <= 0) {
				fail_rule(format, 0, row, obj->props[i].name, NULL, 0,
					  rc < 0 ? perr.msg : "column ends before the row count");
				row = run->rows;
				break;
			}
			check_field(run, i, v, n, is_null, 0, row, err);
			if (run->pk_rule >= 0 && obj->props[i].primary_key)
				add_pk_part(run, v ? v : "", n);
		}
		if (run->pk_rule >= 0 && run->rules[run->pk_rule].res.checked)
			unique_add(run->rules[run->pk_rule].uniq, run->key.buf ? run->key.buf : "", run->key.len, 0, row,
				   dup_found, &run->rules[run->pk_rule], err);
	}
	if (pq_size > 0 && (uint64_t)pq_size > pq_counted)
		progress_add(run->opts->progress, (uint64_t)pq_size - pq_counted);
	for (size_t i = 0; i < run->n_cols; i++)
		parquet_cursor_free(cur[i]);
	free(cur);
	parquet_close(pf);
	return 0;
}

/* ---- entry points ---- */

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && !strcasecmp(s + n - m, suffix);
}

int validate_file(const struct contract *c, const struct contract_object *obj, int dirfd,
		  const char *file, const struct validate_options *opts,
		  struct validate_report **out, struct mesh_err *err)
{
	*out = NULL;
	struct validate_options defaults = {0};
	if (!opts)
		opts = &defaults;
	int fd = mesh_open_regular_at(dirfd, file, O_RDONLY, 0, NULL);
	if (fd < 0)
		return mesh_errf(err, fd, "%s: %s", file, mesh_open_strerror(fd));
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	struct validate_report *rep = xcalloc(1, sizeof *rep);
	rep->file = xstrdup(file);
	struct run run = {.c = c, .obj = obj, .opts = opts, .file = file, .pk_rule = -1};
	int rc = 0;
	if (has_suffix(file, ".csv")) {
		rep->format = xstrdup("csv");
		rep->checked = true;
		rc = validate_csv(&run, fd, rep, err);
	} else if (has_suffix(file, ".parquet")) {
		rep->format = xstrdup("parquet");
		rep->checked = true;
		rc = validate_parquet(&run, fd, rep, err);
	} else if (has_suffix(file, ".jsonl") || has_suffix(file, ".ndjson")) {
		rep->format = xstrdup("jsonl");
		rep->checked = true;
		rc = validate_jsonl(&run, fd, rep, err);
	} else {
		rep->format = xstrdup("opaque");
		rep->checked = false;
		off_t size = lseek(fd, 0, SEEK_END);
		rep->bytes = size > 0 ? (uint64_t)size : 0;
		progress_add(opts->progress, rep->bytes);
		if (size == 0) {
			struct rule *r = add_rule(&run, "format", "format", NULL, true, -1);
			fail_rule(r, 0, 0, NULL, NULL, 0, "empty file");
		}
	}
	if (!rc)
		finish_rules(&run, err);
	/* SQL rules: over the whole file in embedded SQLite, once loaded */
	struct sqlrule_session *sql = NULL;
	for (size_t i = 0; !rc && i < run.n_rules; i++)
		if (run.rules[i].qkind == Q_SQL && run.rules[i].q) {
			if (!sql)
				sql = sqlrule_session_new(obj, dirfd, file, opts->sql_max_bytes);
			sqlrule_judge(sql, run.rules[i].q, &run.rules[i].res);
		}
	sqlrule_session_free(sql);
	close(fd);
	rep->rows = run.rows;
	rep->n_rules = run.n_rules;
	rep->rules = xcalloc(run.n_rules + 1, sizeof *rep->rules);
	for (size_t i = 0; i < run.n_rules; i++) {
		rep->rules[i] = run.rules[i].res;
		pcre2_match_data_free(run.rules[i].md);
		pcre2_code_free(run.rules[i].re);
		unique_free(run.rules[i].uniq);
		fpset_free(run.rules[i].fps);
	}
	free(run.rules);
	free(run.type_rule);
	free(run.required_rule);
	for (size_t i = 0; run.col_rules && i < run.n_cols; i++) {
		free(run.col_rules[i]);
		free(run.col_null_rules[i]);
	}
	free(run.col_rules);
	free(run.col_null_rules);
	free(run.col_names);
	strbuf_release(&run.key);
	if (rc) {
		validate_report_free(rep);
		return rc;
	}
	*out = rep;
	return 0;
}

void validate_report_free(struct validate_report *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_rules; i++) {
		struct validate_rule_result *x = &r->rules[i];
		free(x->id);
		free(x->kind);
		free(x->column);
		free(x->note);
		for (size_t k = 0; k < x->n_examples; k++) {
			free(x->examples[k].column);
			free(x->examples[k].value);
			free(x->examples[k].message);
		}
	}
	free(r->rules);
	free(r->file);
	free(r->format);
	free(r);
}

bool validate_report_failed(const struct validate_report *r)
{
	for (size_t i = 0; i < r->n_rules; i++)
		if (r->rules[i].required && !r->rules[i].passed)
			return true;
	return false;
}

char *validate_report_text(const struct validate_report *r, bool failures_only)
{
	struct strbuf sb = STRBUF_INIT;
	for (size_t i = 0; i < r->n_rules; i++) {
		const struct validate_rule_result *x = &r->rules[i];
		if (failures_only && x->checked && x->passed)
			continue;
		const char *state = !x->checked ? "not checked" : x->passed ? "ok" : x->required ? "FAILED" : "warning";
		strbuf_printf(&sb, "%s%s: %s", sb.len ? "\n" : "", x->id, state);
		if (x->failures)
			strbuf_printf(&sb, " (%llu %s)", (unsigned long long)x->failures,
				      x->failures == 1 ? "failure" : "failures");
		if (x->note)
			strbuf_printf(&sb, " - %s", x->note);
		for (size_t k = 0; k < x->n_examples; k++) {
			const struct validate_failure *f = &x->examples[k];
			strbuf_printf(&sb, "\n  %s", r->file);
			if (f->line)
				strbuf_printf(&sb, ":%llu", (unsigned long long)f->line);
			if (f->row)
				strbuf_printf(&sb, " row %llu", (unsigned long long)f->row);
			if (f->column)
				strbuf_printf(&sb, " column %s", f->column);
			if (f->value)
				strbuf_printf(&sb, " value \"%s\"", f->value);
			strbuf_printf(&sb, ": %s", f->message);
		}
		if (x->failures > x->n_examples)
			strbuf_printf(&sb, "\n  ... and %llu more", (unsigned long long)(x->failures - x->n_examples));
	}
	return strbuf_detach(&sb, NULL);
}

void *validate_report_json(const struct validate_report *r)
{
	json_t *root = json_object();
	json_object_set_new(root, "file", json_string(r->file));
	json_object_set_new(root, "format", json_string(r->format));
	json_object_set_new(root, "content_checked", json_boolean(r->checked));
	json_object_set_new(root, "rows", json_integer((json_int_t)r->rows));
	json_object_set_new(root, "bytes", json_integer((json_int_t)r->bytes));
	json_object_set_new(root, "passed", json_boolean(!validate_report_failed(r)));
	json_t *rules = json_array();
	for (size_t i = 0; i < r->n_rules; i++) {
		const struct validate_rule_result *x = &r->rules[i];
		json_t *jr = json_object();
		json_object_set_new(jr, "rule", json_string(x->id));
		json_object_set_new(jr, "kind", json_string(x->kind));
		if (x->column)
			json_object_set_new(jr, "column", json_string(x->column));
		json_object_set_new(jr, "severity", json_string(x->required ? "error" : "warning"));
		json_object_set_new(jr, "checked", json_boolean(x->checked));
		json_object_set_new(jr, "passed", json_boolean(x->passed));
		json_object_set_new(jr, "failures", json_integer((json_int_t)x->failures));
		if (x->note)
			json_object_set_new(jr, "note", json_string(x->note));
		if (x->n_examples) {
			json_t *ex = json_array();
			for (size_t k = 0; k < x->n_examples; k++) {
				const struct validate_failure *f = &x->examples[k];
				json_t *je = json_object();
				if (f->line)
					json_object_set_new(je, "line", json_integer((json_int_t)f->line));
				if (f->row)
					json_object_set_new(je, "row", json_integer((json_int_t)f->row));
				if (f->column)
					json_object_set_new(je, "column", json_string(f->column));
				if (f->value)
					json_object_set_new(je, "value", json_string(f->value));
				json_object_set_new(je, "message", json_string(f->message));
				json_array_append_new(ex, je);
			}
			json_object_set_new(jr, "examples", ex);
		}
		json_array_append_new(rules, jr);
	}
	json_object_set_new(root, "rules", rules);
	return root;
}
