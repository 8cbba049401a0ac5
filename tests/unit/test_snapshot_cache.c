/* Unit tests for the lazy snapshot (catalog_builder, catalog_product_load)
 * and the daemon's cache of loaded products (snapshot_cache.h): the same
 * nodes and inode numbers as a walk of the store, an LRU bounded by
 * releases, the registry of held inodes and FORGET. */
#include "check.h"
#include "catalog.h"
#include "snapshot_cache.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char store[256];

static int install(const char *domain, const char *product, const char *version)
{
	struct release_file files[] = {
		{.name = "data.csv", .role = ROLE_DATA, .content = "a\n1\n", .content_len = 4},
		{.name = "contract.yaml", .role = ROLE_CONTRACT, .content = "x: 1\n", .content_len = 5},
	};
	struct release_spec spec = {.domain = domain, .product = product, .version = version,
				    .src_dirfd = AT_FDCWD, .files = files, .n_files = 2};
	struct mesh_err err = {0};
	int rc = store_install_release(store, &spec, NULL, &err);
	if (rc)
		fprintf(stderr, "install: %s\n", err.msg);
	return rc;
}

/* The lazy snapshot as the daemon builds it from the index's rows. */
static struct catalog *lazy_snapshot(void)
{
	struct catalog_builder *b = NULL;
	struct mesh_err err = {0};
	CHECK(catalog_builder_new(store, &b, &err) == 0);
	struct catalog_release_info two[] = {
		{.version = "1.1.0", .state = LC_ACTIVE, .published_at = "2026-12-01T10:00:00.250Z"},
		{.version = "1.0.0", .state = LC_ACTIVE, .published_at = "2026-12-01T09:00:00.000Z"},
	};
	struct catalog_release_info one[] = {{.version = "1.0.0", .state = LC_ACTIVE, .published_at = "x"}};
	catalog_builder_add(b, "sales", "orders", two, 2);
	catalog_builder_add(b, "sales", "returns", one, 1);
	catalog_builder_add(b, "sales", "empty", NULL, 0);        /* no release: left out */
	catalog_builder_add(b, "nowhere", "ghost", one, 1);       /* no such domain in the store */
	catalog_builder_add(b, "sales", "../x", one, 1);          /* not a name */
	return catalog_builder_finish(b, "7 test");
}

int main(void)
{
	snprintf(store, sizeof store, "/tmp/test_snapshot_cache.%d", (int)getpid());
	struct mesh_err err = {0};
	CHECK(store_init(store, "kind: MeshPolicy\n", &err) == 0);
	char path[512];
	snprintf(path, sizeof path, "%s/domains/sales", store);
	CHECK(mkdir(path, 0755) == 0);
	snprintf(path, sizeof path, "%s/domains/hr", store);   /* a domain with no product */
	CHECK(mkdir(path, 0755) == 0);
	CHECK(install("sales", "orders", "1.0.0") == 0);
	CHECK(install("sales", "orders", "1.1.0") == 0);
	CHECK(install("sales", "returns", "1.0.0") == 0);

	struct catalog *walk = NULL;
	CHECK(catalog_scan(store, NULL, &walk, &err) == 0);
	struct catalog *snap = lazy_snapshot();
	CHECK(catalog_is_lazy(snap) && !catalog_is_lazy(walk));
	CHECK_STR(catalog_generation(snap), "7 test");
	const struct cat_node *root = catalog_root(snap);
	CHECK(root->n_children == 2);                      /* hr and sales */
	CHECK(catalog_child(root, "hr") != NULL);
	const struct cat_node *sales = catalog_child(root, "sales");
	CHECK(sales && sales->n_children == 2);
	const struct cat_node *orders = catalog_child(sales, "orders");
	CHECK(orders && orders->lazy && orders->n_children == 0 && orders->nlink == 4);
	CHECK(orders && orders->mtime.tv_sec > 0 && orders->mtime.tv_nsec == 250000000L);
	CHECK_STR(orders ? orders->summary : NULL, "1.0.0 active\n1.1.0 active\n");
	const struct cat_node *worders = catalog_resolve(walk, "sales/orders");
	CHECK(orders && worders && orders->ino == worders->ino);
	CHECK(catalog_get(snap, orders->ino) == orders);

	/* a product loaded: the walk's nodes, numbers and parents */
	struct catalog *loaded = NULL;
	CHECK(catalog_product_load(store, snap, orders, &loaded, &err) == 0);
	const struct cat_node *lp = catalog_root(loaded);
	CHECK(lp->ino == orders->ino && lp->parent == sales && !lp->lazy);
	CHECK(catalog_release_count(loaded) == 2);
	const char *paths[] = {"sales/orders/1.0.0", "sales/orders/1.1.0/data.csv", "sales/orders/1.0.0/contract.yaml"};
	for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
		const struct cat_node *w = catalog_resolve(walk, paths[i]);
		const char *below = paths[i] + strlen("sales/orders/");
		const struct cat_node *n = lp;
		char part[64];
		while (n && *below) {
			size_t len = strcspn(below, "/");
			snprintf(part, sizeof part, "%.*s", (int)len, below);
			n = catalog_child(n, part);
			below += len + (below[len] == '/');
		}
		CHECK(w && n && w->ino == n->ino && w->kind == n->kind && w->size == n->size);
		CHECK(n && catalog_get(loaded, n->ino) == n);
	}
	const struct cat_node *wl = catalog_child(worders, "latest"), *ll = catalog_child(lp, "latest");
	CHECK(wl && ll && wl->ino == ll->ino && !strcmp(ll->target, "1.1.0"));
	CHECK(wl && catalog_path_ino("sales/orders/latest") == wl->ino);
	/* the snapshot lives while a loaded product does */
	catalog_unref(snap);
	CHECK(catalog_root(loaded)->parent->n_children == 2);
	catalog_unref(loaded);
	snap = lazy_snapshot();

	/* a product the store does not have (any more) */
	struct catalog_builder *b = NULL;
	CHECK(catalog_builder_new(store, &b, &err) == 0);
	struct catalog_release_info one[] = {{.version = "9.0.0", .state = LC_ACTIVE}};
	catalog_builder_add(b, "sales", "vanished", one, 1);
	struct catalog *ghost = catalog_builder_finish(b, "");
	struct catalog *none = NULL;
	CHECK(catalog_product_load(store, ghost, catalog_resolve(ghost, "sales/vanished"), &none, &err) == -ENOENT);
	CHECK(none == NULL);
	catalog_unref(ghost);

	/* the cache: 2 releases at most; orders weighs 2, returns 1 */
	struct snapshot_cache *c = snapshot_cache_new(2);
	snapshot_cache_reset(c, snap);
	const struct cat_node *o = catalog_resolve(snap, "sales/orders"), *r = catalog_resolve(snap, "sales/returns");
	struct catalog *x = NULL, *y = NULL;
	CHECK(snapshot_cache_product(c, store, snap, o, &x, &err) == 0);
	CHECK(snapshot_cache_product(c, store, snap, o, &y, &err) == 0);
	CHECK(x == y);                                     /* a hit */
	catalog_unref(y);
	CHECK(snapshot_cache_product(c, store, snap, r, &y, &err) == 0);
	struct snapshot_cache_stats st;
	snapshot_cache_stats(c, &st);
	CHECK(st.products == 1 && st.releases == 1 && st.evictions == 1 && st.loads == 2 && st.hits == 1);
	/* evicted, still usable by who holds it */
	CHECK(catalog_child(catalog_root(x), "latest") != NULL);
	struct catalog *z = NULL;
	CHECK(snapshot_cache_product(c, store, snap, o, &z, &err) == 0);
	CHECK(z != x && catalog_root(z)->ino == catalog_root(x)->ino);
	catalog_unref(x);
	catalog_unref(y);
	catalog_unref(z);
	/* an older snapshot's request is answered, not kept */
	struct catalog *newer = lazy_snapshot();
	snapshot_cache_reset(c, newer);
	snapshot_cache_stats(c, &st);
	CHECK(st.products == 0 && st.releases == 0);
	CHECK(snapshot_cache_product(c, store, snap, o, &x, &err) == 0);
	snapshot_cache_stats(c, &st);
	CHECK(st.products == 0);
	catalog_unref(x);

	/* the registry: what the kernel holds, until FORGET */
	uint64_t owner = 0;
	CHECK(!snapshot_cache_owner(c, 42, &owner));
	snapshot_cache_note(c, 42, o->ino, NULL);
	snapshot_cache_note(c, 42, o->ino, NULL);
	CHECK(snapshot_cache_owner(c, 42, &owner) && owner == o->ino);
	snapshot_cache_forget(c, 42, 1);
	CHECK(snapshot_cache_owner(c, 42, &owner));
	snapshot_cache_forget(c, 42, 1);
	CHECK(!snapshot_cache_owner(c, 42, &owner));
	snapshot_cache_forget(c, 43, 5);                  /* never held: nothing */
	for (uint64_t i = 1; i <= 5000; i++)
		snapshot_cache_note(c, i * 7919, i, NULL);
	snapshot_cache_stats(c, &st);
	CHECK(st.inodes == 5000);
	CHECK(snapshot_cache_owner(c, 2500 * 7919, &owner) && owner == 2500);
	/* stamps: what the kernel was told of a file rewritten in place,
	 * listed (copied) until FORGET; a later note or restamp replaces it */
	struct snapshot_stamped *list;
	CHECK(snapshot_cache_stamped(c, &list) == 0 && list == NULL);
	struct snapshot_stamp stamp = {"product.yaml", "domains/sales/orders/.served.yaml", 120, {7, 8}};
	snapshot_cache_note(c, 77, o->ino, &stamp);
	stamp.size = 130;
	snapshot_cache_note(c, 77, o->ino, &stamp);
	snapshot_cache_note(c, 77, o->ino, NULL);         /* keeps the stamp */
	size_t n = snapshot_cache_stamped(c, &list);
	CHECK(n == 1 && list[0].ino == 77 && list[0].product_ino == o->ino && list[0].size == 130 &&
	      list[0].mtime.tv_sec == 7 && list[0].mtime.tv_nsec == 8);
	CHECK_STR(n ? list[0].name : NULL, "product.yaml");
	CHECK_STR(n ? list[0].backing : NULL, "domains/sales/orders/.served.yaml");
	snapshot_cache_stamped_free(list, n);
	snapshot_cache_restamp(c, 77, 140, (struct timespec){9, 10});
	snapshot_cache_restamp(c, 78, 1, (struct timespec){1, 1});   /* not held: nothing */
	n = snapshot_cache_stamped(c, &list);
	CHECK(n == 1 && list[0].size == 140 && list[0].mtime.tv_sec == 9);
	snapshot_cache_stamped_free(list, n);
	snapshot_cache_forget(c, 77, 3);
	CHECK(snapshot_cache_stamped(c, &list) == 0);
	snapshot_cache_stamped_free(list, 0);
	snapshot_cache_note(c, 79, o->ino, &stamp);       /* freed with the cache */
	snapshot_cache_free(c);
	snapshot_cache_free(NULL);
	catalog_builder_free(NULL);

	catalog_unref(newer);
	catalog_unref(snap);
	catalog_unref(walk);
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf %s", store);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup failed\n");
	return check_done("test_snapshot_cache");
}
