/*
 * index.c - the catalog index in SQLite with FTS5 (contract in
 * include/index.h).
 *
 * Not here: the daemon's view (catalog.c) - the index is for meshctl's
 * listings and search only.
 */
#include "index.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog.h"
#include "mesh_util.h"
#include "store.h"

static const char schema_sql[] =
	"PRAGMA journal_mode=WAL;"
	"CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);"
	"CREATE TABLE IF NOT EXISTS releases("
	"  domain TEXT, product TEXT, version TEXT, status TEXT, published_at TEXT,"
	"  contract_id TEXT, restricted INTEGER, purpose TEXT, owners TEXT, tags TEXT,"
	"  PRIMARY KEY(domain, product, version));"
	"CREATE TABLE IF NOT EXISTS columns("
	"  domain TEXT, product TEXT, version TEXT, object TEXT, name TEXT, type TEXT,"
	"  classification TEXT, description TEXT);"
	"CREATE VIRTUAL TABLE IF NOT EXISTS search USING fts5("
	"  domain, product, version UNINDEXED, text, tokenize='unicode61');";

/* The index is a file of the store like any other: before SQLite opens
 * it (by name, it cannot take a descriptor), the name must be a regular
 * file or absent (then it is made here, mode 0600, and SQLite gives its
 * -wal/-shm files that mode); a symlink, FIFO or device in its place, or
 * as its -wal/-shm, is refused and nothing is created or chmod'ed through
 * it.  SQLITE_OPEN_NOFOLLOW refuses a symlink swapped in meanwhile. */
static int db_path_check(const char *path, bool create, struct mesh_err *err)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash) {
		*slash = '\0';
		int dfd = mesh_open_dir_at(AT_FDCWD, dir);
		if (dfd < 0)
			return mesh_errf(err, dfd == -ENOENT ? -ENOENT : -EIO, "%s: %s", dir,
					 dfd == -ELOOP || dfd == -ENOTDIR ? "not a directory (refused)" : strerror(-dfd));
		close(dfd);
	}
	int fd = mesh_open_regular_at(AT_FDCWD, path, create ? O_RDWR | O_CREAT : O_RDONLY, STORE_FILE_MODE, NULL);
	if (fd < 0)
		return mesh_errf(err, fd == -ENOENT ? -ENOENT : -EIO, "%s: %s", path, mesh_open_strerror(fd));
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

static int db_open(const char *path, sqlite3 **db, struct mesh_err *err)
{
	*db = NULL;
	int rc = db_path_check(path, true, err);
	if (rc)
		return rc;
	rc = sqlite3_open_v2(path, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL);
	if (rc != SQLITE_OK) {
		int e = mesh_errf(err, -EIO, "%s: %s", path, *db ? sqlite3_errmsg(*db) : sqlite3_errstr(rc));
		sqlite3_close(*db);
		*db = NULL;
		return e;
	}
	sqlite3_busy_timeout(*db, 5000);
	char *msg = NULL;
	if (sqlite3_exec(*db, schema_sql, NULL, NULL, &msg) != SQLITE_OK) {
		int e = mesh_errf(err, -EIO, "%s: %s", path, msg ? msg : "cannot create tables");
		sqlite3_free(msg);
		sqlite3_close(*db);
		*db = NULL;
		return e;
	}
	return 0;
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
	sqlite3_bind_text(st, i, s ? s : "", -1, SQLITE_TRANSIENT);
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

static int add_release(sqlite3 *db, const struct contract *c, const struct manifest *m,
		       const char *status, struct mesh_err *err)
{
	char **owners = xcalloc(c->n_owners + 1, sizeof *owners);
	for (size_t i = 0; i < c->n_owners; i++)
		owners[i] = c->owners[i].subject;
	char *owner_text = join_list(owners, c->n_owners, " ");
	free(owners);
	char *tags = join_list(c->tags, c->n_tags, " ");
	struct strbuf text = STRBUF_INIT;
	strbuf_printf(&text, "%s %s %s %s %s %s %s %s", c->name ? c->name : "", c->purpose ? c->purpose : "",
		      c->usage ? c->usage : "", c->limitations ? c->limitations : "", tags, owner_text,
		      c->domain, c->data_product);
	int rc = 0;
	sqlite3_stmt *st = NULL;
	sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO releases VALUES(?,?,?,?,?,?,?,?,?,?)", -1, &st, NULL);
	bind_text(st, 1, m->domain);
	bind_text(st, 2, m->product);
	bind_text(st, 3, m->version);
	bind_text(st, 4, status);
	bind_text(st, 5, m->published_at);
	bind_text(st, 6, c->id);
	sqlite3_bind_int(st, 7, c->restricted || m->restricted);
	bind_text(st, 8, c->purpose);
	bind_text(st, 9, owner_text);
	bind_text(st, 10, tags);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = mesh_errf(err, -EIO, "index: %s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	sqlite3_prepare_v2(db, "DELETE FROM columns WHERE domain=? AND product=? AND version=?", -1, &st, NULL);
	bind_text(st, 1, m->domain);
	bind_text(st, 2, m->product);
	bind_text(st, 3, m->version);
	sqlite3_step(st);
	sqlite3_finalize(st);
	sqlite3_prepare_v2(db, "INSERT INTO columns VALUES(?,?,?,?,?,?,?,?)", -1, &st, NULL);
	for (size_t o = 0; o < c->n_objects && !rc; o++) {
		const struct contract_object *obj = &c->objects[o];
		if (obj->description)
			strbuf_printf(&text, " %s %s", obj->name, obj->description);
		for (size_t p = 0; p < obj->n_props; p++) {
			const struct contract_property *prop = &obj->props[p];
			sqlite3_reset(st);
			bind_text(st, 1, m->domain);
			bind_text(st, 2, m->product);
			bind_text(st, 3, m->version);
			bind_text(st, 4, obj->name);
			bind_text(st, 5, prop->name);
			bind_text(st, 6, logical_type_name(prop->type));
			bind_text(st, 7, prop->classification);
			bind_text(st, 8, prop->description);
			if (sqlite3_step(st) != SQLITE_DONE)
				rc = mesh_errf(err, -EIO, "index: %s", sqlite3_errmsg(db));
			strbuf_printf(&text, " %s %s", prop->name, prop->description ? prop->description : "");
		}
	}
	sqlite3_finalize(st);
	sqlite3_prepare_v2(db, "DELETE FROM search WHERE domain=? AND product=? AND version=?", -1, &st, NULL);
	bind_text(st, 1, m->domain);
	bind_text(st, 2, m->product);
	bind_text(st, 3, m->version);
	sqlite3_step(st);
	sqlite3_finalize(st);
	sqlite3_prepare_v2(db, "INSERT INTO search VALUES(?,?,?,?)", -1, &st, NULL);
	bind_text(st, 1, m->domain);
	bind_text(st, 2, m->product);
	bind_text(st, 3, m->version);
	bind_text(st, 4, text.buf);
	if (!rc && sqlite3_step(st) != SQLITE_DONE)
		rc = mesh_errf(err, -EIO, "index: %s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	strbuf_release(&text);
	free(owner_text);
	free(tags);
	return rc;
}

static void set_generation(sqlite3 *db, const char *store)
{
	char gen[64] = "";
	store_read_generation(store, gen, sizeof gen);
	sqlite3_stmt *st;
	sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO meta VALUES('generation', ?)", -1, &st, NULL);
	bind_text(st, 1, gen);
	sqlite3_step(st);
	sqlite3_finalize(st);
}

int index_add_release(const char *store, const struct contract *c, const struct manifest *m,
		      struct mesh_err *err)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/" INDEX_FILE, store);
	sqlite3 *db;
	int rc = db_open(path, &db, err);
	if (rc)
		return rc;
	sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	rc = add_release(db, c, m, "active", err);
	if (!rc)
		set_generation(db, store);
	sqlite3_exec(db, rc ? "ROLLBACK" : "COMMIT", NULL, NULL, NULL);
	sqlite3_close(db);
	return rc;
}

int index_rebuild(const char *store, size_t *n_releases, struct mesh_err *err)
{
	char path[PATH_MAX], tmp[PATH_MAX + 32];
	snprintf(path, sizeof path, "%s/" INDEX_FILE, store);
	snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
	unlink(tmp);   /* a leftover (or a link planted there): gone, its target untouched */
	struct catalog *cat = NULL;
	int rc = catalog_scan(store, NULL, &cat, err);
	if (rc)
		return rc;
	sqlite3 *db;
	rc = db_open(tmp, &db, err);
	if (rc) {
		catalog_unref(cat);
		return rc;
	}
	/* WAL would leave -wal/-shm files behind the rename: build in DELETE mode */
	sqlite3_exec(db, "PRAGMA journal_mode=DELETE; BEGIN", NULL, NULL, NULL);
	size_t count = 0;
	const struct cat_node *root = catalog_root(cat);
	for (uint32_t d = 0; d < root->n_children && !rc; d++)
		for (uint32_t p = 0; p < root->children[d]->n_children && !rc; p++) {
			const struct cat_node *prod = root->children[d]->children[p];
			for (uint32_t v = 0; v < prod->n_children && !rc; v++) {
				const struct cat_node *ver = prod->children[v];
				if (ver->kind != CAT_VERSION)
					continue;
				char rel[PATH_MAX];
				snprintf(rel, sizeof rel, "%s/domains/%s/%s/%s", store, ver->domain, ver->product,
					 ver->name);
				int vfd = mesh_open_dir_at(AT_FDCWD, rel);
				struct manifest *m = NULL;
				struct contract *c = NULL;
				char cpath[PATH_MAX + 16];
				snprintf(cpath, sizeof cpath, "%s/contract.yaml", rel);
				if (vfd >= 0 && !manifest_load_at(vfd, STORE_MANIFEST, &m, NULL) &&
				    !contract_load(cpath, &c, NULL)) {
					rc = add_release(db, c, m, lifecycle_name(ver->state), err);
					count++;
				}
				if (vfd >= 0)
					close(vfd);
				manifest_free(m);
				contract_free(c);
			}
		}
	if (!rc)
		set_generation(db, store);
	if (sqlite3_exec(db, rc ? "ROLLBACK" : "COMMIT", NULL, NULL, NULL) != SQLITE_OK && !rc)
		rc = mesh_errf(err, -EIO, "%s: %s", tmp, sqlite3_errmsg(db));
	sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
	sqlite3_close(db);
	catalog_unref(cat);
	if (!rc) {
		/* rename replaces whatever the name is (a planted link itself,
		 * never its target) */
		if (rename(tmp, path) < 0)
			rc = mesh_errf(err, -errno, "%s: %s", path, strerror(errno));
		char side[PATH_MAX + 8];
		snprintf(side, sizeof side, "%s-wal", path);
		unlink(side);
		snprintf(side, sizeof side, "%s-shm", path);
		unlink(side);
	}
	if (rc)
		unlink(tmp);
	else if (n_releases)
		*n_releases = count;
	return rc;
}

static char *col_text(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return xstrdup(t ? (const char *)t : "");
}

int index_search(const char *store, const char *query, struct index_hit **hits, size_t *n,
		 int *stale, struct mesh_err *err)
{
	struct index_query q = {.query = query};
	return index_query_run(store, &q, hits, n, stale, err);
}

int index_query_run(const char *store, const struct index_query *q, struct index_hit **hits, size_t *n,
		    int *stale, struct mesh_err *err)
{
	*hits = NULL;
	*n = 0;
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/" INDEX_FILE, store);
	sqlite3 *db = NULL;
	struct mesh_err cerr = {0};
	int crc = db_path_check(path, false, &cerr);
	if (crc == -ENOENT || (!crc && sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOFOLLOW,
						       NULL) != SQLITE_OK)) {
		sqlite3_close(db);
		return mesh_errf(err, -ENOENT, "%s: no index (run 'meshctl reindex')", path);
	}
	if (crc)
		return mesh_errf(err, crc, "%s", cerr.msg);
	sqlite3_busy_timeout(db, 5000);
	char gen[64] = "";
	store_read_generation(store, gen, sizeof gen);
	sqlite3_stmt *st;
	*stale = 1;
	if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key='generation'", -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			*stale = strcmp((const char *)sqlite3_column_text(st, 0), gen) != 0;
		sqlite3_finalize(st);
	}
	/* bm25 weights: domain 4, product 8, (version unindexed), text 1 -
	 * a word in a product's name says more than one in its description */
	const char *sql =
		"SELECT s.domain, s.product, s.version, r.status, r.purpose,"
		"       (SELECT max(restricted) FROM releases r2 WHERE r2.domain = s.domain AND r2.product = s.product),"
		"       snippet(search, 3, '[', ']', '...', 12), bm25(search, 4.0, 8.0, 0.0, 1.0) AS score"
		"  FROM search s JOIN releases r USING(domain, product, version)"
		" WHERE search MATCH ?1"
		"   AND (?2 IS NULL OR r.domain = ?2)"
		"   AND (?3 IS NULL OR ' ' || r.tags || ' ' LIKE '% ' || ?3 || ' %' ESCAPE '\\')"
		"   AND (?4 IS NULL OR EXISTS (SELECT 1 FROM columns c WHERE c.domain = r.domain"
		"        AND c.product = r.product AND c.version = r.version AND c.classification = ?4))"
		"   AND (?5 IS NULL OR r.status = ?5)"
		" ORDER BY score";
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		int e = mesh_errf(err, -EIO, "%s: %s", path, sqlite3_errmsg(db));
		sqlite3_close(db);
		return e;
	}
	sqlite3_bind_text(st, 1, q->query, -1, SQLITE_TRANSIENT);
	const char *filters[] = {q->domain, q->tag, q->classification, q->status};
	for (int i = 0; i < 4; i++)
		if (filters[i])
			sqlite3_bind_text(st, i + 2, filters[i], -1, SQLITE_TRANSIENT);
	int step;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		const char *domain = (const char *)sqlite3_column_text(st, 0);
		const char *product = (const char *)sqlite3_column_text(st, 1);
		const char *version = (const char *)sqlite3_column_text(st, 2);
		size_t k;
		for (k = 0; k < *n; k++)
			if (!strcmp((*hits)[k].domain, domain) && !strcmp((*hits)[k].product, product))
				break;
		if (k < *n) {
			/* keep the newest version of the product */
			if (semver_cmp_str(version, (*hits)[k].version) > 0) {
				free((*hits)[k].version);
				(*hits)[k].version = xstrdup(version);
			}
			continue;
		}
		*hits = xrealloc(*hits, (*n + 1) * sizeof **hits);
		struct index_hit *h = &(*hits)[(*n)++];
		h->domain = col_text(st, 0);
		h->product = col_text(st, 1);
		h->version = col_text(st, 2);
		h->status = col_text(st, 3);
		h->purpose = col_text(st, 4);
		h->restricted = sqlite3_column_int(st, 5);
		h->snippet = col_text(st, 6);
		h->score = -sqlite3_column_double(st, 7);
	}
	int rc = 0;
	if (step != SQLITE_DONE)
		rc = mesh_errf(err, -EINVAL, "search '%s': %s", q->query, sqlite3_errmsg(db));
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

void index_hits_free(struct index_hit *hits, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(hits[i].domain);
		free(hits[i].product);
		free(hits[i].version);
		free(hits[i].status);
		free(hits[i].purpose);
		free(hits[i].snippet);
	}
	free(hits);
}
