/*
 * changelog.h - the store's change log: which products changed, so that a
 * host's index (index.h) refreshes in proportion to the change instead of
 * stat'ing every product.
 *
 *   STORE/changes/<host>/<bucket>/<ns>.<pid>.<nonce>   one entry: "domain/product\n"
 *   STORE/changes/<host>/.pruned                       newest bucket removed
 *
 * Shared-filesystem rules: every entry is a new file, written under a
 * temporary name, fsynced and renamed into place (store_rename.h), never
 * changed afterwards; a host writes only under its own <host> directory
 * and only that host removes its buckets (retention, CHANGELOG_KEEP_SECONDS
 * by default), so no file has two writers.  <bucket> is the writer's UTC
 * time floored to CHANGELOG_BUCKET_SECONDS ("20261201T1250"): a reader
 * lists only the buckets at or after its position.  <ns> is the writer's
 * clock; positions are kept per host, so clocks of different hosts are
 * never compared.
 *
 * Writers (store.c) append after the change is in place and before the
 * generation counter moves, so a reader that sees the new generation finds
 * the entry.  A read looks again as far as CHANGELOG_MARGIN_SECONDS before
 * a position, for directory listings that a shared filesystem shows late;
 * the names it read there are kept in the position, not read twice.
 *
 * Not here: what a reader does with a product (index.c).  No state; every
 * call is independent (thread-safe).
 */
#ifndef CHANGELOG_H
#define CHANGELOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mesh_err.h"

#define CHANGELOG_DIR "changes"
#define CHANGELOG_BUCKET_SECONDS 600
#define CHANGELOG_KEEP_SECONDS (7 * 86400)
#define CHANGELOG_MARGIN_SECONDS 10

/* Record that `domain`/`product` changed (a release installed, a lifecycle
 * record written).  Creates the directories as needed (STORE_DIR_MODE);
 * when it opens a new bucket, removes this host's buckets older than
 * CHANGELOG_KEEP_SECONDS.  -errno with `err` naming the file. */
int changelog_append(const char *store, const char *domain, const char *product, struct mesh_err *err);

struct changelog_read {
	char *cursor;      /* the position after this read (malloc'ed text) */
	bool complete;     /* the keys are every product changed since the
			      given position; false: the log cannot say (no
			      position, no log, a host the position does not
			      know, entries pruned past it): walk the store */
	char **keys;       /* "domain/product", each once */
	size_t n_keys;
};

/* The products changed since `cursor` (NULL: none known; see .complete).
 * Unreadable entries are skipped (counted as incomplete).  Free with
 * changelog_read_free.  -errno only when the store cannot be read. */
int changelog_read_since(const char *store, const char *cursor, struct changelog_read *out, struct mesh_err *err);
void changelog_read_free(struct changelog_read *r);

/* The position to keep after a refresh that is not settled yet: `settled`'s
 * place for every host it knows (what came after is read again), and for
 * the hosts only `fresh` (the read's new position) knows, their newest
 * entry less the margin.  So a host new to the index does not make every
 * refresh walk the store while changes keep coming.  Malloc'ed. */
char *changelog_cursor_merge(const char *settled, const char *fresh);

/* Parse one entry's text: 0 and the two names, or -EINVAL (untrusted). */
int changelog_entry_parse(const char *text, size_t len, char domain[65], char product[65]);

#endif
