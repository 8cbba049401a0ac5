/*
 * mcp.c - the MCP server's protocol and tools (contract in include/mcp.h):
 * JSON-RPC 2.0 message checks, the lifecycle (initialize, ping), tools/list
 * and tools/call, resources/list and resources/read.  Each tool asks the
 * library module that knows the answer (search.c, product_info.c, card.c,
 * lineage.c, adoption.c) for the caller, or reads through the mount.
 *
 * Not here: stdin/stdout (meshctl mcp), access requests (a callback).
 */
#include "mcp.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "adoption.h"
#include "card.h"
#include "card_reader.h"
#include "catalog.h"
#include "descriptor.h"
#include "lineage.h"
#include "mesh_util.h"
#include "product_info.h"
#include "search.h"
#include "store.h"
#include "visibility.h"

#define SAMPLE_MAX_ROWS 1000
#define SAMPLE_MAX_BYTES (1u << 20)

struct mcp_server {
	struct mcp_options o;
	char *store, *mount;
	bool initialized;
};

struct mcp_server *mcp_server_new(const struct mcp_options *opts)
{
	struct mcp_server *s = xcalloc(1, sizeof *s);
	s->o = *opts;
	s->store = xstrdup(opts->store ? opts->store : "/srv/mesh");
	s->mount = xstrdup(opts->mount ? opts->mount : "/mesh");
	s->o.store = s->store;
	s->o.mount = s->mount;
	return s;
}

void mcp_server_free(struct mcp_server *s)
{
	if (!s)
		return;
	free(s->store);
	free(s->mount);
	free(s);
}

/* ---- JSON-RPC ---- */

enum { RPC_PARSE = -32700, RPC_INVALID = -32600, RPC_METHOD = -32601, RPC_PARAMS = -32602, RPC_INTERNAL = -32603 };

static char *dump(json_t *msg)
{
	char *text = json_dumps(msg, JSON_COMPACT);   /* one line: the stdio transport */
	json_decref(msg);
	return text;
}

static char *rpc_error(json_t *id, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static char *rpc_error(json_t *id, int code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return dump(json_pack("{s:s, s:O?, s:{s:i, s:s}}", "jsonrpc", "2.0", "id", id ? id : json_null(), "error",
			      "code", code, "message", msg));
}

static char *rpc_result(json_t *id, json_t *result)
{
	json_t *msg = json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", id, "result", result);
	return dump(msg);
}

/* ---- tool results ---- */

static json_t *text_item(const char *text)
{
	return json_pack("{s:s, s:s}", "type", "text", "text", text ? text : "");
}

static json_t *tool_ok(const char *text, json_t *structured)
{
	json_t *r = json_pack("{s:[o], s:b}", "content", text_item(text), "isError", 0);
	if (structured)
		json_object_set_new(r, "structuredContent", structured);
	return r;
}

static json_t *tool_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static json_t *tool_error(const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return json_pack("{s:[o], s:b}", "content", text_item(msg), "isError", 1);
}

/* ---- the caller's view of the mesh, per call (the mesh changes) ---- */

struct view {
	struct catalog *cat;
	struct visibility *vis;
};

static int view_open(struct mcp_server *s, struct view *v, char *why, size_t size)
{
	memset(v, 0, sizeof *v);
	struct mesh_err err = {0};
	int rc = store_check(s->store, &err);
	if (!rc)
		rc = catalog_scan(s->store, NULL, &v->cat, &err);
	if (!rc)
		rc = visibility_open(s->store, v->cat, &s->o.caller, &v->vis, &err);
	if (rc)
		snprintf(why, size, "%s", err.msg);
	return rc;
}

static void view_close(struct view *v)
{
	visibility_close(v->vis);
	catalog_unref(v->cat);
}

static const char *arg_str(json_t *args, const char *key)
{
	return json_string_value(json_object_get(args, key));
}

/* "domain/product" into parts; false when it is not one. */
static bool split_product(const char *ref, char *domain, char *product)
{
	const char *slash = ref ? strchr(ref, '/') : NULL;
	if (!slash || (size_t)(slash - ref) > MESH_NAME_MAX || strlen(slash + 1) > MESH_NAME_MAX)
		return false;
	memcpy(domain, ref, (size_t)(slash - ref));
	domain[slash - ref] = '\0';
	strcpy(product, slash + 1);
	return mesh_name_ok(domain) && mesh_name_ok(product);
}

static bool search_visible(void *ctx, const struct index_hit *hit)
{
	return visibility_marked(ctx, hit->domain, hit->product, hit->restricted != 0,
				 !strcmp(hit->status, "retired"));
}

/* ---- tools ---- */

static json_t *tool_search(struct mcp_server *s, json_t *args)
{
	const char *query = arg_str(args, "query");
	if (!query || !*query)
		return tool_error("search_products needs a query (words to look for)");
	json_int_t limit = json_integer_value(json_object_get(args, "limit"));
	if (limit <= 0 || limit > 200)
		limit = 20;
	char *copy = xstrdup(query), *words[64], *save = NULL;
	size_t nw = 0;
	for (char *w = strtok_r(copy, " \t", &save); w && nw < 64; w = strtok_r(NULL, " \t", &save))
		words[nw++] = w;
	char *fts = search_fts_query(words, nw);
	free(copy);
	struct index_query q = {.query = fts, .domain = arg_str(args, "domain"), .tag = arg_str(args, "tag"),
				.classification = arg_str(args, "classification"), .status = arg_str(args, "status")};
	/* no catalog scan per search: the index and the domains' files say
	 * what the caller may discover (visibility_open_marked) */
	struct visibility *vis = NULL;
	struct mesh_err err = {0};
	if (store_check(s->store, &err) || visibility_open_marked(s->store, &s->o.caller, &vis, &err)) {
		free(fts);
		return tool_error("the mesh cannot be read: %s", err.msg);
	}
	struct index_hit *hits = NULL;
	size_t n = 0;
	bool more = false;
	int rc = *fts ? search_run_limited(s->store, &q, (size_t)limit, search_visible, vis, &hits, &n, &more, &err)
		      : 0;
	free(fts);
	visibility_close(vis);
	if (rc)
		return tool_error("search failed: %s", err.msg);
	json_t *results = json_array();
	struct strbuf sb = STRBUF_INIT;
	if (more)
		strbuf_printf(&sb, "more than %zu products match \"%s\" (the best %zu shown)\n", n, query, n);
	else
		strbuf_printf(&sb, "%zu product(s) match \"%s\"\n", n, query);
	for (size_t i = 0; i < n && i < (size_t)limit; i++) {
		json_t *last = json_pack("{s:s, s:s, s:s, s:s}", "version", hits[i].version, "status", hits[i].status,
					 "purpose", hits[i].purpose, "snippet", hits[i].snippet);
		json_array_append_new(results, last);
		char ref[2 * MESH_NAME_MAX + 2], path[PATH_MAX];
		snprintf(ref, sizeof ref, "%s/%s", hits[i].domain, hits[i].product);
		snprintf(path, sizeof path, "%s/%s", s->mount, ref);
		json_object_set_new(last, "product", json_string(ref));
		json_object_set_new(last, "path", json_string(path));
		strbuf_printf(&sb, "- %s %s%s%s: %s (%s)\n", ref, hits[i].version, strcmp(hits[i].status, "active") ? " " : "",
			      strcmp(hits[i].status, "active") ? hits[i].status : "", *hits[i].purpose ? hits[i].purpose : "-",
			      path);
	}
	index_hits_free(hits, n);
	char *text = strbuf_detach(&sb, NULL);
	json_t *r = tool_ok(text, json_pack("{s:o}", "results", results));
	free(text);
	return r;
}

static char *store_text(struct mcp_server *s, const char *rel, size_t limit)
{
	int root = open(s->store, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char *text = NULL;
	size_t len = 0;
	if (root >= 0 && mesh_read_file_at(root, rel, limit, &text, &len, NULL))
		text = NULL;
	if (root >= 0)
		close(root);
	return text;
}

static int open_mount_file(struct mcp_server *s, const char *path)
{
	if (s->o.open_as_caller)
		return s->o.open_as_caller(s->o.open_ctx, path);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	return fd < 0 ? -errno : fd;
}

/* A sidecar of a release as the caller sees it through the mount (the
 * reader's own schema.json and quality.json: masked where they are masked). */
static char *mount_text(struct mcp_server *s, const struct cat_node *f, size_t limit)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%s/%s/%s/%s", s->mount, f->domain, f->product, f->version, f->name);
	int fd = open_mount_file(s, path);
	if (fd < 0)
		return NULL;
	struct strbuf sb = STRBUF_INIT;
	char buf[65536];
	ssize_t r;
	strbuf_puts(&sb, "");
	while (sb.len < limit && (r = read(fd, buf, sizeof buf)) > 0)
		strbuf_add(&sb, buf, (size_t)r);
	close(fd);
	return strbuf_detach(&sb, NULL);
}

/* The product (and version) the caller names, visible to them; an error
 * result otherwise. */
static json_t *resolve(struct mcp_server *s, json_t *args, struct view *v, char *domain, char *product,
		       const struct cat_node **version)
{
	const char *ref = arg_str(args, "product");
	if (!split_product(ref, domain, product))
		return tool_error("product: expected DOMAIN/PRODUCT (as search_products lists them), got \"%s\"",
				  ref ? ref : "");
	char why[1024];
	if (view_open(s, v, why, sizeof why))
		return tool_error("the mesh cannot be read: %s", why);
	if (!visibility_product(v->vis, domain, product)) {
		view_close(v);
		return tool_error("%s/%s: no such product", domain, product);
	}
	const struct cat_node *pn = catalog_child(catalog_child(catalog_root(v->cat), domain), product);
	const char *want = arg_str(args, "version");
	*version = want ? catalog_child(pn, want) : catalog_latest(pn);
	if (!*version || (*version)->kind != CAT_VERSION) {
		view_close(v);
		return tool_error("%s/%s has no version %s", domain, product, want ? want : "in the mount");
	}
	return NULL;
}

static json_t *tool_describe(struct mcp_server *s, json_t *args)
{
	char domain[MESH_NAME_MAX + 1], product[MESH_NAME_MAX + 1];
	struct view v;
	const struct cat_node *ver;
	json_t *bad = resolve(s, args, &v, domain, product, &ver);
	if (bad)
		return bad;
	struct product_info *p = NULL;
	struct mesh_err err = {0};
	if (product_info_load(s->store, v.cat, v.vis, NULL, domain, product, &p, &err)) {
		view_close(&v);
		return tool_error("%s", err.msg);
	}
	bool one_version = arg_str(args, "version") != NULL;
	char *card;
	if (one_version) {
		const struct cat_node *cf = catalog_child(ver, "contract.yaml");
		char *ctext = cf ? store_text(s, cf->backing, CONTRACT_MAX_BYTES) : NULL;
		struct contract *c = NULL;
		if (ctext)
			contract_parse(ctext, strlen(ctext), "contract.yaml", &c, NULL);
		const struct cat_node *qf = catalog_child(ver, "quality.json");
		char *qtext = qf ? mount_text(s, qf, 16u << 20) : NULL;
		card = card_version(p, ver->name, c, qtext, s->mount);
		free(ctext);
		free(qtext);
		contract_free(c);
	} else {
		card = card_product(p, s->mount);
	}
	/* the card as the mount serves it to this caller: masked columns
	 * with their functions, or no access and how to ask */
	struct policy_decision dec;
	card_reader_decide(visibility_policy(v.vis), &s->o.caller, domain, product, ver, time(NULL), &dec);
	size_t card_len;
	char *mine = card_render(card, strlen(card), domain, product, ver, &dec, &card_len);
	free(card);
	card = mine;
	char rel[PATH_MAX];
	snprintf(rel, sizeof rel, "domains/%s/%s/" DESCRIPTOR_SERVED, domain, product);
	char *desc = store_text(s, rel, DESCRIPTOR_MAX_BYTES);
	const struct cat_node *sf = catalog_child(ver, "schema.json");
	char *schema = sf ? mount_text(s, sf, 4u << 20) : NULL;
	char *info = product_info_json(p);
	struct strbuf sd = STRBUF_INIT, ss = STRBUF_INIT;
	strbuf_printf(&sd, "product.yaml (%s/%s/%s/product.yaml):\n%s", s->mount, domain, product,
		      desc ? desc : "(none)\n");
	strbuf_printf(&ss, "schema.json of %s (%s/%s/%s/%s/schema.json):\n%s", ver->name, s->mount, domain, product,
		      ver->name, schema ? schema : "(none)\n");
	json_t *r = json_pack("{s:[o,o,o], s:b}", "content", text_item(card), text_item(sd.buf), text_item(ss.buf),
			      "isError", 0);
	json_t *structured = json_loads(info, 0, NULL);
	if (structured) {
		json_object_set_new(structured, "access", card_reader_json(domain, product, ver, &dec));
		json_object_set_new(r, "structuredContent", structured);
	}
	policy_decision_clear(&dec);
	strbuf_release(&sd);
	strbuf_release(&ss);
	free(info);
	free(card);
	free(desc);
	free(schema);
	product_info_free(p);
	view_close(&v);
	return r;
}

static json_t *tool_sample(struct mcp_server *s, json_t *args)
{
	char domain[MESH_NAME_MAX + 1], product[MESH_NAME_MAX + 1];
	struct view v;
	const struct cat_node *ver;
	json_t *bad = resolve(s, args, &v, domain, product, &ver);
	if (bad)
		return bad;
	const char *want = arg_str(args, "file");
	const struct cat_node *file = NULL;
	for (uint32_t i = 0; i < ver->n_children && !file; i++) {
		const struct cat_node *f = ver->children[i];
		if (f->kind == CAT_FILE && (want ? !strcmp(f->name, want) : f->role == ROLE_DATA))
			file = f;
	}
	if (!file) {
		view_close(&v);
		return tool_error("%s/%s %s has no %s%s", domain, product, ver->name, want ? "file " : "data file",
				  want ? want : "");
	}
	json_int_t rows = json_integer_value(json_object_get(args, "rows"));
	if (rows <= 0)
		rows = 10;
	if (rows > SAMPLE_MAX_ROWS)
		rows = SAMPLE_MAX_ROWS;
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%s/%s/%s/%s", s->mount, domain, product, ver->name, file->name);
	bool text_format = file->format == FMT_CSV || file->format == FMT_JSONL || file->format == FMT_JSON ||
			   file->format == FMT_TEXT || file->format == FMT_YAML;
	char vname[256], fname[256];   /* the nodes go with the view */
	snprintf(vname, sizeof vname, "%s", ver->name);
	snprintf(fname, sizeof fname, "%s", file->name);
	view_close(&v);
	if (!text_format)
		return tool_error("%s is not a text format (CSV, JSON Lines): read it with a tool that knows it, "
				  "e.g. DuckDB: SELECT * FROM '%s' LIMIT %lld", path, path, (long long)rows);
	/* through the mount: the daemon decides, masks and records, as for any reader */
	int fd = open_mount_file(s, path);
	if (fd < 0) {
		int e = -fd;
		if (e == EACCES || e == EPERM)
			return tool_error("access denied: meshfs does not let %s read %s/%s %s (%s). Ask the owners "
					  "with the request_access tool (a reason is required).", s->o.caller.user, domain,
					  product, vname, fname);
		return tool_error("%s: %s (is the mesh mounted at %s? meshctl mcp --mount DIR)", path, strerror(e),
				  s->mount);
	}
	struct strbuf sb = STRBUF_INIT;
	char buf[65536];
	long lines = 0;
	bool done = false;
	while (!done && sb.len < SAMPLE_MAX_BYTES) {
		ssize_t r = read(fd, buf, sizeof buf);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		for (ssize_t i = 0; i < r; i++)
			if (buf[i] == '\n' && ++lines > rows) {   /* the header and `rows` rows */
				strbuf_add(&sb, buf, (size_t)i + 1);
				done = true;
				break;
			}
		if (!done)
			strbuf_add(&sb, buf, (size_t)r);
	}
	int read_errno = errno;
	close(fd);
	if (!sb.buf && read_errno == EACCES) {
		strbuf_release(&sb);
		return tool_error("access denied while reading %s", path);
	}
	struct strbuf head = STRBUF_INIT;
	strbuf_printf(&head, "First %lld row(s) of %s as %s may read it (masked columns stay masked; this read "
		      "is recorded as usage):\n", (long long)rows, path, s->o.caller.user);
	strbuf_puts(&head, sb.buf ? sb.buf : "");
	strbuf_release(&sb);
	json_t *r = tool_ok(head.buf, json_pack("{s:s, s:s, s:I}", "path", path, "text", head.buf, "rows", (json_int_t)rows));
	strbuf_release(&head);
	return r;
}

static json_t *tool_request(struct mcp_server *s, json_t *args)
{
	const char *ref = arg_str(args, "product"), *reason = arg_str(args, "reason");
	char domain[MESH_NAME_MAX + 1], product[MESH_NAME_MAX + 1], base[2 * MESH_NAME_MAX + 2];
	snprintf(base, sizeof base, "%.*s", ref ? (int)strcspn(ref, "@") : 0, ref ? ref : "");
	if (!split_product(base, domain, product))
		return tool_error("product: expected DOMAIN/PRODUCT[@VERSION]");
	if (!reason || !*reason)
		return tool_error("request_access needs a reason: the owners decide on it");
	struct view v;
	char why[1024];
	if (view_open(s, &v, why, sizeof why))
		return tool_error("the mesh cannot be read: %s", why);
	bool seen = visibility_product(v.vis, domain, product);
	view_close(&v);
	if (!seen)
		return tool_error("%s/%s: no such product", domain, product);
	if (!s->o.request_access)
		return tool_error("access requests are not available here");
	char *text = NULL;
	int rc = s->o.request_access(s->o.request_ctx, ref, reason, &text);
	json_t *r = rc ? tool_error("request not filed: %s", text ? text : strerror(-rc)) : tool_ok(text, NULL);
	free(text);
	return r;
}

static json_t *tool_lineage(struct mcp_server *s, json_t *args)
{
	char domain[MESH_NAME_MAX + 1], product[MESH_NAME_MAX + 1];
	if (!split_product(arg_str(args, "product"), domain, product))
		return tool_error("product: expected DOMAIN/PRODUCT");
	const char *dir = arg_str(args, "direction"), *format = arg_str(args, "format");
	int dirs = !dir || !strcmp(dir, "both") ? LINEAGE_BOTH : !strcmp(dir, "upstream") ? LINEAGE_UP
		 : !strcmp(dir, "downstream") ? LINEAGE_DOWN : 0;
	enum lineage_format fmt = LINEAGE_JSON;
	if (!dirs || (format && lineage_format_parse(format, &fmt)))
		return tool_error("direction is upstream, downstream or both; format is json, tree or dot");
	struct view v;
	char why[1024];
	if (view_open(s, &v, why, sizeof why))
		return tool_error("the mesh cannot be read: %s", why);
	struct lineage *g = NULL;
	struct mesh_err err = {0};
	char *text = NULL;
	if (!lineage_load(s->store, v.cat, &g, &err))
		text = lineage_format(g, domain, product, (enum lineage_dir)dirs, fmt, visibility_lineage_cb, v.vis);
	lineage_free(g);
	view_close(&v);
	if (!text)
		return tool_error("%s/%s: no such product", domain, product);
	json_t *structured = fmt == LINEAGE_JSON ? json_loads(text, 0, NULL) : NULL;
	json_t *r = tool_ok(text, structured);
	free(text);
	return r;
}

static json_t *tool_usage(struct mcp_server *s, json_t *args)
{
	char domain[MESH_NAME_MAX + 1], product[MESH_NAME_MAX + 1];
	if (!split_product(arg_str(args, "product"), domain, product))
		return tool_error("product: expected DOMAIN/PRODUCT");
	json_int_t days = json_integer_value(json_object_get(args, "days"));
	if (days <= 0 || days > 3650)
		days = 30;
	struct view v;
	char why[1024];
	if (view_open(s, &v, why, sizeof why))
		return tool_error("the mesh cannot be read: %s", why);
	bool seen = visibility_product(v.vis, domain, product), owner = visibility_is_owner(v.vis, domain);
	view_close(&v);
	if (!seen)
		return tool_error("%s/%s: no such product", domain, product);
	if (!owner)
		return tool_error("who reads %s/%s is for the owners of domain %s and governance; %s is neither",
				  domain, product, domain, s->o.caller.user);
	struct adoption_consumer *c = NULL;
	size_t n = 0;
	struct mesh_err err = {0};
	if (adoption_consumers(s->store, domain, product, (unsigned)days, &c, &n, &err))
		return tool_error("usage not readable: %s", err.msg);
	json_t *readers = json_array();
	struct strbuf sb = STRBUF_INIT;
	strbuf_printf(&sb, "%zu reader(s) of %s/%s in the last %lld days:\n", n, domain, product, (long long)days);
	for (size_t i = 0; i < n; i++) {
		json_array_append_new(readers, json_pack("{s:s, s:s, s:I, s:s}", "user", c[i].user, "programs",
							 c[i].programs, "reads", (json_int_t)c[i].reads, "lastRead",
							 c[i].last_read));
		strbuf_printf(&sb, "- %s: %llu reads, last %s (%s)\n", c[i].user, (unsigned long long)c[i].reads,
			      c[i].last_read, c[i].programs);
	}
	adoption_consumers_free(c, n);
	json_t *r = tool_ok(sb.buf, json_pack("{s:I, s:o}", "days", days, "readers", readers));
	strbuf_release(&sb);
	return r;
}

/* ---- the tool table ---- */

struct tool {
	const char *name, *title, *description, *schema;
	json_t *(*run)(struct mcp_server *s, json_t *args);
};

#define PRODUCT_ARG "\"product\": {\"type\": \"string\", \"description\": \"DOMAIN/PRODUCT, e.g. sales/orders\"}"

static const struct tool tools[] = {
	{"search_products", "Search data products",
	 "Full-text search over the data mesh: product names, descriptions, tags, owners, column names and "
	 "descriptions. Returns the products you may see, best match first.",
	 "{\"type\": \"object\", \"properties\": {\"query\": {\"type\": \"string\", \"description\": \"words; "
	 "a trailing * is a prefix\"}, \"domain\": {\"type\": \"string\"}, \"tag\": {\"type\": \"string\"}, "
	 "\"classification\": {\"type\": \"string\"}, \"status\": {\"type\": \"string\", \"enum\": [\"active\", "
	 "\"deprecated\", \"retired\"]}, \"limit\": {\"type\": \"integer\", \"minimum\": 1, \"maximum\": 200}}, "
	 "\"required\": [\"query\"]}", tool_search},
	{"describe_product", "Describe a data product",
	 "The product's card (purpose, owners, SLA, status, versions, columns with classifications, quality, "
	 "lineage, how to read it), its ODPS descriptor and the schema of a version (latest by default).",
	 "{\"type\": \"object\", \"properties\": {" PRODUCT_ARG ", \"version\": {\"type\": \"string\"}}, "
	 "\"required\": [\"product\"]}", tool_describe},
	{"read_sample", "Read the first rows",
	 "The first rows of a data file of a version (latest by default), read through the meshfs mount as you: "
	 "classified columns you are not cleared for are masked, files you may not read are denied, and the "
	 "read is recorded as usage.",
	 "{\"type\": \"object\", \"properties\": {" PRODUCT_ARG ", \"version\": {\"type\": \"string\"}, "
	 "\"file\": {\"type\": \"string\"}, \"rows\": {\"type\": \"integer\", \"minimum\": 1, \"maximum\": 1000}}, "
	 "\"required\": [\"product\"]}", tool_sample},
	{"request_access", "Request access",
	 "Ask a product's owners for read access, with the reason they decide on.",
	 "{\"type\": \"object\", \"properties\": {\"product\": {\"type\": \"string\", \"description\": "
	 "\"DOMAIN/PRODUCT or DOMAIN/PRODUCT@VERSION\"}, \"reason\": {\"type\": \"string\"}}, "
	 "\"required\": [\"product\", \"reason\"]}", tool_request},
	{"lineage", "Lineage of a product",
	 "What a product is built from (upstream) and what is built from it (downstream), from declared inputs.",
	 "{\"type\": \"object\", \"properties\": {" PRODUCT_ARG ", \"direction\": {\"type\": \"string\", \"enum\": "
	 "[\"upstream\", \"downstream\", \"both\"]}, \"format\": {\"type\": \"string\", \"enum\": [\"json\", "
	 "\"tree\", \"dot\"]}}, \"required\": [\"product\"]}", tool_lineage},
	{"product_usage", "Who reads a product (owners)",
	 "Readers of a product over the last days, with programs and read counts. For the domain's owners and "
	 "governance only.",
	 "{\"type\": \"object\", \"properties\": {" PRODUCT_ARG ", \"days\": {\"type\": \"integer\", \"minimum\": 1}}, "
	 "\"required\": [\"product\"]}", tool_usage},
};

static json_t *tools_list(void)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < sizeof tools / sizeof *tools; i++) {
		json_t *schema = json_loads(tools[i].schema, 0, NULL);
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:o}", "name", tools[i].name, "title",
						     tools[i].title, "description", tools[i].description, "inputSchema",
						     schema ? schema : json_object()));
	}
	return json_pack("{s:o}", "tools", arr);
}

/* ---- resources: product cards ---- */

static json_t *resources_list(struct mcp_server *s, char *why, size_t size)
{
	struct view v;
	if (view_open(s, &v, why, size))
		return NULL;
	json_t *arr = json_array();
	const struct cat_node *root = catalog_root(v.cat);
	for (uint32_t d = 0; d < root->n_children; d++)
		for (uint32_t p = 0; p < root->children[d]->n_children; p++) {
			const struct cat_node *pn = root->children[d]->children[p];
			if (!visibility_node(v.vis, pn))
				continue;
			char uri[2 * MESH_NAME_MAX + 16], name[2 * MESH_NAME_MAX + 2];
			snprintf(uri, sizeof uri, "mesh://%s/%s", pn->domain, pn->name);
			snprintf(name, sizeof name, "%s/%s", pn->domain, pn->name);
			json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s}", "uri", uri, "name", name,
							     "description", "Product card (README.md)", "mimeType",
							     "text/markdown"));
		}
	view_close(&v);
	return json_pack("{s:o}", "resources", arr);
}

static char *resource_read(struct mcp_server *s, json_t *id, json_t *params)
{
	const char *uri = arg_str(params, "uri");
	char domain[MESH_NAME_MAX + 1], product[MESH_NAME_MAX + 1];
	if (!uri || strncmp(uri, "mesh://", 7) || !split_product(uri + 7, domain, product))
		return rpc_error(id, RPC_PARAMS, "uri: expected mesh://DOMAIN/PRODUCT");
	struct view v;
	char why[1024];
	if (view_open(s, &v, why, sizeof why))
		return rpc_error(id, RPC_INTERNAL, "the mesh cannot be read: %s", why);
	struct product_info *p = NULL;
	struct mesh_err err = {0};
	int rc = product_info_load(s->store, v.cat, v.vis, NULL, domain, product, &p, &err);
	if (rc) {   /* -32002: resource not found */
		view_close(&v);
		return rpc_error(id, -32002, "resource not found: %s", uri);
	}
	char *tmpl = card_product(p, s->mount);
	product_info_free(p);
	const struct cat_node *latest = catalog_latest(catalog_child(catalog_child(catalog_root(v.cat), domain), product));
	struct policy_decision dec;
	card_reader_decide(visibility_policy(v.vis), &s->o.caller, domain, product, latest, time(NULL), &dec);
	size_t card_len;
	char *card = card_render(tmpl, strlen(tmpl), domain, product, latest, &dec, &card_len);
	policy_decision_clear(&dec);
	view_close(&v);
	free(tmpl);
	json_t *res = json_pack("{s:[{s:s, s:s, s:s}]}", "contents", "uri", uri, "mimeType", "text/markdown", "text", card);
	free(card);
	return rpc_result(id, res);
}

/* ---- dispatch ---- */

static const char *const versions[] = {MCP_PROTOCOL_VERSION, "2025-06-18", "2025-03-26", "2024-11-05"};

static char *initialize(struct mcp_server *s, json_t *id, json_t *params)
{
	const char *asked = arg_str(params, "protocolVersion");
	const char *version = MCP_PROTOCOL_VERSION;
	for (size_t i = 0; asked && i < sizeof versions / sizeof *versions; i++)
		if (!strcmp(asked, versions[i]))
			version = versions[i];
	s->initialized = true;
	json_t *r = json_pack("{s:s, s:{s:{s:b}, s:{s:b, s:b}}, s:{s:s, s:s, s:s}, s:s}",
			      "protocolVersion", version,
			      "capabilities", "tools", "listChanged", 0, "resources", "listChanged", 0, "subscribe", 0,
			      "serverInfo", "name", "meshfs", "title", "meshfs data mesh", "version", MESHFS_VERSION,
			      "instructions",
			      "Data products of a data mesh, as the user running this server may see them. Find "
			      "products with search_products, understand one with describe_product, look at data with "
			      "read_sample (masked where this user is masked). Files are also readable at their paths "
			      "under the mount with any tool.");
	json_object_set_new(json_object_get(r, "serverInfo"), "user", json_string(s->o.caller.user));
	return rpc_result(id, r);
}

char *mcp_handle(struct mcp_server *s, const char *message, size_t len)
{
	if (len > MCP_MAX_MESSAGE)
		return rpc_error(NULL, RPC_INVALID, "message larger than %u bytes", MCP_MAX_MESSAGE);
	json_error_t jerr;
	json_t *msg = json_loadb(message, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!msg)
		return rpc_error(NULL, RPC_PARSE, "parse error: %s (column %d)", jerr.text, jerr.column);
	char *out = NULL;
	json_t *id = json_object_get(msg, "id");
	const char *method = json_string_value(json_object_get(msg, "method"));
	if (!json_is_object(msg)) {
		out = rpc_error(NULL, RPC_INVALID, "expected a JSON-RPC 2.0 message (an object; batches are not part "
				"of MCP since 2025-06-18)");
		goto done;
	}
	if (id && !json_is_string(id) && !json_is_integer(id)) {
		out = rpc_error(NULL, RPC_INVALID, "id: a string or an integer");
		goto done;
	}
	if (!method) {
		/* a response to us (we send no requests) is ignored; anything else is not JSON-RPC */
		if (!id || (!json_object_get(msg, "result") && !json_object_get(msg, "error")))
			out = rpc_error(id, RPC_INVALID, "expected a request: jsonrpc, id, method[, params]");
		goto done;
	}
	const char *jsonrpc = json_string_value(json_object_get(msg, "jsonrpc"));
	json_t *params = json_object_get(msg, "params");
	if (!jsonrpc || strcmp(jsonrpc, "2.0") || (params && !json_is_object(params))) {
		if (id)
			out = rpc_error(id, RPC_INVALID, "expected jsonrpc \"2.0\" and params as an object");
		goto done;
	}
	if (!id)          /* notifications: initialized, cancelled, ...: nothing to answer */
		goto done;
	if (!strcmp(method, "initialize"))
		out = initialize(s, id, params);
	else if (!strcmp(method, "ping"))
		out = rpc_result(id, json_object());
	else if (!strcmp(method, "tools/list"))
		out = rpc_result(id, tools_list());
	else if (!strcmp(method, "tools/call")) {
		const char *name = arg_str(params, "name");
		json_t *args = json_object_get(params, "arguments");
		const struct tool *t = NULL;
		for (size_t i = 0; name && i < sizeof tools / sizeof *tools; i++)
			if (!strcmp(tools[i].name, name))
				t = &tools[i];
		if (!t)
			out = rpc_error(id, RPC_PARAMS, "unknown tool: %s", name ? name : "(no name)");
		else if (args && !json_is_object(args))
			out = rpc_error(id, RPC_PARAMS, "arguments: expected an object");
		else {
			json_t *empty = json_object();
			out = rpc_result(id, t->run(s, args ? args : empty));
			json_decref(empty);
		}
	} else if (!strcmp(method, "resources/list")) {
		char why[1024];
		json_t *r = resources_list(s, why, sizeof why);
		out = r ? rpc_result(id, r) : rpc_error(id, RPC_INTERNAL, "the mesh cannot be read: %s", why);
	} else if (!strcmp(method, "resources/read"))
		out = resource_read(s, id, params);
	else if (!strcmp(method, "resources/templates/list"))
		out = rpc_result(id, json_pack("{s:[]}", "resourceTemplates"));
	else
		out = rpc_error(id, RPC_METHOD, "method not found: %s", method);
done:
	json_decref(msg);
	return out;
}
