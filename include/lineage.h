/*
 * lineage.h - the mesh's lineage graph: which product is built from which,
 * from the inputs products declare (ODCS customProperties meshInputs in a
 * release's contract, ODPS inputPorts in a product descriptor), each
 * "domain/product", "domain/product@VERSION" or "domain/product@RANGE"
 * with a SemVer range (npm-style: 1.2.3, =1.2.3, ^1.2, ~1.2.3, 1.x, *,
 * >=1.0.0 <2.0.0, ... || ...).
 *
 * A graph holds one node per product (and one per name an input gives that
 * is not a product of the mesh) and one edge per declared input, from the
 * input (upstream) to the product that declares it (downstream).  A
 * product's inputs are those of the release `latest` points at (what the
 * product is built from now), plus its descriptor's.
 *
 * Visibility: every query takes a visibility callback; a restricted product
 * the caller may not discover is treated exactly like a name that is not in
 * the mesh (never expanded, never listed as a consumer), as the mount does.
 *
 * Not here: usage-based consumers (usage_report.h), printing of usage,
 * who may see what (visibility.h).  A graph is immutable after
 * lineage_finish(): it may be read from several threads.
 */
#ifndef LINEAGE_H
#define LINEAGE_H

#include <stdbool.h>
#include <stddef.h>

#include "catalog.h"
#include "mesh_err.h"
#include "store.h"

/* ---- one declared input ---- */

struct lineage_input {
	char domain[65], product[65];
	char range[128];          /* "" when any version will do */
};

/* Parse "domain/product[@range]".  -EINVAL naming what is wrong. */
int lineage_input_parse(const char *text, struct lineage_input *out, struct mesh_err *err);

/* ---- SemVer ranges ---- */

/* 0 if `range` is a range meshfs understands ("" and "*" match any). */
int lineage_range_check(const char *range, struct mesh_err *err);
/* Does `version` (SemVer) satisfy `range`?  A pre-release version only
 * satisfies a range naming a pre-release of the same major.minor.patch
 * (npm's rule), so "^1.0" never picks 1.1.0-rc.1.  False for a bad range. */
bool lineage_range_match(const char *range, const char *version);

/* ---- the graph ---- */

struct lineage;

/* Who may see a product: true if `domain/product` (a restricted product
 * of the mesh) is discoverable by the caller.  Only asked about products
 * that are restricted. */
typedef bool (*lineage_visible_fn)(void *ctx, const char *domain, const char *product);

/* An empty graph, to fill with the _add functions and close with
 * lineage_finish (tests, and lineage_load). */
struct lineage *lineage_new(void);
/* A product of the mesh and its versions (call once per version; `latest`
 * marks the release its inputs come from). */
void lineage_add_version(struct lineage *g, const char *domain, const char *product, const char *version,
			 enum lifecycle state, bool restricted, bool latest);
/* A declared input of domain/product; `declared_in` names where it is
 * written ("contract 1.2.0", "product.yaml").  Inputs that do not parse are
 * kept (lineage_check reports them) but draw no edge. */
void lineage_add_input(struct lineage *g, const char *domain, const char *product, const char *input,
		       const char *declared_in);
/* Resolve edges (the newest version of each input that satisfies its
 * range).  The graph is read-only after this. */
void lineage_finish(struct lineage *g);
void lineage_free(struct lineage *g);

/* The whole mesh: every product of `cat`, the inputs of the contract of the
 * release `latest` points at (read from the store), and the inputs of the
 * product's descriptor when it has one.  A contract that cannot be read
 * gives no inputs (the product is still a node). */
int lineage_load(const char *store, const struct catalog *cat, struct lineage **out, struct mesh_err *err);

/* Directions and formats of lineage_format. */
enum lineage_dir { LINEAGE_UP = 1, LINEAGE_DOWN = 2, LINEAGE_BOTH = 3 };
enum lineage_format { LINEAGE_TREE, LINEAGE_JSON, LINEAGE_DOT };
int lineage_format_parse(const char *name, enum lineage_format *out);

/* Is domain/product a product of the graph the caller may see? */
bool lineage_has(const struct lineage *g, const char *domain, const char *product,
		 lineage_visible_fn visible, void *ctx);

/* The lineage of domain/product in the given directions, transitively, as
 * a tree (indented text), a JSON document ({"product", "nodes", "edges"})
 * or a Graphviz digraph.  Cycles are shown, never followed twice.
 * Malloc'ed; NULL when the product is not in the graph (or not visible). */
char *lineage_format(const struct lineage *g, const char *domain, const char *product,
		     enum lineage_dir dirs, enum lineage_format fmt, lineage_visible_fn visible, void *ctx);

/* The products that declare domain/product as an input (directly), visible
 * to the caller: "d/p" strings in *out (free each and the array). */
size_t lineage_consumers(const struct lineage *g, const char *domain, const char *product,
			 lineage_visible_fn visible, void *ctx, char ***out);

/* The declared inputs of domain/product as lines "sales/orders@^1 = 1.2.0"
 * ("... : not found" for names the caller cannot see, "... : no version"
 * when nothing satisfies the range).  Free each and the array. */
size_t lineage_inputs(const struct lineage *g, const char *domain, const char *product,
		      lineage_visible_fn visible, void *ctx, char ***out);

/* ---- checks at publish ---- */

/* Problems with the inputs `inputs` that domain/product (being published)
 * declares, against the graph of the mesh as it is: an input that does not
 * parse, names no product the publisher can see, has no version satisfying
 * its range, resolves only to deprecated or retired versions, or closes a
 * cycle (the product would be its own upstream; the cycle is named).  One
 * line per problem appended to *problems (malloc'ed, caller frees; NULL
 * when none).  Returns the number of problems. */
size_t lineage_check(const struct lineage *g, const char *domain, const char *product,
		     char *const *inputs, size_t n_inputs, lineage_visible_fn visible, void *ctx,
		     char **problems);

#endif
