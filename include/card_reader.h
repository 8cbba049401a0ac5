/*
 * card_reader.h - a product card as one reader sees it.  The cards meshfs
 * keeps in the store (card.h) are templates: each classification cell of
 * the columns table carries a marker, and one marker says where the
 * reader's own section goes.  Rendering fills them in from the read
 * decision the mount makes for that reader (policy.h): for every column
 * whether it is masked for them and with which function, for every data
 * file whether they read it clear, as a view, or not at all, and when they
 * may not read the product how to ask for access.
 *
 * The mount renders a card at lookup and open for the calling uid (its
 * inode is the reader's, like a masked view's: daemon.c); `meshctl show`
 * and MCP describe_product render the same section for ctx->caller.
 *
 * Markers use bytes that card.c never lets through from contract text
 * (0x1e, 0x1f), so a description cannot forge one.  A stored card without
 * markers (written before them) gets the section appended.
 *
 * All functions are pure (no I/O) and thread-safe.
 */
#ifndef CARD_READER_H
#define CARD_READER_H

#include <stddef.h>
#include <time.h>

#include "catalog.h"
#include "identity.h"
#include "policy.h"

#define CARD_MARK_START '\x1e'
#define CARD_MARK_END   '\x1f'

struct strbuf;

/* Append the marker of a classification cell (card.c) / of the reader's
 * section. */
void card_mark_classification(struct strbuf *sb, const char *classification);
void card_mark_reader(struct strbuf *sb);

/* The decision for `who` on `version` (a CAT_VERSION node; NULL: the
 * product in general, domain/product given): every classification of its
 * data files at once, as the daemon decides at open.  `p` NULL (no policy
 * loaded) denies.  Clear *out with policy_decision_clear. */
void card_reader_decide(const struct policy *p, const struct identity *who, const char *domain,
			const char *product, const struct cat_node *version, time_t now,
			struct policy_decision *out);

/* The reader's section (Markdown, malloc'ed): "## What you see" with the
 * decision, the masked columns per data file and their functions, or how
 * to request access.  `mount` names paths in examples ("/mesh"). */
char *card_reader_section(const char *domain, const char *product, const struct cat_node *version,
			  const struct policy_decision *dec);

/* The same as JSON (a json_t *, new reference): {decision, reason,
 * files: [{file, decision, masked: [{column, classification, function}]}],
 * request}. */
void *card_reader_json(const char *domain, const char *product, const struct cat_node *version,
		       const struct policy_decision *dec);

/* The card `tmpl` (len bytes) rendered for the reader: malloc'ed, length
 * in *out_len. */
char *card_render(const char *tmpl, size_t len, const char *domain, const char *product,
		  const struct cat_node *version, const struct policy_decision *dec, size_t *out_len);

/* A stable text naming what the rendering depends on besides the
 * template (the decision, the version's files): two readers with the same
 * key get the same bytes.  Malloc'ed. */
char *card_reader_key(const struct cat_node *version, const struct policy_decision *dec);

#endif
