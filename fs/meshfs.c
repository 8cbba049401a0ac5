/*
 * meshfs.c - the daemon's main: options, store check, mount, daemonize,
 * the multi-threaded session loop, clean shutdown.
 *
 *   meshfs STORE MOUNTPOINT [-f] [-d] [-s] [-o opt,...]
 *   meshfs --service STORE [-f] [-o opt,...]     the mesh service alone
 *
 * Besides the mount, the daemon serves the store's control socket (the
 * mesh service, fs/service/), through which ordinary users' meshctl works.
 *
 * Works as a mount helper: `mount -t fuse.meshfs STORE MOUNTPOINT -o ...`
 * runs mount.fuse3, which calls `meshfs STORE MOUNTPOINT -o ...`.
 */
#include <errno.h>
#include <pthread.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "fuse_ops.h"
#include "fuse_passthrough.h"
#include "mesh_util.h"
#include "service.h"
#include "store.h"

struct meshfs_conf {
	char *store;
	int nonopt;          /* non-option arguments seen */
	int open_mesh;
	double poll;
	char *usage_dir;
	char *hostname;
	int max_threads;
	int allow_other;
	char *passthrough;   /* auto | off */
	int usage_slots;
	char *metrics;
	int no_usage;
	char *socket;        /* control socket path (default: in /run/meshfs) */
	char *meshctl;       /* the served side's program */
	int no_service;
	int max_clients;
	int service_only;    /* meshfs --service STORE */
	int insecure_store;
	char *view_cache;
	char *view_cache_max;
};

enum { KEY_DROP, KEY_ALLOW_OTHER };

#define CONF_OPT(t, p) { t, offsetof(struct meshfs_conf, p), 1 }
static const struct fuse_opt conf_opts[] = {
	CONF_OPT("open_mesh", open_mesh),
	CONF_OPT("poll=%lf", poll),
	CONF_OPT("usage_dir=%s", usage_dir),
	CONF_OPT("hostname=%s", hostname),
	CONF_OPT("max_threads=%d", max_threads),
	CONF_OPT("passthrough=%s", passthrough),
	CONF_OPT("usage_slots=%d", usage_slots),
	CONF_OPT("metrics=%s", metrics),
	CONF_OPT("no_usage", no_usage),
	CONF_OPT("socket=%s", socket),
	CONF_OPT("meshctl=%s", meshctl),
	CONF_OPT("no_service", no_service),
	CONF_OPT("max_clients=%d", max_clients),
	CONF_OPT("insecure_store", insecure_store),
	CONF_OPT("view_cache=%s", view_cache),
	CONF_OPT("view_cache_max=%s", view_cache_max),
	FUSE_OPT_KEY("allow_other", KEY_ALLOW_OTHER),
	/* mount.fuse3 adds dev and suid unless told otherwise: a mesh never
	 * needs either, so they are dropped and nosuid,nodev forced below */
	FUSE_OPT_KEY("dev", KEY_DROP),
	FUSE_OPT_KEY("suid", KEY_DROP),
	FUSE_OPT_KEY("rw", KEY_DROP),
	FUSE_OPT_END
};

static void usage(FILE *out)
{
	fprintf(out,
"usage: meshfs STORE MOUNTPOINT [options]\n"
"       meshfs --service STORE [-f] [-o socket=,meshctl=,max_clients=]\n"
"\n"
"Mounts the meshfs store STORE (made by 'meshctl init') read-only at\n"
"MOUNTPOINT as /<domain>/<product>/<version>/ with 'latest' links, and\n"
"serves the store's mesh service: the control socket through which\n"
"meshctl works for users who cannot read the store (everyone but root and\n"
"the store's owner).  With --service, only the control socket.\n"
"\n"
"options:\n"
"    -f                     stay in the foreground\n"
"    -d                     debug: foreground, print every request\n"
"    -s                     single-threaded\n"
"    -o allow_other         let every user reach the mount (needs root or\n"
"                           user_allow_other in /etc/fuse.conf; refused when\n"
"                           STORE/mesh.yaml is missing, unless open_mesh)\n"
"    -o ro                  read-only (always on)\n"
"    -o open_mesh           all data is public: no access control\n"
"    -o poll=SECONDS        how often to check the store for changes made on\n"
"                           other hosts (default 1)\n"
"    -o max_threads=N       worker threads (default 16)\n"
"    -o passthrough=auto|off  kernel FUSE passthrough for release files and\n"
"                           masked views (auto: when run as root on a kernel\n"
"                           that offers it; default auto)\n"
"    -o view_cache=DIR      where this host keeps masked readers' views\n"
"                           (default /var/cache/meshfs/views, made 0700)\n"
"    -o view_cache_max=BYTES  size cap of the view cache, least recently used\n"
"                           views evicted first (suffix K, M, G; default 10G)\n"
"    -o usage_dir=DIR       where this host records usage (default STORE/usage/HOST)\n"
"    -o hostname=NAME       host name recorded with usage (default gethostname)\n"
"    -o usage_slots=N       usage journal capacity in events (default 32768)\n"
"    -o metrics=PATH        write Prometheus metrics (textfile collector) to PATH\n"
"    -o no_usage            record no usage (for benchmarks only)\n"
"    -o socket=PATH         control socket (default /run/meshfs/s-HASH.sock,\n"
"                           found by meshctl from the store's path)\n"
"    -o meshctl=PATH        the program that serves each request (default:\n"
"                           meshctl beside meshfs)\n"
"    -o max_clients=N       requests served at once (default 32; more are\n"
"                           refused as busy)\n"
"    -o no_service          serve no control socket (another daemon does)\n"
"    -o insecure_store      serve a store that is not locked down (others may\n"
"                           read or write its files), with a loud warning;\n"
"                           without it meshfs refuses such a store\n"
"    -h, --help             this text\n"
"    -V, --version          version\n"
"\n"
"Always mounted nosuid,nodev,ro. Exit status: 0 after a clean unmount,\n"
"1 on bad arguments, a missing store, a store that is not locked down (one\n"
"account owns every file, nobody else may read or write any: see\n"
"'meshctl doctor'), or a failed mount.\n"
"Unmount with 'fusermount3 -u MOUNTPOINT' (or umount as root).\n");
}

static int conf_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	(void)outargs;
	struct meshfs_conf *conf = data;
	if (key == KEY_DROP)
		return 0;
	if (key == KEY_ALLOW_OTHER) {
		conf->allow_other = 1;
		return 1;                /* libfuse needs it too */
	}
	if (key == FUSE_OPT_KEY_NONOPT) {
		if (conf->nonopt++ == 0) {
			conf->store = strdup(arg);
			return 0;        /* consumed: STORE */
		}
		return 1;                /* MOUNTPOINT: for fuse_parse_cmdline */
	}
	return 1;
}

static void conf_free(struct meshfs_conf *conf)
{
	free(conf->store);
	free(conf->usage_dir);
	free(conf->hostname);
	free(conf->passthrough);
	free(conf->metrics);
	free(conf->socket);
	free(conf->meshctl);
	free(conf->view_cache);
	free(conf->view_cache_max);
}

/* Open the control socket (before the fork, so errors reach the terminal).
 * Another live service for the store is not an error for a mount: it
 * serves the store, this daemon only mounts it. */
static int open_service(const struct meshfs_conf *conf, const char *store, const char *mountpoint,
			bool must_serve, struct service **svc)
{
	*svc = NULL;
	if (conf->no_service)
		return 0;
	struct service_options so = {
		.store = store, .mountpoint = mountpoint, .socket_path = conf->socket,
		.meshctl = conf->meshctl, .max_clients = conf->max_clients > 0 ? (unsigned)conf->max_clients : 0,
	};
	struct mesh_err err = {0};
	long busy = 0;
	int rc = service_listen_open(&so, svc, &busy, &err);
	if (rc == -EADDRINUSE && !must_serve) {
		fprintf(stderr, "meshfs: %s: mounting without serving it\n", err.msg);
		syslog(LOG_NOTICE, "%s: mounting without serving it", err.msg);
		return 0;
	}
	if (rc)
		fprintf(stderr, "meshfs: %s\n", err.msg);
	return rc;
}

/* The mount is the only way in: a store others can read bypasses every
 * decision the daemon makes (and one they can write lets them rewrite the
 * policy).  Nonzero: refused (printed why). */
static int refuse_insecure(const char *store, bool insecure_store)
{
	struct mesh_err err = {0};
	char *report = NULL;
	int problems = store_check(store, &err) ? 0 : store_audit(store, &report, &err);
	if (problems < 0) {
		fprintf(stderr, "meshfs: %s\n", err.msg);
		return 1;
	}
	if (problems > 0 && !insecure_store) {
		fprintf(stderr, "meshfs: refusing to serve %s: it is not locked down (%d problem(s)): other users "
			"could read or change its files without the mount:\n%s\n(or mount with -o insecure_store "
			"to serve it anyway)\n", store, problems, report);
		free(report);
		return 1;
	}
	if (problems > 0) {
		fprintf(stderr, "meshfs: WARNING: -o insecure_store: serving %s although it is NOT locked down "
			"(%d problem(s)): access control, masking and usage records can be bypassed by reading "
			"the store directly\n%s\n", store, problems, report);
		syslog(LOG_WARNING, "insecure_store: serving %s although it is not locked down (%d problem(s)); "
		       "access control can be bypassed", store, problems);
		free(report);
	}
	return 0;
}

/* meshfs --service STORE [-f] [-o ...]: the control socket without a mount. */
static int service_main(int argc, char **argv)
{
	struct meshfs_conf conf = {0};
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	bool foreground = false;
	int status = 1;
	struct service *svc = NULL;
	fuse_opt_add_arg(&args, argv[0]);
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "-f"))
			foreground = true;
		else
			fuse_opt_add_arg(&args, argv[i]);
	}
	if (fuse_opt_parse(&args, &conf, conf_opts, conf_proc) != 0)
		goto out;
	if (!conf.store || conf.nonopt != 1 || args.argc > 1) {
		fprintf(stderr, "meshfs: usage: meshfs --service STORE [-f] [-o socket=PATH,meshctl=PATH,"
			"max_clients=N]%s%s\n", args.argc > 1 ? ": unknown argument " : "",
			args.argc > 1 ? args.argv[1] : "");
		goto out;
	}
	char store[PATH_MAX];
	struct mesh_err err = {0};
	if (!realpath(conf.store, store)) {
		fprintf(stderr, "meshfs: %s: %s\n", conf.store, strerror(errno));
		goto out;
	}
	if (store_check(store, &err)) {
		fprintf(stderr, "meshfs: %s\n", err.msg);
		goto out;
	}
	openlog("meshfs", LOG_PID | (foreground ? LOG_PERROR : 0), LOG_DAEMON);
	if (refuse_insecure(store, conf.insecure_store))
		goto out;
	conf.no_service = 0;
	if (open_service(&conf, store, NULL, true, &svc))
		goto out;
	if (!foreground && daemon(0, 0) < 0) {
		fprintf(stderr, "meshfs: daemon: %s\n", strerror(errno));
		goto out;
	}
	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	if (service_listen_start(svc, &err)) {
		syslog(LOG_ERR, "%s", err.msg);
		goto out;
	}
	syslog(LOG_INFO, "serving the mesh service of %s on %s", store, service_listen_path(svc));
	int sig;
	sigwait(&stop, &sig);
	status = 0;
out:
	service_listen_close(svc);
	conf_free(&conf);
	fuse_opt_free_args(&args);
	return status;
}

int main(int argc, char **argv)
{
	umask(077);   /* what the daemon creates in the store is its own */
	if (argc >= 2 && !strcmp(argv[1], "--service"))
		return service_main(argc, argv);
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct meshfs_conf conf = {.poll = 1.0, .max_threads = 16};
	struct fuse_cmdline_opts opts = {0};
	int status = 1;
	struct mesh_daemon *d = NULL;
	struct fuse_session *se = NULL;
	struct fuse_loop_config *loop = NULL;
	struct service *svc = NULL;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		}
		if (!strcmp(argv[i], "-V") || !strcmp(argv[i], "--version")) {
			printf("meshfs %s (libfuse %s)\n", MESHFS_VERSION, fuse_pkgversion());
			return 0;
		}
	}
	if (fuse_opt_parse(&args, &conf, conf_opts, conf_proc) != 0)
		goto out;
	if (fuse_parse_cmdline(&args, &opts) != 0)
		goto out;
	if (!conf.store || !opts.mountpoint) {
		fprintf(stderr, "meshfs: usage: meshfs STORE MOUNTPOINT [options] (see meshfs --help)\n");
		goto out;
	}
	char store[PATH_MAX];
	if (!realpath(conf.store, store)) {
		fprintf(stderr, "meshfs: %s: %s\n", conf.store, strerror(errno));
		goto out;
	}
	fuse_opt_add_arg(&args, "-onosuid,nodev,ro");
	/* fsname/subtype show in /proc/mounts and df */
	char fsname[PATH_MAX + 64];
	snprintf(fsname, sizeof fsname, "-ofsname=%s,subtype=meshfs", store);
	fuse_opt_add_arg(&args, fsname);

	openlog("meshfs", LOG_PID | (opts.foreground ? LOG_PERROR : 0), LOG_DAEMON);
	struct daemon_options dopts = {
		.store = store,
		.poll_interval = conf.poll,
		.open_mesh = conf.open_mesh,
		.usage_dir = conf.usage_dir,
		.hostname = conf.hostname,
		.usage_slots = conf.usage_slots > 0 ? (size_t)conf.usage_slots : 0,
		.metrics_path = conf.metrics,
		.no_usage = conf.no_usage,
	};
	if (conf.view_cache_max) {
		char *end;
		double v = strtod(conf.view_cache_max, &end);
		double unit = *end == 'K' ? 1024.0 : *end == 'M' ? 1048576.0 : *end == 'G' ? 1073741824.0 : 1;
		if (unit > 1)
			end++;
		if (end == conf.view_cache_max || *end || !(v > 0)) {
			fprintf(stderr, "meshfs: -o view_cache_max=%s: expected a size in bytes (K, M, G suffixes)\n",
				conf.view_cache_max);
			goto out;
		}
		dopts.view_cache_max = (uint64_t)(v * unit);
	}
	dopts.view_cache = conf.view_cache;
	struct mesh_err err = {0};
	char policy_file[PATH_MAX + 16];
	snprintf(policy_file, sizeof policy_file, "%s/mesh.yaml", store);
	if (conf.allow_other && !conf.open_mesh && access(policy_file, F_OK) != 0) {
		fprintf(stderr, "meshfs: refusing -o allow_other without access control: %s is missing "
			"(restore it, or say -o open_mesh if all data is public)\n", policy_file);
		goto out;
	}
	if (refuse_insecure(store, conf.insecure_store))
		goto out;
	mesh_err_clear(&err);
	if (daemon_open(&dopts, &d, &err)) {
		fprintf(stderr, "meshfs: %s\n", err.msg);
		goto out;
	}
	if (open_service(&conf, store, opts.mountpoint, false, &svc))
		goto out;
	/* One file descriptor per open file: raise the soft limit. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	se = fuse_session_new(&args, &meshfs_ops, sizeof meshfs_ops, d);
	if (!se)
		goto out;   /* libfuse printed why (e.g. unknown option) */
	if (fuse_set_signal_handlers(se) != 0)
		goto out;
	bool own_mount = false;
	if (!conf.passthrough || !strcmp(conf.passthrough, "auto")) {
		/* root mounts /dev/fuse itself to offer kernel passthrough */
		struct mesh_err perr = {0};
		if (geteuid() == 0) {
			if (passthrough_mount(se, store, opts.mountpoint, conf.allow_other, &perr) == 0)
				own_mount = true;
			else
				fprintf(stderr, "meshfs: %s\n", perr.msg);
			if (!own_mount)
				goto out_signals;
		}
	} else if (strcmp(conf.passthrough, "off")) {
		fprintf(stderr, "meshfs: -o passthrough=%s: expected auto or off\n", conf.passthrough);
		goto out_signals;
	}
	if (!own_mount && fuse_session_mount(se, opts.mountpoint) != 0)
		goto out_signals;   /* libfuse printed why */
	if (fuse_daemonize(opts.foreground) != 0)
		goto out_unmount;
	/* Threads and databases only after the fork of fuse_daemonize. */
	struct daemon_invalidate inval = meshfs_invalidator(se);
	if (daemon_start(d, &inval, &err)) {
		syslog(LOG_ERR, "%s", err.msg);
		goto out_unmount;
	}
	if (svc && service_listen_start(svc, &err)) {
		syslog(LOG_ERR, "%s", err.msg);
		goto out_unmount;
	}
	syslog(LOG_INFO, "serving %s at %s", store, opts.mountpoint);
	int rc;
	if (opts.singlethread) {
		rc = fuse_session_loop(se);
	} else {
		loop = fuse_loop_cfg_create();
		fuse_loop_cfg_set_clone_fd(loop, opts.clone_fd);
		fuse_loop_cfg_set_max_threads(loop, conf.max_threads > 0 ? (unsigned)conf.max_threads : 16);
		rc = fuse_session_loop_mt(se, loop);
	}
	status = rc == 0 || rc == SIGTERM || rc == SIGINT || rc == SIGHUP ? 0 : 1;
	syslog(LOG_INFO, "unmounting %s", opts.mountpoint);
out_unmount:
	if (own_mount)
		passthrough_unmount();
	else
		fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out:
	service_listen_close(svc);
	if (se)
		fuse_session_destroy(se);
	daemon_close(d);
	if (loop)
		fuse_loop_cfg_destroy(loop);
	free(opts.mountpoint);
	conf_free(&conf);
	fuse_opt_free_args(&args);
	return status;
}
