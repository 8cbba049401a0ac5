/*
 * store.h - the store: a directory tree of plain files that is the truth
 * about the mesh (design.md: files are the truth, SQLite is the index).
 *
 *   STORE/.meshfs-store                    marker: "meshfs store format 1"
 *   STORE/generation                       change counter (rewritten in place on every
 *                                          publish, lifecycle or policy change)
 *   STORE/mesh.yaml                        mesh-wide policy (governance team)
 *   STORE/domains/<domain>/domain.yaml     owners and domain policy (domain.h)
 *   STORE/domains/<domain>/<product>/<version>/    one release, immutable:
 *        contract.yaml  schema.json  quality.json  <data files>  .manifest.json
 *   STORE/domains/<domain>/<product>/.lifecycle/<version>.json  a version's
 *                                          state (deprecated/retired), one file per
 *                                          version: no lost update between hosts
 *   STORE/domains/<domain>/<product>/.lifecycle.json   the same for all versions
 *                                          (older stores; read, never written)
 *   STORE/domains/<domain>/<product>/.status/<v>.contract.yaml  contract with
 *                                          status: deprecated, served in place of the original
 *   STORE/domains/<domain>/<product>/.product.yaml, .descriptor.yaml  the product's
 *                                          descriptor, as published and as served (descriptor.h)
 *   STORE/domains/<domain>/<product>/.tmp-*         a publish in progress (ignored)
 *   STORE/grants/ STORE/requests/          access grants and requests (grants.h)
 *   STORE/usage/<host>/                    one host's shipped usage segments
 *   STORE/changes/<host>/<bucket>/         change log of publishes and lifecycle changes
 *                                          (changelog.h; appended before the counter moves)
 *   STORE/index/index.db                   catalog index (SQLite, rebuilt by reindex)
 *
 * The store belongs to one account, the mesh service's (root or a system
 * user): it owns every file, and nobody else may read or write any of it
 * (directories 0700, files 0600, releases 0500/0400).  Ordinary users
 * reach the data through the mount and the service only.  store_audit()
 * says whether a store is so; store_lock_down() makes it so (both in
 * fs/store/store_audit.c).
 *
 * A release is written under a temporary name beside its final place, every
 * file and directory fsynced, then renamed into place exclusively
 * (RENAME_NOREPLACE, or where the filesystem refuses it, as NFS, CephFS
 * and GlusterFS do, a plain rename of the non-empty staging directory:
 * store_rename.h): a reader sees all of it or nothing, and of two hosts
 * publishing the same version exactly one wins.
 *
 * Not here: what a release must satisfy (publish.h), the in-memory view the
 * daemon serves (catalog.h), policy files (policy.h, domain.h, grants.h).
 */
#ifndef STORE_H
#define STORE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "mesh_err.h"

#define STORE_MARKER       ".meshfs-store"
#define STORE_MANIFEST     ".manifest.json"
#define STORE_LIFECYCLE    ".lifecycle.json"   /* read only: stores before per-version records */
#define STORE_LIFECYCLE_DIR ".lifecycle"       /* <version>.json: one record per version */
#define STORE_STATUS_DIR   ".status"    /* contracts re-stated as deprecated */
#define STORE_MAX_FILES    4096          /* files in one release */

/* Modes of what the store holds: nothing for the group, nothing for others. */
#define STORE_DIR_MODE          0700
#define STORE_FILE_MODE         0600
#define STORE_RELEASE_DIR_MODE  0500    /* an installed release: immutable */
#define STORE_RELEASE_FILE_MODE 0400

/* Create a new store at `path` (the directory may exist but must be empty
 * of meshfs files), owned by the calling process's effective uid, locked
 * down (STORE_DIR_MODE / STORE_FILE_MODE).  `mesh_yaml` is the initial
 * mesh-wide policy text.  Fails with -EEXIST if `path` is a store already.
 * Give it to a service account with store_lock_down(). */
int store_init(const char *path, const char *mesh_yaml, struct mesh_err *err);

/* Is the store locked down?  Walks the whole tree without following a
 * symlink: every entry must be a directory or a regular file owned by the
 * store root's owner with no group or other permission bits.  Directories
 * are opened to be read; regular files are only fstatat'ed (type, owner
 * and mode need no descriptor).  The daemon audits incrementally against
 * its record of the last clean audit (store_audit.h says what that proves
 * and what it leaves to a background full audit).  Returns the
 * number of problems (0: locked down) and, when there are some, *report
 * (malloc'ed, caller frees) lists the first ones, one per line, and how to
 * fix them.  -errno (err set) when the walk itself fails. */
int store_audit(const char *store, char **report, struct mesh_err *err);

/* Make the store locked down for `uid`:`gid`: every directory and regular
 * file under it (the root included) chowned to them and stripped of group
 * and other permission bits; symlinks, FIFOs, devices and sockets found in
 * the store are removed (meshfs never makes any).  Needs root unless uid is
 * the caller's.  *fixed (if not NULL) counts the entries changed. */
int store_lock_down(const char *store, uid_t uid, gid_t gid, size_t *fixed, struct mesh_err *err);

/* 0 if `path` is a meshfs store; -ENOENT (missing), -ENOTDIR, or -EINVAL
 * (a directory that is not a store) with a message otherwise. */
int store_check(const char *path, struct mesh_err *err);

/* The change counter: any change to its text means "rescan".  Read returns
 * the text (<= 63 bytes) in buf. */
int store_read_generation(const char *store, char *buf, size_t size);
int store_bump_generation(const char *store, struct mesh_err *err);

enum file_role { ROLE_DATA, ROLE_CONTRACT, ROLE_SCHEMA, ROLE_QUALITY, ROLE_DOC };
enum file_format { FMT_OTHER, FMT_CSV, FMT_JSONL, FMT_JSON, FMT_YAML, FMT_TEXT };
const char *file_role_name(enum file_role r);
const char *file_format_name(enum file_format f);
enum file_format file_format_from_name(const char *file_name);

/* A classified column of a data file, copied from the contract at publish
 * so the daemon learns what to mask without parsing YAML. */
struct manifest_column {
	char *name;
	char *classification;
};

struct manifest_file {
	char *name;
	enum file_role role;
	enum file_format format;
	uint64_t size;
	char sha256[65];
	bool derived;           /* generated by meshfs (schema.json from the contract) */
	struct manifest_column *columns;   /* classified columns (data files) */
	size_t n_columns;
};

struct manifest {
	char *domain, *product, *version, *contract_id;
	char *published_at;     /* RFC 3339 UTC */
	struct timespec published;
	uid_t publisher_uid;
	char *publisher_name;
	bool restricted;        /* the contract marks the product restricted */
	struct manifest_file *files;
	size_t n_files;
};

/* Parse a release's .manifest.json; `path` names it in messages. */
int manifest_parse(const char *text, size_t len, const char *path,
		   struct manifest **out, struct mesh_err *err);
int manifest_load_at(int dirfd, const char *path, struct manifest **out,
		     struct mesh_err *err);
char *manifest_to_json(const struct manifest *m);
void manifest_free(struct manifest *m);

/* A staging directory: .tmp-<version>.<pid>.<n> in the product's
 * directory, where a release is assembled before it is renamed into
 * place.  publish copies every file of a release into it once (each
 * source opened once) and validates the staged bytes, so what is checked
 * is what is installed.  Owned by one thread. */
struct store_stage {
	char name[128];
	int product_fd;         /* the product's directory */
	int fd;                 /* the staging directory (-1 once installed) */
	char *product_path;     /* "STORE/domains/D/P", for messages */
	struct timespec started;
};

/* Make a staging directory for a release of domain/product (the domain
 * directory must exist; the product directory is created if needed).
 * Abandoned .tmp-* directories of that product are removed first. */
int store_stage_begin(const char *store, const char *domain, const char *product, const char *version,
		      struct store_stage **out, struct mesh_err *err);
/* Copy the open regular file src_fd (from its current offset to its end)
 * into staging as `name`, with its size and SHA-256; more than max_bytes
 * fails with -EFBIG.  The caller opened src_fd with mesh_open_regular_at. */
int store_stage_copy(struct store_stage *st, int src_fd, const char *name, uint64_t max_bytes,
		     uint64_t *size, char sha[65], struct mesh_err *err);
/* Write generated content into staging as `name`, with its SHA-256. */
int store_stage_write(struct store_stage *st, const char *name, const void *content, size_t len,
		      uint64_t *size, char sha[65], struct mesh_err *err);
/* Remove the staging directory unless it was installed, and free.
 * NULL is a no-op. */
void store_stage_free(struct store_stage *st);

/* What to install: files already staged (publish), files copied from a
 * source directory, and files whose content meshfs generated
 * (schema.json, quality). */
struct release_file {
	const char *name;
	enum file_role role;
	const char *content;    /* generated content; else staged or copied */
	size_t content_len;
	bool staged;            /* already in spec->stage, with size and sha256 */
	uint64_t size;
	char sha256[65];
	bool derived;
	const struct manifest_column *columns;
	size_t n_columns;
};

struct release_spec {
	const char *domain, *product, *version, *contract_id;
	bool restricted;
	int src_dirfd;          /* files neither staged nor generated are copied from here */
	struct store_stage *stage;   /* NULL: store_install_release stages itself */
	uid_t publisher_uid;    /* who publishes (the caller the service acts for) */
	const char *publisher_name;  /* NULL: the process's real uid is the publisher */
	const struct release_file *files;
	size_t n_files;
};

/* Install a release: stage (or use spec->stage), copy (computing SHA-256),
 * fsync, write the manifest, rename into place, bump the generation.  On
 * any failure nothing is visible; a staging directory this call made is
 * removed (spec->stage is left for its owner's store_stage_free).  -EEXIST
 * if the version exists.  The product directory is created if needed; the
 * domain directory must exist.  On success *out (if not NULL) is the
 * manifest. */
int store_install_release(const char *store, const struct release_spec *spec,
			  struct manifest **out, struct mesh_err *err);

/* Remove leftovers of publishes that died (.tmp-* whose process is gone). */
int store_clean_staging(const char *store, struct mesh_err *err);
/* The same for one product's directory (publish calls it before staging). */
void store_clean_product_staging(int product_fd);

/* ---- lifecycle ---- */
enum lifecycle { LC_ACTIVE, LC_DEPRECATED, LC_RETIRED };
const char *lifecycle_name(enum lifecycle l);

struct lifecycle_entry {
	char *version;
	enum lifecycle state;
	char *sunset;     /* YYYY-MM-DD or NULL */
	char *reason;     /* or NULL */
	char *changed_at; /* RFC 3339 */
	char *changed_by;
};
struct lifecycle_table {
	struct lifecycle_entry *entries;
	size_t n;
};
/* Load a product's lifecycle records (.lifecycle/<version>.json, over the
 * older .lifecycle.json; none is an empty table).  lifecycle_of() gives LC_ACTIVE for versions not listed. */
int lifecycle_load_at(int product_dirfd, struct lifecycle_table *out, struct mesh_err *err);
/* Parse one version's record (.lifecycle/<version>.json: an object with
 * "state" active|deprecated|retired, optional sunset, reason, changed_at,
 * changed_by) into *out (free its strings with lifecycle_table_free of a
 * one-entry table, or as lifecycle_load_at does).  -EINVAL otherwise. */
int lifecycle_record_parse(const char *text, size_t len, const char *version, struct lifecycle_entry *out,
			   struct mesh_err *err);
enum lifecycle lifecycle_of(const struct lifecycle_table *t, const char *version);
const struct lifecycle_entry *lifecycle_find(const struct lifecycle_table *t, const char *version);
/* Set a version's state: its record written to a temporary name and
 * renamed into place (store_rename.h); bumps the generation.  `who` (a
 * user name) is recorded as changed_by. */
int store_set_lifecycle(const char *store, const char *domain, const char *product,
			const char *version, enum lifecycle state, const char *sunset,
			const char *reason, const char *who, struct mesh_err *err);
void lifecycle_table_free(struct lifecycle_table *t);

#endif
