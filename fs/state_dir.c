/*
 * state_dir.c - a host's local state directory for a store (contract in
 * include/state_dir.h).
 *
 * Not here: the index and usage files kept there (index.c, usage.c).
 */
#include "state_dir.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mesh_util.h"
#include "store.h"

const char *state_root(const char *option)
{
	if (option && *option)
		return option;
	const char *env = getenv("MESHFS_STATE_DIR");
	return env && *env ? env : STATE_ROOT_DEFAULT;
}

void state_new_store_id_line(char *buf, size_t size)
{
	unsigned char b[16] = {0};
	if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		for (size_t i = 0; i < sizeof b; i++)
			b[i] ^= (unsigned char)((ts.tv_nsec >> (i % 4 * 8)) ^ (getpid() >> (i % 2 * 8)) ^ i);
	}
	b[6] = (b[6] & 0x0f) | 0x40;   /* RFC 4122 version 4 */
	b[8] = (b[8] & 0x3f) | 0x80;
	snprintf(buf, size, "id %02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x\n",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
		 b[14], b[15]);
}

int state_store_id(const char *store, char *out, size_t size)
{
	char path[PATH_MAX], *text = NULL;
	size_t len;
	snprintf(path, sizeof path, "%s/" STORE_MARKER, store);
	int rc = mesh_read_file_at(AT_FDCWD, path, 4096, &text, &len, NULL);
	if (rc)
		return rc;
	const char *line = strstr(text, "\nid ");
	if (line) {
		line += 4;
		size_t n = strspn(line, "0123456789abcdef-");
		if (n >= 8 && n < size && n < 64) {
			memcpy(out, line, n);
			out[n] = '\0';
			free(text);
			return 0;
		}
	}
	free(text);
	/* a store older than ids: named by where it is */
	char real[PATH_MAX], hex[65];
	if (!realpath(store, real))
		return -errno;
	struct mesh_sha256 *h = mesh_sha256_new();
	mesh_sha256_update(h, real, strlen(real));
	mesh_sha256_final(h, hex);
	snprintf(out, size, "path-%.16s", hex);
	return 0;
}

static int make_dir(const char *path, struct mesh_err *err)
{
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return mesh_errf(err, -errno, "%s: %s", path, strerror(errno));
	struct stat st;
	if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
		return mesh_errf(err, -ENOTDIR, "%s: not a directory", path);
	return 0;
}

int state_dir_for_store(const char *store, const char *option, bool create, char *out, size_t size,
			struct mesh_err *err)
{
	char id[64];
	int rc = state_store_id(store, id, sizeof id);
	if (rc)
		return mesh_errf(err, rc, "%s/%s: %s", store, STORE_MARKER, strerror(-rc));
	const char *root = state_root(option);
	int n = snprintf(out, size, "%s/%s", root, id);
	if (n < 0 || (size_t)n >= size)
		return mesh_errf(err, -ENAMETOOLONG, "%s: state directory path too long", root);
	if (!create)
		return 0;
	/* the root's parents are the system's (/var/lib) or the test's */
	char *copy = xstrdup(root);
	for (char *p = copy + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(copy, 0755) < 0 && errno != EEXIST) {
			rc = mesh_errf(err, -errno, "%s: %s", copy, strerror(errno));
			break;
		}
		*p = '/';
	}
	free(copy);
	if (!rc)
		rc = make_dir(root, err);
	if (!rc)
		rc = make_dir(out, err);
	return rc;
}
