/* Unit tests for progress.c: the line's text, and that a NULL progress or
 * one that is not due writes nothing. */
#include "check.h"
#include "progress.h"

#include <unistd.h>

int main(void)
{
	char buf[256];
	progress_format(buf, sizeof buf, "validating a.csv", 250000000, 1000000000, 1.0);
	CHECK(!strcmp(buf, "validating a.csv  250.0 MB / 1.00 GB   25%  250 MB/s  ETA 3s"));
	progress_format(buf, sizeof buf, "x", 1000, 1000, 0.5);
	CHECK(strstr(buf, "100%") && !strstr(buf, "ETA"));
	progress_format(buf, sizeof buf, "x", 1000000, 1000000000, 1.0);
	CHECK(strstr(buf, "ETA 16m39s") != NULL);
	progress_format(buf, sizeof buf, "x", 5000000, 0, 1.0);   /* total unknown */
	CHECK(!strcmp(buf, "x  5.0 MB  5 MB/s"));
	progress_add(NULL, 1);
	progress_phase(NULL, "x", 1);
	progress_clear(NULL);
	progress_free(NULL);
	/* nothing before the first quarter second, nothing to clear then */
	int fds[2];
	CHECK(pipe(fds) == 0);
	CHECK(progress_terminal_ms(fds[1]) == 0);           /* a pipe is not a terminal */
	struct progress *p = progress_new(fds[1], 250);
	progress_phase(p, "validating", 100);
	progress_add(p, 50);
	progress_free(p);
	close(fds[1]);
	CHECK(read(fds[0], buf, sizeof buf) == 0);
	close(fds[0]);
	return check_done("test_progress");
}
