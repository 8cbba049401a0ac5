/*
 * publish.h - from a release directory to an installed release: everything
 * `meshctl validate` and `meshctl publish` check, in one place.
 *
 * Checks, in order: the release directory's entries (regular files with
 * safe names only), the contract (ODCS v3, publishable identity), the
 * domain (exists; the caller owns it or is governance), governance rules,
 * the version (SemVer, not published yet), the schema (given schema.json or
 * derived from the contract) and its compatibility with the previous
 * version, and the data against the contract.  Publishing installs only
 * when every required check passed; nothing is installed otherwise.
 */
#ifndef PUBLISH_H
#define PUBLISH_H

#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include "identity.h"
#include "mesh_err.h"
#include "store.h"

struct publish_options {
	bool install;            /* false: validate only */
	time_t now;              /* for freshness rules (0: time(NULL)) */
	size_t unique_memory;    /* bytes for unique-key tracking (0: default) */
	unsigned threads;        /* threads validating a CSV file (0: the online CPUs) */
	const struct identity *caller;  /* who publishes (what they may see of the mesh);
					   NULL: this process's credentials */
	uint64_t sql_max_bytes;         /* SQL quality rules run on data files up to this size
					   (sqlrule.h); 0: SQLRULE_DEFAULT_MAX_BYTES */
	bool sql_off;                   /* list SQL rules as not checked, run none */
	struct progress *progress;      /* a progress line for staging and validation
					   (progress.h; NULL: none); cleared on return */
};

struct publish_check {           /* one line of the report */
	char *what;              /* "contract", "schema", "data orders.csv", ... */
	bool passed;
	bool warning;            /* a failed check that does not block */
	char *detail;            /* human text, may span lines */
};

struct publish_report {
	char *domain, *product, *version;
	struct publish_check *checks;
	size_t n_checks;
	char *quality_json;      /* results of every rule (served as quality.json) */
	struct manifest *installed;   /* set when installed */
	bool failed;             /* a required check failed */
};

/* Validate (and with opts->install, install) a release, read through
 * `release_dirfd`, a directory descriptor (for the mesh service: the one
 * the client passed over its socket).  Every file is opened relative to
 * that descriptor (O_NOFOLLOW, O_NONBLOCK, regular files only).  To
 * install, each is opened once and copied into a staging directory in the
 * store; every check runs over the staged bytes, and what is installed is
 * exactly what was checked (validate-only reads the release directory).  `release_label` names the directory in messages.  `caller` is
 * who publishes: an owner of the contract's domain or governance, decided
 * on this identity only (never on the process's own credentials or the
 * store's permissions).  Returns 0 when the run completed - look at
 * report->failed for the verdict - or a negative errno when it could not
 * run (unreadable directory, missing store), with err set.  -EACCES when
 * the caller may not publish into the domain, -EEXIST for an existing
 * version.  The descriptor stays the caller's (not closed). */
int publish_release_fd(const char *store, int release_dirfd, const char *release_label,
		       const struct identity *caller, const struct publish_options *opts,
		       struct publish_report *report, struct mesh_err *err);
/* The same for a directory path (direct mode: meshctl run by the store's
 * owner); `caller` NULL means this process's real credentials. */
int publish_run(const char *store, const char *release_dir, const struct identity *caller,
		const struct publish_options *opts, struct publish_report *report, struct mesh_err *err);
void publish_report_free(struct publish_report *report);

/* Add a line to a report; a failed non-warning line fails the report. */
void publish_report_add(struct publish_report *r, const char *what, bool passed, bool warning,
			const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* 0 if `caller` may publish, deprecate, retire or administer access in
 * `domain`: an owner of the domain or governance (root, or a member of
 * mesh.yaml's governance group).  -ENOENT names the command that creates a
 * missing domain; -EACCES names the owners. */
int meshfs_check_publisher(const char *store, const char *domain, const char *action,
			   const struct identity *caller, struct mesh_err *err);

#endif
