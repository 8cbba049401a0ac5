/*
 * store_guard.c - the daemon's background full audit of the store and
 * the refusal of opens while it fails (contract in include/store_guard.h).
 *
 * Not here: the audit itself (store_audit.c), answering FUSE requests
 * (meshfs.c asks store_guard_refuses before each open).
 */
#include "store_guard.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "mesh_util.h"
#include "store_audit.h"

/* linux/ioprio.h: the idle I/O class, for the calling thread */
#define GUARD_IOPRIO_WHO_PROCESS 1
#define GUARD_IOPRIO_CLASS_IDLE 3
#define GUARD_IOPRIO_CLASS_SHIFT 13

struct store_guard {
	char *store, *state_path;
	bool insecure;
	atomic_bool refusing;
	atomic_bool cancel;          /* store_guard_stop: end an audit in progress */
	pthread_mutex_t lock;        /* protects pending, stopping */
	pthread_cond_t wake;
	bool pending, stopping;
	pthread_t thread;
};

/* The report, one syslog line per line of it. */
static void log_report(int level, const char *report)
{
	for (const char *p = report; p && *p;) {
		size_t n = strcspn(p, "\n");
		syslog(level, "store audit: %.*s", (int)n, p);
		p += n;
		if (*p)
			p++;
	}
}

static void guard_audit(struct store_guard *g)
{
	char *report = NULL;
	struct store_audit_info info;
	struct mesh_err err = {0};
	int problems = store_audit_run(g->store, g->state_path, false, &g->cancel, &report, &info, &err);
	if (problems == -ECANCELED)
		return;
	if (problems < 0) {
		/* a walk that fails says nothing about the store: refuse (fail closed) */
		syslog(LOG_ERR, "store audit of %s failed: %s%s", g->store, err.msg,
		       g->insecure ? "" : "; refusing every open until an audit succeeds");
		if (!g->insecure)
			atomic_store(&g->refusing, true);
	} else if (problems > 0) {
		syslog(LOG_ERR, "store audit: %s is NOT locked down (%d problem(s))%s", g->store, problems,
		       g->insecure ? " (-o insecure_store: served anyway)"
				   : ": refusing every open (EACCES) until an audit is clean");
		log_report(LOG_ERR, report);
		if (!g->insecure)
			atomic_store(&g->refusing, true);
	} else {
		if (atomic_exchange(&g->refusing, false))
			syslog(LOG_NOTICE, "store audit: %s is locked down again: serving opens", g->store);
		else
			syslog(LOG_INFO, "store audit: %s locked down (full audit, %zu directories, %.2f s)", g->store,
			       info.dirs, info.seconds);
	}
	if (info.note[0])
		syslog(LOG_NOTICE, "store audit record not kept: %s", info.note);
	free(report);
}

static void *guard_main(void *arg)
{
	struct store_guard *g = arg;
	/* behind every request: the idle scheduling class and I/O class
	 * (both per thread on Linux) */
	struct sched_param sp = {0};
	pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
	syscall(SYS_ioprio_set, GUARD_IOPRIO_WHO_PROCESS, 0,
		GUARD_IOPRIO_CLASS_IDLE << GUARD_IOPRIO_CLASS_SHIFT);
	pthread_mutex_lock(&g->lock);
	while (!g->stopping) {
		if (!g->pending) {
			if (atomic_load(&g->refusing)) {
				struct timespec until;
				clock_gettime(CLOCK_MONOTONIC, &until);
				until.tv_sec += STORE_GUARD_RETRY_SECONDS;
				if (pthread_cond_timedwait(&g->wake, &g->lock, &until) == ETIMEDOUT)
					g->pending = true;
			} else {
				pthread_cond_wait(&g->wake, &g->lock);
			}
			continue;
		}
		g->pending = false;
		pthread_mutex_unlock(&g->lock);
		guard_audit(g);
		pthread_mutex_lock(&g->lock);
	}
	pthread_mutex_unlock(&g->lock);
	return NULL;
}

int store_guard_start(const char *store, const char *state_path, bool audit_now, bool insecure,
		      struct store_guard **out, struct mesh_err *err)
{
	struct store_guard *g = xcalloc(1, sizeof *g);
	g->store = xstrdup(store);
	g->state_path = state_path ? xstrdup(state_path) : NULL;
	g->insecure = insecure;
	g->pending = audit_now;
	atomic_init(&g->refusing, false);
	atomic_init(&g->cancel, false);
	pthread_mutex_init(&g->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&g->wake, &ca);
	pthread_condattr_destroy(&ca);
	int rc = pthread_create(&g->thread, NULL, guard_main, g);
	if (rc) {
		pthread_cond_destroy(&g->wake);
		pthread_mutex_destroy(&g->lock);
		free(g->store);
		free(g->state_path);
		free(g);
		return mesh_errf(err, -rc, "store audit thread: %s", strerror(rc));
	}
	pthread_setname_np(g->thread, "store-guard");
	*out = g;
	return 0;
}

bool store_guard_refuses(const struct store_guard *g)
{
	return g && atomic_load_explicit(&((struct store_guard *)g)->refusing, memory_order_relaxed);
}

void store_guard_recheck(struct store_guard *g)
{
	if (!g)
		return;
	pthread_mutex_lock(&g->lock);
	g->pending = true;
	pthread_cond_signal(&g->wake);
	pthread_mutex_unlock(&g->lock);
}

void store_guard_stop(struct store_guard *g)
{
	if (!g)
		return;
	pthread_mutex_lock(&g->lock);
	g->stopping = true;
	atomic_store(&g->cancel, true);
	pthread_cond_signal(&g->wake);
	pthread_mutex_unlock(&g->lock);
	pthread_join(g->thread, NULL);
	pthread_cond_destroy(&g->wake);
	pthread_mutex_destroy(&g->lock);
	free(g->store);
	free(g->state_path);
	free(g);
}
