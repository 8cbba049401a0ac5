/*
 * config_file.h - the daemon's configuration file (/etc/meshfs.yaml or
 * -o config=PATH): a YAML mapping of the daemon's -o options, plus the
 * store and the mount point, so that ops can keep a host's settings in one
 * reviewable file and a unit can say just `meshfs -f`.
 *
 *     store: /srv/mesh
 *     mountpoint: /mesh
 *     allow_other: true
 *     poll: 2
 *     log_level: notice
 *
 * Precedence: the command line over the file over the defaults.  The file
 * is turned into -o options placed before the command line's, so a later
 * (command line) value wins.  Every key is checked (name and type) and an
 * error names file:line.  Which keys apply without a restart (SIGHUP) is
 * config_key_live().
 *
 * Not here: what the options mean (meshfs.c, daemon.h), SIGHUP handling.
 * Thread-safety: none needed; a loaded file is immutable.
 */
#ifndef CONFIG_FILE_H
#define CONFIG_FILE_H

#include <stdbool.h>
#include <stddef.h>

#include "mesh_err.h"

#define CONFIG_DEFAULT_PATH "/etc/meshfs.yaml"

struct config_file {
	char *path;
	char *store, *mountpoint;      /* NULL when the file does not say */
	size_t n;                      /* options, as for -o: "poll=2", "allow_other" */
	char **options;                /* each escaped for a -o group (commas) */
	char **keys, **values;         /* the same, unescaped: key, value ("" for flags) */
	int *lines;                    /* where each key is */
};

/* Load `path`.  A missing file is an error only when must_exist (an
 * explicit -o config=); otherwise *out is an empty configuration.  A key
 * that is unknown, of the wrong type, or a flag set to false is refused
 * (false is the default: leave it out), with path:line in err.
 * Free with config_file_free(). */
int config_file_load(const char *path, bool must_exist, struct config_file **out, struct mesh_err *err);
void config_file_free(struct config_file *c);

/* The value of `key` in c ("" for a flag that is set), or NULL. */
const char *config_file_get(const struct config_file *c, const char *key);

/* Does a change of `key` take effect at SIGHUP (true) or at the next
 * start (false)? */
bool config_key_live(const char *key);

/* The path given by -o config=PATH in argv (the last one), or NULL. */
const char *config_path_from_args(int argc, char **argv);

/* "err", "warning", "notice", "info", "debug" -> LOG_ERR... ; -EINVAL. */
int config_log_level(const char *name, int *level);

#endif
