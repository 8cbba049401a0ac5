/*
 * lineage_publish.c - the lineage check of a publish (declared in
 * include/publish_rules.h): the release's declared inputs against the
 * mesh's graph as the publisher may see it.  A problem is a warning, or an
 * error when mesh.yaml or the domain's domain.yaml says
 * publish: {requireInputs: true}.
 *
 * Not here: the graph and the checks themselves (lineage.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "governance.h"
#include "lineage.h"
#include "mesh_util.h"
#include "publish_rules.h"
#include "visibility.h"

/* Where requireInputs is set ("mesh.yaml:12:3"), or NULL when it is not. */
static char *required_by(const char *store, const char *domain)
{
	struct mesh_policy *mesh = NULL;
	struct domain_info *d = NULL;
	char *where = NULL;
	struct strbuf sb = STRBUF_INIT;
	/* the rule's own key (line:column), not its publish: section */
	if (!gov_load_mesh(store, &mesh, NULL) && mesh->publish.require_inputs)
		strbuf_printf(&sb, "%s:%d:%d", mesh->publish.source, mesh->publish.at_inputs.line,
			      mesh->publish.at_inputs.col);
	else if (!gov_load_domain(store, domain, &d, NULL) && d->has_publish && d->publish.require_inputs)
		strbuf_printf(&sb, "%s:%d:%d", d->publish.source, d->publish.at_inputs.line, d->publish.at_inputs.col);
	if (sb.len)
		where = strbuf_detach(&sb, NULL);
	strbuf_release(&sb);
	gov_mesh_free(mesh);
	gov_domain_free(d);
	return where;
}

void publish_check_lineage(const char *store, const struct contract *c, char *const *more_inputs,
			   size_t n_more, const struct identity *caller, struct publish_report *r)
{
	size_t n = c->n_inputs + n_more;
	if (!n)
		return;
	char **inputs = xcalloc(n, sizeof *inputs);
	for (size_t i = 0; i < c->n_inputs; i++)
		inputs[i] = c->inputs[i];
	for (size_t i = 0; i < n_more; i++)
		inputs[c->n_inputs + i] = more_inputs[i];
	char *require = required_by(store, c->domain);
	struct catalog *cat = NULL;
	struct lineage *g = NULL;
	struct visibility *vis = NULL;
	struct mesh_err err = {0};
	if (catalog_scan(store, NULL, &cat, &err) || visibility_open(store, cat, caller, &vis, &err) ||
	    lineage_load(store, cat, &g, &err)) {
		publish_report_add(r, "lineage", false, !require, "inputs not checked: %s", err.msg);
	} else {
		char *problems = NULL;
		size_t bad = lineage_check(g, c->domain, c->data_product, inputs, n, visibility_lineage_cb, vis,
					   &problems);
		if (bad && require)
			publish_report_add(r, "lineage", false, false, "%zu problem(s) with declared inputs "
					   "(requireInputs, defined in %s):\n%s", bad, require, problems);
		else if (bad)
			publish_report_add(r, "lineage", false, true, "%zu problem(s) with declared inputs:\n%s",
					   bad, problems);
		else
			publish_report_add(r, "lineage", true, false, "%zu declared input(s) found and active", n);
		free(problems);
	}
	lineage_free(g);
	visibility_close(vis);
	catalog_unref(cat);
	free(require);
	free(inputs);
}
