/* Unit tests of config_file.h: keys and types, file:line errors, escaping
 * for a -o group, the -o config= scan, log levels, and pgsink_redact
 * (no password in what is logged). */
#include <errno.h>
#include <stdlib.h>
#include <syslog.h>
#include <unistd.h>

#include "check.h"
#include "config_file.h"
#include "pgsink.h"

static char *write_temp(const char *text)
{
	static char path[64];
	snprintf(path, sizeof path, "/tmp/meshfs-config-XXXXXX");
	int fd = mkstemp(path);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		abort();
	close(fd);
	return path;
}

static void test_load(void)
{
	char *path = write_temp("# comment\nstore: /srv/mesh\nmountpoint: /mesh\nallow_other: yes\nopen_mesh: false\n"
				"poll: 2.5\nhostname: 'a,b\\\\c'\nmax_threads: 8\n");
	struct config_file *c = NULL;
	struct mesh_err err = {0};
	CHECK(config_file_load(path, true, &c, &err) == 0);
	if (c) {
		CHECK_STR(c->store, "/srv/mesh");
		CHECK_STR(c->mountpoint, "/mesh");
		CHECK(c->n == 4);   /* allow_other, poll, hostname, max_threads: open_mesh false is left out */
		CHECK_STR(config_file_get(c, "allow_other"), "");
		CHECK(config_file_get(c, "open_mesh") == NULL);
		CHECK_STR(config_file_get(c, "poll"), "2.5");
		CHECK_STR(config_file_get(c, "hostname"), "a,b\\\\c");
		CHECK_STR(c->options[2], "hostname=a\\,b\\\\\\\\c");   /* escaped for fuse_opt */
		CHECK(c->lines[1] == 6);
	}
	config_file_free(c);
	unlink(path);
	/* a missing default file is an empty configuration; a named one is an error */
	CHECK(config_file_load("/nonexistent/meshfs.yaml", false, &c, &err) == 0 && c && c->n == 0);
	config_file_free(c);
	CHECK(config_file_load("/nonexistent/meshfs.yaml", true, &c, &err) == -ENOENT);
	CHECK_CONTAINS(err.msg, "/nonexistent/meshfs.yaml");
	config_file_free(NULL);
}

static void test_errors(void)
{
	static const struct {
		const char *text, *message;
	} cases[] = {
		{"poll: 1\nsurprise: 2\n", ":2: unknown key 'surprise'"},
		{"allow_other: 3\n", ":1: allow_other: expected true or false"},
		{"poll: -1\n", ":1: poll: expected a number of seconds"},
		{"max_clients: many\n", ":1: max_clients: expected a whole number"},
		{"log_level: chatty\n", ":1: log_level: 'chatty'"},
		{"socket: {a: 1}\n", ":1: socket: expected a single value"},
		{"- a\n- b\n", ":1: expected a mapping"},
		{"poll: [1\n", "meshfs-config-"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		char *path = write_temp(cases[i].text);
		struct config_file *c = NULL;
		struct mesh_err err = {0};
		CHECK(config_file_load(path, true, &c, &err) < 0 && c == NULL);
		CHECK_CONTAINS(err.msg, path);
		CHECK_CONTAINS(err.msg, cases[i].message);
		unlink(path);
	}
}

static void test_args_and_levels(void)
{
	char *argv1[] = {"meshfs", "/s", "/m", "-o", "ro,config=/etc/a.yaml,poll=1", "-oconfig=/etc/b\\,c.yaml", NULL};
	CHECK_STR(config_path_from_args(6, argv1), "/etc/b,c.yaml");
	char *argv2[] = {"meshfs", "/s", "/m", "-o", "allow_other", NULL};
	CHECK(config_path_from_args(5, argv2) == NULL);
	int level = -1;
	CHECK(config_log_level("notice", &level) == 0 && level == LOG_NOTICE);
	CHECK(config_log_level("loud", &level) == -EINVAL);
	CHECK(config_key_live("poll") && config_key_live("log_level") && !config_key_live("max_threads"));
}

static void test_redact(void)
{
	char out[256];
	pgsink_redact("postgresql://meshfs:s3cret@db.example:5433/mesh?sslmode=require", out, sizeof out);
	CHECK_STR(out, "postgresql://meshfs@db.example:5433/mesh");
	pgsink_redact("host=/run/postgresql dbname=mesh password=s3cret", out, sizeof out);
	CHECK(strstr(out, "s3cret") == NULL);
	CHECK_CONTAINS(out, "/run/postgresql");
}

int main(void)
{
	test_load();
	test_errors();
	test_args_and_levels();
	test_redact();
	return check_done("test_config_file");
}
