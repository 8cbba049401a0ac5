/* Unit tests for the record of a clean store audit (audit_state.h) and the
 * incremental audit that uses it (store_audit.h): what is written reads
 * back the same; damaged, truncated, foreign, malformed or not-our-own
 * records are refused, never trusted in part; the incremental audit finds
 * entries planted in a recorded directory and a chmod of a directory, and
 * a bad record makes the audit whole. */
#include "check.h"
#include "audit_state.h"
#include "mesh_util.h"
#include "store.h"
#include "store_audit.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static struct stat dir_stat(ino_t ino)
{
	struct stat sb = {0};
	sb.st_dev = 1;
	sb.st_ino = ino;
	sb.st_mode = S_IFDIR | 0700;
	sb.st_ctim.tv_sec = 1700000000;
	sb.st_ctim.tv_nsec = 123;
	sb.st_mtim.tv_sec = 1700000000;
	return sb;
}

static struct audit_state *sample(void)
{
	struct audit_state *st = audit_state_new("/store", 1, 2, 0);
	struct stat sb = dir_stat(2);
	audit_state_add(st, AUDIT_STATE_NONE, "", 0, &sb, 0);
	sb = dir_stat(10);
	uint32_t domains = audit_state_add(st, 0, "domains", 7, &sb, 0);
	sb = dir_stat(11);
	uint32_t sales = audit_state_add(st, domains, "sales", 5, &sb, AUDIT_REC_RACY);
	for (int i = 0; i < 300; i++) {   /* enough to grow the lookup table */
		char name[16];
		snprintf(name, sizeof name, "p%d", i);
		sb = dir_stat((ino_t)(100 + i));
		audit_state_add(st, sales, name, strlen(name), &sb, 0);
	}
	return st;
}

/* the file's bytes with its checksum made right again */
static void reseal(char *buf, size_t len)
{
	unsigned int n = 0;
	EVP_Digest(buf, len - 32, (unsigned char *)buf + len - 32, &n, EVP_sha256(), NULL);
}

static int parse(const char *buf, size_t len)
{
	struct audit_state *st = NULL;
	struct mesh_err err = {0};
	int rc = audit_state_parse(buf, len, "/store", 1, 2, &st, &err);
	CHECK((rc == 0) == (st != NULL));
	CHECK(rc == 0 || err.msg[0]);
	audit_state_free(st);
	return rc;
}

static void test_round_trip(void)
{
	struct audit_state *st = sample();
	char *buf;
	size_t len;
	audit_state_serialize(st, &buf, &len);
	struct audit_state *back = NULL;
	struct mesh_err err = {0};
	CHECK(audit_state_parse(buf, len, "/store", 1, 2, &back, &err) == 0);
	CHECK(back && back->n == st->n);
	if (back) {
		uint32_t sales = audit_state_find(back, 1, "sales", 5);
		CHECK(sales == 2 && (back->recs[sales].flags & AUDIT_REC_RACY));
		uint32_t p7 = audit_state_find(back, sales, "p7", 2);
		CHECK(p7 != AUDIT_STATE_NONE && back->recs[p7].ino == 107);
		struct stat sb = dir_stat(107);
		CHECK(audit_state_same(back, p7, &sb));
		sb.st_ctim.tv_nsec++;
		CHECK(!audit_state_same(back, p7, &sb));
		sb = dir_stat(107);
		sb.st_mode |= 005;
		CHECK(!audit_state_same(back, p7, &sb));
		CHECK(audit_state_find(back, sales, "p300", 4) == AUDIT_STATE_NONE);
		CHECK(audit_state_find(back, 0, "p7", 2) == AUDIT_STATE_NONE);
	}
	audit_state_free(back);
	/* bound to its store: another path, another root inode */
	CHECK(audit_state_parse(buf, len, "/other", 1, 2, &back, &err) == -EINVAL && strstr(err.msg, "another store"));
	CHECK(audit_state_parse(buf, len, "/store", 1, 3, &back, &err) == -EINVAL && strstr(err.msg, "root inode"));
	CHECK(audit_state_parse(buf, len, "/stor", 1, 2, &back, &err) == -EINVAL);
	/* every truncation, every flipped byte: refused */
	for (size_t n = 0; n < len; n++)
		CHECK(parse(buf, n) == -EINVAL);
	for (size_t i = 0; i < len; i += 7) {
		buf[i] ^= 0x10;
		CHECK(parse(buf, len) == -EINVAL);
		buf[i] ^= 0x10;
	}
	CHECK(parse(buf, len) == 0);
	free(buf);
	audit_state_free(st);
}

/* records made wrong with a valid checksum: the structure itself refused */
static void test_malformed(void)
{
	struct {
		const char *name, *why;
		uint32_t parent;
		uint8_t flags;
		mode_t mode;
	} bad[] = {
		{"x/y", "bad parent or name", 0, 0, S_IFDIR | 0700},
		{"..", "bad parent or name", 0, 0, S_IFDIR | 0700},
		{".", "bad parent or name", 0, 0, S_IFDIR | 0700},
		{"", "bad parent or name", 0, 0, S_IFDIR | 0700},
		{"late", "bad parent or name", 5, 0, S_IFDIR | 0700},
		{"self", "bad parent or name", 1, 0, S_IFDIR | 0700},
		{"flags", "unknown flags", 0, 0x80, S_IFDIR | 0700},
		{"file", "not a directory", 0, 0, S_IFREG | 0600},
		{"domains", "recorded twice", 0, 0, S_IFDIR | 0700},
	};
	for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
		struct audit_state *st = audit_state_new("/store", 1, 2, 0);
		struct stat sb = dir_stat(2);
		audit_state_add(st, AUDIT_STATE_NONE, "", 0, &sb, 0);
		sb = dir_stat(10);
		audit_state_add(st, 0, "domains", 7, &sb, 0);
		sb = dir_stat(11);
		sb.st_mode = bad[k].mode;
		/* written as it is, bypassing the builder's own bookkeeping */
		audit_state_add(st, 0, "placeholder", 11, &sb, bad[k].flags);
		struct audit_dir_rec *r = &st->recs[2];
		size_t nl = strlen(bad[k].name);
		st->names = xrealloc(st->names, st->names_len + nl + 1);
		memcpy(st->names + st->names_len, bad[k].name, nl);
		r->name_off = (uint32_t)st->names_len;
		r->name_len = (uint16_t)nl;
		st->names_len += nl;
		r->parent = bad[k].parent == 5 ? 5 : bad[k].parent == 1 && !strcmp(bad[k].name, "self") ? 2 : 0;
		char *buf;
		size_t len;
		audit_state_serialize(st, &buf, &len);
		struct audit_state *back = NULL;
		struct mesh_err err = {0};
		int rc = audit_state_parse(buf, len, "/store", 1, 2, &back, &err);
		CHECK(rc == -EINVAL && back == NULL);
		if (!strstr(err.msg, bad[k].why))
			fprintf(stderr, "%s: %s\n", bad[k].name, err.msg);
		CHECK(strstr(err.msg, bad[k].why) != NULL);
		free(buf);
		audit_state_free(st);
	}
	/* a count the bytes cannot hold, and bytes after the last record */
	struct audit_state *st = sample();
	char *buf;
	size_t len;
	audit_state_serialize(st, &buf, &len);
	size_t count_at = strlen(AUDIT_STATE_MAGIC) + 8 + 8 + 4 + 8;
	uint32_t huge = 0x7fffffff;
	memcpy(buf + count_at, &huge, 4);
	reseal(buf, len);
	CHECK(parse(buf, len) == -EINVAL);
	free(buf);
	audit_state_serialize(st, &buf, &len);
	buf = xrealloc(buf, len + 5);
	memmove(buf + len - 32 + 5, buf + len - 32, 32);
	memset(buf + len - 32, 'x', 5);
	reseal(buf, len + 5);
	CHECK(parse(buf, len + 5) == -EINVAL);
	free(buf);
	audit_state_free(st);
}

static char dir[256];

static void test_load_checks_owner(void)
{
	struct audit_state *st = sample();
	char path[300];
	snprintf(path, sizeof path, "%s/rec", dir);
	struct mesh_err err = {0};
	CHECK(audit_state_save(path, st, &err) == 0);
	struct stat sb;
	CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
	struct audit_state *back = NULL;
	CHECK(audit_state_load(path, "/store", 1, 2, &back, &err) == 0 && back && back->n == st->n);
	audit_state_free(back);
	CHECK(chmod(path, 0620) == 0);   /* someone else could have written it */
	CHECK(audit_state_load(path, "/store", 1, 2, &back, &err) == -EPERM && !back);
	CHECK(chmod(path, 0600) == 0);
	if (geteuid() == 0) {
		CHECK(chown(path, 65534, -1) == 0);
		CHECK(audit_state_load(path, "/store", 1, 2, &back, &err) == -EPERM && !back);
		CHECK(chown(path, 0, -1) == 0);
	}
	char link[300];
	snprintf(link, sizeof link, "%s/link", dir);
	CHECK(symlink(path, link) == 0);
	CHECK(audit_state_load(link, "/store", 1, 2, &back, &err) < 0 && !back);
	snprintf(link, sizeof link, "%s/none", dir);
	CHECK(audit_state_load(link, "/store", 1, 2, &back, &err) == -ENOENT);
	audit_state_free(st);
}

static void sh(const char *fmt, const char *arg)
{
	char cmd[1024];
	snprintf(cmd, sizeof cmd, fmt, arg, arg, arg);
	CHECK(system(cmd) == 0);
}

static void test_incremental(void)
{
	char store[300], state[300], real[PATH_MAX];
	snprintf(store, sizeof store, "%s/store", dir);
	snprintf(state, sizeof state, "%s/store-audit", dir);
	sh("mkdir -p %s/a/b/c %s/d && echo x > %s/a/b/c/f", store);
	sh("chmod -R go= %s", store);
	CHECK(realpath(store, real) != NULL);
	struct store_audit_info info;
	struct mesh_err err = {0};
	char *report = NULL;
	/* no record: whole, and recorded */
	CHECK(store_audit_run(real, state, true, NULL, &report, &info, &err) == 0);
	CHECK(!info.incremental && info.dirs == 5 && access(state, F_OK) == 0);
	/* a record: used (just made, every directory is racy: re-read) */
	CHECK(store_audit_run(real, state, true, NULL, &report, &info, &err) == 0);
	CHECK(info.incremental && info.dirs == 5 && info.reread == 5);
	/* a symlink planted deep: found, and the record removed */
	sh("ln -s /etc/passwd %s/a/b/c/link", real);
	CHECK(store_audit_run(real, state, true, NULL, &report, &info, &err) == 1);
	CHECK(info.incremental && report && strstr(report, "a/b/c/link: a symbolic link"));
	free(report);
	CHECK(access(state, F_OK) < 0);
	sh("rm %s/a/b/c/link", real);
	CHECK(store_audit_run(real, state, true, NULL, &report, &info, &err) == 0 && !info.incremental);
	/* a directory chmod'ed, a new subtree with a FIFO, a directory gone */
	sh("chmod o+x %s/a/b && rmdir %s/d", real);
	sh("mkdir -m 700 %s/a/n %s/a/n/m && mkfifo -m 600 %s/a/n/m/pipe", real);
	CHECK(store_audit_run(real, state, true, NULL, &report, &info, &err) == 2);
	CHECK(info.incremental && report && strstr(report, "a/b: mode 0701") && strstr(report, "a/n/m/pipe: a FIFO"));
	free(report);
	sh("chmod o-x %s/a/b && rm %s/a/n/m/pipe", real);
	CHECK(store_audit_run(real, state, true, NULL, &report, &info, &err) == 0 && !info.incremental);
	CHECK(store_audit_run(real, state, true, NULL, &report, &info, &err) == 0 && info.incremental);
	CHECK(info.dirs == 6);   /* d gone, n and m new */
	/* a damaged record: a whole audit */
	int fd = open(state, O_WRONLY);
	CHECK(fd >= 0 && pwrite(fd, "X", 1, 40) == 1);
	close(fd);
	CHECK(store_audit_run(real, state, true, NULL, &report, &info, &err) == 0);
	CHECK(!info.incremental && strstr(info.why_full, "checksum"));
	/* full when asked, and no state kept without a path */
	CHECK(store_audit_run(real, state, false, NULL, &report, &info, &err) == 0 && !info.incremental);
	CHECK(store_audit_run(real, NULL, true, NULL, &report, &info, &err) == 0 && !info.incremental);
}

int main(void)
{
	snprintf(dir, sizeof dir, "/var/tmp/meshfs-unit-audit-XXXXXX");
	CHECK(mkdtemp(dir) != NULL);
	test_round_trip();
	test_malformed();
	test_load_checks_owner();
	test_incremental();
	sh("rm -rf %s", dir);
	return check_done("test_audit_state");
}
