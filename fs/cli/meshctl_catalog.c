/*
 * meshctl_catalog.c - `meshctl catalog --html DIR [--mount DIR]`: the
 * static catalog site (catalog_html.c) as the caller may see the mesh.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog_html.h"
#include "meshctl_discovery.h"

static const char catalog_help[] =
"usage: meshctl catalog --html DIR [--mount DIR]\n"
"\n"
"Writes a static catalog site into DIR that works offline from file://:\n"
"index.html (a search box over an embedded index of names, descriptions, tags,\n"
"owners and columns) and products/DOMAIN.PRODUCT.html (facts, schema, versions,\n"
"quality, a usage sparkline and the lineage picture, drawn by Graphviz's dot\n"
"when it is installed).  Only products you may discover are written.\n";

int meshctl_cmd_catalog(const struct meshctl_ctx *ctx, int argc, char **argv)
{
	const char *dir = NULL, *mount = getenv("MESH_MOUNT");
	if (!mount || !*mount)
		mount = "/mesh";
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--html") && i + 1 < argc)
			dir = argv[++i];
		else if (!strcmp(argv[i], "--mount") && i + 1 < argc)
			mount = argv[++i];
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(catalog_help, stdout);
			return MESHCTL_OK;
		} else {
			dir = NULL;
			break;
		}
	}
	if (!dir) {
		meshctl_fail(ctx, "catalog", "usage: meshctl catalog --html DIR [--mount DIR]");
		return MESHCTL_USAGE;
	}
	struct catalog_html_stats st;
	struct mesh_err err = {0};
	int rc = catalog_html_write(ctx->store, &ctx->caller, dir, mount, &st, &err);
	if (rc) {
		meshctl_fail(ctx, "catalog", "%s", err.msg);
		return meshctl_exit_for(rc);
	}
	printf("wrote %s/index.html and %zu product page(s)%s\n", dir, st.products,
	       st.products && !st.lineage_drawn ? " (no lineage pictures: Graphviz dot is not installed)" : "");
	return MESHCTL_OK;
}
