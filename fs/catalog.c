/*
 * catalog.c - the daemon's immutable snapshot of a store (contract in
 * include/catalog.h).
 *
 * Built in one pass over STORE/domains: every node and string lives in one
 * arena owned by the snapshot, so freeing a snapshot is freeing its arena
 * chunks.  Inode numbers are FNV-1a hashes of mesh paths, kept unique in a
 * snapshot by probing in sorted-path order, which makes them the same for
 * the same tree on every scan and every host.
 */
#include "catalog.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "card.h"
#include "mesh_ino.h"
#include "descriptor.h"
#include "governance.h"
#include "mesh_util.h"

/* ---- arena ---- */

struct arena_chunk {
	struct arena_chunk *next;
	size_t used, size;
	_Alignas(16) unsigned char data[];
};

struct arena {
	struct arena_chunk *head;
	size_t next;               /* the next chunk's size: from 4 KiB, doubling to 64 KiB, so a
				      loaded product (a few nodes, ~3 KiB a release) takes one small chunk */
};

static void *arena_alloc(struct arena *a, size_t size)
{
	size = (size + 15) & ~(size_t)15;
	if (!a->head || a->head->used + size > a->head->size) {
		size_t cap = a->next ? a->next : 4096;
		a->next = cap < 65536 ? cap * 2 : 65536;
		if (cap < size)
			cap = size;
		struct arena_chunk *c = xmalloc(sizeof *c + cap);
		c->next = a->head;
		c->used = 0;
		c->size = cap;
		a->head = c;
	}
	void *p = a->head->data + a->head->used;
	a->head->used += size;
	memset(p, 0, size);
	return p;
}

static char *arena_strdup(struct arena *a, const char *s)
{
	if (!s)
		return NULL;
	size_t n = strlen(s) + 1;
	char *p = arena_alloc(a, n);
	memcpy(p, s, n);
	return p;
}

static void arena_free(struct arena *a)
{
	while (a->head) {
		struct arena_chunk *next = a->head->next;
		free(a->head);
		a->head = next;
	}
}

/* ---- catalog ---- */

struct catalog {
	atomic_int refs;
	struct arena arena;
	struct cat_node *root;
	struct cat_node **table;   /* open addressing by ino */
	size_t table_size, count, skipped;
	char generation[64];
	bool lazy;                 /* domains and lazy products only (catalog_builder) */
	struct catalog *base;      /* a loaded product: the snapshot its parents are in */
	size_t releases;           /* a loaded product: its versions */
};

/* A node under construction: children grow in a plain array first. */
struct builder {
	struct catalog *cat;
	struct cat_node **all;     /* every node, for the inode table */
	size_t n_all, cap_all;
};

static struct cat_node *new_node(struct builder *b, enum cat_kind kind, const char *name,
				 const struct cat_node *parent)
{
	struct cat_node *n = arena_alloc(&b->cat->arena, sizeof *n);
	n->kind = kind;
	n->name = arena_strdup(&b->cat->arena, name);
	n->parent = parent;
	n->nlink = kind == CAT_FILE || kind == CAT_LATEST ? 1 : 2;
	if (b->n_all == b->cap_all) {
		b->cap_all = b->cap_all ? b->cap_all * 2 : 1024;
		b->all = xrealloc(b->all, b->cap_all * sizeof *b->all);
	}
	b->all[b->n_all++] = n;
	return n;
}

static int cmp_node_name(const void *a, const void *b)
{
	const struct cat_node *x = *(const struct cat_node *const *)a;
	const struct cat_node *y = *(const struct cat_node *const *)b;
	return strcmp(x->name, y->name);
}

/* Freeze a temporary child list into the arena, sorted by name. */
static void set_children(struct builder *b, struct cat_node *dir, struct cat_node **kids, size_t n)
{
	if (n)
		qsort(kids, n, sizeof *kids, cmp_node_name);
	struct cat_node **arr = arena_alloc(&b->cat->arena, (n ? n : 1) * sizeof *arr);
	if (n)
		memcpy(arr, kids, n * sizeof *kids);   /* an empty domain of a lazy snapshot has no list */
	dir->children = (const struct cat_node *const *)arr;
	dir->n_children = (uint32_t)n;
	uint32_t subdirs = 0;
	for (size_t i = 0; i < n; i++) {
		if (kids[i]->kind != CAT_FILE && kids[i]->kind != CAT_LATEST)
			subdirs++;
		if (kids[i]->mtime.tv_sec > dir->mtime.tv_sec ||
		    (kids[i]->mtime.tv_sec == dir->mtime.tv_sec && kids[i]->mtime.tv_nsec > dir->mtime.tv_nsec))
			dir->mtime = kids[i]->mtime;
	}
	dir->nlink = 2 + subdirs;
}

struct name_list {
	char **names;
	size_t n, cap;
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names of the subdirectories of dirfd that pass `ok` (no symlinks
 * followed, hidden entries skipped). */
static int list_subdirs(int dirfd, bool (*ok)(const char *), struct name_list *out)
{
	out->names = NULL;
	out->n = out->cap = 0;
	int fd = dup(dirfd);
	if (fd < 0)
		return -errno;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	rewinddir(d);
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || !ok(de->d_name))
			continue;
		if (de->d_type != DT_DIR) {
			struct stat st;
			if (de->d_type != DT_UNKNOWN ||
			    fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
				continue;
		}
		if (out->n == out->cap) {
			out->cap = out->cap ? out->cap * 2 : 16;
			out->names = xrealloc(out->names, out->cap * sizeof *out->names);
		}
		out->names[out->n++] = xstrdup(de->d_name);
	}
	closedir(d);
	if (out->n)
		qsort(out->names, out->n, sizeof *out->names, cmp_str);
	return 0;
}

static void name_list_free(struct name_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->names[i]);
	free(l->names);
}

static bool version_name_ok(const char *name)
{
	return semver_parse(name, NULL) == 0;
}

static void set_place(struct cat_node *n, const char *domain, const char *product, const char *version)
{
	n->domain = domain;
	n->product = product;
	n->version = version;
}

/* A deprecated version's contract sidecar is the copy that says so. */
static void use_status_contract(struct builder *b, struct cat_node *f, int product_fd, const char *relpath)
{
	char name[PATH_MAX];
	snprintf(name, sizeof name, STORE_STATUS_DIR "/%s.contract.yaml", f->version);
	struct stat st;
	if (fstatat(product_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
		return;
	const char *slash = strrchr(relpath, '/');
	char backing[PATH_MAX * 2];
	snprintf(backing, sizeof backing, "domains/%.*s/%s", (int)(slash - relpath), relpath, name);
	f->backing = arena_strdup(&b->cat->arena, backing);
	f->content_id = ((uint64_t)st.st_ino * 0x9e3779b97f4a7c15ull) ^ (uint64_t)st.st_mtim.tv_sec ^
			((uint64_t)st.st_mtim.tv_nsec << 30) ^ ((uint64_t)st.st_size << 48);
	if (!f->content_id)
		f->content_id = 1;
	f->size = (uint64_t)st.st_size;
	f->sha256 = NULL;
}

/* A file meshfs generates beside the releases (descriptor.h, card.h),
 * served as `name` in `dir` when it exists: a metadata file like a
 * contract.  `rel` is its path below the product directory. */
static struct cat_node *generated_node(struct builder *b, struct cat_node *dir, int product_fd,
				       const char *domain, const char *product, const char *rel, const char *name,
				       enum file_format format)
{
	struct stat st;
	if (fstatat(product_fd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
		return NULL;
	struct cat_node *f = new_node(b, CAT_FILE, name, dir);
	set_place(f, dir->domain, dir->product, dir->version);
	f->mtime = st.st_mtim;
	f->size = (uint64_t)st.st_size;
	f->role = ROLE_DOC;
	f->format = format;
	char backing[PATH_MAX * 2];
	snprintf(backing, sizeof backing, "domains/%s/%s/%s", domain, product, rel);
	f->backing = arena_strdup(&b->cat->arena, backing);
	f->restricted = dir->restricted;
	f->state = dir->kind == CAT_VERSION ? dir->state : LC_ACTIVE;
	return f;
}

/* One file node of a version, its strings copied into the snapshot. */
static struct cat_node *file_node(struct builder *b, struct cat_node *vnode, const char *relpath,
				  const char *name, struct timespec mtime, uint64_t size, enum file_role role,
				  enum file_format format, const char *sha256,
				  const struct manifest_column *columns, size_t n_columns)
{
	struct arena *a = &b->cat->arena;
	struct cat_node *f = new_node(b, CAT_FILE, name, vnode);
	f->mtime = mtime;
	f->size = size;
	f->role = role;
	f->format = format;
	char backing[PATH_MAX + 300];
	snprintf(backing, sizeof backing, "domains/%s/%s", relpath, name);
	f->backing = arena_strdup(a, backing);
	f->sha256 = arena_strdup(a, sha256);
	if (n_columns) {
		struct manifest_column *cols = arena_alloc(a, n_columns * sizeof *cols);
		for (size_t k = 0; k < n_columns; k++) {
			cols[k].name = arena_strdup(a, columns[k].name);
			cols[k].classification = arena_strdup(a, columns[k].classification);
		}
		f->columns = cols;
		f->n_columns = (uint32_t)n_columns;
	}
	return f;
}

/* File nodes of a version, from the previous snapshot (immutable release)
 * or from its manifest.  Returns 0, or -1 if the release is unreadable. */
static int build_version(struct builder *b, struct cat_node *vnode, int product_fd,
			 const struct catalog *previous, const char *relpath)
{
	const struct cat_node *old = previous ? catalog_resolve(previous, relpath) : NULL;
	struct cat_node **kids = NULL;
	size_t n = 0;
	if (old && old->kind == CAT_VERSION) {
		vnode->mtime = old->mtime;
		vnode->release_restricted = old->release_restricted;
		kids = xcalloc(old->n_children + 2, sizeof *kids);
		for (uint32_t i = 0; i < old->n_children; i++) {
			const struct cat_node *of = old->children[i];
			if (of->backing && strstr(of->backing, "/" CARD_VERSION_DIR "/"))
				continue;     /* a generated card: looked up again below */
			kids[n++] = file_node(b, vnode, relpath, of->name, of->mtime, of->size, of->role, of->format,
					      of->sha256, of->columns, of->n_columns);
		}
	} else {
		char mpath[PATH_MAX];
		snprintf(mpath, sizeof mpath, "%s/%s", vnode->name, STORE_MANIFEST);
		struct manifest *m = NULL;
		if (manifest_load_at(product_fd, mpath, &m, NULL))
			return -1;
		vnode->mtime = m->published;
		vnode->release_restricted = m->restricted;
		kids = xcalloc(m->n_files + 2, sizeof *kids);
		for (size_t i = 0; i < m->n_files; i++) {
			const struct manifest_file *mf = &m->files[i];
			kids[n++] = file_node(b, vnode, relpath, mf->name, m->published, mf->size, mf->role, mf->format,
					      mf->sha256, mf->columns, mf->n_columns);
		}
		manifest_free(m);
	}
	for (size_t i = 0; i < n; i++) {
		set_place(kids[i], vnode->domain, vnode->product, vnode->version);
		kids[i]->restricted = vnode->restricted;
		kids[i]->state = vnode->state;
		if (kids[i]->role == ROLE_CONTRACT && vnode->state == LC_DEPRECATED)
			use_status_contract(b, kids[i], product_fd, relpath);
	}
	/* the card meshfs wrote for this version, unless the release has a README.md */
	bool shipped = false;
	for (size_t i = 0; i < n; i++)
		shipped |= !strcmp(kids[i]->name, CARD_FILE);
	if (!shipped) {
		char rel[PATH_MAX], domain[MESH_NAME_MAX + 1];
		snprintf(rel, sizeof rel, CARD_VERSION_DIR "/%s.md", vnode->name);
		snprintf(domain, sizeof domain, "%.*s", (int)strcspn(relpath, "/"), relpath);
		struct cat_node *card = generated_node(b, vnode, product_fd, domain, vnode->product, rel, CARD_FILE,
						       FMT_TEXT);
		if (card)
			kids[n++] = card;
	}
	set_children(b, vnode, kids, n);
	free(kids);
	return 0;
}

static struct cat_node *build_product(struct builder *b, struct cat_node *dnode, int domain_fd,
				      const char *name, const struct catalog *previous, bool listed)
{
	int pfd = openat(domain_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (pfd < 0)
		return NULL;
	struct name_list versions;
	if (list_subdirs(pfd, version_name_ok, &versions)) {
		close(pfd);
		return NULL;
	}
	struct lifecycle_table life = {0};
	lifecycle_load_at(pfd, &life, NULL);   /* unreadable table: all active */
	struct cat_node *pnode = new_node(b, CAT_PRODUCT, name, dnode);
	set_place(pnode, dnode->domain, pnode->name, NULL);
	struct cat_node **kids = xcalloc(versions.n + 3, sizeof *kids);   /* + latest, product.yaml, README.md */
	size_t n = 0;
	for (size_t i = 0; i < versions.n; i++) {
		enum lifecycle state = lifecycle_of(&life, versions.names[i]);
		if (state == LC_RETIRED)
			continue;
		struct cat_node *vnode = new_node(b, CAT_VERSION, versions.names[i], pnode);
		set_place(vnode, pnode->domain, pnode->product, vnode->name);
		vnode->state = state;
		char rel[PATH_MAX];
		snprintf(rel, sizeof rel, "%s/%s/%s", dnode->name, name, vnode->name);
		if (build_version(b, vnode, pfd, previous, rel)) {
			b->cat->skipped++;
			b->n_all--;   /* it was the last node added */
			continue;
		}
		if (vnode->release_restricted)
			pnode->restricted = true;
		kids[n++] = vnode;
	}
	lifecycle_table_free(&life);
	name_list_free(&versions);
	int pfd_keep = pfd;      /* for the descriptor, closed below */
	if (n == 0) {
		close(pfd_keep);
		/* Every node added after the product was a version that was
		 * dropped again, so the product is the last node: drop it too. */
		free(kids);
		b->n_all--;
		return NULL;
	}
	/* Listed in domain.yaml, or one restricted release: the whole product. */
	pnode->restricted |= listed;
	for (size_t i = 0; i < n && pnode->restricted; i++) {
		kids[i]->restricted = true;
		for (uint32_t k = 0; k < kids[i]->n_children; k++)
			((struct cat_node *)kids[i]->children[k])->restricted = true;
	}
	/* the versions are in the product's children before latest is added */
	set_children(b, pnode, kids, n);
	const struct cat_node *target = catalog_latest(pnode);
	if (target) {
		struct cat_node *latest = new_node(b, CAT_LATEST, "latest", pnode);
		set_place(latest, pnode->domain, pnode->product, NULL);
		latest->target = target->name;
		latest->size = strlen(target->name);
		latest->mtime = pnode->mtime;
		latest->restricted = pnode->restricted;
		kids[n++] = latest;
		set_children(b, pnode, kids, n);
	}
	struct cat_node *gen[2] = {
		generated_node(b, pnode, pfd_keep, dnode->name, name, DESCRIPTOR_SERVED, DESCRIPTOR_FILE, FMT_YAML),
		generated_node(b, pnode, pfd_keep, dnode->name, name, CARD_PRODUCT, CARD_FILE, FMT_TEXT),
	};
	for (int g = 0; g < 2; g++)
		if (gen[g])
			kids[n++] = gen[g];
	if (gen[0] || gen[1])
		set_children(b, pnode, kids, n);
	close(pfd_keep);
	free(kids);
	return pnode;
}

static uint64_t path_hash(const char *path)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		h ^= *p;
		h *= 0x100000001b3ull;
	}
	/* final mix so similar paths spread over the table */
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h;
}

static size_t node_path(const struct cat_node *n, char *buf, size_t size)
{
	if (!n->parent) {
		buf[0] = '\0';
		return 0;
	}
	size_t len = node_path(n->parent, buf, size);
	int w = snprintf(buf + len, size - len, "%s%s", len ? "/" : "", n->name);
	return w < 0 ? len : len + (size_t)w < size ? len + (size_t)w : size - 1;
}

static void table_put(struct catalog *cat, struct cat_node *n);

static void table_insert(struct catalog *cat, struct cat_node *n)
{
	if (n->kind == CAT_ROOT) {
		n->ino = 1;
	} else {
		char path[PATH_MAX];
		size_t len = node_path(n, path, sizeof path);
		if (n->kind == CAT_FILE && n->content_id)
			snprintf(path + len, sizeof path - len, "\n%016llx", (unsigned long long)n->content_id);
		n->ino = mesh_ino_catalog(path_hash(path));   /* the top bits are views' and .search's */
	}
	table_put(cat, n);
}

/* Put n in the table under n->ino, probing to the next free number on a
 * collision (deterministic: the same tree gives the same numbers). */
static void table_put(struct catalog *cat, struct cat_node *n)
{
	size_t mask = cat->table_size - 1;
	for (;;) {
		if (n->ino <= 1 && n->kind != CAT_ROOT)
			n->ino = 2;
		size_t slot = (size_t)(n->ino * 0x9e3779b97f4a7c15ull) & mask;
		bool taken = false;
		while (cat->table[slot]) {
			if (cat->table[slot]->ino == n->ino) {
				taken = true;
				break;
			}
			slot = (slot + 1) & mask;
		}
		if (!taken) {
			cat->table[slot] = n;
			return;
		}
		n->ino = mesh_ino_catalog(n->ino + 1);   /* a collision: rare; probe deterministically */
	}
}

int catalog_scan(const char *store, const struct catalog *previous, struct catalog **out,
		 struct mesh_err *err)
{
	struct catalog *cat = xcalloc(1, sizeof *cat);
	atomic_init(&cat->refs, 1);
	store_read_generation(store, cat->generation, sizeof cat->generation);
	struct builder b = {.cat = cat};
	struct cat_node *root = new_node(&b, CAT_ROOT, "", NULL);
	cat->root = root;

	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/domains", store);
	int domains_fd = mesh_open_dir_at(AT_FDCWD, path);
	if (domains_fd < 0) {
		int e = -domains_fd;
		free(b.all);
		arena_free(&cat->arena);
		free(cat);
		return mesh_errf(err, -e, "%s: %s", path, strerror(e));
	}
	struct name_list domains;
	list_subdirs(domains_fd, mesh_name_ok, &domains);
	struct cat_node **dkids = xcalloc(domains.n + 1, sizeof *dkids);
	size_t nd = 0;
	for (size_t i = 0; i < domains.n; i++) {
		int dfd = openat(domains_fd, domains.names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (dfd < 0)
			continue;
		struct cat_node *dnode = new_node(&b, CAT_DOMAIN, domains.names[i], root);
		set_place(dnode, dnode->name, NULL, NULL);
		struct name_list products;
		list_subdirs(dfd, mesh_name_ok, &products);
		struct domain_info *di = NULL;
		bool unreadable = gov_load_domain(store, dnode->name, &di, NULL) != 0;
		struct cat_node **pkids = xcalloc(products.n + 1, sizeof *pkids);
		size_t np = 0;
		for (size_t k = 0; k < products.n; k++) {
			bool listed = unreadable;
			for (size_t r = 0; di && r < di->n_restricted; r++)
				listed |= !strcmp(di->restricted[r], products.names[k]);
			struct cat_node *p = build_product(&b, dnode, dfd, products.names[k], previous, listed);
			if (p) {
				pkids[np++] = p;
				dnode->has_restricted |= p->restricted;
			}
		}
		set_children(&b, dnode, pkids, np);
		free(pkids);
		gov_domain_free(di);
		name_list_free(&products);
		close(dfd);
		dkids[nd++] = dnode;
	}
	close(domains_fd);
	name_list_free(&domains);
	set_children(&b, root, dkids, nd);
	free(dkids);
	if (root->mtime.tv_sec == 0)
		clock_gettime(CLOCK_REALTIME, &root->mtime);

	cat->count = b.n_all;
	cat->table_size = 64;
	while (cat->table_size < cat->count * 2)
		cat->table_size *= 2;
	cat->table = xcalloc(cat->table_size, sizeof *cat->table);
	for (size_t i = 0; i < b.n_all; i++)
		table_insert(cat, b.all[i]);
	free(b.all);
	*out = cat;
	return 0;
}

struct catalog *catalog_ref(struct catalog *cat)
{
	if (cat)
		atomic_fetch_add_explicit(&cat->refs, 1, memory_order_relaxed);
	return cat;
}

void catalog_unref(struct catalog *cat)
{
	if (!cat || atomic_fetch_sub_explicit(&cat->refs, 1, memory_order_acq_rel) != 1)
		return;
	free(cat->table);
	arena_free(&cat->arena);
	catalog_unref(cat->base);
	free(cat);
}

const struct cat_node *catalog_root(const struct catalog *cat)
{
	return cat->root;
}

const struct cat_node *catalog_get(const struct catalog *cat, uint64_t ino)
{
	size_t mask = cat->table_size - 1;
	size_t slot = (size_t)(ino * 0x9e3779b97f4a7c15ull) & mask;
	while (cat->table[slot]) {
		if (cat->table[slot]->ino == ino)
			return cat->table[slot];
		slot = (slot + 1) & mask;
	}
	return NULL;
}

const struct cat_node *catalog_child(const struct cat_node *dir, const char *name)
{
	size_t lo = 0, hi = dir->n_children;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(name, dir->children[mid]->name);
		if (!c)
			return dir->children[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

const struct cat_node *catalog_resolve(const struct catalog *cat, const char *path)
{
	const struct cat_node *n = cat->root;
	char part[256];
	while (n && *path) {
		size_t len = strcspn(path, "/");
		if (len == 0 || len >= sizeof part) {
			if (len == 0) {
				path++;
				continue;
			}
			return NULL;
		}
		memcpy(part, path, len);
		part[len] = '\0';
		path += len;
		n = catalog_child(n, part);
		if (n && n->kind == CAT_LATEST)
			n = catalog_child(n->parent, n->target);
	}
	return n;
}

size_t catalog_node_count(const struct catalog *cat)
{
	return cat->count;
}

size_t catalog_skipped(const struct catalog *cat)
{
	return cat->skipped;
}

const char *catalog_generation(const struct catalog *cat)
{
	return cat->generation;
}

const struct cat_node *catalog_latest(const struct cat_node *product)
{
	const struct cat_node *best[3] = {NULL, NULL, NULL};  /* stable, pre-release, deprecated */
	for (uint32_t i = 0; i < product->n_children; i++) {
		const struct cat_node *v = product->children[i];
		if (v->kind != CAT_VERSION || v->state == LC_RETIRED)
			continue;
		struct semver sv;
		if (semver_parse(v->name, &sv))
			continue;
		int slot = v->state == LC_DEPRECATED ? 2 : sv.prerelease[0] ? 1 : 0;
		if (!best[slot] || semver_cmp_str(v->name, best[slot]->name) > 0)
			best[slot] = v;
	}
	return best[0] ? best[0] : best[1] ? best[1] : best[2];
}

/* ---- a snapshot of domains and lazy products (catalog.h) ---- */

struct builder_domain {
	struct cat_node *node;
	struct domain_info *info;
	bool unreadable;               /* domain.yaml: restricts every product */
	struct cat_node **kids;
	size_t n, cap;
};

struct catalog_builder {
	struct builder b;
	struct builder_domain *domains;   /* sorted by name */
	size_t n_domains;
};

int catalog_builder_new(const char *store, struct catalog_builder **out, struct mesh_err *err)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/domains", store);
	int domains_fd = mesh_open_dir_at(AT_FDCWD, path);
	if (domains_fd < 0)
		return mesh_errf(err, domains_fd, "%s: %s", path, strerror(-domains_fd));
	struct name_list names;
	int rc = list_subdirs(domains_fd, mesh_name_ok, &names);
	close(domains_fd);
	if (rc)
		return mesh_errf(err, rc, "%s: %s", path, strerror(-rc));
	struct catalog_builder *cb = xcalloc(1, sizeof *cb);
	struct catalog *cat = xcalloc(1, sizeof *cat);
	atomic_init(&cat->refs, 1);
	cat->lazy = true;
	cb->b.cat = cat;
	cat->root = new_node(&cb->b, CAT_ROOT, "", NULL);
	cb->domains = xcalloc(names.n + 1, sizeof *cb->domains);
	for (size_t i = 0; i < names.n; i++) {
		struct builder_domain *bd = &cb->domains[cb->n_domains++];
		bd->node = new_node(&cb->b, CAT_DOMAIN, names.names[i], cat->root);
		set_place(bd->node, bd->node->name, NULL, NULL);
		bd->unreadable = gov_load_domain(store, bd->node->name, &bd->info, NULL) != 0;
	}
	name_list_free(&names);
	*out = cb;
	return 0;
}

static struct builder_domain *builder_domain(struct catalog_builder *cb, const char *name)
{
	size_t lo = 0, hi = cb->n_domains;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(name, cb->domains[mid].node->name);
		if (!c)
			return &cb->domains[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* A manifest's published_at as manifest_load reads it (whole seconds and
 * the milliseconds meshfs writes). */
static struct timespec published_time(const char *text)
{
	struct timespec ts = {0};
	time_t t = 0;
	if (!text || mesh_time_parse(text, &t))
		return ts;
	ts.tv_sec = t;
	const char *frac = strchr(text, '.');
	if (frac && strlen(frac) >= 4)
		ts.tv_nsec = strtol(frac + 1, NULL, 10) * 1000000L % 1000000000L;
	return ts;
}

static int cmp_release_info(const void *a, const void *b)
{
	return strcmp(((const struct catalog_release_info *)a)->version,
		      ((const struct catalog_release_info *)b)->version);
}

void catalog_builder_add(struct catalog_builder *cb, const char *domain, const char *product,
			 const struct catalog_release_info *releases, size_t n)
{
	struct builder_domain *bd = builder_domain(cb, domain);
	if (!bd || n == 0 || !mesh_name_ok(product))
		return;
	struct arena *a = &cb->b.cat->arena;
	struct cat_node *p = new_node(&cb->b, CAT_PRODUCT, product, bd->node);
	set_place(p, bd->node->domain, p->name, NULL);
	p->lazy = true;
	static const struct cat_node *const no_children[1];
	p->children = no_children;
	bool listed = bd->unreadable;
	for (size_t r = 0; bd->info && r < bd->info->n_restricted; r++)
		listed |= !strcmp(bd->info->restricted[r], product);
	p->restricted = listed;
	struct catalog_release_info *sorted = xcalloc(n, sizeof *sorted);
	memcpy(sorted, releases, n * sizeof *sorted);
	qsort(sorted, n, sizeof *sorted, cmp_release_info);
	struct strbuf summary = STRBUF_INIT, print = STRBUF_INIT;
	strbuf_puts(&summary, "");
	for (size_t i = 0; i < n; i++) {
		p->restricted |= sorted[i].restricted;
		struct timespec t = published_time(sorted[i].published_at);
		if (t.tv_sec > p->mtime.tv_sec || (t.tv_sec == p->mtime.tv_sec && t.tv_nsec > p->mtime.tv_nsec))
			p->mtime = t;
		strbuf_printf(&summary, "%s %s\n", sorted[i].version, lifecycle_name(sorted[i].state));
		strbuf_printf(&print, "%s %d %s\n", sorted[i].version, (int)sorted[i].restricted,
			      sorted[i].published_at ? sorted[i].published_at : "");
	}
	p->release_restricted = p->restricted && !listed;   /* lazy products: a release says so */
	for (size_t i = 0; i < n; i++)
		p->release_restricted |= sorted[i].restricted;
	strbuf_printf(&print, "%s%d", summary.buf, (int)p->restricted);
	p->fingerprint = path_hash(print.buf);
	p->summary = arena_strdup(a, summary.buf);
	p->nlink = 2 + (uint32_t)n;
	strbuf_release(&summary);
	strbuf_release(&print);
	free(sorted);
	if (bd->n == bd->cap) {
		bd->cap = bd->cap ? bd->cap * 2 : 64;
		bd->kids = xrealloc(bd->kids, bd->cap * sizeof *bd->kids);
	}
	bd->kids[bd->n++] = p;
	bd->node->has_restricted |= p->restricted;
}

void catalog_builder_keep(struct catalog_builder *cb, const struct cat_node *old)
{
	struct builder_domain *bd = old->kind == CAT_PRODUCT && old->lazy ? builder_domain(cb, old->domain) : NULL;
	if (!bd)
		return;
	struct arena *a = &cb->b.cat->arena;
	struct cat_node *p = new_node(&cb->b, CAT_PRODUCT, old->name, bd->node);
	set_place(p, bd->node->domain, p->name, NULL);
	p->lazy = true;
	static const struct cat_node *const no_children[1];
	p->children = no_children;
	p->mtime = old->mtime;
	p->nlink = old->nlink;
	p->summary = arena_strdup(a, old->summary);
	p->release_restricted = old->release_restricted;
	/* domain.yaml as it is now */
	bool listed = bd->unreadable;
	for (size_t r = 0; bd->info && r < bd->info->n_restricted; r++)
		listed |= !strcmp(bd->info->restricted[r], old->name);
	p->restricted = listed || old->release_restricted;
	p->fingerprint = old->fingerprint ^ (p->restricted != old->restricted ? 0x9e3779b97f4a7c15ull : 0);
	if (bd->n == bd->cap) {
		bd->cap = bd->cap ? bd->cap * 2 : 64;
		bd->kids = xrealloc(bd->kids, bd->cap * sizeof *bd->kids);
	}
	bd->kids[bd->n++] = p;
	bd->node->has_restricted |= p->restricted;
}

void catalog_builder_free(struct catalog_builder *cb)
{
	if (!cb)
		return;
	for (size_t i = 0; i < cb->n_domains; i++) {
		gov_domain_free(cb->domains[i].info);
		free(cb->domains[i].kids);
	}
	free(cb->domains);
	if (cb->b.cat) {
		arena_free(&cb->b.cat->arena);
		free(cb->b.cat->table);
		free(cb->b.cat);
	}
	free(cb->b.all);
	free(cb);
}

struct catalog *catalog_builder_finish(struct catalog_builder *cb, const char *generation)
{
	struct catalog *cat = cb->b.cat;
	struct cat_node **dkids = xcalloc(cb->n_domains + 1, sizeof *dkids);
	for (size_t i = 0; i < cb->n_domains; i++) {
		struct builder_domain *bd = &cb->domains[i];
		set_children(&cb->b, bd->node, bd->kids, bd->n);
		dkids[i] = bd->node;
	}
	set_children(&cb->b, cat->root, dkids, cb->n_domains);
	free(dkids);
	if (cat->root->mtime.tv_sec == 0)
		clock_gettime(CLOCK_REALTIME, &cat->root->mtime);
	snprintf(cat->generation, sizeof cat->generation, "%s", generation ? generation : "");
	cat->count = cb->b.n_all;
	cat->table_size = 64;
	while (cat->table_size < cat->count * 2)
		cat->table_size *= 2;
	cat->table = xcalloc(cat->table_size, sizeof *cat->table);
	for (size_t i = 0; i < cb->b.n_all; i++)
		table_insert(cat, cb->b.all[i]);
	cb->b.cat = NULL;
	catalog_builder_free(cb);
	return cat;
}

int catalog_product_load(const char *store, struct catalog *snapshot, const struct cat_node *product,
			 struct catalog **out, struct mesh_err *err)
{
	*out = NULL;
	if (product->kind != CAT_PRODUCT || !product->parent)
		return mesh_errf(err, -EINVAL, "%s: not a product", product->name);
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/domains/%s", store, product->domain);
	int dfd = mesh_open_dir_at(AT_FDCWD, path);
	if (dfd < 0)
		return mesh_errf(err, dfd, "%s: %s", path, strerror(-dfd));
	struct catalog *cat = xcalloc(1, sizeof *cat);
	atomic_init(&cat->refs, 1);
	struct builder b = {.cat = cat};
	/* build_product only reads the domain node (its names) */
	struct cat_node *p = build_product(&b, (struct cat_node *)product->parent, dfd, product->name, NULL,
					   product->restricted);
	close(dfd);
	if (!p) {
		free(b.all);
		arena_free(&cat->arena);
		free(cat);
		return mesh_errf(err, -ENOENT, "%s/%s: no readable release in the store", product->domain,
				 product->name);
	}
	cat->root = p;
	cat->count = b.n_all;
	cat->table_size = 16;
	while (cat->table_size < cat->count * 2)
		cat->table_size *= 2;
	cat->table = xcalloc(cat->table_size, sizeof *cat->table);
	p->ino = product->ino;        /* the snapshot's number, even after a collision there */
	table_put(cat, p);
	for (size_t i = 0; i < b.n_all; i++)
		if (b.all[i] != p)
			table_insert(cat, b.all[i]);
	for (uint32_t i = 0; i < p->n_children; i++)
		cat->releases += p->children[i]->kind == CAT_VERSION;
	free(b.all);
	snprintf(cat->generation, sizeof cat->generation, "%s", snapshot->generation);
	cat->base = catalog_ref(snapshot);
	*out = cat;
	return 0;
}

bool catalog_is_lazy(const struct catalog *cat)
{
	return cat->lazy;
}

size_t catalog_release_count(const struct catalog *cat)
{
	return cat->releases;
}

uint64_t catalog_path_ino(const char *path)
{
	uint64_t ino = mesh_ino_catalog(path_hash(path));
	return ino <= 1 ? 2 : ino;
}
