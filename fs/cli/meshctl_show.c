/*
 * meshctl_show.c - `meshctl show D/P`: one product as the caller may see
 * it (product_info.c gathers it; this file parses and prints).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <time.h>

#include "card_reader.h"
#include "catalog.h"
#include "meshctl_discovery.h"
#include "mesh_util.h"
#include "product_info.h"
#include "store.h"
#include "visibility.h"

static const char show_help[] =
"usage: meshctl show DOMAIN/PRODUCT [--json]\n"
"\n"
"One product: title and purpose, status of the latest release, owners, support,\n"
"SLA, tags, the latest release's quality, readers over the last 30 days, declared\n"
"inputs and the products built from it, and every version in SemVer order with\n"
"its status, publish time, contract id, sunset and reason.  A restricted product\n"
"you may not read is 'no such product', as in the mount.  It ends with what you\n"
"see: for each data file of the latest release whether you read it clear, as a\n"
"masked view (each masked column with its function), or not at all, and how to\n"
"request access (the decision the mount makes for you; --json: \"access\").\n";

int meshctl_cmd_show(const struct meshctl_ctx *ctx, int argc, char **argv)
{
	bool json = ctx->json;
	const char *ref = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(show_help, stdout);
			return MESHCTL_OK;
		} else if (argv[i][0] == '-' || ref) {
			meshctl_fail(ctx, "show", "usage: meshctl show DOMAIN/PRODUCT [--json]");
			return MESHCTL_USAGE;
		} else
			ref = argv[i];
	}
	char domain[MESH_NAME_MAX + 1], product[MESH_NAME_MAX + 1];
	const char *slash = ref ? strchr(ref, '/') : NULL;
	if (!slash || (size_t)(slash - ref) > MESH_NAME_MAX || strlen(slash + 1) > MESH_NAME_MAX) {
		meshctl_fail(ctx, "show", "usage: meshctl show DOMAIN/PRODUCT [--json]");
		return MESHCTL_USAGE;
	}
	snprintf(domain, sizeof domain, "%.*s", (int)(slash - ref), ref);
	snprintf(product, sizeof product, "%s", slash + 1);
	struct mesh_err err = {0};
	struct catalog *cat = NULL;
	struct visibility *vis = NULL;
	struct product_info *p = NULL;
	int rc = store_check(ctx->store, &err);
	if (!rc)
		rc = catalog_scan(ctx->store, NULL, &cat, &err);
	if (!rc)
		rc = visibility_open(ctx->store, cat, &ctx->caller, &vis, &err);
	if (!rc)
		rc = product_info_load(ctx->store, cat, vis, NULL, domain, product, &p, &err);
	if (rc) {
		meshctl_fail(ctx, "show", "%s", err.msg);
	} else {
		/* what this caller reads: the decision the mount makes for them */
		const struct cat_node *pn = catalog_child(catalog_child(catalog_root(cat), domain), product);
		const struct cat_node *latest = pn ? catalog_latest(pn) : NULL;
		struct policy_decision dec;
		card_reader_decide(visibility_policy(vis), &ctx->caller, domain, product, latest, time(NULL), &dec);
		char *text = json ? product_info_json(p) : product_info_text(p);
		if (json) {
			json_t *doc = json_loads(text, 0, NULL);
			if (doc)
				json_object_set_new(doc, "access", card_reader_json(domain, product, latest, &dec));
			char *out = doc ? mesh_json_text(doc) : NULL;
			meshctl_print_document(out ? out : text);
			free(out);
			json_decref(doc);
		} else {
			char *section = card_reader_section(domain, product, latest, &dec);
			printf("%s\n%s", text, section);
			free(section);
		}
		policy_decision_clear(&dec);
		free(text);
	}
	product_info_free(p);
	visibility_close(vis);
	catalog_unref(cat);
	return meshctl_exit_for(rc);
}
