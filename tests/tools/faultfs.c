/*
 * faultfs.c - a test tool: a read-only FUSE view of one flat directory in
 * which one file cannot be read from a given offset on (EIO), while its
 * size is still the whole file's.  A program that mapped that file meets
 * at that offset what it meets in a file truncated under it: a page fault
 * that cannot be served, SIGBUS.  Unlike a real truncation there is no
 * race: which bytes fail is fixed before the program starts, so a test of
 * a program's SIGBUS handling (meshctl validate maps CSV files) gives the
 * same answer on every run.
 *
 *   faultfs SRC_DIR MOUNTPOINT NAME OFFSET [FUSE options: -f, -o ...]
 *
 * Every file of SRC_DIR (no subdirectories) reads as itself, except NAME:
 * a read that reaches byte OFFSET or beyond fails with EIO (the kernel
 * then reads the pages before OFFSET one by one, so they still read).
 *
 * Not here: writes, subdirectories, symbolic links (not followed: they
 * read as missing), anything of meshfs itself.  Built with `make all`
 * for the integration tests; never installed.
 */
#define FUSE_USE_VERSION 31

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int src_fd = -1;             /* SRC_DIR, opened before mounting */
static const char *faulty_name;     /* NAME */
static off_t fault_at;              /* OFFSET */

/* "/name" -> "name"; NULL for the root, for deeper paths and for "..". */
static const char *entry_name(const char *path)
{
	const char *name = path + 1;
	if (!*name || strchr(name, '/') || !strcmp(name, ".."))
		return NULL;
	return name;
}

static int fault_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	(void)fi;
	if (!strcmp(path, "/"))
		return fstat(src_fd, st) ? -errno : 0;
	const char *name = entry_name(path);
	if (!name)
		return -ENOENT;
	if (fstatat(src_fd, name, st, AT_SYMLINK_NOFOLLOW))
		return -errno;
	return S_ISREG(st->st_mode) ? 0 : -ENOENT;
}

static int fault_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
			 struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	(void)off, (void)fi, (void)flags;
	if (strcmp(path, "/"))
		return -ENOTDIR;
	int fd = openat(src_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = fd < 0 ? NULL : fdopendir(fd);
	if (!dir) {
		int rc = -errno;
		if (fd >= 0)
			close(fd);
		return rc;
	}
	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	struct dirent *e;
	while ((e = readdir(dir)))
		if (e->d_type == DT_REG)
			fill(buf, e->d_name, NULL, 0, 0);
	closedir(dir);
	return 0;
}

static int fault_open(const char *path, struct fuse_file_info *fi)
{
	const char *name = entry_name(path);
	if (!name)
		return -ENOENT;
	if ((fi->flags & O_ACCMODE) != O_RDONLY)
		return -EROFS;
	int fd = openat(src_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	fi->fh = (uint64_t)fd;
	fi->keep_cache = 0;
	return 0;
}

static int fault_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	ssize_t n = pread((int)fi->fh, buf, size, off);
	if (n < 0)
		return -errno;
	/* the kernel asks past the end of the file too: only bytes that exist fail */
	const char *name = entry_name(path);
	if (name && !strcmp(name, faulty_name) && off + n > fault_at)
		return -EIO;
	return (int)n;
}

static int fault_release(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	close((int)fi->fh);
	return 0;
}

static const struct fuse_operations ops = {
	.getattr = fault_getattr,
	.readdir = fault_readdir,
	.open = fault_open,
	.read = fault_read,
	.release = fault_release,
};

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: faultfs SRC_DIR MOUNTPOINT NAME OFFSET [FUSE options]\n");
		return 2;
	}
	src_fd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (src_fd < 0) {
		fprintf(stderr, "faultfs: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	faulty_name = argv[3];
	char *end;
	long long at = strtoll(argv[4], &end, 10);
	if (*end || end == argv[4] || at < 0) {
		fprintf(stderr, "faultfs: OFFSET: a number of bytes\n");
		return 2;
	}
	fault_at = (off_t)at;
	/* fuse_main sees: faultfs MOUNTPOINT [options] */
	char **fuse_argv = calloc((size_t)argc, sizeof *fuse_argv);
	if (!fuse_argv)
		return 1;
	int n = 0;
	fuse_argv[n++] = argv[0];
	fuse_argv[n++] = argv[2];
	for (int i = 5; i < argc; i++)
		fuse_argv[n++] = argv[i];
	int rc = fuse_main(n, fuse_argv, &ops, NULL);
	free(fuse_argv);
	close(src_fd);
	return rc;
}
