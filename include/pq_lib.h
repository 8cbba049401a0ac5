/*
 * pq_lib.h - libpq, loaded when first needed (dlopen of libpq.so.5), so
 * that a process that never talks to PostgreSQL does not pay for loading
 * it: libpq brings GSSAPI, LDAP and GnuTLS, about 5 ms of CPU at every
 * start of every meshctl command (measured: a program linked with -lpq
 * alone starts in 5.2 ms, one without in 0.7 ms).  Only fs/usage/pgsink.c
 * uses it.
 *
 * Not here: what is done with PostgreSQL (pgsink.h).
 * Thread-safety: pq_lib_get() may be called from any thread (pthread_once);
 * the table it returns is immutable.
 */
#ifndef PQ_LIB_H
#define PQ_LIB_H

#include <libpq-fe.h>

#include "mesh_err.h"

/* The functions of libpq meshfs calls, named as libpq names them. */
struct pq_lib {
	PQconninfoOption *(*PQconninfoParse)(const char *conninfo, char **errmsg);
	void (*PQconninfoFree)(PQconninfoOption *opts);
	void (*PQfreemem)(void *ptr);
	PGconn *(*PQconnectdbParams)(const char *const *keywords, const char *const *values, int expand_dbname);
	ConnStatusType (*PQstatus)(const PGconn *conn);
	char *(*PQerrorMessage)(const PGconn *conn);
	void (*PQfinish)(PGconn *conn);
	PGresult *(*PQexec)(PGconn *conn, const char *query);
	PGresult *(*PQexecParams)(PGconn *conn, const char *command, int nParams, const Oid *paramTypes,
				  const char *const *paramValues, const int *paramLengths, const int *paramFormats,
				  int resultFormat);
	ExecStatusType (*PQresultStatus)(const PGresult *res);
	char *(*PQresultErrorField)(const PGresult *res, int fieldcode);
	void (*PQclear)(PGresult *res);
	int (*PQntuples)(const PGresult *res);
	int (*PQgetisnull)(const PGresult *res, int tup_num, int field_num);
	char *(*PQgetvalue)(const PGresult *res, int tup_num, int field_num);
	int (*PQputCopyData)(PGconn *conn, const char *buffer, int nbytes);
	int (*PQputCopyEnd)(PGconn *conn, const char *errormsg);
	PGresult *(*PQgetResult)(PGconn *conn);
};

/* libpq's functions, loaded on the first call; NULL when libpq.so.5
 * cannot be loaded or lacks one of them (`err`, may be NULL, says which:
 * -ENOENT, "install libpq5"). */
const struct pq_lib *pq_lib_get(struct mesh_err *err);

#endif
