/*
 * descriptor.c - ODPS v1.x product descriptors (contract in
 * include/descriptor.h): validation by a table of the standard's objects
 * (our own reading of bitol-io/open-data-product-standard's JSON schemas
 * v1.0.0 and v1.1.0), the fields meshfs uses, rendering the served
 * descriptor with meshfs's output ports, and keeping it in the store.
 *
 * Not here: YAML itself (yamltree.c), lineage (lineage.c).
 */
#include "descriptor.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "lineage.h"
#include "mesh_util.h"
#include "name_hint.h"
#include "yamltree.h"

/* ---- the standard, as a table ---- */

enum ftype { T_STRING, T_BOOL, T_DATETIME, T_DATE, T_ANY, T_OBJECT, T_STRINGS, T_OBJECTS, T_TEAM };

#define V10 1u   /* required in v1.0.0 */
#define V11 2u   /* required in v1.1.0 */

struct ospec;
struct fspec {
	const char *name;
	enum ftype type;
	unsigned required;
	const struct ospec *sub;     /* T_OBJECT, T_OBJECTS, T_TEAM */
};
struct ospec {
	const char *what;
	const struct fspec *fields;
	size_t n;
};
#define SPEC(what, arr) {what, arr, sizeof arr / sizeof *arr}

static const struct fspec custom_f[] = {
	{"id", T_STRING, 0, NULL}, {"property", T_STRING, V10 | V11, NULL}, {"value", T_ANY, V10 | V11, NULL},
	{"description", T_STRING, 0, NULL},
};
static const struct ospec custom_o = SPEC("customProperty", custom_f);
static const struct fspec authdef_f[] = {
	{"id", T_STRING, 0, NULL}, {"type", T_STRING, V10 | V11, NULL}, {"url", T_STRING, V10 | V11, NULL},
	{"description", T_STRING, 0, NULL},
};
static const struct ospec authdef_o = SPEC("authoritativeDefinition", authdef_f);
#define COMMON_F {"tags", T_STRINGS, 0, NULL}, {"customProperties", T_OBJECTS, 0, &custom_o}, \
	{"authoritativeDefinitions", T_OBJECTS, 0, &authdef_o}
static const struct fspec description_f[] = {
	{"purpose", T_STRING, 0, NULL}, {"limitations", T_STRING, 0, NULL}, {"usage", T_STRING, 0, NULL},
	{"authoritativeDefinitions", T_OBJECTS, 0, &authdef_o}, {"customProperties", T_OBJECTS, 0, &custom_o},
};
static const struct ospec description_o = SPEC("description", description_f);
static const struct fspec input_f[] = {
	{"deprecated", T_BOOL, 0, NULL}, {"id", T_STRING, 0, NULL}, {"name", T_STRING, V10 | V11, NULL},
	{"version", T_STRING, V10, NULL}, {"contractId", T_STRING, V10, NULL}, COMMON_F,
};
static const struct ospec input_o = SPEC("inputPort", input_f);
static const struct fspec sbom_f[] = {
	{"id", T_STRING, 0, NULL}, {"type", T_STRING, 0, NULL}, {"url", T_STRING, V10, NULL},
};
static const struct ospec sbom_o = SPEC("sbom", sbom_f);
static const struct fspec inputcontract_f[] = {
	{"id", T_STRING, V10 | V11, NULL}, {"version", T_STRING, V10 | V11, NULL},
};
static const struct ospec inputcontract_o = SPEC("inputContract", inputcontract_f);
static const struct fspec context_f[] = {
	{"instructions", T_STRING, 0, NULL}, {"verifiedStatements", T_ANY, 0, NULL}, {"constraints", T_ANY, 0, NULL},
};
static const struct ospec context_o = SPEC("context", context_f);
static const struct fspec output_f[] = {
	{"deprecated", T_BOOL, 0, NULL}, {"id", T_STRING, 0, NULL}, {"name", T_STRING, V10 | V11, NULL},
	{"description", T_STRING, 0, NULL}, {"type", T_STRING, 0, NULL}, {"version", T_STRING, V10, NULL},
	{"contractId", T_STRING, 0, NULL}, {"sbom", T_OBJECTS, 0, &sbom_o},
	{"inputContracts", T_OBJECTS, 0, &inputcontract_o}, {"synonyms", T_ANY, 0, NULL},
	{"context", T_OBJECT, 0, &context_o}, COMMON_F,
};
static const struct ospec output_o = SPEC("outputPort", output_f);
static const struct fspec mgmt_f[] = {
	{"deprecated", T_BOOL, 0, NULL}, {"id", T_STRING, 0, NULL}, {"name", T_STRING, V10 | V11, NULL},
	{"content", T_STRING, V10 | V11, NULL}, {"type", T_STRING, 0, NULL}, {"url", T_STRING, 0, NULL},
	{"channel", T_STRING, 0, NULL}, {"description", T_STRING, 0, NULL}, COMMON_F,
};
static const struct ospec mgmt_o = SPEC("managementPort", mgmt_f);
static const struct fspec support_f[] = {
	{"id", T_STRING, 0, NULL}, {"channel", T_STRING, V10 | V11, NULL}, {"url", T_STRING, V10 | V11, NULL},
	{"description", T_STRING, 0, NULL}, {"tool", T_STRING, 0, NULL}, {"scope", T_STRING, 0, NULL},
	{"invitationUrl", T_STRING, 0, NULL}, COMMON_F,
};
static const struct ospec support_o = SPEC("support", support_f);
static const struct fspec member_f[] = {
	{"id", T_STRING, 0, NULL}, {"username", T_STRING, V11, NULL}, {"name", T_STRING, 0, NULL},
	{"description", T_STRING, 0, NULL}, {"role", T_STRING, 0, NULL}, {"dateIn", T_DATE, 0, NULL},
	{"dateOut", T_DATE, 0, NULL}, {"replacedByUsername", T_STRING, 0, NULL}, COMMON_F,
};
static const struct ospec member_o = SPEC("team member", member_f);
static const struct fspec team_f[] = {   /* v1.1.0: an object; v1.0.0: a list of members */
	{"name", T_STRING, 0, NULL}, {"description", T_STRING, 0, NULL}, {"members", T_OBJECTS, 0, &member_o},
	COMMON_F,
};
static const struct ospec team_o = SPEC("team", team_f);
static const struct fspec top_f[] = {
	{"apiVersion", T_STRING, V10 | V11, NULL}, {"kind", T_STRING, V10 | V11, NULL},
	{"id", T_STRING, V10 | V11, NULL}, {"name", T_STRING, 0, NULL}, {"deprecated", T_BOOL, 0, NULL},
	{"synonyms", T_ANY, 0, NULL}, {"version", T_STRING, 0, NULL}, {"status", T_STRING, V10, NULL},
	{"domain", T_STRING, 0, NULL}, {"type", T_STRING, 0, NULL}, {"context", T_OBJECT, 0, &context_o},
	{"tenant", T_STRING, 0, NULL}, {"authoritativeDefinitions", T_OBJECTS, 0, &authdef_o},
	{"description", T_OBJECT, 0, &description_o}, {"customProperties", T_OBJECTS, 0, &custom_o},
	{"tags", T_STRINGS, 0, NULL}, {"inputPorts", T_OBJECTS, 0, &input_o},
	{"outputPorts", T_OBJECTS, 0, &output_o}, {"managementPorts", T_OBJECTS, 0, &mgmt_o},
	{"support", T_OBJECTS, 0, &support_o}, {"team", T_TEAM, 0, &team_o},
	{"productCreatedTs", T_DATETIME, 0, NULL},
};
static const struct ospec top_o = SPEC("product", top_f);

/* ---- validation ---- */

struct checker {
	const char *path;
	unsigned version_bit;
	struct strbuf problems;
	size_t n;
};

static void problem(struct checker *ck, const struct ynode *at, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void problem(struct checker *ck, const struct ynode *at, const char *field, const char *fmt, ...)
{
	strbuf_printf(&ck->problems, "%s%s:%d:%d: %s: ", ck->n ? "\n" : "", ck->path, at ? at->line : 1,
		      at ? at->col : 1, field);
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	strbuf_puts(&ck->problems, msg);
	ck->n++;
}

static const char *kind_name(const struct ynode *n)
{
	return n->kind == Y_MAPPING ? "a mapping" : n->kind == Y_SEQUENCE ? "a list" : yscalar(n) ? "a scalar" : "null";
}

static void check_object(struct checker *ck, const struct ynode *n, const struct ospec *spec, const char *where);

static void check_value(struct checker *ck, const struct ynode *v, const struct fspec *f, const char *field)
{
	char sub[400];
	time_t t;
	switch (f->type) {
	case T_ANY:
		return;
	case T_STRING:
	case T_DATE:
	case T_DATETIME:
		if (v->kind != Y_SCALAR || !yscalar(v)) {
			problem(ck, v, field, "expected a string, found %s", kind_name(v));
			return;
		}
		if (f->type == T_DATE && (strlen(v->text) != 10 || mesh_time_parse(v->text, &t)))
			problem(ck, v, field, "expected a date (YYYY-MM-DD), found \"%s\"", v->text);
		if (f->type == T_DATETIME && (strlen(v->text) <= 10 || mesh_time_parse(v->text, &t)))
			problem(ck, v, field, "expected a date-time (RFC 3339), found \"%s\"", v->text);
		return;
	case T_BOOL:
		if (ybool(v) < 0)
			problem(ck, v, field, "expected true or false, found %s", v->kind == Y_SCALAR && yscalar(v) ?
				v->text : kind_name(v));
		return;
	case T_STRINGS:
		if (v->kind != Y_SEQUENCE) {
			problem(ck, v, field, "expected a list of strings, found %s", kind_name(v));
			return;
		}
		for (size_t i = 0; i < v->n; i++)
			if (v->items[i]->kind != Y_SCALAR || !yscalar(v->items[i])) {
				snprintf(sub, sizeof sub, "%s[%zu]", field, i);
				problem(ck, v->items[i], sub, "expected a string, found %s", kind_name(v->items[i]));
			}
		return;
	case T_OBJECT:
		check_object(ck, v, f->sub, field);
		return;
	case T_TEAM:
		if (v->kind == Y_SEQUENCE) {         /* v1.0.0 */
			for (size_t i = 0; i < v->n; i++) {
				snprintf(sub, sizeof sub, "%s[%zu]", field, i);
				check_object(ck, v->items[i], &member_o, sub);
			}
		} else {
			check_object(ck, v, f->sub, field);
		}
		return;
	case T_OBJECTS:
		if (v->kind != Y_SEQUENCE) {
			problem(ck, v, field, "expected a list, found %s", kind_name(v));
			return;
		}
		for (size_t i = 0; i < v->n; i++) {
			snprintf(sub, sizeof sub, "%s[%zu]", field, i);
			check_object(ck, v->items[i], f->sub, sub);
		}
		return;
	}
}

static void check_object(struct checker *ck, const struct ynode *n, const struct ospec *spec, const char *where)
{
	if (n->kind != Y_MAPPING) {
		problem(ck, n, where, "expected a mapping (%s), found %s", spec->what, kind_name(n));
		return;
	}
	char field[300];
	for (size_t i = 0; i < n->n; i++) {
		const char *key = n->keys[i]->text;
		const struct fspec *f = NULL;
		for (size_t k = 0; k < spec->n; k++)
			if (!strcmp(spec->fields[k].name, key))
				f = &spec->fields[k];
		snprintf(field, sizeof field, "%s%s%s", where, *where ? "." : "", key);
		if (!f) {
			/* the closest field name of this level, for a likely typo */
			const char *names[64], *hint = NULL;
			size_t n_names = 0;
			for (size_t k = 0; k < spec->n && n_names < 64; k++)
				names[n_names++] = spec->fields[k].name;
			if (spec->n <= 64)
				hint = name_hint_closest(key, names, n_names);
			problem(ck, n->keys[i], field, "not a field of an ODPS %s%s%s%s", spec->what,
				hint ? "; did you mean '" : "", hint ? hint : "", hint ? "'?" : "");
			continue;
		}
		if (f->type != T_ANY && n->items[i]->kind == Y_SCALAR && !yscalar(n->items[i])) {
			if (f->required & ck->version_bit)
				problem(ck, n->items[i], field, "required, but empty");
			continue;
		}
		check_value(ck, n->items[i], f, field);
	}
	for (size_t k = 0; k < spec->n; k++)
		if ((spec->fields[k].required & ck->version_bit) && !ymap_get(n, spec->fields[k].name)) {
			snprintf(field, sizeof field, "%s%s%s", where, *where ? "." : "", spec->fields[k].name);
			problem(ck, n, field, "missing (required by ODPS %s)", ck->version_bit == V10 ? "v1.0.0" : "v1.1.0");
		}
}

/* ---- what meshfs reads ---- */

static char *dup_scalar(const struct ynode *n)
{
	const char *s = yscalar(n);
	return s ? xstrdup(s) : NULL;
}

static void push(char ***list, size_t *n, char *s)
{
	*list = xrealloc(*list, (*n + 1) * sizeof **list);
	(*list)[(*n)++] = s;
}

static void read_members(struct descriptor *d, const struct ynode *members)
{
	for (size_t i = 0; members && members->kind == Y_SEQUENCE && i < members->n; i++) {
		const char *user = yscalar(ymap_get(members->items[i], "username"));
		const char *role = yscalar(ymap_get(members->items[i], "role"));
		if (user && role && strcasestr(role, "owner"))
			push(&d->owners, &d->n_owners, xstrdup(user));
	}
}

static void read_fields(struct descriptor *d, const struct ynode *root)
{
	d->api_version = dup_scalar(ymap_get(root, "apiVersion"));
	d->kind = dup_scalar(ymap_get(root, "kind"));
	d->id = dup_scalar(ymap_get(root, "id"));
	d->name = dup_scalar(ymap_get(root, "name"));
	d->version = dup_scalar(ymap_get(root, "version"));
	d->status = dup_scalar(ymap_get(root, "status"));
	d->domain = dup_scalar(ymap_get(root, "domain"));
	const struct ynode *desc = ymap_get(root, "description");
	d->purpose = dup_scalar(ymap_get(desc, "purpose"));
	d->usage = dup_scalar(ymap_get(desc, "usage"));
	d->limitations = dup_scalar(ymap_get(desc, "limitations"));
	const struct ynode *tags = ymap_get(root, "tags");
	for (size_t i = 0; tags && tags->kind == Y_SEQUENCE && i < tags->n; i++)
		if (yscalar(tags->items[i]))
			push(&d->tags, &d->n_tags, xstrdup(tags->items[i]->text));
	const struct ynode *team = ymap_get(root, "team");
	read_members(d, team && team->kind == Y_MAPPING ? ymap_get(team, "members") : team);
	const struct ynode *ports = ymap_get(root, "inputPorts");
	for (size_t i = 0; ports && ports->kind == Y_SEQUENCE && i < ports->n; i++) {
		const char *name = yscalar(ymap_get(ports->items[i], "name"));
		const char *version = yscalar(ymap_get(ports->items[i], "version"));
		if (!name)
			continue;
		struct strbuf sb = STRBUF_INIT;
		strbuf_printf(&sb, "%s%s%s", name, version ? "@" : "", version ? version : "");
		struct lineage_input in;
		if (strchr(name, '/') && !lineage_input_parse(sb.buf, &in, NULL))
			push(&d->inputs, &d->n_inputs, strbuf_detach(&sb, NULL));
		else
			push(&d->foreign_inputs, &d->n_foreign, strbuf_detach(&sb, NULL));
		strbuf_release(&sb);
	}
}

/* Is the document's top-level mapping written in flow style ({...})?  The
 * first thing after comments, directives and "---" tells. */
static bool flow_document(const char *text, size_t len)
{
	const char *p = text, *end = text + len;
	if (len >= 3 && !memcmp(p, "\xef\xbb\xbf", 3))
		p += 3;
	while (p < end) {
		if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
			p++;
		} else if (*p == '#' || *p == '%' || (end - p >= 3 && !memcmp(p, "---", 3))) {
			if (*p == '-')
				p += 3;
			else
				while (p < end && *p != '\n')
					p++;
		} else {
			return *p == '{';
		}
	}
	return false;
}

/* The lines of the top-level outputPorts section, replaced when served
 * (0 when absent); -1 when other keys share those lines (flow style). */
static int outputs_lines(const struct ynode *root, int *first, int *last)
{
	*first = *last = 0;
	for (size_t i = 0; i < root->n; i++)
		if (!strcmp(root->keys[i]->text, "outputPorts")) {
			*first = root->keys[i]->line;
			*last = i + 1 < root->n ? root->keys[i + 1]->line - 1 : INT_MAX;
		}
	for (size_t i = 0; *first && i < root->n; i++)
		if (strcmp(root->keys[i]->text, "outputPorts") && root->keys[i]->line >= *first &&
		    root->keys[i]->line <= *last)
			return -1;
	return 0;
}

int descriptor_parse(const char *text, size_t len, const char *path, struct descriptor **out,
		     struct mesh_err *err)
{
	*out = NULL;
	struct ytree_limits lim = {DESCRIPTOR_MAX_BYTES, 64, 100000};
	struct ynode *root = NULL;
	int rc = yamltree_parse(text, len, path, &lim, &root, err);
	if (rc)
		return rc;
	if (!root || root->kind != Y_MAPPING) {
		yamltree_free(root);
		return mesh_errf(err, -EINVAL, "%s:1:1: expected an ODPS product descriptor (a mapping with "
				 "apiVersion, kind: DataProduct, id, status)", path);
	}
	struct checker ck = {.path = path, .version_bit = V10, .problems = STRBUF_INIT};
	const struct ynode *api = ymap_get(root, "apiVersion");
	const char *api_text = yscalar(api);
	if (api_text && !strcmp(api_text, "v1.1.0"))
		ck.version_bit = V11;
	else if (api_text && strcmp(api_text, "v1.0.0"))
		problem(&ck, api, "apiVersion", "\"%s\" is not an ODPS v1.x version meshfs reads (v1.0.0, v1.1.0)",
			api_text);
	const char *kind = yscalar(ymap_get(root, "kind"));
	if (kind && strcmp(kind, "DataProduct"))
		problem(&ck, ymap_get(root, "kind"), "kind", "expected DataProduct, found \"%s\"", kind);
	check_object(&ck, root, &top_o, "");
	int first = 0, last = 0;
	if (flow_document(text, len))
		problem(&ck, root, "(document)", "write the descriptor in block style (key: value lines), not as "
			"{...}: meshfs replaces its outputPorts section with the versions it publishes");
	else if (outputs_lines(root, &first, &last))
		problem(&ck, ymap_get(root, "outputPorts"), "outputPorts", "write the descriptor in block style: "
			"meshfs replaces outputPorts with the versions it publishes");
	if (ck.n) {
		rc = mesh_errf(err, -EINVAL, "%s", ck.problems.buf);
		strbuf_release(&ck.problems);
		yamltree_free(root);
		return rc;
	}
	strbuf_release(&ck.problems);
	struct descriptor *d = xcalloc(1, sizeof *d);
	d->path = xstrdup(path);
	d->text = xstrndup(text, len);
	d->len = len;
	read_fields(d, root);
	d->outputs_first = first;
	d->outputs_last = last;
	yamltree_free(root);
	*out = d;
	return 0;
}

static void free_list(char **l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(l[i]);
	free(l);
}

void descriptor_free(struct descriptor *d)
{
	if (!d)
		return;
	free(d->path);
	free(d->api_version);
	free(d->kind);
	free(d->id);
	free(d->name);
	free(d->version);
	free(d->status);
	free(d->domain);
	free(d->purpose);
	free(d->usage);
	free(d->limitations);
	free_list(d->tags, d->n_tags);
	free_list(d->owners, d->n_owners);
	free_list(d->inputs, d->n_inputs);
	free_list(d->foreign_inputs, d->n_foreign);
	free(d->text);
	free(d);
}

int descriptor_load_stored(int root_fd, const char *domain, const char *product, struct descriptor **out,
			   struct mesh_err *err)
{
	*out = NULL;
	char rel[PATH_MAX];
	snprintf(rel, sizeof rel, "domains/%s/%s/" DESCRIPTOR_STORED, domain, product);
	char *text = NULL;
	size_t len = 0;
	int rc = mesh_read_file_at(root_fd, rel, DESCRIPTOR_MAX_BYTES, &text, &len, err);
	if (rc)
		return rc;
	rc = descriptor_parse(text, len, rel, out, err);
	free(text);
	return rc;
}

int descriptor_check_release(const struct descriptor *d, const struct contract *c, struct mesh_err *err)
{
	if (d->domain && strcmp(d->domain, c->domain))
		return mesh_errf(err, -EINVAL, "%s: domain: \"%s\", but the release's contract is of domain %s",
				 d->path, d->domain, c->domain);
	return 0;
}

/* ---- rendering ---- */

void descriptor_product_uuid(const char *domain, const char *product, char out[37])
{
	/* RFC 4122 4.3: SHA-1 over the namespace (URL: 6ba7b811-...) and the name */
	static const unsigned char ns_url[16] = {0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1,
						 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8};
	char name[2 * MESH_NAME_MAX + 32];
	snprintf(name, sizeof name, "meshfs:product:%s/%s", domain, product);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_DigestInit_ex(ctx, EVP_sha1(), NULL);
	EVP_DigestUpdate(ctx, ns_url, sizeof ns_url);
	EVP_DigestUpdate(ctx, name, strlen(name));
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	md[6] = (unsigned char)((md[6] & 0x0f) | 0x50);
	md[8] = (unsigned char)((md[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", md[0], md[1],
		 md[2], md[3], md[4], md[5], md[6], md[7], md[8], md[9], md[10], md[11], md[12], md[13], md[14],
		 md[15]);
}

/* A YAML double-quoted scalar. */
static void yq(struct strbuf *sb, const char *s)
{
	strbuf_puts(sb, "\"");
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			strbuf_printf(sb, "\\%c", c);
		else if (c == '\n')
			strbuf_puts(sb, "\\n");
		else if (c < 0x20)
			strbuf_printf(sb, "\\x%02x", c);
		else
			strbuf_add(sb, s, 1);
	}
	strbuf_puts(sb, "\"");
}

/* Bytes of the line at p with its break, counting breaks as YAML (and
 * so yamltree's line numbers) do: \n, \r\n, \r, NEL, LS and PS. */
static size_t line_length(const char *p, const char *end)
{
	for (const char *q = p; q < end; q++) {
		unsigned char c = (unsigned char)*q;
		if (c == '\n')
			return (size_t)(q - p) + 1;
		if (c == '\r')
			return (size_t)(q - p) + 1 + (q + 1 < end && q[1] == '\n');
		if (c == 0xc2 && q + 1 < end && (unsigned char)q[1] == 0x85)
			return (size_t)(q - p) + 2;
		if (c == 0xe2 && q + 2 < end && (unsigned char)q[1] == 0x80 &&
		    ((unsigned char)q[2] == 0xa8 || (unsigned char)q[2] == 0xa9))
			return (size_t)(q - p) + 3;
	}
	return (size_t)(end - p);
}

static void render_ports(struct strbuf *sb, const char *product, const struct descriptor_port *ports, size_t n)
{
	strbuf_puts(sb, "# outputPorts: the versions meshfs has published (generated)\noutputPorts:");
	strbuf_puts(sb, n ? "\n" : " []\n");
	for (size_t i = 0; i < n; i++) {
		strbuf_puts(sb, "  - name: ");
		yq(sb, product);
		strbuf_puts(sb, "\n    version: ");
		yq(sb, ports[i].version);
		strbuf_puts(sb, "\n    type: files\n");
		if (ports[i].contract_id && *ports[i].contract_id) {
			strbuf_puts(sb, "    contractId: ");
			yq(sb, ports[i].contract_id);
			strbuf_puts(sb, "\n");
		}
		if (ports[i].status && strcmp(ports[i].status, "active"))
			strbuf_puts(sb, "    deprecated: true\n");
		strbuf_printf(sb, "    customProperties:\n      - property: meshStatus\n        value: %s\n",
			      ports[i].status ? ports[i].status : "active");
	}
}

char *descriptor_render(const struct descriptor *d, const struct contract *latest, const char *domain,
			const char *product, const char *product_status, const struct descriptor_port *ports,
			size_t n_ports)
{
	struct strbuf sb = STRBUF_INIT;
	if (d) {
		/* the publisher's text, line by line, without its outputPorts */
		const char *p = d->text, *end = d->text + d->len;
		int line = 1;
		while (p < end) {
			size_t n = line_length(p, end);
			if (!(d->outputs_first && line >= d->outputs_first && line <= d->outputs_last))
				strbuf_add(&sb, p, n);
			p += n;
			line++;
		}
		if (sb.len && sb.buf[sb.len - 1] != '\n')
			strbuf_puts(&sb, "\n");
		render_ports(&sb, product, ports, n_ports);
		return strbuf_detach(&sb, NULL);
	}
	char uuid[37];
	descriptor_product_uuid(domain, product, uuid);
	strbuf_printf(&sb, "# Derived by meshfs from the contract of the latest release\n"
		      "# (ship product.yaml in a release to write your own).\n"
		      "apiVersion: v1.1.0\nkind: DataProduct\nid: %s\nname: ", uuid);
	yq(&sb, latest && latest->name ? latest->name : product);
	strbuf_puts(&sb, "\nstatus: ");
	yq(&sb, product_status ? product_status : "active");
	strbuf_puts(&sb, "\ndomain: ");
	yq(&sb, domain);
	strbuf_puts(&sb, "\n");
	if (latest && (latest->purpose || latest->usage || latest->limitations)) {
		strbuf_puts(&sb, "description:\n");
		const char *keys[] = {"purpose", "usage", "limitations"};
		const char *vals[] = {latest->purpose, latest->usage, latest->limitations};
		for (int i = 0; i < 3; i++)
			if (vals[i]) {
				strbuf_printf(&sb, "  %s: ", keys[i]);
				yq(&sb, vals[i]);
				strbuf_puts(&sb, "\n");
			}
	}
	if (latest && latest->n_tags) {
		strbuf_puts(&sb, "tags:\n");
		for (size_t i = 0; i < latest->n_tags; i++) {
			strbuf_puts(&sb, "  - ");
			yq(&sb, latest->tags[i]);
			strbuf_puts(&sb, "\n");
		}
	}
	if (latest && latest->n_owners) {
		strbuf_puts(&sb, "team:\n  members:\n");
		for (size_t i = 0; i < latest->n_owners; i++) {
			const char *s = latest->owners[i].subject;
			strbuf_puts(&sb, "    - username: ");
			yq(&sb, !strncmp(s, "user:", 5) ? s + 5 : s);
			strbuf_puts(&sb, "\n      role: owner\n");
		}
	}
	if (latest && latest->n_inputs) {
		strbuf_puts(&sb, "inputPorts:\n");
		for (size_t i = 0; i < latest->n_inputs; i++) {
			struct lineage_input in;
			if (lineage_input_parse(latest->inputs[i], &in, NULL))
				continue;
			strbuf_printf(&sb, "  - name: %s/%s\n", in.domain, in.product);
			if (in.range[0]) {
				strbuf_puts(&sb, "    version: ");
				yq(&sb, in.range);
				strbuf_puts(&sb, "\n");
			}
		}
	}
	if (latest && latest->n_support) {
		strbuf_puts(&sb, "customProperties:\n  - property: meshSupport\n    value:\n");
		for (size_t i = 0; i < latest->n_support; i++) {
			strbuf_puts(&sb, "      - ");
			yq(&sb, latest->support_channels[i]);
			strbuf_puts(&sb, "\n");
		}
	}
	render_ports(&sb, product, ports, n_ports);
	return strbuf_detach(&sb, NULL);
}

/* ---- in the store ---- */

int descriptor_refresh(const char *store, const struct catalog *known, const char *domain, const char *product,
		       const char *new_text, size_t new_len, struct mesh_err *err)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/domains/%s/%s", store, domain, product);
	int pfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (pfd < 0)
		return mesh_errf(err, -errno, "%s: %s", path, strerror(errno));
	int rc = 0;
	if (new_text)
		rc = mesh_write_file_atomic(pfd, DESCRIPTOR_STORED, new_text, new_len, STORE_FILE_MODE, err);
	struct catalog *cat = NULL;
	if (!rc && !known)
		rc = catalog_scan(store, NULL, &cat, err);
	const struct cat_node *pnode = NULL;
	if (!rc) {
		snprintf(path, sizeof path, "%s/%s", domain, product);
		pnode = catalog_resolve(known ? known : cat, path);
	}
	if (!rc && pnode && pnode->kind == CAT_PRODUCT) {
		/* output ports in SemVer order, with contract ids from the manifests */
		struct descriptor_port *ports = xcalloc(pnode->n_children + 1, sizeof *ports);
		struct manifest **ms = xcalloc(pnode->n_children + 1, sizeof *ms);
		size_t n = 0;
		for (uint32_t i = 0; i < pnode->n_children; i++) {
			const struct cat_node *v = pnode->children[i];
			if (v->kind != CAT_VERSION)
				continue;
			char mpath[PATH_MAX];
			snprintf(mpath, sizeof mpath, "%s/" STORE_MANIFEST, v->name);
			manifest_load_at(pfd, mpath, &ms[n], NULL);
			ports[n] = (struct descriptor_port){v->name, ms[n] ? ms[n]->contract_id : NULL,
							    lifecycle_name(v->state)};
			n++;
		}
		for (size_t a = 1; a < n; a++)
			for (size_t b = a; b > 0 && semver_cmp_str(ports[b].version, ports[b - 1].version) < 0; b--) {
				struct descriptor_port t = ports[b];
				ports[b] = ports[b - 1];
				ports[b - 1] = t;
			}
		const struct cat_node *latest = catalog_latest(pnode);
		struct descriptor *d = NULL;
		int root_fd = open(store, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		int drc = root_fd >= 0 ? descriptor_load_stored(root_fd, domain, product, &d, NULL) : -ENOENT;
		struct contract *c = NULL;
		if (drc && latest) {
			const struct cat_node *cf = catalog_child(latest, "contract.yaml");
			char *text = NULL;
			size_t len = 0;
			if (cf && !mesh_read_file_at(root_fd, cf->backing, CONTRACT_MAX_BYTES, &text, &len, NULL))
				contract_parse(text, len, cf->backing, &c, NULL);
			free(text);
		}
		if (root_fd >= 0)
			close(root_fd);
		char *out = descriptor_render(drc ? NULL : d, c, domain, product,
					      latest ? lifecycle_name(latest->state) : "retired", ports, n);
		rc = mesh_write_file_replace(pfd, DESCRIPTOR_SERVED, out, strlen(out), STORE_FILE_MODE, err);
		free(out);
		contract_free(c);
		descriptor_free(d);
		for (size_t i = 0; i < n; i++)
			manifest_free(ms[i]);
		free(ms);
		free(ports);
	} else if (!rc) {
		unlinkat(pfd, DESCRIPTOR_SERVED, 0);   /* every version retired: nothing to serve */
	}
	catalog_unref(cat);
	close(pfd);
	return rc;
}
