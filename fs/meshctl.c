/*
 * meshctl.c - the command line's main: global options, dispatch, and the
 * store commands (init, publish, validate, list, diff, deprecate, retire,
 * reindex, status).  Other areas live in fs/meshctl_<area>.c; discovery
 * (search, show, lineage, mcp, catalog) in fs/cli/.
 *
 * Everything that decides lives in the library; this file parses
 * arguments, calls it, prints, and picks the exit code.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "catalog.h"
#include "card.h"
#include "descriptor.h"
#include "lineage.h"
#include "governance.h"
#include "index.h"
#include "meshctl.h"
#include "meshctl_cmds.h"
#include "meshctl_service.h"
#include "meshctl_discovery.h"
#include "mesh_util.h"
#include "progress.h"
#include "sqlrule.h"
#include "publish.h"
#include "validate.h"
#include "scope.h"
#include "schema.h"
#include "service_proto.h"
#include "contract.h"
#include "state_dir.h"
#include "store.h"

/* The program's one run: the first failure message and whether a JSON
 * document was printed (for --json's error document). */
static char first_error[MESH_ERR_MAX + 64];
static bool json_printed;

void meshctl_fail(const struct meshctl_ctx *ctx, const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s %s: ", ctx && ctx->prog ? ctx->prog : "meshctl", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (!first_error[0]) {
		va_start(ap, fmt);
		vsnprintf(first_error, sizeof first_error, fmt, ap);
		va_end(ap);
	}
}

void meshctl_json_print(void *doc)
{
	char *text = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(doc);
	if (text) {
		fputs(text, stdout);
		fputc('\n', stdout);
		free(text);
	}
	json_printed = true;
}

void meshctl_print_document(const char *text)
{
	fputs(text, stdout);
	json_printed = true;
}

void meshctl_result(const struct meshctl_ctx *ctx, const char *text, ...)
{
	if (!ctx->json) {
		fputs(text, stdout);
		fputc('\n', stdout);
		return;
	}
	json_t *doc = json_object();
	json_object_set_new(doc, "ok", json_true());
	json_object_set_new(doc, "result", json_string(text));
	va_list ap;
	va_start(ap, text);
	for (const char *key; (key = va_arg(ap, const char *));) {
		const char *value = va_arg(ap, const char *);
		json_object_set_new(doc, key, value ? json_string(value) : json_null());
	}
	va_end(ap);
	meshctl_json_print(doc);
}

void meshctl_json_error(const struct meshctl_ctx *ctx, const char *cmd, int code)
{
	if (!ctx->json || code == MESHCTL_OK || json_printed)
		return;
	static const char *const classes[] = {"ok", "failed", "usage", "denied", "environment"};
	json_t *e = json_object();
	json_object_set_new(e, "command", json_string(cmd));
	json_object_set_new(e, "message", json_string(first_error[0] ? first_error : classes[code < 5 ? code : 4]));
	json_object_set_new(e, "exit", json_integer(code));
	json_object_set_new(e, "class", json_string(classes[code >= 0 && code < 5 ? code : 4]));
	json_t *doc = json_object();
	json_object_set_new(doc, "error", e);
	meshctl_json_print(doc);
}

int meshctl_exit_for(int rc)
{
	switch (rc) {
	case 0:
		return MESHCTL_OK;
	case -EACCES:
	case -EPERM:
		return MESHCTL_DENIED;
	case -EINVAL:
	case -EEXIST:
	case -ENOENT:
	case -EPROTO:
		return MESHCTL_FAILED;
	default:
		return MESHCTL_ERROR;
	}
}

/* Options of a subcommand are parsed with getopt_long from argv[0] = the
 * subcommand; a leading '+' stops at the first non-option ... no: we allow
 * options after positional arguments (GNU permutation). */
static void reset_getopt(void)
{
	optind = 0;
	opterr = 1;
}

/* ---- init (a store) ---- */

/* The account that owns a store: --service-user NAME (default root). */
static int service_account(const struct meshctl_ctx *ctx, const char *cmd, const char *name, uid_t *uid,
			   gid_t *gid)
{
	char buf[4096];
	struct passwd pw, *res = NULL;
	if (getpwnam_r(name, &pw, buf, sizeof buf, &res) || !res) {
		meshctl_fail(ctx, cmd, "--service-user %s: no such user on this host (create a system account "
			     "first, e.g. 'useradd --system --no-create-home meshfs')", name);
		return MESHCTL_USAGE;
	}
	*uid = res->pw_uid;
	*gid = res->pw_gid;
	return 0;
}

static int cmd_init_store(const struct meshctl_ctx *ctx, const char *service_user)
{
	uid_t uid;
	gid_t gid;
	int st = service_account(ctx, "init", service_user ? service_user : "root", &uid, &gid);
	if (st)
		return st;
	if (geteuid() != 0 && geteuid() != uid) {
		meshctl_fail(ctx, "init", "a store for %s is made by root (or by %s itself: --service-user "
			     "%s)", service_user ? service_user : "root", service_user ? service_user : "root",
			     ctx->caller.user);
		return MESHCTL_DENIED;
	}
	struct mesh_err err = {0};
	int rc = store_init(ctx->store, gov_default_mesh_yaml(), &err);
	if (!rc)
		rc = store_lock_down(ctx->store, uid, gid, NULL, &err);
	if (rc) {
		meshctl_fail(ctx, "init", "%s", err.msg);
		return meshctl_exit_for(rc);
	}
	char line[PATH_MAX + 128];
	snprintf(line, sizeof line, "created meshfs store %s, owned by %s, readable by nobody else (people come in "
		 "through the mount and the mesh service)", ctx->store, service_user ? service_user : "root");
	meshctl_result(ctx, line, "store", ctx->store, "owner", service_user ? service_user : "root", (char *)NULL);
	return MESHCTL_OK;
}

static int cmd_init(const struct meshctl_ctx *ctx, int argc, char **argv)
{
	/* `init [--service-user NAME]` creates a store; `init FILE ...` drafts a contract. */
	const char *service_user = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--service-user") && i + 1 < argc) {
			service_user = argv[++i];
			continue;
		}
		if (!strncmp(argv[i], "--service-user=", 15)) {
			service_user = argv[i] + 15;
			continue;
		}
		if (argv[i][0] != '-')
			return meshctl_cmd_draft(ctx, argc, argv);
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			printf("usage: meshctl [--store DIR] init [--service-user NAME]\n"
			       "       meshctl init DATAFILE --domain D --product P [--version V] [--out DIR] [--full]\n"
			       "The store belongs to the service account NAME (default root): every file is\n"
			       "its own, mode 0700/0600; nobody else reads or writes any of it.\n");
			return MESHCTL_OK;
		}
		meshctl_fail(ctx, "init", "unexpected option %s", argv[i]);
		return MESHCTL_USAGE;
	}
	return cmd_init_store(ctx, service_user);
}

/* ---- doctor ---- */

static int cmd_doctor(const struct meshctl_ctx *ctx, int argc, char **argv)
{
	bool fix = false;
	const char *service_user = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--fix"))
			fix = true;
		else if (!strcmp(argv[i], "--service-user") && i + 1 < argc)
			service_user = argv[++i];
		else {
			printf("usage: meshctl doctor [--fix [--service-user NAME]]\n"
			       "Checks that the store is locked down: every entry a directory or regular file\n"
			       "of the store's owner, with no group or other permissions.  --fix makes it so\n"
			       "(as root; the owner stays the store directory's, or becomes NAME).\n");
			return !strcmp(argv[i], "--help") ? MESHCTL_OK : MESHCTL_USAGE;
		}
	}
	struct mesh_err err = {0};
	int rc = store_check(ctx->store, &err);
	if (rc) {
		meshctl_fail(ctx, "doctor", "%s", err.msg);
		return meshctl_exit_for(rc);
	}
	if (fix) {
		struct stat st;
		if (stat(ctx->store, &st) < 0) {
			meshctl_fail(ctx, "doctor", "%s: %s", ctx->store, strerror(errno));
			return MESHCTL_ERROR;
		}
		uid_t uid = st.st_uid;
		gid_t gid = st.st_gid;
		if (service_user) {
			int s2 = service_account(ctx, "doctor", service_user, &uid, &gid);
			if (s2)
				return s2;
		}
		size_t fixed = 0;
		rc = store_lock_down(ctx->store, uid, gid, &fixed, &err);
		if (rc) {
			meshctl_fail(ctx, "doctor", "%s", err.msg);
			return meshctl_exit_for(rc);
		}
		printf("fixed %zu entries\n", fixed);
	}
	char *report = NULL;
	rc = store_audit(ctx->store, &report, &err);
	if (rc < 0) {
		meshctl_fail(ctx, "doctor", "%s", err.msg);
		return meshctl_exit_for(rc);
	}
	if (rc > 0) {
		printf("%s: NOT locked down, %d problem(s):\n%s\n", ctx->store, rc, report);
		free(report);
		return MESHCTL_FAILED;
	}
	printf("%s: locked down (every entry the store owner's, no group or other permissions)\n", ctx->store);
	return MESHCTL_OK;
}

/* ---- publish / validate ---- */

/* One line of user-supplied text (file names, contract text in
 * messages), escaped for the terminal. */
static void print_escaped(const char *prefix, const char *text, size_t len)
{
	char *line = xstrndup(text, len);
	char *safe = mesh_escape_text(line);
	printf("%s%s\n", prefix, safe);
	free(safe);
	free(line);
}

static void print_report(const struct publish_report *r, bool install)
{
	for (size_t i = 0; i < r->n_checks; i++) {
		const struct publish_check *c = &r->checks[i];
		char *what = mesh_escape_text(c->what);
		printf("%-6s %s", c->passed ? "ok" : c->warning ? "warn" : "FAIL", what);
		free(what);
		if (c->detail && *c->detail) {
			printf(":");
			const char *p = c->detail;
			bool multi = strchr(p, '\n') != NULL;
			if (multi) {
				printf("\n");
				while (*p) {
					size_t n = strcspn(p, "\n");
					print_escaped("         ", p, n);
					p += n + (p[n] == '\n');
				}
			} else {
				print_escaped(" ", p, strlen(p));
			}
		} else {
			printf("\n");
		}
	}
	if (r->failed)
		printf("%s/%s %s: %s\n", r->domain ? r->domain : "?", r->product ? r->product : "?",
		       r->version ? r->version : "?",
		       install ? "NOT published (nothing was installed)" : "validation FAILED");
	else if (install && r->installed)
		printf("published %s/%s %s (%zu files)\n", r->domain, r->product, r->version,
		       r->installed->n_files);
	else
		printf("%s/%s %s: valid (nothing installed)\n", r->domain, r->product, r->version);
}

static int run_publish(const struct meshctl_ctx *ctx, int argc, char **argv, bool install)
{
	const char *cmd = install ? "publish" : "validate";
	static const struct option longopts[] = {
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{"unique-memory", required_argument, NULL, 'm'},
		{"threads", required_argument, NULL, 't'},
		{"quiet", no_argument, NULL, 'q'},
		{"sql-max-mib", required_argument, NULL, 's'},
		{NULL, 0, NULL, 0},
	};
	bool json = ctx->json, quiet = false;
	struct publish_options opts = {.install = install, .caller = &ctx->caller};
	reset_getopt();
	int c;
	while ((c = getopt_long(argc, argv, "hjq", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'q':
			quiet = true;
			break;
		case 's': {
			char *end;
			unsigned long long mib = strtoull(optarg, &end, 10);
			if (*end || end == optarg || mib > (1ull << 20)) {
				meshctl_fail(ctx, cmd, "--sql-max-mib: a number of MiB (0: run no SQL rule)");
				return MESHCTL_USAGE;
			}
			opts.sql_off = mib == 0;
			opts.sql_max_bytes = mib << 20;
			break;
		}
		case 'm':
			opts.unique_memory = strtoull(optarg, NULL, 10) << 20;
			break;
		case 't': {
			char *end;
			unsigned long n = strtoul(optarg, &end, 10);
			if (*end || n < 1 || n > 1024) {
				meshctl_fail(ctx, cmd, "--threads: a number from 1 (at most %d are used)",
					     VALIDATE_MAX_THREADS);
				return MESHCTL_USAGE;
			}
			opts.threads = (unsigned)n;
			break;
		}
		case 'h':
			printf("usage: meshctl %s RELEASE_DIR [--json] [--quiet] [--unique-memory MIB] [--threads N]\n"
			       "                [--sql-max-mib N]\n"
			       "  --threads N  threads reading a CSV file (default: the online CPUs, at most %d);\n"
			       "               the report is the same for any number\n"
			       "SQL quality rules (type: sql) run in embedded SQLite over data files of at most\n"
			       "N MiB (default %u; 0: none); larger files list them as not checked.\n"
			       "On a terminal, a progress line on stderr (bytes, MB/s, ETA) while data files are\n"
			       "%svalidated, at most 4 updates a second; none with --json or --quiet, or\n"
			       "when stderr is not a terminal.\n", cmd, VALIDATE_MAX_THREADS, SQLRULE_DEFAULT_MAX_BYTES >> 20,
			       install ? "staged and " : "");
			return MESHCTL_OK;
		default:
			return MESHCTL_USAGE;
		}
	}
	if (optind != argc - 1) {
		meshctl_fail(ctx, cmd, "usage: meshctl %s RELEASE_DIR [--json]", cmd);
		return MESHCTL_USAGE;
	}
	struct publish_report report = {0};
	struct mesh_err err = {0};
	const char *release_dir = argv[optind];
	char received[PATH_MAX] = "";
	if (ctx->served) {
		int st = meshctl_release_receive(ctx, cmd, argv[optind], received, sizeof received);
		if (st)
			return st;
		release_dir = received;
	}
	/* Served, stderr is the client's own descriptor (passed over the
	 * socket), but TERM and the pace are the client's to say. */
	unsigned pace = ctx->served ? (isatty(STDERR_FILENO) ? ctx->served->progress_ms : 0)
				    : progress_terminal_ms(STDERR_FILENO);
	if (pace && !json && !quiet)
		opts.progress = progress_new(STDERR_FILENO, pace);
	int rc = publish_run(ctx->store, release_dir, &ctx->caller, &opts, &report, &err);
	progress_free(opts.progress);
	meshctl_release_done(received);
	if (rc) {
		if (*received)
			mesh_str_replace(err.msg, sizeof err.msg, received, argv[optind]);
		meshctl_fail(ctx, cmd, "%s", err.msg);
		publish_report_free(&report);
		return meshctl_exit_for(rc);
	}
	if (json) {
		fputs(report.quality_json ? report.quality_json : "{}\n", stdout);
		json_printed = true;
	}
	else
		print_report(&report, install);
	int status = report.failed ? MESHCTL_FAILED : MESHCTL_OK;
	publish_report_free(&report);
	return status;
}

static int cmd_publish(const struct meshctl_ctx *ctx, int argc, char **argv)
{
	return run_publish(ctx, argc, argv, true);
}

static int cmd_validate(const struct meshctl_ctx *ctx, int argc, char **argv)
{
	return run_publish(ctx, argc, argv, false);
}

/* ---- list / show ---- */

static int load_catalog(const struct meshctl_ctx *ctx, const char *cmd, struct catalog **cat)
{
	struct mesh_err err = {0};
	int rc = store_check(ctx->store, &err);
	if (!rc)
		rc = catalog_scan(ctx->store, NULL, cat, &err);
	if (rc)
		meshctl_fail(ctx, cmd, "%s", err.msg);
	return rc ? meshctl_exit_for(rc) : 0;
}

static int version_order(const void *a, const void *b)
{
	const struct cat_node *x = *(const struct cat_node *const *)a, *y = *(const struct cat_node *const *)b;
	return semver_cmp_str(x->name, y->name);
}

/* A product's versions the caller may see, in SemVer order (1.9.0 before
 * 1.10.0), printed or, with `out`, appended to a JSON array. */
static void print_versions(struct scope *sc, const struct cat_node *p, json_t *out)
{
	const struct cat_node *latest = catalog_latest(p);
	const struct cat_node **versions = xcalloc(p->n_children + 1, sizeof *versions);
	size_t n = 0;
	for (uint32_t k = 0; k < p->n_children; k++)
		if (p->children[k]->kind == CAT_VERSION && scope_may_discover(sc, p->children[k]))
			versions[n++] = p->children[k];
	qsort(versions, n, sizeof *versions, version_order);
	for (size_t k = 0; k < n; k++) {
		const struct cat_node *v = versions[k];
		char when[40];
		mesh_time_rfc3339(&v->mtime, when, sizeof when);
		if (out) {
			json_t *o = json_object();
			json_object_set_new(o, "version", json_string(v->name));
			json_object_set_new(o, "status", json_string(lifecycle_name(v->state)));
			json_object_set_new(o, "published_at", json_string(when));
			json_object_set_new(o, "latest", json_boolean(v == latest));
			json_object_set_new(o, "restricted", json_boolean(v->restricted));
			json_array_append_new(out, o);
			continue;
		}
		printf("  %-10s %-10s %s%s%s\n", v->name, lifecycle_name(v->state), when,
		       v == latest ? "  <- latest" : "", v->restricted ? "  (restricted)" : "");
	}
	free(versions);
}

static void list_product(struct scope *sc, const struct cat_node *p, json_t *products)
{
	if (!products) {
		printf("%s/%s\n", p->domain, p->name);
		print_versions(sc, p, NULL);
		return;
	}
	json_t *o = json_object(), *versions = json_array();
	json_object_set_new(o, "domain", json_string(p->domain));
	json_object_set_new(o, "product", json_string(p->name));
	json_object_set_new(o, "restricted", json_boolean(p->restricted));
	print_versions(sc, p, versions);
	json_object_set_new(o, "versions", versions);
	json_array_append_new(products, o);
}

static int cmd_list(const struct meshctl_ctx *ctx, int argc, char **argv)
{
	if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
		printf("usage: meshctl list [DOMAIN[/PRODUCT]]\n");
		return argc == 2 && !strcmp(argv[1], "--help") ? MESHCTL_OK : MESHCTL_USAGE;
	}
	struct mesh_err cerr = {0};
	int st = store_check(ctx->store, &cerr);
	if (st) {
		meshctl_fail(ctx, "list", "%s", cerr.msg);
		return meshctl_exit_for(st);
	}
	st = meshctl_list_from_index(ctx, argc == 2 ? argv[1] : NULL);
	if (st != MESHCTL_LIST_FALLBACK)
		return st;
	struct catalog *cat;
	st = load_catalog(ctx, "list", &cat);
	if (st)
		return st;
	const struct cat_node *start = catalog_root(cat);
	/* restricted products the caller may not read are not listed, as in the mount */
	struct scope *sc = NULL;
	scope_open(ctx->store, &ctx->caller, &sc, NULL);
	if (argc == 2) {
		start = catalog_resolve(cat, argv[1]);
		if (!start || !scope_may_discover(sc, start)) {
			scope_close(sc);
			meshctl_fail(ctx, "list", "%s: no such domain or product", argv[1]);
			catalog_unref(cat);
			return MESHCTL_FAILED;
		}
	}
	json_t *products = ctx->json ? json_array() : NULL;
	if (start->kind == CAT_PRODUCT) {
		list_product(sc, start, products);
	} else if (start->kind == CAT_ROOT || start->kind == CAT_DOMAIN) {
		const struct cat_node *const *domains = start->kind == CAT_ROOT ? start->children : &start;
		uint32_t nd = start->kind == CAT_ROOT ? start->n_children : 1;
		for (uint32_t i = 0; i < nd; i++)
			for (uint32_t j = 0; j < domains[i]->n_children; j++) {
				const struct cat_node *p = domains[i]->children[j];
				if (scope_may_discover(sc, p))
					list_product(sc, p, products);
			}
	} else {
		if (products) {
			json_t *o = json_object();
			json_object_set_new(o, "domain", json_string(start->domain));
			json_object_set_new(o, "product", json_string(start->product));
			json_object_set_new(o, "version", json_string(start->version ? start->version : ""));
			json_array_append_new(products, o);
		} else {
			printf("%s/%s %s\n", start->domain, start->product, start->version ? start->version : "");
		}
	}
	if (products) {
		json_t *doc = json_object();
		json_object_set_new(doc, "products", products);
		meshctl_json_print(doc);
	}
	scope_close(sc);
	catalog_unref(cat);
	return MESHCTL_OK;
}

/* ---- deprecate / retire ---- */

static int parse_product_ref(const char *ref, char *domain, char *product)
{
	const char *slash = strchr(ref, '/');
	if (!slash || (size_t)(slash - ref) > MESH_NAME_MAX || strlen(slash + 1) > MESH_NAME_MAX)
		return -EINVAL;
	memcpy(domain, ref, (size_t)(slash - ref));
	domain[slash - ref] = '\0';
	strcpy(product, slash + 1);
	return mesh_name_ok(domain) && mesh_name_ok(product) ? 0 : -EINVAL;
}

static int run_lifecycle(const struct meshctl_ctx *ctx, int argc, char **argv, enum lifecycle state)
{
	const char *cmd = argv[0];
	static const struct option longopts[] = {
		{"sunset", required_argument, NULL, 's'},
		{"reason", required_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *sunset = NULL, *reason = NULL;
	reset_getopt();
	int c;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (c == 's')
			sunset = optarg;
		else if (c == 'r')
			reason = optarg;
		else if (c == 'h') {
			printf("usage: meshctl %s DOMAIN/PRODUCT VERSION%s\n", cmd,
			       state == LC_DEPRECATED ? " [--sunset YYYY-MM-DD] [--reason TEXT]" : " [--reason TEXT]");
			return MESHCTL_OK;
		} else
			return MESHCTL_USAGE;
	}
	char domain[MESH_NAME_MAX + 1], product[MESH_NAME_MAX + 1];
	if (optind != argc - 2 || parse_product_ref(argv[optind], domain, product)) {
		meshctl_fail(ctx, cmd, "usage: meshctl %s DOMAIN/PRODUCT VERSION", cmd);
		return MESHCTL_USAGE;
	}
	time_t t;
	if (sunset && (strlen(sunset) != 10 || mesh_time_parse(sunset, &t))) {
		meshctl_fail(ctx, cmd, "--sunset %s: not a date (YYYY-MM-DD)", sunset);
		return MESHCTL_USAGE;
	}
	const char *version = argv[optind + 1];
	struct mesh_err err = {0};
	int rc = meshfs_check_publisher(ctx->store, domain, cmd, &ctx->caller, &err);
	if (!rc)
		rc = store_set_lifecycle(ctx->store, domain, product, version, state, sunset, reason,
					 ctx->caller.user, &err);
	if (!rc) {
		/* the served product.yaml lists versions with their status */
		struct mesh_err derr = {0};
		if (descriptor_refresh(ctx->store, NULL, domain, product, NULL, 0, &derr) ||
		    card_refresh(ctx->store, NULL, NULL, domain, product, &derr) ||
		    store_bump_generation(ctx->store, &derr))
			fprintf(stderr, "%s %s: warning: product.yaml and README.md not rewritten (run 'meshctl reindex'): %s\n",
				ctx->prog, cmd, derr.msg);
	}
	if (rc) {
		meshctl_fail(ctx, cmd, "%s", err.msg);
		return meshctl_exit_for(rc);
	}
	char line[600];
	snprintf(line, sizeof line, "%s/%s %s is now %s", domain, product, version, lifecycle_name(state));
	meshctl_result(ctx, line, "domain", domain, "product", product, "version", version,
		       "status", lifecycle_name(state), "sunset", sunset, "reason", reason, (char *)NULL);
	return MESHCTL_OK;
}

static int cmd_deprecate(const struct meshctl_ctx *ctx, int argc, char **argv)
{
	return run_lifecycle(ctx, argc, argv, LC_DEPRECATED);
}

static int cmd_retire(const struct meshctl_ctx *ctx, int argc, char **argv)
{
	return run_lifecycle(ctx, argc, argv, LC_RETIRED);
}

/* ---- diff ---- */

static int load_release_contract(const struct meshctl_ctx *ctx, const char *domain, const char *product,
				 const char *version, struct contract **c)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/domains/%s/%s/%s/contract.yaml", ctx->store, domain, product, version);
	struct mesh_err err = {0};
	if (semver_parse(version, NULL)) {
		meshctl_fail(ctx, "diff", "%s: not a SemVer version", version);
		return MESHCTL_USAGE;
	}
	if (access(path, F_OK) < 0) {
		meshctl_fail(ctx, "diff", "%s/%s has no version %s", domain, product, version);
		return MESHCTL_FAILED;
	}
	int rc = contract_load(path, c, &err);
	if (rc) {
		meshctl_fail(ctx, "diff", "%s", err.msg);
		return meshctl_exit_for(rc);
	}
	return 0;
}

static int cmd_diff(const struct meshctl_ctx *ctx, int argc, char **argv)
{
	char domain[MESH_NAME_MAX + 1], product[MESH_NAME_MAX + 1];
	if (argc != 4 || parse_product_ref(argv[1], domain, product)) {
		printf("usage: meshctl diff DOMAIN/PRODUCT OLD_VERSION NEW_VERSION\n"
		       "Prints schema and contract changes; breaking ones are marked BREAKING.\n");
		return argc == 2 && !strcmp(argv[1], "--help") ? MESHCTL_OK : MESHCTL_USAGE;
	}
	struct contract *a = NULL, *b = NULL;
	struct scope *sc = NULL;
	scope_open(ctx->store, &ctx->caller, &sc, NULL);
	struct catalog *dcat = NULL;
	const struct cat_node *pnode = NULL;
	char pref[2 * MESH_NAME_MAX + 2];
	snprintf(pref, sizeof pref, "%s/%s", domain, product);
	if (catalog_scan(ctx->store, NULL, &dcat, NULL) == 0)
		pnode = catalog_resolve(dcat, pref);
	bool visible = pnode && scope_may_discover(sc, pnode);
	if (dcat)
		catalog_unref(dcat);
	scope_close(sc);
	if (!visible) {
		/* a restricted product the caller may not read does not exist for them */
		meshctl_fail(ctx, "diff", "%s/%s: no such product", domain, product);
		return MESHCTL_FAILED;
	}
	int st = load_release_contract(ctx, domain, product, argv[2], &a);
	if (!st)
		st = load_release_contract(ctx, domain, product, argv[3], &b);
	if (st) {
		contract_free(a);
		return st;
	}
	/* every change as (object, breaking, text), then printed or as JSON */
	json_t *changes = json_array();
#define CHANGE(obj, brk, ...) do { \
		char text_[1024]; \
		snprintf(text_, sizeof text_, __VA_ARGS__); \
		json_t *c_ = json_object(); \
		json_object_set_new(c_, "object", (obj) ? json_string(obj) : json_null()); \
		json_object_set_new(c_, "breaking", json_boolean(brk)); \
		json_object_set_new(c_, "change", json_string(text_)); \
		json_array_append_new(changes, c_); \
	} while (0)
	for (size_t i = 0; i < b->n_objects; i++) {
		const struct contract_object *nb = &b->objects[i], *na = NULL;
		for (size_t k = 0; k < a->n_objects; k++)
			if (!strcmp(a->objects[k].name, nb->name))
				na = &a->objects[k];
		if (!na) {
			CHANGE(nb->name, false, "schema object %s added", nb->name);
			continue;
		}
		struct table_schema *sa = NULL, *sb = NULL;
		struct schema_change *ch = NULL;
		size_t n = 0;
		schema_from_contract_object(na, a, &sa);
		schema_from_contract_object(nb, b, &sb);
		schema_diff(sa, sb, &ch, &n);
		for (size_t k = 0; k < n; k++)
			CHANGE(nb->name, ch[k].breaking, "%s", ch[k].description);
		schema_changes_free(ch, n);
		schema_free(sa);
		schema_free(sb);
	}
	for (size_t k = 0; k < a->n_objects; k++) {
		bool kept = false;
		for (size_t i = 0; i < b->n_objects; i++)
			kept |= !strcmp(a->objects[k].name, b->objects[i].name);
		if (!kept)
			CHANGE(a->objects[k].name, true, "schema object %s removed", a->objects[k].name);
	}
	if ((a->purpose == NULL) != (b->purpose == NULL) || (a->purpose && strcmp(a->purpose, b->purpose)))
		CHANGE(NULL, false, "description.purpose changed");
	if (a->n_owners != b->n_owners)
		CHANGE(NULL, false, "owners: %zu -> %zu", a->n_owners, b->n_owners);
#undef CHANGE
	size_t total = json_array_size(changes), breaking = 0;
	for (size_t k = 0; k < total; k++)
		breaking += json_is_true(json_object_get(json_array_get(changes, k), "breaking"));
	if (ctx->json) {
		json_t *doc = json_object();
		json_object_set_new(doc, "domain", json_string(domain));
		json_object_set_new(doc, "product", json_string(product));
		json_object_set_new(doc, "from", json_string(argv[2]));
		json_object_set_new(doc, "to", json_string(argv[3]));
		json_object_set_new(doc, "changes", changes);
		json_object_set_new(doc, "breaking", json_integer((json_int_t)breaking));
		json_object_set_new(doc, "major_required", json_boolean(breaking > 0));
		meshctl_json_print(doc);
	} else {
		printf("%s/%s %s -> %s\n", domain, product, argv[2], argv[3]);
		for (size_t k = 0; k < total; k++) {
			json_t *c = json_array_get(changes, k);
			json_t *obj = json_object_get(c, "object");
			printf("  %s %s%s%s\n", json_is_true(json_object_get(c, "breaking")) ? "BREAKING" : "        ",
			       json_is_string(obj) ? json_string_value(obj) : "", json_is_string(obj) ? ": " : "",
			       json_string_value(json_object_get(c, "change")));
		}
		printf("%zu change(s), %zu breaking%s\n", total, breaking,
		       breaking ? " (a new major version is required)" : "");
		json_decref(changes);
	}
	contract_free(a);
	contract_free(b);
	return MESHCTL_OK;
}

/* ---- reindex / search / status ---- */

/* Every product's served product.yaml and cards, rewritten from the files. */
static int refresh_descriptors(const char *store, struct mesh_err *err)
{
	struct catalog *cat = NULL;
	struct lineage *g = NULL;
	int rc = catalog_scan(store, NULL, &cat, err);
	if (!rc)
		rc = lineage_load(store, cat, &g, err);
	/* the policy is loaded once for every card, not per product */
	struct card_views *views = NULL;
	if (!rc)
		rc = card_views_open(store, cat, &views, err);
	const struct cat_node *root = rc ? NULL : catalog_root(cat);
	for (uint32_t d = 0; root && d < root->n_children && !rc; d++)
		for (uint32_t p = 0; p < root->children[d]->n_children && !rc; p++) {
			const struct cat_node *prod = root->children[d]->children[p];
			rc = descriptor_refresh(store, cat, prod->domain, prod->name, NULL, 0, err);
			if (!rc)
				rc = card_refresh_with(store, cat, g, views, prod->domain, prod->name, err);
		}
	card_views_close(views);
	lineage_free(g);
	catalog_unref(cat);
	/* cards and served descriptors are written without an fsync each
	 * (derived files): one syncfs makes the batch durable */
	int sfd = rc ? -1 : open(store, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sfd >= 0) {
		if (syncfs(sfd) < 0)
			rc = mesh_errf(err, -errno, "%s: syncfs: %s", store, strerror(errno));
		close(sfd);
	}
	return rc ? rc : store_bump_generation(store, err);
}

/* This host's index of the store: STATE/<store-id>/index.db. */
static int index_path_of(const struct meshctl_ctx *ctx, char *path, size_t size, struct mesh_err *err)
{
	char dir[PATH_MAX];
	int rc = state_dir_for_store(ctx->store, ctx->state_dir, true, dir, sizeof dir, err);
	if (!rc && snprintf(path, size, "%s/" INDEX_DB_NAME, dir) >= (int)size)
		rc = mesh_errf(err, -ENAMETOOLONG, "%s: path too long", dir);
	return rc;
}

static int cmd_reindex(const struct meshctl_ctx *ctx, int argc, char **argv)
{
	(void)argv;
	if (argc != 1) {
		printf("usage: meshctl reindex   (rebuild this host's index of the store from its files)\n");
		return MESHCTL_USAGE;
	}
	struct mesh_err err = {0};
	struct index_refresh_stats stats = {0};
	char path[PATH_MAX];
	int rc = store_check(ctx->store, &err);
	if (!rc)
		rc = store_clean_staging(ctx->store, &err);
	if (!rc)
		rc = index_path_of(ctx, path, sizeof path, &err);
	if (!rc)
		rc = index_rebuild(ctx->store, path, &stats, &err);
	if (!rc)
		rc = refresh_descriptors(ctx->store, &err);
	if (rc) {
		meshctl_fail(ctx, "reindex", "%s", err.msg);
		return meshctl_exit_for(rc);
	}
	char line[PATH_MAX + 96], count[32];
	snprintf(line, sizeof line, "indexed %zu releases into %s%s", stats.releases, path,
		 stats.unreadable ? " (some unreadable releases skipped)" : "");
	snprintf(count, sizeof count, "%zu", stats.releases);
	meshctl_result(ctx, line, "releases", count, (char *)NULL);
	return MESHCTL_OK;
}

static int cmd_status(const struct meshctl_ctx *ctx, int argc, char **argv)
{
	(void)argv;
	if (argc != 1) {
		printf("usage: meshctl status\n");
		return MESHCTL_USAGE;
	}
	struct mesh_err cerr = {0};
	int st = store_check(ctx->store, &cerr);
	if (st) {
		meshctl_fail(ctx, "status", "%s", cerr.msg);
		return meshctl_exit_for(st);
	}
	/* counts of what the caller may see: from this host's index, or when
	 * it cannot answer, from a scan of the store */
	struct meshctl_counts counts;
	if (meshctl_counts_from_index(ctx, &counts) == MESHCTL_LIST_FALLBACK) {
		struct catalog *cat;
		st = load_catalog(ctx, "status", &cat);
		if (st)
			return st;
		const struct cat_node *root = catalog_root(cat);
		memset(&counts, 0, sizeof counts);
		struct scope *sc = NULL;
		scope_open(ctx->store, &ctx->caller, &sc, NULL);
		for (uint32_t d = 0; d < root->n_children; d++)
			for (uint32_t p = 0; p < root->children[d]->n_children; p++) {
				const struct cat_node *prod = root->children[d]->children[p];
				if (!scope_may_discover(sc, prod))
					continue;
				counts.products++;
				for (uint32_t v = 0; v < prod->n_children; v++)
					if (prod->children[v]->kind == CAT_VERSION &&
					    scope_may_discover(sc, prod->children[v])) {
						counts.versions++;
						counts.deprecated += prod->children[v]->state == LC_DEPRECATED;
					}
			}
		scope_close(sc);
		counts.domains = root->n_children;
		counts.unreadable = catalog_skipped(cat);
		catalog_unref(cat);
	}
	char gen[64] = "";
	store_read_generation(ctx->store, gen, sizeof gen);
	gen[strcspn(gen, " \n")] = '\0';
	if (ctx->json) {
		json_t *doc = json_object();
		json_object_set_new(doc, "store", json_string(ctx->store));
		json_object_set_new(doc, "generation", json_string(gen));
		json_object_set_new(doc, "domains", json_integer((json_int_t)counts.domains));
		json_object_set_new(doc, "products", json_integer((json_int_t)counts.products));
		json_object_set_new(doc, "versions", json_integer((json_int_t)counts.versions));
		json_object_set_new(doc, "deprecated", json_integer((json_int_t)counts.deprecated));
		json_object_set_new(doc, "unreadable_releases", json_integer((json_int_t)counts.unreadable));
		/* the usage part as the text report gives it, one line an entry */
		char *usage_text = NULL;
		size_t usage_len = 0;
		FILE *mem = open_memstream(&usage_text, &usage_len);
		int st2 = mem ? meshctl_usage_status(ctx, mem) : MESHCTL_ERROR;
		if (mem)
			fclose(mem);
		json_t *lines = json_array();
		for (char *line = usage_text, *next; line && *line; line = next) {
			next = strchr(line, '\n');
			if (next)
				*next++ = '\0';
			json_array_append_new(lines, json_string(line));
			if (!next)
				break;
		}
		free(usage_text);
		json_object_set_new(doc, "usage", lines);
		meshctl_json_print(doc);
		return st2;
	}
	printf("store        %s\n", ctx->store);
	printf("generation   %s\n", gen);
	printf("domains      %zu\n", counts.domains);
	printf("products     %zu\n", counts.products);
	printf("versions     %zu (%zu deprecated)\n", counts.versions, counts.deprecated);
	if (counts.unreadable)
		printf("unreadable   %zu releases (manifest missing or damaged)\n", counts.unreadable);
	return meshctl_usage_status(ctx, stdout);
}

/* ---- dispatch ---- */

struct command {
	const char *name;
	meshctl_cmd_fn fn;
	const char *summary;
	enum meshctl_where where;
};

static const struct command commands[] = {
	{"init", cmd_init, "create a store; or 'init DATAFILE --domain D --product P': draft a contract",
	 MESHCTL_LOCAL},
	{"validate", cmd_validate, "check a release directory as publish would, install nothing", MESHCTL_SERVED},
	{"publish", cmd_publish, "validate and install a release directory", MESHCTL_SERVED},
	{"list", cmd_list, "list domains, products and versions", MESHCTL_SERVED},
	{"diff", cmd_diff, "schema and contract changes between two versions, breaking ones marked", MESHCTL_SERVED},
	{"deprecate", cmd_deprecate, "mark a version deprecated (still readable)", MESHCTL_SERVED},
	{"retire", cmd_retire, "remove a version from the mount (files kept in the store)", MESHCTL_SERVED},
	{"reindex", cmd_reindex, "rebuild the catalog index from the store's files (root, service account)",
	 MESHCTL_OWNER_ONLY},
	{"status", cmd_status, "store, catalog and usage recording status", MESHCTL_SERVED},
	{"doctor", cmd_doctor, "check (--fix: make) the store locked down for its service account",
	 MESHCTL_OWNER_ONLY},
	MESHCTL_AREA_COMMANDS
	MESHCTL_DISCOVERY_COMMANDS
	{NULL, NULL, NULL, MESHCTL_SERVED},
};

static void usage(FILE *out)
{
	fprintf(out, "usage: meshctl [--store DIR] [--state-dir DIR] [--json] COMMAND [ARGS]\n\n"
		"The command line of meshfs, a data mesh as a filesystem.\n"
		"The store is --store, else $MESH_STORE, else /srv/mesh.  This host's state for it\n"
		"(search index, usage) is in --state-dir, else $MESHFS_STATE_DIR, else "
		STATE_ROOT_DEFAULT ",\nunder the store's id.\n\ncommands:\n");
	for (const struct command *c = commands; c->name; c++)
		fprintf(out, "  %-11s %s\n", c->name, c->summary);
	fprintf(out, "\n'meshctl COMMAND --help' describes one command.\n"
		"Exit status: 0 ok; 1 the check or operation said no (validation failed,\n"
		"not found, already exists); 2 bad arguments; 3 not allowed (not an owner,\n"
		"no grant); 4 environment error (store missing or unreadable, I/O).\n");
}

/* Run argv[0] (a command) here; *where says where it is meant to run. */
static int dispatch(const struct meshctl_ctx *ctx, int argc, char **argv, enum meshctl_where *where)
{
	for (const struct command *c = commands; c->name; c++) {
		if (strcmp(c->name, argv[0]))
			continue;
		if (ctx->served && c->where != MESHCTL_SERVED) {
			meshctl_fail(ctx, c->name, "not served by the mesh service: %s",
				     c->where == MESHCTL_LOCAL ? "run it without the service (it needs no store)"
							       : "run it as root or as the store's owner");
			return MESHCTL_DENIED;
		}
		if (where)
			*where = c->where;
		int code = c->fn(ctx, argc, argv);
		meshctl_json_error(ctx, c->name, code);
		return code;
	}
	meshctl_fail(ctx, argv[0], "unknown command (see meshctl --help)");
	meshctl_json_error(ctx, argv[0], MESHCTL_USAGE);
	return MESHCTL_USAGE;
}

/* Validation maps data files: one truncated by its writer while meshctl
 * reads it faults (SIGBUS) instead of returning a short read.  Say so and
 * fail like any other error (nothing is installed before validation ends;
 * publish validates its own staged copy, which nobody else can change). */
static void on_sigbus(int sig)
{
	(void)sig;
	static const char msg[] = "meshctl: a file shrank while it was being read (SIGBUS): "
				  "it is still being written? nothing was published\n";
	ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
	(void)ignored;
	_exit(MESHCTL_ERROR);
}

int main(int argc, char **argv)
{
	struct meshctl_ctx ctx = {.prog = "meshctl"};
	int serve_fd = -1, spare_fd = -1;
	ctx.store = getenv("MESH_STORE");
	bool store_given = ctx.store && *ctx.store;
	if (!store_given)
		ctx.store = "/srv/mesh";
	signal(SIGBUS, on_sigbus);
	identity_current(&ctx.caller);
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--store") && i + 1 < argc) {
			ctx.store = argv[++i];
			store_given = true;
		} else if (!strncmp(argv[i], "--store=", 8)) {
			ctx.store = argv[i] + 8;
			store_given = true;
		} else if (!strcmp(argv[i], "--state-dir") && i + 1 < argc) {
			ctx.state_dir = argv[++i];
		} else if (!strncmp(argv[i], "--state-dir=", 12)) {
			ctx.state_dir = argv[i] + 12;
		} else if (!strcmp(argv[i], "--json")) {
			ctx.json = true;
		} else if (!strcmp(argv[i], "--serve-fd") && i + 1 < argc) {
			serve_fd = atoi(argv[++i]);   /* the mesh service's worker (not for people) */
		} else if (!strcmp(argv[i], "--serve-spare") && i + 1 < argc) {
			spare_fd = atoi(argv[++i]);   /* its spare worker, waiting for a connection */
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return MESHCTL_OK;
		} else if (!strcmp(argv[i], "--version") || !strcmp(argv[i], "-V")) {
			printf("meshctl %s\n", MESHFS_VERSION);
			return MESHCTL_OK;
		} else {
			fprintf(stderr, "meshctl: unknown option %s (see meshctl --help)\n", argv[i]);
			return MESHCTL_USAGE;
		}
	}
	/* whatever this process creates in a store (SQLite's files too) is
	 * its owner's alone; LOCAL commands write the user's files with the
	 * user's umask */
	if (serve_fd >= 0 || spare_fd >= 0) {
		umask(077);
		return serve_fd >= 0 ? meshctl_serve(&ctx, serve_fd, dispatch)
				     : meshctl_serve_spare(&ctx, spare_fd, dispatch);
	}
	if (i >= argc) {
		usage(stderr);
		return MESHCTL_USAGE;
	}
	const struct command *cmd = NULL;
	for (const struct command *c = commands; c->name; c++)
		if (!strcmp(c->name, argv[i]))
			cmd = c;
	if (!cmd) {
		meshctl_fail(&ctx, argv[i], "unknown command (see meshctl --help)");
		meshctl_json_error(&ctx, argv[i], MESHCTL_USAGE);
		return MESHCTL_USAGE;
	}
	bool asks_help = argc - i == 2 && (!strcmp(argv[i + 1], "--help") || !strcmp(argv[i + 1], "-h"));
	if (cmd->where == MESHCTL_OWNER_ONLY && !asks_help && !meshctl_store_direct(ctx.store)) {
		meshctl_fail(&ctx, cmd->name, "works on the store directly: run it as root or as the store's owner");
		meshctl_json_error(&ctx, cmd->name, MESHCTL_DENIED);
		return MESHCTL_DENIED;
	}
	if (cmd->where == MESHCTL_SERVED && !asks_help && !meshctl_store_direct(ctx.store)) {
		/* the worker prints the command's documents, errors included; this
		 * process only its own (reaching the service) */
		int code = meshctl_client_run(&ctx, argc - i, argv + i,
					      !strcmp(cmd->name, "publish") || !strcmp(cmd->name, "validate"));
		if (first_error[0])
			meshctl_json_error(&ctx, cmd->name, code);
		return code;
	}
	if (cmd->where != MESHCTL_LOCAL || (!strcmp(cmd->name, "init") && argc - i == 1))
		umask(077);
	if (cmd->where != MESHCTL_LOCAL && !asks_help) {
		/* a store that is not there is the environment's fault (exit 4) */
		struct mesh_err err = {0};
		if (store_check(ctx.store, &err)) {
			meshctl_fail(&ctx, cmd->name, "%s%s", err.msg, store_given ? "" :
				     " (the default store: say --store DIR or set MESH_STORE)");
			meshctl_json_error(&ctx, cmd->name, MESHCTL_ERROR);
			return MESHCTL_ERROR;
		}
	}
	return dispatch(&ctx, argc - i, argv + i, NULL);
}
