/*
 * index_loader.c - threads that read and parse releases ahead of an index
 * build (contract in include/index_loader.h): a shared counter hands out
 * products in the build's order, at most INDEX_LOADER_WINDOW ahead of the
 * one the build takes; each product's releases wait in its slot.
 *
 * Not here: deciding what is indexed (index.c), SQLite.
 */
#include "index_loader.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mesh_util.h"

bool index_load_release(int pfd, const char *store, const char *domain, const char *product,
			const char *version, struct manifest **m, struct contract **c)
{
	*m = NULL;
	*c = NULL;
	int vfd = openat(pfd, version, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (vfd < 0)
		return false;
	bool ok = manifest_load_at(vfd, STORE_MANIFEST, m, NULL) == 0;
	char *text = NULL;
	size_t len = 0;
	if (ok)
		ok = mesh_read_file_at(vfd, "contract.yaml", CONTRACT_MAX_BYTES, &text, &len, NULL) == 0;
	close(vfd);
	if (ok) {
		/* the contract is named by its path in the store, as contract_load names it */
		char path[PATH_MAX];
		snprintf(path, sizeof path, "%s/domains/%s/%s/%s/contract.yaml", store, domain, product, version);
		ok = contract_parse(text, len, path, c, NULL) == 0;
	}
	free(text);
	if (!ok) {
		manifest_free(*m);
		contract_free(*c);
		*m = NULL;
		*c = NULL;
	}
	return ok;
}

struct slot {
	struct index_loaded *set;
	bool done;
};

struct index_loader {
	const char *store;
	char *const *domains, *const *products;
	size_t n;
	struct slot *slots;
	pthread_mutex_t mu;
	pthread_cond_t done_cv, space_cv;
	size_t next, taken;           /* next product to read; products taken by the build */
	size_t build_waits_for;       /* the product the build waits for (SIZE_MAX: none) */
	size_t workers_waiting;       /* for room in the window */
	bool stop;
	pthread_t *threads;
	size_t n_threads;
};

/* One product's releases: every version directory, read.  The directory
 * is listed with getdents64 into the worker's buffer (an opendir per
 * product allocates 32 KiB, and with it malloc consolidates its bins). */
static struct index_loaded *load_product(const struct index_loader *l, int pfd, size_t i, char *buf,
					 size_t size)
{
	struct index_loaded *set = xcalloc(1, sizeof *set);
	size_t cap = 0;
	ssize_t got;
	while ((got = getdents64(pfd, buf, size)) > 0) {
		for (ssize_t off = 0; off < got;) {
			const struct dirent64 *de = (const struct dirent64 *)(buf + off);
			off += de->d_reclen;
			const char *v = de->d_name;
			if (v[0] == '.' || semver_parse(v, NULL))
				continue;
			if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
				continue;
			if (set->n == cap)
				set->r = xrealloc(set->r, (cap = cap ? cap * 2 : 4) * sizeof *set->r);
			struct index_loaded_release *r = &set->r[set->n++];
			r->version = xstrdup(v);
			index_load_release(pfd, l->store, l->domains[i], l->products[i], v, &r->m, &r->c);
		}
	}
	set->listed = got == 0;
	return set;
}

static void *worker(void *arg)
{
	struct index_loader *l = arg;
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/domains", l->store);
	int root = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int dfd = -1;
	const char *dname = NULL;
	size_t size = 16384;
	char *buf = xmalloc(size);
	for (;;) {
		pthread_mutex_lock(&l->mu);
		while (!l->stop && l->next < l->n && l->next >= l->taken + INDEX_LOADER_WINDOW) {
			l->workers_waiting++;
			pthread_cond_wait(&l->space_cv, &l->mu);
			l->workers_waiting--;
		}
		if (l->stop || l->next >= l->n) {
			pthread_mutex_unlock(&l->mu);
			break;
		}
		size_t i = l->next++;
		pthread_mutex_unlock(&l->mu);
		if (!dname || strcmp(dname, l->domains[i])) {
			if (dfd >= 0)
				close(dfd);
			dname = l->domains[i];
			dfd = root >= 0 ? openat(root, dname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
		}
		int pfd = dfd >= 0 ? openat(dfd, l->products[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
				   : -1;
		struct index_loaded *set = pfd >= 0 ? load_product(l, pfd, i, buf, size) : xcalloc(1, sizeof *set);
		if (pfd >= 0)
			close(pfd);
		pthread_mutex_lock(&l->mu);
		l->slots[i].set = set;
		l->slots[i].done = true;
		if (l->build_waits_for == i)      /* the build is waiting for this one */
			pthread_cond_signal(&l->done_cv);
		pthread_mutex_unlock(&l->mu);
	}
	free(buf);
	if (dfd >= 0)
		close(dfd);
	if (root >= 0)
		close(root);
	return NULL;
}

static size_t threads_wanted(void)
{
	const char *s = getenv("MESHFS_INDEX_THREADS");
	if (!s || !*s)
		return INDEX_LOADER_THREADS;
	char *end;
	long v = strtol(s, &end, 10);
	if (*end || v < 0)
		return INDEX_LOADER_THREADS;
	return v > 64 ? 64 : (size_t)v;
}

struct index_loader *index_loader_start(const char *store, char *const *domains, char *const *products,
					size_t n)
{
	size_t want = threads_wanted();
	if (want <= 1 || n == 0)
		return NULL;
	if (want > n)
		want = n;
	struct index_loader *l = xcalloc(1, sizeof *l);
	l->store = store;
	l->domains = domains;
	l->products = products;
	l->n = n;
	l->build_waits_for = SIZE_MAX;
	l->slots = xcalloc(n, sizeof *l->slots);
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->done_cv, NULL);
	pthread_cond_init(&l->space_cv, NULL);
	l->threads = xcalloc(want, sizeof *l->threads);
	for (size_t i = 0; i < want; i++) {
		if (pthread_create(&l->threads[l->n_threads], NULL, worker, l))
			break;
		l->n_threads++;
	}
	if (!l->n_threads) {
		index_loader_free(l);
		return NULL;
	}
	return l;
}

struct index_loaded *index_loader_take(struct index_loader *l, size_t i)
{
	if (!l || i >= l->n)
		return NULL;
	pthread_mutex_lock(&l->mu);
	l->build_waits_for = i;
	while (!l->slots[i].done)
		pthread_cond_wait(&l->done_cv, &l->mu);
	l->build_waits_for = SIZE_MAX;
	struct index_loaded *set = l->slots[i].set;
	l->slots[i].set = NULL;
	if (i + 1 > l->taken) {
		l->taken = i + 1;
		/* workers that found the window full sleep until half of it
		 * is free: each wakeup then has many products to read */
		if (l->workers_waiting && l->next - l->taken <= INDEX_LOADER_WINDOW / 2)
			pthread_cond_broadcast(&l->space_cv);
	}
	pthread_mutex_unlock(&l->mu);
	return set;
}

bool index_loaded_claim(struct index_loaded *set, const char *version, struct manifest **m,
			struct contract **c)
{
	*m = NULL;
	*c = NULL;
	for (size_t i = 0; set && i < set->n; i++) {
		struct index_loaded_release *r = &set->r[i];
		if (!r->version || strcmp(r->version, version))
			continue;
		*m = r->m;
		*c = r->c;
		r->m = NULL;
		r->c = NULL;
		return *m && *c;
	}
	return false;
}

void index_loaded_free(struct index_loaded *set)
{
	if (!set)
		return;
	for (size_t i = 0; i < set->n; i++) {
		free(set->r[i].version);
		manifest_free(set->r[i].m);
		contract_free(set->r[i].c);
	}
	free(set->r);
	free(set);
}

void index_loader_free(struct index_loader *l)
{
	if (!l)
		return;
	pthread_mutex_lock(&l->mu);
	l->stop = true;
	pthread_cond_broadcast(&l->space_cv);
	pthread_mutex_unlock(&l->mu);
	for (size_t i = 0; i < l->n_threads; i++)
		pthread_join(l->threads[i], NULL);
	for (size_t i = 0; i < l->n; i++)
		index_loaded_free(l->slots[i].set);
	free(l->slots);
	free(l->threads);
	pthread_cond_destroy(&l->done_cv);
	pthread_cond_destroy(&l->space_cv);
	pthread_mutex_destroy(&l->mu);
	free(l);
}
