/*
 * config_file.c - reading the daemon's configuration file into -o options
 * (contract in include/config_file.h).
 *
 * Not here: applying options (meshfs.c), reloading (meshfs.c on SIGHUP).
 */
#include "config_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "mesh_util.h"
#include "yamltree.h"

enum key_type { K_FLAG, K_INT, K_NUMBER, K_STRING };

static const struct key {
	const char *name;
	enum key_type type;
	bool live;                     /* applied at SIGHUP */
} keys[] = {
	{"store", K_STRING, false},
	{"mountpoint", K_STRING, false},
	{"allow_other", K_FLAG, false},
	{"open_mesh", K_FLAG, false},
	{"poll", K_NUMBER, true},
	{"max_threads", K_INT, false},
	{"passthrough", K_STRING, false},
	{"usage_dir", K_STRING, false},
	{"hostname", K_STRING, false},
	{"usage_slots", K_INT, false},
	{"usage_sink", K_STRING, false},
	{"metrics", K_STRING, false},
	{"no_usage", K_FLAG, false},
	{"socket", K_STRING, false},
	{"meshctl", K_STRING, false},
	{"no_service", K_FLAG, false},
	{"max_clients", K_INT, false},
	{"log_level", K_STRING, true},
	{"insecure_store", K_FLAG, false},
	{"view_cache", K_STRING, false},
	{"view_cache_max", K_STRING, false},
	{"release_cache", K_INT, false},
};

static const struct key *find_key(const char *name)
{
	for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
		if (!strcmp(keys[i].name, name))
			return &keys[i];
	return NULL;
}

bool config_key_live(const char *key)
{
	const struct key *k = find_key(key);
	return k && k->live;
}

int config_log_level(const char *name, int *level)
{
	static const struct {
		const char *name;
		int level;
	} levels[] = {{"err", LOG_ERR}, {"error", LOG_ERR}, {"warning", LOG_WARNING}, {"notice", LOG_NOTICE},
		      {"info", LOG_INFO}, {"debug", LOG_DEBUG}};
	for (size_t i = 0; name && i < sizeof levels / sizeof *levels; i++)
		if (!strcmp(levels[i].name, name)) {
			*level = levels[i].level;
			return 0;
		}
	return -EINVAL;
}

/* key=value with ',' and '\' escaped for a fuse_opt -o group */
static char *option_text(const char *key, const char *value, bool flag)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_puts(&sb, key);
	if (!flag) {
		strbuf_puts(&sb, "=");
		for (const char *p = value; *p; p++) {
			if (*p == ',' || *p == '\\')
				strbuf_puts(&sb, "\\");
			strbuf_add(&sb, p, 1);
		}
	}
	return strbuf_detach(&sb, NULL);
}

static void add(struct config_file *c, const char *key, const char *value, bool flag, int line)
{
	c->options = xrealloc(c->options, (c->n + 1) * sizeof *c->options);
	c->keys = xrealloc(c->keys, (c->n + 1) * sizeof *c->keys);
	c->values = xrealloc(c->values, (c->n + 1) * sizeof *c->values);
	c->lines = xrealloc(c->lines, (c->n + 1) * sizeof *c->lines);
	c->options[c->n] = option_text(key, value, flag);
	c->keys[c->n] = xstrdup(key);
	c->values[c->n] = xstrdup(flag ? "" : value);
	c->lines[c->n] = line;
	c->n++;
}

static int check_entry(struct config_file *c, const struct ynode *kn, const struct ynode *vn, struct mesh_err *err)
{
	const char *name = kn->text;
	const struct key *k = find_key(name);
	if (!k) {
		struct strbuf known = STRBUF_INIT;
		for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
			strbuf_printf(&known, "%s%s", i ? ", " : "", keys[i].name);
		int rc = mesh_errf(err, -EINVAL, "%s:%d: unknown key '%s' (known: %s)", c->path, kn->line, name,
				   known.buf);
		strbuf_release(&known);
		return rc;
	}
	if (vn->kind != Y_SCALAR || !yscalar(vn))
		return mesh_errf(err, -EINVAL, "%s:%d: %s: expected a single value", c->path, vn->line, name);
	const char *v = yscalar(vn);
	double num;
	switch (k->type) {
	case K_FLAG: {
		int b = ybool(vn);
		if (b < 0)
			return mesh_errf(err, -EINVAL, "%s:%d: %s: expected true or false, not '%s'", c->path, vn->line,
					 name, v);
		if (b)
			add(c, name, "", true, vn->line);
		return 0;
	}
	case K_INT:
		if (ynumber(vn, &num) || num != (double)(long)num || num < 0 || num > 1e9)
			return mesh_errf(err, -EINVAL, "%s:%d: %s: expected a whole number, not '%s'", c->path, vn->line,
					 name, v);
		break;
	case K_NUMBER:
		if (ynumber(vn, &num) || !(num > 0) || num > 86400)
			return mesh_errf(err, -EINVAL, "%s:%d: %s: expected a number of seconds (0 < n <= 86400), not '%s'",
					 c->path, vn->line, name, v);
		break;
	case K_STRING:
		if (!*v || strlen(v) > 4096 || strchr(v, '\n'))
			return mesh_errf(err, -EINVAL, "%s:%d: %s: expected a non-empty one-line value", c->path,
					 vn->line, name);
		break;
	}
	int level;
	if (!strcmp(name, "log_level") && config_log_level(v, &level))
		return mesh_errf(err, -EINVAL, "%s:%d: log_level: '%s' is not err, warning, notice, info or debug",
				 c->path, vn->line, v);
	if (!strcmp(name, "store")) {
		free(c->store);
		c->store = xstrdup(v);
	} else if (!strcmp(name, "mountpoint")) {
		free(c->mountpoint);
		c->mountpoint = xstrdup(v);
	} else {
		add(c, name, v, false, vn->line);
	}
	return 0;
}

int config_file_load(const char *path, bool must_exist, struct config_file **out, struct mesh_err *err)
{
	*out = NULL;
	struct config_file *c = xcalloc(1, sizeof *c);
	c->path = xstrdup(path);
	char *text = NULL;
	size_t len = 0;
	struct mesh_err rerr = {0};
	int rc = mesh_read_file_at(AT_FDCWD, path, 1u << 20, &text, &len, &rerr);
	if (rc == -ENOENT && !must_exist) {
		*out = c;
		return 0;
	}
	if (rc) {
		config_file_free(c);
		return mesh_errf(err, rc, "%s: %s", path, strerror(-rc));
	}
	static const struct ytree_limits limits = {1u << 20, 8, 10000};
	struct ynode *root = NULL;
	rc = yamltree_parse(text, len, path, &limits, &root, err);
	free(text);
	if (!rc && root && root->kind != Y_MAPPING)
		rc = mesh_errf(err, -EINVAL, "%s:%d: expected a mapping of option: value", path, root->line);
	for (size_t i = 0; !rc && root && i < root->n; i++)
		rc = check_entry(c, root->keys[i], root->items[i], err);
	yamltree_free(root);
	if (rc) {
		config_file_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

const char *config_file_get(const struct config_file *c, const char *key)
{
	if (!c)
		return NULL;
	if (!strcmp(key, "store"))
		return c->store;
	if (!strcmp(key, "mountpoint"))
		return c->mountpoint;
	for (size_t i = 0; i < c->n; i++)
		if (!strcmp(c->keys[i], key))
			return c->values[i];
	return NULL;
}

void config_file_free(struct config_file *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++) {
		free(c->options[i]);
		free(c->keys[i]);
		free(c->values[i]);
	}
	free(c->options);
	free(c->keys);
	free(c->values);
	free(c->lines);
	free(c->store);
	free(c->mountpoint);
	free(c->path);
	free(c);
}

/* -o a,config=PATH,b  or  -oconfig=PATH: the last one wins (as fuse_opt). */
const char *config_path_from_args(int argc, char **argv)
{
	static char found[4096];
	const char *result = NULL;
	for (int i = 1; i < argc; i++) {
		const char *group = NULL;
		if (!strcmp(argv[i], "-o") && i + 1 < argc)
			group = argv[++i];
		else if (!strncmp(argv[i], "-o", 2) && argv[i][2])
			group = argv[i] + 2;
		for (const char *p = group; p && *p;) {
			const char *end = p;
			while (*end && *end != ',')
				end += *end == '\\' && end[1] ? 2 : 1;
			if (!strncmp(p, "config=", 7) && (size_t)(end - p - 7) < sizeof found) {
				size_t k = 0;
				for (const char *q = p + 7; q < end; q++) {
					if (*q == '\\' && q + 1 < end)
						q++;
					found[k++] = *q;
				}
				found[k] = '\0';
				result = found;
			}
			p = *end ? end + 1 : end;
		}
	}
	return result;
}
