/* Unit tests for mesh_util: names, SemVer precedence, time, SHA-256. */
#include "check.h"
#include "mesh_util.h"

#include <errno.h>

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

int main(void)
{
	test_names();
	test_semver();
	test_time();
	test_sha256();
	return check_done("test_util");
}
