/*
 * policy.h - who may read what, and what they see masked: an immutable
 * snapshot of every policy source of a store, and the decision function
 * the daemon calls at every open.
 *
 * Sources:  STORE/mesh.yaml            access: [...], masking: [...]  (governance)
 *           STORE/domains/D/domain.yaml owners, restricted, access: [...], masking: [...]
 *           STORE/domains/D/grants/ID.json grants made by `meshctl grant`/`approve`
 * Subjects: user:NAME, group:NAME, * (any local user).
 * Resources: the mesh, a domain, a product, a version; broader covers narrower.
 * Evaluation of a read: the domain's owners and governance always read;
 * otherwise an explicit deny anywhere wins, then an allow anywhere, else no
 * access.  Grants past their `until` stop counting at once (checked at
 * every decision against `now`).  Which products are restricted (hidden
 * from callers who may not read them) is the catalog's to say (catalog.h).
 *
 * Masking: mesh.yaml's masking rules (tightened, never relaxed, by a
 * domain's) say which classifications are masked for whom and with which
 * function (`function: null|redact|hash|last4|year|truncate`, default null;
 * truncate needs `precision: N`); "owners" in unmaskedFor stands for the
 * domain's owners.  Two rules masking one classification: the stronger
 * function wins.
 *
 * A snapshot is immutable after policy_load(): any number of threads may
 * decide concurrently.  No I/O in policy_decide().
 */
#ifndef POLICY_H
#define POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "identity.h"
#include "mesh_err.h"

struct policy;

enum policy_result { POLICY_ALLOW, POLICY_MASK, POLICY_DENY };
const char *policy_result_name(enum policy_result r);

/* A classification to mask and how: the strongest function among the
 * rules that mask it for the caller (view_mask.h names them). */
struct policy_mask {
	const char *classification;    /* strings of the snapshot */
	const char *function;          /* "null" (the default), "redact", "hash", ... */
	double precision;              /* truncate's */
	const char *source;            /* the rule: "mesh.yaml:12" */
};

struct policy_decision {
	enum policy_result result;
	char reason[512];              /* the rule and where it is written */
	struct policy_mask *masked;    /* every classification to mask (malloc'ed, no limit) */
	size_t n_masked;
};
/* Free what a decision holds (policy_decide overwrites *out without
 * freeing: clear before deciding again). */
void policy_decision_clear(struct policy_decision *d);

/* Load every source.  A malformed file is an error naming file:line and
 * the field: the caller keeps its previous snapshot (the daemon) or
 * reports it (meshctl).  `warnings` (may be NULL) receives non-fatal notes,
 * e.g. a grant naming a product that does not exist (it opens nothing). */
int policy_load(const char *store, struct policy **out, char **warnings, struct mesh_err *err);
void policy_free(struct policy *p);

/* May `who` read data of domain/product/version?  With ALLOW or MASK,
 * `classifications` (n of them) are the classified columns of the file
 * being opened: MASK lists which of them to mask.  Pass NULL/0 to ask
 * about the product in general. */
void policy_decide(const struct policy *p, const struct identity *who, const char *domain,
		   const char *product, const char *version, const char *const *classifications,
		   size_t n, time_t now, struct policy_decision *out);

/* Does any rule name a group (so decisions need supplementary groups)? */
bool policy_needs_groups(const struct policy *p);

/* ---- grants (files under STORE/domains/D/grants/) ---- */

struct grant {
	char *id;
	char *subject;                 /* user:x, group:y, * */
	char *domain, *product, *version;   /* product/version may be NULL */
	bool deny;
	time_t until;                  /* 0 = no expiry */
	char *grantor, *granted_at, *reason, *request;
	char *file;                    /* where it is written */
};

/* Write a grant file (owners' directory: the OS enforces who may). */
int grant_write(const char *store, const struct grant *g, char **id_out, struct mesh_err *err);
/* Remove every grant of `subject` on exactly that resource; *removed counts. */
int grant_revoke(const char *store, const char *domain, const char *product, const char *version,
		 const char *subject, size_t *removed, struct mesh_err *err);
/* Grants of a domain (all when domain is NULL). */
int grant_list(const char *store, const char *domain, struct grant **out, size_t *n, struct mesh_err *err);
void grants_free(struct grant *g, size_t n);

/* Append one line to STORE/domains/D/access.log: who (the caller the
 * command ran for) did what, when, why. */
void policy_audit(const char *store, const char *domain, const struct identity *who, const char *what);

#endif
