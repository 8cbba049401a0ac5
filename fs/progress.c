/*
 * progress.c - a progress line on a terminal (contract in
 * include/progress.h).  No thread of its own: the caller that crosses the
 * next quarter-second mark renders, under a try-lock so parallel readers
 * never queue behind the terminal.
 */
#include "progress.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "mesh_util.h"

#define PROGRESS_INTERVAL_MS 250u         /* at most 4 lines a second (default) */
#define PROGRESS_MIN_MS 10u
#define PROGRESS_MAX_MS 60000u

struct progress {
	int fd;
	pthread_mutex_t lock;         /* label, total, start, shown; held while rendering */
	char *label;
	uint64_t total;
	int64_t start_ns;
	bool shown;                   /* a line is on the terminal */
	_Atomic uint64_t done;
	_Atomic int64_t next_ns;      /* no render before this */
	int64_t interval_ns;          /* between two renders */
};

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

unsigned progress_terminal_ms(int fd)
{
	const char *term = getenv("TERM");
	if (!isatty(fd) || (term && !strcmp(term, "dumb")))
		return 0;
	/* a slower terminal (or a test) may ask for another pace */
	const char *ms = getenv("MESHCTL_PROGRESS_INTERVAL_MS");
	char *end;
	long v = ms ? strtol(ms, &end, 10) : 0;
	if (ms && !*end && v >= (long)PROGRESS_MIN_MS && v <= (long)PROGRESS_MAX_MS)
		return (unsigned)v;
	return PROGRESS_INTERVAL_MS;
}

struct progress *progress_new(int fd, unsigned interval_ms)
{
	struct progress *p = xcalloc(1, sizeof *p);
	p->fd = fd;
	pthread_mutex_init(&p->lock, NULL);
	atomic_init(&p->done, 0);
	atomic_init(&p->next_ns, INT64_MAX);
	if (interval_ms < PROGRESS_MIN_MS)
		interval_ms = PROGRESS_MIN_MS;
	if (interval_ms > PROGRESS_MAX_MS)
		interval_ms = PROGRESS_MAX_MS;
	p->interval_ns = (int64_t)interval_ms * 1000000LL;
	return p;
}

static void write_all(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = write(fd, s, n);
		if (w <= 0)
			return;       /* a gone terminal is not the job's failure */
		s += w;
		n -= (size_t)w;
	}
}

static void human(char *buf, size_t size, double bytes)
{
	if (bytes >= 1e9)
		snprintf(buf, size, "%.2f GB", bytes / 1e9);
	else
		snprintf(buf, size, "%.1f MB", bytes / 1e6);
}

void progress_format(char *buf, size_t size, const char *label, uint64_t done, uint64_t total, double seconds)
{
	char d[32], t[32], eta[32] = "";
	human(d, sizeof d, (double)done);
	double rate = seconds > 0 ? (double)done / seconds : 0;
	if (total) {
		human(t, sizeof t, (double)total);
		if (rate > 0 && done < total) {
			long left = (long)ceil((double)(total - done) / rate);   /* "0s" would be a lie */
			if (left < 60)
				snprintf(eta, sizeof eta, "  ETA %lds", left);
			else
				snprintf(eta, sizeof eta, "  ETA %ldm%02lds", left / 60, left % 60);
		}
		snprintf(buf, size, "%s  %s / %s  %3.0f%%  %.0f MB/s%s", label, d, t,
			 done >= total ? 100.0 : 100.0 * (double)done / (double)total, rate / 1e6, eta);
	} else {
		snprintf(buf, size, "%s  %s  %.0f MB/s", label, d, rate / 1e6);
	}
}

static void render(struct progress *p, int64_t now)
{
	char line[512], out[600];
	uint64_t done = atomic_load_explicit(&p->done, memory_order_relaxed);
	progress_format(line, sizeof line, p->label ? p->label : "", done, p->total,
			(double)(now - p->start_ns) / 1e9);
	/* a line wider than the terminal would wrap, and \r returns to the
	 * start of the last row only: cut it to the width */
	struct winsize ws;
	if (ioctl(p->fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1 && strlen(line) >= ws.ws_col)
		line[ws.ws_col - 1] = '\0';
	/* \r, the line, erase what a longer previous line left */
	int n = snprintf(out, sizeof out, "\r%s\033[K", line);
	write_all(p->fd, out, n < 0 ? 0 : (size_t)n >= sizeof out ? sizeof out - 1 : (size_t)n);
	p->shown = true;
}

void progress_phase(struct progress *p, const char *label, uint64_t total)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	free(p->label);
	p->label = mesh_escape_text(label);
	p->total = total;
	p->start_ns = now_ns();
	atomic_store(&p->done, 0);
	atomic_store(&p->next_ns, p->start_ns + p->interval_ns);
	pthread_mutex_unlock(&p->lock);
}

void progress_relabel(struct progress *p, const char *label)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	free(p->label);
	p->label = mesh_escape_text(label);
	pthread_mutex_unlock(&p->lock);
}

void progress_add(struct progress *p, uint64_t bytes)
{
	if (!p)
		return;
	atomic_fetch_add_explicit(&p->done, bytes, memory_order_relaxed);
	int64_t next = atomic_load_explicit(&p->next_ns, memory_order_relaxed);
	int64_t now = now_ns();
	if (now < next)
		return;
	/* one caller wins the mark; the others carry on */
	if (!atomic_compare_exchange_strong(&p->next_ns, &next, now + p->interval_ns))
		return;
	if (pthread_mutex_trylock(&p->lock))
		return;
	render(p, now);
	pthread_mutex_unlock(&p->lock);
}

void progress_clear(struct progress *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	if (p->shown)
		write_all(p->fd, "\r\033[K", 4);
	p->shown = false;
	atomic_store(&p->next_ns, INT64_MAX);
	pthread_mutex_unlock(&p->lock);
}

void progress_free(struct progress *p)
{
	if (!p)
		return;
	progress_clear(p);
	pthread_mutex_destroy(&p->lock);
	free(p->label);
	free(p);
}
