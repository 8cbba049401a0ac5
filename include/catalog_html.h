/*
 * catalog_html.h - the static catalog site (`meshctl catalog --html DIR`):
 * an index page with a search box over an embedded JSON index, and one
 * page per product with its card facts, schema table, version history,
 * quality, a usage sparkline and its lineage drawn by Graphviz (`dot`, as
 * inline SVG; a note says so when dot is not installed).  Works offline
 * from file://: no external resource, no server.
 *
 * Only what the caller may discover is written (visibility.h): a
 * restricted product the caller may not read has no page and no entry.
 */
#ifndef CATALOG_HTML_H
#define CATALOG_HTML_H

#include <stddef.h>

#include "identity.h"
#include "mesh_err.h"

struct catalog_html_stats {
	size_t products;
	bool lineage_drawn;      /* dot was found and drew the pictures */
};

/* Write the site into `dir` (created if missing; existing files of a
 * previous site are replaced). */
int catalog_html_write(const char *store, const struct identity *who, const char *dir, const char *mount,
		       struct catalog_html_stats *stats, struct mesh_err *err);

#endif
