/*
 * sqlrule.h - ODCS quality rules of `type: sql`, run in embedded SQLite.
 *
 * The data file (CSV or Parquet) of one schema object is loaded into an
 * in-memory table named after the object, one column per property
 * (INTEGER, REAL or TEXT affinity from the logical type; empty CSV fields
 * and Parquet nulls are NULL), but only when the file is at most the cap
 * given (never without one: memory grows with the file).  A rule's query
 * has its placeholders replaced by quoted identifiers: ${object},
 * {object}, ${table}, {table} by the table, ${column}, {column},
 * ${property}, {property} by the rule's property.  The query must be one
 * read-only SELECT whose first result column of the first row is a
 * number; it is judged by the rule's mustBe* bounds.
 *
 * Untrusted SQL: the connection is in-memory and defensive (no ATTACH, no
 * PRAGMA, no extension loading, no writes: an authorizer allows only
 * SELECT, reads and functions), the heap is capped while a session runs,
 * and a query is stopped after SQLRULE_MAX_SECONDS.  What SQLite cannot
 * run (another dialect, a syntax error, an unknown function) is listed as
 * not checked with SQLite's message, never as passed.
 *
 * Not thread-safe per session; sessions are independent.
 */
#ifndef SQLRULE_H
#define SQLRULE_H

#include <stdint.h>

#include "contract.h"
#include "validate.h"

#define SQLRULE_DEFAULT_MAX_BYTES (64u << 20)
#define SQLRULE_MAX_SECONDS 10

struct sqlrule_session;

/* A session over dirfd/file for `obj`; the file is loaded at the first
 * rule.  max_bytes 0: rules are listed as not checked.  Never NULL. */
struct sqlrule_session *sqlrule_session_new(const struct contract_object *obj, int dirfd, const char *file,
					    uint64_t max_bytes);
void sqlrule_session_free(struct sqlrule_session *s);

/* Run rule q (Q_SQL) and record the outcome in res: checked and passed,
 * failed with the value found, or not checked with the reason in note. */
void sqlrule_judge(struct sqlrule_session *s, const struct quality_rule *q, struct validate_rule_result *res);

#endif
