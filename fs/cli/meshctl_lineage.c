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
#include "meshctl_discovery.h"
#include "mesh_util.h"
#include "store.h"
#include "visibility.h"

static const char lineage_help[] =
"usage: meshctl lineage DOMAIN/PRODUCT [--upstream] [--downstream] [--format tree|json|dot]\n"
"                       [--days N]\n"
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
"domain's owners and governance, counted for everyone else.\n";

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

int meshctl_cmd_lineage(const struct meshctl_ctx *ctx, int argc, char **argv)
{
	static const struct option longopts[] = {
		{"upstream", no_argument, NULL, 'u'},
		{"downstream", no_argument, NULL, 'd'},
		{"format", required_argument, NULL, 'f'},
		{"json", no_argument, NULL, 'j'},
		{"days", required_argument, NULL, 'D'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int dirs = 0;
	enum lineage_format fmt = ctx->json ? LINEAGE_JSON : LINEAGE_TREE;
	unsigned days = 30;
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
