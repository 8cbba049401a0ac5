/*
 * index.c - the per-host catalog index in SQLite with FTS5, refreshed
 * incrementally from the store's files (contract in include/index.h).
 *
 * Layout (PRAGMA user_version INDEX_LAYOUT): products and releases keyed by
 * rowid, so adding or removing a release touches its own rows through
 * indexes (no scan of the whole table, as the first layout's DELETEs by
 * domain/product/version did), and the FTS row of a release has the
 * release's rowid.
 *
 * A build from scratch (index_rebuild) lists every product first and
 * takes each one's releases from index_loader's threads, in that order.
 *
 * Not here: the daemon's view (catalog.c); who may see a hit (callers
 * filter on the hit's domain, product, restricted and owners).
 */
#include "index.h"
#include "changelog.h"
#include "index_loader.h"
#include "state_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mesh_util.h"

#define INDEX_LAYOUT 4
#define NS 1000000000LL

static const char schema_sql[] =
	"CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);"
	"CREATE TABLE IF NOT EXISTS products(id INTEGER PRIMARY KEY, domain TEXT NOT NULL,"
	"  product TEXT NOT NULL, dir_mtime INTEGER NOT NULL, life_mtime INTEGER NOT NULL,"
	"  unreadable INTEGER NOT NULL DEFAULT 0, UNIQUE(domain, product));"
	"CREATE TABLE IF NOT EXISTS releases(id INTEGER PRIMARY KEY, product_id INTEGER NOT NULL,"
	"  version TEXT NOT NULL, status TEXT, published_at TEXT, contract_id TEXT, restricted INTEGER,"
	"  purpose TEXT, owners TEXT, tags TEXT, UNIQUE(product_id, version));"
	"CREATE TABLE IF NOT EXISTS columns(release_id INTEGER NOT NULL, object TEXT, name TEXT,"
	"  type TEXT, classification TEXT, description TEXT);"
	"CREATE INDEX IF NOT EXISTS columns_release ON columns(release_id);"
	/* what a listing reads of each release, so that `meshctl list` and
	 * `status` walk an index and never seek into the releases table
	 * (10,000 releases: 22 -> 19 ms); an index made before it gets it at
	 * its next use (index_current sends it here; no new layout) */
	"CREATE INDEX IF NOT EXISTS releases_list ON releases(product_id, version, status, published_at, restricted);"
	/* domain and product apart from the rest: ranking weighs a word in a
	 * product's name above one in its description (bm25 weights below) */
	"CREATE VIRTUAL TABLE IF NOT EXISTS search USING fts5(domain, product, text, tokenize='unicode61');"
	"PRAGMA user_version=" "4" ";";

/* ---- a small hash map: string or integer keys to a slot ---- */

struct map_entry {
	char *key;            /* NULL: empty */
	int64_t ikey;
	int64_t id, dir_mtime, life_mtime;
	size_t value;
	bool seen;
};

struct map {
	struct map_entry *e;
	size_t cap, n;
};

static uint64_t hash_bytes(const char *s, int64_t ikey)
{
	uint64_t h = 1469598103934665603ULL ^ (uint64_t)ikey;
	for (; s && *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h ^ (h >> 29);
}

static struct map_entry *map_slot(struct map *m, const char *key, int64_t ikey)
{
	if ((m->n + 1) * 2 > m->cap) {
		struct map old = *m;
		m->cap = m->cap ? m->cap * 2 : 64;
		m->e = xcalloc(m->cap, sizeof *m->e);
		m->n = 0;
		for (size_t i = 0; i < old.cap; i++)
			if (old.e[i].key) {
				struct map_entry *slot = map_slot(m, old.e[i].key, old.e[i].ikey);
				*slot = old.e[i];
				m->n++;
			}
		free(old.e);
	}
	for (size_t i = hash_bytes(key, ikey) & (m->cap - 1);; i = (i + 1) & (m->cap - 1))
		if (!m->e[i].key || (m->e[i].ikey == ikey && !strcmp(m->e[i].key, key)))
			return &m->e[i];
}

/* The entry of key, added (zeroed, key copied) if new; *added says so. */
static struct map_entry *map_get(struct map *m, const char *key, int64_t ikey, bool *added)
{
	struct map_entry *slot = map_slot(m, key, ikey);
	*added = !slot->key;
	if (!slot->key) {
		slot->key = xstrdup(key);
		slot->ikey = ikey;
		m->n++;
	}
	return slot;
}

static struct map_entry *map_find(struct map *m, const char *key, int64_t ikey)
{
	if (!m->cap)
		return NULL;
	struct map_entry *slot = map_slot(m, key, ikey);
	return slot->key ? slot : NULL;
}

static void map_free(struct map *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->e[i].key);
	free(m->e);
	m->e = NULL;
	m->cap = m->n = 0;
}

/* ---- connection ---- */

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
	sqlite3_bind_text(st, i, s ? s : "", -1, SQLITE_TRANSIENT);
}

static bool damaged_code(int code)
{
	code &= 0xff;
	return code == SQLITE_CORRUPT || code == SQLITE_NOTADB;
}

/* Before SQLite opens the index by name (it cannot take a descriptor),
 * the name must be a regular file or absent (then made here, mode 0600,
 * and SQLite gives its -wal/-shm files that mode); a symlink, FIFO or
 * device in its place, or as its -wal/-shm, is refused and nothing is
 * created through it.  SQLITE_OPEN_NOFOLLOW refuses a link swapped in
 * meanwhile. */
static int db_path_check(const char *path, bool create, struct mesh_err *err)
{
	int fd = mesh_open_regular_at(AT_FDCWD, path, create ? O_RDWR | O_CREAT : O_RDONLY, STORE_FILE_MODE, NULL);
	if (fd < 0)
		return mesh_errf(err, fd == -ENOENT ? -ENOENT : fd == -EACCES ? -EACCES : -EIO, "%s: %s", path,
				 mesh_open_strerror(fd));
	close(fd);
	static const char *const sides[] = {"-wal", "-shm", "-journal"};
	for (size_t i = 0; i < 3; i++) {
		char side[PATH_MAX + 16];
		snprintf(side, sizeof side, "%s%s", path, sides[i]);
		struct stat st;
		if (fstatat(AT_FDCWD, side, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(st.st_mode))
			return mesh_errf(err, -EIO, "%s: not a regular file (refused; remove it)", side);
	}
	return 0;
}

/* Open for writing; *damaged when the file is not an index of our layout. */
static int db_open_rw(const char *path, bool build, sqlite3 **db, bool *damaged, struct mesh_err *err)
{
	*damaged = false;
	*db = NULL;
	int rc = db_path_check(path, true, err);
	if (rc)
		return rc;
	rc = sqlite3_open_v2(path, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL);
	if (rc != SQLITE_OK) {
		int e = rc == SQLITE_READONLY || rc == SQLITE_CANTOPEN ? -EACCES : -EIO;
		e = mesh_errf(err, e, "%s: %s", path, *db ? sqlite3_errmsg(*db) : sqlite3_errstr(rc));
		sqlite3_close(*db);
		*db = NULL;
		return e;
	}
	sqlite3_busy_timeout(*db, 60000);
	sqlite3_stmt *st = NULL;
	int layout = -1;
	rc = sqlite3_prepare_v2(*db, "PRAGMA user_version", -1, &st, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW)
		layout = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	int tables = 0;
	if (layout == 0 && sqlite3_prepare_v2(*db, "SELECT count(*) FROM sqlite_master", -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			tables = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
	}
	if (layout < 0 || (layout != INDEX_LAYOUT && !(layout == 0 && tables == 0))) {
		*damaged = layout < 0 ? damaged_code(sqlite3_errcode(*db)) || rc == SQLITE_NOTADB : true;
		int e = mesh_errf(err, *damaged ? -EPROTO : -EIO, "%s: %s", path,
				  layout >= 0 ? "an index of another layout" : sqlite3_errmsg(*db));
		if (!*damaged && (sqlite3_errcode(*db) == SQLITE_READONLY || sqlite3_errcode(*db) == SQLITE_CANTOPEN))
			e = -EACCES;
		sqlite3_close(*db);
		*db = NULL;
		return e;
	}
	char *msg = NULL;
	const char *mode = build ? "PRAGMA journal_mode=DELETE; PRAGMA synchronous=OFF;"
				 : "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;";
	if (sqlite3_exec(*db, mode, NULL, NULL, &msg) != SQLITE_OK ||
	    sqlite3_exec(*db, schema_sql, NULL, NULL, &msg) != SQLITE_OK) {
		int code = sqlite3_errcode(*db);
		*damaged = damaged_code(code);
		int e = mesh_errf(err, code == SQLITE_READONLY ? -EACCES : -EIO, "%s: %s", path,
				  msg ? msg : "cannot create tables");
		sqlite3_free(msg);
		sqlite3_close(*db);
		*db = NULL;
		return e;
	}
	return 0;
}

/* ---- the refresh ---- */

enum { S_PRODUCT_ADD, S_PRODUCT_SET, S_PRODUCT_DEL, S_RELEASES_OF, S_RELEASE_ADD, S_RELEASE_STATUS,
       S_RELEASE_DEL, S_COLUMNS_DEL, S_COLUMN_ADD, S_SEARCH_ADD, S_SEARCH_DEL, S_META_SET, N_STMT };

static const char *const stmt_sql[N_STMT] = {
	[S_PRODUCT_ADD] = "INSERT INTO products(domain, product, dir_mtime, life_mtime) VALUES(?,?,?,?)",
	[S_PRODUCT_SET] = "UPDATE products SET dir_mtime=?, life_mtime=?, unreadable=? WHERE id=?",
	[S_PRODUCT_DEL] = "DELETE FROM products WHERE id=?",
	[S_RELEASES_OF] = "SELECT id, version, status FROM releases WHERE product_id=?",
	[S_RELEASE_ADD] = "INSERT INTO releases(product_id, version, status, published_at, contract_id,"
			  " restricted, purpose, owners, tags) VALUES(?,?,?,?,?,?,?,?,?)",
	[S_RELEASE_STATUS] = "UPDATE releases SET status=? WHERE id=?",
	[S_RELEASE_DEL] = "DELETE FROM releases WHERE id=?",
	[S_COLUMNS_DEL] = "DELETE FROM columns WHERE release_id=?",
	[S_COLUMN_ADD] = "INSERT INTO columns VALUES(?,?,?,?,?,?)",
	[S_SEARCH_ADD] = "INSERT INTO search(rowid, domain, product, text) VALUES(?,?,?,?)",
	[S_SEARCH_DEL] = "DELETE FROM search WHERE rowid=?",
	[S_META_SET] = "INSERT OR REPLACE INTO meta VALUES(?,?)",
};

struct refresh {
	const char *store;
	sqlite3 *db;
	sqlite3_stmt *st[N_STMT];
	int64_t start_ns;
	struct index_refresh_stats *stats;
	struct map products;          /* "domain/product" -> products row */
	bool force;                   /* list every product refreshed (the change log named it) */
	bool build;                   /* a new index (index_rebuild): releases read ahead by a loader */
	struct index_loaded *loaded;  /* the product being refreshed, as the loader read it (or NULL) */
	int failed;                   /* SQLite error code of the first failure */
};

static sqlite3_stmt *stmt(struct refresh *r, int which)
{
	sqlite3_stmt *st = r->st[which];
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return st;
}

static void done(struct refresh *r, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW && !r->failed)
		r->failed = sqlite3_extended_errcode(r->db) ? sqlite3_extended_errcode(r->db) : rc;
	sqlite3_reset(st);
}

static char *join_list(char **items, size_t n, const char *sep)
{
	struct strbuf sb = STRBUF_INIT;
	for (size_t i = 0; i < n; i++) {
		if (i)
			strbuf_puts(&sb, sep);
		strbuf_puts(&sb, items[i]);
	}
	return strbuf_detach(&sb, NULL);
}

static void add_release(struct refresh *r, int64_t product_id, const char *domain, const char *product,
			const struct contract *c, const struct manifest *m, const char *status)
{
	char **owners = xcalloc(c->n_owners + 1, sizeof *owners);
	for (size_t i = 0; i < c->n_owners; i++)
		owners[i] = c->owners[i].subject;
	char *owner_text = join_list(owners, c->n_owners, " ");
	free(owners);
	char *tags = join_list(c->tags, c->n_tags, " ");
	sqlite3_stmt *st = stmt(r, S_RELEASE_ADD);
	sqlite3_bind_int64(st, 1, product_id);
	bind_text(st, 2, m->version);
	bind_text(st, 3, status);
	bind_text(st, 4, m->published_at);
	bind_text(st, 5, c->id);
	sqlite3_bind_int(st, 6, c->restricted || m->restricted);
	bind_text(st, 7, c->purpose);
	bind_text(st, 8, owner_text);
	bind_text(st, 9, tags);
	done(r, st);
	int64_t id = sqlite3_last_insert_rowid(r->db);
	struct strbuf text = STRBUF_INIT;
	strbuf_printf(&text, "%s %s %s %s %s %s", c->name ? c->name : "", c->purpose ? c->purpose : "",
		      c->usage ? c->usage : "", c->limitations ? c->limitations : "", tags, owner_text);
	for (size_t o = 0; o < c->n_objects; o++) {
		const struct contract_object *obj = &c->objects[o];
		if (obj->description)
			strbuf_printf(&text, " %s %s", obj->name, obj->description);
		for (size_t p = 0; p < obj->n_props; p++) {
			const struct contract_property *prop = &obj->props[p];
			st = stmt(r, S_COLUMN_ADD);
			sqlite3_bind_int64(st, 1, id);
			bind_text(st, 2, obj->name);
			bind_text(st, 3, prop->name);
			bind_text(st, 4, logical_type_name(prop->type));
			bind_text(st, 5, prop->classification);
			bind_text(st, 6, prop->description);
			done(r, st);
			strbuf_printf(&text, " %s %s", prop->name, prop->description ? prop->description : "");
		}
	}
	st = stmt(r, S_SEARCH_ADD);
	sqlite3_bind_int64(st, 1, id);
	bind_text(st, 2, domain);
	bind_text(st, 3, product);
	bind_text(st, 4, text.buf);
	done(r, st);
	strbuf_release(&text);
	free(owner_text);
	free(tags);
}

static void delete_release(struct refresh *r, int64_t id)
{
	static const int which[] = {S_COLUMNS_DEL, S_SEARCH_DEL, S_RELEASE_DEL};
	for (size_t i = 0; i < sizeof which / sizeof *which; i++) {
		sqlite3_stmt *st = stmt(r, which[i]);
		sqlite3_bind_int64(st, 1, id);
		done(r, st);
	}
}

struct known_release {
	int64_t id;
	char *version, *status;
	bool seen;
};

/* The product's releases in the index. */
static struct known_release *releases_of(struct refresh *r, int64_t product_id, size_t *n)
{
	*n = 0;
	size_t cap = 0;
	struct known_release *k = NULL;
	sqlite3_stmt *st = stmt(r, S_RELEASES_OF);
	sqlite3_bind_int64(st, 1, product_id);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap)
			k = xrealloc(k, (cap = cap ? cap * 2 : 8) * sizeof *k);
		k[*n].id = sqlite3_column_int64(st, 0);
		k[*n].version = xstrdup((const char *)sqlite3_column_text(st, 1));
		k[*n].status = xstrdup(sqlite3_column_text(st, 2) ? (const char *)sqlite3_column_text(st, 2) : "");
		k[(*n)++].seen = false;
	}
	if (rc != SQLITE_DONE && !r->failed)
		r->failed = sqlite3_extended_errcode(r->db);
	sqlite3_reset(st);
	return k;
}

static int64_t mtime_ns(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * NS + st->st_mtim.tv_nsec;
}

/* The newest change time of a product's lifecycle records (0: none),
 * stat'ed by name from the domain directory (no open per product). */
static int64_t lifecycle_mtime(int dfd, const char *product)
{
	struct stat st;
	int64_t t = 0;
	char path[NAME_MAX * 2 + 32];
	snprintf(path, sizeof path, "%s/" STORE_LIFECYCLE_DIR, product);
	if (fstatat(dfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0)
		t = mtime_ns(&st);
	snprintf(path, sizeof path, "%s/" STORE_LIFECYCLE, product);
	if (fstatat(dfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0 && mtime_ns(&st) > t)
		t = mtime_ns(&st);
	return t;
}

/* Load a release's manifest and contract; false when either is unreadable.
 * A build takes them from its loader when the loader read them. */
static bool load_release(struct refresh *r, int pfd, const char *domain, const char *product,
			 const char *version, struct manifest **m, struct contract **c)
{
	if (index_loaded_claim(r->loaded, version, m, c))
		return true;
	manifest_free(*m);
	contract_free(*c);
	return index_load_release(pfd, r->store, domain, product, version, m, c);
}

static void refresh_product(struct refresh *r, int dfd, const char *domain, const char *product)
{
	struct stat st;
	if (fstatat(dfd, product, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
		return;               /* gone, or not a directory: dropped below */
	r->stats->products_checked++;
	int64_t dir_mtime = mtime_ns(&st), life_mtime = lifecycle_mtime(dfd, product);
	char key[2 * NAME_MAX + 2];
	snprintf(key, sizeof key, "%s/%s", domain, product);
	bool added;
	struct map_entry *e = map_get(&r->products, key, 0, &added);
	e->seen = true;
	int64_t newest = dir_mtime > life_mtime ? dir_mtime : life_mtime;
	/* unchanged, and not so recently that a later change could share the
	 * timestamp or hide behind a cached attribute */
	if (!r->force && !added && e->dir_mtime == dir_mtime && e->life_mtime == life_mtime &&
	    r->start_ns - newest > INDEX_SETTLE_SECONDS * NS)
		return;
	int pfd = openat(dfd, product, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (pfd < 0) {
		e->seen = false;      /* gone meanwhile: dropped below */
		return;
	}
	r->stats->products_listed++;
	if (added) {
		sqlite3_stmt *s = stmt(r, S_PRODUCT_ADD);
		bind_text(s, 1, domain);
		bind_text(s, 2, product);
		sqlite3_bind_int64(s, 3, 0);
		sqlite3_bind_int64(s, 4, 0);
		done(r, s);
		e->id = sqlite3_last_insert_rowid(r->db);
	}
	size_t n_known;
	struct known_release *known = added ? NULL : releases_of(r, e->id, &n_known);
	if (added)
		n_known = 0;
	struct lifecycle_table life = {0};
	lifecycle_load_at(pfd, &life, NULL);      /* unreadable: all active, as the mount */
	bool retry = false;
	size_t unreadable = 0;
	/* the version directories: as a build's loader listed them, or read here */
	const struct index_loaded *listed = r->loaded && r->loaded->listed ? r->loaded : NULL;
	DIR *d = NULL;
	if (!listed) {
		int lfd = dup(pfd);
		d = lfd >= 0 ? fdopendir(lfd) : NULL;
		if (!d && lfd >= 0)
			close(lfd);
	}
	for (size_t li = 0;;) {
		const char *v;
		if (listed) {
			if (li == listed->n)
				break;
			v = listed->r[li++].version;
		} else {
			struct dirent *de = d ? readdir(d) : NULL;
			if (!de)
				break;
			v = de->d_name;
			if (v[0] == '.' || semver_parse(v, NULL))
				continue;
			if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
				continue;
		}
		enum lifecycle state = lifecycle_of(&life, v);
		if (state == LC_RETIRED)
			continue;           /* off the mount, off the index */
		const char *status = lifecycle_name(state);
		struct known_release *k = NULL;
		for (size_t i = 0; i < n_known && !k; i++)
			if (!strcmp(known[i].version, v))
				k = &known[i];
		if (k) {
			k->seen = true;
			if (strcmp(k->status, status)) {
				sqlite3_stmt *s = stmt(r, S_RELEASE_STATUS);
				bind_text(s, 1, status);
				sqlite3_bind_int64(s, 2, k->id);
				done(r, s);
				r->stats->changed++;
			}
			continue;
		}
		struct manifest *m;
		struct contract *c;
		if (!load_release(r, pfd, domain, product, v, &m, &c)) {
			r->stats->unreadable++;
			unreadable++;
			retry = true;       /* perhaps still being copied by a slow NFS client */
			continue;
		}
		add_release(r, e->id, domain, product, c, m, status);
		r->stats->added++;
		manifest_free(m);
		contract_free(c);
	}
	if (d)
		closedir(d);
	for (size_t i = 0; i < n_known; i++) {
		if (!known[i].seen) {
			delete_release(r, known[i].id);
			r->stats->removed++;
		}
		free(known[i].version);
		free(known[i].status);
	}
	free(known);
	lifecycle_table_free(&life);
	close(pfd);
	e->dir_mtime = retry ? 0 : dir_mtime;
	e->life_mtime = life_mtime;
	sqlite3_stmt *s = stmt(r, S_PRODUCT_SET);
	sqlite3_bind_int64(s, 1, e->dir_mtime);
	sqlite3_bind_int64(s, 2, e->life_mtime);
	sqlite3_bind_int64(s, 3, (int64_t)unreadable);
	sqlite3_bind_int64(s, 4, e->id);
	done(r, s);
}

/* Every product of every domain, in directory order: domains[i]/products[i]. */
struct product_list {
	char **domains, **products;
	size_t n, cap;
};

static void list_products(DIR *domains, struct product_list *pl)
{
	struct dirent *dd;
	while ((dd = readdir(domains))) {
		if (dd->d_name[0] == '.' || !mesh_name_ok(dd->d_name))
			continue;
		int dfd = openat(dirfd(domains), dd->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		DIR *products = dfd >= 0 ? fdopendir(dfd) : NULL;
		if (!products) {
			if (dfd >= 0)
				close(dfd);
			continue;
		}
		char *domain = NULL;         /* shared by the domain's products */
		struct dirent *pd;
		while ((pd = readdir(products))) {
			if (pd->d_name[0] == '.' || !mesh_name_ok(pd->d_name) ||
			    (pd->d_type != DT_DIR && pd->d_type != DT_UNKNOWN))
				continue;
			if (pl->n == pl->cap) {
				pl->cap = pl->cap ? pl->cap * 2 : 256;
				pl->domains = xrealloc(pl->domains, pl->cap * sizeof *pl->domains);
				pl->products = xrealloc(pl->products, pl->cap * sizeof *pl->products);
			}
			if (!domain)
				domain = xstrdup(dd->d_name);
			pl->domains[pl->n] = domain;
			pl->products[pl->n++] = xstrdup(pd->d_name);
		}
		closedir(products);
	}
}

static void product_list_free(struct product_list *pl)
{
	for (size_t i = 0; i < pl->n; i++) {
		if (i + 1 == pl->n || pl->domains[i + 1] != pl->domains[i])
			free(pl->domains[i]);
		free(pl->products[i]);
	}
	free(pl->domains);
	free(pl->products);
}

static void walk_store(struct refresh *r)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/domains", r->store);
	DIR *domains = opendir(path);
	if (!domains)
		return;
	if (r->build) {
		/* A new index reads every release: the names first, then the
		 * loader's threads read ahead while this one writes the
		 * products in the same order as the walk below would. */
		struct product_list pl = {0};
		list_products(domains, &pl);
		struct index_loader *l = index_loader_start(r->store, pl.domains, pl.products, pl.n);
		int dfd = -1;
		for (size_t i = 0; i < pl.n && !r->failed; i++) {
			if (!i || pl.domains[i] != pl.domains[i - 1]) {
				if (dfd >= 0)
					close(dfd);
				dfd = openat(dirfd(domains), pl.domains[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			}
			r->loaded = index_loader_take(l, i);
			if (dfd >= 0)
				refresh_product(r, dfd, pl.domains[i], pl.products[i]);
			index_loaded_free(r->loaded);
			r->loaded = NULL;
		}
		if (dfd >= 0)
			close(dfd);
		index_loader_free(l);
		product_list_free(&pl);
		closedir(domains);
		return;
	}
	struct dirent *dd;
	while ((dd = readdir(domains)) && !r->failed) {
		if (dd->d_name[0] == '.' || !mesh_name_ok(dd->d_name))
			continue;
		int dfd = openat(dirfd(domains), dd->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (dfd < 0)
			continue;
		int lfd = dup(dfd);
		DIR *products = lfd >= 0 ? fdopendir(lfd) : NULL;
		if (!products && lfd >= 0)
			close(lfd);
		struct dirent *pd;
		while (products && (pd = readdir(products)) && !r->failed)
			if (pd->d_name[0] != '.' && mesh_name_ok(pd->d_name) &&
			    (pd->d_type == DT_DIR || pd->d_type == DT_UNKNOWN))
				refresh_product(r, dfd, dd->d_name, pd->d_name);
		if (products)
			closedir(products);
		close(dfd);
	}
	closedir(domains);
}

/* The products the change log names, from the index (one lookup each),
 * then refreshed: the incremental refresh. */
static int refresh_logged(struct refresh *r, char **keys, size_t n)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(r->db, "SELECT id, dir_mtime, life_mtime FROM products WHERE domain=? AND product=?",
			       -1, &st, NULL) != SQLITE_OK)
		return sqlite3_extended_errcode(r->db);
	for (size_t i = 0; i < n; i++) {
		char *slash = strchr(keys[i], '/');
		if (!slash)
			continue;
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, keys[i], (int)(slash - keys[i]), SQLITE_STATIC);
		sqlite3_bind_text(st, 2, slash + 1, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW) {
			bool added;
			struct map_entry *e = map_get(&r->products, keys[i], 0, &added);
			e->id = sqlite3_column_int64(st, 0);
			e->dir_mtime = sqlite3_column_int64(st, 1);
			e->life_mtime = sqlite3_column_int64(st, 2);
		}
	}
	sqlite3_finalize(st);
	char path[PATH_MAX], domain[NAME_MAX + 1] = "";
	int dfd = -1;
	for (size_t i = 0; i < n && !r->failed; i++) {
		char *slash = strchr(keys[i], '/');
		if (!slash || (size_t)(slash - keys[i]) > NAME_MAX)
			continue;
		if (strncmp(domain, keys[i], (size_t)(slash - keys[i])) || domain[slash - keys[i]]) {
			if (dfd >= 0)
				close(dfd);
			snprintf(domain, sizeof domain, "%.*s", (int)(slash - keys[i]), keys[i]);
			snprintf(path, sizeof path, "%s/domains/%s", r->store, domain);
			dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		if (dfd >= 0)
			refresh_product(r, dfd, domain, slash + 1);
	}
	if (dfd >= 0)
		close(dfd);
	return 0;
}

static int load_products(struct refresh *r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(r->db, "SELECT id, domain, product, dir_mtime, life_mtime FROM products", -1, &st,
			       NULL) != SQLITE_OK)
		return sqlite3_extended_errcode(r->db);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		char key[2 * NAME_MAX + 2];
		snprintf(key, sizeof key, "%s/%s", sqlite3_column_text(st, 1), sqlite3_column_text(st, 2));
		bool added;
		struct map_entry *e = map_get(&r->products, key, 0, &added);
		e->id = sqlite3_column_int64(st, 0);
		e->dir_mtime = sqlite3_column_int64(st, 3);
		e->life_mtime = sqlite3_column_int64(st, 4);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : sqlite3_extended_errcode(r->db);
}

static void drop_unseen_products(struct refresh *r)
{
	for (size_t i = 0; i < r->products.cap && !r->failed; i++) {
		struct map_entry *e = &r->products.e[i];
		if (!e->key || e->seen)
			continue;
		size_t n;
		struct known_release *k = releases_of(r, e->id, &n);
		for (size_t j = 0; j < n; j++) {
			delete_release(r, k[j].id);
			r->stats->removed++;
			free(k[j].version);
			free(k[j].status);
		}
		free(k);
		sqlite3_stmt *st = stmt(r, S_PRODUCT_DEL);
		sqlite3_bind_int64(st, 1, e->id);
		done(r, st);
	}
}

static char *meta_get(sqlite3 *db, const char *key)
{
	sqlite3_stmt *st;
	char *v = NULL;
	if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key=?", -1, &st, NULL) != SQLITE_OK)
		return NULL;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		v = xstrdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return v;
}

static void meta_set(struct refresh *r, const char *key, const char *value)
{
	sqlite3_stmt *st = stmt(r, S_META_SET);
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, value, -1, SQLITE_TRANSIENT);
	done(r, st);
}

static size_t count_releases(sqlite3 *db)
{
	sqlite3_stmt *st;
	size_t n = 0;
	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM releases", -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			n = (size_t)sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	return n;
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

/* Refresh an open index.  *damaged on SQLite corruption. */
static int refresh_db(const char *store, const char *path, sqlite3 *db, bool build,
		      struct index_refresh_stats *stats, bool *damaged, struct mesh_err *err)
{
	struct refresh r = {.store = store, .db = db, .stats = stats, .start_ns = now_ns(), .build = build};
	char gen[64] = "";
	int rc = store_read_generation(store, gen, sizeof gen);
	if (rc)
		return mesh_errf(err, rc, "%s/generation: %s", store, strerror(-rc));
	char *old = meta_get(db, "generation"), *seen_at = meta_get(db, "generation_seen_ns"),
	     *settled = meta_get(db, "settled");
	bool same = old && !strcmp(old, gen);
	if (same && settled && !strcmp(settled, "1")) {
		stats->up_to_date = 1;
		stats->releases = count_releases(db);
		free(old);
		free(seen_at);
		free(settled);
		return 0;
	}
	int64_t first_seen = same && seen_at ? strtoll(seen_at, NULL, 10) : r.start_ns;
	free(old);
	free(seen_at);
	free(settled);
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		int code = sqlite3_extended_errcode(db);
		*damaged = damaged_code(code);
		return mesh_errf(err, (code & 0xff) == SQLITE_READONLY ? -EACCES : -EIO, "%s: %s", path,
				 sqlite3_errmsg(db));
	}
	for (int i = 0; i < N_STMT && !r.failed; i++)
		if (sqlite3_prepare_v2(db, stmt_sql[i], -1, &r.st[i], NULL) != SQLITE_OK)
			r.failed = sqlite3_extended_errcode(db);
	/* What changed, from the change log (read before the store, so that a
	 * change made during the walk is read again next time).  The log is
	 * trusted only for as long as INDEX_FULL_WALK_SECONDS after a walk of
	 * every product: a change no meshfs writer logged (an older version,
	 * a hand edit) is found within that time. */
	struct changelog_read log = {0};
	char *cursor = meta_get(db, "changes_cursor"), *walked = meta_get(db, "full_walk_ns");
	if (changelog_read_since(store, cursor, &log, NULL))
		log.complete = false;
	bool incremental = log.complete && walked &&
			   r.start_ns - strtoll(walked, NULL, 10) < (int64_t)INDEX_FULL_WALK_SECONDS * NS;
	free(walked);
	stats->incremental = incremental;
	if (incremental) {
		r.force = true;
		if (!r.failed)
			r.failed = refresh_logged(&r, log.keys, log.n_keys);
	} else {
		if (!r.failed)
			r.failed = load_products(&r);
		if (!r.failed)
			walk_store(&r);
	}
	if (!r.failed)
		drop_unseen_products(&r);
	if (!r.failed) {
		char num[32];
		/* The position in the log moves only with a settled refresh:
		 * until every cached attribute and listing has expired, the
		 * products logged since the last settled one are listed again
		 * (one that was listed before its new release showed is not
		 * missed). */
		bool settled_now = r.start_ns - first_seen >= INDEX_SETTLE_SECONDS * NS;
		if (settled_now) {
			meta_set(&r, "changes_cursor", log.cursor ? log.cursor : "");
		} else if (cursor || !incremental) {
			char *merged = changelog_cursor_merge(cursor, log.cursor);
			meta_set(&r, "changes_cursor", merged);
			free(merged);
		}
		if (!incremental) {
			snprintf(num, sizeof num, "%lld", (long long)r.start_ns);
			meta_set(&r, "full_walk_ns", num);
		}
		meta_set(&r, "generation", gen);
		snprintf(num, sizeof num, "%lld", (long long)first_seen);
		meta_set(&r, "generation_seen_ns", num);
		/* settled once a refresh started long enough after the change
		 * was first seen for every cached attribute to have expired */
		meta_set(&r, "settled", settled_now ? "1" : "0");
	}
	changelog_read_free(&log);
	free(cursor);
	for (int i = 0; i < N_STMT; i++)
		sqlite3_finalize(r.st[i]);
	map_free(&r.products);
	if (r.failed) {
		*damaged = damaged_code(r.failed);
		rc = mesh_errf(err, (r.failed & 0xff) == SQLITE_READONLY ? -EACCES : -EIO, "%s: %s", path,
			       sqlite3_errstr(r.failed));
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return rc;
	}
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		*damaged = damaged_code(sqlite3_extended_errcode(db));
		rc = mesh_errf(err, -EIO, "%s: %s", path, sqlite3_errmsg(db));
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return rc;
	}
	stats->releases = count_releases(db);
	return 0;
}

/* One build at a time per index: an exclusive flock on DB.lock (local
 * disk; released by the kernel if the builder dies).  -1 when the lock
 * file cannot be had (then db_open_rw reports why the build cannot run). */
static int build_lock(const char *db_path)
{
	char path[PATH_MAX + 8];
	snprintf(path, sizeof path, "%s.lock", db_path);
	int fd = mesh_open_regular_at(AT_FDCWD, path, O_RDWR | O_CREAT, STORE_FILE_MODE, NULL);
	if (fd < 0)
		return -1;
	while (flock(fd, LOCK_EX) < 0)
		if (errno != EINTR) {
			close(fd);
			return -1;
		}
	return fd;
}

/* The data of a finished build reaches the disk before its name does
 * (the build runs with synchronous=OFF): a crash leaves the old index, or
 * none, never a part of the new one. */
static int sync_file(const char *path)
{
	int fd = mesh_open_regular_at(AT_FDCWD, path, O_RDONLY, 0, NULL);
	if (fd < 0)
		return fd;
	int rc = fdatasync(fd) < 0 ? -errno : 0;
	close(fd);
	return rc;
}

static int refresh_existing(const char *store, const char *db_path, struct index_refresh_stats *stats,
			    struct mesh_err *err);

/* Build into DB.tmp and rename it over DB, under the build lock.  With
 * `if_missing` (a refresh that found no index), a build that another
 * process finished meanwhile is refreshed instead of built again. */
static int rebuild(const char *store, const char *db_path, bool if_missing, struct index_refresh_stats *stats,
		   struct mesh_err *err)
{
	memset(stats, 0, sizeof *stats);
	int lock = build_lock(db_path);
	if (if_missing && access(db_path, F_OK) == 0) {
		if (lock >= 0)
			close(lock);
		return refresh_existing(store, db_path, stats, err);
	}
	char tmp[PATH_MAX + 32], side[PATH_MAX + 48];
	/* one name under the lock: what a build that died left is removed,
	 * its rollback journal first (never replayed into a new file) */
	snprintf(tmp, sizeof tmp, "%s.tmp", db_path);
	snprintf(side, sizeof side, "%s-journal", tmp);
	unlink(side);
	unlink(tmp);
	sqlite3 *db;
	bool damaged;
	int rc = db_open_rw(tmp, true, &db, &damaged, err);
	if (!rc) {
		rc = refresh_db(store, tmp, db, true, stats, &damaged, err);
		sqlite3_close(db);
		if (!rc && (rc = sync_file(tmp)) < 0)
			rc = mesh_errf(err, -EIO, "%s: fdatasync: %s", tmp, strerror(-rc));
		if (!rc) {
			if (rename(tmp, db_path) < 0)
				rc = mesh_errf(err, -errno, "%s: %s", db_path, strerror(errno));
			/* the old file's write-ahead log belongs to the old file */
			snprintf(side, sizeof side, "%s-wal", db_path);
			unlink(side);
			snprintf(side, sizeof side, "%s-shm", db_path);
			unlink(side);
			char dir[PATH_MAX];
			snprintf(dir, sizeof dir, "%s", db_path);
			char *slash = strrchr(dir, '/');
			if (!rc && slash) {
				*slash = 0;
				mesh_fsync_dir_at(AT_FDCWD, *dir ? dir : "/");
			}
		}
		if (rc)
			unlink(tmp);
	}
	if (lock >= 0)
		close(lock);
	return rc;
}

int index_rebuild(const char *store, const char *db_path, struct index_refresh_stats *stats,
		  struct mesh_err *err)
{
	struct index_refresh_stats local;
	return rebuild(store, db_path, false, stats ? stats : &local, err);
}

/* Open the index read-write and refresh it in place; *damaged says that
 * a failure was the database's own (a cache: rebuild or walk instead). */
static int refresh_in_place(const char *store, const char *db_path, struct index_refresh_stats *stats,
			    bool *damaged, struct mesh_err *err)
{
	sqlite3 *db;
	*damaged = false;
	int rc = db_open_rw(db_path, false, &db, damaged, err);
	if (!rc) {
		rc = refresh_db(store, db_path, db, false, stats, damaged, err);
		sqlite3_close(db);
	}
	return rc;
}

static int refresh_existing(const char *store, const char *db_path, struct index_refresh_stats *stats,
			    struct mesh_err *err)
{
	bool damaged;
	int rc = refresh_in_place(store, db_path, stats, &damaged, err);
	if (rc && damaged)
		return rebuild(store, db_path, false, stats, err);   /* a cache: start again */
	return rc;
}

/* The common case of every read command, answered without writing: an
 * index of our layout whose generation is the store's and settled.  Read
 * only (no schema statements, no journal-mode change, no transaction), so
 * an unchanged index costs no fsync and no checkpoint; anything else
 * (missing, damaged, behind, unsettled, another layout) is false and left
 * to the read-write path below, which rebuilds or refreshes. */
static bool index_current(const char *store, const char *db_path, bool count, size_t *releases)
{
	if (db_path_check(db_path, false, NULL))
		return false;
	char gen[64] = "";
	if (store_read_generation(store, gen, sizeof gen))
		return false;
	sqlite3 *db = NULL;
	if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK) {
		sqlite3_close(db);
		return false;
	}
	sqlite3_busy_timeout(db, 5000);
	bool current = false;
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		current = sqlite3_column_int(st, 0) == INDEX_LAYOUT;
	sqlite3_finalize(st);
	/* an index made before the listing's covering index gets it from the
	 * read-write path (schema_sql) */
	st = NULL;
	if (current && sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE name = 'releases_list'", -1, &st,
					  NULL) == SQLITE_OK)
		current = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	if (current) {
		char *old = meta_get(db, "generation"), *settled = meta_get(db, "settled");
		current = old && settled && !strcmp(old, gen) && !strcmp(settled, "1");
		free(old);
		free(settled);
	}
	if (current && count)
		*releases = count_releases(db);
	sqlite3_close(db);
	return current;
}

int index_refresh(const char *store, const char *db_path, struct index_refresh_stats *stats,
		  struct mesh_err *err)
{
	struct index_refresh_stats local;
	bool want_stats = stats != NULL;
	if (!stats)
		stats = &local;
	memset(stats, 0, sizeof *stats);
	if (index_current(store, db_path, want_stats, &stats->releases)) {
		stats->up_to_date = 1;
		return 0;
	}
	if (access(db_path, F_OK) < 0 && errno == ENOENT)
		return rebuild(store, db_path, true, stats, err);
	return refresh_existing(store, db_path, stats, err);
}

int index_refresh_existing(const char *store, const char *db_path, struct index_refresh_stats *stats,
			   struct mesh_err *err)
{
	struct index_refresh_stats local;
	if (!stats)
		stats = &local;
	memset(stats, 0, sizeof *stats);
	struct stat st;
	if (fstatat(AT_FDCWD, db_path, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return mesh_errf(err, -errno, "%s: %s", db_path, strerror(errno));
	bool damaged;
	int rc = refresh_in_place(store, db_path, stats, &damaged, err);
	return rc && damaged ? -EPROTO : rc;
}

/* ---- search ---- */

static char *col_text(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return xstrdup(t ? (const char *)t : "");
}

static void hit_clear(struct index_hit *h)
{
	free(h->domain);
	free(h->product);
	free(h->version);
	free(h->status);
	free(h->purpose);
	free(h->snippet);
	free(h->owners);
}

int index_search(const char *db_path, const char *query, size_t limit, struct index_hit **hits,
		 size_t *n, struct mesh_err *err)
{
	struct index_query q = {.query = query};
	return index_query_run(db_path, &q, limit, hits, n, err);
}

int index_path_for_store(const char *store, const char *state_option, char *out, size_t size,
			 struct mesh_err *err)
{
	char dir[PATH_MAX];
	int rc = state_dir_for_store(store, state_option, true, dir, sizeof dir, err);
	if (!rc && snprintf(out, size, "%s/" INDEX_DB_NAME, dir) >= (int)size)
		rc = mesh_errf(err, -ENAMETOOLONG, "%s: path too long", dir);
	return rc;
}

static int open_search(const char *db_path, sqlite3 **db, struct mesh_err *err)
{
	*db = NULL;
	struct mesh_err cerr = {0};
	int crc = db_path_check(db_path, false, &cerr);
	if (crc && crc != -ENOENT)
		return mesh_errf(err, crc, "%s", cerr.msg);
	if (crc || sqlite3_open_v2(db_path, db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK) {
		int e = mesh_errf(err, -ENOENT, "%s: %s (run 'meshctl reindex')", db_path,
				  *db ? sqlite3_errmsg(*db) : "cannot open");
		sqlite3_close(*db);
		*db = NULL;
		return e;
	}
	sqlite3_busy_timeout(*db, 5000);
	return 0;
}

int index_query_candidates(const char *db_path, const struct index_query *q, struct index_hit **hits, size_t *n,
			   struct mesh_err *err)
{
	const char *query = q->query;
	*hits = NULL;
	*n = 0;
	sqlite3 *db;
	int rc = open_search(db_path, &db, err);
	if (rc)
		return rc;
	/* Ranked matches, one per product (its newest matching version),
	 * found through a hash of product ids: O(matches), nothing per hit
	 * but the row itself. */
	/* bm25 weights: domain 4, product 8, text 1 - a word in a product's
	 * name says more than one in its description */
	const char *sql =
		"SELECT r.id, r.product_id, r.version, bm25(search, 4.0, 8.0, 1.0) AS score, p.domain, p.product"
		"  FROM search JOIN releases r ON r.id = search.rowid JOIN products p ON p.id = r.product_id"
		" WHERE search MATCH ?1"
		"   AND (?2 IS NULL OR p.domain = ?2)"
		"   AND (?3 IS NULL OR ' ' || r.tags || ' ' LIKE '% ' || ?3 || ' %' ESCAPE '\\')"
		"   AND (?4 IS NULL OR EXISTS (SELECT 1 FROM columns c WHERE c.release_id = r.id"
		"        AND c.classification = ?4))"
		"   AND (?5 IS NULL OR r.status = ?5)"
		" ORDER BY score";
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		rc = mesh_errf(err, -EIO, "%s: %s", db_path, sqlite3_errmsg(db));
		sqlite3_close(db);
		return rc;
	}
	sqlite3_bind_text(st, 1, query, -1, SQLITE_TRANSIENT);
	const char *filters[] = {q->domain, q->tag, q->classification, q->status};
	for (int i = 0; i < 4; i++)
		if (filters[i])
			sqlite3_bind_text(st, i + 2, filters[i], -1, SQLITE_TRANSIENT);
	struct map by_product = {0};
	struct index_hit *out = NULL;
	size_t cap = 0, count = 0;
	int step;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0), pid = sqlite3_column_int64(st, 1);
		const char *version = (const char *)sqlite3_column_text(st, 2);
		if (!version)
			version = "";
		struct map_entry *e = map_find(&by_product, "", pid);
		if (e) {
			struct index_hit *h = &out[e->value];
			if (semver_cmp_str(version, h->version) > 0) {
				free(h->version);
				h->version = xstrdup(version);
				h->release_id = id;
			}
			continue;
		}
		if (count == cap) {
			cap = cap ? cap * 2 : 16;
			out = xrealloc(out, cap * sizeof *out);
		}
		struct index_hit *h = &out[count];
		*h = (struct index_hit){0};
		h->release_id = id;
		h->version = xstrdup(version);
		h->domain = col_text(st, 4);
		h->product = col_text(st, 5);
		h->status = xstrdup("");
		h->purpose = xstrdup("");
		h->snippet = xstrdup("");
		h->owners = xstrdup("");
		h->score = -sqlite3_column_double(st, 3);   /* the product's best match */
		bool added;
		map_get(&by_product, "", pid, &added)->value = count++;
	}
	if (step != SQLITE_DONE)
		rc = mesh_errf(err, -EINVAL, "search '%s': %s", query, sqlite3_errmsg(db));
	sqlite3_finalize(st);
	sqlite3_close(db);
	map_free(&by_product);
	if (rc) {
		index_hits_free(out, count);
		return rc;
	}
	*hits = out;
	*n = count;
	return 0;
}

int index_hits_detail(const char *db_path, const char *query, struct index_hit *hits, size_t n,
		      struct mesh_err *err)
{
	if (!n)
		return 0;
	sqlite3 *db;
	int rc = open_search(db_path, &db, err);
	if (rc)
		return rc;
	/* one snapshot for the batch */
	sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
	/* by rowid, checked against the names the caller ranked: a row that
	 * is another release now (a refresh or rebuild since) is not this hit */
	const char *detail =
		"SELECT r.status, r.purpose,"
		"       (SELECT max(restricted) FROM releases r2 WHERE r2.product_id = r.product_id), r.owners"
		"  FROM releases r JOIN products p ON p.id = r.product_id"
		" WHERE r.id = ?1 AND p.domain = ?2 AND p.product = ?3 AND r.version = ?4";
	/* the snippet of this row only: MATCH with a rowid is a lookup */
	const char *snip = "SELECT snippet(search, 2, '[', ']', '...', 12) FROM search"
			   " WHERE search MATCH ?1 AND search.rowid = ?2";
	sqlite3_stmt *st = NULL, *sn = NULL;
	if (sqlite3_prepare_v2(db, detail, -1, &st, NULL) != SQLITE_OK ||
	    (query && sqlite3_prepare_v2(db, snip, -1, &sn, NULL) != SQLITE_OK))
		rc = mesh_errf(err, -EIO, "%s: %s", db_path, sqlite3_errmsg(db));
	for (size_t i = 0; i < n && !rc; i++) {
		struct index_hit *h = &hits[i];
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, h->release_id);
		sqlite3_bind_text(st, 2, h->domain, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, h->product, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, h->version, -1, SQLITE_STATIC);
		int step = sqlite3_step(st);
		if (step == SQLITE_DONE)
			continue;          /* not in the index as ranked: stays undetailed */
		if (step != SQLITE_ROW) {
			rc = mesh_errf(err, -EIO, "%s: %s", db_path, sqlite3_errmsg(db));
			break;
		}
		free(h->status);
		free(h->purpose);
		free(h->owners);
		h->status = col_text(st, 0);
		h->purpose = col_text(st, 1);
		h->restricted = sqlite3_column_int(st, 2);
		h->owners = col_text(st, 3);
		h->detailed = true;
		if (!sn)
			continue;
		sqlite3_reset(sn);
		sqlite3_bind_text(sn, 1, query, -1, SQLITE_STATIC);
		sqlite3_bind_int64(sn, 2, h->release_id);
		step = sqlite3_step(sn);
		if (step == SQLITE_ROW) {
			free(h->snippet);
			h->snippet = col_text(sn, 0);
		} else if (step != SQLITE_DONE) {
			rc = mesh_errf(err, -EINVAL, "search '%s': %s", query, sqlite3_errmsg(db));
		}
	}
	sqlite3_finalize(st);
	sqlite3_finalize(sn);
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(db);
	return rc;
}

int index_query_run(const char *db_path, const struct index_query *q, size_t limit, struct index_hit **hits,
		    size_t *n, struct mesh_err *err)
{
	struct index_hit *all = NULL;
	size_t count = 0;
	int rc = index_query_candidates(db_path, q, &all, &count, err);
	if (rc)
		return rc;
	if (limit && count > limit) {
		for (size_t i = limit; i < count; i++)
			hit_clear(&all[i]);
		count = limit;
	}
	rc = index_hits_detail(db_path, q->query, all, count, err);
	/* what the index no longer has is no hit */
	size_t kept = 0;
	for (size_t i = 0; i < count; i++) {
		if (!all[i].detailed)
			hit_clear(&all[i]);
		else
			all[kept++] = all[i];
	}
	if (rc) {
		index_hits_free(all, kept);
		return rc;
	}
	*hits = all;
	*n = kept;
	return 0;
}

void index_hits_free(struct index_hit *hits, size_t n)
{
	for (size_t i = 0; i < n; i++)
		hit_clear(&hits[i]);
	free(hits);
}

/* ---- listing ---- */

static int open_read(const char *db_path, sqlite3 **db, struct mesh_err *err)
{
	*db = NULL;
	struct mesh_err cerr = {0};
	int crc = db_path_check(db_path, false, &cerr);
	if (crc && crc != -ENOENT)
		return mesh_errf(err, crc, "%s", cerr.msg);
	if (crc || sqlite3_open_v2(db_path, db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK) {
		int e = mesh_errf(err, -ENOENT, "%s: %s (run 'meshctl reindex')", db_path,
				  *db ? sqlite3_errmsg(*db) : "cannot open");
		sqlite3_close(*db);
		*db = NULL;
		return e;
	}
	sqlite3_busy_timeout(*db, 5000);
	return 0;
}

int index_products(const char *db_path, const char *domain, const char *product, index_product_fn fn, void *ctx,
		   struct mesh_err *err)
{
	sqlite3 *db;
	int rc = open_read(db_path, &db, err);
	if (rc)
		return rc;
	/* products in name order through UNIQUE(domain, product); each one's
	 * releases through UNIQUE(product_id, version): no sort of the whole */
	/* one statement per filter, so that a named domain or product is a
	 * lookup in UNIQUE(domain, product), not a scan with a test per row */
	const char *sql = product ? "SELECT p.id, p.domain, p.product, r.version, r.status, r.published_at,"
				    " r.restricted, p.unreadable"
				    "  FROM products p LEFT JOIN releases r ON r.product_id = p.id"
				    " WHERE p.domain = ?1 AND p.product = ?2"
			: domain ? "SELECT p.id, p.domain, p.product, r.version, r.status, r.published_at,"
				   " r.restricted, p.unreadable"
				   "  FROM products p LEFT JOIN releases r ON r.product_id = p.id"
				   " WHERE p.domain = ?1 ORDER BY p.domain, p.product"
				 : "SELECT p.id, p.domain, p.product, r.version, r.status, r.published_at,"
				   " r.restricted, p.unreadable"
				   "  FROM products p LEFT JOIN releases r ON r.product_id = p.id"
				   " ORDER BY p.domain, p.product";
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		rc = mesh_errf(err, -EIO, "%s: %s", db_path, sqlite3_errmsg(db));
		sqlite3_close(db);
		return rc;
	}
	if (domain || product)
		sqlite3_bind_text(st, 1, domain ? domain : "", -1, SQLITE_STATIC);
	if (product)
		sqlite3_bind_text(st, 2, product, -1, SQLITE_STATIC);
	struct index_version *v = NULL;
	char **text = NULL;          /* 3 strings per version */
	size_t n = 0, cap = 0;
	int64_t cur = -1;
	char *cur_domain = NULL, *cur_product = NULL;
	bool restricted = false;
	size_t unreadable = 0;
	int step;
	for (;;) {
		step = sqlite3_step(st);
		int64_t id = step == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
		if (cur >= 0 && (step != SQLITE_ROW || id != cur)) {
			struct index_product p = {.domain = cur_domain, .product = cur_product, .versions = v,
						  .n_versions = n, .restricted = restricted, .unreadable = unreadable};
			rc = fn(ctx, &p);
			for (size_t i = 0; i < 3 * n; i++)
				free(text[i]);
			n = 0;
			restricted = false;
			free(cur_domain);
			free(cur_product);
			cur_domain = cur_product = NULL;
			cur = -1;
			if (rc)
				break;
		}
		if (step != SQLITE_ROW)
			break;
		if (cur < 0) {
			cur = id;
			cur_domain = col_text(st, 1);
			cur_product = col_text(st, 2);
			unreadable = (size_t)sqlite3_column_int64(st, 7);
		}
		if (sqlite3_column_type(st, 3) == SQLITE_NULL)
			continue;          /* a product without readable releases */
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			v = xrealloc(v, cap * sizeof *v);
			text = xrealloc(text, 3 * cap * sizeof *text);
		}
		for (int k = 0; k < 3; k++)
			text[3 * n + k] = col_text(st, 3 + k);
		v[n] = (struct index_version){.version = text[3 * n], .status = text[3 * n + 1],
					      .published_at = text[3 * n + 2],
					      .restricted = sqlite3_column_int(st, 6) != 0};
		restricted |= v[n].restricted;
		n++;
	}
	if (!rc && step != SQLITE_DONE)
		rc = mesh_errf(err, -EIO, "%s: %s", db_path, sqlite3_errmsg(db));
	for (size_t i = 0; i < 3 * n; i++)
		free(text[i]);
	free(cur_domain);
	free(cur_product);
	free(v);
	free(text);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}
