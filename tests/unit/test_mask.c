/*
 * Unit tests for mask.c: hand-checked expected files, every window equal to
 * the same slice of the whole masked file (random windows, every length at
 * a few offsets, several checkpoint intervals), generated files of several
 * MB whose expected masked form is generated alongside them, fail-closed
 * errors with their line and column, and concurrent readers.
 */
#include "check.h"
#include "mask.h"
#include "mesh_util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

static const char *data_dir(void)
{
	const char *d = getenv("MESH_TEST_DATA");
	return d ? d : "tests/unit/data";
}

static int fd_with(const void *data, size_t len)
{
	int fd = memfd_create("mask-test", 0);
	if (fd < 0 || mesh_write_all(fd, data, len) != 0) {
		perror("memfd");
		exit(2);
	}
	return fd;
}

static char *read_data(const char *name, size_t *len)
{
	char path[512];
	snprintf(path, sizeof path, "%s/mask/%s", data_dir(), name);
	char *data = NULL;
	struct mesh_err err = {0};
	if (mesh_read_file_at(AT_FDCWD, path, 64 << 20, &data, len, &err)) {
		fprintf(stderr, "%s\n", err.msg);
		exit(2);
	}
	return data;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* The whole masked file in one mask_read. */
static char *mask_whole(const struct mask_index *ix, const struct mask_plan *plan, int fd, size_t *len)
{
	size_t size = (size_t)mask_index_size(ix);
	char *out = xmalloc(size + 1);
	struct mesh_err err = {0};
	size_t got = 12345;
	int rc = mask_read(ix, plan, fd, out, size + 1, 0, &got, &err);
	CHECK(rc == 0);
	if (rc)
		fprintf(stderr, "mask_read: %s\n", err.msg);
	CHECK(got == size);
	*len = got;
	return out;
}

static int window_failures;

static void check_window(const struct mask_index *ix, const struct mask_plan *plan, int fd, const char *whole,
			 size_t size, size_t offset, size_t len, char *buf)
{
	struct mesh_err err = {0};
	size_t got = 0;
	memset(buf, '#', len);
	int rc = mask_read(ix, plan, fd, buf, len, (off_t)offset, &got, &err);
	size_t want = offset >= size ? 0 : (len < size - offset ? len : size - offset);
	check_count++;
	if (rc || got != want || memcmp(buf, whole + (offset < size ? offset : size), want)) {
		check_failures++;
		if (window_failures++ < 5)
			fprintf(stderr, "window offset %zu len %zu: rc %d (%s) got %zu want %zu\n", offset, len, rc,
				err.msg, got, want);
	}
}

/* Random windows, every length 1..max_every at a few offsets, and windows
 * around every checkpoint near the start. */
static void check_windows(const struct mask_index *ix, const struct mask_plan *plan, int fd, const char *whole,
			  size_t size, size_t n_random, size_t max_len, size_t max_every, size_t interval)
{
	char *buf = xmalloc(max_len + max_every + 2);
	for (size_t i = 0; i < n_random; i++) {
		size_t offset = size ? (size_t)(rnd() % (size + 2)) : 0;
		size_t len = 1 + (size_t)(rnd() % (rnd() % 4 == 0 ? max_len : 300));
		check_window(ix, plan, fd, whole, size, offset, len, buf);
	}
	size_t offsets[] = {0, 1, size / 3, size / 2, size > 2 ? size - 2 : 0};
	for (size_t o = 0; o < sizeof offsets / sizeof *offsets; o++)
		for (size_t len = 1; len <= max_every; len++)
			check_window(ix, plan, fd, whole, size, offsets[o], len, buf);
	for (size_t cp = 0; cp < size && cp < 40 * interval; cp += interval)
		for (size_t d = 0; d < 3; d++) {
			check_window(ix, plan, fd, whole, size, cp + d, 7, buf);
			if (cp >= d + 1)
				check_window(ix, plan, fd, whole, size, cp - d - 1, 5, buf);
		}
	check_window(ix, plan, fd, whole, size, size, 10, buf);
	check_window(ix, plan, fd, whole, size, size + 100, 10, buf);
	free(buf);
}

static struct mask_index *build(int fd, enum mask_format format, size_t interval, struct mesh_err *err)
{
	struct mask_index *ix = NULL;
	int rc = mask_index_build_interval(fd, format, interval, &ix, err);
	if (rc)
		return NULL;
	return ix;
}

/* The data files against their hand-written expected files, at several
 * checkpoint intervals. */
static void test_expected_file(const char *name, enum mask_format format, const char *const *cols, size_t n_cols)
{
	size_t len, exp_len;
	char *data = read_data(name, &len);
	char expected_name[128];
	snprintf(expected_name, sizeof expected_name, "%s.expected", name);
	char *expected = read_data(expected_name, &exp_len);
	CHECK(len == exp_len);
	int fd = fd_with(data, len);
	size_t intervals[] = {64, 128, 192, MASK_INTERVAL};
	for (size_t t = 0; t < sizeof intervals / sizeof *intervals; t++) {
		struct mesh_err err = {0};
		struct mask_index *ix = build(fd, format, intervals[t], &err);
		CHECK(ix != NULL);
		if (!ix) {
			fprintf(stderr, "%s: %s\n", name, err.msg);
			continue;
		}
		struct mask_plan *plan = NULL;
		CHECK(mask_plan_new(ix, cols, n_cols, &plan, &err) == 0);
		size_t got;
		char *whole = mask_whole(ix, plan, fd, &got);
		CHECK(got == exp_len && !memcmp(whole, expected, exp_len));
		if (got != exp_len || memcmp(whole, expected, exp_len))
			fprintf(stderr, "%s: masked output differs from expected:\n%.*s\n", name, (int)got, whole);
		check_windows(ix, plan, fd, whole, got, 3000, 400, got + 3, intervals[t]);
		/* an empty plan gives the file itself */
		struct mask_plan *none = NULL;
		CHECK(mask_plan_new(ix, NULL, 0, &none, &err) == 0 && mask_plan_empty(none));
		size_t clear_len;
		char *clear = mask_whole(ix, none, fd, &clear_len);
		CHECK(clear_len == len && !memcmp(clear, data, len));
		free(clear);
		mask_plan_free(none);
		free(whole);
		mask_plan_free(plan);
		mask_index_free(ix);
	}
	close(fd);
	free(data);
	free(expected);
}

/* ---- generated files: the input and its expected masked form together ---- */

struct gen {
	struct strbuf in, out;
};

static void put(struct gen *g, const char *s, size_t n, bool masked, bool stars_only)
{
	strbuf_add(&g->in, s, n);
	if (!masked) {
		strbuf_add(&g->out, s, n);
		return;
	}
	(void)stars_only;
	for (size_t i = 0; i < n; i++)
		strbuf_add(&g->out, "*", 1);
}

static void put_both(struct gen *g, const char *s)
{
	put(g, s, strlen(s), false, false);
}

/* Raw (already escaped) content of a CSV quoted field. */
static void random_quoted(struct strbuf *sb, size_t len)
{
	static const char *pieces[] = {"a", "bc", ",", "\"\"", "\n", "\r\n", "é", "中", " ", "x,y", "\"\"\"\""};
	while (sb->len < len) {
		const char *p = pieces[rnd() % (sizeof pieces / sizeof *pieces)];
		strbuf_puts(sb, p);
	}
}

static void csv_field(struct gen *g, const char *raw, bool quoted, bool masked)
{
	if (quoted)
		put_both(g, "\"");
	put(g, raw, strlen(raw), masked, true);
	if (quoted)
		put_both(g, "\"");
}

static void gen_csv(struct gen *g, size_t target)
{
	put_both(g, "id,email,note,city,amount\r\n");
	for (unsigned row = 1; g->in.len < target; row++) {
		char text[128];
		const char *eol = row % 3 == 0 ? "\n" : "\r\n";
		snprintf(text, sizeof text, "%u", row);
		csv_field(g, text, false, false);
		put_both(g, ",");
		switch (rnd() % 5) {
		case 0: snprintf(text, sizeof text, "user%u@example.com", row); csv_field(g, text, false, true); break;
		case 1: snprintf(text, sizeof text, "x, \"\"y%u\"\"@e.org", row); csv_field(g, text, true, true); break;
		case 2: csv_field(g, "", rnd() % 2, true); break;
		case 3: csv_field(g, "ü@例.de", false, true); break;
		default: csv_field(g, "line\r\nbreak@x.org", true, true); break;
		}
		put_both(g, ",");
		struct strbuf note = STRBUF_INIT;
		bool quoted = true;
		if (row % 400 == 0)
			random_quoted(&note, 20000 + (size_t)(rnd() % 150000));   /* spans checkpoints */
		else if (rnd() % 3)
			random_quoted(&note, (size_t)(rnd() % 60));
		else
			strbuf_puts(&note, "plain note"), quoted = false;
		csv_field(g, note.buf ? note.buf : "", quoted, true);
		strbuf_release(&note);
		if (row % 7 == 0) {   /* a short record */
			put_both(g, eol);
			continue;
		}
		put_both(g, ",");
		csv_field(g, rnd() % 2 ? "Zürich" : "Nice, FR", true, false);
		put_both(g, ",");
		snprintf(text, sizeof text, "%u.%02u", (unsigned)(rnd() % 1000), (unsigned)(rnd() % 100));
		csv_field(g, text, false, false);
		if (g->in.len < target || rnd() % 2)
			put_both(g, eol);
	}
}

/* JSON values: raw and masked forms side by side. */
static void json_string(struct gen *g, const char *raw, bool masked)
{
	put_both(g, "\"");
	put(g, raw, strlen(raw), masked, true);
	put_both(g, "\"");
}

static void json_number(struct gen *g, const char *text, bool masked)
{
	strbuf_puts(&g->in, text);
	if (!masked) {
		strbuf_puts(&g->out, text);
		return;
	}
	strbuf_puts(&g->out, "0");
	for (size_t i = 1; i < strlen(text); i++)
		strbuf_puts(&g->out, " ");
}

static void json_literal(struct gen *g, const char *word, bool masked)
{
	strbuf_puts(&g->in, word);
	strbuf_puts(&g->out, !masked ? word : !strcmp(word, "false") ? "null " : "null");
}

static const char *random_string(void)
{
	static const char *strings[] = {"", "plain", "with \\\"quotes\\\"", "back\\\\slash", "uni \\u00e9\\u4e2d",
					"pair \\ud83d\\ude00", "tab\\tnew\\nline", "ü中文", "slash\\/", "{[,:]}"};
	return strings[rnd() % (sizeof strings / sizeof *strings)];
}

static const char *random_number(void)
{
	static const char *numbers[] = {"0", "-1", "42", "3.25", "-0.5e-3", "1E+10", "123456789012"};
	return numbers[rnd() % (sizeof numbers / sizeof *numbers)];
}

static void json_value(struct gen *g, bool masked, int depth)
{
	unsigned kind = (unsigned)(rnd() % (depth < 3 ? 7 : 5));
	switch (kind) {
	case 0: case 1: json_string(g, random_string(), masked); break;
	case 2: json_number(g, random_number(), masked); break;
	case 3: json_literal(g, rnd() % 3 == 0 ? "true" : rnd() % 2 ? "false" : "null", masked); break;
	case 4: json_number(g, "7", masked); break;
	case 5: {
		put_both(g, "{");
		unsigned n = (unsigned)(rnd() % 4);
		for (unsigned i = 0; i < n; i++) {
			put_both(g, i ? ", " : "");
			json_string(g, random_string(), false);   /* nested keys are names: kept */
			put_both(g, ": ");
			json_value(g, masked, depth + 1);
		}
		put_both(g, "}");
		break;
	}
	default: {
		put_both(g, "[ ");
		unsigned n = (unsigned)(rnd() % 5);
		for (unsigned i = 0; i < n; i++) {
			put_both(g, i ? " ,\t" : "");
			json_value(g, masked, depth + 1);
		}
		put_both(g, "]");
		break;
	}
	}
}

static void gen_jsonl(struct gen *g, size_t target)
{
	static const char *keys[] = {"id", "email", "score", "note", "profile", "vip", "\\u0065mail", "e\\u006dail",
				     "emai", "emaill", "\\\"email\\\""};
	static const bool masked_key[] = {false, true, true, false, true, true, true, true, false, false, false};
	for (unsigned line = 1; g->in.len < target; line++) {
		const char *eol = line % 5 == 0 ? "\r\n" : "\n";
		if (line % 50 == 0) {
			put_both(g, "[{\"email\": \"left@as.is\"}, 1, \"not an object\"]");
			put_both(g, eol);
			continue;
		}
		if (line % 77 == 0) {
			put_both(g, eol);   /* blank line */
			continue;
		}
		put_both(g, line % 2 ? "{" : " { ");
		unsigned n = 1 + (unsigned)(rnd() % 6);
		for (unsigned i = 0; i < n; i++) {
			unsigned k = (unsigned)(rnd() % (sizeof keys / sizeof *keys));
			put_both(g, i ? "," : "");
			json_string(g, keys[k], false);
			put_both(g, rnd() % 2 ? ":" : " : ");
			if (line % 300 == 0 && i == 0) {   /* a long masked value spanning checkpoints */
				struct strbuf big = STRBUF_INIT;
				while (big.len < 100000)
					strbuf_puts(&big, random_string());
				json_string(g, big.buf, masked_key[k]);
				strbuf_release(&big);
			} else {
				json_value(g, masked_key[k], 0);
			}
		}
		if (line % 301 == 0) {   /* a long key that matches nothing */
			put_both(g, ",\"");
			for (int i = 0; i < 500; i++)
				put_both(g, "\\u0065");
			put_both(g, "\":1");
		}
		put_both(g, "}");
		put_both(g, eol);
	}
}

static void test_generated(const char *what, enum mask_format format, size_t target, const char *const *cols,
			   size_t n_cols)
{
	struct gen g = {STRBUF_INIT, STRBUF_INIT};
	if (format == MASK_CSV)
		gen_csv(&g, target);
	else
		gen_jsonl(&g, target);
	CHECK(g.in.len == g.out.len);
	int fd = fd_with(g.in.buf, g.in.len);
	size_t intervals[] = {MASK_INTERVAL, 64, 4096 + 64};
	for (size_t t = 0; t < sizeof intervals / sizeof *intervals; t++) {
		struct mesh_err err = {0};
		struct mask_index *ix = build(fd, format, intervals[t], &err);
		CHECK(ix != NULL);
		if (!ix) {
			fprintf(stderr, "%s: %s\n", what, err.msg);
			break;
		}
		struct mask_plan *plan = NULL;
		CHECK(mask_plan_new(ix, cols, n_cols, &plan, &err) == 0);
		size_t got;
		char *whole = mask_whole(ix, plan, fd, &got);
		bool same = got == g.out.len && !memcmp(whole, g.out.buf, got);
		CHECK(same);
		if (!same) {
			size_t i = 0;
			while (i < got && whole[i] == g.out.buf[i])
				i++;
			size_t from = i > 80 ? i - 80 : 0;
			fprintf(stderr, "%s: first difference at %zu:\n got: %.160s\nwant: %.160s\n  in: %.160s\n", what, i,
				whole + from, g.out.buf + from, g.in.buf + from);
		}
		check_windows(ix, plan, fd, whole, got, t == 0 ? 300 : 120, 1u << 20, 200, intervals[t]);
		free(whole);
		mask_plan_free(plan);
		mask_index_free(ix);
	}
	close(fd);
	strbuf_release(&g.in);
	strbuf_release(&g.out);
}

/* ---- edge cases and errors ---- */

static int build_text(const char *text, enum mask_format format, struct mask_index **ix, struct mesh_err *err)
{
	int fd = fd_with(text, strlen(text));
	int rc = mask_index_build_interval(fd, format, 64, ix, err);
	close(fd);
	return rc;
}

/* Mask `text` whole; returns a malloc'ed string or NULL. */
static char *mask_text(const char *text, enum mask_format format, const char *col, struct mesh_err *err)
{
	int fd = fd_with(text, strlen(text));
	struct mask_index *ix = NULL;
	struct mask_plan *plan = NULL;
	char *out = NULL;
	if (!mask_index_build_interval(fd, format, 64, &ix, err) &&
	    !mask_plan_new(ix, &col, col ? 1 : 0, &plan, err)) {
		size_t len = strlen(text);
		out = xcalloc(1, len + 1);
		size_t got;
		if (mask_read(ix, plan, fd, out, len, 0, &got, err) || got != len) {
			free(out);
			out = NULL;
		}
	}
	mask_plan_free(plan);
	mask_index_free(ix);
	close(fd);
	return out;
}

static void expect_masked(const char *text, enum mask_format format, const char *col, const char *want)
{
	struct mesh_err err = {0};
	char *got = mask_text(text, format, col, &err);
	CHECK_STR(got ? got : err.msg, want);
	free(got);
}

static void expect_build_error(const char *text, enum mask_format format, const char *message)
{
	struct mask_index *ix = NULL;
	struct mesh_err err = {0};
	CHECK(build_text(text, format, &ix, &err) == -EINVAL);
	CHECK(ix == NULL);
	CHECK_CONTAINS(err.msg, message);
}

static void test_csv_edges(void)
{
	struct mesh_err err = {0};
	struct mask_index *ix = NULL;
	struct mask_plan *plan = NULL;

	/* empty file */
	CHECK(build_text("", MASK_CSV, &ix, &err) == 0);
	CHECK(mask_index_size(ix) == 0 && mask_index_columns(ix) == 0);
	const char *email = "email";
	CHECK(mask_plan_new(ix, &email, 1, &plan, &err) == -ENOENT);
	CHECK_CONTAINS(err.msg, "\"email\" is not in the header (the file is empty)");
	CHECK(mask_plan_new(ix, NULL, 0, &plan, &err) == 0);
	char buf[16];
	size_t got = 99;
	int fd = fd_with("", 0);
	CHECK(mask_read(ix, plan, fd, buf, sizeof buf, 0, &got, &err) == 0 && got == 0);
	close(fd);
	mask_plan_free(plan);
	mask_index_free(ix);

	/* header only, with and without a line end; a BOM; names unquoted */
	expect_masked("id,email\r\n", MASK_CSV, "email", "id,email\r\n");
	expect_masked("id,email", MASK_CSV, "email", "id,email");
	expect_masked("\xef\xbb\xbfid,\"e\"\"mail\"\n1,x@y\n", MASK_CSV, "e\"mail",
		      "\xef\xbb\xbfid,\"e\"\"mail\"\n1,***\n");
	CHECK(build_text("\xef\xbb\xbf\"id\",\"two\nlines\"\r\n1,2\n", MASK_CSV, &ix, &err) == 0);
	CHECK(mask_index_columns(ix) == 2);
	CHECK_STR(mask_index_column(ix, 0), "id");
	CHECK_STR(mask_index_column(ix, 1), "two\nlines");
	CHECK(mask_index_column(ix, 2) == NULL);
	mask_index_free(ix);

	/* a column the header lacks: the error names it and lists the header */
	CHECK(build_text("id,email\n1,a@b\n", MASK_CSV, &ix, &err) == 0);
	const char *cols[] = {"email", "ssn"};
	CHECK(mask_plan_new(ix, cols, 2, &plan, &err) == -ENOENT);
	CHECK(plan == NULL);
	CHECK_CONTAINS(err.msg, "column to mask \"ssn\" is not in the header (id, email)");
	const char *empty_name = "";
	CHECK(mask_plan_new(ix, &empty_name, 1, &plan, &err) == -EINVAL);
	mask_index_free(ix);

	/* duplicate header names: both masked; short records; a final field without line end */
	expect_masked("a,b,a\n1,2,3\n4\n5,6,\"7\"", MASK_CSV, "a", "a,b,a\n*,2,*\n*\n*,6,\"*\"");
	/* CR kept, quotes kept, "" and embedded line ends masked */
	expect_masked("a,b\r\n\"x\"\"\r\ny\",\"\"\r\n,\"\"\"\"\r\n", MASK_CSV, "a",
		      "a,b\r\n\"******\",\"\"\r\n,\"\"\"\"\r\n");
	expect_masked("a,b\r\nxyz,1\r\n", MASK_CSV, "b", "a,b\r\nxyz,*\r\n");

	/* fail closed: ambiguous CSV is refused with line and column */
	expect_build_error("a,b\n1,\"open\n", MASK_CSV, "line 2, column 3: a quoted field is never closed");
	expect_build_error("a,b\n1,x\"y\n", MASK_CSV, "line 2, column 4: a quote inside an unquoted field");
	expect_build_error("a,b\n1,\"x\"y\n", MASK_CSV, "line 2, column 6: text after the closing quote");
	expect_build_error("a,b\n1,2\r3\n", MASK_CSV, "line 2, column 5: a CR outside quotes is not followed by LF");
	expect_build_error("a,b\n1,2\r", MASK_CSV, "a CR outside quotes is not followed by LF");
	expect_build_error("a,b\n1,2\n3,4,5\n", MASK_CSV, "line 3, column 5: the record has more fields than the header");
	expect_build_error("a,\"b\n", MASK_CSV, "quoted field is never closed (header row)");
	expect_build_error("a,b\"c\n1,2\n", MASK_CSV, "line 1, column 4: a quote inside an unquoted field (header row)");
	expect_build_error("a,b\rc\n", MASK_CSV, "CR outside quotes is not followed by LF (header row)");
	/* the same errors far from the start (past several blocks and checkpoints) */
	struct strbuf big = STRBUF_INIT;
	strbuf_puts(&big, "a,b\n");
	for (int i = 0; i < 1000; i++)
		strbuf_puts(&big, "1,\"two\nlines\"\n");
	strbuf_puts(&big, "3,x\"\n");
	expect_build_error(big.buf, MASK_CSV, "line 2002, column 4: a quote inside an unquoted field");
	strbuf_release(&big);

	/* a header longer than MASK_HEADER_MAX */
	char *huge = xmalloc(MASK_HEADER_MAX + 100);
	memset(huge, 'h', MASK_HEADER_MAX + 99);
	huge[MASK_HEADER_MAX + 99] = '\0';
	expect_build_error(huge, MASK_CSV, "header row is longer than");
	free(huge);
}

static void test_json_edges(void)
{
	expect_masked("", MASK_JSONL, "email", "");
	expect_masked("\n\n", MASK_JSONL, "email", "\n\n");
	expect_masked("{}\n[]\n\"s\"\n12\nnull\n", MASK_JSONL, "email", "{}\n[]\n\"s\"\n12\nnull\n");
	expect_masked("{\"email\":\"x\"}", MASK_JSONL, "email", "{\"email\":\"*\"}");
	expect_masked("{\"email\":-12.5e3}\n", MASK_JSONL, "email", "{\"email\":0      }\n");
	expect_masked("{\"email\":-12.5e3}", MASK_JSONL, "email", "{\"email\":0      }");
	expect_masked("{\"email\":false,\"x\":true}", MASK_JSONL, "email", "{\"email\":null ,\"x\":true}");
	expect_masked("{\"email\":[[],{},[{\"a\":[1,true]}]]}", MASK_JSONL, "email",
		      "{\"email\":[[],{},[{\"a\":[0,null]}]]}");
	/* escaped key names match; nested keys of the same name do not */
	expect_masked("{\"\\u0065mail\":\"a\\\"b\",\"n\":{\"email\":\"k\"}}", MASK_JSONL, "email",
		      "{\"\\u0065mail\":\"****\",\"n\":{\"email\":\"k\"}}");
	/* a key with a surrogate pair */
	expect_masked("{\"\\ud83d\\ude00\":1,\"😀\":2}", MASK_JSONL, "😀", "{\"\\ud83d\\ude00\":0,\"😀\":0}");
	expect_masked("\xef\xbb\xbf{\"email\":\"x\"}\n", MASK_JSONL, "email", "\xef\xbb\xbf{\"email\":\"*\"}\n");

	expect_build_error("{\"a\":1}\n{\"a\":}\n", MASK_JSONL, "line 2, column 6: an unexpected closing bracket");
	expect_build_error("{\"a\":\"x", MASK_JSONL, "line 1, column 8: a string is never closed");
	expect_build_error("{\"a\":tru}", MASK_JSONL, "line 1, column 9: an invalid literal");
	expect_build_error("{\"a\":nulll}", MASK_JSONL, "an invalid literal");
	expect_build_error("{\"a\":01}", MASK_JSONL, "line 1, column 7: a malformed number");
	expect_build_error("{\"a\":1.}", MASK_JSONL, "a malformed number");
	expect_build_error("{\"a\":-}", MASK_JSONL, "a malformed number");
	expect_build_error("{\"a\":1e}", MASK_JSONL, "a malformed number");
	expect_build_error("1.5e", MASK_JSONL, "a malformed number");
	expect_build_error("{\"a\":1} x", MASK_JSONL, "line 1, column 9: text after the line's JSON value");
	expect_build_error("{\"a\":\"\x01\"}", MASK_JSONL, "a control character inside a string");
	expect_build_error("{\"a\":\"\\q\"}", MASK_JSONL, "an invalid escape");
	expect_build_error("{\"a\":\"\\u12G4\"}", MASK_JSONL, "four hex digits");
	expect_build_error("{\"a\":1,}", MASK_JSONL, "an unexpected closing bracket");
	expect_build_error("{\"a\" 1}", MASK_JSONL, "an unexpected number");
	expect_build_error("{\"a\":1 \"b\":2}", MASK_JSONL, "an unexpected string");
	expect_build_error("{\"a\":[1}", MASK_JSONL, "a mismatched closing bracket");
	expect_build_error("{1:2}", MASK_JSONL, "an unexpected number");
	expect_build_error("{\n\"a\":1}\n", MASK_JSONL, "line 1, column 2: the line ends inside a JSON value");
	expect_build_error("{\"a\":1}\n{", MASK_JSONL, "line 2, column 2: the JSON value is not closed");
	expect_build_error("nonsense\n", MASK_JSONL, "line 1, column 2: an invalid literal");
	expect_build_error("@\n", MASK_JSONL, "cannot start a JSON value");
	expect_build_error("]", MASK_JSONL, "an unexpected closing bracket");
	char deep[2 * MASK_JSON_DEPTH_MAX + 8];
	memset(deep, '[', MASK_JSON_DEPTH_MAX + 1);
	deep[MASK_JSON_DEPTH_MAX + 1] = '\0';
	expect_build_error(deep, MASK_JSONL, "nested too deeply");
	memset(deep, '[', MASK_JSON_DEPTH_MAX);
	memset(deep + MASK_JSON_DEPTH_MAX, ']', MASK_JSON_DEPTH_MAX);
	deep[2 * MASK_JSON_DEPTH_MAX] = '\0';
	expect_masked(deep, MASK_JSONL, "a", deep);

	/* any key is accepted for JSON Lines (optional fields are often absent) */
	struct mask_index *ix = NULL;
	struct mask_plan *plan = NULL;
	struct mesh_err err = {0};
	CHECK(build_text("{\"a\":1}\n", MASK_JSONL, &ix, &err) == 0);
	const char *absent = "never_used";
	CHECK(mask_plan_new(ix, &absent, 1, &plan, &err) == 0);
	CHECK(mask_index_columns(ix) == 0 && mask_index_format(ix) == MASK_JSONL);
	char long_name[MASK_NAME_MAX + 2];
	memset(long_name, 'k', sizeof long_name - 1);
	long_name[sizeof long_name - 1] = '\0';
	const char *long_ptr = long_name;
	struct mask_plan *bad = NULL;
	CHECK(mask_plan_new(ix, &long_ptr, 1, &bad, &err) == -EINVAL);
	CHECK_CONTAINS(err.msg, "longer than");
	mask_plan_free(plan);
	mask_index_free(ix);
}

/* Reading errors: plan of another format, negative offset, a file that
 * shrank or changed since the index was built; and the whole-file writer. */
static void test_read_errors(void)
{
	const char *text = "id,email\n1,a@b.c\n2,\"d,e\"\n";
	int fd = fd_with(text, strlen(text));
	struct mesh_err err = {0};
	struct mask_index *ix = NULL, *json_ix = NULL;
	struct mask_plan *plan = NULL, *json_plan = NULL;
	CHECK(mask_index_build(fd, MASK_CSV, &ix, &err) == 0);
	const char *email = "email";
	CHECK(mask_plan_new(ix, &email, 1, &plan, &err) == 0);
	CHECK(build_text("{}", MASK_JSONL, &json_ix, &err) == 0);
	CHECK(mask_plan_new(json_ix, &email, 1, &json_plan, &err) == 0);
	char buf[64];
	size_t got;
	CHECK(mask_read(ix, json_plan, fd, buf, sizeof buf, 0, &got, &err) == -EINVAL);
	CHECK(mask_read(ix, plan, fd, buf, sizeof buf, -1, &got, &err) == -EINVAL);
	CHECK(mask_read(ix, plan, fd, buf, 0, 3, &got, &err) == 0 && got == 0);

	CHECK(mask_read(ix, plan, fd, buf, sizeof buf, 0, &got, NULL) == 0 && got == strlen(text));
	CHECK(!memcmp(buf, "id,email\n1,*****\n2,\"***\"\n", got));

	/* whole file to an fd */
	int out = memfd_create("mask-out", 0);
	CHECK(mask_file_to_fd(ix, plan, fd, out, &err) == 0);
	CHECK(pread(out, buf, sizeof buf, 0) == (ssize_t)strlen(text) && !memcmp(buf, "id,email\n1,*****\n", 16));
	close(out);

	/* shorter than indexed, and a record that no longer parses */
	CHECK(ftruncate(fd, 12) == 0);
	CHECK(mask_read(ix, plan, fd, buf, sizeof buf, 0, &got, &err) == -EIO);
	CHECK_CONTAINS(err.msg, "the file changed since its masking index was built");
	CHECK(ftruncate(fd, 0) == 0);
	CHECK(pwrite(fd, "id,email\n1,a,b,c,d,e,f\n", 23, 0) == 23);
	CHECK(ftruncate(fd, (off_t)strlen(text)) == 0);
	CHECK(mask_read(ix, plan, fd, buf, sizeof buf, 10, &got, &err) == -EIO);
	CHECK_CONTAINS(err.msg, "more fields than the header");
	mask_plan_free(plan);
	mask_plan_free(json_plan);
	mask_index_free(ix);
	mask_index_free(json_ix);
	mask_index_free(NULL);
	mask_plan_free(NULL);
	close(fd);

	enum mask_format f;
	CHECK(mask_format_for_name("a.csv", &f) == 0 && f == MASK_CSV);
	CHECK(mask_format_for_name("A.CSV", &f) == 0 && f == MASK_CSV);
	CHECK(mask_format_for_name("x.jsonl", &f) == 0 && f == MASK_JSONL);
	CHECK(mask_format_for_name("x.ndjson", &f) == 0 && f == MASK_JSONL);
	CHECK(mask_format_for_name("x.json", &f) == -ENOTSUP);   /* one document, not lines */
	CHECK(mask_format_for_name("x.csv.gz", &f) == -ENOTSUP);
	CHECK(mask_format_for_name("x.parquet", &f) == -ENOTSUP);
	CHECK(mask_format_for_name("csv", &f) == -ENOTSUP);
}

/* Many threads reading random windows through one index and plan. */
struct shared {
	const struct mask_index *ix;
	const struct mask_plan *plan;
	int fd;
	const char *whole;
	size_t size;
	int failures;
	uint64_t seed;
};

static void *reader(void *arg)
{
	struct shared *s = arg;
	char *buf = xmalloc(1u << 20);
	uint64_t x = s->seed;
	for (int i = 0; i < 150; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		size_t offset = (size_t)(x % s->size);
		size_t len = 1 + (size_t)((x >> 20) % (1u << 20));
		size_t got = 0;
		struct mesh_err err = {0};
		int rc = mask_read(s->ix, s->plan, s->fd, buf, len, (off_t)offset, &got, &err);
		size_t want = len < s->size - offset ? len : s->size - offset;
		if (rc || got != want || memcmp(buf, s->whole + offset, want))
			__atomic_add_fetch(&s->failures, 1, __ATOMIC_RELAXED);
	}
	free(buf);
	return NULL;
}

static void test_threads(void)
{
	struct gen g = {STRBUF_INIT, STRBUF_INIT};
	gen_csv(&g, 3u << 20);
	int fd = fd_with(g.in.buf, g.in.len);
	struct mesh_err err = {0};
	struct mask_index *ix = NULL;
	struct mask_plan *plan = NULL;
	const char *cols[] = {"email", "note"};
	CHECK(mask_index_build(fd, MASK_CSV, &ix, &err) == 0);
	CHECK(mask_plan_new(ix, cols, 2, &plan, &err) == 0);
	struct shared s = {ix, plan, fd, g.out.buf, g.out.len, 0, 0};
	pthread_t threads[6];
	struct shared per[6];
	for (int i = 0; i < 6; i++) {
		per[i] = s;
		per[i].seed = 0x1234567ull * (uint64_t)(i + 1);
		pthread_create(&threads[i], NULL, reader, &per[i]);
	}
	int failures = 0;
	for (int i = 0; i < 6; i++) {
		pthread_join(threads[i], NULL);
		failures += per[i].failures;
	}
	CHECK(failures == 0);
	mask_plan_free(plan);
	mask_index_free(ix);
	close(fd);
	strbuf_release(&g.in);
	strbuf_release(&g.out);
}

int main(void)
{
	const char *csv_cols[] = {"email", "notes"};
	test_expected_file("people.csv", MASK_CSV, csv_cols, 2);
	const char *json_cols[] = {"email", "score", "vip", "profile"};
	test_expected_file("events.jsonl", MASK_JSONL, json_cols, 4);
	test_csv_edges();
	test_json_edges();
	test_read_errors();
	const char *gen_csv_cols[] = {"email", "note"};
	test_generated("generated CSV", MASK_CSV, 5u << 20, gen_csv_cols, 2);
	const char *gen_json_cols[] = {"email", "score", "profile", "vip"};
	test_generated("generated JSON Lines", MASK_JSONL, 5u << 20, gen_json_cols, 4);
	test_threads();
	return check_done("test_mask");
}
