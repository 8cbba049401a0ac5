/*
 * card.c - product cards in Markdown (contract in include/card.h), and
 * keeping them in the store beside the releases.
 *
 * Not here: gathering the facts (product_info.c), serving (catalog.c).
 */
#include "card.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "card_reader.h"
#include "mesh_util.h"
#include "store.h"
#include "visibility.h"

/* Markdown table cells: no pipes, no line breaks, and no control bytes
 * (the reader markers of card_reader.h are control bytes: contract text
 * can never forge one). */
static void cell(struct strbuf *sb, const char *s)
{
	for (; s && *s; s++) {
		if (*s == '|')
			strbuf_puts(sb, "\\|");
		else if ((unsigned char)*s < 0x20 || *s == 0x7f)
			strbuf_puts(sb, " ");
		else
			strbuf_add(sb, s, 1);
	}
}

static void joined(struct strbuf *sb, char **items, size_t n, const char *none)
{
	if (!n)
		strbuf_puts(sb, none);
	for (size_t i = 0; i < n; i++) {
		if (i)
			strbuf_puts(sb, ", ");
		cell(sb, items[i]);
	}
}

static const struct product_version_info *find_version(const struct product_info *p, const char *v)
{
	for (size_t i = 0; i < p->n_versions; i++)
		if (!strcmp(p->versions[i].version, v))
			return &p->versions[i];
	return NULL;
}

static void facts(struct strbuf *sb, const struct product_info *p, const struct product_version_info *v)
{
	strbuf_puts(sb, "| | |\n|---|---|\n");
	strbuf_printf(sb, "| Product | `%s/%s` |\n", p->domain, p->product);
	if (v) {
		strbuf_printf(sb, "| Version | %s |\n| Status | %s", v->version, lifecycle_name(v->state));
		if (v->sunset) {
			strbuf_puts(sb, ", sunset ");
			cell(sb, v->sunset);
		}
		if (v->reason) {
			strbuf_puts(sb, " (");
			cell(sb, v->reason);
			strbuf_puts(sb, ")");
		}
		strbuf_puts(sb, " |\n");
		if (*v->published_at)
			strbuf_printf(sb, "| Published | %s |\n", v->published_at);
		if (*v->contract_id) {
			strbuf_puts(sb, "| Contract id | ");
			cell(sb, v->contract_id);
			strbuf_puts(sb, " |\n");
		}
	} else {
		strbuf_printf(sb, "| Status | %s%s%s%s |\n", p->status, p->latest ? " (latest: " : "",
			      p->latest ? p->latest : "", p->latest ? ")" : "");
	}
	strbuf_puts(sb, "| Owners | ");
	joined(sb, p->owners, p->n_owners, "-");
	strbuf_puts(sb, " |\n| Support | ");
	joined(sb, p->support, p->n_support, "-");
	strbuf_puts(sb, " |\n| SLA | ");
	cell(sb, p->sla ? p->sla : "-");
	strbuf_puts(sb, " |\n");
	if (p->n_tags) {
		strbuf_puts(sb, "| Tags | ");
		joined(sb, p->tags, p->n_tags, "-");
		strbuf_puts(sb, " |\n");
	}
	strbuf_printf(sb, "| Readers | %llu in the 30 days before this card was written |\n",
		      (unsigned long long)p->consumers);
	strbuf_puts(sb, "\n");
}

static void columns(struct strbuf *sb, const struct contract *c)
{
	if (!c || !c->n_objects)
		return;
	strbuf_puts(sb, "## Columns\n\n");
	bool classified = false;
	for (size_t o = 0; o < c->n_objects; o++) {
		const struct contract_object *obj = &c->objects[o];
		strbuf_puts(sb, "### ");
		cell(sb, obj->name);
		if (obj->physical_name) {
			strbuf_puts(sb, " (`");
			cell(sb, obj->physical_name);
			strbuf_puts(sb, "`)");
		}
		strbuf_puts(sb, "\n\n");
		if (obj->description) {
			cell(sb, obj->description);
			strbuf_puts(sb, "\n\n");
		}
		strbuf_puts(sb, "| Column | Type | Classification | Description |\n|---|---|---|---|\n");
		for (size_t i = 0; i < obj->n_props; i++) {
			const struct contract_property *pr = &obj->props[i];
			strbuf_puts(sb, "| ");
			cell(sb, pr->name);
			strbuf_printf(sb, "%s | ", pr->primary_key ? " (key)" : "");
			cell(sb, pr->logical_type ? pr->logical_type : logical_type_name(pr->type));
			strbuf_puts(sb, " | ");
			if (pr->classification) {
				cell(sb, pr->classification);
				card_mark_classification(sb, pr->classification);
				classified = true;
			} else {
				strbuf_puts(sb, "-");
			}
			strbuf_puts(sb, " | ");
			cell(sb, pr->description ? pr->description : "");
			strbuf_puts(sb, " |\n");
		}
		strbuf_puts(sb, "\n");
	}
	if (classified)
		strbuf_puts(sb, "Classified columns are masked for readers the mesh's masking rules do not clear "
			    "(the owners always read them clear); this card says what you see.\n\n");
}

static void quality(struct strbuf *sb, const char *quality_json, const char *version)
{
	json_t *doc = quality_json ? json_loads(quality_json, 0, NULL) : NULL;
	json_t *checks = json_object_get(doc, "checks");
	if (!json_is_array(checks)) {
		json_decref(doc);
		return;
	}
	strbuf_printf(sb, "## Quality of %s (checked at publish)\n\n| Check | Result |\n|---|---|\n", version);
	size_t i;
	json_t *c;
	json_array_foreach(checks, i, c) {
		const char *what = json_string_value(json_object_get(c, "check"));
		bool passed = json_is_true(json_object_get(c, "passed"));
		const char *sev = json_string_value(json_object_get(c, "severity"));
		strbuf_puts(sb, "| ");
		cell(sb, what ? what : "?");
		strbuf_printf(sb, " | %s |\n", passed ? "passed" : sev && !strcmp(sev, "warning") ? "warning" : "failed");
	}
	strbuf_puts(sb, "\n");
	json_decref(doc);
}

static void lineage_section(struct strbuf *sb, const struct product_info *p)
{
	strbuf_puts(sb, "## Lineage\n\nBuilt from: ");
	size_t shown = 0, hidden = 0;
	for (size_t i = 0; i < p->n_inputs; i++) {
		if (strstr(p->inputs[i], ": not found")) {
			hidden++;
			continue;
		}
		strbuf_puts(sb, shown++ ? ", " : "");
		strbuf_puts(sb, "`");
		cell(sb, p->inputs[i]);
		strbuf_puts(sb, "`");
	}
	if (!shown)
		strbuf_puts(sb, hidden ? "" : "no declared inputs");
	if (hidden)
		strbuf_printf(sb, "%s%zu input(s) not visible to every reader", shown ? "; " : "", hidden);
	strbuf_puts(sb, ".\nBuilt from it: ");
	joined(sb, p->built_from_it, p->n_built, "no product declares it as an input");
	strbuf_printf(sb, ".\n\n`meshctl lineage %s/%s` draws the whole graph (`--format dot | dot -Tsvg`).\n\n",
		      p->domain, p->product);
}

/* The first data file of a version's contract, for the examples. */
static const char *example_file(const struct contract *c)
{
	for (size_t o = 0; c && o < c->n_objects; o++) {
		const char *name = c->objects[o].physical_name;
		bool plain = name != NULL;
		for (const char *s = name; plain && *s; s++)
			plain = (unsigned char)*s >= 0x20 && *s != 0x7f && *s != '\'' && *s != '"' && *s != '`';
		if (plain)
			return name;
	}
	return NULL;
}

static void how_to(struct strbuf *sb, const struct product_info *p, const char *version, const char *file,
		   const char *mount)
{
	strbuf_puts(sb, "## How to read it\n\n");
	if (!file) {
		strbuf_printf(sb, "List the files: `ls %s/%s/%s/%s/`\n\n", mount, p->domain, p->product,
			      version ? version : "latest");
		return;
	}
	const char *v = version ? version : "latest";
	bool csv = strstr(file, ".csv") != NULL, jsonl = strstr(file, ".jsonl") != NULL;
	strbuf_printf(sb, "```sh\nhead %s/%s/%s/%s/%s\n```\n\n", mount, p->domain, p->product, v, file);
	strbuf_printf(sb, "```python\nimport pandas as pd\ndf = pd.%s(\"%s/%s/%s/%s/%s\"%s)\n```\n\n",
		      csv ? "read_csv" : jsonl ? "read_json" : "read_parquet", mount, p->domain, p->product, v, file,
		      jsonl ? ", lines=True" : "");
	strbuf_printf(sb, "```sql\n-- DuckDB: this version\nSELECT * FROM '%s/%s/%s/%s/%s' LIMIT 10;\n",
		      mount, p->domain, p->product, v, file);
	strbuf_printf(sb, "-- every version at once (the glob skips `latest`, so no row is read twice)\n"
		      "SELECT * FROM read_%s('%s/%s/%s/[0-9]*/%s', filename = true);\n```\n\n",
		      csv ? "csv_auto" : jsonl ? "json_auto" : "parquet", mount, p->domain, p->product, file);
	if (!version)
		strbuf_printf(sb, "`latest` points at the newest active release; pin a version (`%s/%s/%s/%s/`) "
			      "for reproducible work.\n\n", mount, p->domain, p->product, p->latest ? p->latest : "1.0.0");
}

static void access_section(struct strbuf *sb, const struct product_info *p)
{
	card_mark_reader(sb);
	strbuf_printf(sb, "## Access\n\n`meshctl access %s/%s` says what you may read and why. To ask the "
		      "owners for access:\n\n```sh\nmeshctl request %s/%s --reason \"what you need it for\"\n```\n\n",
		      p->domain, p->product, p->domain, p->product);
	strbuf_puts(sb, "---\nWritten by meshfs from the contracts; ship a README.md in a release to write your own "
		    "for that version.\n");
}

static void header(struct strbuf *sb, const struct product_info *p, const char *purpose)
{
	strbuf_puts(sb, "# ");
	cell(sb, p->title);
	strbuf_puts(sb, "\n\n");
	if (purpose) {
		strbuf_puts(sb, "> ");
		cell(sb, purpose);
		strbuf_puts(sb, "\n\n");
	}
}

static void description(struct strbuf *sb, const char *usage, const char *limitations)
{
	if (usage) {
		strbuf_puts(sb, "**Usage.** ");
		cell(sb, usage);
		strbuf_puts(sb, "\n\n");
	}
	if (limitations) {
		strbuf_puts(sb, "**Limitations.** ");
		cell(sb, limitations);
		strbuf_puts(sb, "\n\n");
	}
}

char *card_product(const struct product_info *p, const char *mount)
{
	struct strbuf sb = STRBUF_INIT;
	header(&sb, p, p->purpose);
	facts(&sb, p, NULL);
	description(&sb, p->usage, p->limitations);
	strbuf_puts(&sb, "## Versions\n\n| Version | Status | Published | Sunset | Reason |\n|---|---|---|---|---|\n");
	for (size_t i = 0; i < p->n_versions; i++) {
		const struct product_version_info *v = &p->versions[i];
		strbuf_printf(&sb, "| %s%s | %s | %s | ", v->version, v->latest ? " (latest)" : "",
			      lifecycle_name(v->state), *v->published_at ? v->published_at : "-");
		cell(&sb, v->sunset ? v->sunset : "-");
		strbuf_puts(&sb, " | ");
		cell(&sb, v->reason ? v->reason : "-");
		strbuf_puts(&sb, " |\n");
	}
	strbuf_puts(&sb, "\n");
	columns(&sb, p->contract);
	lineage_section(&sb, p);
	how_to(&sb, p, NULL, example_file(p->contract), mount);
	access_section(&sb, p);
	return strbuf_detach(&sb, NULL);
}

char *card_version(const struct product_info *p, const char *version, const struct contract *contract,
		   const char *quality_json, const char *mount)
{
	struct strbuf sb = STRBUF_INIT;
	header(&sb, p, contract && contract->purpose ? contract->purpose : p->purpose);
	facts(&sb, p, find_version(p, version));
	if (contract)
		description(&sb, contract->usage, contract->limitations);
	columns(&sb, contract);
	quality(&sb, quality_json, version);
	lineage_section(&sb, p);
	how_to(&sb, p, version, example_file(contract), mount);
	access_section(&sb, p);
	return strbuf_detach(&sb, NULL);
}

/* ---- in the store ---- */

static char *read_release_file(int root_fd, const struct cat_node *v, const char *name, size_t limit)
{
	const struct cat_node *f = catalog_child(v, name);
	char *text = NULL;
	size_t len = 0;
	if (!f || !f->backing || mesh_read_file_at(root_fd, f->backing, limit, &text, &len, NULL))
		return NULL;
	return text;
}

struct card_views {
	struct visibility *anyone;      /* what anyone who may see a product may know */
	struct visibility *governance;  /* the product's own facts, even when it is restricted */
};

int card_views_open(const char *store, const struct catalog *cat, struct card_views **out, struct mesh_err *err)
{
	*out = NULL;
	struct card_views *v = xcalloc(1, sizeof *v);
	/* a card is one file for every reader: it knows what anyone who may
	 * see the product may know (restricted neighbours are counted only) */
	struct identity nobody;
	identity_from_ids(&nobody, 65534, 65534, NULL, 0);
	snprintf(nobody.user, sizeof nobody.user, "%s", "(any reader)");
	int rc = visibility_open(store, (struct catalog *)cat, &nobody, &v->anyone, err);
	/* the product itself may be restricted: its card is hidden with it,
	 * so gather its facts as governance, its neighbours as anyone */
	struct identity root_id;
	identity_from_ids(&root_id, 0, 0, NULL, 0);
	if (!rc)
		rc = visibility_open(store, (struct catalog *)cat, &root_id, &v->governance, err);
	if (rc) {
		card_views_close(v);
		return rc;
	}
	*out = v;
	return 0;
}

void card_views_close(struct card_views *v)
{
	if (!v)
		return;
	visibility_close(v->anyone);
	visibility_close(v->governance);
	free(v);
}

int card_refresh(const char *store, const struct catalog *known, const struct lineage *g, const char *domain,
		 const char *product, struct mesh_err *err)
{
	struct catalog *cat = NULL;
	int rc = known ? 0 : catalog_scan(store, NULL, &cat, err);
	if (rc)
		return rc;
	const struct catalog *c = known ? known : cat;
	struct card_views *views = NULL;
	rc = card_views_open(store, c, &views, err);
	if (!rc)
		rc = card_refresh_with(store, c, g, views, domain, product, err);
	card_views_close(views);
	catalog_unref(cat);
	return rc;
}

int card_refresh_with(const char *store, const struct catalog *c, const struct lineage *g,
		      const struct card_views *views, const char *domain, const char *product, struct mesh_err *err)
{
	int rc = 0;
	const struct visibility *vis = views->anyone;
	struct product_info *p = NULL;
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/domains/%s/%s", store, domain, product);
	int pfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int root_fd = open(store, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pfd < 0 || root_fd < 0) {
		rc = mesh_errf(err, -errno, "%s: %s", path, strerror(errno));
		goto out;
	}
	rc = product_info_load(store, c, views->governance, g, domain, product, &p, err);
	if (!rc) {
		/* neighbours as anyone may see them */
		struct lineage *own = NULL;
		const struct lineage *lg = g;
		if (!lg && !lineage_load(store, c, &own, NULL))
			lg = own;
		if (lg) {
			for (size_t i = 0; i < p->n_inputs; i++)
				free(p->inputs[i]);
			free(p->inputs);
			for (size_t i = 0; i < p->n_built; i++)
				free(p->built_from_it[i]);
			free(p->built_from_it);
			p->n_inputs = lineage_inputs(lg, domain, product, visibility_lineage_cb, (void *)vis,
						     &p->inputs);
			p->n_built = lineage_consumers(lg, domain, product, visibility_lineage_cb, (void *)vis,
						       &p->built_from_it);
		}
		lineage_free(own);
	}
	if (rc == -ENOENT) {          /* every version retired: no card */
		rc = 0;
		unlinkat(pfd, CARD_PRODUCT, 0);
		goto out;
	}
	if (rc)
		goto out;
	char *text = card_product(p, "/mesh");
	rc = mesh_write_file_replace(pfd, CARD_PRODUCT, text, strlen(text), STORE_FILE_MODE, err);
	free(text);
	mkdirat(pfd, CARD_VERSION_DIR, STORE_DIR_MODE);
	snprintf(path, sizeof path, "%s/%s", domain, product);
	const struct cat_node *pn = catalog_resolve(c, path);
	for (uint32_t i = 0; !rc && pn && i < pn->n_children; i++) {
		const struct cat_node *v = pn->children[i];
		if (v->kind != CAT_VERSION)
			continue;
		const struct cat_node *shipped = catalog_child(v, CARD_FILE);
		if (shipped && shipped->backing && !strstr(shipped->backing, "/" CARD_VERSION_DIR "/"))
			continue;             /* the release's own README.md wins */
		char *ctext = read_release_file(root_fd, v, "contract.yaml", CONTRACT_MAX_BYTES);
		struct contract *vc = NULL;
		if (ctext)
			contract_parse(ctext, strlen(ctext), "contract.yaml", &vc, NULL);
		char *qtext = read_release_file(root_fd, v, "quality.json", 16u << 20);
		char *card = card_version(p, v->name, vc, qtext, "/mesh");
		char rel[PATH_MAX];
		snprintf(rel, sizeof rel, CARD_VERSION_DIR "/%s.md", v->name);
		rc = mesh_write_file_replace(pfd, rel, card, strlen(card), STORE_FILE_MODE, err);
		free(card);
		free(ctext);
		free(qtext);
		contract_free(vc);
	}
out:
	product_info_free(p);
	if (pfd >= 0)
		close(pfd);
	if (root_fd >= 0)
		close(root_fd);
	return rc;
}

bool card_node_generated(const struct cat_node *n)
{
	if (!n || n->kind != CAT_FILE || n->role != ROLE_DOC || !n->backing || strcmp(n->name, CARD_FILE))
		return false;
	size_t len = strlen(n->backing), k = strlen("/" CARD_PRODUCT);
	return (len > k && !strcmp(n->backing + len - k, "/" CARD_PRODUCT)) ||
	       strstr(n->backing, "/" CARD_VERSION_DIR "/") != NULL;
}
