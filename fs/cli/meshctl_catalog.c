/*
 * meshctl_catalog.c - `meshctl catalog --html DIR [--mount DIR]`: the
 * static catalog site (catalog_html.c) as the caller may see the mesh.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "catalog_html.h"
#include "meshctl_discovery.h"
#include "meshctl_service.h"
#include "mesh_util.h"

static const char catalog_help[] =
"usage: meshctl catalog --html DIR [--mount DIR]\n"
"\n"
"Writes a static catalog site into DIR that works offline from file://:\n"
"index.html (a search box over an embedded index of names, descriptions, tags,\n"
"owners and columns) and products/DOMAIN.PRODUCT.html (facts, schema, versions,\n"
"quality, a usage sparkline and the lineage picture, drawn by Graphviz's dot\n"
"when it is installed).  Only products you may discover are written.\n";

struct site_file {
	char rel[PATH_MAX];
	int fd;
};

/* Every regular file of the site built in `dir` (two levels: index.html,
 * products/...), opened here, with the service's rights. */
static size_t open_site(const char *dir, struct site_file **out)
{
	size_t n = 0, cap = 64;
	struct site_file *f = xcalloc(cap, sizeof *f);
	const char *subdirs[] = {"", "products"};
	for (int k = 0; k < 2; k++) {
		char path[PATH_MAX];
		if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, subdirs[k]) >= sizeof path)
			continue;                 /* the built site is ours: never that long */
		DIR *d = opendir(path);
		struct dirent *e;
		while (d && (e = readdir(d))) {
			if (e->d_name[0] == '.' || e->d_type != DT_REG)
				continue;
			if (n == cap)
				f = xrealloc(f, (cap *= 2) * sizeof *f);
			if ((size_t)snprintf(f[n].rel, sizeof f[n].rel, "%s%s%s", subdirs[k], *subdirs[k] ? "/" : "",
					     e->d_name) >= sizeof f[n].rel)
				continue;
			f[n].fd = openat(dirfd(d), e->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
			if (f[n].fd >= 0)
				n++;
		}
		if (d)
			closedir(d);
	}
	*out = f;
	return n;
}

/* Served by the mesh service, the site is built in a private directory
 * and then written into DIR by a child that has become the caller: the
 * service never creates files where the caller names a path. */
static int write_as_caller(const struct meshctl_ctx *ctx, const char *built, const char *dir)
{
	struct site_file *files = NULL;
	size_t n = open_site(built, &files);
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid == 0) {
		const struct identity *who = &ctx->caller;
		if (identity_become(who))
			_exit(MESHCTL_ERROR);
		umask(022);
		char path[PATH_MAX];
		if ((size_t)snprintf(path, sizeof path, "%s/products", dir) >= sizeof path) {
			fprintf(stderr, "%s catalog: %s: %s\n", ctx->prog, dir, strerror(ENAMETOOLONG));
			_exit(MESHCTL_ERROR);
		}
		if ((mkdir(dir, 0755) < 0 && errno != EEXIST) || (mkdir(path, 0755) < 0 && errno != EEXIST)) {
			fprintf(stderr, "%s catalog: %s: %s\n", ctx->prog, dir, strerror(errno));
			_exit(MESHCTL_ERROR);
		}
		for (size_t i = 0; i < n; i++) {
			if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, files[i].rel) >= sizeof path) {
				fprintf(stderr, "%s catalog: %s/%s: %s\n", ctx->prog, dir, files[i].rel,
					strerror(ENAMETOOLONG));
				_exit(MESHCTL_ERROR);
			}
			int out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
			char buf[65536];
			ssize_t r;
			while (out >= 0 && (r = read(files[i].fd, buf, sizeof buf)) > 0)
				if (mesh_write_all(out, buf, (size_t)r))
					break;
			if (out < 0 || close(out) < 0) {
				fprintf(stderr, "%s catalog: %s: %s\n", ctx->prog, path, strerror(errno));
				_exit(MESHCTL_ERROR);
			}
		}
		_exit(MESHCTL_OK);
	}
	int status = 0;
	while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	for (size_t i = 0; i < n; i++)
		close(files[i].fd);
	free(files);
	if (pid < 0)
		return MESHCTL_ERROR;
	return WIFEXITED(status) ? WEXITSTATUS(status) : MESHCTL_ERROR;
}

int meshctl_cmd_catalog(const struct meshctl_ctx *ctx, int argc, char **argv)
{
	const char *dir = NULL, *mount = getenv("MESH_MOUNT");
	if (!mount || !*mount)
		mount = "/mesh";
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--html") && i + 1 < argc)
			dir = argv[++i];
		else if (!strcmp(argv[i], "--mount") && i + 1 < argc)
			mount = argv[++i];
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(catalog_help, stdout);
			return MESHCTL_OK;
		} else {
			dir = NULL;
			break;
		}
	}
	if (!dir) {
		meshctl_fail(ctx, "catalog", "usage: meshctl catalog --html DIR [--mount DIR]");
		return MESHCTL_USAGE;
	}
	struct catalog_html_stats st;
	struct mesh_err err = {0};
	char built[PATH_MAX] = "";
	if (ctx->served) {
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		snprintf(built, sizeof built, "%s/.incoming/%ld-site%lx", ctx->store, (long)getpid(),
			 (unsigned long)now.tv_nsec);
		char incoming[PATH_MAX];
		snprintf(incoming, sizeof incoming, "%s/.incoming", ctx->store);
		mkdir(incoming, 0700);
		if (mkdir(built, 0700) < 0) {
			meshctl_fail(ctx, "catalog", "%s: %s", built, strerror(errno));
			return MESHCTL_ERROR;
		}
	}
	int rc = catalog_html_write(ctx->store, &ctx->caller, *built ? built : dir, mount, &st, &err);
	int st_code = 0;
	if (!rc && *built)
		st_code = write_as_caller(ctx, built, dir);
	if (*built)
		meshctl_release_done(built);
	if (rc) {
		meshctl_fail(ctx, "catalog", "%s", err.msg);
		return meshctl_exit_for(rc);
	}
	if (st_code)
		return st_code;
	printf("wrote %s/index.html and %zu product page(s)%s\n", dir, st.products,
	       st.products && !st.lineage_drawn ? " (no lineage pictures: Graphviz dot is not installed)" : "");
	return MESHCTL_OK;
}
