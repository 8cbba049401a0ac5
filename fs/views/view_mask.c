/*
 * view_mask.c - mask functions and mask plans (contract in
 * include/view_mask.h).
 *
 * Not here: reading or writing files (view_build.c), which rule applies to
 * whom (policy.c).
 */
#include "view_mask.h"

#include <errno.h>
#include <math.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const fn_names[] = {"null", "redact", "hash", "last4", "year", "truncate", "omit"};

int view_fn_parse(const char *name, enum view_fn *out)
{
	for (size_t i = 0; i < VIEW_FN_OMIT; i++)
		if (name && !strcmp(name, fn_names[i])) {
			*out = (enum view_fn)i;
			return 0;
		}
	return -EINVAL;
}

const char *view_fn_name(enum view_fn fn)
{
	return (unsigned)fn < sizeof fn_names / sizeof *fn_names ? fn_names[fn] : "null";
}

int view_fn_strength(enum view_fn fn)
{
	switch (fn) {
	case VIEW_FN_OMIT: return 6;
	case VIEW_FN_NULL: return 5;
	case VIEW_FN_REDACT: return 4;
	case VIEW_FN_HASH: return 3;
	default: return 2;
	}
}

/* The year of "YYYY-...", "YYYY/..." or "YYYY" (a date or timestamp). */
static enum view_value apply_year(const char *v, size_t len, struct strbuf *out)
{
	if (len < 4)
		return VIEW_MISSING;
	for (int i = 0; i < 4; i++)
		if (v[i] < '0' || v[i] > '9')
			return VIEW_MISSING;
	if (len > 4 && v[4] != '-' && v[4] != '/')
		return VIEW_MISSING;
	int year = (v[0] - '0') * 1000 + (v[1] - '0') * 100 + (v[2] - '0') * 10 + (v[3] - '0');
	strbuf_printf(out, "%d", year);
	return VIEW_NUMBER;
}

static enum view_value apply_truncate(double precision, const char *v, size_t len, struct strbuf *out)
{
	char num[64];
	if (len == 0 || len >= sizeof num || !(precision > 0))
		return VIEW_MISSING;
	memcpy(num, v, len);
	num[len] = '\0';
	char *end;
	errno = 0;
	double x = strtod(num, &end);
	if (*end || errno || !isfinite(x))
		return VIEW_MISSING;
	double t = floor(x / precision) * precision;
	/* as many decimals as the precision has (1000 -> 0, 0.01 -> 2) */
	int decimals = 0;
	for (double p = precision; decimals < 12 && fabs(p - nearbyint(p)) > 1e-9 * fmax(1, fabs(p)); p *= 10)
		decimals++;
	strbuf_printf(out, "%.*f", decimals, t);
	return VIEW_NUMBER;
}

/* The last 4 characters (UTF-8 code points), after a fixed "***". */
static enum view_value apply_last4(const char *v, size_t len, struct strbuf *out)
{
	size_t start = len, chars = 0;
	while (start > 0 && chars < 5) {
		start--;
		if (((unsigned char)v[start] & 0xC0) != 0x80)
			chars++;
	}
	strbuf_puts(out, "***");
	if (chars < 5)          /* 4 characters or fewer: show none */
		return VIEW_STRING;
	/* start is at the 5th character from the end: skip it */
	start++;
	while (start < len && ((unsigned char)v[start] & 0xC0) == 0x80)
		start++;
	strbuf_add(out, v + start, len - start);
	return VIEW_STRING;
}

enum view_value view_fn_apply(enum view_fn fn, double precision, const unsigned char *secret,
			      const char *value, size_t len, struct strbuf *out)
{
	switch (fn) {
	case VIEW_FN_REDACT:
		strbuf_puts(out, "***");
		return VIEW_STRING;
	case VIEW_FN_HASH: {
		unsigned char mac[EVP_MAX_MD_SIZE];
		unsigned int mac_len = 0;
		if (!HMAC(EVP_sha256(), secret, VIEW_SECRET_LEN, (const unsigned char *)value, len, mac, &mac_len) ||
		    mac_len < 8)
			return VIEW_MISSING;
		strbuf_puts(out, "h");
		for (int i = 0; i < 8; i++)
			strbuf_printf(out, "%02x", mac[i]);
		return VIEW_STRING;
	}
	case VIEW_FN_LAST4:
		return apply_last4(value, len, out);
	case VIEW_FN_YEAR:
		return apply_year(value, len, out);
	case VIEW_FN_TRUNCATE:
		return apply_truncate(precision, value, len, out);
	case VIEW_FN_NULL:
	default:
		return VIEW_MISSING;
	}
}

struct view_plan *view_plan_new(void)
{
	return xcalloc(1, sizeof(struct view_plan));
}

void view_plan_add(struct view_plan *plan, const char *name, enum view_fn fn, double precision)
{
	for (size_t i = 0; i < plan->n; i++)
		if (!strcmp(plan->columns[i].name, name)) {
			if (view_fn_strength(fn) > view_fn_strength(plan->columns[i].fn)) {
				plan->columns[i].fn = fn;
				plan->columns[i].precision = precision;
			}
			return;
		}
	plan->columns = xrealloc(plan->columns, (plan->n + 1) * sizeof *plan->columns);
	plan->columns[plan->n++] = (struct view_column){xstrdup(name), fn, precision};
}

void view_plan_seal(struct view_plan *plan)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_puts(&sb, "");
	for (size_t i = 0; i < plan->n; i++) {
		const struct view_column *c = &plan->columns[i];
		strbuf_printf(&sb, "%s%s:%s", i ? ", " : "", c->name, view_fn_name(c->fn));
		if (c->fn == VIEW_FN_TRUNCATE)
			strbuf_printf(&sb, "(%g)", c->precision);
	}
	free(plan->text);
	plan->text = strbuf_detach(&sb, NULL);
}

void view_plan_free(struct view_plan *plan)
{
	if (!plan)
		return;
	for (size_t i = 0; i < plan->n; i++)
		free(plan->columns[i].name);
	free(plan->columns);
	free(plan->text);
	free(plan);
}
