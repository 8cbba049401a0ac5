/*
 * test_view.c - unit tests of masked views: the mask functions, plans, the
 * streaming transform (CSV and JSON Lines, golden files, edge cases, fail
 * closed, chunk boundaries), the view cache (build once with concurrent
 * openers, verification and rebuild of a corrupted entry, LRU eviction
 * under the cap, a view larger than the cap, a release that does not match
 * its SHA-256, restart) and the hash secret; Parquet views (leaves and
 * groups left out, list wrappers, functions refused, the view re-read).
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "mesh_util.h"
#include "parquet.h"
#include "view_build.h"
#include "view_cache.h"
#include "view_mask.h"
#include "view_sidecar.h"

static unsigned char secret_a[VIEW_SECRET_LEN] = "0123456789abcdef0123456789abcdef";
static unsigned char secret_b[VIEW_SECRET_LEN] = "fedcba9876543210fedcba9876543210";

/* "email:hash,salary:truncate=1000" -> a plan */
static struct view_plan *plan_of(const char *spec)
{
	struct view_plan *p = view_plan_new();
	char *copy = xstrdup(spec), *save = NULL;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *colon = strrchr(tok, ':');
		enum view_fn fn = VIEW_FN_NULL;
		double precision = 0;
		if (colon) {
			*colon = '\0';
			char *eq = strchr(colon + 1, '=');
			if (eq) {
				*eq = '\0';
				precision = atof(eq + 1);
			}
			CHECK(view_fn_parse(colon + 1, &fn) == 0);
		}
		view_plan_add(p, tok, fn, precision);
	}
	free(copy);
	view_plan_seal(p);
	return p;
}

static char *masked(const char *in, enum view_format f, const char *spec, int *rc, struct mesh_err *err)
{
	struct view_plan *p = plan_of(spec);
	struct strbuf out = STRBUF_INIT;
	*rc = view_build_buffer(in, strlen(in), f, p, secret_a, &out, err);
	view_plan_free(p);
	return strbuf_detach(&out, NULL);
}

#define EXPECT(in, f, spec, want) do { \
	int rc_; struct mesh_err e_ = {0}; \
	char *got_ = masked(in, f, spec, &rc_, &e_); \
	CHECK(rc_ == 0); \
	if (rc_) fprintf(stderr, "  error: %s\n", e_.msg); \
	CHECK_STR(got_, want); \
	free(got_); \
} while (0)

#define EXPECT_ERR(in, f, spec, code, want_msg) do { \
	int rc_; struct mesh_err e_ = {0}; \
	char *got_ = masked(in, f, spec, &rc_, &e_); \
	CHECK(rc_ == (code)); \
	CHECK_CONTAINS(e_.msg, want_msg); \
	free(got_); \
} while (0)

static char *apply(enum view_fn fn, double precision, const unsigned char *secret, const char *v,
		   enum view_value *kind)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_puts(&sb, "");
	*kind = view_fn_apply(fn, precision, secret, v, strlen(v), &sb);
	return strbuf_detach(&sb, NULL);
}

static void test_functions(void)
{
	enum view_value k;
	char *s;
	s = apply(VIEW_FN_NULL, 0, secret_a, "x@y", &k);
	CHECK(k == VIEW_MISSING && !*s);
	free(s);
	s = apply(VIEW_FN_REDACT, 0, secret_a, "a much longer value", &k);
	CHECK(k == VIEW_STRING);
	CHECK_STR(s, "***");
	free(s);
	/* hash: stable, keyed, short; equal values equal tokens */
	char *h1 = apply(VIEW_FN_HASH, 0, secret_a, "alice@example.com", &k);
	char *h2 = apply(VIEW_FN_HASH, 0, secret_a, "alice@example.com", &k);
	char *h3 = apply(VIEW_FN_HASH, 0, secret_b, "alice@example.com", &k);
	char *h4 = apply(VIEW_FN_HASH, 0, secret_a, "bob@example.com", &k);
	CHECK(k == VIEW_STRING && strlen(h1) == 17 && h1[0] == 'h');
	CHECK_STR(h1, h2);
	CHECK(strcmp(h1, h3) && strcmp(h1, h4));
	CHECK(!strstr(h1, "alice"));
	free(h1), free(h2), free(h3), free(h4);
	s = apply(VIEW_FN_LAST4, 0, secret_a, "4111111111111234", &k);
	CHECK_STR(s, "***1234");
	free(s);
	s = apply(VIEW_FN_LAST4, 0, secret_a, "1234", &k);   /* short: nothing shown */
	CHECK_STR(s, "***");
	free(s);
	s = apply(VIEW_FN_LAST4, 0, secret_a, "ab€cdé", &k);
	CHECK_STR(s, "***€cdé");
	free(s);
	s = apply(VIEW_FN_YEAR, 0, secret_a, "1984-03-02", &k);
	CHECK(k == VIEW_NUMBER);
	CHECK_STR(s, "1984");
	free(s);
	s = apply(VIEW_FN_YEAR, 0, secret_a, "2026-11-24T20:10:47Z", &k);
	CHECK_STR(s, "2026");
	free(s);
	s = apply(VIEW_FN_YEAR, 0, secret_a, "March 1984", &k);
	CHECK(k == VIEW_MISSING);
	free(s);
	s = apply(VIEW_FN_TRUNCATE, 1000, secret_a, "52345.5", &k);
	CHECK(k == VIEW_NUMBER);
	CHECK_STR(s, "52000");
	free(s);
	s = apply(VIEW_FN_TRUNCATE, 0.1, secret_a, "3.14159", &k);
	CHECK_STR(s, "3.1");
	free(s);
	s = apply(VIEW_FN_TRUNCATE, 10, secret_a, "-15", &k);
	CHECK_STR(s, "-20");
	free(s);
	s = apply(VIEW_FN_TRUNCATE, 10, secret_a, "n/a", &k);
	CHECK(k == VIEW_MISSING);
	free(s);
	enum view_fn fn;
	CHECK(view_fn_parse("hash", &fn) == 0 && fn == VIEW_FN_HASH);
	CHECK(view_fn_parse("sha1", &fn) == -EINVAL);
	CHECK(view_fn_strength(VIEW_FN_NULL) > view_fn_strength(VIEW_FN_HASH));

	/* plans: text in file order, a column named twice keeps the stronger function */
	struct view_plan *p = plan_of("email:hash,birth_date:year,salary:truncate=1000,email:null");
	CHECK_STR(p->text, "email:null, birth_date:year, salary:truncate(1000)");
	view_plan_free(p);
	view_plan_free(NULL);
}

static void test_csv(void)
{
	EXPECT("", VIEW_CSV, "", "");
	EXPECT("id,email\r\n", VIEW_CSV, "email", "id,email\r\n");
	EXPECT("id,email", VIEW_CSV, "email", "id,email");
	/* null: empty fields; every other byte kept; missing stays missing */
	EXPECT("id,email,n\n1,a@b,2\n2,,3\n3,\"x,y\",4\n", VIEW_CSV, "email", "id,email,n\n1,,2\n2,,3\n3,,4\n");
	EXPECT("id,email,n\r\n1,a@b,2\r\n", VIEW_CSV, "email:redact", "id,email,n\r\n1,***,2\r\n");
	/* a BOM and quoted names; duplicate names all masked; short records */
	EXPECT("\xef\xbb\xbfid,\"e\"\"mail\"\n1,x@y\n", VIEW_CSV, "e\"mail:redact",
	       "\xef\xbb\xbfid,\"e\"\"mail\"\n1,***\n");
	EXPECT("a,b,a\n1,2,3\n4\n5,6,\"7\"", VIEW_CSV, "a", "a,b,a\n,2,\n\n,6,");
	/* embedded quotes and line ends are masked as one value */
	EXPECT("a,b\r\n\"x\"\"\r\ny\",\"\"\r\n", VIEW_CSV, "a:redact", "a,b\r\n***,\"\"\r\n");
	/* results that need quotes are quoted; numbers are bare */
	EXPECT("d,v\n1984-03-02,\"12,5\"\n", VIEW_CSV, "d:year,v:last4", "d,v\n1984,***\n");
	EXPECT("v\n123456789\n", VIEW_CSV, "v:truncate=1000", "v\n123456000\n");

	/* the header lacks a column the manifest classifies */
	EXPECT_ERR("id,email\n1,a\n", VIEW_CSV, "email,ssn", -ENOENT, "no column \"ssn\"");
	/* fail closed */
	EXPECT_ERR("a,b\n1,\"open\n", VIEW_CSV, "a", -EINVAL, "line 2: a quoted field is never closed");
	EXPECT_ERR("a,b\n1,x\"y\n", VIEW_CSV, "a", -EINVAL, "line 2, field 2: a quote inside an unquoted field");
	EXPECT_ERR("a,b\n1,\"x\"y\n", VIEW_CSV, "a", -EINVAL, "line 2, field 2: text after a closing quote");
	EXPECT_ERR("a,b\n1,2\r3\n", VIEW_CSV, "a", -EINVAL, "line 2: a CR not followed by LF");
	EXPECT_ERR("a,b\n1,2\r", VIEW_CSV, "a", -EINVAL, "a CR not followed by LF");
	EXPECT_ERR("a,b\n1,2\n3,4,5\n", VIEW_CSV, "a", -EINVAL, "line 3: more fields than the header's 2");
	EXPECT_ERR("a,b\"c\n1,2\n", VIEW_CSV, "a", -EINVAL, "line 1, field 2: a quote inside an unquoted field");
	/* far from the start, past line ends inside quotes */
	struct strbuf big = STRBUF_INIT;
	strbuf_puts(&big, "a,b\n");
	for (int i = 0; i < 1000; i++)
		strbuf_puts(&big, "1,\"two\nlines\"\n");
	strbuf_puts(&big, "3,x\"\n");
	EXPECT_ERR(big.buf, VIEW_CSV, "a", -EINVAL, "line 2002, field 2: a quote inside an unquoted field");
	strbuf_release(&big);
}

static void test_json(void)
{
	EXPECT("", VIEW_JSONL, "email", "");
	EXPECT("\n\n", VIEW_JSONL, "email", "\n\n");
	EXPECT("{}\n[]\n\"s\"\n12\nnull\n", VIEW_JSONL, "email", "{}\n[]\n\"s\"\n12\nnull\n");
	/* values become null, typed: numbers and booleans too */
	EXPECT("{\"email\": \"x\", \"salary\": 52000, \"vip\": true, \"n\": 1}\n", VIEW_JSONL, "email,salary,vip",
	       "{\"email\": null, \"salary\": null, \"vip\": null, \"n\": 1}\n");
	EXPECT("{\"email\":-12.5e3}", VIEW_JSONL, "email", "{\"email\":null}");
	EXPECT("{\"email\":\"x\"}", VIEW_JSONL, "email:redact", "{\"email\":\"***\"}");
	EXPECT("{\"salary\":52345}", VIEW_JSONL, "salary:truncate=1000", "{\"salary\":52000}");
	EXPECT("{\"b\":\"1984-03-02\"}", VIEW_JSONL, "b:year", "{\"b\":1984}");
	/* nested properties at any depth; arrays of objects are transparent */
	EXPECT("{\"customer\":{\"email\":\"a@b\",\"id\":7},\"email\":\"top\"}\n", VIEW_JSONL, "customer.email",
	       "{\"customer\":{\"email\":null,\"id\":7},\"email\":\"top\"}\n");
	EXPECT("{\"items\":[{\"sku\":\"s1\",\"q\":1},{\"sku\":\"s2\",\"q\":2}]}", VIEW_JSONL, "items.sku",
	       "{\"items\":[{\"sku\":null,\"q\":1},{\"sku\":null,\"q\":2}]}");
	EXPECT("{\"a\":{\"b\":{\"c\":[1,{\"d\":\"deep\"}]}}}", VIEW_JSONL, "a.b.c.d", "{\"a\":{\"b\":{\"c\":[1,{\"d\":null}]}}}");
	/* a masked object is null (redact: ***); a masked array is masked element by element */
	EXPECT("{\"profile\":{\"age\":42,\"city\":\"K\"},\"x\":1}", VIEW_JSONL, "profile", "{\"profile\":null,\"x\":1}");
	EXPECT("{\"profile\":{\"age\":42}}", VIEW_JSONL, "profile:redact", "{\"profile\":\"***\"}");
	EXPECT("{\"emails\":[\"a\",\"b\",null,{\"x\":1}]}", VIEW_JSONL, "emails:redact",
	       "{\"emails\":[\"***\",\"***\",null,\"***\"]}");
	/* escaped key names match; nested keys of the same name do not */
	EXPECT("{\"\\u0065mail\":\"a\\\"b\",\"n\":{\"email\":\"k\"}}", VIEW_JSONL, "email",
	       "{\"\\u0065mail\":null,\"n\":{\"email\":\"k\"}}");
	EXPECT("{\"\\ud83d\\ude00\":1,\"😀\":2}", VIEW_JSONL, "😀", "{\"\\ud83d\\ude00\":null,\"😀\":null}");
	EXPECT("\xef\xbb\xbf{\"email\":\"x\"}\n", VIEW_JSONL, "email", "\xef\xbb\xbf{\"email\":null}\n");
	/* a literal dotted top-level name */
	EXPECT("{\"a.b\":1,\"a\":{\"b\":2}}", VIEW_JSONL, "a.b", "{\"a.b\":null,\"a\":{\"b\":null}}");
	/* hashing decodes strings: the same value, escaped or not, one token; CSV agrees */
	{
		int rc;
		struct mesh_err e = {0};
		char *j = masked("{\"e\":\"a\\u0040b\"}\n{\"e\":\"a@b\"}\n", VIEW_JSONL, "e:hash", &rc, &e);
		char *c = masked("e\na@b\n", VIEW_CSV, "e:hash", &rc, &e);
		char tok[32];
		CHECK(sscanf(c, "e\n%31s", tok) == 1);
		char want[128];
		snprintf(want, sizeof want, "{\"e\":\"%s\"}\n{\"e\":\"%s\"}\n", tok, tok);
		CHECK_STR(j, want);
		free(j), free(c);
	}

	EXPECT_ERR("{\"a\":1}\n{\"a\":}\n", VIEW_JSONL, "a", -EINVAL, "line 2, byte 6: not a JSON value");
	EXPECT_ERR("{\"a\":\"x", VIEW_JSONL, "a", -EINVAL, "line 1, byte 8: a string is never closed");
	EXPECT_ERR("{\"a\":tru}", VIEW_JSONL, "a", -EINVAL, "not a JSON value");
	EXPECT_ERR("{\"a\":01}", VIEW_JSONL, "a", -EINVAL, "expected ',' or '}'");
	EXPECT_ERR("{\"a\":1.}", VIEW_JSONL, "a", -EINVAL, "a number without digits");
	EXPECT_ERR("{\"a\":1e}", VIEW_JSONL, "a", -EINVAL, "exponent");
	EXPECT_ERR("{\"a\":1} x", VIEW_JSONL, "a", -EINVAL, "text after the value");
	EXPECT_ERR("{\"a\":\"\x01\"}", VIEW_JSONL, "a", -EINVAL, "a control character");
	EXPECT_ERR("{\"a\":\"\\q\"}", VIEW_JSONL, "a", -EINVAL, "a bad escape");
	EXPECT_ERR("{\"a\":1,}", VIEW_JSONL, "a", -EINVAL, "expected a property name");
	EXPECT_ERR("{\"a\":[1}", VIEW_JSONL, "a", -EINVAL, "expected ',' or ']'");
	EXPECT_ERR("{\n\"a\":1}\n", VIEW_JSONL, "a", -EINVAL, "line 1");
	EXPECT_ERR("nonsense\n", VIEW_JSONL, "a", -EINVAL, "not a JSON value");
	char deep[2 * VIEW_JSON_DEPTH_MAX + 8];
	memset(deep, '[', VIEW_JSON_DEPTH_MAX + 2);
	deep[VIEW_JSON_DEPTH_MAX + 2] = '\0';
	EXPECT_ERR(deep, VIEW_JSONL, "a", -EINVAL, "nested deeper");
	memset(deep, '[', VIEW_JSON_DEPTH_MAX);
	memset(deep + VIEW_JSON_DEPTH_MAX, ']', VIEW_JSON_DEPTH_MAX);
	deep[2 * VIEW_JSON_DEPTH_MAX] = '\0';
	EXPECT(deep, VIEW_JSONL, "a", deep);
}

static char *read_data(const char *name, size_t *len)
{
	char path[512], *data = NULL;
	const char *dir = getenv("MESH_TEST_DATA");
	snprintf(path, sizeof path, "%s/mask/%s", dir ? dir : "tests/unit/data", name);
	if (mesh_read_file_at(AT_FDCWD, path, 1u << 20, &data, len, NULL)) {
		fprintf(stderr, "cannot read %s\n", path);
		exit(2);
	}
	return data;
}

/* The data files against their reviewed expected views. */
static void test_golden(const char *name, enum view_format f, const char *spec)
{
	size_t len, exp_len;
	char *data = read_data(name, &len);
	char expected_name[128];
	snprintf(expected_name, sizeof expected_name, "%s.view", name);
	char *expected = read_data(expected_name, &exp_len);
	struct view_plan *p = plan_of(spec);
	struct strbuf out = STRBUF_INIT;
	struct mesh_err err = {0};
	CHECK(view_build_buffer(data, len, f, p, secret_a, &out, &err) == 0);
	CHECK(out.len == exp_len && !memcmp(out.buf, expected, exp_len));
	if (getenv("MESH_WRITE_GOLDEN")) {
		char path[256];
		snprintf(path, sizeof path, "tests/unit/data/mask/%s", expected_name);
		mesh_write_file_atomic(AT_FDCWD, path, out.buf, out.len, 0644, NULL);
	}
	strbuf_release(&out);
	view_plan_free(p);
	free(data), free(expected);
}

static int memfd_with(const char *data, size_t len)
{
	int fd = memfd_create("view-test", 0);
	CHECK(fd >= 0 && mesh_write_all(fd, data, len) == 0);
	return fd;
}

/* A file much larger than a read chunk, with long fields and lines across
 * chunk boundaries: the fd transform equals the in-memory one, hashes match. */
static void test_streaming(enum view_format f)
{
	struct strbuf in = STRBUF_INIT;
	if (f == VIEW_CSV)
		strbuf_puts(&in, "id,email,note\n");
	for (int i = 0; in.len < (3u << 20) + 12345; i++) {
		if (f == VIEW_CSV)
			strbuf_printf(&in, "%d,user%d@example.com,\"note %d, %s\"\n", i, i % 97, i,
				      i % 1000 == 0 ? "long long long long long long long long long long" : "x");
		else
			strbuf_printf(&in, "{\"id\":%d,\"email\":\"user%d@example.com\",\"c\":{\"email\":\"%d\"}}\n", i,
				      i % 97, i);
	}
	struct view_plan *p = plan_of(f == VIEW_CSV ? "email:hash" : "email:hash,c.email");
	struct strbuf mem = STRBUF_INIT;
	struct mesh_err err = {0};
	CHECK(view_build_buffer(in.buf, in.len, f, p, secret_a, &mem, &err) == 0);
	CHECK(!strstr(mem.buf, "@example.com"));
	int src = memfd_with(in.buf, in.len), dst = memfd_create("view-out", 0);
	struct view_build_result res;
	CHECK(view_build(src, dst, f, p, secret_a, &res, &err) == 0);
	CHECK(res.in_bytes == in.len && res.out_bytes == mem.len);
	char *back = xmalloc(mem.len + 1);
	CHECK(pread(dst, back, mem.len + 1, 0) == (ssize_t)mem.len);
	CHECK(!memcmp(back, mem.buf, mem.len));
	char hex[65];
	struct mesh_sha256 *h = mesh_sha256_new();
	mesh_sha256_update(h, in.buf, in.len);
	mesh_sha256_final(h, hex);
	CHECK_STR(res.in_sha256, hex);
	h = mesh_sha256_new();
	mesh_sha256_update(h, mem.buf, mem.len);
	mesh_sha256_final(h, hex);
	CHECK_STR(res.out_sha256, hex);
	free(back);
	close(src), close(dst);
	view_plan_free(p);
	strbuf_release(&mem);
	strbuf_release(&in);
}

/* ---- the cache ---- */

struct src_ctx {
	const char *path;
	atomic_int opens;
};

static int open_src(void *ctx)
{
	struct src_ctx *s = ctx;
	atomic_fetch_add(&s->opens, 1);
	usleep(20000);   /* a slow build, so concurrent openers overlap */
	int fd = open(s->path, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static char *sha_of(const char *data, size_t len)
{
	static char hex[65];
	struct mesh_sha256 *h = mesh_sha256_new();
	mesh_sha256_update(h, data, len);
	mesh_sha256_final(h, hex);
	return hex;
}

static char *slurp_fd(int fd, size_t *len)
{
	struct stat st;
	fstat(fd, &st);
	char *buf = xmalloc((size_t)st.st_size + 1);
	*len = (size_t)pread(fd, buf, (size_t)st.st_size, 0);
	buf[*len] = '\0';
	return buf;
}

struct getter {
	struct view_cache *c;
	struct view_source *src;
	struct view_plan *plan;
	int rc;
	char *content;
};

static void *get_thread(void *arg)
{
	struct getter *g = arg;
	int fd = -1;
	struct view_info info;
	struct mesh_err err = {0};
	g->rc = view_cache_get(g->c, g->src, g->plan, secret_a, &fd, &info, &err);
	if (!g->rc) {
		size_t len;
		g->content = slurp_fd(fd, &len);
		close(fd);
	}
	return NULL;
}

static void test_cache(void)
{
	char dir[] = "/tmp/test-view-XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	char cache_dir[600], src_path[600];
	snprintf(cache_dir, sizeof cache_dir, "%s/cache", dir);
	snprintf(src_path, sizeof src_path, "%s/orders.csv", dir);
	const char *clear = "id,email\n1,alice@example.com\n2,bob@example.com\n";
	CHECK(mesh_write_file_atomic(AT_FDCWD, src_path, clear, strlen(clear), 0644, NULL) == 0);
	char src_sha[65];
	snprintf(src_sha, sizeof src_sha, "%s", sha_of(clear, strlen(clear)));

	struct view_cache *c = NULL;
	struct mesh_err err = {0};
	CHECK(view_cache_open(cache_dir, 1000, &c, &err) == 0);
	struct stat st;
	CHECK(stat(cache_dir, &st) == 0 && (st.st_mode & 0777) == 0700);
	struct src_ctx sc = {src_path, 0};
	struct view_source src = {.sha256 = src_sha, .format = VIEW_CSV, .open = open_src, .ctx = &sc};
	struct view_plan *plan = plan_of("email");

	/* eight concurrent first openers: one build, all get the view */
	struct getter g[8];
	pthread_t t[8];
	for (int i = 0; i < 8; i++) {
		g[i] = (struct getter){c, &src, plan, -1, NULL};
		pthread_create(&t[i], NULL, get_thread, &g[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		CHECK(g[i].rc == 0);
		CHECK_STR(g[i].content, "id,email\n1,\n2,\n");
		free(g[i].content);
	}
	CHECK(atomic_load(&sc.opens) == 1);

	/* a hit: not fresh, no build */
	int fd = -1;
	struct view_info info;
	CHECK(view_cache_get(c, &src, plan, secret_a, &fd, &info, &err) == 0);
	CHECK(!info.fresh && info.size == strlen("id,email\n1,\n2,\n"));
	CHECK_STR(info.sha256, sha_of("id,email\n1,\n2,\n", info.size));
	close(fd);
	CHECK(atomic_load(&sc.opens) == 1);

	/* a corrupted entry is detected and rebuilt */
	size_t entries;
	CHECK(view_cache_bytes(c, &entries) == info.size && entries == 1);
	char path[1200];
	DIR *d = opendir(cache_dir);
	struct dirent *de;
	while ((de = readdir(d)))
		if (strstr(de->d_name, ".view"))
			snprintf(path, sizeof path, "%s/%s", cache_dir, de->d_name);
	closedir(d);
	int w = open(path, O_WRONLY);
	CHECK(w >= 0 && pwrite(w, "1,alice@example.com\n", 20, 9) == 20);
	close(w);
	CHECK(view_cache_get(c, &src, plan, secret_a, &fd, &info, &err) == 0);
	CHECK(info.fresh);
	size_t len;
	char *got = slurp_fd(fd, &len);
	CHECK_STR(got, "id,email\n1,\n2,\n");
	free(got);
	close(fd);
	CHECK(atomic_load(&sc.opens) == 2);

	/* a restart: the entry is verified (read), not rebuilt */
	view_cache_close(c);
	CHECK(view_cache_open(cache_dir, 1000, &c, &err) == 0);
	CHECK(view_cache_bytes(c, &entries) > 0 && entries == 1);
	CHECK(view_cache_get(c, &src, plan, secret_a, &fd, &info, &err) == 0);
	CHECK(info.fresh);
	close(fd);
	CHECK(atomic_load(&sc.opens) == 2);

	/* another plan is another entry; the cap (1000 bytes) evicts the least recently used */
	struct view_plan *plan2 = plan_of("email:redact");
	CHECK(view_cache_get(c, &src, plan2, secret_a, &fd, &info, &err) == 0);
	close(fd);
	CHECK(view_cache_bytes(c, &entries) <= 1000 && entries == 2);
	struct strbuf big = STRBUF_INIT;
	strbuf_puts(&big, "id,email\n");
	while (big.len < 1300)
		strbuf_puts(&big, "1,x\n");
	char big_path[700], big_sha[65];
	snprintf(big_path, sizeof big_path, "%s/big.csv", dir);
	CHECK(mesh_write_file_atomic(AT_FDCWD, big_path, big.buf, big.len, 0644, NULL) == 0);
	snprintf(big_sha, sizeof big_sha, "%s", sha_of(big.buf, big.len));
	struct src_ctx bc = {big_path, 0};
	struct view_source bsrc = {.sha256 = big_sha, .format = VIEW_CSV, .open = open_src, .ctx = &bc};
	struct view_plan *keep = plan_of("email");
	CHECK(view_cache_get(c, &bsrc, keep, secret_a, &fd, &info, &err) == 0);
	close(fd);
	uint64_t total = view_cache_bytes(c, &entries);
	CHECK(total <= 1000 && entries < 3);
	/* a view larger than the cap is refused, nothing left behind */
	while (big.len < 3000)
		strbuf_puts(&big, "1,x\n");
	CHECK(mesh_write_file_atomic(AT_FDCWD, big_path, big.buf, big.len, 0644, NULL) == 0);
	snprintf(big_sha, sizeof big_sha, "%s", sha_of(big.buf, big.len));
	CHECK(view_cache_get(c, &bsrc, keep, secret_a, &fd, &info, &err) == -ENOSPC);
	CHECK_CONTAINS(err.msg, "does not fit the cache's cap");
	CHECK(view_cache_bytes(c, &entries) <= 1000);
	/* a release file that does not match its manifest's SHA-256 */
	struct view_source liar = src;
	liar.sha256 = big_sha;
	CHECK(view_cache_get(c, &liar, plan, secret_a, &fd, &info, &err) == -EIO);
	CHECK_CONTAINS(err.msg, "does not match the SHA-256");
	/* no temporary files left */
	d = opendir(cache_dir);
	int tmps = 0;
	while ((de = readdir(d)))
		tmps += !strncmp(de->d_name, ".tmp-", 5);
	closedir(d);
	CHECK(tmps == 0);
	strbuf_release(&big);
	view_plan_free(keep);
	view_plan_free(plan2);
	view_plan_free(plan);
	view_cache_close(c);
	view_cache_close(NULL);

	/* the secret: made once, 0600, stable; refused when others may read it */
	char sdir[800];
	snprintf(sdir, sizeof sdir, "%s/secrets", dir);
	unsigned char s1[VIEW_SECRET_LEN], s2[VIEW_SECRET_LEN];
	CHECK(view_secret_load(sdir, s1, &err) == 0);
	CHECK(view_secret_load(sdir, s2, &err) == 0);
	CHECK(!memcmp(s1, s2, sizeof s1));
	snprintf(path, sizeof path, "%s/view-hash.key", sdir);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
	chmod(path, 0644);
	CHECK(view_secret_load(sdir, s2, &err) == -EPERM);
	char cmd[800];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	CHECK(system(cmd) == 0);
}

static void test_sidecars(void)
{
	struct view_plan *p = plan_of("email:hash,born:year,pay:truncate=100");
	const char *schema = "{\"fields\":[{\"name\":\"id\",\"type\":\"integer\"},"
			     "{\"name\":\"email\",\"type\":\"string\",\"constraints\":{\"pattern\":\"^.+@.+$\"}},"
			     "{\"name\":\"born\",\"type\":\"date\"},{\"name\":\"pay\",\"type\":\"integer\"}]}";
	char *out = NULL;
	size_t len;
	struct mesh_err err = {0};
	CHECK(view_sidecar_schema(schema, strlen(schema), p, &out, &len, &err) == 0);
	CHECK_CONTAINS(out, "\"name\": \"email\",\n      \"type\": \"string\",\n      \"masked\": \"hash\"");
	CHECK(!strstr(out, "pattern"));
	CHECK_CONTAINS(out, "\"type\": \"year\"");
	CHECK_CONTAINS(out, "\"meshView\": \"email:hash, born:year, pay:truncate(100)\"");
	free(out);
	CHECK(view_sidecar_schema("[1]", 3, p, &out, &len, &err) == -EINVAL);
	const char *quality = "{\"checks\":[{\"detail\":\"f.csv:4 row 4 column email value \\\"bob@x.org\\\": no\\nf.csv:5 row 5 column id value \\\"x\\\"\"}],"
			      "\"files\":[{\"rules\":[{\"column\":\"email\",\"examples\":[{\"value\":\"bob@x.org\",\"message\":\"bad bob@x.org\"}]},"
			      "{\"column\":\"id\",\"examples\":[{\"value\":\"x\",\"message\":\"bad\"}]}]}],\"note\":\"saw bob@x.org\"}";
	CHECK(view_sidecar_quality(quality, strlen(quality), p, &out, &len, &err) == 0);
	CHECK(!strstr(out, "bob@x.org"));
	CHECK_CONTAINS(out, "column id value \\\"x\\\"");     /* unclassified: kept */
	CHECK_CONTAINS(out, "\"value\": \"x\"");
	CHECK_CONTAINS(out, "hidden: a classified column");
	free(out);
	view_plan_free(p);
}

/* All values of a column, one per line ("" for null). */
static char *column_text(const char *data, size_t len, const char *name)
{
	int fd = memfd_with(data, len);
	struct parquet_file *pf = NULL;
	struct mesh_err err = {0};
	struct strbuf sb = STRBUF_INIT;
	strbuf_puts(&sb, "");
	CHECK(parquet_open(fd, "t.parquet", &pf, &err) == 0);
	for (size_t i = 0; pf && i < parquet_num_columns(pf); i++) {
		if (strcmp(parquet_column_at(pf, i)->name, name))
			continue;
		struct parquet_cursor *cur = NULL;
		CHECK(parquet_cursor_open(pf, i, &cur, &err) == 0);
		const char *v;
		size_t n;
		bool is_null;
		while (cur && parquet_cursor_next(cur, &v, &n, &is_null, &err) == 1)
			strbuf_printf(&sb, "%.*s\n", is_null ? 0 : (int)n, v);
		parquet_cursor_free(cur);
	}
	parquet_close(pf);
	close(fd);
	return strbuf_detach(&sb, NULL);
}

/* The leaves of a Parquet file, comma-separated. */
static char *leaves_of(const char *data, size_t len, int64_t *rows)
{
	int fd = memfd_with(data, len);
	struct parquet_file *pf = NULL;
	struct mesh_err err = {0};
	struct strbuf sb = STRBUF_INIT;
	strbuf_puts(&sb, "");
	CHECK(parquet_open(fd, "t.parquet", &pf, &err) == 0);
	for (size_t i = 0; pf && i < parquet_num_columns(pf); i++)
		strbuf_printf(&sb, "%s%s", i ? "," : "", parquet_column_at(pf, i)->name);
	*rows = pf ? parquet_num_rows(pf) : -1;
	parquet_close(pf);
	close(fd);
	return strbuf_detach(&sb, NULL);
}

static void parquet_case(const char *data, size_t len, const char *spec, int want_rc, const char *want_leaves)
{
	struct view_plan *p = plan_of(spec);
	char why[256] = "";
	struct strbuf out = STRBUF_INIT;
	struct mesh_err err = {0};
	int rc = view_plan_for_format(p, VIEW_PARQUET, why, sizeof why);
	if (!rc)
		rc = view_build_buffer(data, len, VIEW_PARQUET, p, NULL, &out, &err);
	CHECK(rc == want_rc);
	if (!rc) {
		int64_t rows = 0;
		char *leaves = leaves_of(out.buf, out.len, &rows);
		CHECK_CONTAINS(leaves, want_leaves);
		CHECK(!strcmp(leaves, want_leaves) && rows == 300);
		free(leaves);
		/* the kept columns read as in the clear file (dictionary pages, 3 row groups) */
		char *a = column_text(data, len, "c"), *b = column_text(out.buf, out.len, "c");
		CHECK(!strcmp(a, b) && strlen(a) == 600);   /* 300 values of one digit */
		free(a), free(b);
	}
	strbuf_release(&out);
	view_plan_free(p);
}

static void test_parquet(void)
{
	size_t len;
	char *data = read_data("nested.parquet", &len);   /* DuckDB: id, s{a,b}, l[list], c; 3 row groups */
	int64_t rows;
	char *all = leaves_of(data, len, &rows);
	CHECK(!strcmp(all, "id,s.a,s.b,l.list.element,c") && rows == 300);
	free(all);
	parquet_case(data, len, "s.b", 0, "id,s.a,l.list.element,c");
	parquet_case(data, len, "s", 0, "id,l.list.element,c");            /* a whole group */
	parquet_case(data, len, "l", 0, "id,s.a,s.b,c");
	parquet_case(data, len, "l.list.element:redact", 0, "id,s.a,s.b,c");
	parquet_case(data, len, "s.a,s.b,id", 0, "l.list.element,c");     /* the group goes with its last leaf */
	parquet_case(data, len, "nope", -ENOENT, NULL);
	parquet_case(data, len, "id,s,l,c", -ENOTSUP, NULL);               /* nothing would be left */
	parquet_case(data, len, "id:hash", -ENOTSUP, NULL);
	parquet_case(data, len, "id:year", -ENOTSUP, NULL);
	parquet_case("PAR1xxxxPAR1", 12, "id", -EINVAL, NULL);
	/* plan texts name the omission; the schema sidecar loses the fields */
	struct view_plan *p = plan_of("email,notes:redact");
	char why[128];
	CHECK(view_plan_for_format(p, VIEW_PARQUET, why, sizeof why) == 0);
	CHECK(!strcmp(p->text, "email:omit, notes:omit"));
	const char *schema = "{\"fields\":[{\"name\":\"id\"},{\"name\":\"email\"},{\"name\":\"notes\"}]}";
	char *out = NULL;
	size_t out_len;
	struct mesh_err err = {0};
	CHECK(view_sidecar_schema(schema, strlen(schema), p, &out, &out_len, &err) == 0);
	CHECK_CONTAINS(out, "\"name\": \"id\"");
	CHECK(!strstr(out, "\"name\": \"email\"") && !strstr(out, "\"name\": \"notes\""));
	free(out);
	enum view_fn fn;
	CHECK(view_fn_parse("omit", &fn) == -EINVAL);   /* no rule may ask for it */
	view_plan_free(p);
	free(data);
}

int main(void)
{
	test_parquet();
	test_sidecars();
	test_functions();
	test_csv();
	test_json();
	test_golden("people.csv", VIEW_CSV, "email:hash,notes:redact");
	test_golden("events.jsonl", VIEW_JSONL, "email:hash,score,vip,profile.age:truncate=10,profile.tags:redact");
	test_streaming(VIEW_CSV);
	test_streaming(VIEW_JSONL);
	test_cache();
	return check_done("test_view");
}
