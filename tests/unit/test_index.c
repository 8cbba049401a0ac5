/* Unit tests for the per-host index: a full build, incremental refreshes
 * that list only the products the change log names (and a periodic walk
 * of every product for changes nobody logged), lifecycle changes, a damaged index
 * rebuilt, one hit per product (its newest matching version), --limit. */
#include "check.h"
#include "index.h"
#include "mesh_util.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char store[256], db[300];

static const char contract_fmt[] =
	"apiVersion: v3.1.0\nkind: DataContract\nid: %s-%s\nname: %s\nversion: %s\nstatus: active\n"
	"domain: sales\ndataProduct: %s\ndescription:\n  purpose: Orders of %s\n"
	"schema:\n  - name: data\n    physicalName: data.csv\n    properties:\n      - name: amount\n"
	"        logicalType: number\n        description: money %s\n";

static int install(const char *product, const char *version)
{
	char contract[1024];
	snprintf(contract, sizeof contract, contract_fmt, product, version, product, version, product, product,
		 product);
	static const char data[] = "amount\n1\n";
	struct release_file files[] = {
		{.name = "data.csv", .role = ROLE_DATA, .content = data, .content_len = sizeof data - 1},
		{.name = "contract.yaml", .role = ROLE_CONTRACT, .content = contract, .content_len = strlen(contract)},
	};
	struct release_spec spec = {.domain = "sales", .product = product, .version = version,
				    .src_dirfd = AT_FDCWD, .files = files, .n_files = 2};
	struct mesh_err err = {0};
	int rc = store_install_release(store, &spec, NULL, &err);
	if (rc)
		fprintf(stderr, "install: %s\n", err.msg);
	return rc;
}

/* Make every product directory look changed an hour ago. */
static void backdate(void)
{
	char path[512];
	struct timespec old[2];
	clock_gettime(CLOCK_REALTIME, &old[0]);
	old[0].tv_sec -= 3600;
	old[1] = old[0];
	for (int p = 0; p < 50; p++) {
		snprintf(path, sizeof path, "%s/domains/sales/p%d", store, p);
		utimensat(AT_FDCWD, path, old, AT_SYMLINK_NOFOLLOW);
		snprintf(path, sizeof path, "%s/domains/sales/p%d/.lifecycle", store, p);
		utimensat(AT_FDCWD, path, old, AT_SYMLINK_NOFOLLOW);
	}
}

static int dump_row(void *ctx, int n, char **values, char **names)
{
	(void)names;
	struct strbuf *sb = ctx;
	for (int i = 0; i < n; i++)
		strbuf_printf(sb, "%s%s", i ? "|" : "", values[i] ? values[i] : "NULL");
	strbuf_puts(sb, "\n");
	return 0;
}

/* What an index contains, row by row in rowid order (all but meta, whose
 * times differ from one build to the next). */
static char *dump(const char *path)
{
	struct strbuf sb = STRBUF_INIT;
	sqlite3 *sdb;
	if (sqlite3_open_v2(path, &sdb, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		return strbuf_detach(&sb, NULL);
	static const char *const sql[] = {
		"SELECT 'P', * FROM products ORDER BY id", "SELECT 'R', * FROM releases ORDER BY id",
		"SELECT 'C', rowid, * FROM columns ORDER BY rowid",
		"SELECT 'S', rowid, domain, product, text FROM search ORDER BY rowid"};
	for (size_t i = 0; i < sizeof sql / sizeof *sql; i++)
		if (sqlite3_exec(sdb, sql[i], dump_row, &sb, NULL) != SQLITE_OK)
			strbuf_printf(&sb, "error: %s\n", sqlite3_errmsg(sdb));
	sqlite3_close(sdb);
	return strbuf_detach(&sb, NULL);
}

int main(void)
{
	snprintf(store, sizeof store, "/tmp/test_index.%d", (int)getpid());
	snprintf(db, sizeof db, "%s-index.db", store);
	struct mesh_err err = {0};
	CHECK(store_init(store, "kind: MeshPolicy\n", &err) == 0);
	char path[512];
	snprintf(path, sizeof path, "%s/domains/sales", store);
	CHECK(mkdir(path, 0755) == 0);
	for (int p = 0; p < 50; p++)
		for (int v = 0; v < 2; v++) {
			char product[16], version[16];
			snprintf(product, sizeof product, "p%d", p);
			snprintf(version, sizeof version, "1.%d.0", v);
			CHECK(install(product, version) == 0);
		}
	backdate();
	struct index_refresh_stats st;
	CHECK(index_rebuild(store, db, &st, &err) == 0);
	CHECK(st.releases == 100 && st.added == 100 && st.unreadable == 0);
	/* within the settle window the refresh runs again, but lists nothing
	 * that did not change; after it, nothing at all is done */
	sleep(INDEX_SETTLE_SECONDS);
	usleep(200000);
	CHECK(index_refresh(store, db, &st, &err) == 0);
	/* (from the change log: the rebuild took each host's position a margin
	 * before its newest entry, which here covers every install) */
	CHECK(!st.up_to_date && st.incremental && st.products_checked <= 50 && st.added == 0 && st.removed == 0);
	CHECK(index_refresh(store, db, &st, &err) == 0);
	CHECK(st.up_to_date && st.releases == 100);
	/* one new release: one product listed, one release read */
	CHECK(install("p7", "2.0.0") == 0);
	CHECK(index_refresh(store, db, &st, &err) == 0);
	CHECK(st.added == 1 && st.removed == 0 && st.products_listed == 1 && st.products_checked == 1 &&
	      st.incremental && st.releases == 101);
	/* lifecycle: deprecated is a changed status, retired leaves the index */
	CHECK(store_set_lifecycle(store, "sales", "p3", "1.0.0", LC_DEPRECATED, NULL, NULL, "tester", &err) == 0);
	CHECK(store_set_lifecycle(store, "sales", "p4", "1.1.0", LC_RETIRED, NULL, NULL, "tester", &err) == 0);
	CHECK(index_refresh(store, db, &st, &err) == 0);
	CHECK(st.changed == 1 && st.removed == 1 && st.releases == 100);
	/* not settled yet: what was logged since the last settled refresh
	 * (p7, p3, p4) is listed again, nothing else */
	CHECK(st.incremental && st.products_listed == 3);
	/* search: one hit per product, its newest matching version */
	struct index_hit *hits;
	size_t n;
	CHECK(index_search(db, "\"p7\"", 0, &hits, &n, &err) == 0);
	CHECK(n == 1 && n && !strcmp(hits[0].version, "2.0.0") && !strcmp(hits[0].domain, "sales"));
	index_hits_free(hits, n);
	CHECK(index_search(db, "\"p3\"", 0, &hits, &n, &err) == 0);
	CHECK(n == 1 && !strcmp(hits[0].version, "1.1.0") && !strcmp(hits[0].status, "active"));
	index_hits_free(hits, n);
	CHECK(index_search(db, "money", 0, &hits, &n, &err) == 0);
	CHECK(n == 50);
	index_hits_free(hits, n);
	CHECK(index_search(db, "money", 7, &hits, &n, &err) == 0);
	CHECK(n == 7);
	index_hits_free(hits, n);
	CHECK(index_search(db, "\"unbalanced", 0, &hits, &n, &err) == -EINVAL);
	/* a product removed from the store leaves the index */
	char cmd[4096];
	snprintf(cmd, sizeof cmd, "chmod -R u+w %s/domains/sales/p9 && rm -rf %s/domains/sales/p9", store, store);
	CHECK(system(cmd) == 0);
	CHECK(store_bump_generation(store, &err) == 0);
	/* a change nobody logged: the incremental refresh does not see it... */
	CHECK(index_refresh(store, db, &st, &err) == 0);
	CHECK(st.incremental && st.removed == 0 && st.releases == 100);
	/* ...the periodic walk of every product does */
	sqlite3 *sdb;
	CHECK(sqlite3_open(db, &sdb) == SQLITE_OK);
	CHECK(sqlite3_exec(sdb, "UPDATE meta SET value='1' WHERE key='full_walk_ns'", NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(sdb);
	CHECK(store_bump_generation(store, &err) == 0);
	CHECK(index_refresh(store, db, &st, &err) == 0);
	CHECK(!st.incremental && st.products_checked == 49 && st.removed == 2 && st.releases == 98);
	/* damaged: rebuilt from the files */
	FILE *f = fopen(db, "w");
	fputs("not an index at all, just text that is long enough to be a header...", f);
	fclose(f);
	CHECK(store_bump_generation(store, &err) == 0);
	CHECK(index_refresh(store, db, &st, &err) == 0);
	CHECK(st.releases == 98);
	/* A build reads releases ahead in threads (index_loader.h): the index
	 * is the same, row for row, as one read by the build alone, also with
	 * a deprecated, a retired and an unreadable release among them. */
	snprintf(path, sizeof path, "%s/domains/sales/p20/3.0.0", store);
	CHECK(mkdir(path, 0700) == 0);
	snprintf(path, sizeof path, "%s/domains/sales/p20/3.0.0/.manifest.json", store);
	f = fopen(path, "w");
	fputs("{\"format\": 1, \"domain\": ", f);      /* cut short */
	fclose(f);
	char one[320], many[320];
	snprintf(one, sizeof one, "%s-one.db", store);
	snprintf(many, sizeof many, "%s-many.db", store);
	struct index_refresh_stats st1, st2;
	setenv("MESHFS_INDEX_THREADS", "1", 1);
	CHECK(index_rebuild(store, one, &st1, &err) == 0);
	setenv("MESHFS_INDEX_THREADS", "5", 1);
	CHECK(index_rebuild(store, many, &st2, &err) == 0);
	unsetenv("MESHFS_INDEX_THREADS");
	CHECK(st1.releases == 98 && st2.releases == 98 && st1.unreadable == 1 && st2.unreadable == 1);
	char *d1 = dump(one), *d2 = dump(many);
	CHECK(strlen(d1) > 10000 && strstr(d1, "deprecated") && strstr(d1, "|p20|"));
	CHECK_STR(d2, d1);
	free(d1);
	free(d2);
	unlink(one);
	unlink(many);

	/* Two processes that find no index at once: one builds it, the other
	 * waits for that build and refreshes it (nothing to add). */
	unlink(db);
	int codes[2] = {0, 0};
	pid_t kids[2];
	for (int k = 0; k < 2; k++)
		if ((kids[k] = fork()) == 0) {
			struct index_refresh_stats ks;
			struct mesh_err kerr = {0};
			int krc = index_refresh(store, db, &ks, &kerr);
			_exit(krc ? 1 : ks.added == 98 ? 10 : ks.added == 0 && ks.releases == 98 ? 20 : 2);
		}
	for (int k = 0; k < 2; k++) {
		int status = 0;
		waitpid(kids[k], &status, 0);
		codes[k] = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	}
	CHECK(codes[0] + codes[1] == 30);
	/* A build killed part way leaves the index it was replacing, whole;
	 * the next build removes what the dead one left (its file and rollback
	 * journal) and is complete. */
	char tmp_db[340], tmp_journal[360];
	snprintf(tmp_db, sizeof tmp_db, "%s.tmp", db);
	snprintf(tmp_journal, sizeof tmp_journal, "%s.tmp-journal", db);
	for (int round = 0; round < 3; round++) {
		pid_t kid = fork();
		if (kid == 0) {
			struct mesh_err kerr = {0};
			_exit(index_rebuild(store, db, NULL, &kerr) ? 1 : 0);
		}
		for (int spin = 0; spin < 200000 && access(tmp_db, F_OK) < 0; spin++)
			;
		usleep(round * 3000);
		kill(kid, SIGKILL);
		waitpid(kid, NULL, 0);
		sqlite3 *sdb2;
		CHECK(sqlite3_open_v2(db, &sdb2, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
		sqlite3_stmt *q;
		CHECK(sqlite3_prepare_v2(sdb2, "SELECT count(*) FROM releases", -1, &q, NULL) == SQLITE_OK);
		CHECK(sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int(q, 0) == 98);
		sqlite3_finalize(q);
		sqlite3_close(sdb2);
	}
	f = fopen(tmp_journal, "w");         /* a hot journal that must not be replayed */
	fputs("garbage", f);
	fclose(f);
	CHECK(index_rebuild(store, db, &st, &err) == 0 && st.releases == 98);
	CHECK(access(tmp_db, F_OK) < 0 && access(tmp_journal, F_OK) < 0);
	snprintf(cmd, sizeof cmd, "chmod -R u+w %s; rm -rf %s %s %s-wal %s-shm %s.lock %s-one.db.lock %s-many.db.lock", store,
		 store, db, db, db, db, store, store);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot clean up %s\n", store);
	return check_done("test_index");
}
