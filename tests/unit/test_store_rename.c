/* Unit tests for installing on filesystems without rename flags (the
 * fallback of store_rename.c, with renameat2 failing as on NFS, CephFS and
 * GlusterFS), concurrent installs of one version, and per-version
 * lifecycle records written by concurrent processes. */
#include "check.h"
#include "mesh_util.h"
#include "store.h"
#include "store_rename.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char store[256];
static int hook_calls;

static int renameat2_einval(int a, const char *b, int c, const char *d, unsigned int flags)
{
	(void)a, (void)b, (void)c, (void)d, (void)flags;
	hook_calls++;
	errno = EINVAL;
	return -1;
}

static int install_err(const char *product, const char *version, struct mesh_err *err)
{
	static const char data[] = "a,b\n1,2\n";
	struct release_file files[] = {
		{.name = "data.csv", .role = ROLE_DATA, .content = data, .content_len = sizeof data - 1},
		{.name = "contract.yaml", .role = ROLE_CONTRACT, .content = "x: 1\n", .content_len = 5},
	};
	struct release_spec spec = {.domain = "sales", .product = product, .version = version,
				    .src_dirfd = AT_FDCWD, .files = files, .n_files = 2};
	return store_install_release(store, &spec, NULL, err);
}

static int install(const char *product, const char *version)
{
	struct mesh_err err = {0};
	return install_err(product, version, &err);
}

static int count_prefix(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	int n = 0;
	struct dirent *de;
	while (d && (de = readdir(d)))
		n += !strncmp(de->d_name, prefix, strlen(prefix));
	if (d)
		closedir(d);
	return n;
}

static void test_fallback_direct(void)
{
	char base[300], path[400];
	snprintf(base, sizeof base, "%s/direct", store);
	CHECK(mkdir(base, 0755) == 0);
	int dfd = open(base, O_RDONLY | O_DIRECTORY);
	CHECK(mkdirat(dfd, "stage", 0755) == 0);
	CHECK(mkdirat(dfd, "stage/file", 0755) == 0);
	int sfd = openat(dfd, "stage", O_RDONLY | O_DIRECTORY);
	int fallback = 0;
	struct mesh_err err = {0};
	CHECK(store_rename_noreplace(dfd, "stage", sfd, "v1", &fallback, &err) == 0);
	CHECK(fallback == 1);
	/* a second staged directory onto the installed one: refused */
	CHECK(mkdirat(dfd, "stage2", 0755) == 0);
	CHECK(mkdirat(dfd, "stage2/file", 0755) == 0);
	int s2 = openat(dfd, "stage2", O_RDONLY | O_DIRECTORY);
	CHECK(store_rename_noreplace(dfd, "stage2", s2, "v1", &fallback, &err) == -EEXIST);
	CHECK_CONTAINS(err.msg, "already exists");
	snprintf(path, sizeof path, "%s/stage2", base);
	CHECK(access(path, F_OK) == 0);        /* the loser keeps its staging to remove */
	/* onto a regular file: refused too */
	int fd = openat(dfd, "v2", O_CREAT | O_WRONLY, 0644);
	close(fd);
	CHECK(store_rename_noreplace(dfd, "stage2", s2, "v2", &fallback, &err) == -EEXIST);
	/* an empty directory is not a release: it may be replaced */
	CHECK(mkdirat(dfd, "v3", 0755) == 0);
	CHECK(store_rename_noreplace(dfd, "stage2", s2, "v3", &fallback, &err) == 0);
	close(s2);
	close(sfd);
	close(dfd);
}

static void test_install_fallback(void)
{
	hook_calls = 0;
	CHECK(install("orders", "1.0.0") == 0);
	CHECK(hook_calls == 1);
	CHECK(install("orders", "1.0.0") == -EEXIST);   /* seen before staging */
	char path[400];
	snprintf(path, sizeof path, "%s/domains/sales/orders/1.0.0/.manifest.json", store);
	CHECK(access(path, R_OK) == 0);
	snprintf(path, sizeof path, "%s/domains/sales/orders", store);
	CHECK(count_prefix(path, ".tmp-") == 0);
}

/* Processes racing for one version, each with renameat2 refused: one wins. */
static void test_race(const char *product, int rounds, int racers)
{
	char path[400];
	snprintf(path, sizeof path, "%s/domains/sales/%s", store, product);
	int bad_rounds = 0;
	for (int r = 0; r < rounds; r++) {
		char version[32];
		snprintf(version, sizeof version, "1.%d.0", r);
		int pipefd[2];
		CHECK(pipe(pipefd) == 0);
		pid_t pids[16];
		for (int i = 0; i < racers; i++) {
			pids[i] = fork();
			if (pids[i] == 0) {
				char go;
				close(pipefd[1]);
				if (read(pipefd[0], &go, 1) < 0)
					_exit(9);
				struct mesh_err e = {0};
				int rc = install_err(product, version, &e);
				if (rc && rc != -EEXIST)
					fprintf(stderr, "racer: %s\n", e.msg);
				_exit(rc == 0 ? 0 : rc == -EEXIST ? 1 : 2);
			}
		}
		close(pipefd[0]);
		close(pipefd[1]);            /* go: every racer reads EOF at once */
		int won = 0, lost = 0;
		for (int i = 0; i < racers; i++) {
			int st;
			waitpid(pids[i], &st, 0);
			int code = WIFEXITED(st) ? WEXITSTATUS(st) : 3;
			won += code == 0;
			lost += code == 1;
		}
		if (won != 1 || lost != racers - 1) {
			fprintf(stderr, "round %d: %d won, %d lost of %d\n", r, won, lost, racers);
			bad_rounds++;
		}
	}
	CHECK(bad_rounds == 0);
	CHECK(count_prefix(path, ".tmp-") == 0);
}

static void test_lifecycle_concurrent(void)
{
	for (int v = 0; v < 8; v++) {
		char version[32];
		snprintf(version, sizeof version, "2.%d.0", v);
		CHECK(install("life", version) == 0);
	}
	/* an older store's table: read, overridden by a record */
	char path[400];
	snprintf(path, sizeof path, "%s/domains/sales/life/.lifecycle.json", store);
	FILE *f = fopen(path, "w");
	fputs("{\"versions\": {\"2.0.0\": {\"state\": \"retired\"}, \"2.7.0\": {\"state\": \"deprecated\"}}}", f);
	fclose(f);
	pid_t pids[8];
	for (int v = 0; v < 8; v++) {
		pids[v] = fork();
		if (pids[v] == 0) {
			char version[32];
			snprintf(version, sizeof version, "2.%d.0", v);
			struct mesh_err err = {0};
			int rc = 0;
			for (int k = 0; k < 5 && !rc; k++)
				rc = store_set_lifecycle(store, "sales", "life", version,
							 v == 7 ? LC_ACTIVE : LC_DEPRECATED, NULL, "test", "tester", &err);
			_exit(rc ? 1 : 0);
		}
	}
	int failed = 0;
	for (int v = 0; v < 8; v++) {
		int st;
		waitpid(pids[v], &st, 0);
		failed += !WIFEXITED(st) || WEXITSTATUS(st);
	}
	CHECK(failed == 0);
	snprintf(path, sizeof path, "%s/domains/sales/life", store);
	int pfd = open(path, O_RDONLY | O_DIRECTORY);
	struct lifecycle_table t;
	struct mesh_err err = {0};
	CHECK(lifecycle_load_at(pfd, &t, &err) == 0);
	int deprecated = 0;
	for (int v = 0; v < 7; v++) {
		char version[32];
		snprintf(version, sizeof version, "2.%d.0", v);
		deprecated += lifecycle_of(&t, version) == LC_DEPRECATED;
	}
	CHECK(deprecated == 7);
	CHECK(lifecycle_of(&t, "2.7.0") == LC_ACTIVE);   /* the record overrides the old table */
	CHECK_STR(lifecycle_find(&t, "2.3.0")->reason, "test");
	lifecycle_table_free(&t);
	snprintf(path, sizeof path, "%s/domains/sales/life/.lifecycle", store);
	CHECK(count_prefix(path, ".tmp-") == 0);
	/* a damaged record fails loudly, never silently "active" */
	snprintf(path, sizeof path, "%s/domains/sales/life/.lifecycle/2.1.0.json", store);
	f = fopen(path, "w");
	fputs("[1,", f);
	fclose(f);
	CHECK(lifecycle_load_at(pfd, &t, &err) == -EINVAL);
	CHECK_CONTAINS(err.msg, "2.1.0.json");
	close(pfd);
}

int main(void)
{
	snprintf(store, sizeof store, "/tmp/test_store_rename.%d", (int)getpid());
	struct mesh_err err = {0};
	CHECK(store_init(store, "kind: MeshPolicy\n", &err) == 0);
	char path[512];
	snprintf(path, sizeof path, "%s/domains/sales", store);
	CHECK(mkdir(path, 0755) == 0);
	store_rename_set_hook(renameat2_einval);
	test_fallback_direct();
	test_install_fallback();
	test_race("race", 50, 4);
	store_rename_set_hook(NULL);
	test_race("race2", 10, 4);                /* RENAME_NOREPLACE itself */
	test_lifecycle_concurrent();
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf %s", store);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", store);
	return check_done("test_store_rename");
}
