/*
 * descriptor.h - product descriptors: Bitol ODPS v1.x (product.yaml).
 *
 * A product may ship product.yaml with any release.  meshfs validates it
 * against our reading of the standard's JSON schema (v1.0.0 and v1.1.0:
 * required fields, types, no unknown keys) and keeps the newest one per
 * product; it serves a descriptor per product in the mount whose
 * outputPorts list the versions meshfs has published (one port per
 * version, with its contract id and status), whatever the publisher wrote
 * there.  A product that never shipped one gets a descriptor derived from
 * the contract of its latest release.
 *
 *   STORE/domains/<d>/<p>/.product.yaml     the descriptor as published (newest)
 *   STORE/domains/<d>/<p>/.descriptor.yaml  what the mount serves as product.yaml
 *                                           (rewritten at publish, deprecate, retire)
 *
 * meshfs reads from a descriptor: identity, status, description, tags,
 * team members (owners: role containing "owner"), and inputPorts whose name
 * is "domain/product" (lineage inputs "domain/product@version").
 *
 * Not here: lineage (lineage.h), the catalog node that serves it
 * (catalog.c).  Parsed descriptors are immutable.
 */
#ifndef DESCRIPTOR_H
#define DESCRIPTOR_H

#include <stdbool.h>
#include <stddef.h>

#include "catalog.h"
#include "contract.h"
#include "mesh_err.h"

#define DESCRIPTOR_FILE        "product.yaml"         /* in a release and in the mount */
#define DESCRIPTOR_STORED      ".product.yaml"
#define DESCRIPTOR_SERVED      ".descriptor.yaml"
#define DESCRIPTOR_MAX_BYTES   (1u << 20)

struct descriptor {
	char *path;
	char *api_version, *kind, *id, *name, *version, *status, *domain;
	char *purpose, *usage, *limitations;
	char **tags;
	size_t n_tags;
	char **owners;          /* team usernames whose role contains "owner" */
	size_t n_owners;
	char **inputs;          /* "domain/product@version" from inputPorts */
	size_t n_inputs;
	char **foreign_inputs;  /* inputPorts whose name is not domain/product (no lineage) */
	size_t n_foreign;
	char *text;             /* the text as written */
	size_t len;
	int outputs_first, outputs_last;   /* lines of its top-level outputPorts (0: none) */
};

/* Parse and validate ODPS v1.x YAML.  Every problem is reported, one line
 * each "path:line:col: field: what" (in err->msg, as many as fit); returns
 * -EINVAL when there is any. */
int descriptor_parse(const char *text, size_t len, const char *path, struct descriptor **out,
		     struct mesh_err *err);
void descriptor_free(struct descriptor *d);

/* The stored descriptor of domain/product (`root_fd` is the store root);
 * -ENOENT when the product never shipped one. */
int descriptor_load_stored(int root_fd, const char *domain, const char *product, struct descriptor **out,
			   struct mesh_err *err);

/* Checks a publish adds: the descriptor's domain (when given) is the
 * release's.  -EINVAL naming the line. */
int descriptor_check_release(const struct descriptor *d, const struct contract *c, struct mesh_err *err);

/* One published version, for the output ports. */
struct descriptor_port {
	const char *version, *contract_id, *status;
};

/* The descriptor to serve: `d`'s text with its outputPorts replaced by
 * `ports`, or (d == NULL) one derived from `latest` (the contract of the
 * latest release; may be NULL).  Malloc'ed YAML text. */
char *descriptor_render(const struct descriptor *d, const struct contract *latest, const char *domain,
			const char *product, const char *product_status, const struct descriptor_port *ports,
			size_t n_ports);

/* Rewrite STORE/domains/<d>/<p>/.descriptor.yaml from the store's files
 * (and, when `new_text` is given, first store it as the product's
 * descriptor).  `cat` is a current catalog of the store, or NULL to scan
 * one.  Called after publish, deprecate, retire and by reindex; callers
 * bump the generation afterwards so that mounts serve the new file. */
int descriptor_refresh(const char *store, const struct catalog *cat, const char *domain, const char *product,
		       const char *new_text, size_t new_len, struct mesh_err *err);

/* The product's id when meshfs derives the descriptor: a UUID (RFC 4122
 * version 5, URL namespace) of "meshfs:product:<domain>/<product>". */
void descriptor_product_uuid(const char *domain, const char *product, char out[37]);

#endif
