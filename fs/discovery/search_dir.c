/*
 * search_dir.c - the /mesh/.search tree (contract in include/search_dir.h).
 * Not here: FUSE (fuse_search.c), the search (search.c).
 */
#include "mesh_ino.h"
#include "search_dir.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh_util.h"

struct sd_slot {
	uint64_t ino;
	enum search_ino_kind kind;
	char *text;
};

struct search_dir {
	pthread_mutex_t lock;
	struct sd_slot slots[SEARCH_TABLE_MAX];
};

struct search_dir *search_dir_new(void)
{
	struct search_dir *sd = xcalloc(1, sizeof *sd);
	pthread_mutex_init(&sd->lock, NULL);
	return sd;
}

void search_dir_free(struct search_dir *sd)
{
	if (!sd)
		return;
	for (size_t i = 0; i < SEARCH_TABLE_MAX; i++)
		free(sd->slots[i].text);
	pthread_mutex_destroy(&sd->lock);
	free(sd);
}

static uint64_t text_ino(const char *a, const char *b)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (const char *s = a; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	h = (h ^ '/') * 0x100000001b3ull;
	for (const char *s = b ? b : ""; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	h ^= h >> 33;
	h = mesh_ino_search(h);
	if (h == SEARCH_DIR_INO || h == SEARCH_README_INO)
		h ^= 2;
	return h;
}

/* Remember ino -> text (the slot is the ino's hash: a newer entry may
 * replace an older one, which the kernel then looks up again). */
static uint64_t remember(struct search_dir *sd, uint64_t ino, enum search_ino_kind kind, const char *text)
{
	pthread_mutex_lock(&sd->lock);
	struct sd_slot *s = &sd->slots[ino % SEARCH_TABLE_MAX];
	if (s->ino != ino || s->kind != kind || !s->text || strcmp(s->text, text)) {
		free(s->text);
		s->ino = ino;
		s->kind = kind;
		s->text = xstrdup(text);
	}
	pthread_mutex_unlock(&sd->lock);
	return ino;
}

enum search_ino_kind search_dir_kind(struct search_dir *sd, uint64_t ino, char *buf, size_t size)
{
	if (ino == SEARCH_DIR_INO)
		return SEARCH_ROOT;
	if (ino == SEARCH_README_INO)
		return SEARCH_README;
	if (!(ino >> 63))
		return SEARCH_NONE;
	enum search_ino_kind kind = SEARCH_NONE;
	pthread_mutex_lock(&sd->lock);
	struct sd_slot *s = &sd->slots[ino % SEARCH_TABLE_MAX];
	if (s->ino == ino && s->text) {
		kind = s->kind;
		snprintf(buf, size, "%s", s->text);
	}
	pthread_mutex_unlock(&sd->lock);
	return kind;
}

uint64_t search_dir_query_ino(struct search_dir *sd, const char *name)
{
	return remember(sd, text_ino(name, NULL), SEARCH_QUERY, name);
}

uint64_t search_dir_link_ino(struct search_dir *sd, const char *query, const char *entry, const char *target)
{
	return remember(sd, text_ino(query, entry), SEARCH_LINK, target);
}

const char *search_dir_readme(void)
{
	return "Search the mesh from the shell\n"
	       "==============================\n\n"
	       "    ls /mesh/.search/churn/                 products matching \"churn\"\n"
	       "    ls '/mesh/.search/tracking number/'     every word must match\n"
	       "    ls /mesh/.search/cust*/                 a trailing * matches a prefix\n"
	       "    cd /mesh/.search/churn/crm.churn        a link to /mesh/crm/churn\n\n"
	       "Each entry is a symbolic link named DOMAIN.PRODUCT to ../../DOMAIN/PRODUCT,\n"
	       "best match first in `ls -U`.  The search covers domains, product names,\n"
	       "titles, descriptions, tags, owners, column names and descriptions, and is\n"
	       "answered for you: a restricted product you may not read is never listed.\n"
	       "Answers are never cached, so they follow the mesh as it changes.\n\n"
	       "With filters, JSON and snippets:  meshctl search WORDS [--domain D] [--tag T]\n"
	       "  [--classification C] [--status S] [--json]\n";
}

int search_dir_answer(const char *store, const char *query, search_visible_fn visible, void *ctx,
		      struct search_dir_entry **out, size_t *n, struct mesh_err *err)
{
	*out = NULL;
	*n = 0;
	char *copy = xstrdup(query);
	char *words[64];
	size_t nw = 0;
	char *save = NULL;
	for (char *w = strtok_r(copy, " \t", &save); w && nw < 64; w = strtok_r(NULL, " \t", &save))
		words[nw++] = w;
	char *fts = search_fts_query(words, nw);
	free(copy);
	if (!*fts) {
		free(fts);
		return 0;
	}
	struct index_query q = {.query = fts};
	struct index_hit *hits = NULL;
	size_t nh = 0;
	/* names only: a directory of links shows no snippet */
	int rc = search_run_opts(store, &q, &(struct search_opts){0}, visible, ctx, &hits, &nh, NULL, err);
	free(fts);
	if (rc)
		return rc;
	*out = xcalloc(nh + 1, sizeof **out);
	for (size_t i = 0; i < nh; i++) {
		snprintf((*out)[i].name, sizeof (*out)[i].name, "%s.%s", hits[i].domain, hits[i].product);
		snprintf((*out)[i].target, sizeof (*out)[i].target, "../../%s/%s", hits[i].domain, hits[i].product);
	}
	*n = nh;
	index_hits_free(hits, nh);
	return 0;
}
