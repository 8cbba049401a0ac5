/*
 * publish.c - everything `meshctl validate` and `meshctl publish` check,
 * and the install (contract in include/publish.h).
 *
 * The release directory is read once into a list of names; the contract
 * is read (one open) and parsed, the caller's right to publish into its
 * domain checked, and then every file is opened once, relative to the
 * release directory's descriptor, and copied into a staging directory in
 * the store.  Every check runs over the staged files, so a file swapped in
 * the release directory after it was copied changes nothing: what is
 * validated is what store_install_release() renames into place.
 *
 * Not here: how contracts, schemas and data are checked (contract.c,
 * schema.c, validate.c), who owns a domain (domain.c), where files go
 * (store.c).
 */
#include "publish.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "contract.h"
#include "descriptor.h"
#include "mesh_util.h"
#include "progress.h"
#include "sqlrule.h"
#include "publish_rules.h"

/* Files larger than this are refused: a release is copied and checked in
 * one pass, and a mistake of this size is more likely than a real need. */
#define MAX_DATA_FILE ((uint64_t)4 << 30)

struct entry {
	char *name;
	enum file_role role;
	uint64_t size;
	uint64_t staged_size;   /* as copied into staging */
	char sha256[65];
};

void publish_report_add(struct publish_report *r, const char *what, bool passed, bool warning,
		      const char *fmt, ...)
{
	r->checks = xrealloc(r->checks, (r->n_checks + 1) * sizeof *r->checks);
	struct publish_check *c = &r->checks[r->n_checks++];
	c->what = xstrdup(what);
	c->passed = passed;
	c->warning = warning;
	c->detail = NULL;
	if (fmt) {
		struct strbuf sb = STRBUF_INIT;
		va_list ap;
		va_start(ap, fmt);
		char tmp[4096];
		vsnprintf(tmp, sizeof tmp, fmt, ap);
		va_end(ap);
		strbuf_puts(&sb, tmp);
		c->detail = strbuf_detach(&sb, NULL);
	}
	if (!passed && !warning)
		r->failed = true;
}

void publish_report_free(struct publish_report *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_checks; i++) {
		free(r->checks[i].what);
		free(r->checks[i].detail);
	}
	free(r->checks);
	free(r->domain);
	free(r->product);
	free(r->version);
	free(r->quality_json);
	manifest_free(r->installed);
	memset(r, 0, sizeof *r);
}

static enum file_role role_of(const char *name)
{
	if (!strcmp(name, "contract.yaml"))
		return ROLE_CONTRACT;
	if (!strcmp(name, "schema.json"))
		return ROLE_SCHEMA;
	if (!strcmp(name, DESCRIPTOR_FILE))
		return ROLE_DOC;      /* the product's descriptor: kept with the release too */
	if (file_format_from_name(name) == FMT_TEXT)
		return ROLE_DOC;
	return ROLE_DATA;
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

/* Read the release directory: regular files with safe names only.  Every
 * offending entry is reported (not just the first). */
static int scan_release_dir(int dirfd, const char *dir, struct entry **out, size_t *n_out,
			    struct publish_report *r, struct mesh_err *err)
{
	int fd = dup(dirfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return mesh_errf(err, -errno, "%s: %s", dir, strerror(errno));
	}
	rewinddir(d);   /* a dup shares the offset: a descriptor read before starts over */
	struct entry *entries = NULL;
	size_t n = 0;
	struct strbuf problems = STRBUF_INIT;
	struct dirent *de;
	errno = 0;
	while ((de = readdir(d))) {
		const char *name = de->d_name;
		if (!strcmp(name, ".") || !strcmp(name, ".."))
			continue;
		struct stat st;
		if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			strbuf_printf(&problems, "%s/%s: %s\n", dir, name, strerror(errno));
			continue;
		}
		if (S_ISLNK(st.st_mode)) {
			strbuf_printf(&problems, "%s/%s: a symbolic link (a release holds regular files only)\n",
				      dir, name);
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			strbuf_printf(&problems, "%s/%s: a directory (a release is one flat directory)\n", dir, name);
			continue;
		}
		if (!S_ISREG(st.st_mode)) {
			strbuf_printf(&problems, "%s/%s: a device, fifo or socket (a release holds regular files only)\n",
				      dir, name);
			continue;
		}
		if (!mesh_filename_ok(name)) {
			strbuf_printf(&problems, "%s/%s: not an allowed file name (no leading '.', no control "
				      "characters, at most 255 bytes)\n", dir, name);
			continue;
		}
		if (!strcmp(name, "quality.json")) {
			strbuf_printf(&problems, "%s/quality.json: reserved: meshfs writes the quality results\n", dir);
			continue;
		}
		if ((uint64_t)st.st_size > MAX_DATA_FILE) {
			strbuf_printf(&problems, "%s/%s: %.1f GiB, more than the %llu GiB a release file may have\n",
				      dir, name, (double)st.st_size / (1 << 30),
				      (unsigned long long)(MAX_DATA_FILE >> 30));
			continue;
		}
		if (n >= STORE_MAX_FILES) {
			strbuf_printf(&problems, "%s: more than %d files\n", dir, STORE_MAX_FILES);
			break;
		}
		entries = xrealloc(entries, (n + 1) * sizeof *entries);
		entries[n].name = xstrdup(name);
		entries[n].role = role_of(name);
		entries[n].size = (uint64_t)st.st_size;
		n++;
	}
	closedir(d);
	if (n)
		qsort(entries, n, sizeof *entries, cmp_entry);
	if (problems.len) {
		problems.buf[problems.len - 1] = '\0';
		publish_report_add(r, "release directory", false, false, "%s", problems.buf);
	} else {
		publish_report_add(r, "release directory", true, false, "%zu files", n);
	}
	strbuf_release(&problems);
	*out = entries;
	*n_out = n;
	return 0;
}

static void free_entries(struct entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(e[i].name);
	free(e);
}

/* Versions of a product already in the store, by reading its directory
 * (files are the truth; retired versions count: a version number is never
 * reused). */
static bool version_exists(const char *store, const char *domain, const char *product,
			   const char *version)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/domains/%s/%s/%s", store, domain, product, version);
	struct stat st;
	return fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* The release's contract: one open through the release directory, parsed
 * from the bytes read (the same bytes are staged). */
static int read_contract(int dirfd, const char *release_label, char **text, size_t *len,
			 struct contract **c, struct mesh_err *err)
{
	char cpath[PATH_MAX];
	snprintf(cpath, sizeof cpath, "%s/contract.yaml", release_label);
	struct mesh_err rerr = {0};
	int rc = mesh_read_file_at(dirfd, "contract.yaml", CONTRACT_MAX_BYTES, text, len, &rerr);
	if (rc)
		return mesh_errf(err, rc, "%s/%s", release_label, rerr.msg);
	rc = contract_parse(*text, *len, cpath, c, err);
	if (!rc)
		rc = contract_check_publishable(*c, err);
	return rc;
}

/* Copy every entry into staging, each opened once; a file that is no
 * longer a regular file of a size we accept fails the release. */
static void stage_entries(int dirfd, const char *release_label, struct store_stage *stage,
			  struct entry *entries, size_t n, const char *contract_text, size_t contract_len,
			  struct progress *progress, struct publish_report *r)
{
	struct strbuf problems = STRBUF_INIT;
	for (size_t i = 0; i < n; i++) {
		struct entry *e = &entries[i];
		struct mesh_err cerr = {0};
		if (e->role == ROLE_CONTRACT) {
			/* the bytes parsed above, not a second read */
			if (store_stage_write(stage, e->name, contract_text, contract_len, &e->staged_size,
					      e->sha256, &cerr))
				strbuf_printf(&problems, "%s\n", cerr.msg);
			continue;
		}
		int fd = mesh_open_regular_at(dirfd, e->name, O_RDONLY, 0, NULL);
		if (fd < 0) {
			strbuf_printf(&problems, "%s/%s: %s (changed while publishing?)\n", release_label, e->name,
				      mesh_open_strerror(fd));
			continue;
		}
		char label[320];
		snprintf(label, sizeof label, "staging %s", e->name);
		progress_relabel(progress, label);
		if (store_stage_copy(stage, fd, e->name, MAX_DATA_FILE, &e->staged_size, e->sha256, &cerr))
			strbuf_printf(&problems, "%s/%s\n", release_label, cerr.msg);
		if (e->role == ROLE_DATA)
			progress_add(progress, e->size);   /* a file at a time: the copy is the store's */
		close(fd);
	}
	if (problems.len) {
		problems.buf[problems.len - 1] = '\0';
		publish_report_add(r, "staging", false, false, "%s", problems.buf);
	}
	strbuf_release(&problems);
}

/* Bytes of the release's data files (what validation reads). */
static uint64_t data_bytes(const struct entry *entries, size_t n)
{
	uint64_t total = 0;
	for (size_t i = 0; i < n; i++)
		if (entries[i].role == ROLE_DATA)
			total += entries[i].size;
	return total;
}

int publish_release_fd(const char *store, int release_dirfd, const char *release_label,
		       const struct identity *caller, const struct publish_options *opts,
		       struct publish_report *r, struct mesh_err *err)
{
	memset(r, 0, sizeof *r);
	int rc = store_check(store, err);
	if (rc)
		return rc;
	const char *label = release_label ? release_label : "release";
	struct entry *entries = NULL;
	size_t n = 0;
	struct contract *c = NULL;
	char *contract_text = NULL;
	size_t contract_len = 0;
	struct store_stage *stage = NULL;
	struct publish_ctx pc = {0};
	struct descriptor *desc = NULL;
	struct identity me;
	if (!caller) {
		identity_current(&me);
		caller = &me;
	}
	rc = scan_release_dir(release_dirfd, label, &entries, &n, r, err);
	if (rc)
		goto out;
	bool dir_refused = r->failed;

	/* the contract: identity first, everything else hangs on it */
	bool has_contract = false;
	for (size_t i = 0; i < n; i++)
		has_contract |= entries[i].role == ROLE_CONTRACT;
	if (!has_contract) {
		publish_report_add(r, "contract", false, false, "%s/contract.yaml: missing (every release needs an "
			  "ODCS v3 contract; 'meshctl init DATAFILE' drafts one)", label);
		goto out;
	}
	struct mesh_err cerr = {0};
	if (read_contract(release_dirfd, label, &contract_text, &contract_len, &c, &cerr)) {
		publish_report_add(r, "contract", false, false, "%s", cerr.msg);
		goto out;
	}
	r->domain = xstrdup(c->domain);
	r->product = xstrdup(c->data_product);
	r->version = xstrdup(c->version);
	publish_report_add(r, "contract", true, false, "%s/%s %s (id %s)", c->domain, c->data_product, c->version, c->id);

	/* who may publish here (the caller, explicitly), and the mesh's rules */
	struct mesh_err aerr = {0};
	rc = publish_check_domain(store, c, caller, &aerr);
	if (rc) {
		publish_report_add(r, "domain", false, false, "%s", aerr.msg);
		if (rc == -EACCES) {
			mesh_errf(err, rc, "%s", aerr.msg);
			goto out;
		}
		rc = 0;
		goto out;
	}
	publish_report_add(r, "domain", true, false, "%s", aerr.msg[0] ? aerr.msg : c->domain);
	if (version_exists(store, c->domain, c->data_product, c->version)) {
		if (opts->install) {
			rc = mesh_errf(err, -EEXIST, "%s/%s %s already exists (releases are immutable: publish a "
				       "new version)", c->domain, c->data_product, c->version);
			goto out;
		}
		publish_report_add(r, "version", false, false, "%s/%s %s already exists (releases are "
				   "immutable: publish a new version)", c->domain, c->data_product, c->version);
	}
	if (dir_refused)   /* nothing to stage: the report says why */
		goto out;

	/* To install: every file into staging, once; from here on only staged
	 * bytes count.  To validate only, nothing is installed, so the checks
	 * read the release directory itself (each open through the same
	 * no-follow, non-blocking helper) and the copy is saved. */
	int check_fd = release_dirfd;
	if (opts->install) {
		rc = store_stage_begin(store, c->domain, c->data_product, c->version, &stage, err);
		if (rc)
			goto out;
		progress_phase(opts->progress, "staging", data_bytes(entries, n));
		stage_entries(release_dirfd, label, stage, entries, n, contract_text, contract_len, opts->progress, r);
		if (r->failed)
			goto out;
		check_fd = stage->fd;
	}
	publish_check_governance(store, c, check_fd, r);
	for (size_t i = 0; i < n; i++)
		if (!strcmp(entries[i].name, DESCRIPTOR_FILE))
			desc = publish_check_descriptor(check_fd, label, c, r);
	publish_check_lineage(store, c, desc ? desc->inputs : NULL, desc ? desc->n_inputs : 0, caller, r);

	/* schema, compatibility, data: read from staging when installing */
	pc.store = store;
	pc.release_dir = label;
	pc.dirfd = check_fd;
	pc.contract = c;
	pc.now = opts->now ? opts->now : time(NULL);
	pc.unique_memory = opts->unique_memory;
	pc.threads = opts->threads;
	for (size_t i = 0; i < n; i++)
		if (entries[i].role == ROLE_SCHEMA)
			pc.has_schema = true;
	publish_check_schema(&pc, r);
	pc.progress = opts->progress;
	pc.sql_max_bytes = opts->sql_off ? 0 : opts->sql_max_bytes ? opts->sql_max_bytes : SQLRULE_DEFAULT_MAX_BYTES;
	progress_phase(pc.progress, "validating", data_bytes(entries, n));
	for (size_t i = 0; i < n; i++)
		if (entries[i].role == ROLE_DATA)
			publish_check_data(&pc, entries[i].name, r);
	progress_clear(pc.progress);
	publish_check_relationships(&pc, caller, r);
	r->quality_json = publish_quality_json(&pc, r);
	if (r->failed || !opts->install)
		goto out;

	/* install what was staged and checked, plus what meshfs generated */
	size_t nf = 0;
	struct release_file *files = xcalloc(n + 2, sizeof *files);
	for (size_t i = 0; i < n; i++) {
		files[nf].name = entries[i].name;
		files[nf].role = entries[i].role;
		files[nf].staged = true;
		files[nf].size = entries[i].staged_size;
		memcpy(files[nf].sha256, entries[i].sha256, 65);
		if (entries[i].role == ROLE_DATA)
			publish_classified_columns(&pc, entries[i].name, &files[nf].columns, &files[nf].n_columns);
		nf++;
	}
	if (!pc.has_schema && pc.schema_json) {
		files[nf++] = (struct release_file){.name = "schema.json", .role = ROLE_SCHEMA,
			.content = pc.schema_json, .content_len = strlen(pc.schema_json), .derived = true};
	}
	files[nf++] = (struct release_file){.name = "quality.json", .role = ROLE_QUALITY,
		.content = r->quality_json, .content_len = strlen(r->quality_json), .derived = true};
	struct release_spec spec = {
		.domain = c->domain, .product = c->data_product, .version = c->version,
		.contract_id = c->id, .restricted = c->restricted,
		.src_dirfd = -1, .stage = stage,
		.publisher_uid = caller->uid, .publisher_name = caller->user,
		.files = files, .n_files = nf,
	};
	rc = store_install_release(store, &spec, &r->installed, err);
	for (size_t i = 0; i < nf; i++)
		publish_free_columns((struct manifest_column *)files[i].columns, files[i].n_columns);
	free(files);
	if (!rc) {
		publish_after_install(&pc, r->installed);
		publish_update_descriptor(store, c, desc, r);
	}
out:
	progress_clear(opts->progress);
	descriptor_free(desc);
	publish_ctx_release(&pc);
	store_stage_free(stage);
	contract_free(c);
	free(contract_text);
	free_entries(entries, n);
	return rc;
}

int publish_run(const char *store, const char *release_dir, const struct identity *caller,
		const struct publish_options *opts, struct publish_report *r, struct mesh_err *err)
{
	memset(r, 0, sizeof *r);
	int dirfd = open(release_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NONBLOCK);
	if (dirfd < 0)
		return mesh_errf(err, -errno, "%s: %s", release_dir,
				 errno == ENOTDIR ? "not a directory (give the release directory)" : strerror(errno));
	struct identity me;
	if (!caller) {
		identity_current(&me);
		caller = &me;
	}
	int rc = publish_release_fd(store, dirfd, release_dir, caller, opts, r, err);
	close(dirfd);
	return rc;
}
