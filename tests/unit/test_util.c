/* Unit tests for mesh_util: names, SemVer precedence, time, SHA-256. */
#include "check.h"
#include "mesh_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_names(void)
{
	CHECK(mesh_name_ok("sales"));
	CHECK(mesh_name_ok("0rders_v2-x"));
	CHECK(!mesh_name_ok(""));
	CHECK(!mesh_name_ok("Sales"));
	CHECK(!mesh_name_ok("-x"));
	CHECK(!mesh_name_ok("a/b"));
	CHECK(!mesh_name_ok(".."));
	CHECK(!mesh_name_ok("my quantum"));
	CHECK(mesh_filename_ok("orders.csv"));
	CHECK(!mesh_filename_ok(".hidden"));
	CHECK(!mesh_filename_ok("a/b"));
	CHECK(!mesh_filename_ok(".."));
}

static void test_semver(void)
{
	struct semver v;
	CHECK(semver_parse("1.2.3", &v) == 0 && v.major == 1 && v.patch == 3);
	CHECK(semver_parse("1.0.0-alpha.1+build.5", &v) == 0);
	CHECK_STR(v.prerelease, "alpha.1");
	CHECK_STR(v.build, "build.5");
	CHECK(semver_parse("01.2.3", NULL) == -EINVAL);
	CHECK(semver_parse("1.2", NULL) == -EINVAL);
	CHECK(semver_parse("1.2.3-", NULL) == -EINVAL);
	CHECK(semver_parse("1.2.3-01", NULL) == -EINVAL);
	CHECK(semver_parse("1.2.3-a..b", NULL) == -EINVAL);
	CHECK(semver_parse("v1.2.3", NULL) == -EINVAL);
	/* the precedence example of SemVer 2.0.0 §11 */
	const char *order[] = {"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta",
			       "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11",
			       "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "2.0.0", "10.0.0"};
	for (size_t i = 0; i + 1 < sizeof order / sizeof *order; i++) {
		CHECK(semver_cmp_str(order[i], order[i + 1]) < 0);
		CHECK(semver_cmp_str(order[i + 1], order[i]) > 0);
	}
	CHECK(semver_cmp_str("1.0.0+a", "1.0.0+b") == 0);
}

static void test_time(void)
{
	time_t t;
	CHECK(mesh_time_parse("2026-11-24", &t) == 0 && t == 1795478400);
	CHECK(mesh_time_parse("2026-11-24T01:00:00Z", &t) == 0 && t == 1795478400 + 3600);
	CHECK(mesh_time_parse("2026-11-24T02:00:00.5+01:00", &t) == 0 && t == 1795478400 + 3600);
	CHECK(mesh_time_parse("2026-02-29", &t) == -EINVAL);
	CHECK(mesh_time_parse("2026-13-01", &t) == -EINVAL);
	CHECK(mesh_time_parse("yesterday", &t) == -EINVAL);
	struct timespec ts = {1795478400, 123456789};
	char buf[40];
	mesh_time_rfc3339(&ts, buf, sizeof buf);
	CHECK_STR(buf, "2026-11-24T00:00:00.123Z");
}

static void test_sha256(void)
{
	char hex[65];
	struct mesh_sha256 *h = mesh_sha256_new();
	mesh_sha256_update(h, "abc", 3);
	mesh_sha256_final(h, hex);
	CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

/* Nothing under the store is trusted to be a regular file: a FIFO is
 * refused at once (an open without O_NONBLOCK would wait forever for a
 * writer), a symlink is not followed, a directory is not a file. */
static void test_open_regular(void)
{
	char dir[] = "/tmp/test_util.XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	CHECK(mkfifoat(dfd, "fifo", 0600) == 0);
	CHECK(symlinkat("/etc/passwd", dfd, "link") == 0);
	CHECK(mkdirat(dfd, "sub", 0700) == 0);
	CHECK(mesh_open_regular_at(dfd, "fifo", O_RDONLY, 0, NULL) == -EINVAL);
	CHECK(mesh_open_regular_at(dfd, "fifo", O_WRONLY, 0, NULL) < 0);
	CHECK(mesh_open_regular_at(dfd, "link", O_RDONLY, 0, NULL) == -ELOOP);
	CHECK(mesh_open_regular_at(dfd, "link", O_WRONLY | O_CREAT, 0600, NULL) == -ELOOP);
	CHECK(mesh_open_regular_at(dfd, "sub", O_RDONLY, 0, NULL) == -EINVAL);
	CHECK(mesh_open_regular_at(dfd, "none", O_RDONLY, 0, NULL) == -ENOENT);
	CHECK(mesh_open_dir_at(dfd, "link") < 0);
	int sfd = mesh_open_dir_at(dfd, "sub");
	CHECK(sfd >= 0);
	close(sfd);
	struct stat st;
	int fd = mesh_open_regular_at(dfd, "new", O_WRONLY | O_CREAT | O_EXCL, 0600, &st);
	CHECK(fd >= 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0600);
	CHECK(fd >= 0 && !(fcntl(fd, F_GETFL) & O_NONBLOCK));   /* an ordinary descriptor again */
	CHECK(write(fd, "x", 1) == 1);
	close(fd);
	char *text = NULL;
	size_t len = 0;
	struct mesh_err err = {0};
	CHECK(mesh_read_file_at(dfd, "fifo", 100, &text, &len, &err) == -EINVAL);
	CHECK(strstr(err.msg, "not a regular file") != NULL);
	CHECK(mesh_read_file_at(dfd, "link", 100, &text, &len, &err) == -ELOOP);
	CHECK(mesh_read_file_at(dfd, "new", 100, &text, &len, &err) == 0 && len == 1);
	free(text);
	/* atomic writes never write through a planted link */
	CHECK(symlinkat("/tmp/test_util_target_never", dfd, "out.tmp.1") == 0);
	CHECK(mesh_write_file_atomic(dfd, "out", "data", 4, 0600, &err) == 0);
	CHECK(access("/tmp/test_util_target_never", F_OK) != 0);
	unlinkat(dfd, "out.tmp.1", 0);
	unlinkat(dfd, "out", 0);
	unlinkat(dfd, "new", 0);
	unlinkat(dfd, "fifo", 0);
	unlinkat(dfd, "link", 0);
	unlinkat(dfd, "sub", AT_REMOVEDIR);
	close(dfd);
	rmdir(dir);
}

static void test_escape(void)
{
	char *s = mesh_escape_text("plain text, ünïcødé ✓");
	CHECK_STR(s, "plain text, ünïcødé ✓");
	free(s);
	s = mesh_escape_text("a\x1b]0;title\x07" "b\x1b[2Jc\n\t\r\\d\x7f");
	CHECK_STR(s, "a\\e]0;title\\x07b\\e[2Jc\\n\\t\\r\\\\d\\x7f");
	free(s);
	s = mesh_escape_text("csi\xc2\x9b" "31m nbsp\xc2\xa0");   /* C1 CSI escaped, U+00A0 kept */
	CHECK_STR(s, "csi\\xc2\\x9b31m nbsp\xc2\xa0");
	free(s);
	s = mesh_escape_text("bad\xff\xc0\xaf" "utf8\xe2\x82");     /* invalid and truncated UTF-8 */
	CHECK_STR(s, "bad\\xff\\xc0\\xafutf8\\xe2\\x82");
	free(s);
	s = mesh_escape_text(NULL);
	CHECK_STR(s, "");
	free(s);
}

/* A staging tree goes with everything in it; a symlink inside is removed,
 * never followed (the file it names stays). */
static void test_remove_tree(void)
{
	char dir[] = "/tmp/test_util.XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	CHECK(mkdirat(dfd, "keep", 0700) == 0);
	CHECK(close(openat(dfd, "keep/precious", O_WRONLY | O_CREAT, 0600)) == 0);
	CHECK(mkdirat(dfd, "t", 0700) == 0 && mkdirat(dfd, "t/a", 0700) == 0 && mkdirat(dfd, "t/a/b", 0700) == 0);
	CHECK(close(openat(dfd, "t/a/b/f", O_WRONLY | O_CREAT, 0600)) == 0);
	CHECK(mkfifoat(dfd, "t/a/fifo", 0600) == 0);
	char target[64];
	snprintf(target, sizeof target, "%s/keep", dir);
	CHECK(symlinkat(target, dfd, "t/a/link") == 0);
	CHECK(mesh_remove_tree_at(dfd, "t") == 0);
	CHECK(faccessat(dfd, "t", F_OK, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT);
	CHECK(faccessat(dfd, "keep/precious", F_OK, 0) == 0);
	CHECK(mesh_remove_tree_at(dfd, "t") == -ENOENT);
	CHECK(mesh_remove_tree_at(dfd, "keep") == 0);
	close(dfd);
	CHECK(rmdir(dir) == 0);
}

int main(void)
{
	test_open_regular();
	test_remove_tree();
	test_escape();
	test_names();
	test_semver();
	test_time();
	test_sha256();
	return check_done("test_util");
}
