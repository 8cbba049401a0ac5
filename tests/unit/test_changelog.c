/* Unit tests for the store's change log: a reader with no position must
 * walk; from a position it gets exactly the products changed since, each
 * once, and nothing the second time; retention removes only this host's
 * old buckets and a reader whose position was pruned away is told to walk;
 * entries that are not "domain/product\n" are refused. */
#include "changelog.h"
#include "check.h"
#include "mesh_util.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char store[256];

static bool has_key(const struct changelog_read *r, const char *key)
{
	for (size_t i = 0; i < r->n_keys; i++)
		if (!strcmp(r->keys[i], key))
			return true;
	return false;
}

static void host_dir(char *out, size_t size)
{
	char host[256] = "";
	gethostname(host, sizeof host - 1);
	for (char *p = host; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '.' || *p == '-' || *p == '_'))
			*p = '_';
	snprintf(out, size, "%s/" CHANGELOG_DIR "/%s", store, host);
}

int main(void)
{
	snprintf(store, sizeof store, "/tmp/test_changelog.%d", (int)getpid());
	struct mesh_err err = {0};
	CHECK(store_init(store, "kind: MeshPolicy\n", &err) == 0);
	struct changelog_read r;
	/* no log yet: incomplete, empty position */
	CHECK(changelog_read_since(store, NULL, &r, &err) == 0);
	CHECK(!r.complete && r.n_keys == 0);
	changelog_read_free(&r);
	CHECK(changelog_append(store, "sales", "orders", &err) == 0);
	CHECK(changelog_append(store, "sales", "../x", &err) == -EINVAL);
	/* a position from a walk: incomplete (no position given), but it knows this host */
	CHECK(changelog_read_since(store, NULL, &r, &err) == 0);
	CHECK(!r.complete && r.cursor && strchr(r.cursor, ' '));
	char *pos = xstrdup(r.cursor);
	changelog_read_free(&r);
	/* nothing new since */
	CHECK(changelog_read_since(store, pos, &r, &err) == 0);
	CHECK(r.complete && r.n_keys == 0);
	changelog_read_free(&r);
	CHECK(changelog_append(store, "sales", "customers", &err) == 0);
	CHECK(changelog_append(store, "hr", "people", &err) == 0);
	CHECK(changelog_append(store, "sales", "customers", &err) == 0);
	CHECK(changelog_read_since(store, pos, &r, &err) == 0);
	CHECK(r.complete && r.n_keys == 2 && has_key(&r, "sales/customers") && has_key(&r, "hr/people"));
	CHECK(!has_key(&r, "sales/orders"));      /* read before, within the margin: not again */
	free(pos);
	pos = xstrdup(r.cursor);
	changelog_read_free(&r);
	CHECK(changelog_read_since(store, pos, &r, &err) == 0);
	CHECK(r.complete && r.n_keys == 0);
	changelog_read_free(&r);
	/* a host the position does not know: walk */
	char path[600], cmd[4096];
	snprintf(path, sizeof path, "%s/" CHANGELOG_DIR "/otherhost/20261201T1200", store);
	snprintf(cmd, sizeof cmd, "mkdir -p %s && printf 'hr/pay\\n' > %s/1796120000000000000.1.00000000", path, path);
	CHECK(system(cmd) == 0);
	CHECK(changelog_read_since(store, pos, &r, &err) == 0);
	CHECK(!r.complete);
	free(pos);
	pos = xstrdup(r.cursor);
	changelog_read_free(&r);
	CHECK(changelog_read_since(store, pos, &r, &err) == 0);
	CHECK(r.complete && r.n_keys == 0);
	changelog_read_free(&r);
	/* a damaged entry: incomplete (walk), never a bad name */
	snprintf(cmd, sizeof cmd, "printf 'hr/../../etc\\n' > %s/1796120000000000001.1.00000000", path);
	CHECK(system(cmd) == 0);
	CHECK(changelog_read_since(store, pos, &r, &err) == 0);
	CHECK(!r.complete && r.n_keys == 0);
	changelog_read_free(&r);
	/* retention: this host's buckets older than the limit go when a new
	 * bucket opens, the marker first; another host's stay */
	char mine[512];
	host_dir(mine, sizeof mine);
	snprintf(cmd, sizeof cmd,
		 "rm -rf %s/2* && mkdir -p %s/20200101T0000 %s/" CHANGELOG_DIR "/otherhost/20200101T0000 && "
		 "printf 'sales/old\\n' > %s/20200101T0000/1577836800000000000.1.00000000",
		 mine, mine, store, mine);
	CHECK(system(cmd) == 0);
	char *old_pos = xstrdup("x 1\n");
	{
		/* a position in 2020 for this host */
		char host[256];
		snprintf(host, sizeof host, "%s", strrchr(mine, '/') + 1);
		free(old_pos);
		size_t len = strlen(host) + 64;
		old_pos = xmalloc(len);
		snprintf(old_pos, len, "%s 1577836800000000000\notherhost 1796120000000000001\n", host);
	}
	CHECK(changelog_read_since(store, old_pos, &r, &err) == 0);
	CHECK(has_key(&r, "sales/old") || r.n_keys == 0);
	changelog_read_free(&r);
	CHECK(changelog_append(store, "sales", "orders", &err) == 0);
	struct stat st;
	snprintf(path, sizeof path, "%s/20200101T0000", mine);
	CHECK(stat(path, &st) < 0 && errno == ENOENT);
	snprintf(path, sizeof path, "%s/" CHANGELOG_DIR "/otherhost/20200101T0000", store);
	CHECK(stat(path, &st) == 0);
	char *marker = NULL;
	size_t len = 0;
	snprintf(path, sizeof path, "%s/.pruned", mine);
	CHECK(mesh_read_file_at(AT_FDCWD, path, 64, &marker, &len, &err) == 0);
	CHECK_STR(marker, "20200101T0000\n");
	free(marker);
	CHECK(changelog_read_since(store, old_pos, &r, &err) == 0);
	CHECK(!r.complete);                        /* its position was pruned away */
	changelog_read_free(&r);
	free(old_pos);
	free(pos);
	/* the entry parser */
	char d[65], p[65];
	CHECK(changelog_entry_parse("a/b\n", 4, d, p) == 0 && !strcmp(d, "a") && !strcmp(p, "b"));
	CHECK(changelog_entry_parse("a/b", 3, d, p) == -EINVAL);
	CHECK(changelog_entry_parse("a/b/c\n", 6, d, p) == -EINVAL);
	CHECK(changelog_entry_parse("/b\n", 3, d, p) == -EINVAL);
	CHECK(changelog_entry_parse("A/b\n", 4, d, p) == -EINVAL);
	CHECK(changelog_entry_parse("a/\n", 3, d, p) == -EINVAL);
	snprintf(cmd, sizeof cmd, "rm -rf %s", store);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot clean up %s\n", store);
	return check_done("test_changelog");
}
