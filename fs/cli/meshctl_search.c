/*
 * meshctl_search.c - `meshctl search WORDS... [filters] [--json]`: the
 * catalog index's full-text search (index.c), rebuilt when older than the
 * store, filtered for the caller (visibility.c: a restricted product the
 * caller may not read is never a hit); the search itself is search.c.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "index.h"
#include "search.h"
#include "meshctl_discovery.h"
#include "mesh_util.h"
#include "store.h"
#include "visibility.h"

static const char search_help[] =
"usage: meshctl search WORDS... [--domain D] [--tag T] [--classification C]\n"
"                      [--status active|deprecated|retired] [--limit N] [--json]\n"
"\n"
"Full-text search over domains, product names, titles, descriptions, tags, owners,\n"
"column names and column descriptions; best match first (a word in a product's\n"
"name counts most), ties broken by readers over the last 30 days.  Every word\n"
"must match (a word matches as a prefix with a trailing *: cust*).  One line per\n"
"product, its newest matching version.  Only products you may discover are\n"
"listed.  Exit status 1 when nothing matches.\n";

static bool visible_cb(void *ctx, const struct index_hit *hit)
{
	return visibility_marked(ctx, hit->domain, hit->product, hit->restricted != 0,
				 !strcmp(hit->status, "retired"));
}

int meshctl_search_run(const char *store, const char *state_dir, const struct identity *who,
		       const struct index_query *q, size_t limit, struct index_hit **hits, size_t *n,
		       struct mesh_err *err)
{
	/* no catalog: the index says which hits their releases restrict, the
	 * domains' files the rest (a scan of the store would cost seconds at
	 * 100,000 products) */
	struct visibility *vis = NULL;
	int rc = store_check(store, err);
	if (!rc)
		rc = visibility_open_marked(store, who, &vis, err);
	if (!rc)
		rc = search_run_opts(store, q, &(struct search_opts){.state_dir = state_dir, .limit = limit, .snippets = true},
				     visible_cb, vis, hits, n, NULL, err);
	visibility_close(vis);
	return rc;
}

int meshctl_cmd_search(const struct meshctl_ctx *ctx, int argc, char **argv)
{
	static const struct option longopts[] = {
		{"domain", required_argument, NULL, 'd'},
		{"tag", required_argument, NULL, 't'},
		{"classification", required_argument, NULL, 'c'},
		{"status", required_argument, NULL, 's'},
		{"limit", required_argument, NULL, 'l'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct index_query q = {0};
	bool json = ctx->json;
	size_t limit = 0;
	optind = 0;
	int c;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd':
			q.domain = optarg;
			break;
		case 't':
			q.tag = optarg;
			break;
		case 'c':
			q.classification = optarg;
			break;
		case 's':
			if (strcmp(optarg, "active") && strcmp(optarg, "deprecated") && strcmp(optarg, "retired")) {
				meshctl_fail(ctx, "search", "--status %s: expected active, deprecated or retired", optarg);
				return MESHCTL_USAGE;
			}
			q.status = optarg;
			break;
		case 'l':
			limit = strtoul(optarg, NULL, 10);
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			fputs(search_help, stdout);
			return MESHCTL_OK;
		default:
			return MESHCTL_USAGE;
		}
	}
	if (optind >= argc) {
		fputs(search_help, stderr);
		return MESHCTL_USAGE;
	}
	char *query = search_fts_query(argv + optind, (size_t)(argc - optind));
	if (!*query) {
		free(query);
		meshctl_fail(ctx, "search", "nothing to search for");
		return MESHCTL_USAGE;
	}
	q.query = query;
	struct mesh_err err = {0};
	struct index_hit *hits = NULL;
	size_t n = 0;
	int rc = meshctl_search_run(ctx->store, ctx->state_dir, &ctx->caller, &q, limit, &hits, &n, &err);
	free(query);
	if (rc) {
		meshctl_fail(ctx, "search", "%s", err.msg);
		return meshctl_exit_for(rc);
	}
	size_t shown = limit && n > limit ? limit : n;
	if (json) {
		json_t *arr = json_array();
		for (size_t i = 0; i < shown; i++) {
			json_t *o = json_object();
			json_object_set_new(o, "domain", json_string(hits[i].domain));
			json_object_set_new(o, "product", json_string(hits[i].product));
			json_object_set_new(o, "version", json_string(hits[i].version));
			json_object_set_new(o, "status", json_string(hits[i].status));
			json_object_set_new(o, "purpose", json_string(hits[i].purpose));
			json_object_set_new(o, "snippet", json_string(hits[i].snippet));
			json_object_set_new(o, "score", json_real(hits[i].score));
			json_object_set_new(o, "path", json_sprintf("/mesh/%s/%s", hits[i].domain, hits[i].product));
			json_array_append_new(arr, o);
		}
		char *text = mesh_json_text(arr);
		meshctl_print_document(text);
		free(text);
		json_decref(arr);
	} else {
		for (size_t i = 0; i < shown; i++)
			printf("%s/%s %s%s%s\n    %s\n", hits[i].domain, hits[i].product, hits[i].version,
			       strcmp(hits[i].status, "active") ? "  " : "",
			       strcmp(hits[i].status, "active") ? hits[i].status : "", hits[i].snippet);
	}
	index_hits_free(hits, n);
	return shown ? MESHCTL_OK : MESHCTL_FAILED;
}
