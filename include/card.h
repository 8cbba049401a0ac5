/*
 * card.h - product cards: the README.md meshfs writes for every product
 * and every version, so a product explains itself inside the mount (title,
 * purpose, owners, support, SLA, status with sunset and reason, columns
 * with types, classifications and descriptions and which are masked,
 * quality, inputs and readers, how to read it with cat, pandas and DuckDB,
 * how to ask for access).  A README.md shipped in a release wins for that
 * version.
 *
 *   STORE/domains/<d>/<p>/.card.md            served as /mesh/<d>/<p>/README.md
 *   STORE/domains/<d>/<p>/.cards/<v>.md       served as /mesh/<d>/<p>/<v>/README.md
 *
 * A stored card is a template shared by every reader, so it names only
 * what everyone who may see the product may know: inputs and consumers
 * that are restricted are counted, never named.  What a given reader sees
 * (each column clear or masked and with which function, or no access and
 * how to ask) is filled in per reader when the card is served
 * (card_reader.h): the stored file is never shown as it is.
 *
 * Not here: what is known about a product (product_info.h).
 */
#ifndef CARD_H
#define CARD_H

#include "catalog.h"
#include "lineage.h"
#include "mesh_err.h"
#include "product_info.h"

#define CARD_FILE        "README.md"
#define CARD_PRODUCT     ".card.md"
#define CARD_VERSION_DIR ".cards"

/* The product's card, and one version's (`contract` and `quality_json`,
 * the release's own, may be NULL).  `mount` is the mount point named in
 * the examples ("/mesh").  Malloc'ed Markdown. */
char *card_product(const struct product_info *p, const char *mount);
char *card_version(const struct product_info *p, const char *version, const struct contract *contract,
		   const char *quality_json, const char *mount);

/* Is n a card meshfs generated (a template to render per reader), as
 * opposed to a README.md shipped in a release? */
bool card_node_generated(const struct cat_node *n);

/* Rewrite every card of domain/product from the store (cat and g may be
 * NULL: loaded here).  Callers bump the generation afterwards. */
int card_refresh(const char *store, const struct catalog *cat, const struct lineage *g, const char *domain,
		 const char *product, struct mesh_err *err);

/* The same for many products of one catalog (`meshctl reindex`): the
 * views a card is written with (anyone's, governance's: each loads the
 * policy) are opened once, by card_views_open, and given to each
 * card_refresh_with.  The views reference `cat` until _close; _close(NULL)
 * is a no-op.  -errno only for an unreadable store. */
struct card_views;
int card_views_open(const char *store, const struct catalog *cat, struct card_views **out,
		    struct mesh_err *err);
void card_views_close(struct card_views *views);
int card_refresh_with(const char *store, const struct catalog *cat, const struct lineage *g,
		      const struct card_views *views, const char *domain, const char *product,
		      struct mesh_err *err);

#endif
