/*
 * pq_lib.c - libpq loaded on first use (contract in include/pq_lib.h).
 * Not here: anything about PostgreSQL itself (pgsink.c).
 */
#include "pq_lib.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define PQ_LIB_SONAME "libpq.so.5"

static struct pq_lib table;
static const struct pq_lib *loaded;
static char failure[256];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void load(void)
{
	void *h = dlopen(PQ_LIB_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(failure, sizeof failure, "%s", dlerror());
		return;
	}
	/* every entry or none: a table with a NULL in it is never handed out */
	static const struct {
		const char *name;
		size_t offset;
	} syms[] = {
#define SYM(f) {#f, offsetof(struct pq_lib, f)}
		SYM(PQconninfoParse), SYM(PQconninfoFree), SYM(PQfreemem), SYM(PQconnectdbParams),
		SYM(PQstatus), SYM(PQerrorMessage), SYM(PQfinish), SYM(PQexec), SYM(PQexecParams),
		SYM(PQresultStatus), SYM(PQresultErrorField), SYM(PQclear), SYM(PQntuples), SYM(PQgetisnull),
		SYM(PQgetvalue), SYM(PQputCopyData), SYM(PQputCopyEnd), SYM(PQgetResult),
#undef SYM
	};
	for (size_t i = 0; i < sizeof syms / sizeof *syms; i++) {
		void *f = dlsym(h, syms[i].name);
		if (!f) {
			snprintf(failure, sizeof failure, "%s: no symbol %s", PQ_LIB_SONAME, syms[i].name);
			dlclose(h);
			return;
		}
		/* POSIX: a function pointer and void * have one representation */
		memcpy((char *)&table + syms[i].offset, &f, sizeof f);
	}
	loaded = &table;          /* h stays open for the process's life */
}

const struct pq_lib *pq_lib_get(struct mesh_err *err)
{
	pthread_once(&once, load);
	if (!loaded)
		mesh_errf(err, -ENOENT, "PostgreSQL client library: %s (install libpq5)", failure);
	return loaded;
}
