/* Unit tests for store (install, lifecycle) and catalog (tree, latest,
 * stable inode numbers, incremental rescans). */
#include "check.h"
#include "catalog.h"
#include "mesh_util.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char store[256];

static int install(const char *domain, const char *product, const char *version, const char *data)
{
	struct release_file files[] = {
		{.name = "data.csv", .role = ROLE_DATA, .content = data, .content_len = strlen(data)},
		{.name = "contract.yaml", .role = ROLE_CONTRACT, .content = "x: 1\n", .content_len = 5},
	};
	struct release_spec spec = {.domain = domain, .product = product, .version = version,
				    .src_dirfd = AT_FDCWD, .files = files, .n_files = 2};
	struct mesh_err err = {0};
	int rc = store_install_release(store, &spec, NULL, &err);
	if (rc && rc != -EEXIST)
		fprintf(stderr, "install: %s\n", err.msg);
	return rc;
}

static const char *latest_of(struct catalog *cat, const char *product_path)
{
	const struct cat_node *p = catalog_resolve(cat, product_path);
	const struct cat_node *l = p ? catalog_child(p, "latest") : NULL;
	return l ? l->target : NULL;
}

int main(void)
{
	snprintf(store, sizeof store, "/tmp/test_catalog.%d", (int)getpid());
	struct mesh_err err = {0};
	CHECK(store_init(store, "kind: MeshPolicy\n", &err) == 0);
	CHECK(store_init(store, "kind: MeshPolicy\n", &err) == -EEXIST);
	CHECK(store_check(store, NULL) == 0);
	CHECK(store_check("/tmp", NULL) == -EINVAL);
	char path[512];
	snprintf(path, sizeof path, "%s/domains/sales", store);
	CHECK(mkdir(path, 0755) == 0);

	CHECK(install("sales", "orders", "1.0.0-rc.1", "a\n1\n") == 0);
	struct catalog *cat = NULL;
	CHECK(catalog_scan(store, NULL, &cat, &err) == 0);
	CHECK_STR(latest_of(cat, "sales/orders"), "1.0.0-rc.1");   /* only pre-releases */
	catalog_unref(cat);

	CHECK(install("sales", "orders", "1.0.0", "a\n1\n2\n") == 0);
	CHECK(install("sales", "orders", "1.10.0", "a\n3\n") == 0);
	CHECK(install("sales", "orders", "1.9.0", "a\n3\n") == 0);
	CHECK(install("sales", "orders", "2.0.0-beta", "a\n4\n") == 0);
	CHECK(install("sales", "orders", "1.0.0", "dup\n") == -EEXIST);
	CHECK(install("sales", "../x", "1.0.0", "a\n") == -EINVAL);
	CHECK(install("sales", "orders", "1.0", "a\n") == -EINVAL);

	CHECK(catalog_scan(store, NULL, &cat, &err) == 0);
	CHECK_STR(latest_of(cat, "sales/orders"), "1.10.0");       /* SemVer, not text order */
	const struct cat_node *f = catalog_resolve(cat, "sales/orders/latest/data.csv");
	CHECK(f && f->kind == CAT_FILE && f->size == 4);
	CHECK(f && !strcmp(f->version, "1.10.0"));
	CHECK(f && f->sha256 && strlen(f->sha256) == 64);
	const struct cat_node *v = catalog_resolve(cat, "sales/orders/1.0.0");
	CHECK(v && v->kind == CAT_VERSION && v->n_children == 2);
	uint64_t ino_file = catalog_resolve(cat, "sales/orders/1.0.0/data.csv")->ino;
	CHECK(catalog_get(cat, ino_file) == catalog_resolve(cat, "sales/orders/1.0.0/data.csv"));
	CHECK(catalog_get(cat, 1) == catalog_root(cat));
	CHECK(catalog_resolve(cat, "sales/orders/9.9.9") == NULL);
	CHECK(catalog_resolve(cat, "sales/../sales") == NULL);

	/* a staging directory left by a dead publish is invisible */
	snprintf(path, sizeof path, "%s/domains/sales/orders/.tmp-3.0.0.999999.1", store);
	CHECK(mkdir(path, 0755) == 0);
	/* a release without a readable manifest is skipped, never half shown */
	snprintf(path, sizeof path, "%s/domains/sales/orders/4.0.0", store);
	CHECK(mkdir(path, 0755) == 0);

	/* deprecate the latest: latest moves to the next active version */
	CHECK(store_set_lifecycle(store, "sales", "orders", "1.10.0", LC_DEPRECATED, "2027-03-01",
				  "use 2.x", "tester", &err) == 0);
	CHECK(store_set_lifecycle(store, "sales", "orders", "7.0.0", LC_RETIRED, NULL, NULL, "tester", &err) == -ENOENT);
	struct catalog *cat2 = NULL;
	CHECK(catalog_scan(store, cat, &cat2, &err) == 0);
	CHECK_STR(latest_of(cat2, "sales/orders"), "1.9.0");
	CHECK(catalog_skipped(cat2) == 1);
	CHECK(catalog_resolve(cat2, "sales/orders/1.10.0")->state == LC_DEPRECATED);
	/* inode numbers are the same in every snapshot */
	CHECK(catalog_resolve(cat2, "sales/orders/1.0.0/data.csv")->ino == ino_file);
	CHECK(strcmp(catalog_generation(cat), catalog_generation(cat2)) != 0);

	/* retire: gone from the tree, files kept */
	CHECK(store_set_lifecycle(store, "sales", "orders", "1.9.0", LC_RETIRED, NULL, NULL, "tester", &err) == 0);
	struct catalog *cat3 = NULL;
	CHECK(catalog_scan(store, cat2, &cat3, &err) == 0);
	CHECK(catalog_resolve(cat3, "sales/orders/1.9.0") == NULL);
	CHECK_STR(latest_of(cat3, "sales/orders"), "1.0.0");
	snprintf(path, sizeof path, "%s/domains/sales/orders/1.9.0/data.csv", store);
	CHECK(access(path, F_OK) == 0);

	/* only deprecated versions left: latest falls back to them */
	CHECK(store_set_lifecycle(store, "sales", "orders", "1.0.0", LC_RETIRED, NULL, NULL, "tester", &err) == 0);
	CHECK(store_set_lifecycle(store, "sales", "orders", "1.0.0-rc.1", LC_RETIRED, NULL, NULL, "tester", &err) == 0);
	CHECK(store_set_lifecycle(store, "sales", "orders", "2.0.0-beta", LC_RETIRED, NULL, NULL, "tester", &err) == 0);
	struct catalog *cat4 = NULL;
	CHECK(catalog_scan(store, cat3, &cat4, &err) == 0);
	CHECK_STR(latest_of(cat4, "sales/orders"), "1.10.0");

	/* clean_staging removes the dead publish's directory */
	CHECK(store_clean_staging(store, &err) == 0);
	snprintf(path, sizeof path, "%s/domains/sales/orders/.tmp-3.0.0.999999.1", store);
	CHECK(access(path, F_OK) < 0);

	catalog_unref(cat);
	catalog_unref(cat2);
	catalog_unref(cat3);
	catalog_unref(cat4);
	char cmd[600];
	snprintf(cmd, sizeof cmd, "chmod -R u+w %s && rm -rf %s", store, store);
	CHECK(system(cmd) == 0);
	return check_done("test_catalog");
}
