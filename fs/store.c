/*
 * store.c - the store's files: layout, change counter, manifests, atomic
 * install of a release, lifecycle table (contract in include/store.h).
 *
 * Not here: deciding whether a release may be published (publish.c), the
 * daemon's in-memory view (catalog.c).
 */
#include "store.h"
#include "changelog.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "identity.h"
#include "mesh_util.h"
#include "state_dir.h"
#include "store_rename.h"

#define MARKER_TEXT "meshfs store format 1\n"
#define COPY_BLOCK (1u << 20)
#define GENERATION_SIZE 64

/* ---- names of enums ---- */

const char *file_role_name(enum file_role r)
{
	static const char *names[] = {"data", "contract", "schema", "quality", "doc"};
	return (unsigned)r < sizeof names / sizeof *names ? names[r] : "data";
}

const char *file_format_name(enum file_format f)
{
	static const char *names[] = {"other", "csv", "jsonl", "json", "yaml", "text"};
	return (unsigned)f < sizeof names / sizeof *names ? names[f] : "other";
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

enum file_format file_format_from_name(const char *name)
{
	if (ends_with(name, ".csv"))
		return FMT_CSV;
	if (ends_with(name, ".jsonl") || ends_with(name, ".ndjson"))
		return FMT_JSONL;
	if (ends_with(name, ".json"))
		return FMT_JSON;
	if (ends_with(name, ".yaml") || ends_with(name, ".yml"))
		return FMT_YAML;
	if (ends_with(name, ".md") || ends_with(name, ".txt"))
		return FMT_TEXT;
	return FMT_OTHER;
}

static enum file_role role_from_name(const char *s)
{
	for (int r = ROLE_DATA; r <= ROLE_DOC; r++)
		if (!strcmp(s, file_role_name(r)))
			return r;
	return ROLE_DATA;
}

static enum file_format format_from_text(const char *s)
{
	for (int f = FMT_OTHER; f <= FMT_TEXT; f++)
		if (!strcmp(s, file_format_name(f)))
			return f;
	return FMT_OTHER;
}

/* ---- init / check / generation ---- */

static int mkdir_mode(const char *root, const char *sub, mode_t mode, struct mesh_err *err)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%s", root, sub);
	if (mkdir(path, mode) < 0 && errno != EEXIST)
		return mesh_errf(err, -errno, "%s: %s", path, strerror(errno));
	int fd = mesh_open_dir_at(AT_FDCWD, path);
	if (fd < 0)
		return mesh_errf(err, fd, "%s: %s", path, strerror(-fd));
	int rc = fchmod(fd, mode) < 0 ? mesh_errf(err, -errno, "%s: chmod: %s", path, strerror(errno)) : 0;
	close(fd);
	return rc;
}

int store_init(const char *path, const char *mesh_yaml, struct mesh_err *err)
{
	if (mkdir(path, STORE_DIR_MODE) < 0 && errno != EEXIST)
		return mesh_errf(err, -errno, "%s: %s", path, strerror(errno));
	int root = mesh_open_dir_at(AT_FDCWD, path);
	if (root < 0)
		return mesh_errf(err, root == -ENOTDIR ? -ENOTDIR : root, "%s: %s", path,
				 root == -ENOTDIR || root == -ELOOP ? "not a directory" : strerror(-root));
	int rc = 0;
	if (faccessat(root, STORE_MARKER, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
		rc = mesh_errf(err, -EEXIST, "%s: already a meshfs store", path);
		goto out;
	}
	/* nothing for anyone but the store's owner: people come in through
	 * the mount and the mesh service, never through the files */
	if (fchmod(root, STORE_DIR_MODE) < 0) {
		rc = mesh_errf(err, -errno, "%s: chmod: %s", path, strerror(errno));
		goto out;
	}
	if ((rc = mkdir_mode(path, "domains", STORE_DIR_MODE, err)) ||
	    (rc = mkdir_mode(path, "grants", STORE_DIR_MODE, err)) ||
	    (rc = mkdir_mode(path, "requests", STORE_DIR_MODE, err)) ||
	    (rc = mkdir_mode(path, "usage", STORE_DIR_MODE, err)))
		goto out;
	if ((rc = mesh_write_file_atomic(root, "mesh.yaml", mesh_yaml, strlen(mesh_yaml), STORE_FILE_MODE, err)))
		goto out;
	if ((rc = store_bump_generation(path, err)))
		goto out;
	/* the marker last: a half-made store is not a store; its id names
	 * each host's local state for it (state_dir.h) */
	char marker[128];
	state_new_store_id_line(marker + snprintf(marker, sizeof marker, MARKER_TEXT),
				sizeof marker - strlen(MARKER_TEXT));
	rc = mesh_write_file_atomic(root, STORE_MARKER, marker, strlen(marker), STORE_FILE_MODE, err);
out:
	close(root);
	return rc;
}

int store_check(const char *path, struct mesh_err *err)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return mesh_errf(err, -errno, "%s: %s", path, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return mesh_errf(err, -ENOTDIR, "%s: not a directory", path);
	char marker[PATH_MAX];
	snprintf(marker, sizeof marker, "%s/" STORE_MARKER, path);
	if (access(marker, F_OK) < 0)
		return mesh_errf(err, -EINVAL,
				 "%s: not a meshfs store (no %s; create one with 'meshctl --store %s init')",
				 path, STORE_MARKER, path);
	return 0;
}

int store_read_generation(const char *store, char *buf, size_t size)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/generation", store);
	int fd = mesh_open_regular_at(AT_FDCWD, path, O_RDONLY, 0, NULL);
	if (fd < 0)
		return fd;
	ssize_t n = pread(fd, buf, size - 1, 0);
	int e = errno;
	close(fd);
	if (n < 0)
		return -e;
	buf[n] = '\0';
	return 0;
}

int store_bump_generation(const char *store, struct mesh_err *err)
{
	/* Counter plus time and pid: two concurrent bumps from different
	 * hosts may read the same counter, but still write different text,
	 * and a change of text is all a watcher needs.  The file is written
	 * in place: a watcher polling it never sees it missing. */
	char old[64] = "0";
	store_read_generation(store, old, sizeof old);
	unsigned long long n = strtoull(old, NULL, 10);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	char text[GENERATION_SIZE + 1];
	snprintf(text, sizeof text, "%-*s", GENERATION_SIZE, "");
	int len = snprintf(text, sizeof text, "%llu %lld.%09ld %ld", n + 1, (long long)ts.tv_sec,
			   ts.tv_nsec, (long)getpid());
	text[len] = ' ';
	text[GENERATION_SIZE - 1] = '\n';
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/generation", store);
	int fd = mesh_open_regular_at(AT_FDCWD, path, O_WRONLY | O_CREAT, STORE_FILE_MODE, NULL);
	if (fd < 0)
		return mesh_errf(err, fd, "%s: %s", path, mesh_open_strerror(fd));
	int rc = 0;
	if (pwrite(fd, text, GENERATION_SIZE, 0) != GENERATION_SIZE || fsync(fd) < 0)
		rc = mesh_errf(err, -errno, "%s: %s", path, strerror(errno));
	close(fd);
	return rc;
}

/* ---- manifest ---- */

void manifest_free(struct manifest *m)
{
	if (!m)
		return;
	free(m->domain);
	free(m->product);
	free(m->version);
	free(m->contract_id);
	free(m->published_at);
	free(m->publisher_name);
	for (size_t i = 0; i < m->n_files; i++) {
		free(m->files[i].name);
		for (size_t k = 0; k < m->files[i].n_columns; k++) {
			free(m->files[i].columns[k].name);
			free(m->files[i].columns[k].classification);
		}
		free(m->files[i].columns);
	}
	free(m->files);
	free(m);
}

static const char *jstr(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

int manifest_parse(const char *text, size_t len, const char *path,
		   struct manifest **out, struct mesh_err *err)
{
	json_error_t jerr;
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return mesh_errf(err, -EINVAL, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
	int rc = -EINVAL;
	struct manifest *m = xcalloc(1, sizeof *m);
	const char *domain = jstr(root, "domain"), *product = jstr(root, "product"),
		   *version = jstr(root, "version"), *published = jstr(root, "published_at");
	json_t *files = json_object_get(root, "files");
	if (!domain || !product || !version || !published || !json_is_array(files)) {
		mesh_errf(err, -EINVAL, "%s: manifest lacks domain, product, version, published_at or files", path);
		goto fail;
	}
	m->domain = xstrdup(domain);
	m->product = xstrdup(product);
	m->version = xstrdup(version);
	m->contract_id = xstrdup(jstr(root, "contract_id"));
	m->published_at = xstrdup(published);
	time_t t = 0;
	mesh_time_parse(published, &t);
	m->published.tv_sec = t;
	const char *frac = strchr(published, '.');
	if (frac && strlen(frac) >= 4)   /* milliseconds, as written by us */
		m->published.tv_nsec = strtol(frac + 1, NULL, 10) * 1000000L % 1000000000L;
	json_t *pub = json_object_get(root, "publisher");
	m->publisher_uid = (uid_t)json_integer_value(json_object_get(pub, "uid"));
	m->publisher_name = xstrdup(jstr(pub, "name"));
	m->restricted = json_is_true(json_object_get(root, "restricted"));
	m->n_files = json_array_size(files);
	m->files = xcalloc(m->n_files, sizeof *m->files);
	for (size_t i = 0; i < m->n_files; i++) {
		json_t *f = json_array_get(files, i);
		const char *name = jstr(f, "name"), *sha = jstr(f, "sha256");
		json_t *size = json_object_get(f, "size");
		if (!name || !mesh_filename_ok(name) || !json_is_integer(size) || !sha ||
		    strlen(sha) != 64) {
			mesh_errf(err, -EINVAL, "%s: files[%zu]: needs a safe name, size and sha256", path, i);
			goto fail;
		}
		m->files[i].name = xstrdup(name);
		m->files[i].size = (uint64_t)json_integer_value(size);
		memcpy(m->files[i].sha256, sha, 65);
		const char *role = jstr(f, "role"), *format = jstr(f, "format");
		m->files[i].role = role ? role_from_name(role) : ROLE_DATA;
		m->files[i].format = format ? format_from_text(format) : file_format_from_name(name);
		m->files[i].derived = json_is_true(json_object_get(f, "derived"));
		json_t *cols = json_object_get(f, "columns");
		size_t ncols = json_is_array(cols) ? json_array_size(cols) : 0;
		m->files[i].columns = ncols ? xcalloc(ncols, sizeof *m->files[i].columns) : NULL;
		for (size_t k = 0; k < ncols; k++) {
			json_t *c = json_array_get(cols, k);
			const char *cname = jstr(c, "name"), *cls = jstr(c, "classification");
			if (!cname || !cls) {
				mesh_errf(err, -EINVAL, "%s: files[%zu].columns[%zu]: needs name and classification",
					  path, i, k);
				goto fail;
			}
			m->files[i].columns[k].name = xstrdup(cname);
			m->files[i].columns[k].classification = xstrdup(cls);
			m->files[i].n_columns++;
		}
	}
	*out = m;
	m = NULL;
	rc = 0;
fail:
	manifest_free(m);
	json_decref(root);
	return rc;
}

int manifest_load_at(int dirfd, const char *path, struct manifest **out, struct mesh_err *err)
{
	char *text;
	size_t len;
	int rc = mesh_read_file_at(dirfd, path, 16u << 20, &text, &len, err);
	if (rc)
		return rc;
	rc = manifest_parse(text, len, path, out, err);
	free(text);
	return rc;
}

char *manifest_to_json(const struct manifest *m)
{
	json_t *root = json_object();
	json_object_set_new(root, "format", json_integer(1));
	json_object_set_new(root, "domain", json_string(m->domain));
	json_object_set_new(root, "product", json_string(m->product));
	json_object_set_new(root, "version", json_string(m->version));
	if (m->contract_id)
		json_object_set_new(root, "contract_id", json_string(m->contract_id));
	json_object_set_new(root, "published_at", json_string(m->published_at));
	json_t *pub = json_object();
	json_object_set_new(pub, "uid", json_integer(m->publisher_uid));
	json_object_set_new(pub, "name", json_string(m->publisher_name ? m->publisher_name : ""));
	json_object_set_new(root, "publisher", pub);
	json_object_set_new(root, "restricted", json_boolean(m->restricted));
	json_t *files = json_array();
	for (size_t i = 0; i < m->n_files; i++) {
		const struct manifest_file *f = &m->files[i];
		json_t *jf = json_object();
		json_object_set_new(jf, "name", json_string(f->name));
		json_object_set_new(jf, "role", json_string(file_role_name(f->role)));
		json_object_set_new(jf, "format", json_string(file_format_name(f->format)));
		json_object_set_new(jf, "size", json_integer((json_int_t)f->size));
		json_object_set_new(jf, "sha256", json_string(f->sha256));
		if (f->derived)
			json_object_set_new(jf, "derived", json_true());
		if (f->n_columns) {
			json_t *cols = json_array();
			for (size_t k = 0; k < f->n_columns; k++) {
				json_t *c = json_object();
				json_object_set_new(c, "name", json_string(f->columns[k].name));
				json_object_set_new(c, "classification", json_string(f->columns[k].classification));
				json_array_append_new(cols, c);
			}
			json_object_set_new(jf, "columns", cols);
		}
		json_array_append_new(files, jf);
	}
	json_object_set_new(root, "files", files);
	char *out = mesh_json_text(root);
	json_decref(root);
	return out;
}

/* ---- install ---- */

/* Copy the open regular file `in` into dst_dirfd/name, hashing it. */
static int copy_fd(int in, int dst_dirfd, const char *name, uint64_t max_bytes, uint64_t *size,
		   char sha[65], char *buf, struct mesh_err *err)
{
	int out = mesh_open_regular_at(dst_dirfd, name, O_WRONLY | O_CREAT | O_EXCL,
				       STORE_RELEASE_FILE_MODE, NULL);
	if (out < 0)
		return mesh_errf(err, out, "%s: create in staging: %s", name, mesh_open_strerror(out));
	/* sequential read hint: the source is read once */
	posix_fadvise(in, 0, 0, POSIX_FADV_SEQUENTIAL);
	struct mesh_sha256 *h = mesh_sha256_new();
	uint64_t total = 0;
	int rc = 0;
	for (;;) {
		ssize_t r = read(in, buf, COPY_BLOCK);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = mesh_errf(err, -errno, "%s: read: %s", name, strerror(errno));
			break;
		}
		if (r == 0)
			break;
		if (total + (uint64_t)r > max_bytes) {
			rc = mesh_errf(err, -EFBIG, "%s: more than %llu bytes", name, (unsigned long long)max_bytes);
			break;
		}
		mesh_sha256_update(h, buf, (size_t)r);
		if ((rc = mesh_write_all(out, buf, (size_t)r))) {
			mesh_errf(err, rc, "%s: write to staging: %s", name, strerror(-rc));
			break;
		}
		total += (uint64_t)r;
	}
	char hex[65];
	mesh_sha256_final(h, hex);
	if (!rc && fsync(out) < 0)
		rc = mesh_errf(err, -errno, "%s: fsync: %s", name, strerror(errno));
	if (close(out) < 0 && !rc)
		rc = mesh_errf(err, -errno, "%s: close: %s", name, strerror(errno));
	if (!rc) {
		*size = total;
		memcpy(sha, hex, 65);
	}
	return rc;
}

/* Copy one file by name from src into dst: opened once, without following
 * symlinks, never blocking, regular files only. */
static int copy_file(int src_dirfd, int dst_dirfd, const char *name, uint64_t *size,
		     char sha[65], char *buf, struct mesh_err *err)
{
	int in = mesh_open_regular_at(src_dirfd, name, O_RDONLY, 0, NULL);
	if (in < 0)
		return mesh_errf(err, in, "%s: %s", name,
				 in == -ELOOP ? "is a symbolic link (not allowed in a release)"
				 : in == -EINVAL ? "not a regular file (devices, fifos and directories are not "
						   "allowed in a release)" : strerror(-in));
	int rc = copy_fd(in, dst_dirfd, name, UINT64_MAX, size, sha, buf, err);
	close(in);
	return rc;
}

static int write_content(int dst_dirfd, const char *name, const void *content, size_t len, uint64_t *size,
			 char sha[65], struct mesh_err *err)
{
	int out = mesh_open_regular_at(dst_dirfd, name, O_WRONLY | O_CREAT | O_EXCL,
				       STORE_RELEASE_FILE_MODE, NULL);
	if (out < 0)
		return mesh_errf(err, out, "%s: create in staging: %s", name, mesh_open_strerror(out));
	int rc = mesh_write_all(out, content, len);
	if (!rc && fsync(out) < 0)
		rc = -errno;
	if (close(out) < 0 && !rc)
		rc = -errno;
	if (rc)
		return mesh_errf(err, rc, "%s: write to staging: %s", name, strerror(-rc));
	struct mesh_sha256 *h = mesh_sha256_new();
	mesh_sha256_update(h, content, len);
	mesh_sha256_final(h, sha);
	*size = len;
	return 0;
}

static char *current_user_name(uid_t uid)
{
	char buf[4096];
	struct passwd pw, *res = NULL;
	if (getpwuid_r(uid, &pw, buf, sizeof buf, &res) == 0 && res)
		return xstrdup(res->pw_name);
	char num[32];
	snprintf(num, sizeof num, "%u", (unsigned)uid);
	return xstrdup(num);
}

/* ---- staging ---- */

static bool staging_abandoned(int product_fd, const char *name);

int store_stage_begin(const char *store, const char *domain, const char *product, const char *version,
		      struct store_stage **out, struct mesh_err *err)
{
	*out = NULL;
	if (!mesh_name_ok(domain) || !mesh_name_ok(product) || semver_parse(version, NULL))
		return mesh_errf(err, -EINVAL, "unsafe domain, product or version name");
	char domain_path[PATH_MAX];
	snprintf(domain_path, sizeof domain_path, "%s/domains/%s", store, domain);
	int domain_fd = mesh_open_dir_at(AT_FDCWD, domain_path);
	if (domain_fd < 0)
		return mesh_errf(err, domain_fd, "%s: %s", domain_path, strerror(-domain_fd));
	if (mkdirat(domain_fd, product, STORE_DIR_MODE) < 0 && errno != EEXIST) {
		int e = errno;
		close(domain_fd);
		return mesh_errf(err, -e, "%s/%s: %s", domain_path, product, strerror(e));
	}
	int product_fd = mesh_open_dir_at(domain_fd, product);
	close(domain_fd);
	if (product_fd < 0)
		return mesh_errf(err, product_fd, "%s/%s: %s", domain_path, product, strerror(-product_fd));
	/* publishes that died left their staging behind: this product's next
	 * publish removes it (reindex does the same store-wide) */
	store_clean_product_staging(product_fd);
	struct store_stage *st = xcalloc(1, sizeof *st);
	st->product_fd = product_fd;
	st->fd = -1;
	size_t n = strlen(domain_path) + strlen(product) + 2;
	st->product_path = xmalloc(n);
	snprintf(st->product_path, n, "%s/%s", domain_path, product);
	clock_gettime(CLOCK_REALTIME, &st->started);
	snprintf(st->name, sizeof st->name, ".tmp-%s.%ld.%ld", version, (long)getpid(),
		 (long)(st->started.tv_nsec & 0xffffff));
	if (mkdirat(product_fd, st->name, STORE_DIR_MODE) < 0) {
		int e = errno;
		mesh_errf(err, -e, "%s/%s: %s", st->product_path, st->name, strerror(e));
		st->name[0] = '\0';
		store_stage_free(st);
		return -e;
	}
	st->fd = mesh_open_dir_at(product_fd, st->name);
	if (st->fd < 0) {
		int e = st->fd;
		mesh_errf(err, e, "%s/%s: %s", st->product_path, st->name, strerror(-e));
		unlinkat(product_fd, st->name, AT_REMOVEDIR);
		store_stage_free(st);
		return e;
	}
	*out = st;
	return 0;
}

int store_stage_copy(struct store_stage *st, int src_fd, const char *name, uint64_t max_bytes,
		     uint64_t *size, char sha[65], struct mesh_err *err)
{
	if (!mesh_filename_ok(name) || !strcmp(name, STORE_MANIFEST))
		return mesh_errf(err, -EINVAL, "%s: not an allowed file name", name);
	char *buf = xmalloc(COPY_BLOCK);
	int rc = copy_fd(src_fd, st->fd, name, max_bytes, size, sha, buf, err);
	free(buf);
	return rc;
}

int store_stage_write(struct store_stage *st, const char *name, const void *content, size_t len,
		      uint64_t *size, char sha[65], struct mesh_err *err)
{
	if (!mesh_filename_ok(name) || !strcmp(name, STORE_MANIFEST))
		return mesh_errf(err, -EINVAL, "%s: not an allowed file name", name);
	return write_content(st->fd, name, content, len, size, sha, err);
}

void store_stage_free(struct store_stage *st)
{
	if (!st)
		return;
	if (st->fd >= 0)
		close(st->fd);
	if (st->fd >= 0 && st->name[0]) {
		/* staging may have been made read-only before the rename failed */
		int fd = mesh_open_dir_at(st->product_fd, st->name);
		if (fd >= 0) {
			fchmod(fd, STORE_DIR_MODE);
			close(fd);
		}
		mesh_remove_tree_at(st->product_fd, st->name);
	}
	if (st->product_fd >= 0)
		close(st->product_fd);
	free(st->product_path);
	free(st);
}

/* ---- install ---- */

int store_install_release(const char *store, const struct release_spec *spec,
			  struct manifest **out, struct mesh_err *err)
{
	if (!mesh_name_ok(spec->domain) || !mesh_name_ok(spec->product) ||
	    semver_parse(spec->version, NULL))
		return mesh_errf(err, -EINVAL, "unsafe domain, product or version name");
	if (spec->n_files == 0 || spec->n_files > STORE_MAX_FILES)
		return mesh_errf(err, -EINVAL, "a release needs 1 to %d files", STORE_MAX_FILES);
	struct store_stage *own = NULL, *stage = spec->stage;
	if (!stage) {
		int rc = store_stage_begin(store, spec->domain, spec->product, spec->version, &own, err);
		if (rc)
			return rc;
		stage = own;
	}
	int product_fd = stage->product_fd, stage_fd = stage->fd;
	const char *staging = stage->name;
	const char *domain_path = stage->product_path;
	if (faccessat(product_fd, spec->version, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
		store_stage_free(own);
		return mesh_errf(err, -EEXIST, "%s/%s %s already exists (releases are immutable: "
				 "publish a new version)", spec->domain, spec->product, spec->version);
	}
	int rc = 0;
	struct manifest *m = xcalloc(1, sizeof *m);
	m->domain = xstrdup(spec->domain);
	m->product = xstrdup(spec->product);
	m->version = xstrdup(spec->version);
	m->contract_id = spec->contract_id ? xstrdup(spec->contract_id) : NULL;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	m->published = now;
	char stamp[40];
	mesh_time_rfc3339(&now, stamp, sizeof stamp);
	m->published_at = xstrdup(stamp);
	if (spec->publisher_name) {
		m->publisher_uid = spec->publisher_uid;
		m->publisher_name = xstrdup(spec->publisher_name);
	} else {
		m->publisher_uid = getuid();
		m->publisher_name = current_user_name(getuid());
	}
	m->restricted = spec->restricted;
	m->files = xcalloc(spec->n_files, sizeof *m->files);
	char *buf = xmalloc(COPY_BLOCK);
	for (size_t i = 0; i < spec->n_files && !rc; i++) {
		const struct release_file *f = &spec->files[i];
		struct manifest_file *mf = &m->files[m->n_files++];
		if (!mesh_filename_ok(f->name) || !strcmp(f->name, STORE_MANIFEST)) {
			rc = mesh_errf(err, -EINVAL, "%s: not an allowed file name", f->name);
			break;
		}
		mf->name = xstrdup(f->name);
		mf->role = f->role;
		mf->format = file_format_from_name(f->name);
		mf->derived = f->derived;
		if (f->n_columns) {
			mf->columns = xcalloc(f->n_columns, sizeof *mf->columns);
			for (size_t k = 0; k < f->n_columns; k++) {
				mf->columns[k].name = xstrdup(f->columns[k].name);
				mf->columns[k].classification = xstrdup(f->columns[k].classification);
			}
			mf->n_columns = f->n_columns;
		}
		if (f->staged) {
			/* copied into staging (and validated there) by the caller */
			mf->size = f->size;
			memcpy(mf->sha256, f->sha256, 65);
		} else if (f->content) {
			rc = write_content(stage_fd, f->name, f->content, f->content_len, &mf->size, mf->sha256, err);
		} else {
			rc = copy_file(spec->src_dirfd, stage_fd, f->name, &mf->size, mf->sha256, buf, err);
		}
	}
	free(buf);
	if (!rc) {
		char *json = manifest_to_json(m);
		rc = mesh_write_file_atomic(stage_fd, STORE_MANIFEST, json, strlen(json), STORE_RELEASE_FILE_MODE, err);
		free(json);
	}
	if (!rc && fsync(stage_fd) < 0)
		rc = mesh_errf(err, -errno, "%s: fsync: %s", staging, strerror(errno));
	if (!rc && fchmod(stage_fd, STORE_RELEASE_DIR_MODE) < 0)
		rc = mesh_errf(err, -errno, "%s: chmod: %s", staging, strerror(errno));
	if (!rc) {
		/* exclusive on every filesystem, shared ones included (store_rename.c) */
		struct mesh_err rerr = {0};
		int r = store_rename_noreplace(product_fd, staging, stage_fd, spec->version, NULL, &rerr);
		if (r == -EEXIST)
			rc = mesh_errf(err, -EEXIST, "%s/%s %s already exists (published concurrently)",
				       spec->domain, spec->product, spec->version);
		else if (r)
			rc = mesh_errf(err, r, "install %s: %s", spec->version, rerr.msg);
	}
	if (!rc && fsync(product_fd) < 0)
		rc = mesh_errf(err, -errno, "%s: fsync: %s", domain_path, strerror(errno));
	if (rc) {
		manifest_free(m);
		store_stage_free(own);   /* a caller's stage is removed by its store_stage_free */
		return rc;
	}
	/* installed: the staging directory is the release now */
	close(stage->fd);
	stage->fd = -1;
	store_stage_free(own);
	/* the log first, then the counter: a reader that sees the counter
	 * move finds the entry (changelog.h) */
	changelog_append(store, spec->domain, spec->product, NULL);
	store_bump_generation(store, NULL);
	if (out)
		*out = m;
	else
		manifest_free(m);
	return 0;
}

/* A staging dir is named .tmp-<version>.<pid>.<n>; it is abandoned when
 * that pid no longer runs, or when it is older than a day (the pid may be
 * another host's). */
static bool staging_abandoned(int product_fd, const char *name)
{
	const char *p = strrchr(name, '.');
	if (!p)
		return false;
	const char *q = p - 1;
	while (q > name && *q != '.')
		q--;
	long pid = strtol(q + 1, NULL, 10);
	struct stat st;
	if (fstatat(product_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return false;
	if (time(NULL) - st.st_mtime > 86400)
		return true;
	return pid > 0 && kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

void store_clean_product_staging(int product_fd)
{
	int fd = dup(product_fd);
	DIR *versions = fd >= 0 ? fdopendir(fd) : NULL;
	if (!versions) {
		if (fd >= 0)
			close(fd);
		return;
	}
	struct dirent *v;
	while ((v = readdir(versions)))
		if (!strncmp(v->d_name, ".tmp-", 5) && staging_abandoned(product_fd, v->d_name)) {
			int sfd = mesh_open_dir_at(product_fd, v->d_name);
			if (sfd >= 0) {
				fchmod(sfd, STORE_DIR_MODE);
				close(sfd);
			}
			mesh_remove_tree_at(product_fd, v->d_name);
		}
	closedir(versions);
}

int store_clean_staging(const char *store, struct mesh_err *err)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/domains", store);
	int root = mesh_open_dir_at(AT_FDCWD, path);
	DIR *domains = root >= 0 ? fdopendir(root) : NULL;
	if (!domains) {
		int e = root < 0 ? root : -errno;
		if (root >= 0)
			close(root);
		return mesh_errf(err, e, "%s: %s", path, strerror(-e));
	}
	struct dirent *d;
	while ((d = readdir(domains))) {
		if (d->d_name[0] == '.')
			continue;
		int dfd = mesh_open_dir_at(dirfd(domains), d->d_name);
		if (dfd < 0)
			continue;
		DIR *products = fdopendir(dfd);
		if (!products) {
			close(dfd);
			continue;
		}
		struct dirent *p;
		while ((p = readdir(products))) {
			if (p->d_name[0] == '.')
				continue;
			int pfd = mesh_open_dir_at(dfd, p->d_name);
			if (pfd < 0)
				continue;
			store_clean_product_staging(pfd);
			close(pfd);
		}
		closedir(products);
	}
	closedir(domains);
	return 0;
}

/* ---- lifecycle ---- */

const char *lifecycle_name(enum lifecycle l)
{
	return l == LC_DEPRECATED ? "deprecated" : l == LC_RETIRED ? "retired" : "active";
}

void lifecycle_table_free(struct lifecycle_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++) {
		free(t->entries[i].version);
		free(t->entries[i].sunset);
		free(t->entries[i].reason);
		free(t->entries[i].changed_at);
		free(t->entries[i].changed_by);
	}
	free(t->entries);
	t->entries = NULL;
	t->n = 0;
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

/* One entry from a record's JSON object; false when it is not one. */
static bool lifecycle_entry_from(json_t *value, const char *version, struct lifecycle_entry *e)
{
	if (!json_is_object(value))
		return false;
	const char *state = jstr(value, "state");
	e->version = xstrdup(version);
	e->state = state && !strcmp(state, "retired") ? LC_RETIRED
		 : state && !strcmp(state, "deprecated") ? LC_DEPRECATED : LC_ACTIVE;
	e->sunset = dup_or_null(jstr(value, "sunset"));
	e->reason = dup_or_null(jstr(value, "reason"));
	e->changed_at = dup_or_null(jstr(value, "changed_at"));
	e->changed_by = dup_or_null(jstr(value, "changed_by"));
	return true;
}

static void lifecycle_entry_clear(struct lifecycle_entry *e)
{
	free(e->version);
	free(e->sunset);
	free(e->reason);
	free(e->changed_at);
	free(e->changed_by);
	memset(e, 0, sizeof *e);
}

/* Add or replace the entry of e->version (taking e's strings). */
static void lifecycle_put(struct lifecycle_table *t, size_t *cap, struct lifecycle_entry *e)
{
	for (size_t i = 0; i < t->n; i++)
		if (!strcmp(t->entries[i].version, e->version)) {
			lifecycle_entry_clear(&t->entries[i]);
			t->entries[i] = *e;
			return;
		}
	if (t->n == *cap)
		t->entries = xrealloc(t->entries, (*cap = *cap ? *cap * 2 : 8) * sizeof *t->entries);
	t->entries[t->n++] = *e;
}

/* The table of a store written before per-version records: read, never
 * written again; a record in STORE_LIFECYCLE_DIR overrides its entry. */
static int lifecycle_load_legacy(int product_dirfd, struct lifecycle_table *out, size_t *cap,
				 struct mesh_err *err)
{
	char *text;
	size_t len;
	struct mesh_err local = {0};
	int rc = mesh_read_file_at(product_dirfd, STORE_LIFECYCLE, 1u << 20, &text, &len, &local);
	if (rc == -ENOENT)
		return 0;
	if (rc)
		return mesh_errf(err, rc, "%s", local.msg);
	json_error_t jerr;
	json_t *root = json_loadb(text, len, 0, &jerr);
	free(text);
	json_t *versions = json_object_get(root, "versions");
	if (!root || !json_is_object(versions)) {
		json_decref(root);
		return mesh_errf(err, -EINVAL, "%s: not a lifecycle table", STORE_LIFECYCLE);
	}
	const char *key;
	json_t *value;
	json_object_foreach(versions, key, value) {
		struct lifecycle_entry e = {0};
		if (lifecycle_entry_from(value, key, &e))
			lifecycle_put(out, cap, &e);
	}
	json_decref(root);
	return 0;
}

int lifecycle_record_parse(const char *text, size_t len, const char *version, struct lifecycle_entry *out,
			   struct mesh_err *err)
{
	memset(out, 0, sizeof *out);
	json_error_t jerr;
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return mesh_errf(err, -EINVAL, "line %d: %s", jerr.line, jerr.text);
	const char *state = jstr(root, "state");
	bool ok = json_is_object(root) && state &&
		  (!strcmp(state, "active") || !strcmp(state, "deprecated") || !strcmp(state, "retired"));
	if (ok)
		lifecycle_entry_from(root, version, out);
	json_decref(root);
	return ok ? 0 : mesh_errf(err, -EINVAL, "not a lifecycle record (an object with state active, "
				  "deprecated or retired)");
}

int lifecycle_load_at(int product_dirfd, struct lifecycle_table *out, struct mesh_err *err)
{
	out->entries = NULL;
	out->n = 0;
	size_t cap = 0;
	int rc = lifecycle_load_legacy(product_dirfd, out, &cap, err);
	if (rc)
		return rc;
	int dfd = openat(product_dirfd, STORE_LIFECYCLE_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return errno == ENOENT ? 0 : mesh_errf(err, -errno, "%s: %s", STORE_LIFECYCLE_DIR, strerror(errno));
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return mesh_errf(err, -errno, "%s: %s", STORE_LIFECYCLE_DIR, strerror(errno));
	}
	struct dirent *de;
	while ((de = readdir(d)) && !rc) {
		/* <version>.json; temporary files start with a dot */
		size_t n = strlen(de->d_name);
		if (de->d_name[0] == '.' || n <= 5 || strcmp(de->d_name + n - 5, ".json"))
			continue;
		char version[256];
		if (n - 5 >= sizeof version)
			continue;
		memcpy(version, de->d_name, n - 5);
		version[n - 5] = '\0';
		if (semver_parse(version, NULL))
			continue;
		char *text;
		size_t len;
		struct mesh_err local = {0};
		int r = mesh_read_file_at(dfd, de->d_name, 64u << 10, &text, &len, &local);
		if (r == -ENOENT)
			continue;
		if (r) {
			rc = mesh_errf(err, r, "%s/%s: %s", STORE_LIFECYCLE_DIR, de->d_name, local.msg);
			break;
		}
		struct lifecycle_entry e = {0};
		struct mesh_err perr = {0};
		r = lifecycle_record_parse(text, len, version, &e, &perr);
		free(text);
		if (r)
			rc = mesh_errf(err, r, "%s/%s: %s", STORE_LIFECYCLE_DIR, de->d_name, perr.msg);
		else
			lifecycle_put(out, &cap, &e);
	}
	closedir(d);
	if (rc)
		lifecycle_table_free(out);
	return rc;
}

const struct lifecycle_entry *lifecycle_find(const struct lifecycle_table *t, const char *version)
{
	for (size_t i = 0; t && i < t->n; i++)
		if (!strcmp(t->entries[i].version, version))
			return &t->entries[i];
	return NULL;
}

enum lifecycle lifecycle_of(const struct lifecycle_table *t, const char *version)
{
	const struct lifecycle_entry *e = lifecycle_find(t, version);
	return e ? e->state : LC_ACTIVE;
}

/* Copy <version>/contract.yaml to .status/<version>.contract.yaml with the
 * top-level "status:" line replaced (comments and everything else kept). */
static int write_status_contract(int product_fd, const char *version, const char *status,
				 struct mesh_err *err)
{
	char path[PATH_MAX], *text;
	size_t len;
	snprintf(path, sizeof path, "%s/contract.yaml", version);
	int rc = mesh_read_file_at(product_fd, path, 4u << 20, &text, &len, err);
	if (rc)
		return rc;
	struct strbuf out = STRBUF_INIT;
	bool replaced = false;
	for (const char *p = text; *p;) {
		size_t n = strcspn(p, "\n");
		if (!replaced && !strncmp(p, "status:", 7)) {
			strbuf_printf(&out, "status: %s", status);
			replaced = true;
		} else {
			strbuf_add(&out, p, n);
		}
		p += n;
		if (*p == '\n') {
			strbuf_add(&out, "\n", 1);
			p++;
		}
	}
	free(text);
	if (mkdirat(product_fd, STORE_STATUS_DIR, STORE_DIR_MODE) < 0 && errno != EEXIST) {
		strbuf_release(&out);
		return mesh_errf(err, -errno, "%s: %s", STORE_STATUS_DIR, strerror(errno));
	}
	snprintf(path, sizeof path, STORE_STATUS_DIR "/%s.contract.yaml", version);
	rc = store_write_replace(product_fd, path, out.buf, out.len, STORE_FILE_MODE, err);
	strbuf_release(&out);
	return rc;
}

int store_set_lifecycle(const char *store, const char *domain, const char *product,
			const char *version, enum lifecycle state, const char *sunset,
			const char *reason, const char *who, struct mesh_err *err)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/domains/%s/%s", store, domain, product);
	int pfd = mesh_open_dir_at(AT_FDCWD, path);
	if (pfd < 0)
		return mesh_errf(err, pfd, "%s/%s: no such product", domain, product);
	if (faccessat(pfd, version, F_OK, AT_SYMLINK_NOFOLLOW) < 0) {
		close(pfd);
		return mesh_errf(err, -ENOENT, "%s/%s has no version %s", domain, product, version);
	}
	/* One record per version: hosts changing different versions never
	 * write the same file, so no change is lost; for one version the
	 * last complete write wins. */
	int rc = 0;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	char stamp[40];
	mesh_time_rfc3339(&now, stamp, sizeof stamp);
	json_t *v = json_object();
	json_object_set_new(v, "state", json_string(lifecycle_name(state)));
	if (sunset)
		json_object_set_new(v, "sunset", json_string(sunset));
	if (reason)
		json_object_set_new(v, "reason", json_string(reason));
	json_object_set_new(v, "changed_at", json_string(stamp));
	json_object_set_new(v, "changed_by", json_string(who ? who : "?"));
	char *text = json_dumps(v, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(v);
	/* the contract sidecar says the state too: a copy of the release's
	 * contract.yaml with its top-level status rewritten, beside the
	 * immutable release (the catalog serves it in place of the original) */
	if (state == LC_DEPRECATED)
		rc = write_status_contract(pfd, version, "deprecated", err);
	if (!rc && mkdirat(pfd, STORE_LIFECYCLE_DIR, STORE_DIR_MODE) < 0 && errno != EEXIST)
		rc = mesh_errf(err, -errno, "%s/%s/%s: %s", domain, product, STORE_LIFECYCLE_DIR, strerror(errno));
	char record[PATH_MAX];
	snprintf(record, sizeof record, STORE_LIFECYCLE_DIR "/%s.json", version);
	if (!rc)
		rc = store_write_replace(pfd, record, text, strlen(text), STORE_FILE_MODE, err);
	free(text);
	close(pfd);
	if (!rc)
		rc = changelog_append(store, domain, product, err);
	if (!rc)
		rc = store_bump_generation(store, err);
	return rc;
}
