/*
 * mask_bench.c - masking throughput against plain reads of the same file,
 * in the same run.
 *
 *   mask_bench FILE [COLUMN...]     (default column: email)
 *   mask_bench --generate FILE MB   (a CSV of orders with emails, names,
 *                                    quoted notes with commas and newlines)
 *
 * Builds the index (timed), then reads FILE sequentially in 128 KiB and
 * 1 MiB windows, plainly with pread and masked with mask_read, best of
 * three passes each, and prints MB/s and the masked/plain ratio.  The file
 * is read once first so every pass reads from the page cache: the figures
 * compare CPU cost, which is what masking adds.  Not a unit test; built by
 * hand or by `make bench`:
 *
 *   cc -O2 -D_GNU_SOURCE -Iinclude tests/bench/mask_bench.c build/libmesh.a \
 *      $(pkg-config --libs fuse3 sqlite3 jansson yaml-0.1 libcrypto) -lpthread -o build/mask_bench
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mask.h"
#include "mesh_util.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Seconds for one sequential pass; masked when ix is not NULL. */
static double pass(int fd, const struct mask_index *ix, const struct mask_plan *plan, char *buf, size_t window,
		   uint64_t size)
{
	double start = now();
	for (uint64_t at = 0; at < size;) {
		size_t got = 0;
		if (ix) {
			struct mesh_err err = {0};
			if (mask_read(ix, plan, fd, buf, window, (off_t)at, &got, &err)) {
				fprintf(stderr, "mask_read at %llu: %s\n", (unsigned long long)at, err.msg);
				exit(1);
			}
		} else {
			ssize_t r = pread(fd, buf, window, (off_t)at);
			if (r <= 0) {
				perror("pread");
				exit(1);
			}
			got = (size_t)r;
		}
		at += got;
	}
	return now() - start;
}

static double best_of_three(int fd, const struct mask_index *ix, const struct mask_plan *plan, char *buf,
			    size_t window, uint64_t size)
{
	double best = 1e30;
	for (int i = 0; i < 3; i++) {
		double t = pass(fd, ix, plan, buf, window, size);
		if (t < best)
			best = t;
	}
	return best;
}

/* A deterministic CSV of about `mb` MB, shaped like the demo's orders. */
static int generate(const char *path, double mb)
{
	FILE *f = fopen(path, "w");
	if (!f) {
		perror(path);
		return 1;
	}
	static const char *names[] = {"Ana Lima", "\"Müller, Jörg\"", "Zoë Ng", "李雷", "O'Brien"};
	static const char *notes[] = {"", "ok", "\"late, call back\"", "\"said \"\"hi\"\"\nthen left\"",
				      "gift wrap", "\"a,b,c\""};
	static const char *countries[] = {"DE", "FR", "US", "PT", "CN"};
	fputs("order_id,customer,email,country,amount,created_at,note\r\n", f);
	uint64_t x = 88172645463325252ull;
	double limit = mb * 1e6;
	for (unsigned long row = 1; ftell(f) < (long)limit; row++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		fprintf(f, "%lu,%s,user%lu.%s@example.com,%s,%lu.%02lu,2026-%02lu-%02luT%02lu:%02lu:00Z,%s\r\n", row,
			names[x % 5], (unsigned long)(x >> 40), countries[(x >> 8) % 5], countries[(x >> 12) % 5],
			(unsigned long)((x >> 16) % 10000), (unsigned long)((x >> 24) % 100),
			(unsigned long)((x >> 32) % 12 + 1), (unsigned long)((x >> 36) % 28 + 1),
			(unsigned long)((x >> 44) % 24), (unsigned long)((x >> 50) % 60), notes[(x >> 56) % 6]);
	}
	return fclose(f) ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "--generate"))
		return generate(argv[2], atof(argv[3]));
	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE [COLUMN...]\n", argv[0]);
		return 2;
	}
	int fd = open(argv[1], O_RDONLY);
	if (fd < 0) {
		perror(argv[1]);
		return 1;
	}
	enum mask_format format;
	if (mask_format_for_name(argv[1], &format)) {
		fprintf(stderr, "%s: not CSV or JSON Lines\n", argv[1]);
		return 1;
	}
	const char *default_column = "email";
	const char *const *columns = argc > 2 ? (const char *const *)argv + 2 : &default_column;
	size_t n_columns = argc > 2 ? (size_t)argc - 2 : 1;

	struct mesh_err err = {0};
	struct mask_index *ix = NULL;
	struct mask_plan *plan = NULL;
	char *buf = xmalloc(1u << 20);
	(void)pass(fd, NULL, NULL, buf, 1u << 20, (uint64_t)lseek(fd, 0, SEEK_END));   /* into the page cache */
	double start = now();
	if (mask_index_build(fd, format, &ix, &err) || mask_plan_new(ix, columns, n_columns, &plan, &err)) {
		fprintf(stderr, "%s: %s\n", argv[1], err.msg);
		return 1;
	}
	double build = now() - start;
	uint64_t size = mask_index_size(ix);
	double mb = (double)size / 1e6;
	printf("file %s: %.1f MB, masking", argv[1], mb);
	for (size_t i = 0; i < n_columns; i++)
		printf(" %s", columns[i]);
	printf("\nindex build: %.2f s (%.0f MB/s)\n", build, mb / build);
	size_t windows[] = {128u << 10, 1u << 20};
	for (size_t w = 0; w < 2; w++) {
		double plain = best_of_three(fd, NULL, NULL, buf, windows[w], size);
		double masked = best_of_three(fd, ix, plan, buf, windows[w], size);
		printf("%4zu KiB windows: plain pread %7.0f MB/s, masked %6.0f MB/s, ratio %.2f\n", windows[w] >> 10,
		       mb / plain, mb / masked, plain / masked);
	}
	mask_plan_free(plan);
	mask_index_free(ix);
	free(buf);
	close(fd);
	return 0;
}
