/*
 * catalog_html.c - the static, offline catalog site (contract in
 * include/catalog_html.h): index.html with an embedded JSON index and a
 * small search script, products/<domain>.<product>.html per product, the
 * lineage pictures by Graphviz's dot (run without a shell).
 *
 * Not here: what is known about a product (product_info.c), lineage
 * (lineage.c), who may see what (visibility.c).
 */
#include "catalog_html.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "adoption.h"
#include "catalog.h"
#include "lineage.h"
#include "mesh_util.h"
#include "product_info.h"
#include "visibility.h"

#define SPARK_DAYS 30

static void esc(struct strbuf *sb, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '<': strbuf_puts(sb, "&lt;"); break;
		case '>': strbuf_puts(sb, "&gt;"); break;
		case '&': strbuf_puts(sb, "&amp;"); break;
		case '"': strbuf_puts(sb, "&quot;"); break;
		case '\'': strbuf_puts(sb, "&#39;"); break;
		default: strbuf_add(sb, s, 1);
		}
	}
}

static const char style[] =
	"<style>body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:62em;color:#222;padding:0 1em}"
	"h1{font-size:1.6em;margin-bottom:.2em}a{color:#0a58ca;text-decoration:none}a:hover{text-decoration:underline}"
	"table{border-collapse:collapse;margin:.5em 0 1.2em}td,th{border:1px solid #ddd;padding:.3em .6em;"
	"text-align:left;vertical-align:top}th{background:#f4f6f8}.muted{color:#666}.tag{background:#eef2ff;"
	"border-radius:3px;padding:0 .4em;margin-right:.3em;font-size:.9em}.deprecated{color:#b45309}"
	"#q{font-size:1.1em;padding:.4em .6em;width:100%;box-sizing:border-box;margin:.5em 0 1em}"
	"li{margin:.4em 0}.lineage svg{max-width:100%;height:auto}.note{background:#fff7e6;padding:.6em;"
	"border-left:3px solid #f0a000}</style>";

static void page_head(struct strbuf *sb, const char *title)
{
	strbuf_puts(sb, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
		    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
		    "<link rel=\"icon\" href=\"data:,\"><title>");
	esc(sb, title);
	strbuf_puts(sb, "</title>");
	strbuf_puts(sb, style);
	strbuf_puts(sb, "</head><body>\n");
}

/* dot -Tsvg on `dot_text`, without a shell; NULL when dot cannot run. */
static char *run_dot(const char *dot_text)
{
	int in[2], out[2];
	if (pipe(in) || pipe(out))
		return NULL;
	pid_t pid = fork();
	if (pid < 0)
		return NULL;
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		int null = open("/dev/null", O_WRONLY);
		if (null >= 0)
			dup2(null, 2);
		close(in[1]);
		close(out[0]);
		execlp("dot", "dot", "-Tsvg", (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	/* DOT text is small (one product's neighbourhood): write it all, then read */
	mesh_write_all(in[1], dot_text, strlen(dot_text));
	close(in[1]);
	struct strbuf sb = STRBUF_INIT;
	char buf[8192];
	ssize_t r;
	while ((r = read(out[0], buf, sizeof buf)) > 0 || (r < 0 && errno == EINTR))
		if (r > 0)
			strbuf_add(&sb, buf, (size_t)r);
	close(out[0]);
	int status = 0;
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status) || !sb.buf || !strstr(sb.buf, "<svg")) {
		strbuf_release(&sb);
		return NULL;
	}
	char *svg = xstrdup(strstr(sb.buf, "<svg"));
	strbuf_release(&sb);
	return svg;
}

/* Every graph of `dots` (n DOT texts, NULL entries skipped) drawn by ONE
 * dot process (a dot per page costs its start, ~20 ms, times 10,000
 * products): the graphs go through a temporary file, the SVG documents
 * come back in order.  svgs[i] malloc'ed or NULL; false when dot cannot
 * run or its output does not split into one document per graph (the
 * caller then draws each alone). */
static bool run_dot_batch(char **dots, size_t n, char **svgs)
{
	memset(svgs, 0, n * sizeof *svgs);
	size_t graphs = 0;
	char path[] = "/tmp/meshfs-catalog-dot.XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		return false;
	unlink(path);
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++)
		if (dots[i]) {
			rc = mesh_write_all(fd, dots[i], strlen(dots[i]));
			graphs++;
		}
	if (rc || lseek(fd, 0, SEEK_SET) < 0 || !graphs) {
		close(fd);
		return graphs == 0 && !rc;
	}
	int out[2];
	if (pipe(out)) {
		close(fd);
		return false;
	}
	pid_t pid = fork();
	if (pid < 0) {
		close(fd);
		close(out[0]);
		close(out[1]);
		return false;
	}
	if (pid == 0) {
		dup2(fd, 0);
		dup2(out[1], 1);
		int null = open("/dev/null", O_WRONLY);
		if (null >= 0)
			dup2(null, 2);
		close(out[0]);
		execlp("dot", "dot", "-Tsvg", (char *)NULL);
		_exit(127);
	}
	close(fd);
	close(out[1]);
	struct strbuf sb = STRBUF_INIT;
	char buf[65536];
	ssize_t r;
	while ((r = read(out[0], buf, sizeof buf)) > 0 || (r < 0 && errno == EINTR))
		if (r > 0)
			strbuf_add(&sb, buf, (size_t)r);
	close(out[0]);
	int status = 0;
	waitpid(pid, &status, 0);
	bool ok = WIFEXITED(status) && !WEXITSTATUS(status) && sb.buf;
	const char *at = sb.buf;
	for (size_t i = 0; ok && i < n; i++) {
		if (!dots[i])
			continue;
		const char *start = strstr(at, "<svg"), *end = start ? strstr(start, "</svg>") : NULL;
		if (!end) {
			ok = false;
			break;
		}
		end += strlen("</svg>");
		svgs[i] = xmalloc((size_t)(end - start) + 1);
		memcpy(svgs[i], start, (size_t)(end - start));
		svgs[i][end - start] = '\0';
		at = end;
	}
	if (ok && strstr(at, "<svg"))
		ok = false;                   /* more documents than graphs */
	if (!ok)
		for (size_t i = 0; i < n; i++) {
			free(svgs[i]);
			svgs[i] = NULL;
		}
	strbuf_release(&sb);
	return ok;
}

static void sparkline(struct strbuf *sb, const uint64_t *reads, unsigned days)
{
	uint64_t max = 1, total = 0;
	for (unsigned i = 0; i < days; i++) {
		if (reads[i] > max)
			max = reads[i];
		total += reads[i];
	}
	strbuf_printf(sb, "<svg class=\"spark\" width=\"240\" height=\"36\" viewBox=\"0 0 240 36\" role=\"img\" "
		      "aria-label=\"reads per day, last %u days\"><polyline fill=\"none\" stroke=\"#0a58ca\" "
		      "stroke-width=\"2\" points=\"", days);
	for (unsigned i = 0; i < days; i++)
		strbuf_printf(sb, "%s%.1f,%.1f", i ? " " : "", days > 1 ? 240.0 * i / (days - 1) : 0.0,
			      34.0 - 32.0 * (double)reads[i] / (double)max);
	strbuf_printf(sb, "\"/></svg> <span class=\"muted\">%llu reads in the last %u days</span>",
		      (unsigned long long)total, days);
}

static void list_cell(struct strbuf *sb, char **items, size_t n)
{
	if (!n)
		strbuf_puts(sb, "-");
	for (size_t i = 0; i < n; i++) {
		if (i)
			strbuf_puts(sb, ", ");
		esc(sb, items[i]);
	}
}

static char *product_page(const struct product_info *p, const char *lineage_svg, const char *lineage_dot,
			  bool dot_missing, const uint64_t *daily, const char *mount)
{
	struct strbuf sb = STRBUF_INIT;
	char title[256];
	snprintf(title, sizeof title, "%s/%s - meshfs catalog", p->domain, p->product);
	page_head(&sb, title);
	strbuf_puts(&sb, "<p><a href=\"../index.html\">&larr; all products</a></p>\n<h1>");
	esc(&sb, p->title);
	strbuf_puts(&sb, " <span class=\"muted\">");
	esc(&sb, p->domain);
	strbuf_puts(&sb, "/");
	esc(&sb, p->product);
	strbuf_puts(&sb, "</span></h1>\n");
	if (p->purpose) {
		strbuf_puts(&sb, "<p>");
		esc(&sb, p->purpose);
		strbuf_puts(&sb, "</p>\n");
	}
	for (size_t i = 0; i < p->n_tags; i++) {
		strbuf_puts(&sb, "<span class=\"tag\">");
		esc(&sb, p->tags[i]);
		strbuf_puts(&sb, "</span>");
	}
	strbuf_puts(&sb, "\n<table id=\"facts\">");
	strbuf_printf(&sb, "<tr><th>Status</th><td class=\"%s\">", p->status);
	esc(&sb, p->status);
	if (p->latest) {
		strbuf_puts(&sb, " (latest ");
		esc(&sb, p->latest);
		strbuf_puts(&sb, ")");
	}
	strbuf_puts(&sb, "</td></tr><tr><th>Owners</th><td>");
	list_cell(&sb, p->owners, p->n_owners);
	strbuf_puts(&sb, "</td></tr><tr><th>Support</th><td>");
	list_cell(&sb, p->support, p->n_support);
	strbuf_puts(&sb, "</td></tr><tr><th>SLA</th><td>");
	esc(&sb, p->sla ? p->sla : "-");
	strbuf_puts(&sb, "</td></tr><tr><th>Usage</th><td>");
	sparkline(&sb, daily, SPARK_DAYS);
	strbuf_printf(&sb, "</td></tr><tr><th>Path</th><td><code>%s/", mount);
	esc(&sb, p->domain);
	strbuf_puts(&sb, "/");
	esc(&sb, p->product);
	strbuf_puts(&sb, "/</code></td></tr></table>\n");

	strbuf_puts(&sb, "<h2>Schema</h2>\n");
	const struct contract *c = p->contract;
	for (size_t o = 0; c && o < c->n_objects; o++) {
		const struct contract_object *obj = &c->objects[o];
		strbuf_puts(&sb, "<h3>");
		esc(&sb, obj->physical_name ? obj->physical_name : obj->name);
		strbuf_puts(&sb, "</h3>\n<table class=\"schema\"><tr><th>Column</th><th>Type</th><th>Classification</th>"
			    "<th>Description</th></tr>\n");
		for (size_t i = 0; i < obj->n_props; i++) {
			const struct contract_property *pr = &obj->props[i];
			strbuf_puts(&sb, "<tr><td>");
			esc(&sb, pr->name);
			strbuf_puts(&sb, "</td><td>");
			esc(&sb, pr->logical_type ? pr->logical_type : logical_type_name(pr->type));
			strbuf_puts(&sb, "</td><td>");
			esc(&sb, pr->classification ? pr->classification : "-");
			strbuf_puts(&sb, "</td><td>");
			esc(&sb, pr->description ? pr->description : "");
			strbuf_puts(&sb, "</td></tr>\n");
		}
		strbuf_puts(&sb, "</table>\n");
	}
	strbuf_puts(&sb, "<h2>Versions</h2>\n<table id=\"versions\"><tr><th>Version</th><th>Status</th>"
		    "<th>Published</th><th>Sunset</th><th>Reason</th></tr>\n");
	for (size_t i = 0; i < p->n_versions; i++) {
		const struct product_version_info *v = &p->versions[i];
		strbuf_printf(&sb, "<tr><td>%s%s</td><td class=\"%s\">%s</td><td>", v->version,
			      v->latest ? " (latest)" : "", lifecycle_name(v->state), lifecycle_name(v->state));
		esc(&sb, *v->published_at ? v->published_at : "-");
		strbuf_puts(&sb, "</td><td>");
		esc(&sb, v->sunset ? v->sunset : "-");
		strbuf_puts(&sb, "</td><td>");
		esc(&sb, v->reason ? v->reason : "-");
		strbuf_puts(&sb, "</td></tr>\n");
	}
	strbuf_puts(&sb, "</table>\n<h2>Quality</h2>\n<p>");
	if (p->has_quality)
		strbuf_printf(&sb, "Release %s: %u checks at publish, %u passed, %u warning(s).", p->latest,
			      p->quality_checks, p->quality_passed, p->quality_warnings);
	else
		strbuf_puts(&sb, "No quality results.");
	strbuf_puts(&sb, "</p>\n<h2>Lineage</h2>\n<div class=\"lineage\">");
	if (lineage_svg)
		strbuf_puts(&sb, lineage_svg);
	else if (dot_missing) {
		strbuf_puts(&sb, "<p class=\"note\">Graphviz (<code>dot</code>) was not installed when this catalog "
			    "was written, so there is no picture. Install graphviz and run <code>meshctl catalog "
			    "--html</code> again; the graph in DOT:</p><pre>");
		esc(&sb, lineage_dot ? lineage_dot : "");
		strbuf_puts(&sb, "</pre>");
	}
	strbuf_puts(&sb, "</div>\n<p>Built from: ");
	list_cell(&sb, p->inputs, p->n_inputs);
	strbuf_puts(&sb, ". Built from it: ");
	list_cell(&sb, p->built_from_it, p->n_built);
	strbuf_puts(&sb, ".</p>\n</body></html>\n");
	return strbuf_detach(&sb, NULL);
}

static const char index_script[] =
	"<script>\n"
	"const index = JSON.parse(document.getElementById('index').textContent);\n"
	"const list = document.getElementById('products');\n"
	"const count = document.getElementById('count');\n"
	"function show(q) {\n"
	"  const words = q.toLowerCase().split(/\\s+/).filter(Boolean);\n"
	"  let shown = 0;\n"
	"  for (const li of list.children) {\n"
	"    const text = index[li.dataset.i].text;\n"
	"    const ok = words.every(w => text.includes(w));\n"
	"    li.hidden = !ok;\n"
	"    if (ok) shown++;\n"
	"  }\n"
	"  count.textContent = shown + ' of ' + index.length + ' products';\n"
	"}\n"
	"document.getElementById('q').addEventListener('input', e => show(e.target.value));\n"
	"show('');\n"
	"</script>\n";

static int write_file(const char *dir, const char *name, const char *text, struct mesh_err *err)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return mesh_errf(err, -errno, "%s: %s", dir, strerror(errno));
	int rc = mesh_write_file_replace(dfd, name, text, strlen(text), 0644, err);
	close(dfd);
	return rc;
}

/* "<script type=application/json>" content must not close the element. */
static char *json_for_script(json_t *j)
{
	char *text = json_dumps(j, JSON_COMPACT);
	struct strbuf sb = STRBUF_INIT;
	for (const char *p = text; *p; p++) {
		if (*p == '<')
			strbuf_puts(&sb, "\\u003c");
		else
			strbuf_add(&sb, p, 1);
	}
	free(text);
	return strbuf_detach(&sb, NULL);
}

int catalog_html_write(const char *store, const struct identity *who, const char *dir, const char *mount,
		       struct catalog_html_stats *stats, struct mesh_err *err)
{
	memset(stats, 0, sizeof *stats);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return mesh_errf(err, -errno, "%s: %s", dir, strerror(errno));
	char pdir[PATH_MAX];
	snprintf(pdir, sizeof pdir, "%s/products", dir);
	if (mkdir(pdir, 0755) < 0 && errno != EEXIST)
		return mesh_errf(err, -errno, "%s: %s", pdir, strerror(errno));
	struct catalog *cat = NULL;
	struct visibility *vis = NULL;
	struct lineage *g = NULL;
	int rc = catalog_scan(store, NULL, &cat, err);
	if (!rc)
		rc = visibility_open(store, cat, who, &vis, err);
	if (!rc)
		rc = lineage_load(store, cat, &g, err);
	json_t *index = json_array();
	struct strbuf items = STRBUF_INIT;
	bool dot_missing = false;
	const struct cat_node *root = rc ? NULL : catalog_root(cat);
	/* the products to write and their lineage pictures, drawn at once */
	size_t np = 0, cap = 0;
	const struct cat_node **prods = NULL;
	char **dots = NULL, **svgs = NULL;
	for (uint32_t d = 0; root && d < root->n_children; d++)
		for (uint32_t k = 0; k < root->children[d]->n_children; k++) {
			const struct cat_node *pn = root->children[d]->children[k];
			if (pn->kind != CAT_PRODUCT || !visibility_node(vis, pn))
				continue;
			if (np == cap) {
				cap = cap ? cap * 2 : 256;
				prods = xrealloc(prods, cap * sizeof *prods);
				dots = xrealloc(dots, cap * sizeof *dots);
			}
			prods[np] = pn;
			dots[np++] = lineage_format(g, pn->domain, pn->name, LINEAGE_BOTH, LINEAGE_DOT,
						    visibility_lineage_cb, vis);
		}
	svgs = xcalloc(np + 1, sizeof *svgs);
	bool batched = run_dot_batch(dots, np, svgs);
	for (size_t pi = 0; pi < np && !rc; pi++) {
		const struct cat_node *pn = prods[pi];
		char *dot = dots[pi];
		dots[pi] = NULL;
		{
			struct product_info *p = NULL;
			if (product_info_load(store, cat, vis, g, pn->domain, pn->name, &p, NULL)) {
				free(dot);
				continue;
			}
			char *svg = svgs[pi];
			svgs[pi] = NULL;
			if (!batched && dot && !dot_missing)
				svg = run_dot(dot);
			if (dot && !svg)
				dot_missing = true;
			uint64_t daily[SPARK_DAYS];
			adoption_daily(store, pn->domain, pn->name, SPARK_DAYS, daily, NULL);
			char *page = product_page(p, svg, dot, dot_missing, daily, mount);
			char name[2 * MESH_NAME_MAX + 8];
			snprintf(name, sizeof name, "%s.%s.html", pn->domain, pn->name);
			rc = write_file(pdir, name, page, err);
			/* the index entry: what the search box matches */
			struct strbuf text = STRBUF_INIT;
			strbuf_printf(&text, "%s %s %s %s", pn->domain, pn->name, p->title, p->purpose ? p->purpose : "");
			for (size_t i = 0; i < p->n_tags; i++)
				strbuf_printf(&text, " %s", p->tags[i]);
			for (size_t i = 0; i < p->n_owners; i++)
				strbuf_printf(&text, " %s", p->owners[i]);
			for (size_t o = 0; p->contract && o < p->contract->n_objects; o++)
				for (size_t i = 0; i < p->contract->objects[o].n_props; i++) {
					const struct contract_property *pr = &p->contract->objects[o].props[i];
					strbuf_printf(&text, " %s %s %s", pr->name, pr->classification ? pr->classification : "",
						      pr->description ? pr->description : "");
				}
			for (char *c = text.buf; c && *c; c++)
				if (*c >= 'A' && *c <= 'Z')
					*c = (char)(*c - 'A' + 'a');
			json_array_append_new(index, json_pack("{s:s, s:s, s:s, s:s, s:s}", "product", pn->domain,
							       "name", pn->name, "page", name, "status", p->status, "text",
							       text.buf ? text.buf : ""));
			json_object_set_new(json_array_get(index, json_array_size(index) - 1), "product",
					    json_sprintf("%s/%s", pn->domain, pn->name));
			strbuf_printf(&items, "<li data-i=\"%zu\"><a href=\"products/", json_array_size(index) - 1);
			esc(&items, name);
			strbuf_puts(&items, "\">");
			esc(&items, pn->domain);
			strbuf_puts(&items, "/");
			esc(&items, pn->name);
			strbuf_puts(&items, "</a> <span class=\"muted\">");
			esc(&items, p->purpose ? p->purpose : "");
			strbuf_puts(&items, "</span>");
			if (strcmp(p->status, "active"))
				strbuf_printf(&items, " <span class=\"deprecated\">%s</span>", p->status);
			strbuf_puts(&items, "</li>\n");
			strbuf_release(&text);
			stats->products++;
			stats->lineage_drawn |= svg != NULL;
			free(page);
			free(svg);
			free(dot);
			product_info_free(p);
		}
	}
	for (size_t i = 0; i < np; i++) {
		free(dots[i]);
		free(svgs[i]);
	}
	free(dots);
	free(svgs);
	free(prods);
	if (!rc) {
		struct strbuf sb = STRBUF_INIT;
		page_head(&sb, "meshfs catalog");
		strbuf_printf(&sb, "<h1>Data products</h1>\n<p class=\"muted\">As %s may see them. Files are under "
			      "<code>%s/DOMAIN/PRODUCT/</code>.</p>\n", who->user, mount);
		strbuf_puts(&sb, "<input id=\"q\" type=\"search\" placeholder=\"Search names, descriptions, columns, "
			    "tags, owners\" autofocus>\n<p id=\"count\" class=\"muted\"></p>\n<ul id=\"products\">\n");
		strbuf_puts(&sb, items.buf ? items.buf : "");
		strbuf_puts(&sb, "</ul>\n<script id=\"index\" type=\"application/json\">");
		char *j = json_for_script(index);
		strbuf_puts(&sb, j);
		free(j);
		strbuf_puts(&sb, "</script>\n");
		strbuf_puts(&sb, index_script);
		strbuf_puts(&sb, "</body></html>\n");
		rc = write_file(dir, "index.html", sb.buf, err);
		strbuf_release(&sb);
	}
	strbuf_release(&items);
	json_decref(index);
	lineage_free(g);
	visibility_close(vis);
	catalog_unref(cat);
	return rc;
}
