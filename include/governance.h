/*
 * governance.h - the mesh's policy files as data: STORE/mesh.yaml (the
 * governance team's) and STORE/domains/<d>/domain.yaml (each domain
 * team's), and the rules they set for publishing.
 *
 *   mesh.yaml                            domain.yaml
 *   ---------                            -----------
 *   apiVersion: meshfs/v1                apiVersion: meshfs/v1
 *   kind: MeshPolicy                     kind: Domain
 *   governance: {group: mesh-gov}        domain: sales
 *   publish:                             owners: [group:sales, user:bob]
 *     requiredFields: [description.purpose, owner, support]
 *     columnNames: '^[a-z][a-z0-9_]*$'   publish: {...stricter rules...}
 *     allowedClassifications: [...]
 *     classifyPersonalData: true
 *     requireInputs: true   (lineage problems fail the publish)
 *
 * A domain may add rules (more required fields, another column-name
 * pattern that must also match, fewer allowed classifications, turn the
 * personal-data rule on), never remove the mesh's.
 *
 * Loaded structures are immutable; free with the matching _free.
 */
#ifndef GOVERNANCE_H
#define GOVERNANCE_H

#include <stdbool.h>
#include <stddef.h>

#include "contract.h"
#include "identity.h"
#include "mesh_err.h"

#define GOV_DEFAULT_GROUP "mesh-governance"

struct publish_rules {
	char **required_fields;        /* description.purpose, owner, support, tags, ... */
	size_t n_required;
	char **column_patterns;        /* each must match every column name (POSIX ERE) */
	size_t n_patterns;
	char **allowed_classifications;/* NULL = any */
	size_t n_allowed;
	bool classify_personal_data;
	bool require_inputs;           /* declared inputs must exist, be active, close no cycle
					  (else lineage problems are warnings) */
	char *source;                  /* "mesh.yaml" or "domains/sales/domain.yaml" */
	int line;                      /* where its publish: section starts */
	/* where each rule is written (its key), cited as source:line:col */
	struct gov_rule_pos { int line, col; } at_required, at_columns, at_allowed, at_classify, at_inputs;
};

struct mesh_policy {
	char *path;
	char *governance_group;
	struct publish_rules publish;
};

struct domain_info {
	char *name, *path;
	char **owners;                 /* user:NAME / group:NAME */
	size_t n_owners;
	char **restricted;             /* products hidden without a grant */
	size_t n_restricted;
	struct publish_rules publish;
	bool has_publish;
};

/* The default STORE/mesh.yaml text written by `meshctl init`. */
const char *gov_default_mesh_yaml(void);

int gov_load_mesh(const char *store, struct mesh_policy **out, struct mesh_err *err);
void gov_mesh_free(struct mesh_policy *p);
/* -ENOENT (with the command that creates it) when the domain does not exist. */
int gov_load_domain(const char *store, const char *domain, struct domain_info **out, struct mesh_err *err);
void gov_domain_free(struct domain_info *d);

/* Root, or a member of the mesh's governance group. */
bool gov_is_governance(const struct mesh_policy *p, const struct identity *who);
/* One of the domain's owners (user or group match). */
bool gov_is_owner(const struct domain_info *d, const struct identity *who);
/* "user:bob, group:sales" for messages (caller frees). */
char *gov_owner_list(const struct domain_info *d);

/* Write domain.yaml for a new domain and its directory (with grants/ and
 * requests/), owned by the calling process (the store's owner), locked down
 * like the rest of the store: its owners act through the mesh service,
 * which decides with gov_is_owner(), never through file permissions.
 * -EEXIST if it exists.  The caller checked gov_is_governance(). */
int gov_create_domain(const char *store, const char *name, char *const *owners, size_t n_owners,
		      struct mesh_err *err);
/* Rewrite domain.yaml with owners added/removed (atomically). */
int gov_set_owners(const char *store, const struct domain_info *d, char *const *owners, size_t n,
		   struct mesh_err *err);

/* Check a contract (and, for classifyPersonalData, the release's data
 * files in dirfd) against the mesh's and the domain's publish rules.
 * Each violation is a line "rule ... (defined in FILE:LINE): what" in
 * *problems (caller frees); returns the number of violations. */
size_t gov_check_contract(const struct mesh_policy *mesh, const struct domain_info *domain,
			  const struct contract *c, int dirfd, char **problems);

#endif
