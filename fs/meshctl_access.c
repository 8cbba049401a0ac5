/*
 * meshctl_access.c - access commands: grant, revoke, grants, request,
 * requests, approve, deny, access, explain.
 *
 * Who did it is always the kernel's word: the real uid of meshctl, and for
 * a request the owner of the file the requester wrote into the sticky
 * STORE/requests/ spool.  Grants and decisions are written into the
 * domain's directory, which only its owners' group can write: the
 * operating system enforces what meshctl checks.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <jansson.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog.h"
#include "governance.h"
#include "identity.h"
#include "meshctl_cmds.h"
#include "mesh_util.h"
#include "policy.h"
#include "scope.h"
#include "publish.h"
#include "store.h"
#include "view_build.h"
#include "view_parquet.h"

/* DOMAIN/PRODUCT[@VERSION] (or DOMAIN) -> parts; the product must exist
 * in the store when named. */
static int parse_ref(const struct meshctl_ctx *ctx, const char *cmd, const char *ref, char *domain,
		     char *product, char *version, bool need_product)
{
	char buf[256];
	snprintf(buf, sizeof buf, "%s", ref);
	char *at = strchr(buf, '@'), *slash = strchr(buf, '/');
	if (at)
		*at++ = '\0';
	if (slash)
		*slash++ = '\0';
	domain[0] = product[0] = version[0] = '\0';
	if (!mesh_name_ok(buf) || (slash && !mesh_name_ok(slash)) || (at && (!slash || semver_parse(at, NULL))) ||
	    (need_product && !slash)) {
		meshctl_fail(ctx, cmd, "%s: expected DOMAIN/PRODUCT[@VERSION]%s", ref, need_product ? "" : " or DOMAIN");
		return MESHCTL_USAGE;
	}
	/* lengths checked by mesh_name_ok / semver_parse above */
	memcpy(domain, buf, strlen(buf) + 1);
	if (slash)
		memcpy(product, slash, strlen(slash) + 1);
	if (at)
		memcpy(version, at, strlen(at) + 1);
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/domains/%s%s%s%s%s", ctx->store, domain, slash ? "/" : "", product,
		 at ? "/" : "", version);
	if (access(path, F_OK) < 0) {
		meshctl_fail(ctx, cmd, "%s does not exist in the store %s", ref, ctx->store);
		return MESHCTL_FAILED;
	}
	return 0;
}

/* The caller may administer access in `domain` (owner or governance). */
static int check_admin(const struct meshctl_ctx *ctx, const char *cmd, const char *domain)
{
	struct mesh_err err = {0};
	int rc = meshfs_check_publisher(ctx->store, domain, cmd, &ctx->caller, &err);
	if (rc)
		meshctl_fail(ctx, cmd, "%s", err.msg);
	return rc ? meshctl_exit_for(rc) : 0;
}

static int subject_exists(const struct meshctl_ctx *ctx, const char *cmd, const char *subject)
{
	if (!strcmp(subject, "*"))
		return 0;
	if (!strncmp(subject, "user:", 5) && identity_user_id(subject + 5) >= 0)
		return 0;
	if (!strncmp(subject, "group:", 6) && identity_group_id(subject + 6) >= 0)
		return 0;
	if (strncmp(subject, "user:", 5) && strncmp(subject, "group:", 6))
		meshctl_fail(ctx, cmd, "%s: a subject is user:NAME, group:NAME or *", subject);
	else
		meshctl_fail(ctx, cmd, "%s: no such %s on this host", subject,
			     !strncmp(subject, "user:", 5) ? "user" : "group");
	return MESHCTL_USAGE;
}

static void now_rfc3339(char *buf, size_t size)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	mesh_time_rfc3339(&ts, buf, size);
}

static int parse_until(const struct meshctl_ctx *ctx, const char *cmd, const char *text, time_t *until)
{
	if (!text) {
		*until = 0;
		return 0;
	}
	if (mesh_time_parse(text, until)) {
		meshctl_fail(ctx, cmd, "--until %s: expected YYYY-MM-DD or an RFC 3339 time", text);
		return MESHCTL_USAGE;
	}
	if (strlen(text) == 10)
		*until += 86399;   /* a date: through the last second of that day */
	if (*until <= time(NULL)) {
		meshctl_fail(ctx, cmd, "--until %s is in the past", text);
		return MESHCTL_USAGE;
	}
	return 0;
}

/* ---- grant / revoke / grants ---- */

int meshctl_cmd_grant(const struct meshctl_ctx *ctx, int argc, char **argv)
{
	static const struct option longopts[] = {
		{"until", required_argument, NULL, 'u'}, {"reason", required_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	const char *until_text = NULL, *reason = NULL;
	optind = 0;
	int c;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (c == 'u')
			until_text = optarg;
		else if (c == 'r')
			reason = optarg;
		else {
			printf("usage: meshctl grant DOMAIN[/PRODUCT[@VERSION]] SUBJECT [--until DATE] [--reason TEXT]\n");
			return c == 'h' ? MESHCTL_OK : MESHCTL_USAGE;
		}
	}
	if (optind != argc - 2) {
		meshctl_fail(ctx, "grant", "usage: meshctl grant DOMAIN[/PRODUCT[@VERSION]] SUBJECT [--until DATE]");
		return MESHCTL_USAGE;
	}
	char domain[MESH_NAME_MAX + 1], product[MESH_NAME_MAX + 1], version[256];
	time_t until;
	int st = parse_ref(ctx, "grant", argv[optind], domain, product, version, false);
	if (!st)
		st = subject_exists(ctx, "grant", argv[optind + 1]);
	if (!st)
		st = parse_until(ctx, "grant", until_text, &until);
	if (!st)
		st = check_admin(ctx, "grant", domain);
	if (st)
		return st;
	char who[64], stamp[40];
	snprintf(who, sizeof who, "%s", ctx->caller.user);
	now_rfc3339(stamp, sizeof stamp);
	struct grant g = {.subject = argv[optind + 1], .domain = domain, .product = product[0] ? product : NULL,
			  .version = version[0] ? version : NULL, .until = until, .grantor = who,
			  .granted_at = stamp, .reason = (char *)reason};
	char *id = NULL;
	struct mesh_err err = {0};
	int rc = grant_write(ctx->store, &g, &id, &err);
	if (rc) {
		meshctl_fail(ctx, "grant", "%s", err.msg);
		return meshctl_exit_for(rc);
	}
	char audit[1024];
	snprintf(audit, sizeof audit, "grant %s: read on %s to %s%s%s (%s)", id, argv[optind], argv[optind + 1],
		 until_text ? " until " : "", until_text ? until_text : "", reason ? reason : "no reason given");
	policy_audit(ctx->store, domain, &ctx->caller, audit);
	store_bump_generation(ctx->store, NULL);
	char line[1024];
	snprintf(line, sizeof line, "granted read on %s to %s%s%s (grant %s)", argv[optind], argv[optind + 1],
		 until_text ? " until " : "", until_text ? until_text : "", id);
	meshctl_result(ctx, line, "grant", id, "resource", argv[optind], "subject", argv[optind + 1],
		       "until", until_text, (char *)NULL);
	free(id);
	return MESHCTL_OK;
}

int meshctl_cmd_revoke(const struct meshctl_ctx *ctx, int argc, char **argv)
{
	if (argc != 3 || argv[1][0] == '-') {
		printf("usage: meshctl revoke DOMAIN[/PRODUCT[@VERSION]] SUBJECT\n");
		return argc == 2 && !strcmp(argv[1], "--help") ? MESHCTL_OK : MESHCTL_USAGE;
	}
	char domain[MESH_NAME_MAX + 1], product[MESH_NAME_MAX + 1], version[256];
	int st = parse_ref(ctx, "revoke", argv[1], domain, product, version, false);
	if (!st)
		st = check_admin(ctx, "revoke", domain);
	if (st)
		return st;
	size_t removed = 0;
	struct mesh_err err = {0};
	int rc = grant_revoke(ctx->store, domain, product[0] ? product : NULL, version[0] ? version : NULL,
			      argv[2], &removed, &err);
	if (rc) {
		meshctl_fail(ctx, "revoke", "%s", err.msg);
		return meshctl_exit_for(rc);
	}
	if (!removed) {
		meshctl_fail(ctx, "revoke", "%s has no grant on %s", argv[2], argv[1]);
		return MESHCTL_FAILED;
	}
	char audit[512];
	snprintf(audit, sizeof audit, "revoke: read on %s from %s (%zu grant(s))", argv[1], argv[2], removed);
	policy_audit(ctx->store, domain, &ctx->caller, audit);
	store_bump_generation(ctx->store, NULL);
	char line[1024], count[32];
	snprintf(line, sizeof line, "revoked %zu grant(s) of %s on %s", removed, argv[2], argv[1]);
	snprintf(count, sizeof count, "%zu", removed);
	meshctl_result(ctx, line, "resource", argv[1], "subject", argv[2], "revoked", count, (char *)NULL);
	return MESHCTL_OK;
}

int meshctl_cmd_grants(const struct meshctl_ctx *ctx, int argc, char **argv)
{
	char domain[MESH_NAME_MAX + 1] = "", product[MESH_NAME_MAX + 1] = "", version[256] = "";
	if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
		printf("usage: meshctl grants [DOMAIN[/PRODUCT]]\n");
		return argc == 2 && !strcmp(argv[1], "--help") ? MESHCTL_OK : MESHCTL_USAGE;
	}
	if (argc == 2) {
		int st = parse_ref(ctx, "grants", argv[1], domain, product, version, false);
		if (st)
			return st;
	}
	struct grant *g = NULL;
	size_t n = 0;
	struct mesh_err err = {0};
	int rc = grant_list(ctx->store, domain[0] ? domain : NULL, &g, &n, &err);
	if (rc) {
		meshctl_fail(ctx, "grants", "%s", err.msg);
		return meshctl_exit_for(rc);
	}
	json_t *list = ctx->json ? json_array() : NULL;
	if (!list)
		printf("%-14s %-24s %-30s %-21s %-12s %s\n", "GRANT", "SUBJECT", "RESOURCE", "UNTIL", "BY", "REASON");
	time_t now = time(NULL);
	/* owners and governance see their domains' grants, others the grants
	 * that name them */
	struct scope *sc = NULL;
	scope_open(ctx->store, &ctx->caller, &sc, NULL);
	for (size_t i = 0; i < n; i++) {
		if (product[0] && (!g[i].product || strcmp(g[i].product, product)))
			continue;
		if (!scope_administers(sc, g[i].domain) && !identity_matches(&ctx->caller, g[i].subject))
			continue;
		char res[200], until[40] = "-";
		snprintf(res, sizeof res, "%s%s%s%s%s", g[i].domain, g[i].product ? "/" : "",
			 g[i].product ? g[i].product : "", g[i].version ? "@" : "", g[i].version ? g[i].version : "");
		if (g[i].until) {
			struct timespec ts = {g[i].until, 0};
			mesh_time_rfc3339(&ts, until, sizeof until);
			until[19] = 'Z', until[20] = '\0';
		}
		if (list) {
			json_t *o = json_object();
			json_object_set_new(o, "id", json_string(g[i].id));
			json_object_set_new(o, "subject", json_string(g[i].subject));
			json_object_set_new(o, "domain", json_string(g[i].domain));
			json_object_set_new(o, "product", g[i].product ? json_string(g[i].product) : json_null());
			json_object_set_new(o, "version", g[i].version ? json_string(g[i].version) : json_null());
			json_object_set_new(o, "effect", json_string(g[i].deny ? "deny" : "allow"));
			json_object_set_new(o, "until", g[i].until ? json_string(until) : json_null());
			json_object_set_new(o, "expired", json_boolean(g[i].until && g[i].until < now));
			json_object_set_new(o, "grantor", g[i].grantor ? json_string(g[i].grantor) : json_null());
			json_object_set_new(o, "reason", json_string(g[i].reason ? g[i].reason : ""));
			json_array_append_new(list, o);
			continue;
		}
		char *id = mesh_escape_text(g[i].id), *subject = mesh_escape_text(g[i].subject),
		     *by = mesh_escape_text(g[i].grantor ? g[i].grantor : "?"), *why = mesh_escape_text(g[i].reason);
		printf("%-14s %-24s %-30s %-21s %-12s %s%s\n", id, subject, res, until, by, why,
		       g[i].until && g[i].until < now ? " (expired)" : "");
		free(id), free(subject), free(by), free(why);
	}
	scope_close(sc);
	if (list) {
		json_t *doc = json_object();
		json_object_set_new(doc, "grants", list);
		meshctl_json_print(doc);
	}
	grants_free(g, n);
	return MESHCTL_OK;
}

/* ---- requests ---- */

struct request {
	char id[32];
	char *resource, *reason, *requested_at, *until;
	uid_t uid;
	char user[64];
	char domain[MESH_NAME_MAX + 1];
	char *status;       /* NULL: pending */
};

static void request_free(struct request *r)
{
	free(r->resource), free(r->reason), free(r->requested_at), free(r->until), free(r->status);
}

/* A JSON document of the store, read like every store file (no symlink,
 * no FIFO, regular files only); NULL when it is not one. */
static json_t *load_json_at(int dirfd, const char *name, struct stat *st)
{
	int fd = mesh_open_regular_at(dirfd, name, O_RDONLY, 0, st);
	if (fd < 0)
		return NULL;
	json_error_t jerr;
	json_t *o = json_loadfd(fd, JSON_REJECT_DUPLICATES, &jerr);
	close(fd);
	return o;
}

static int load_request(const char *store, const char *id, struct request *r)
{
	memset(r, 0, sizeof *r);
	for (const char *p = id; *p; p++)
		if (*p < '0' || *p > '9')
			return -EINVAL;
	if (!*id || strlen(id) >= sizeof r->id)
		return -EINVAL;
	char path[PATH_MAX], name[64];
	snprintf(path, sizeof path, "%s/requests", store);
	snprintf(name, sizeof name, "%s.json", id);
	int dfd = mesh_open_dir_at(AT_FDCWD, path);
	struct stat st;
	json_t *o = dfd >= 0 ? load_json_at(dfd, name, &st) : NULL;
	if (dfd >= 0)
		close(dfd);
	json_t *res = json_object_get(o, "resource");
	if (!json_is_string(res)) {
		json_decref(o);
		return o ? -EINVAL : -ENOENT;
	}
	snprintf(r->id, sizeof r->id, "%s", id);
	/* who asked: the requester's uid as the service wrote it (from the
	 * kernel's SO_PEERCRED), trusted only in a file the service itself (or
	 * root) wrote; otherwise the file's owner, the kernel's word */
	json_t *ju = json_object_get(o, "uid");
	if ((st.st_uid == 0 || st.st_uid == geteuid()) && json_is_integer(ju) && json_integer_value(ju) >= 0)
		r->uid = (uid_t)json_integer_value(ju);
	else
		r->uid = st.st_uid;
	identity_user_name(r->uid, r->user, sizeof r->user);
	r->resource = xstrdup(json_string_value(res));
	json_t *v = json_object_get(o, "reason");
	r->reason = xstrdup(json_is_string(v) ? json_string_value(v) : "");
	v = json_object_get(o, "requested_at");
	r->requested_at = xstrdup(json_is_string(v) ? json_string_value(v) : "");
	v = json_object_get(o, "until");
	r->until = json_is_string(v) ? xstrdup(json_string_value(v)) : NULL;
	snprintf(r->domain, sizeof r->domain, "%.*s", (int)strcspn(r->resource, "/@"), r->resource);
	json_decref(o);
	snprintf(path, sizeof path, "%s/domains/%s/requests", store, r->domain);
	dfd = mesh_name_ok(r->domain) ? mesh_open_dir_at(AT_FDCWD, path) : -1;
	o = dfd >= 0 ? load_json_at(dfd, name, NULL) : NULL;
	if (dfd >= 0)
		close(dfd);
	v = json_object_get(o, "status");
	if (json_is_string(v))
		r->status = xstrdup(json_string_value(v));
	json_decref(o);
	return 0;
}

int meshctl_cmd_request(const struct meshctl_ctx *ctx, int argc, char **argv)
{
	static const struct option longopts[] = {
		{"reason", required_argument, NULL, 'r'}, {"until", required_argument, NULL, 'u'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	const char *reason = NULL, *until_text = NULL;
	optind = 0;
	int c;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (c == 'r')
			reason = optarg;
		else if (c == 'u')
			until_text = optarg;
		else {
			printf("usage: meshctl request DOMAIN/PRODUCT[@VERSION] --reason TEXT [--until DATE]\n");
			return c == 'h' ? MESHCTL_OK : MESHCTL_USAGE;
		}
	}
	if (optind != argc - 1 || !reason || !*reason) {
		meshctl_fail(ctx, "request", "usage: meshctl request DOMAIN/PRODUCT[@VERSION] --reason TEXT "
			     "(owners decide on the reason)");
		return MESHCTL_USAGE;
	}
	char domain[MESH_NAME_MAX + 1], product[MESH_NAME_MAX + 1], version[256];
	time_t until;
	int st = parse_ref(ctx, "request", argv[optind], domain, product, version, true);
	if (!st)
		st = parse_until(ctx, "request", until_text, &until);
	if (st)
		return st;
	char stamp[40];
	now_rfc3339(stamp, sizeof stamp);
	json_t *o = json_object();
	json_object_set_new(o, "resource", json_string(argv[optind]));
	/* the requester, as the kernel says (the service: SO_PEERCRED) */
	json_object_set_new(o, "uid", json_integer(ctx->caller.uid));
	json_object_set_new(o, "user", json_string(ctx->caller.user));
	json_object_set_new(o, "reason", json_string(reason));
	json_object_set_new(o, "requested_at", json_string(stamp));
	if (until_text)
		json_object_set_new(o, "until", json_string(until_text));
	char *text = json_dumps(o, JSON_INDENT(2));
	json_decref(o);
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s/requests", ctx->store);
	/* the next free number; O_EXCL settles races between requesters */
	long next = 1;
	int dfd = mesh_open_dir_at(AT_FDCWD, dir);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d && dfd >= 0)
		close(dfd);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		long n = strtol(de->d_name, NULL, 10);
		if (n >= next)
			next = n + 1;
	}
	if (d)
		closedir(d);
	int fd = -1;
	char path[PATH_MAX + 32];
	for (int tries = 0; tries < 100 && fd < 0; tries++, next++) {
		snprintf(path, sizeof path, "%s/%ld.json", dir, next);
		fd = mesh_open_regular_at(AT_FDCWD, path, O_WRONLY | O_CREAT | O_EXCL, STORE_FILE_MODE, NULL);
		if (fd < 0 && fd != -EEXIST)
			break;
	}
	if (fd < 0) {
		meshctl_fail(ctx, "request", "%s: %s", dir, mesh_open_strerror(fd));
		free(text);
		return MESHCTL_ERROR;
	}
	int rc = mesh_write_all(fd, text, strlen(text));
	if (!rc && fsync(fd) < 0)
		rc = -errno;
	close(fd);
	free(text);
	if (rc) {
		unlink(path);
		meshctl_fail(ctx, "request", "%s: %s", path, strerror(-rc));
		return MESHCTL_ERROR;
	}
	char line[1024], rid[32];
	snprintf(line, sizeof line, "request %ld filed: read on %s; the owners of domain %s decide "
		 "(they see it with 'meshctl requests --domain %s')", next - 1, argv[optind], domain, domain);
	snprintf(rid, sizeof rid, "%ld", next - 1);
	meshctl_result(ctx, line, "request", rid, "resource", argv[optind], (char *)NULL);
	return MESHCTL_OK;
}

int meshctl_cmd_requests(const struct meshctl_ctx *ctx, int argc, char **argv)
{
	const char *only = NULL;
	bool all = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--domain") && i + 1 < argc)
			only = argv[++i];
		else if (!strcmp(argv[i], "--all"))
			all = true;
		else {
			printf("usage: meshctl requests [--domain D] [--all]   (pending requests; --all: decided too)\n");
			return !strcmp(argv[i], "--help") ? MESHCTL_OK : MESHCTL_USAGE;
		}
	}
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s/requests", ctx->store);
	int dfd = mesh_open_dir_at(AT_FDCWD, dir);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d) {
		int e = dfd < 0 ? -dfd : errno;
		if (dfd >= 0)
			close(dfd);
		meshctl_fail(ctx, "requests", "%s: %s", dir, strerror(e));
		return MESHCTL_ERROR;
	}
	json_t *list = ctx->json ? json_array() : NULL;
	if (!list)
		printf("%-6s %-12s %-30s %-25s %-10s %s\n", "ID", "USER", "RESOURCE", "REQUESTED", "STATUS", "REASON");
	/* owners and governance see their domains' requests, requesters their own */
	struct scope *sc = NULL;
	scope_open(ctx->store, &ctx->caller, &sc, NULL);
	struct dirent *de;
	while ((de = readdir(d))) {
		char id[32];
		size_t n = strcspn(de->d_name, ".");
		if (n == 0 || n >= sizeof id || strcmp(de->d_name + n, ".json"))
			continue;
		snprintf(id, sizeof id, "%.*s", (int)n, de->d_name);
		struct request r;
		if (load_request(ctx->store, id, &r))
			continue;
		bool visible = r.uid == ctx->caller.uid || scope_administers(sc, r.domain);
		if (list && visible && (!only || !strcmp(r.domain, only)) && (all || !r.status)) {
			json_t *o = json_object();
			json_object_set_new(o, "id", json_string(r.id));
			json_object_set_new(o, "user", json_string(r.user));
			json_object_set_new(o, "uid", json_integer(r.uid));
			json_object_set_new(o, "resource", json_string(r.resource));
			json_object_set_new(o, "domain", json_string(r.domain));
			json_object_set_new(o, "requested_at", json_string(r.requested_at));
			json_object_set_new(o, "until", r.until ? json_string(r.until) : json_null());
			json_object_set_new(o, "status", json_string(r.status ? r.status : "pending"));
			json_object_set_new(o, "reason", json_string(r.reason));
			json_array_append_new(list, o);
		} else if (visible && (!only || !strcmp(r.domain, only)) && (all || !r.status)) {
			/* all of it written by users: never raw to a terminal */
			char *user = mesh_escape_text(r.user), *res = mesh_escape_text(r.resource),
			     *at = mesh_escape_text(r.requested_at), *why = mesh_escape_text(r.reason),
			     *status = mesh_escape_text(r.status ? r.status : "pending");
			printf("%-6s %-12s %-30s %-25s %-10s %s\n", r.id, user, res, at, status, why);
			free(user), free(res), free(at), free(why), free(status);
		}
		request_free(&r);
	}
	closedir(d);
	scope_close(sc);
	if (list) {
		json_t *doc = json_object();
		json_object_set_new(doc, "requests", list);
		meshctl_json_print(doc);
	}
	return MESHCTL_OK;
}

static int decide_request(const struct meshctl_ctx *ctx, int argc, char **argv, bool approve)
{
	const char *cmd = approve ? "approve" : "deny";
	static const struct option longopts[] = {
		{"until", required_argument, NULL, 'u'}, {"reason", required_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	const char *until_text = NULL, *reason = NULL;
	optind = 0;
	int c;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (c == 'u')
			until_text = optarg;
		else if (c == 'r')
			reason = optarg;
		else {
			printf("usage: meshctl %s ID [--until DATE] [--reason TEXT]\n", cmd);
			return c == 'h' ? MESHCTL_OK : MESHCTL_USAGE;
		}
	}
	if (optind != argc - 1) {
		meshctl_fail(ctx, cmd, "usage: meshctl %s ID", cmd);
		return MESHCTL_USAGE;
	}
	struct request r;
	if (load_request(ctx->store, argv[optind], &r)) {
		meshctl_fail(ctx, cmd, "no request %s", argv[optind]);
		return MESHCTL_FAILED;
	}
	int st = 0;
	time_t until = 0;
	if (r.status) {
		meshctl_fail(ctx, cmd, "request %s was %s already", r.id, r.status);
		st = MESHCTL_FAILED;
	}
	/* only the domain's owners (or governance) decide; a requester who is
	 * not an owner therefore never approves their own request */
	if (!st)
		st = check_admin(ctx, cmd, r.domain);
	if (!st && approve)
		st = parse_until(ctx, cmd, until_text ? until_text : r.until, &until);
	if (st) {
		request_free(&r);
		return st;
	}
	char who[64], stamp[40], subject[80];
	snprintf(who, sizeof who, "%s", ctx->caller.user);
	now_rfc3339(stamp, sizeof stamp);
	snprintf(subject, sizeof subject, "user:%s", r.user);
	char *grant_id = NULL;
	struct mesh_err err = {0};
	int rc = 0;
	if (approve) {
		char d[256], p[256], v[256];
		char buf[256];
		snprintf(buf, sizeof buf, "%s", r.resource);
		char *at = strchr(buf, '@'), *slash = strchr(buf, '/');
		if (at)
			*at++ = '\0';
		if (slash)
			*slash++ = '\0';
		snprintf(d, sizeof d, "%s", buf);
		snprintf(p, sizeof p, "%s", slash ? slash : "");
		snprintf(v, sizeof v, "%s", at ? at : "");
		struct grant g = {.subject = subject, .domain = d, .product = p[0] ? p : NULL, .version = v[0] ? v : NULL,
				  .until = until, .grantor = who, .granted_at = stamp, .reason = r.reason, .request = r.id};
		rc = grant_write(ctx->store, &g, &grant_id, &err);
	}
	if (!rc) {
		char dir[PATH_MAX];
		snprintf(dir, sizeof dir, "%s/domains/%s/requests", ctx->store, r.domain);
		if (mkdir(dir, STORE_DIR_MODE) < 0 && errno != EEXIST)
			rc = mesh_errf(&err, -errno, "%s: %s", dir, strerror(errno));
		json_t *o = json_object();
		json_object_set_new(o, "status", json_string(approve ? "approved" : "denied"));
		json_object_set_new(o, "by", json_string(who));
		json_object_set_new(o, "at", json_string(stamp));
		if (grant_id)
			json_object_set_new(o, "grant", json_string(grant_id));
		if (reason)
			json_object_set_new(o, "reason", json_string(reason));
		char *text = json_dumps(o, JSON_INDENT(2));
		json_decref(o);
		char name[64];
		snprintf(name, sizeof name, "%s.json", r.id);
		int fd = rc ? -1 : mesh_open_dir_at(AT_FDCWD, dir);
		if (fd >= 0) {
			rc = mesh_write_file_atomic(fd, name, text, strlen(text), STORE_FILE_MODE, &err);
			close(fd);
		} else if (!rc) {
			rc = mesh_errf(&err, fd, "%s: %s", dir, strerror(-fd));
		}
		free(text);
	}
	if (!rc) {
		char audit[1024];
		snprintf(audit, sizeof audit, "%s request %s of %s for %s (%s)%s%s", approve ? "approve" : "deny", r.id,
			 r.user, r.resource, r.reason, grant_id ? ": grant " : "", grant_id ? grant_id : "");
		policy_audit(ctx->store, r.domain, &ctx->caller, audit);
		store_bump_generation(ctx->store, NULL);
		char line[1024];
		snprintf(line, sizeof line, "request %s %s: %s may %sread %s%s%s", r.id, approve ? "approved" : "denied",
			 r.user, approve ? "" : "not ", r.resource, approve && until ? " until " : "",
			 approve && until ? (until_text ? until_text : r.until) : "");
		meshctl_result(ctx, line, "request", r.id, "decision", approve ? "approved" : "denied",
			       "user", r.user, "resource", r.resource, "grant", grant_id, (char *)NULL);
	} else {
		meshctl_fail(ctx, cmd, "%s", err.msg);
	}
	free(grant_id);
	request_free(&r);
	return rc ? meshctl_exit_for(rc) : MESHCTL_OK;
}

int meshctl_cmd_approve(const struct meshctl_ctx *ctx, int argc, char **argv)
{
	return decide_request(ctx, argc, argv, true);
}

int meshctl_cmd_deny(const struct meshctl_ctx *ctx, int argc, char **argv)
{
	return decide_request(ctx, argc, argv, false);
}

/* ---- access / explain ---- */

/* Print the decision for `who` on every data file of a product's newest
 * version (or of the version / file named). */
/* Why file f cannot have the Parquet view `dec` asks for (every column
 * masked, a masked column the file lacks, a file its reader refuses):
 * why[0] stays '\0' when it can.  Reads the footer of the release file. */
static void parquet_view_refusal(const struct meshctl_ctx *ctx, const struct cat_node *f,
				 const struct policy_decision *dec, char *why, size_t why_len)
{
	struct view_plan *plan = view_plan_new();
	for (uint32_t k = 0; k < f->n_columns; k++)
		for (size_t m = 0; m < dec->n_masked; m++)
			if (!strcmp(f->columns[k].classification, dec->masked[m].classification))
				view_plan_add(plan, f->columns[k].name, VIEW_FN_OMIT, 0);
	view_plan_seal(plan);
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%s", ctx->store, f->backing);
	int fd = mesh_open_regular_at(AT_FDCWD, path, O_RDONLY, 0, NULL);
	struct mesh_err err = {0};
	if (fd < 0)
		snprintf(why, why_len, "%s: %s", f->backing, mesh_open_strerror(fd));
	else if (plan->n && view_parquet_check(fd, plan, &err))
		snprintf(why, why_len, "%s", err.msg);
	if (fd >= 0)
		close(fd);
	view_plan_free(plan);
}

static int show_decisions(const struct meshctl_ctx *ctx, const char *cmd, const struct identity *who,
			  const char *ref)
{
	struct mesh_err err = {0};
	struct policy *p = NULL;
	char *warnings = NULL;
	if (policy_load(ctx->store, &p, &warnings, &err)) {
		meshctl_fail(ctx, cmd, "%s", err.msg);
		return meshctl_exit_for(-EINVAL);
	}
	free(warnings);
	struct catalog *cat = NULL;
	if (catalog_scan(ctx->store, NULL, &cat, &err)) {
		meshctl_fail(ctx, cmd, "%s", err.msg);
		policy_free(p);
		return MESHCTL_ERROR;
	}
	/* accept /mount/point/d/p/v/f too: the mesh path is the last parts */
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s", ref);
	const struct cat_node *n = NULL;
	for (char *s = path; s && !n; s = strchr(s + 1, '/')) {
		const char *try = *s == '/' ? s + 1 : s;
		char d0[MESH_NAME_MAX + 1];
		snprintf(d0, sizeof d0, "%.*s", (int)strcspn(try, "/"), try);
		if (catalog_child(catalog_root(cat), d0))
			n = catalog_resolve(cat, try);
	}
	/* what the asker may not discover does not exist for them */
	struct scope *sc = NULL;
	scope_open(ctx->store, &ctx->caller, &sc, NULL);
	if (n && !scope_may_discover(sc, n))
		n = NULL;
	scope_close(sc);
	if (!n || n->kind == CAT_ROOT || n->kind == CAT_DOMAIN) {
		meshctl_fail(ctx, cmd, "%s: not a product, version or file of the mesh", ref);
		catalog_unref(cat);
		policy_free(p);
		return MESHCTL_FAILED;
	}
	if (n->kind == CAT_PRODUCT)
		n = catalog_latest(n);
	const struct cat_node *const *files = n->kind == CAT_FILE ? &n : n->children;
	uint32_t nf = n->kind == CAT_FILE ? 1 : n->n_children;
	printf("%s (uid %u) on %s/%s %s:\n", who->user, (unsigned)who->uid, n->domain, n->product, n->version);
	for (uint32_t i = 0; i < nf; i++) {
		const struct cat_node *f = files[i];
		if (f->role != ROLE_DATA) {
			printf("  %-28s discover (metadata is readable by everyone who may see the product)\n", f->name);
			continue;
		}
		size_t nc = f->n_columns;
		const char **classes = xcalloc(nc + 1, sizeof *classes);
		for (size_t k = 0; k < nc; k++)
			classes[k] = f->columns[k].classification;
		struct policy_decision dec;
		policy_decide(p, who, f->domain, f->product, f->version, classes, nc, time(NULL), &dec);
		enum view_format vf;
		bool maskable = !view_format_for_name(f->name, &vf);
		bool parquet = maskable && vf == VIEW_PARQUET;
		const char *unmaskable_fn = NULL;   /* what a Parquet view cannot apply */
		for (size_t m = 0; parquet && dec.result == POLICY_MASK && m < dec.n_masked; m++) {
			enum view_fn fn;
			if (!view_fn_parse(dec.masked[m].function, &fn) && fn != VIEW_FN_NULL && fn != VIEW_FN_REDACT)
				for (uint32_t k = 0; k < f->n_columns && !unmaskable_fn; k++)
					if (!strcmp(f->columns[k].classification, dec.masked[m].classification))
						unmaskable_fn = dec.masked[m].function;
		}
		/* whether the file can have that view at all (a Parquet view
		 * needs a column left): its footer says */
		char refused[MESH_ERR_MAX] = "";
		if (parquet && !unmaskable_fn && dec.result == POLICY_MASK)
			parquet_view_refusal(ctx, f, &dec, refused, sizeof refused);
		bool nothing_left = refused[0] != '\0';
		maskable = maskable && !unmaskable_fn && !nothing_left;
		const char *result = dec.result == POLICY_MASK && !maskable ? "deny" : policy_result_name(dec.result);
		printf("  %-28s %s: %s", f->name, result, dec.reason);
		free(classes);
		if (dec.result == POLICY_MASK) {
			printf("\n  %-28s masked columns (you read a view of this file):", "");
			for (uint32_t k = 0; k < f->n_columns; k++)
				for (size_t m = 0; m < dec.n_masked; m++) {
					const struct policy_mask *pm = &dec.masked[m];
					if (strcmp(f->columns[k].classification, pm->classification))
						continue;
					printf("\n  %-28s   %s: %s", "", f->columns[k].name, pm->function);
					if (!strcmp(pm->function, "truncate"))
						printf("(%g)", pm->precision);
					printf(" (classification %s, masking rule %s)", pm->classification, pm->source);
					if (parquet && !unmaskable_fn && !nothing_left)
						printf(": left out of the Parquet view");
				}
			if (nothing_left)
				printf("\n  %-28s denied: %s (fail closed)", "", refused);
			else if (unmaskable_fn)
				printf("\n  %-28s denied: a Parquet view can only leave columns out, not apply %s "
				       "(fail closed)", "", unmaskable_fn);
			else if (!maskable)
				printf("\n  %-28s denied: this format cannot be masked (fail closed)", "");
		}
		policy_decision_clear(&dec);
		printf("\n");
	}
	catalog_unref(cat);
	policy_free(p);
	return MESHCTL_OK;
}

int meshctl_cmd_access(const struct meshctl_ctx *ctx, int argc, char **argv)
{
	if (argc != 2 || argv[1][0] == '-') {
		printf("usage: meshctl access DOMAIN/PRODUCT[/VERSION[/FILE]]   (what you may do there, and why)\n");
		return argc == 2 && !strcmp(argv[1], "--help") ? MESHCTL_OK : MESHCTL_USAGE;
	}
	const struct identity *me = &ctx->caller;
	return show_decisions(ctx, "access", me, argv[1]);
}

int meshctl_cmd_explain(const struct meshctl_ctx *ctx, int argc, char **argv)
{
	if (argc != 4 || strcmp(argv[1], "--user")) {
		printf("usage: meshctl explain --user USER PATH   (PATH: /mesh/D/P/V/FILE or D/P[/V])\n");
		return argc == 2 && !strcmp(argv[1], "--help") ? MESHCTL_OK : MESHCTL_USAGE;
	}
	long uid = identity_user_id(argv[2]);
	if (uid < 0) {
		meshctl_fail(ctx, "explain", "%s: no such user on this host", argv[2]);
		return MESHCTL_USAGE;
	}
	/* owners and governance only: another user's access is theirs to see */
	char domain[MESH_NAME_MAX + 1];
	const char *ref = argv[3];
	const char *rel = ref;
	for (const char *s = ref; (s = strchr(s, '/')); s++) {
		char d0[MESH_NAME_MAX + 1], path[PATH_MAX];
		snprintf(d0, sizeof d0, "%.*s", (int)strcspn(s + 1, "/"), s + 1);
		snprintf(path, sizeof path, "%s/domains/%s/domain.yaml", ctx->store, d0);
		if (mesh_name_ok(d0) && access(path, F_OK) == 0) {
			rel = s + 1;
			break;
		}
	}
	snprintf(domain, sizeof domain, "%.*s", (int)strcspn(rel, "/"), rel);
	int st = check_admin(ctx, "explain", domain);
	if (st)
		return st;
	struct passwd pw, *res = NULL;
	char buf[4096];
	int ng = IDENTITY_MAX_GROUPS;
	gid_t *groups = xcalloc((size_t)ng, sizeof *groups);
	struct identity who;
	if (getpwuid_r((uid_t)uid, &pw, buf, sizeof buf, &res) || !res) {
		ng = 0;
	} else if (getgrouplist(res->pw_name, res->pw_gid, groups, &ng) < 0) {
		/* more groups than room: ask again with room for all of them */
		groups = xrealloc(groups, (size_t)ng * sizeof *groups);
		if (getgrouplist(res->pw_name, res->pw_gid, groups, &ng) < 0)
			ng = 0;
	}
	identity_from_ids(&who, (uid_t)uid, res ? res->pw_gid : (gid_t)uid, groups, ng);
	free(groups);
	return show_decisions(ctx, "explain", &who, rel);
}
