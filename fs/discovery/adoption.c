/*
 * adoption.c - consumers of products for discovery (contract in
 * include/adoption.h): runs usage_report's consumer and product reports
 * and reads their JSON rows.
 *
 * Not here: the reports themselves (usage_report.c), who may see names.
 */
#include "adoption.h"

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mesh_util.h"
#include "state_dir.h"
#include "usage_report.h"

#define NS ((int64_t)1000000000)
#define DAY_NS (86400 * NS)

static void window(unsigned days, struct usage_query *q)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t now = (int64_t)ts.tv_sec * NS + ts.tv_nsec;
	q->until_ns = now - now % DAY_NS + DAY_NS;
	q->since_ns = q->until_ns - (int64_t)days * DAY_NS;
}

/* Run a report and give its rows as a JSON array (the caller decrefs). */
static int rows_in(const char *store, const char *state_dir, const struct usage_query *q, json_t **rows,
		   struct mesh_err *err)
{
	/* this machine's hosts (local state) and every host's shipped segments */
	char root[PATH_MAX + 16], dir[PATH_MAX], shipped[PATH_MAX + 16];
	if (state_dir_for_store(store, state_dir, false, dir, sizeof dir, NULL) == 0)
		snprintf(root, sizeof root, "%s/usage", dir);
	else
		snprintf(root, sizeof root, "%s/usage/.none", store);
	snprintf(shipped, sizeof shipped, "%s/usage", store);
	struct usage_query local = *q;
	local.shipped_root = shipped;
	struct usage_report *r = NULL;
	int rc = usage_report_run(root, &local, &r, err);
	if (rc)
		return rc;
	char *text = usage_report_format(r, USAGE_FORMAT_JSON);
	usage_report_free(r);
	json_t *doc = text ? json_loads(text, 0, NULL) : NULL;
	free(text);
	*rows = json_incref(json_object_get(doc, "rows"));
	json_decref(doc);
	if (!*rows)
		*rows = json_array();
	return 0;
}

static int rows_of(const char *store, const struct usage_query *q, json_t **rows, struct mesh_err *err)
{
	return rows_in(store, NULL, q, rows, err);
}

static const char *jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

static uint64_t jint(json_t *o, const char *key)
{
	json_int_t v = json_integer_value(json_object_get(o, key));
	return v > 0 ? (uint64_t)v : 0;
}

int adoption_consumers(const char *store, const char *domain, const char *product, unsigned days,
		       struct adoption_consumer **out, size_t *n, struct mesh_err *err)
{
	*out = NULL;
	*n = 0;
	struct usage_query q = {.domain = domain, .product = product, .by = USAGE_BY_CONSUMER};
	window(days, &q);
	json_t *rows;
	int rc = rows_of(store, &q, &rows, err);
	if (rc)
		return rc;
	size_t i;
	json_t *row;
	json_array_foreach(rows, i, row) {
		uint64_t reads = jint(row, "reads");
		if (!reads)
			continue;       /* only denied: not a consumer */
		const char *user = jstr(row, "user"), *program = jstr(row, "program");
		size_t k;
		for (k = 0; k < *n; k++)
			if (!strcmp((*out)[k].user, user))
				break;
		if (k == *n) {
			*out = xrealloc(*out, (*n + 1) * sizeof **out);
			(*out)[k] = (struct adoption_consumer){xstrdup(user), xstrdup(""), 0, xstrdup("")};
			(*n)++;
		}
		struct adoption_consumer *c = &(*out)[k];
		c->reads += reads;
		if (*program && !strstr(c->programs, program)) {
			struct strbuf sb = STRBUF_INIT;
			strbuf_printf(&sb, "%s%s%s", c->programs, *c->programs ? ", " : "", program);
			free(c->programs);
			c->programs = strbuf_detach(&sb, NULL);
		}
		const char *last = jstr(row, "last_read");
		if (strcmp(last, c->last_read) > 0) {
			free(c->last_read);
			c->last_read = xstrdup(last);
		}
	}
	json_decref(rows);
	/* most reads first (rows came per user, host and program) */
	for (size_t a = 1; a < *n; a++)
		for (size_t b = a; b > 0 && (*out)[b].reads > (*out)[b - 1].reads; b--) {
			struct adoption_consumer t = (*out)[b];
			(*out)[b] = (*out)[b - 1];
			(*out)[b - 1] = t;
		}
	return 0;
}

void adoption_consumers_free(struct adoption_consumer *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(c[i].user);
		free(c[i].programs);
		free(c[i].last_read);
	}
	free(c);
}

/* One row of a by-product report into the element at `elem`: false when
 * the row is not wanted (the element is then reused for the next). */
typedef bool (*product_fill)(json_t *row, void *elem);

/* Run the by-product report over q and turn its rows into an array of
 * elements of `size` bytes (malloc'ed, zeroed; *out NULL on error). */
static int product_rows(const char *store, const char *state_dir, const struct usage_query *q, size_t size,
			product_fill fill, void **out, size_t *n, struct mesh_err *err)
{
	*out = NULL;
	*n = 0;
	json_t *rows;
	int rc = rows_in(store, state_dir, q, &rows, err);
	if (rc)
		return rc;
	char *elems = xcalloc(json_array_size(rows) + 1, size);
	size_t i;
	json_t *row;
	json_array_foreach(rows, i, row)
		if (fill(row, elems + *n * size))
			(*n)++;
	json_decref(rows);
	*out = elems;
	return 0;
}

static bool fill_count(json_t *row, void *elem)
{
	*(struct adoption_count *)elem = (struct adoption_count){
		xstrdup(jstr(row, "domain")), xstrdup(jstr(row, "product")), jint(row, "consumers"),
		jint(row, "reads")};
	return true;
}

int adoption_counts(const char *store, unsigned days, struct adoption_count **out, size_t *n,
		    struct mesh_err *err)
{
	return adoption_counts_in(store, NULL, days, out, n, err);
}

int adoption_counts_in(const char *store, const char *state_dir, unsigned days, struct adoption_count **out,
		       size_t *n, struct mesh_err *err)
{
	struct usage_query q = {.by = USAGE_BY_PRODUCT};
	window(days, &q);
	void *counts;
	int rc = product_rows(store, state_dir, &q, sizeof **out, fill_count, &counts, n, err);
	*out = counts;
	return rc;
}

void adoption_counts_free(struct adoption_count *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(c[i].domain);
		free(c[i].product);
	}
	free(c);
}

int adoption_daily(const char *store, const char *domain, const char *product, unsigned days, uint64_t *out,
		   struct mesh_err *err)
{
	memset(out, 0, days * sizeof *out);
	struct usage_query q = {.domain = domain, .product = product, .by = USAGE_BY_DAY};
	window(days, &q);
	json_t *rows;
	int rc = rows_of(store, &q, &rows, err);
	if (rc)
		return rc;
	size_t i;
	json_t *row;
	json_array_foreach(rows, i, row) {
		time_t t;
		if (mesh_time_parse(jstr(row, "day"), &t))
			continue;
		int64_t k = ((int64_t)t * NS - q.since_ns) / DAY_NS;
		if (k >= 0 && k < (int64_t)days)
			out[k] += jint(row, "reads");
	}
	json_decref(rows);
	return 0;
}

static bool fill_read(json_t *row, void *elem)
{
	if (!jint(row, "reads"))
		return false;   /* denied or discovery only: nothing was read */
	*(struct adoption_read *)elem = (struct adoption_read){
		xstrdup(jstr(row, "domain")), xstrdup(jstr(row, "product")), jint(row, "reads"),
		xstrdup(jstr(row, "last_read"))};
	return true;
}

int adoption_reads_by(const char *store, const char *user, int64_t since_ns, int64_t until_ns,
		      struct adoption_read **out, size_t *n, struct mesh_err *err)
{
	struct usage_query q = {.user = user, .by = USAGE_BY_PRODUCT, .since_ns = since_ns, .until_ns = until_ns};
	void *reads;
	int rc = product_rows(store, NULL, &q, sizeof **out, fill_read, &reads, n, err);
	*out = reads;
	return rc;
}

void adoption_reads_free(struct adoption_read *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(r[i].domain);
		free(r[i].product);
		free(r[i].last_read);
	}
	free(r);
}
