/*
 * test_backing_cache.c - kept descriptors: a second open of the same file
 * asks the opener nothing, the descriptor returned is the caller's own,
 * another path under the same inode number (a re-stated copy) is opened
 * afresh, errors pass through, and clear forgets everything.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "backing_cache.h"
#include "check.h"

static int opens;

static int opener(void *ctx, const char *relpath)
{
	opens++;
	int fd = openat(*(int *)ctx, relpath, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	return fd < 0 ? -errno : fd;
}

int main(void)
{
	char dir[] = "/tmp/backing-cache-XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	int root = open(dir, O_RDONLY | O_DIRECTORY);
	int fd = openat(root, "a", O_WRONLY | O_CREAT, 0644);
	CHECK(write(fd, "alpha", 5) == 5);
	close(fd);
	fd = openat(root, "b", O_WRONLY | O_CREAT, 0644);
	CHECK(write(fd, "beta", 4) == 4);
	close(fd);

	struct backing_cache *c = backing_cache_new(8, opener, &root);
	char buf[8];
	int f1 = backing_cache_open(c, 42, "a");
	int f2 = backing_cache_open(c, 42, "a");
	CHECK(f1 >= 0 && f2 >= 0 && f1 != f2 && opens == 1);
	CHECK(pread(f2, buf, 5, 0) == 5 && !memcmp(buf, "alpha", 5));
	close(f1);   /* the caller's own: closing it leaves the kept one */
	CHECK(pread(f2, buf, 5, 0) == 5);
	close(f2);
	int f3 = backing_cache_open(c, 42, "b");   /* same inode, new backing path */
	CHECK(f3 >= 0 && opens == 2 && pread(f3, buf, 4, 0) == 4 && !memcmp(buf, "beta", 4));
	close(f3);
	CHECK(backing_cache_open(c, 7, "missing") == -ENOENT);
	backing_cache_clear(c);
	f1 = backing_cache_open(c, 42, "b");
	CHECK(f1 >= 0 && opens == 4);
	close(f1);
	backing_cache_free(c);
	backing_cache_free(NULL);

	struct backing_cache *none = backing_cache_new(0, opener, &root);
	f1 = backing_cache_open(none, 1, "a");
	f2 = backing_cache_open(none, 1, "a");
	CHECK(f1 >= 0 && f2 >= 0 && opens == 6);
	close(f1);
	close(f2);
	backing_cache_free(none);

	unlinkat(root, "a", 0);
	unlinkat(root, "b", 0);
	close(root);
	rmdir(dir);
	return check_done("test_backing_cache");
}
