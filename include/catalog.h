/*
 * catalog.h - the daemon's view of a store: an immutable, in-memory tree of
 * domains, products, versions and files, built by scanning the store's
 * files (manifests and lifecycle tables), with stable inode numbers.
 *
 * A catalog is a snapshot.  It never changes after catalog_scan() returns,
 * so any number of threads may read it without locks; the daemon swaps in a
 * new snapshot when the store changes and frees the old one when the last
 * reference is dropped (catalog_ref/catalog_unref are thread-safe).
 *
 * Inode numbers are a hash of the node's path in the mesh (root is 1), so
 * they are the same in every snapshot and on every host for the same path
 * (a re-stated contract's also hashes its file's identity); their top two
 * bits are clear (mesh_ino.h: views and /mesh/.search own the others).
 *
 * Restricted products are resolved here, at scan time, from the releases'
 * contracts and the domains' restricted lists (a domain.yaml that cannot be
 * read restricts all its products: fail closed), so the FUSE hot path only
 * reads a flag.
 *
 * The daemon's snapshot is lighter (catalog_builder below, snapshot.h):
 * domains and products from this host's index, each product's versions
 * and files loaded from the store when first needed (catalog_product_load,
 * kept by snapshot_cache.h), with the same nodes, flags and numbers.
 * Inode numbers of different loaded products are not probed against each
 * other: two paths whose 62-bit hashes collide (odds about n^2 / 2^63)
 * would share a number there.
 *
 * Not here: access decisions (policy.h), the SQLite index for search
 * (index.h), FUSE.
 */
#ifndef CATALOG_H
#define CATALOG_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "mesh_err.h"
#include "store.h"

enum cat_kind { CAT_ROOT, CAT_DOMAIN, CAT_PRODUCT, CAT_VERSION, CAT_FILE, CAT_LATEST };

/* Read-only view of one node; all pointers stay valid while the catalog is
 * referenced. */
struct cat_node {
	uint64_t ino;
	enum cat_kind kind;
	const char *name;
	const struct cat_node *parent;
	const struct cat_node *const *children;  /* sorted by name (strcmp) */
	uint32_t n_children;
	uint32_t nlink;
	const char *domain, *product, *version;  /* the node's place (NULL above it) */
	struct timespec mtime;                    /* publish time; max below for dirs */
	bool restricted;                          /* product or below: hidden without access
						     (a release's contract, or domain.yaml) */
	bool release_restricted;                  /* versions: this release's own contract says so;
						     lazy products: one of its releases says so */
	bool has_restricted;                      /* a domain with restricted products */
	enum lifecycle state;                     /* versions and below */
	/* files */
	uint64_t size;
	enum file_role role;
	enum file_format format;
	const char *backing;     /* path relative to the store root */
	uint64_t content_id;     /* 0 for release files; for a re-stated copy (a
				    deprecated version's contract) its file's
				    identity, part of the inode number: content
				    that changes gets a new inode (page cache and
				    passthrough never serve the former file) */
	const char *sha256;
	const struct manifest_column *columns;    /* classified columns */
	uint32_t n_columns;
	/* CAT_LATEST: the version it points at */
	const char *target;
	/* A snapshot of domains and products only (catalog_builder): its
	 * products are lazy, with no children in it; catalog_product_load()
	 * gives one product with its versions and files. */
	bool lazy;
	uint64_t fingerprint;    /* lazy products: a hash of summary and restricted */
	const char *summary;     /* lazy products: "VERSION STATE\n" per release, as the index lists them */
};

struct catalog;

/* Scan `store` into a new catalog (refcount 1).  `previous` (may be NULL)
 * lends the contents of releases it already knows: releases are immutable,
 * so only new version directories are read.  A release whose manifest
 * cannot be read is skipped and counted in catalog_skipped() (never a half
 * view of it); errors are only for an unreadable store. */
int catalog_scan(const char *store, const struct catalog *previous,
		 struct catalog **out, struct mesh_err *err);

struct catalog *catalog_ref(struct catalog *cat);
void catalog_unref(struct catalog *cat);

const struct cat_node *catalog_root(const struct catalog *cat);
const struct cat_node *catalog_get(const struct catalog *cat, uint64_t ino);
const struct cat_node *catalog_child(const struct cat_node *dir, const char *name);
/* Resolve "sales/orders/latest/orders.csv" (latest followed). NULL if none. */
const struct cat_node *catalog_resolve(const struct catalog *cat, const char *path);

size_t catalog_node_count(const struct catalog *cat);
size_t catalog_skipped(const struct catalog *cat);
/* The store's generation text when the scan started. */
const char *catalog_generation(const struct catalog *cat);

/* ---- a snapshot of domains and products, from this host's index ----
 *
 * The builder lists STORE/domains (a domain with no product is listed
 * too) and reads each domain's domain.yaml (restricted products; one that
 * cannot be read restricts all its products, as catalog_scan does); the
 * caller adds the products as the index lists them.  A product of a domain
 * the store does not have, or with no release, is left out.  Products are
 * lazy nodes: restricted when domain.yaml lists them or any release is
 * restricted, nlink 2 + releases, mtime the newest release's publish time.
 * Not thread-safe (one builder, one thread). */
struct catalog_builder;
struct catalog_release_info {
	const char *version;
	enum lifecycle state;          /* active or deprecated (retired ones are not listed) */
	const char *published_at;      /* RFC 3339, as the manifest says */
	bool restricted;
};
int catalog_builder_new(const char *store, struct catalog_builder **out, struct mesh_err *err);
void catalog_builder_add(struct catalog_builder *b, const char *domain, const char *product,
			 const struct catalog_release_info *releases, size_t n);
/* Add lazy product `old` of a previous snapshot as it was (the index says
 * its releases did not change); restricted is decided again from
 * domain.yaml as it is now.  A product of a domain the store no longer has
 * is left out. */
void catalog_builder_keep(struct catalog_builder *b, const struct cat_node *old);
/* The snapshot (refcount 1); the builder is freed.  `generation` is the
 * store's generation the products were listed at. */
struct catalog *catalog_builder_finish(struct catalog_builder *b, const char *generation);
void catalog_builder_free(struct catalog_builder *b);   /* NULL: no-op */

/* One lazy product of `snapshot` read from the store as catalog_scan
 * reads it (its versions, latest, files and generated files): a catalog
 * of its own whose root is the product (same inode as `product`, parent
 * the snapshot's domain node) and which holds a reference on `snapshot`.
 * The product stays restricted when `product` is (fail closed).
 * -ENOENT when the store has no readable release of it now. */
int catalog_product_load(const char *store, struct catalog *snapshot, const struct cat_node *product,
			 struct catalog **out, struct mesh_err *err);
/* Is `cat` a snapshot of lazy products (catalog_builder)? */
bool catalog_is_lazy(const struct catalog *cat);
/* Releases in a loaded product (catalog_product_load), for cache weights. */
size_t catalog_release_count(const struct catalog *cat);
/* The inode the catalog gives mesh path `path` ("sales/orders/latest")
 * when no other node's hash collides with it (the usual case). */
uint64_t catalog_path_ino(const char *path);

/* The version `latest` should point at among a product's versions: the
 * highest active release that is not a pre-release; else the highest active
 * pre-release; else the highest deprecated one.  NULL if none. */
const struct cat_node *catalog_latest(const struct cat_node *product);

#endif
