/*
 * descriptor_publish.c - what a publish does with product descriptors
 * (declared in include/publish_rules.h): check a release's product.yaml,
 * then keep it and rewrite the served descriptor after the install.
 *
 * Not here: the standard and rendering (descriptor.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "card.h"
#include "descriptor.h"
#include "mesh_util.h"
#include "publish_rules.h"
#include "store.h"

struct descriptor *publish_check_descriptor(int dirfd, const char *release_dir, const struct contract *c,
					    struct publish_report *r)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/" DESCRIPTOR_FILE, release_dir);
	char *text = NULL;
	size_t len = 0;
	struct mesh_err err = {0};
	struct descriptor *d = NULL;
	if (mesh_read_file_at(dirfd, DESCRIPTOR_FILE, DESCRIPTOR_MAX_BYTES, &text, &len, &err) ||
	    descriptor_parse(text, len, path, &d, &err) || descriptor_check_release(d, c, &err)) {
		/* paths in messages name the release's file, not the bare name */
		publish_report_add(r, "descriptor", false, false, "%s", err.msg);
		descriptor_free(d);
		free(text);
		return NULL;
	}
	free(text);
	publish_report_add(r, "descriptor", true, false, "%s: ODPS %s, id %s%s%s", path, d->api_version, d->id,
			   d->n_foreign ? "; inputPorts not named domain/product (no lineage): " : "",
			   d->n_foreign ? d->foreign_inputs[0] : "");
	return d;
}

void publish_update_descriptor(const char *store, const struct contract *c, const struct descriptor *d,
			       struct publish_report *r)
{
	struct mesh_err err = {0};
	int rc = descriptor_refresh(store, NULL, c->domain, c->data_product, d ? d->text : NULL, d ? d->len : 0,
				    &err);
	if (!rc)
		rc = card_refresh(store, NULL, NULL, c->domain, c->data_product, &err);
	if (!rc)
		rc = store_bump_generation(store, &err);
	if (rc)
		publish_report_add(r, "product.yaml", false, true, "installed, but product.yaml and README.md were not "
				   "rewritten (run 'meshctl reindex'): %s", err.msg);
}
