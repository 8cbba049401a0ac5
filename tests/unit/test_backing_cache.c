/*
 * test_backing_cache.c - kept descriptors: a second open of the same file
 * asks the opener nothing and shares the descriptor, which stays open while
 * any reference holds it (after a replacement or a clear) and is closed by
 * the last; another path under the same inode number (a re-stated copy) is
 * opened afresh, errors pass through, and clear forgets everything.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
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
	struct backing_ref *r1, *r2, *r3, *r4;
	int f1 = backing_cache_get(c, 42, "a", &r1);
	int f2 = backing_cache_get(c, 42, "a", &r2);
	/* one descriptor, shared: the second open asks the opener nothing */
	CHECK(f1 >= 0 && f2 == f1 && opens == 1 && r1 && r2 == r1);
	CHECK(pread(f2, buf, 5, 0) == 5 && !memcmp(buf, "alpha", 5));
	backing_cache_put(r1);   /* one user gone: the others and the cache keep it */
	CHECK(pread(f2, buf, 5, 0) == 5);
	int f3 = backing_cache_get(c, 42, "b", &r3);   /* same inode, new backing path */
	CHECK(f3 >= 0 && opens == 2 && pread(f3, buf, 4, 0) == 4 && !memcmp(buf, "beta", 4));
	/* "a" left the cache, but r2 still holds it open */
	CHECK(pread(f2, buf, 5, 0) == 5 && !memcmp(buf, "alpha", 5));
	backing_cache_put(r2);   /* the last reference: closed */
	CHECK(fcntl(f2, F_GETFD) < 0 || f2 == f3);
	CHECK(backing_cache_get(c, 7, "missing", &r1) == -ENOENT && r1 == NULL);
	backing_cache_clear(c);
	/* cleared while r3 is held: still readable until put */
	CHECK(pread(f3, buf, 4, 0) == 4 && !memcmp(buf, "beta", 4));
	f1 = backing_cache_get(c, 42, "b", &r4);
	CHECK(f1 >= 0 && opens == 4 && r4 != r3);
	backing_cache_put(r3);
	CHECK(fcntl(f3, F_GETFD) < 0 || f3 == f1);
	CHECK(pread(f1, buf, 4, 0) == 4);
	backing_cache_put(r4);
	CHECK(fcntl(f1, F_GETFD) >= 0);          /* the cache's own reference */
	backing_cache_free(c);
	CHECK(fcntl(f1, F_GETFD) < 0);           /* freed: nothing kept open */
	backing_cache_free(NULL);
	backing_cache_put(NULL);

	struct backing_cache *none = backing_cache_new(0, opener, &root);
	f1 = backing_cache_get(none, 1, "a", &r1);
	f2 = backing_cache_get(none, 1, "a", &r2);
	CHECK(f1 >= 0 && f2 >= 0 && f1 != f2 && opens == 6);
	backing_cache_put(r1);
	CHECK(fcntl(f1, F_GETFD) < 0);           /* nothing kept: the only reference closed it */
	backing_cache_put(r2);
	backing_cache_free(none);

	unlinkat(root, "a", 0);
	unlinkat(root, "b", 0);
	close(root);
	rmdir(dir);
	return check_done("test_backing_cache");
}
