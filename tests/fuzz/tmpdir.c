/*
 * tmpdir.c - the fuzz targets' scratch directory and file (contract in
 * tmpdir.h).  Not here: what the targets do with the file.
 */
#include "tmpdir.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp_dir[96];
static char tmp_name[64];
static int dir_fd = -1;

static void remove_tmp(void)
{
	char path[sizeof tmp_dir + sizeof tmp_name + 1];
	snprintf(path, sizeof path, "%s/%s", tmp_dir, tmp_name);
	unlink(path);
	rmdir(tmp_dir);
}

int fuzz_tmpdir_file(const char *prefix, const char *name, const void *data, size_t size)
{
	if (dir_fd < 0) {
		snprintf(tmp_dir, sizeof tmp_dir, "/tmp/%s.%d", prefix, (int)getpid());
		snprintf(tmp_name, sizeof tmp_name, "%s", name);
		mkdir(tmp_dir, 0700);
		dir_fd = open(tmp_dir, O_RDONLY | O_DIRECTORY);
		if (dir_fd < 0)
			abort();
		atexit(remove_tmp);
	}
	int fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	close(fd);
	return dir_fd;
}
