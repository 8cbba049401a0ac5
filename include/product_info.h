/*
 * product_info.h - everything discovery says about one product, gathered
 * once for `meshctl show`, product cards, the catalog page and MCP:
 * identity, description, owners, support, SLA, versions in SemVer order
 * with their lifecycle (sunset, reason), the latest release's quality and
 * contract, consumers over 30 days, declared inputs and the products built
 * from it.  Filtered for the caller (visibility.h): a product the caller
 * may not discover is -ENOENT, as in the mount.
 *
 * A product_info is immutable once loaded; free with product_info_free.
 */
#ifndef PRODUCT_INFO_H
#define PRODUCT_INFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog.h"
#include "contract.h"
#include "lineage.h"
#include "mesh_err.h"
#include "visibility.h"

struct product_version_info {
	char *version;
	enum lifecycle state;
	char *published_at;     /* RFC 3339, or "" */
	char *contract_id;      /* or "" */
	char *sunset, *reason;  /* deprecation/retirement notes, or NULL */
	bool latest;
};

struct product_info {
	char *domain, *product;
	char *title;            /* the contract's name, else the product */
	char *purpose, *usage, *limitations;    /* may be NULL */
	char *status;           /* of the latest release: active | deprecated */
	char *latest;           /* version `latest` points at, or NULL */
	char **owners;          /* contract owners, then domain owners (no repeats) */
	size_t n_owners;
	char **support;
	size_t n_support;
	char *sla;              /* "freshness 1d (column orders.ordered_at)", or NULL */
	char **tags;
	size_t n_tags;
	struct product_version_info *versions;   /* SemVer order, retired ones included */
	size_t n_versions;
	unsigned quality_checks, quality_passed, quality_warnings;
	bool has_quality;
	uint64_t consumers;     /* distinct readers over the last 30 days */
	char **inputs;          /* lineage_inputs lines */
	size_t n_inputs;
	char **built_from_it;   /* products declaring it as an input (visible ones) */
	size_t n_built;
	bool descriptor_shipped;/* a product.yaml was published (else derived) */
	bool restricted;
	struct contract *contract;   /* of the latest release (columns), or NULL */
};

/* Gather what `vis`'s caller may know of domain/product.  `g` may be NULL
 * (the lineage is then loaded here).  -ENOENT when there is no such
 * product the caller may discover. */
int product_info_load(const char *store, const struct catalog *cat, const struct visibility *vis,
		      const struct lineage *g, const char *domain, const char *product,
		      struct product_info **out, struct mesh_err *err);
void product_info_free(struct product_info *p);

/* `meshctl show`'s text, and the same as a JSON document (malloc'ed). */
char *product_info_text(const struct product_info *p);
char *product_info_json(const struct product_info *p);

#endif
