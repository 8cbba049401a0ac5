/*
 * meshctl.c - the command line's main: global options, dispatch, and the
 * store commands (init, publish, validate, list, show, deprecate, retire,
 * reindex, search, status).  Other areas live in fs/meshctl_<area>.c.
 *
 * Everything that decides lives in the library; this file parses
 * arguments, calls it, prints, and picks the exit code.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog.h"
#include "governance.h"
#include "index.h"
#include "meshctl.h"
#include "meshctl_cmds.h"
#include "mesh_util.h"
#include "publish.h"
#include "schema.h"
#include "contract.h"
#include "state_dir.h"
#include "store.h"

void meshctl_fail(const struct meshctl_ctx *ctx, const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s %s: ", ctx && ctx->prog ? ctx->prog : "meshctl", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
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

static int cmd_init_store(const struct meshctl_ctx *ctx)
{
	struct mesh_err err = {0};
	int rc = store_init(ctx->store, gov_default_mesh_yaml(), &err);
	if (rc) {
		meshctl_fail(ctx, "init", "%s", err.msg);
		return meshctl_exit_for(rc);
	}
	printf("created meshfs store %s\n", ctx->store);
	return MESHCTL_OK;
}

static int cmd_init(const struct meshctl_ctx *ctx, int argc, char **argv)
{
	/* `init` alone creates a store; `init FILE ...` drafts a contract. */
	for (int i = 1; i < argc; i++)
		if (argv[i][0] != '-')
			return meshctl_cmd_draft(ctx, argc, argv);
	if (argc > 1) {
		if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
			printf("usage: meshctl [--store DIR] init\n"
			       "       meshctl init DATAFILE --domain D --product P [--version V] [--out DIR] [--full]\n");
			return MESHCTL_OK;
		}
		meshctl_fail(ctx, "init", "unexpected option %s", argv[1]);
		return MESHCTL_USAGE;
	}
	return cmd_init_store(ctx);
}

/* ---- publish / validate ---- */

static void print_report(const struct publish_report *r, bool install)
{
	for (size_t i = 0; i < r->n_checks; i++) {
		const struct publish_check *c = &r->checks[i];
		printf("%-6s %s", c->passed ? "ok" : c->warning ? "warn" : "FAIL", c->what);
		if (c->detail && *c->detail) {
			printf(":");
			const char *p = c->detail;
			bool multi = strchr(p, '\n') != NULL;
			if (multi) {
				printf("\n");
				while (*p) {
					size_t n = strcspn(p, "\n");
					printf("         %.*s\n", (int)n, p);
					p += n + (p[n] == '\n');
				}
			} else {
				printf(" %s\n", p);
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
		{NULL, 0, NULL, 0},
	};
	bool json = ctx->json;
	struct publish_options opts = {.install = install};
	reset_getopt();
	int c;
	while ((c = getopt_long(argc, argv, "hj", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'm':
			opts.unique_memory = strtoull(optarg, NULL, 10) << 20;
			break;
		case 'h':
			printf("usage: meshctl %s RELEASE_DIR [--json] [--unique-memory MIB]\n", cmd);
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
	int rc = publish_run(ctx->store, argv[optind], &opts, &report, &err);
	if (rc) {
		meshctl_fail(ctx, cmd, "%s", err.msg);
		publish_report_free(&report);
		return meshctl_exit_for(rc);
	}
	if (json)
		fputs(report.quality_json ? report.quality_json : "{}\n", stdout);
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

static void print_versions(const struct cat_node *p)
{
	const struct cat_node *latest = catalog_latest(p);
	for (uint32_t k = 0; k < p->n_children; k++) {
		const struct cat_node *v = p->children[k];
		if (v->kind != CAT_VERSION)
			continue;
		char when[40];
		mesh_time_rfc3339(&v->mtime, when, sizeof when);
		printf("  %-10s %-10s %s%s%s\n", v->name, lifecycle_name(v->state), when,
		       v == latest ? "  <- latest" : "", v->restricted ? "  (restricted)" : "");
	}
}

static int cmd_list(const struct meshctl_ctx *ctx, int argc, char **argv)
{
	if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
		printf("usage: meshctl list [DOMAIN[/PRODUCT]]\n");
		return argc == 2 && !strcmp(argv[1], "--help") ? MESHCTL_OK : MESHCTL_USAGE;
	}
	struct catalog *cat;
	int st = load_catalog(ctx, "list", &cat);
	if (st)
		return st;
	const struct cat_node *start = catalog_root(cat);
	if (argc == 2) {
		start = catalog_resolve(cat, argv[1]);
		if (!start) {
			meshctl_fail(ctx, "list", "%s: no such domain or product", argv[1]);
			catalog_unref(cat);
			return MESHCTL_FAILED;
		}
	}
	if (start->kind == CAT_PRODUCT) {
		printf("%s/%s\n", start->domain, start->name);
		print_versions(start);
	} else if (start->kind == CAT_ROOT || start->kind == CAT_DOMAIN) {
		const struct cat_node *const *domains = start->kind == CAT_ROOT ? start->children : &start;
		uint32_t nd = start->kind == CAT_ROOT ? start->n_children : 1;
		for (uint32_t i = 0; i < nd; i++)
			for (uint32_t j = 0; j < domains[i]->n_children; j++) {
				const struct cat_node *p = domains[i]->children[j];
				printf("%s/%s\n", p->domain, p->name);
				print_versions(p);
			}
	} else {
		printf("%s/%s %s\n", start->domain, start->product, start->version ? start->version : "");
	}
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
	int rc = meshfs_check_publisher(ctx->store, domain, cmd, &err);
	if (!rc)
		rc = store_set_lifecycle(ctx->store, domain, product, version, state, sunset, reason, &err);
	if (rc) {
		meshctl_fail(ctx, cmd, "%s", err.msg);
		return meshctl_exit_for(rc);
	}
	printf("%s/%s %s is now %s\n", domain, product, version, lifecycle_name(state));
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
	int st = load_release_contract(ctx, domain, product, argv[2], &a);
	if (!st)
		st = load_release_contract(ctx, domain, product, argv[3], &b);
	if (st) {
		contract_free(a);
		return st;
	}
	size_t breaking = 0, total = 0;
	printf("%s/%s %s -> %s\n", domain, product, argv[2], argv[3]);
	for (size_t i = 0; i < b->n_objects; i++) {
		const struct contract_object *nb = &b->objects[i], *na = NULL;
		for (size_t k = 0; k < a->n_objects; k++)
			if (!strcmp(a->objects[k].name, nb->name))
				na = &a->objects[k];
		if (!na) {
			printf("  schema object %s added\n", nb->name);
			total++;
			continue;
		}
		struct table_schema *sa = NULL, *sb = NULL;
		struct schema_change *ch = NULL;
		size_t n = 0;
		schema_from_contract_object(na, a, &sa);
		schema_from_contract_object(nb, b, &sb);
		schema_diff(sa, sb, &ch, &n);
		for (size_t k = 0; k < n; k++) {
			printf("  %s %s: %s\n", ch[k].breaking ? "BREAKING" : "        ", nb->name, ch[k].description);
			breaking += ch[k].breaking;
		}
		total += n;
		schema_changes_free(ch, n);
		schema_free(sa);
		schema_free(sb);
	}
	for (size_t k = 0; k < a->n_objects; k++) {
		bool kept = false;
		for (size_t i = 0; i < b->n_objects; i++)
			kept |= !strcmp(a->objects[k].name, b->objects[i].name);
		if (!kept) {
			printf("  BREAKING schema object %s removed\n", a->objects[k].name);
			breaking++;
			total++;
		}
	}
	if ((a->purpose == NULL) != (b->purpose == NULL) || (a->purpose && strcmp(a->purpose, b->purpose))) {
		printf("           description.purpose changed\n");
		total++;
	}
	if (a->n_owners != b->n_owners) {
		printf("           owners: %zu -> %zu\n", a->n_owners, b->n_owners);
		total++;
	}
	printf("%zu change(s), %zu breaking%s\n", total, breaking,
	       breaking ? " (a new major version is required)" : "");
	contract_free(a);
	contract_free(b);
	return MESHCTL_OK;
}

/* ---- reindex / search / status ---- */

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
	if (rc) {
		meshctl_fail(ctx, "reindex", "%s", err.msg);
		return meshctl_exit_for(rc);
	}
	printf("indexed %zu releases into %s", stats.releases, path);
	if (stats.unreadable)
		printf(" (%zu unreadable releases skipped)", stats.unreadable);
	printf("\n");
	return MESHCTL_OK;
}

static int cmd_search(const struct meshctl_ctx *ctx, int argc, char **argv)
{
	size_t limit = 0;
	int first = 1;
	if (argc >= 3 && !strcmp(argv[1], "--limit")) {
		char *end;
		unsigned long v = strtoul(argv[2], &end, 10);
		if (*end || !*argv[2]) {
			meshctl_fail(ctx, "search", "--limit %s: not a number", argv[2]);
			return MESHCTL_USAGE;
		}
		limit = v;
		first = 3;
	}
	if (argc <= first || argv[first][0] == '-') {
		printf("usage: meshctl search [--limit N] WORDS...   (full-text over names, descriptions, tags,\n"
		       "       owners, columns; one line per product, best first)\n");
		return argc >= 2 && !strcmp(argv[1], "--help") ? MESHCTL_OK : MESHCTL_USAGE;
	}
	struct strbuf q = STRBUF_INIT;
	for (int i = first; i < argc; i++) {
		/* each word quoted: plain words never trip FTS5 query syntax */
		if (i > first)
			strbuf_puts(&q, " ");
		strbuf_puts(&q, "\"");
		for (const char *p = argv[i]; *p; p++) {
			if (*p == '"')
				strbuf_puts(&q, "\"\"");
			else
				strbuf_add(&q, p, 1);
		}
		strbuf_puts(&q, "\"");
	}
	struct mesh_err err = {0};
	struct index_hit *hits = NULL;
	size_t n = 0;
	char path[PATH_MAX];
	bool behind = false;
	int rc = store_check(ctx->store, &err);
	if (!rc)
		rc = index_path_of(ctx, path, sizeof path, &err);
	if (!rc) {
		/* the index is a cache of the files: brought up to date first,
		 * or the answer says it may miss products */
		struct mesh_err e2 = {0};
		int r = index_refresh(ctx->store, path, NULL, &e2);
		if (r) {
			behind = true;
			fprintf(stderr, "%s search: warning: the index may be behind the store and cannot be "
				"refreshed here (%s): results may miss products\n", ctx->prog, e2.msg);
		}
		rc = index_search(path, q.buf, limit, &hits, &n, &err);
	}
	strbuf_release(&q);
	if (rc) {
		meshctl_fail(ctx, "search", "%s", err.msg);
		return meshctl_exit_for(rc);
	}
	for (size_t i = 0; i < n; i++)
		printf("%s/%s %s%s%s\n    %s\n", hits[i].domain, hits[i].product, hits[i].version,
		       strcmp(hits[i].status, "active") ? "  " : "", strcmp(hits[i].status, "active") ? hits[i].status : "",
		       hits[i].snippet);
	index_hits_free(hits, n);
	if (behind)
		return MESHCTL_ERROR;
	return n ? MESHCTL_OK : MESHCTL_FAILED;
}

static int cmd_status(const struct meshctl_ctx *ctx, int argc, char **argv)
{
	(void)argv;
	if (argc != 1) {
		printf("usage: meshctl status\n");
		return MESHCTL_USAGE;
	}
	struct catalog *cat;
	int st = load_catalog(ctx, "status", &cat);
	if (st)
		return st;
	const struct cat_node *root = catalog_root(cat);
	size_t products = 0, versions = 0, deprecated = 0;
	for (uint32_t d = 0; d < root->n_children; d++)
		for (uint32_t p = 0; p < root->children[d]->n_children; p++) {
			const struct cat_node *prod = root->children[d]->children[p];
			products++;
			for (uint32_t v = 0; v < prod->n_children; v++)
				if (prod->children[v]->kind == CAT_VERSION) {
					versions++;
					deprecated += prod->children[v]->state == LC_DEPRECATED;
				}
		}
	char gen[64] = "";
	store_read_generation(ctx->store, gen, sizeof gen);
	gen[strcspn(gen, " \n")] = '\0';
	printf("store        %s\n", ctx->store);
	printf("generation   %s\n", gen);
	printf("domains      %u\n", root->n_children);
	printf("products     %zu\n", products);
	printf("versions     %zu (%zu deprecated)\n", versions, deprecated);
	if (catalog_skipped(cat))
		printf("unreadable   %zu releases (manifest missing or damaged)\n", catalog_skipped(cat));
	catalog_unref(cat);
	return meshctl_usage_status(ctx, stdout);
}

/* ---- dispatch ---- */

struct command {
	const char *name;
	meshctl_cmd_fn fn;
	const char *summary;
};

static const struct command commands[] = {
	{"init", cmd_init, "create a store; or 'init DATAFILE --domain D --product P': draft a contract"},
	{"validate", cmd_validate, "check a release directory as publish would, install nothing"},
	{"publish", cmd_publish, "validate and install a release directory"},
	{"list", cmd_list, "list domains, products and versions"},
	{"diff", cmd_diff, "schema and contract changes between two versions, breaking ones marked"},
	{"deprecate", cmd_deprecate, "mark a version deprecated (still readable)"},
	{"retire", cmd_retire, "remove a version from the mount (files kept in the store)"},
	{"reindex", cmd_reindex, "rebuild the catalog index from the store's files"},
	{"search", cmd_search, "full-text search over products, descriptions and columns"},
	{"status", cmd_status, "store, catalog and usage recording status"},
	MESHCTL_AREA_COMMANDS
	{NULL, NULL, NULL},
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

int main(int argc, char **argv)
{
	struct meshctl_ctx ctx = {.prog = "meshctl"};
	ctx.store = getenv("MESH_STORE");
	if (!ctx.store || !*ctx.store)
		ctx.store = "/srv/mesh";
	identity_current(&ctx.caller);
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--store") && i + 1 < argc) {
			ctx.store = argv[++i];
		} else if (!strncmp(argv[i], "--store=", 8)) {
			ctx.store = argv[i] + 8;
		} else if (!strcmp(argv[i], "--state-dir") && i + 1 < argc) {
			ctx.state_dir = argv[++i];
		} else if (!strncmp(argv[i], "--state-dir=", 12)) {
			ctx.state_dir = argv[i] + 12;
		} else if (!strcmp(argv[i], "--json")) {
			ctx.json = true;
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
	if (i >= argc) {
		usage(stderr);
		return MESHCTL_USAGE;
	}
	for (const struct command *c = commands; c->name; c++)
		if (!strcmp(c->name, argv[i]))
			return c->fn(&ctx, argc - i, argv + i);
	fprintf(stderr, "meshctl: unknown command '%s' (see meshctl --help)\n", argv[i]);
	return MESHCTL_USAGE;
}
