/*
 * semver_range.c - SemVer ranges for declared inputs (lineage.h):
 * lineage_range_check and lineage_range_match.
 *
 * The syntax is npm's, which most people who write ranges know: a range is
 * alternatives joined by "||"; an alternative is comparators joined by
 * spaces, all of which must hold; a comparator is an operator (=, <, <=, >,
 * >=, ^, ~ or none) and a version that may be partial (1, 1.2) or use
 * wildcards (1.x, 1.2.*, *).  Each comparator is rewritten into at most two
 * plain bounds on full versions, then evaluated with semver_cmp.
 *
 * Not here: hyphen ranges ("1.0.0 - 2.0.0": write ">=1.0.0 <=2.0.0"),
 * loose versions ("v1.2"), build metadata in bounds (ignored, as SemVer
 * says).
 */
#include "lineage.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh_util.h"

#define RANGE_MAX_TEXT 127
#define RANGE_MAX_BOUNDS 32     /* per alternative: more is an error, never a silent drop */

enum bound_op { B_EQ, B_LT, B_LE, B_GT, B_GE, B_NONE /* matches nothing */ };

struct bound {
	enum bound_op op;
	struct semver v;
	bool explicit_pre;      /* the range itself names a pre-release here */
};

struct partial {
	long major, minor, patch;   /* -1: wildcard or absent */
	char prerelease[128];
};

static int parse_number(const char **p, long *out)
{
	const char *s = *p;
	if (*s == 'x' || *s == 'X' || *s == '*') {
		*out = -1;
		*p = s + 1;
		return 0;
	}
	if (!isdigit((unsigned char)*s) || (s[0] == '0' && isdigit((unsigned char)s[1])))
		return -EINVAL;
	long v = 0;
	while (isdigit((unsigned char)*s)) {
		if (v > 100000000L)
			return -EINVAL;
		v = v * 10 + (*s++ - '0');
	}
	*out = v;
	*p = s;
	return 0;
}

static int parse_partial(const char *text, struct partial *out)
{
	memset(out, 0, sizeof *out);
	out->major = out->minor = out->patch = -1;
	const char *p = text;
	if (!*p)
		return 0;                 /* "" like "*" */
	long *parts[3] = {&out->major, &out->minor, &out->patch};
	for (int i = 0; i < 3; i++) {
		if (parse_number(&p, parts[i]))
			return -EINVAL;
		if (i > 0 && *parts[i - 1] < 0 && *parts[i] >= 0)
			return -EINVAL;  /* 1.x.3 */
		if (*p != '.')
			break;
		p++;
	}
	if (*p == '-') {
		if (out->patch < 0)
			return -EINVAL;
		size_t n = strcspn(p + 1, "+");
		if (n == 0 || n >= sizeof out->prerelease)
			return -EINVAL;
		memcpy(out->prerelease, p + 1, n);
		out->prerelease[n] = '\0';
		for (size_t i = 0; i < n; i++)
			if (!isalnum((unsigned char)out->prerelease[i]) && out->prerelease[i] != '.' &&
			    out->prerelease[i] != '-')
				return -EINVAL;
		p += 1 + n;
	}
	if (*p == '+') {
		if (out->patch < 0 || !p[1])
			return -EINVAL;
		for (p++; *p; p++)
			if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-')
				return -EINVAL;
	}
	return *p ? -EINVAL : 0;
}

static struct semver sv(long major, long minor, long patch, const char *pre)
{
	struct semver v = {0};
	v.major = (uint64_t)(major < 0 ? 0 : major);
	v.minor = (uint64_t)(minor < 0 ? 0 : minor);
	v.patch = (uint64_t)(patch < 0 ? 0 : patch);
	snprintf(v.prerelease, sizeof v.prerelease, "%s", pre ? pre : "");
	return v;
}

struct alternative {
	struct bound b[RANGE_MAX_BOUNDS];
	size_t n;
};

static int add_bound(struct alternative *alt, enum bound_op op, struct semver v, bool explicit_pre)
{
	if (alt->n >= RANGE_MAX_BOUNDS)
		return -E2BIG;
	alt->b[alt->n++] = (struct bound){op, v, explicit_pre};
	return 0;
}

/* The smallest version above every version matching the partial: the
 * exclusive upper bound of 1 is 2.0.0-0, of 1.2 is 1.3.0-0. */
static struct semver next_after(const struct partial *p)
{
	if (p->minor < 0)
		return sv(p->major + 1, 0, 0, "0");
	if (p->patch < 0)
		return sv(p->major, p->minor + 1, 0, "0");
	return sv(p->major, p->minor, p->patch + 1, "0");
}

static int add_comparator(struct alternative *alt, const char *op, const struct partial *p)
{
	bool full = p->patch >= 0, pre = p->prerelease[0] != '\0';
	struct semver lo = sv(p->major, p->minor, p->patch, p->prerelease);
	int rc = 0;
	if (p->major < 0) {                       /* *, x, >=*: any; <*, >*: none */
		if (!strcmp(op, "<") || !strcmp(op, ">"))
			rc = add_bound(alt, B_NONE, lo, false);
		return rc;
	}
	if (!strcmp(op, "") || !strcmp(op, "=")) {
		if (full)
			return add_bound(alt, B_EQ, lo, pre);
		rc = add_bound(alt, B_GE, lo, false);
		return rc ? rc : add_bound(alt, B_LT, next_after(p), false);
	}
	if (!strcmp(op, "^")) {
		struct semver hi;
		if (p->major > 0 || p->minor < 0)
			hi = sv(p->major + 1, 0, 0, "0");
		else if (p->minor > 0 || p->patch < 0)
			hi = sv(0, p->minor + 1, 0, "0");
		else
			hi = sv(0, 0, p->patch + 1, "0");
		rc = add_bound(alt, B_GE, lo, pre);
		return rc ? rc : add_bound(alt, B_LT, hi, false);
	}
	if (!strcmp(op, "~")) {
		struct semver hi = p->minor < 0 ? sv(p->major + 1, 0, 0, "0") : sv(p->major, p->minor + 1, 0, "0");
		rc = add_bound(alt, B_GE, lo, pre);
		return rc ? rc : add_bound(alt, B_LT, hi, false);
	}
	if (!strcmp(op, ">="))
		return add_bound(alt, B_GE, lo, pre);
	if (!strcmp(op, ">"))
		return full ? add_bound(alt, B_GT, lo, pre) : add_bound(alt, B_GE, next_after(p), false);
	if (!strcmp(op, "<"))
		return add_bound(alt, B_LT, full ? lo : sv(p->major, p->minor, 0, "0"), pre);
	if (!strcmp(op, "<="))
		return full ? add_bound(alt, B_LE, lo, pre) : add_bound(alt, B_LT, next_after(p), false);
	return -EINVAL;
}

/* Parse one alternative (text without "||"). */
static int parse_alternative(char *text, struct alternative *alt, struct mesh_err *err, const char *whole)
{
	alt->n = 0;
	char *save = NULL;
	for (char *tok = strtok_r(text, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
		size_t oplen = strspn(tok, "<>=^~");
		char op[3] = "";
		if (oplen > 2)
			return mesh_errf(err, -EINVAL, "version range \"%s\": operator %.*s not understood", whole,
					 (int)oplen, tok);
		memcpy(op, tok, oplen);
		op[oplen] = '\0';
		const char *known[] = {"", "=", "<", "<=", ">", ">=", "^", "~"};
		bool ok = false;
		for (size_t i = 0; i < sizeof known / sizeof *known; i++)
			ok |= !strcmp(op, known[i]);
		if (!ok)
			return mesh_errf(err, -EINVAL, "version range \"%s\": operator %s not understood", whole, op);
		if (!strcmp(tok, "-"))
			return mesh_errf(err, -EINVAL, "version range \"%s\": hyphen ranges are not supported "
					 "(write >=A <=B)", whole);
		if (oplen && !tok[oplen])
			return mesh_errf(err, -EINVAL, "version range \"%s\": %s needs a version right after it",
					 whole, op);
		struct partial p;
		if (parse_partial(tok + oplen, &p))
			return mesh_errf(err, -EINVAL, "version range \"%s\": \"%s\" is not a version (SemVer "
					 "MAJOR.MINOR.PATCH, or 1.x, 1.2, *)", whole, tok + oplen);
		if (add_comparator(alt, op, &p))
			return mesh_errf(err, -E2BIG, "version range \"%s\": more than %d comparators", whole,
					 RANGE_MAX_BOUNDS / 2);
	}
	return 0;
}

/* Calls fn on each alternative; stops at the first error or at fn's true. */
static int each_alternative(const char *range, bool (*fn)(const struct alternative *, void *), void *ctx,
			    bool *hit, struct mesh_err *err)
{
	*hit = false;
	if (strlen(range) > RANGE_MAX_TEXT)
		return mesh_errf(err, -EINVAL, "version range: longer than %d characters", RANGE_MAX_TEXT);
	char buf[RANGE_MAX_TEXT + 1];
	snprintf(buf, sizeof buf, "%s", range);
	char *p = buf;
	struct alternative alt;
	for (;;) {
		char *bar = strstr(p, "||");
		if (bar)
			*bar = '\0';
		int rc = parse_alternative(p, &alt, err, range);
		if (rc)
			return rc;
		if (fn && fn(&alt, ctx)) {
			*hit = true;
			return 0;
		}
		if (!bar)
			return 0;
		p = bar + 2;
	}
}

int lineage_range_check(const char *range, struct mesh_err *err)
{
	bool hit;
	return each_alternative(range ? range : "", NULL, NULL, &hit, err);
}

static bool bound_holds(const struct bound *b, const struct semver *v)
{
	int c = semver_cmp(v, &b->v);
	switch (b->op) {
	case B_EQ:
		return c == 0;
	case B_LT:
		return c < 0;
	case B_LE:
		return c <= 0;
	case B_GT:
		return c > 0;
	case B_GE:
		return c >= 0;
	default:
		return false;
	}
}

static bool alternative_matches(const struct alternative *alt, void *ctx)
{
	const struct semver *v = ctx;
	bool pre_allowed = v->prerelease[0] == '\0';
	for (size_t i = 0; i < alt->n; i++) {
		if (!bound_holds(&alt->b[i], v))
			return false;
		const struct semver *b = &alt->b[i].v;
		if (alt->b[i].explicit_pre && b->major == v->major && b->minor == v->minor && b->patch == v->patch)
			pre_allowed = true;
	}
	return pre_allowed;
}

bool lineage_range_match(const char *range, const char *version)
{
	struct semver v;
	if (!version || semver_parse(version, &v))
		return false;
	bool hit = false;
	/* the whole range must parse, not only the alternatives up to a match */
	if (lineage_range_check(range, NULL) ||
	    each_alternative(range ? range : "", alternative_matches, &v, &hit, NULL))
		return false;
	return hit;
}
