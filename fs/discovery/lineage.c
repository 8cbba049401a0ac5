/*
 * lineage.c - the lineage graph over the whole mesh (contract in
 * include/lineage.h): building it from the store, resolving each declared
 * input to the newest version that satisfies its range, checks for publish,
 * and the tree, JSON and Graphviz renderings.
 *
 * Not here: SemVer ranges (semver_range.c), who may see a product
 * (visibility.c), consumers by usage (usage_report.c).
 */
#include "lineage.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "contract.h"
#include "descriptor.h"
#include "mesh_util.h"

struct lversion {
	char *version;
	enum lifecycle state;
};

struct lnode {
	char *domain, *product, *id;  /* id: "domain/product" */
	bool exists;                  /* a product of the mesh */
	bool restricted;
	struct lversion *versions;
	size_t n_versions;
	char *latest;                 /* the release its inputs come from */
	size_t *ups, n_ups;           /* edges where this node is the consumer */
	size_t *downs, n_downs;       /* edges where this node is the input */
};

struct ledge {
	size_t from, to;              /* input -> consumer */
	char *text;                   /* as declared */
	char *range;
	char *declared_in;
	char *resolved;               /* newest satisfying version, or NULL */
	enum lifecycle resolved_state;
};

struct bad_input {                    /* inputs that do not parse: checked, no edge */
	size_t node;
	char *text, *declared_in;
};

struct lineage {
	struct lnode *nodes;
	size_t n_nodes, cap_nodes;
	size_t *slots;                /* open addressing: node index + 1, 0 empty */
	size_t n_slots;
	struct ledge *edges;
	size_t n_edges;
	struct bad_input *bad;
	size_t n_bad;
};

/* ---- nodes ---- */

static uint64_t hash_text(const char *s)
{
	uint64_t h = 1469598103934665603ULL;   /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static void rehash(struct lineage *g)
{
	size_t n = g->n_slots ? g->n_slots * 2 : 64;
	free(g->slots);
	g->slots = xcalloc(n, sizeof *g->slots);
	g->n_slots = n;
	for (size_t i = 0; i < g->n_nodes; i++) {
		size_t s = hash_text(g->nodes[i].id) & (n - 1);
		while (g->slots[s])
			s = (s + 1) & (n - 1);
		g->slots[s] = i + 1;
	}
}

static long find_node(const struct lineage *g, const char *domain, const char *product)
{
	if (!g->n_slots)
		return -1;
	char id[2 * MESH_NAME_MAX + 2];
	snprintf(id, sizeof id, "%s/%s", domain, product);
	size_t s = hash_text(id) & (g->n_slots - 1);
	while (g->slots[s]) {
		if (!strcmp(g->nodes[g->slots[s] - 1].id, id))
			return (long)(g->slots[s] - 1);
		s = (s + 1) & (g->n_slots - 1);
	}
	return -1;
}

static size_t get_node(struct lineage *g, const char *domain, const char *product)
{
	long i = find_node(g, domain, product);
	if (i >= 0)
		return (size_t)i;
	if (g->n_nodes == g->cap_nodes) {
		g->cap_nodes = g->cap_nodes ? g->cap_nodes * 2 : 32;
		g->nodes = xrealloc(g->nodes, g->cap_nodes * sizeof *g->nodes);
	}
	struct lnode *n = &g->nodes[g->n_nodes++];
	memset(n, 0, sizeof *n);
	n->domain = xstrdup(domain);
	n->product = xstrdup(product);
	struct strbuf sb = STRBUF_INIT;
	strbuf_printf(&sb, "%s/%s", domain, product);
	n->id = strbuf_detach(&sb, NULL);
	if (g->n_nodes * 2 > g->n_slots)
		rehash(g);
	else {
		size_t s = hash_text(n->id) & (g->n_slots - 1);
		while (g->slots[s])
			s = (s + 1) & (g->n_slots - 1);
		g->slots[s] = g->n_nodes;
	}
	return g->n_nodes - 1;
}

struct lineage *lineage_new(void)
{
	return xcalloc(1, sizeof(struct lineage));
}

void lineage_add_version(struct lineage *g, const char *domain, const char *product, const char *version,
			 enum lifecycle state, bool restricted, bool latest)
{
	size_t at = get_node(g, domain, product);   /* may move g->nodes */
	struct lnode *n = &g->nodes[at];
	n->exists = true;
	n->restricted |= restricted;
	n->versions = xrealloc(n->versions, (n->n_versions + 1) * sizeof *n->versions);
	n->versions[n->n_versions++] = (struct lversion){xstrdup(version), state};
	if (latest) {
		free(n->latest);
		n->latest = xstrdup(version);
	}
}

static void push_index(size_t **list, size_t *n, size_t v)
{
	*list = xrealloc(*list, (*n + 1) * sizeof **list);
	(*list)[(*n)++] = v;
}

void lineage_add_input(struct lineage *g, const char *domain, const char *product, const char *input,
		       const char *declared_in)
{
	size_t to = get_node(g, domain, product);
	struct lineage_input in;
	if (lineage_input_parse(input, &in, NULL)) {
		g->bad = xrealloc(g->bad, (g->n_bad + 1) * sizeof *g->bad);
		g->bad[g->n_bad++] = (struct bad_input){to, xstrdup(input), xstrdup(declared_in ? declared_in : "")};
		return;
	}
	size_t from = get_node(g, in.domain, in.product);
	/* the same input declared twice (contract and descriptor): one edge */
	for (size_t i = 0; i < g->nodes[to].n_ups; i++) {
		const struct ledge *e = &g->edges[g->nodes[to].ups[i]];
		if (e->from == from && !strcmp(e->range, in.range))
			return;
	}
	g->edges = xrealloc(g->edges, (g->n_edges + 1) * sizeof *g->edges);
	g->edges[g->n_edges] = (struct ledge){
		.from = from, .to = to, .text = xstrdup(input), .range = xstrdup(in.range),
		.declared_in = xstrdup(declared_in ? declared_in : ""),
	};
	push_index(&g->nodes[to].ups, &g->nodes[to].n_ups, g->n_edges);
	push_index(&g->nodes[from].downs, &g->nodes[from].n_downs, g->n_edges);
	g->n_edges++;
}

/* The newest version of n satisfying `range`, preferring versions that are
 * not retired (a retired version is no longer in the mount). */
static const struct lversion *resolve(const struct lnode *n, const char *range)
{
	const struct lversion *best = NULL;
	for (int pass = 0; pass < 2 && !best; pass++)
		for (size_t i = 0; i < n->n_versions; i++) {
			const struct lversion *v = &n->versions[i];
			if ((pass == 0 && v->state == LC_RETIRED) || !lineage_range_match(range, v->version))
				continue;
			if (!best || semver_cmp_str(v->version, best->version) > 0)
				best = v;
		}
	return best;
}

void lineage_finish(struct lineage *g)
{
	for (size_t i = 0; i < g->n_edges; i++) {
		struct ledge *e = &g->edges[i];
		const struct lversion *v = resolve(&g->nodes[e->from], e->range);
		free(e->resolved);
		e->resolved = v ? xstrdup(v->version) : NULL;
		e->resolved_state = v ? v->state : LC_ACTIVE;
	}
}

void lineage_free(struct lineage *g)
{
	if (!g)
		return;
	for (size_t i = 0; i < g->n_nodes; i++) {
		struct lnode *n = &g->nodes[i];
		free(n->domain);
		free(n->product);
		free(n->id);
		for (size_t k = 0; k < n->n_versions; k++)
			free(n->versions[k].version);
		free(n->versions);
		free(n->latest);
		free(n->ups);
		free(n->downs);
	}
	for (size_t i = 0; i < g->n_edges; i++) {
		free(g->edges[i].text);
		free(g->edges[i].range);
		free(g->edges[i].declared_in);
		free(g->edges[i].resolved);
	}
	for (size_t i = 0; i < g->n_bad; i++) {
		free(g->bad[i].text);
		free(g->bad[i].declared_in);
	}
	free(g->bad);
	free(g->nodes);
	free(g->slots);
	free(g->edges);
	free(g);
}

/* ---- inputs ---- */

int lineage_input_parse(const char *text, struct lineage_input *out, struct mesh_err *err)
{
	memset(out, 0, sizeof *out);
	if (!text || !*text)
		return mesh_errf(err, -EINVAL, "input: empty (expected domain/product[@version])");
	const char *slash = strchr(text, '/');
	const char *at = strchr(text, '@');
	if (!slash || (at && at < slash))
		return mesh_errf(err, -EINVAL, "input \"%s\": expected domain/product[@version]", text);
	size_t dl = (size_t)(slash - text);
	size_t pl = at ? (size_t)(at - slash - 1) : strlen(slash + 1);
	if (dl > MESH_NAME_MAX || pl > MESH_NAME_MAX)
		return mesh_errf(err, -EINVAL, "input \"%s\": name longer than %d bytes", text, MESH_NAME_MAX);
	memcpy(out->domain, text, dl);
	memcpy(out->product, slash + 1, pl);
	if (!mesh_name_ok(out->domain) || !mesh_name_ok(out->product))
		return mesh_errf(err, -EINVAL, "input \"%s\": domain and product are names of [a-z0-9_-] "
				 "(expected domain/product[@version])", text);
	if (at) {
		if (strlen(at + 1) >= sizeof out->range)
			return mesh_errf(err, -EINVAL, "input \"%s\": version range too long", text);
		snprintf(out->range, sizeof out->range, "%s", at + 1);
		if (!out->range[0])
			return mesh_errf(err, -EINVAL, "input \"%s\": nothing after @ (a version or a range)", text);
		struct mesh_err e = {0};
		if (lineage_range_check(out->range, &e))
			return mesh_errf(err, -EINVAL, "input \"%s\": %s", text, e.msg);
	}
	return 0;
}

/* ---- loading from the store ---- */

int lineage_load(const char *store, const struct catalog *cat, struct lineage **out, struct mesh_err *err)
{
	(void)err;
	struct lineage *g = lineage_new();
	const struct cat_node *root = catalog_root(cat);
	int root_fd = open(store, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	for (uint32_t d = 0; d < root->n_children; d++)
		for (uint32_t p = 0; p < root->children[d]->n_children; p++) {
			const struct cat_node *prod = root->children[d]->children[p];
			if (prod->kind != CAT_PRODUCT)
				continue;
			const struct cat_node *latest = catalog_latest(prod);
			for (uint32_t v = 0; v < prod->n_children; v++) {
				const struct cat_node *ver = prod->children[v];
				if (ver->kind == CAT_VERSION)
					lineage_add_version(g, prod->domain, prod->name, ver->name, ver->state,
							    prod->restricted, ver == latest);
			}
			if (latest) {
				const struct cat_node *cf = catalog_child(latest, "contract.yaml");
				char *text = NULL;
				size_t len = 0;
				struct contract *c = NULL;
				if (cf && cf->backing && root_fd >= 0 &&
				    !mesh_read_file_at(root_fd, cf->backing, CONTRACT_MAX_BYTES, &text, &len, NULL) &&
				    !contract_parse(text, len, cf->backing, &c, NULL)) {
					char where[160];
					snprintf(where, sizeof where, "contract %s", latest->name);
					for (size_t i = 0; i < c->n_inputs; i++)
						lineage_add_input(g, prod->domain, prod->name, c->inputs[i], where);
				}
				free(text);
				contract_free(c);
			}
			struct descriptor *desc = NULL;
			if (root_fd >= 0 && !descriptor_load_stored(root_fd, prod->domain, prod->name, &desc, NULL))
				for (size_t i = 0; i < desc->n_inputs; i++)
					lineage_add_input(g, prod->domain, prod->name, desc->inputs[i], "product.yaml");
			descriptor_free(desc);
		}
	if (root_fd >= 0)
		close(root_fd);
	lineage_finish(g);
	*out = g;
	return 0;
}

/* ---- queries ---- */

static bool node_visible(const struct lnode *n, lineage_visible_fn visible, void *ctx)
{
	if (!n->exists)
		return false;
	if (!n->restricted)
		return true;
	return visible && visible(ctx, n->domain, n->product);
}

bool lineage_has(const struct lineage *g, const char *domain, const char *product,
		 lineage_visible_fn visible, void *ctx)
{
	long i = find_node(g, domain, product);
	return i >= 0 && node_visible(&g->nodes[i], visible, ctx);
}

int lineage_format_parse(const char *name, enum lineage_format *out)
{
	if (!strcmp(name, "tree"))
		*out = LINEAGE_TREE;
	else if (!strcmp(name, "json"))
		*out = LINEAGE_JSON;
	else if (!strcmp(name, "dot"))
		*out = LINEAGE_DOT;
	else
		return -EINVAL;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

size_t lineage_consumers(const struct lineage *g, const char *domain, const char *product,
			 lineage_visible_fn visible, void *ctx, char ***out)
{
	*out = NULL;
	long i = find_node(g, domain, product);
	if (i < 0)
		return 0;
	size_t n = 0;
	const struct lnode *node = &g->nodes[i];
	for (size_t k = 0; k < node->n_downs; k++) {
		const struct lnode *c = &g->nodes[g->edges[node->downs[k]].to];
		if (!node_visible(c, visible, ctx))
			continue;
		bool dup = false;
		for (size_t j = 0; j < n; j++)
			dup |= !strcmp((*out)[j], c->id);
		if (dup)
			continue;
		*out = xrealloc(*out, (n + 1) * sizeof **out);
		(*out)[n++] = xstrdup(c->id);
	}
	if (n)
		qsort(*out, n, sizeof **out, cmp_str);
	return n;
}

size_t lineage_inputs(const struct lineage *g, const char *domain, const char *product,
		      lineage_visible_fn visible, void *ctx, char ***out)
{
	*out = NULL;
	long i = find_node(g, domain, product);
	if (i < 0)
		return 0;
	const struct lnode *node = &g->nodes[i];
	*out = xcalloc(node->n_ups + 1, sizeof **out);
	for (size_t k = 0; k < node->n_ups; k++) {
		const struct ledge *e = &g->edges[node->ups[k]];
		const struct lnode *from = &g->nodes[e->from];
		struct strbuf sb = STRBUF_INIT;
		strbuf_printf(&sb, "%s@%s", from->id, e->range[0] ? e->range : "*");
		if (!node_visible(from, visible, ctx))
			strbuf_puts(&sb, ": not found");
		else if (!e->resolved)
			strbuf_puts(&sb, ": no version satisfies the range");
		else
			strbuf_printf(&sb, " = %s%s%s", e->resolved, e->resolved_state != LC_ACTIVE ? " " : "",
				      e->resolved_state != LC_ACTIVE ? lifecycle_name(e->resolved_state) : "");
		(*out)[k] = strbuf_detach(&sb, NULL);
	}
	return node->n_ups;
}

/* ---- rendering ---- */

struct walk {
	const struct lineage *g;
	lineage_visible_fn visible;
	void *ctx;
	struct strbuf out;
	unsigned char *on_path;       /* tree: nodes on the current path */
	unsigned char *expanded;      /* tree: nodes already shown with their subtree */
	unsigned char *in_set;        /* json/dot: nodes reached */
	unsigned char *edge_set;      /* json/dot: edges reached */
};

static const char *state_of_latest(const struct lnode *n)
{
	for (size_t i = 0; n->latest && i < n->n_versions; i++)
		if (!strcmp(n->versions[i].version, n->latest))
			return lifecycle_name(n->versions[i].state);
	return NULL;
}

/* "sales/orders @^1 -> 1.1.0 (deprecated)" for an edge seen from the
 * other end `n`. */
static void tree_line(struct walk *w, const struct ledge *e, const struct lnode *n, bool up, int depth)
{
	for (int i = 0; i < depth; i++)
		strbuf_puts(&w->out, "  ");
	strbuf_printf(&w->out, "%s %s", up ? "<-" : "->", n->id);
	bool vis = node_visible(n, w->visible, w->ctx);
	if (up) {
		strbuf_printf(&w->out, " @%s", e->range[0] ? e->range : "*");
		if (!vis)
			strbuf_puts(&w->out, ": not found (no such product, or not visible to you)");
		else if (!e->resolved)
			strbuf_puts(&w->out, ": no version satisfies the range");
		else
			strbuf_printf(&w->out, " = %s%s%s", e->resolved,
				      e->resolved_state != LC_ACTIVE ? " " : "",
				      e->resolved_state != LC_ACTIVE ? lifecycle_name(e->resolved_state) : "");
	} else {
		strbuf_printf(&w->out, " (declares @%s", e->range[0] ? e->range : "*");
		if (e->resolved)
			strbuf_printf(&w->out, " = %s", e->resolved);
		strbuf_puts(&w->out, ")");
	}
}

static void tree_walk(struct walk *w, size_t at, bool up, int depth)
{
	const struct lnode *n = &w->g->nodes[at];
	w->on_path[at] = 1;
	size_t count = up ? n->n_ups : n->n_downs;
	for (size_t k = 0; k < count; k++) {
		const struct ledge *e = &w->g->edges[up ? n->ups[k] : n->downs[k]];
		size_t next = up ? e->from : e->to;
		const struct lnode *m = &w->g->nodes[next];
		bool vis = node_visible(m, w->visible, w->ctx);
		if (!up && !vis)
			continue;               /* an invisible consumer is not listed */
		tree_line(w, e, m, up, depth);
		if (vis && w->on_path[next]) {
			strbuf_puts(&w->out, "  (cycle)\n");
		} else if (vis && w->expanded[next] && (up ? m->n_ups : m->n_downs)) {
			strbuf_puts(&w->out, "  (see above)\n");
		} else {
			strbuf_puts(&w->out, "\n");
			if (vis) {
				w->expanded[next] = 1;
				tree_walk(w, next, up, depth + 1);
			}
		}
	}
	w->on_path[at] = 0;
}

/* Mark every node and edge reachable in one direction (json, dot). */
static void collect(struct walk *w, size_t at, bool up)
{
	const struct lnode *n = &w->g->nodes[at];
	size_t count = up ? n->n_ups : n->n_downs;
	for (size_t k = 0; k < count; k++) {
		size_t ei = up ? n->ups[k] : n->downs[k];
		const struct ledge *e = &w->g->edges[ei];
		size_t next = up ? e->from : e->to;
		bool vis = node_visible(&w->g->nodes[next], w->visible, w->ctx);
		if (!up && !vis)
			continue;
		w->edge_set[ei] = 1;
		if (w->in_set[next])
			continue;
		w->in_set[next] = 1;
		if (vis)
			collect(w, next, up);
	}
}

static void dot_string(struct strbuf *sb, const char *s)
{
	strbuf_puts(sb, "\"");
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			strbuf_puts(sb, "\\");
		if ((unsigned char)*s >= 0x20)
			strbuf_add(sb, s, 1);
	}
	strbuf_puts(sb, "\"");
}

static void render_json(struct walk *w, size_t root)
{
	const struct lineage *g = w->g;
	json_t *doc = json_object();
	json_object_set_new(doc, "product", json_string(g->nodes[root].id));
	json_t *nodes = json_array(), *edges = json_array();
	for (size_t i = 0; i < g->n_nodes; i++) {
		if (!w->in_set[i])
			continue;
		const struct lnode *n = &g->nodes[i];
		bool vis = node_visible(n, w->visible, w->ctx);
		json_t *o = json_object();
		json_object_set_new(o, "id", json_string(n->id));
		json_object_set_new(o, "domain", json_string(n->domain));
		json_object_set_new(o, "product", json_string(n->product));
		json_object_set_new(o, "found", json_boolean(vis));
		if (vis) {
			const char *st = state_of_latest(n);
			json_object_set_new(o, "latest", n->latest ? json_string(n->latest) : json_null());
			json_object_set_new(o, "status", st ? json_string(st) : json_string("retired"));
		}
		json_array_append_new(nodes, o);
	}
	for (size_t i = 0; i < g->n_edges; i++) {
		if (!w->edge_set[i])
			continue;
		const struct ledge *e = &g->edges[i];
		bool vis = node_visible(&g->nodes[e->from], w->visible, w->ctx);
		json_t *o = json_object();
		json_object_set_new(o, "from", json_string(g->nodes[e->from].id));
		json_object_set_new(o, "to", json_string(g->nodes[e->to].id));
		json_object_set_new(o, "declared", json_string(e->text));
		json_object_set_new(o, "range", json_string(e->range[0] ? e->range : "*"));
		json_object_set_new(o, "declaredIn", json_string(e->declared_in));
		json_object_set_new(o, "resolved", vis && e->resolved ? json_string(e->resolved) : json_null());
		if (vis && e->resolved)
			json_object_set_new(o, "resolvedStatus", json_string(lifecycle_name(e->resolved_state)));
		json_array_append_new(edges, o);
	}
	json_object_set_new(doc, "nodes", nodes);
	json_object_set_new(doc, "edges", edges);
	char *text = mesh_json_text(doc);
	strbuf_puts(&w->out, text);
	free(text);
	json_decref(doc);
}

static void render_dot(struct walk *w, size_t root)
{
	const struct lineage *g = w->g;
	struct strbuf *sb = &w->out;
	strbuf_puts(sb, "digraph lineage {\n  rankdir=LR;\n"
		    "  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n"
		    "  edge [fontname=\"Helvetica\", fontsize=10];\n");
	for (size_t i = 0; i < g->n_nodes; i++) {
		if (!w->in_set[i])
			continue;
		const struct lnode *n = &g->nodes[i];
		bool vis = node_visible(n, w->visible, w->ctx);
		const char *st = vis ? state_of_latest(n) : NULL;
		struct strbuf label = STRBUF_INIT;
		strbuf_printf(&label, "%s", n->id);
		if (!vis)
			strbuf_puts(&label, "\n(not found)");
		else if (n->latest)
			strbuf_printf(&label, "\n%s%s%s", n->latest, st && strcmp(st, "active") ? " " : "",
				      st && strcmp(st, "active") ? st : "");
		strbuf_puts(sb, "  ");
		dot_string(sb, n->id);
		strbuf_puts(sb, " [label=");
		/* labels keep their newline as the \n escape */
		strbuf_puts(sb, "\"");
		for (const char *p = label.buf; *p; p++) {
			if (*p == '\n')
				strbuf_puts(sb, "\\n");
			else if (*p == '"' || *p == '\\')
				strbuf_printf(sb, "\\%c", *p);
			else
				strbuf_add(sb, p, 1);
		}
		strbuf_puts(sb, "\"");
		if (i == root)
			strbuf_puts(sb, ", style=\"rounded,bold\", penwidth=2");
		else if (!vis)
			strbuf_puts(sb, ", style=\"rounded,dashed\", color=gray50");
		else if (st && strcmp(st, "active"))
			strbuf_puts(sb, ", color=orange3");
		strbuf_puts(sb, "];\n");
		strbuf_release(&label);
	}
	for (size_t i = 0; i < g->n_edges; i++) {
		if (!w->edge_set[i])
			continue;
		const struct ledge *e = &g->edges[i];
		strbuf_puts(sb, "  ");
		dot_string(sb, g->nodes[e->from].id);
		strbuf_puts(sb, " -> ");
		dot_string(sb, g->nodes[e->to].id);
		strbuf_puts(sb, " [label=");
		dot_string(sb, e->range[0] ? e->range : "*");
		strbuf_puts(sb, "];\n");
	}
	strbuf_puts(sb, "}\n");
}

char *lineage_format(const struct lineage *g, const char *domain, const char *product,
		     enum lineage_dir dirs, enum lineage_format fmt, lineage_visible_fn visible, void *ctx)
{
	long r = find_node(g, domain, product);
	if (r < 0 || !node_visible(&g->nodes[r], visible, ctx))
		return NULL;
	size_t root = (size_t)r;
	struct walk w = {.g = g, .visible = visible, .ctx = ctx, .out = STRBUF_INIT};
	w.on_path = xcalloc(g->n_nodes + 1, 1);
	w.expanded = xcalloc(g->n_nodes + 1, 1);
	w.in_set = xcalloc(g->n_nodes + 1, 1);
	w.edge_set = xcalloc(g->n_edges + 1, 1);
	const struct lnode *n = &g->nodes[root];
	if (fmt == LINEAGE_TREE) {
		const char *st = state_of_latest(n);
		strbuf_printf(&w.out, "%s %s (%s)\n", n->id, n->latest ? n->latest : "-", st ? st : "retired");
		if (dirs & LINEAGE_UP) {
			strbuf_printf(&w.out, "upstream (declared inputs):%s\n", n->n_ups ? "" : " none");
			tree_walk(&w, root, true, 1);
		}
		if (dirs & LINEAGE_DOWN) {
			memset(w.expanded, 0, g->n_nodes + 1);
			size_t before = w.out.len;
			strbuf_puts(&w.out, "downstream (declared inputs):\n");
			size_t mark = w.out.len;
			tree_walk(&w, root, false, 1);
			if (w.out.len == mark) {
				w.out.len = before;
				w.out.buf[before] = '\0';
				strbuf_puts(&w.out, "downstream (declared inputs): none\n");
			}
		}
	} else {
		w.in_set[root] = 1;
		if (dirs & LINEAGE_UP)
			collect(&w, root, true);
		if (dirs & LINEAGE_DOWN)
			collect(&w, root, false);
		if (fmt == LINEAGE_JSON)
			render_json(&w, root);
		else
			render_dot(&w, root);
	}
	free(w.on_path);
	free(w.expanded);
	free(w.in_set);
	free(w.edge_set);
	if (!w.out.buf)
		strbuf_puts(&w.out, "");
	return strbuf_detach(&w.out, NULL);
}

/* ---- checks at publish ---- */

/* Is `target` reachable upstream from `at` (following inputs through
 * products the caller may see)?  On success path[] holds the nodes from
 * `at` to `target` and *n_path their number. */
static bool reaches(const struct lineage *g, size_t at, size_t target, unsigned char *seen,
		    lineage_visible_fn visible, void *ctx, size_t *path, size_t *n_path, size_t depth)
{
	path[depth] = at;
	if (at == target) {
		*n_path = depth + 1;
		return true;
	}
	if (seen[at] || !node_visible(&g->nodes[at], visible, ctx))
		return false;
	seen[at] = 1;
	const struct lnode *n = &g->nodes[at];
	for (size_t k = 0; k < n->n_ups; k++)
		if (reaches(g, g->edges[n->ups[k]].from, target, seen, visible, ctx, path, n_path, depth + 1))
			return true;
	return false;
}

size_t lineage_check(const struct lineage *g, const char *domain, const char *product,
		     char *const *inputs, size_t n_inputs, lineage_visible_fn visible, void *ctx,
		     char **problems)
{
	struct strbuf out = STRBUF_INIT;
	size_t count = 0;
	long self = find_node(g, domain, product);
	for (size_t i = 0; i < n_inputs; i++) {
		struct lineage_input in;
		struct mesh_err e = {0};
		if (lineage_input_parse(inputs[i], &in, &e)) {
			strbuf_printf(&out, "%s\n", e.msg);
			count++;
			continue;
		}
		if (!strcmp(in.domain, domain) && !strcmp(in.product, product)) {
			strbuf_printf(&out, "input %s: the product names itself (a cycle)\n", inputs[i]);
			count++;
			continue;
		}
		long t = find_node(g, in.domain, in.product);
		if (t < 0 || !node_visible(&g->nodes[t], visible, ctx)) {
			strbuf_printf(&out, "input %s: no product %s/%s in the mesh (or not visible to you)\n",
				      inputs[i], in.domain, in.product);
			count++;
			continue;
		}
		const struct lnode *n = &g->nodes[t];
		const struct lversion *v = resolve(n, in.range);
		if (!v) {
			strbuf_printf(&out, "input %s: no version of %s satisfies %s (versions:", inputs[i], n->id,
				      in.range);
			for (size_t k = 0; k < n->n_versions && k < 8; k++)
				strbuf_printf(&out, " %s", n->versions[k].version);
			strbuf_puts(&out, n->n_versions > 8 ? " ...)\n" : ")\n");
			count++;
			continue;
		}
		if (v->state != LC_ACTIVE) {
			strbuf_printf(&out, "input %s: resolves to %s %s, which is %s", inputs[i], n->id, v->version,
				      lifecycle_name(v->state));
			/* a newer active version outside the range is worth naming */
			const struct lversion *any = resolve(n, "");
			if (any && any->state == LC_ACTIVE && strcmp(any->version, v->version))
				strbuf_printf(&out, " (active: %s)", any->version);
			strbuf_puts(&out, "\n");
			count++;
		}
		if (self >= 0) {
			/* each node is entered once, so a path is at most n_nodes + 1 long */
			unsigned char *seen = xcalloc(g->n_nodes + 1, 1);
			size_t *path = xcalloc(g->n_nodes + 2, sizeof *path), n_path = 0;
			if (reaches(g, (size_t)t, (size_t)self, seen, visible, ctx, path, &n_path, 0)) {
				strbuf_printf(&out, "input %s: closes a cycle: %s/%s", inputs[i], domain, product);
				for (size_t k = 0; k < n_path; k++)
					strbuf_printf(&out, " <- %s", g->nodes[path[k]].id);
				strbuf_puts(&out, "\n");
				count++;
			}
			free(path);
			free(seen);
		}
	}
	if (count && out.len)
		out.buf[--out.len] = '\0';  /* no trailing newline */
	*problems = count ? strbuf_detach(&out, NULL) : NULL;
	strbuf_release(&out);
	return count;
}
