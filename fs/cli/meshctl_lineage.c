/*
 * meshctl_lineage.c - `meshctl lineage D/P`: arguments, the graph of the
 * mesh for the caller, consumers by usage (names for owners, a count for
 * others), printing.  The graph is lineage.c; who sees what, visibility.c.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adoption.h"
#include "catalog.h"
#include "lineage.h"
#include "lineage_hints.h"
#include "meshctl_discovery.h"
#include "mesh_util.h"
#include "store.h"
#include "visibility.h"

static const char lineage_help[] =
"usage: meshctl lineage DOMAIN/PRODUCT [--upstream] [--downstream] [--format tree|json|dot]\n"
"                       [--days N] [--hints [--hint-window DURATION]]\n"
"\n"
"What a product is built from (--upstream: its declared inputs, transitively)\n"
"and what is built from it (--downstream: products that declare it as an input,\n"
"and who read it over the last --days days, 30 by default).  Neither flag: both.\n"
"Inputs are declared in a release's contract (customProperties meshInputs) or the\n"
"product's descriptor (product.yaml inputPorts), as domain/product[@RANGE] with a\n"
"SemVer range (1.2.3, ^1.2, ~1.2.3, 1.x, >=1.0.0 <2.0.0); the graph uses the\n"
"inputs of the release 'latest' points at.\n"
"\n"
"  --format tree   indented text (default); json: nodes and edges; dot: Graphviz,\n"
"                  e.g.  meshctl lineage sales/orders --format dot | dot -Tsvg > orders.svg\n"
"\n"
"Only products you may discover are shown: a restricted product you may not read\n"
"appears as 'not found', as in the mount.  Readers by usage are named for the\n"
"domain's owners and governance, counted for everyone else.\n"
"\n"
"  --hints         also observed lineage, off by default: a user who read product A\n"
"                  within --hint-window (1h; 90s, 30m, 6h, 2d) before publishing a\n"
"                  version of B (in the last --days days) hints A -> B.  Hints are\n"
"                  guesses, marked as such (dashed in dot, \"hints\" in json), never\n"
"                  edges; only between products you may discover, and who read is\n"
"                  named only to owners of both domains and governance.\n";

static int split_ref(const char *ref, char *domain, char *product)
{
	const char *slash = strchr(ref, '/');
	if (!slash || (size_t)(slash - ref) > MESH_NAME_MAX || strlen(slash + 1) > MESH_NAME_MAX)
		return -EINVAL;
	memcpy(domain, ref, (size_t)(slash - ref));
	domain[slash - ref] = '\0';
	strcpy(product, slash + 1);
	return mesh_name_ok(domain) && mesh_name_ok(product) ? 0 : -EINVAL;
}

static void print_usage_consumers(const struct adoption_consumer *c, size_t n, bool names, unsigned days,
				  enum lineage_format fmt, char **text)
{
	if (fmt == LINEAGE_DOT)
		return;                 /* a picture of products; readers are people */
	if (fmt == LINEAGE_JSON) {
		json_t *doc = json_loads(*text, 0, NULL);
		json_t *u = json_object();
		json_object_set_new(u, "days", json_integer(days));
		json_object_set_new(u, "consumers", json_integer((json_int_t)n));
		if (names) {
			json_t *arr = json_array();
			for (size_t i = 0; i < n; i++) {
				json_t *o = json_object();
				json_object_set_new(o, "user", json_string(c[i].user));
				json_object_set_new(o, "programs", json_string(c[i].programs));
				json_object_set_new(o, "reads", json_integer((json_int_t)c[i].reads));
				json_object_set_new(o, "lastRead", json_string(c[i].last_read));
				json_array_append_new(arr, o);
			}
			json_object_set_new(u, "readers", arr);
		}
		json_object_set_new(doc, "usage", u);
		free(*text);
		*text = mesh_json_text(doc);
		json_decref(doc);
		return;
	}
	struct strbuf sb = STRBUF_INIT;
	strbuf_puts(&sb, *text);
	strbuf_printf(&sb, "downstream (usage, last %u days): %zu reader%s%s\n", days, n, n == 1 ? "" : "s",
		      n && !names ? " (names are shown to the domain's owners)" : "");
	for (size_t i = 0; names && i < n; i++)
		strbuf_printf(&sb, "  %-16s %6llu reads  last %s  (%s)\n", c[i].user, (unsigned long long)c[i].reads,
			      c[i].last_read, *c[i].programs ? c[i].programs : "-");
	free(*text);
	*text = strbuf_detach(&sb, NULL);
}

/* "90", "90s", "30m", "6h", "2d" as seconds; -1 when it is not one. */
static long long parse_duration(const char *text)
{
	char *end;
	long long v = strtoll(text, &end, 10);
	if (end == text || v <= 0)
		return -1;
	long long unit = !*end || !strcmp(end, "s") ? 1 : !strcmp(end, "m") ? 60 : !strcmp(end, "h") ? 3600
		       : !strcmp(end, "d") ? 86400 : 0;
	if (!unit || v > 3650LL * 86400 / unit)
		return -1;
	return v * unit;
}

static void human_lead(int64_t s, char *out, size_t size)
{
	if (s < 120)
		snprintf(out, size, "%llds", (long long)s);
	else if (s < 7200)
		snprintf(out, size, "%lldm", (long long)(s / 60));
	else
		snprintf(out, size, "%lldh", (long long)(s / 3600));
}

static bool names_cb(void *ctx, const char *domain)
{
	return visibility_is_owner(ctx, domain);
}

static void print_hints(const struct lineage_hint *const *hp, size_t n, long long window, enum lineage_format fmt,
			char **text)
{
	char w[32];
	human_lead(window, w, sizeof w);
	if (fmt == LINEAGE_JSON) {
		json_t *doc = json_loads(*text, 0, NULL);
		json_t *arr = json_array();
		for (size_t i = 0; i < n; i++) {
			char from[2 * MESH_NAME_MAX + 2], to[2 * MESH_NAME_MAX + 2];
			snprintf(from, sizeof from, "%s/%s", hp[i]->from_domain, hp[i]->from_product);
			snprintf(to, sizeof to, "%s/%s", hp[i]->to_domain, hp[i]->to_product);
			json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:b, s:s?}", "from", from, "to", to,
					      "version", hp[i]->to_version, "lastRead", hp[i]->last_read, "publishedAt",
					      hp[i]->published_at, "leadSeconds", (json_int_t)hp[i]->lead_seconds,
					      "declared", hp[i]->declared, "user", hp[i]->user);
			json_array_append_new(arr, o);
		}
		json_t *hints = json_pack("{s:s, s:I, s:o}", "kind", "observed (hints from usage, not declared)",
					  "windowSeconds", (json_int_t)window, "hints", arr);
		json_object_set_new(doc, "hints", hints);
		free(*text);
		*text = mesh_json_text(doc);
		json_decref(doc);
		return;
	}
	struct strbuf sb = STRBUF_INIT;
	if (fmt == LINEAGE_DOT) {
		/* the declared picture, then the hints as dashed edges */
		size_t len = strlen(*text);
		while (len && ((*text)[len - 1] == '\n' || (*text)[len - 1] == '}'))
			len--;
		strbuf_add(&sb, *text, len);
		strbuf_puts(&sb, "\n");
		for (size_t i = 0; i < n; i++)
			strbuf_printf(&sb, "  \"%s/%s\" -> \"%s/%s\" [style=dashed, color=gray40, fontcolor=gray40, "
				      "label=\"hint %s\"];\n", hp[i]->from_domain, hp[i]->from_product, hp[i]->to_domain,
				      hp[i]->to_product, hp[i]->to_version);
		strbuf_puts(&sb, "}\n");
	} else {
		strbuf_puts(&sb, *text);
		strbuf_printf(&sb, "hints (observed from usage, not declared: a read within %s before a publish): %zu\n",
			      w, n);
		for (size_t i = 0; i < n; i++) {
			char lead[32];
			human_lead(hp[i]->lead_seconds, lead, sizeof lead);
			strbuf_printf(&sb, "  ~ %s/%s -> %s/%s %s  (hint: ", hp[i]->from_domain, hp[i]->from_product,
				      hp[i]->to_domain, hp[i]->to_product, hp[i]->to_version);
			if (hp[i]->user)
				strbuf_printf(&sb, "%s read it %s before publishing", hp[i]->user, lead);
			else
				strbuf_printf(&sb, "its publisher read it %s before", lead);
			strbuf_printf(&sb, "%s)\n", hp[i]->declared ? "; also declared" : "");
		}
	}
	free(*text);
	*text = strbuf_detach(&sb, NULL);
}

int meshctl_cmd_lineage(const struct meshctl_ctx *ctx, int argc, char **argv)
{
	static const struct option longopts[] = {
		{"upstream", no_argument, NULL, 'u'},
		{"downstream", no_argument, NULL, 'd'},
		{"format", required_argument, NULL, 'f'},
		{"json", no_argument, NULL, 'j'},
		{"days", required_argument, NULL, 'D'},
		{"hints", no_argument, NULL, 'H'},
		{"hint-window", required_argument, NULL, 'W'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int dirs = 0;
	enum lineage_format fmt = ctx->json ? LINEAGE_JSON : LINEAGE_TREE;
	unsigned days = 30;
	bool hints = false;
	long long window = LINEAGE_HINT_WINDOW_DEFAULT;
	optind = 0;
	int c;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'u':
			dirs |= LINEAGE_UP;
			break;
		case 'd':
			dirs |= LINEAGE_DOWN;
			break;
		case 'j':
			fmt = LINEAGE_JSON;
			break;
		case 'f':
			if (lineage_format_parse(optarg, &fmt)) {
				meshctl_fail(ctx, "lineage", "--format %s: expected tree, json or dot", optarg);
				return MESHCTL_USAGE;
			}
			break;
		case 'D': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);
			if (*end || !v || v > 3650) {
				meshctl_fail(ctx, "lineage", "--days %s: expected 1..3650", optarg);
				return MESHCTL_USAGE;
			}
			days = (unsigned)v;
			break;
		}
		case 'H':
			hints = true;
			break;
		case 'W':
			window = parse_duration(optarg);
			if (window < 0) {
				meshctl_fail(ctx, "lineage", "--hint-window %s: expected a duration (90, 90s, 30m, 6h, 2d)",
					     optarg);
				return MESHCTL_USAGE;
			}
			break;
		case 'h':
			fputs(lineage_help, stdout);
			return MESHCTL_OK;
		default:
			return MESHCTL_USAGE;
		}
	}
	char domain[MESH_NAME_MAX + 1], product[MESH_NAME_MAX + 1];
	if (optind != argc - 1 || split_ref(argv[optind], domain, product)) {
		meshctl_fail(ctx, "lineage", "usage: meshctl lineage DOMAIN/PRODUCT [--upstream] [--downstream] "
			     "[--format tree|json|dot]");
		return MESHCTL_USAGE;
	}
	if (!dirs)
		dirs = LINEAGE_BOTH;
	struct mesh_err err = {0};
	struct catalog *cat = NULL;
	struct lineage *g = NULL;
	struct visibility *vis = NULL;
	int rc = store_check(ctx->store, &err);
	if (!rc)
		rc = catalog_scan(ctx->store, NULL, &cat, &err);
	if (!rc)
		rc = visibility_open(ctx->store, cat, &ctx->caller, &vis, &err);
	if (!rc)
		rc = lineage_load(ctx->store, cat, &g, &err);
	if (rc) {
		meshctl_fail(ctx, "lineage", "%s", err.msg);
		goto out;
	}
	char *text = lineage_format(g, domain, product, (enum lineage_dir)dirs, fmt, visibility_lineage_cb, vis);
	if (!text) {
		meshctl_fail(ctx, "lineage", "%s/%s: no such product", domain, product);
		rc = -ENOENT;
		goto out;
	}
	if (dirs & LINEAGE_DOWN) {
		struct adoption_consumer *cons = NULL;
		size_t n = 0;
		struct mesh_err uerr = {0};
		if (adoption_consumers(ctx->store, domain, product, days, &cons, &n, &uerr))
			fprintf(stderr, "%s lineage: warning: usage not read: %s\n", ctx->prog, uerr.msg);
		else
			print_usage_consumers(cons, n, visibility_is_owner(vis, domain), days, fmt, &text);
		adoption_consumers_free(cons, n);
	}
	if (hints) {
		struct lineage_hint *h = NULL;
		size_t n = 0;
		struct mesh_err herr = {0};
		if (lineage_hints_find(ctx->store, cat, g, domain, product, window, days, visibility_lineage_cb, names_cb,
				       vis, &h, &n, &herr))
			fprintf(stderr, "%s lineage: warning: hints not read (usage): %s\n", ctx->prog, herr.msg);
		else {
			/* the directions asked for: upstream hints end at the product */
			const struct lineage_hint **kept = xcalloc(n + 1, sizeof *kept);
			size_t nk = 0;
			for (size_t i = 0; i < n; i++) {
				bool up = !strcmp(h[i].to_domain, domain) && !strcmp(h[i].to_product, product);
				if ((up && (dirs & LINEAGE_UP)) || (!up && (dirs & LINEAGE_DOWN)))
					kept[nk++] = &h[i];
			}
			print_hints(kept, nk, window, fmt, &text);
			free(kept);
		}
		lineage_hints_free(h, n);
	}
	if (fmt == LINEAGE_JSON)
		meshctl_print_document(text);
	else
		fputs(text, stdout);
	free(text);
out:
	lineage_free(g);
	visibility_close(vis);
	catalog_unref(cat);
	return meshctl_exit_for(rc);
}
