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
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <syslog.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "config_file.h"
#include "fuse_ops.h"
#include "fuse_passthrough.h"
#include "mesh_util.h"
#include "service.h"
#include "startup.h"
#include "store.h"
#include "store_audit.h"
#include "store_guard.h"

struct meshfs_conf {
	char *store;
	int nonopt;          /* non-option arguments seen */
	int open_mesh;
	double poll;
	char *usage_dir;
	char *state_dir;
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
	char *config;        /* -o config=PATH (read before parsing) */
	char *log_level;
	char *usage_sink;    /* postgresql://... (overrides mesh.yaml's usage.sink) */
	int insecure_store;
	char *view_cache;
	char *view_cache_max;
	int release_cache;   /* releases kept loaded (snapshot_cache.h) */
};

enum { KEY_DROP, KEY_ALLOW_OTHER };

#define CONF_OPT(t, p) { t, offsetof(struct meshfs_conf, p), 1 }
static const struct fuse_opt conf_opts[] = {
	CONF_OPT("open_mesh", open_mesh),
	CONF_OPT("poll=%lf", poll),
	CONF_OPT("usage_dir=%s", usage_dir),
	CONF_OPT("state_dir=%s", state_dir),
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
	CONF_OPT("config=%s", config),
	CONF_OPT("log_level=%s", log_level),
	CONF_OPT("usage_sink=%s", usage_sink),
	CONF_OPT("insecure_store", insecure_store),
	CONF_OPT("view_cache=%s", view_cache),
	CONF_OPT("view_cache_max=%s", view_cache_max),
	CONF_OPT("release_cache=%d", release_cache),
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
"    -o release_cache=N     releases whose files the daemon keeps loaded, least\n"
"                           recently used out first (default 2048; the snapshot\n"
"                           of domains and products comes from this host's index)\n"
"    -o state_dir=DIR       this host's local state: usage journal and database\n"
"                           (default $MESHFS_STATE_DIR, else /var/lib/meshfs)\n"
"    -o usage_dir=DIR       where this host records usage (default\n"
"                           STATE_DIR/<store-id>/usage/HOST; closed segments are\n"
"                           shipped to STORE/usage/HOST for other hosts' reports)\n"
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
"    -o config=PATH         configuration file (default /etc/meshfs.yaml if it\n"
"                           exists): option: value lines, plus store: and\n"
"                           mountpoint:; the command line wins over it\n"
"    -o log_level=LEVEL     err, warning, notice, info (default) or debug;\n"
"                           to syslog/journald (and stderr with -f)\n"
"    -o usage_sink=URI      ship usage to PostgreSQL (postgresql://...;\n"
"                           default: mesh.yaml's usage: sink:)\n"
"    -o insecure_store      serve a store that is not locked down (others may\n"
"                           read or write its files), with a loud warning;\n"
"                           without it meshfs refuses such a store (checked\n"
"                           whole at the first start, then what changed since\n"
"                           the last clean audit, with a full audit in the\n"
"                           background that refuses opens if it fails)\n"
"    -h, --help             this text\n"
"    -V, --version          version\n"
"\n"
"Signals: SIGHUP re-reads the configuration file, mesh.yaml and the policy\n"
"and audits the store again, without unmounting; SIGTERM (or SIGINT) flushes\n"
"usage and unmounts.\n"
"Readiness is reported to systemd (sd_notify, Type=notify).  A mount point\n"
"left stale by a killed daemon is cleared (lazy unmount) at start.\n"
"\n"
"Always mounted nosuid,nodev,ro. Exit status: 0 after a clean unmount,\n"
"1 on bad arguments, a bad configuration file, a missing store, a store that\n"
"is not locked down (one account owns every file, nobody else may read or\n"
"write any: see 'meshctl doctor'), a failed mount, or a daemon refused after\n"
"it went into the background.\n"
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
	free(conf->state_dir);
	free(conf->hostname);
	free(conf->passthrough);
	free(conf->metrics);
	free(conf->socket);
	free(conf->meshctl);
	free(conf->config);
	free(conf->log_level);
	free(conf->usage_sink);
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
 * policy).  With `state_path`, only what changed since this host's last
 * clean audit is checked (store_audit.h; info says whether it was), and
 * the rest is left to the background audit (store_guard.h).  The audit
 * runs beside daemon_open (its own thread, joined before anything is
 * served or forked). */
struct audit_job {
	const char *store, *state_path;
	int problems;            /* or -errno, err set */
	char *report;
	struct store_audit_info info;
	struct mesh_err err;
	pthread_t thread;
	bool threaded;
};

static void *audit_job_run(void *arg)
{
	struct audit_job *j = arg;
	j->problems = store_check(j->store, &j->err) ? 0
		    : store_audit_run(j->store, j->state_path, j->state_path != NULL, NULL, &j->report, &j->info,
				      &j->err);
	return NULL;
}

static void audit_job_start(struct audit_job *j, const char *store, const char *state_path)
{
	memset(j, 0, sizeof *j);
	j->store = store;
	j->state_path = state_path;
	j->threaded = pthread_create(&j->thread, NULL, audit_job_run, j) == 0;
	if (j->threaded)
		pthread_setname_np(j->thread, "store-audit");
	else
		audit_job_run(j);
}

/* The audit's verdict: nonzero means refused (printed why). */
static int refuse_insecure(struct audit_job *j, bool insecure_store)
{
	if (j->threaded)
		pthread_join(j->thread, NULL);
	j->threaded = false;
	const char *store = j->store;
	struct store_audit_info *info = &j->info;
	int problems = j->problems;
	char *report = j->report;
	j->report = NULL;
	if (problems < 0) {
		fprintf(stderr, "meshfs: %s\n", j->err.msg);
		return 1;
	}
	if (info->incremental)
		syslog(LOG_INFO, "store audit: incremental, %zu directories checked, %zu re-read, %zu new, %zu gone, "
		       "%.3f s", info->dirs, info->reread, info->added, info->gone, info->seconds);
	else
		syslog(LOG_INFO, "store audit: full (%s), %zu directories, %.3f s", info->why_full, info->dirs,
		       info->seconds);
	if (info->note[0])
		syslog(LOG_NOTICE, "store audit record not kept: %s", info->note);
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

/* Opens pass the store guard first: while the background audit finds the
 * store not locked down, every open is refused (store_guard.h).  The rest
 * of the operations are meshfs_ops' own. */
static struct store_guard *open_guard;
static struct fuse_lowlevel_ops guarded_ops;

static void guarded_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (store_guard_refuses(open_guard)) {
		const struct fuse_ctx *c = fuse_req_ctx(req);
		syslog(LOG_WARNING, "refused open of inode %llu by uid %u: the store is not locked down "
		       "(see the store audit above; meshctl doctor)", (unsigned long long)ino, (unsigned)c->uid);
		fuse_reply_err(req, EACCES);
		return;
	}
	meshfs_ops.open(req, ino, fi);
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
	/* no mount, no open to refuse later: the whole store, now */
	struct audit_job audit;
	audit_job_start(&audit, store, NULL);
	if (refuse_insecure(&audit, conf.insecure_store))
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

/* ---- ops: the configuration file, logs, SIGHUP ---- */

static bool log_stderr;   /* syslog already copies to stderr (LOG_PERROR) */

/* An error the operator must see: syslog, and stderr (the terminal, until
 * the daemon reports it is serving) unless syslog already copies there. */
static void report_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void report_error(const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	syslog(LOG_ERR, "%s", msg);
	if (!log_stderr)
		fprintf(stderr, "meshfs: %s\n", msg);
}

/* The arguments with the configuration file's options first, so that the
 * command line's, parsed later, win.  -1 (printed) on a bad file. */
static int args_with_config(int argc, char **argv, struct config_file **cfg, struct fuse_args *args)
{
	const char *explicit_path = config_path_from_args(argc, argv);
	struct mesh_err err = {0};
	if (config_file_load(explicit_path ? explicit_path : CONFIG_DEFAULT_PATH, explicit_path != NULL, cfg, &err)) {
		fprintf(stderr, "meshfs: %s\n", err.msg);
		return -1;
	}
	fuse_opt_add_arg(args, argv[0]);
	if ((*cfg)->n) {
		struct strbuf sb = STRBUF_INIT;
		for (size_t i = 0; i < (*cfg)->n; i++)
			strbuf_printf(&sb, "%s%s", i ? "," : "", (*cfg)->options[i]);
		fuse_opt_add_arg(args, "-o");
		fuse_opt_add_arg(args, sb.buf);
		strbuf_release(&sb);
	}
	for (int i = 1; i < argc; i++)
		fuse_opt_add_arg(args, argv[i]);
	return 0;
}

static int apply_log_level(const char *name)
{
	int level = LOG_INFO;
	if (name && config_log_level(name, &level))
		return -EINVAL;
	setlogmask(LOG_UPTO(level));
	return 0;
}

/* SIGHUP, on its own thread: re-read the configuration file and the store
 * (policy, usage settings) without unmounting.  The command line still
 * wins over the file. */
struct reloader {
	struct mesh_daemon *d;
	struct config_file *cfg;          /* the file as last applied */
	bool explicit_path;
	const struct meshfs_conf *cmdline;   /* what the command line set */
	int signal_fd, stop_fd;
	pthread_t thread;
	bool running;
	struct store_guard *guard;        /* audited again at SIGHUP */
};

static void reload(struct reloader *r)
{
	sd_notify(0, "RELOADING=1\nSTATUS=reloading");
	struct config_file *fresh = NULL;
	struct mesh_err err = {0};
	if (config_file_load(r->cfg->path, r->explicit_path, &fresh, &err)) {
		syslog(LOG_ERR, "configuration not reloaded, keeping the previous one: %s", err.msg);
	} else {
		const char *keys_seen[64];
		size_t n_seen = 0;
		struct config_file *both[2] = {r->cfg, fresh};
		for (int f = 0; f < 2; f++)
			for (size_t i = 0; i < both[f]->n && n_seen < 64; i++) {
				const char *k = both[f]->keys[i];
				bool seen = false;
				for (size_t j = 0; j < n_seen; j++)
					seen |= !strcmp(keys_seen[j], k);
				if (seen)
					continue;
				keys_seen[n_seen++] = k;
				const char *a = config_file_get(r->cfg, k), *b = config_file_get(fresh, k);
				bool changed = !a || !b || strcmp(a, b);
				if (changed && !config_key_live(k))
					syslog(LOG_NOTICE, "%s: %s changed: takes effect at the next start", fresh->path, k);
			}
		const char *fs[2] = {r->cfg->store, r->cfg->mountpoint}, *nw[2] = {fresh->store, fresh->mountpoint};
		for (int i = 0; i < 2; i++)
			if ((fs[i] || nw[i]) && (!fs[i] || !nw[i] || strcmp(fs[i], nw[i])))
				syslog(LOG_NOTICE, "%s: %s changed: takes effect at the next start", fresh->path,
				       i ? "mountpoint" : "store");
		config_file_free(r->cfg);
		r->cfg = fresh;
	}
	const char *level = r->cmdline->log_level ? r->cmdline->log_level : config_file_get(r->cfg, "log_level");
	if (apply_log_level(level))
		syslog(LOG_ERR, "log_level=%s: not err, warning, notice, info or debug (kept)", level);
	const char *poll_text = config_file_get(r->cfg, "poll");
	double poll = r->cmdline->poll > 0 ? r->cmdline->poll : poll_text ? atof(poll_text) : 1.0;
	if (daemon_reload(r->d, poll, &err))
		syslog(LOG_ERR, "reload: rescan failed (the previous snapshot is served): %s", err.msg);
	else
		syslog(LOG_INFO, "reloaded %s and the store's policy (poll %gs)", r->cfg->path, poll);
	store_guard_recheck(r->guard);
	sd_notify(0, "READY=1\nSTATUS=serving");
}

static void *reloader_main(void *arg)
{
	struct reloader *r = arg;
	for (;;) {
		struct pollfd fds[2] = {{r->stop_fd, POLLIN, 0}, {r->signal_fd, POLLIN, 0}};
		if (poll(fds, 2, -1) < 0 && errno != EINTR)
			break;
		if (fds[0].revents)
			break;
		struct signalfd_siginfo si;
		if (fds[1].revents && read(r->signal_fd, &si, sizeof si) == (ssize_t)sizeof si)
			reload(r);
	}
	return NULL;
}

/* Start the reloader; SIGHUP must already be blocked in every thread. */
static int reloader_start(struct reloader *r, struct mesh_err *err)
{
	sigset_t hup;
	sigemptyset(&hup);
	sigaddset(&hup, SIGHUP);
	r->signal_fd = signalfd(-1, &hup, SFD_CLOEXEC | SFD_NONBLOCK);
	r->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r->signal_fd < 0 || r->stop_fd < 0)
		return mesh_errf(err, -errno, "signalfd: %s", strerror(errno));
	int rc = pthread_create(&r->thread, NULL, reloader_main, r);
	if (rc)
		return mesh_errf(err, -rc, "reload thread: %s", strerror(rc));
	pthread_setname_np(r->thread, "mesh-reload");
	r->running = true;
	return 0;
}

static void reloader_stop(struct reloader *r)
{
	if (r->running) {
		uint64_t one = 1;
		if (write(r->stop_fd, &one, sizeof one) == (ssize_t)sizeof one)
			pthread_join(r->thread, NULL);
		r->running = false;
	}
	if (r->signal_fd >= 0)
		close(r->signal_fd);
	if (r->stop_fd >= 0)
		close(r->stop_fd);
	r->signal_fd = r->stop_fd = -1;
}

int main(int argc, char **argv)
{
	umask(077);   /* what the daemon creates in the store is its own */
	if (argc >= 2 && !strcmp(argv[1], "--service"))
		return service_main(argc, argv);
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct meshfs_conf conf = {.poll = 1.0, .max_threads = 16}, cmdline = {0};
	struct fuse_cmdline_opts opts = {0};
	int status = 1, report_fd = -1;
	struct mesh_daemon *d = NULL;
	struct fuse_session *se = NULL;
	struct fuse_loop_config *loop = NULL;
	struct service *svc = NULL;
	struct config_file *cfg = NULL;
	struct reloader rl = {.signal_fd = -1, .stop_fd = -1};

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
	/* what the command line alone says (it wins at SIGHUP too) */
	struct fuse_args raw = FUSE_ARGS_INIT(0, NULL);
	for (int i = 0; i < argc; i++)
		fuse_opt_add_arg(&raw, argv[i]);
	int parsed = fuse_opt_parse(&raw, &cmdline, conf_opts, conf_proc);
	fuse_opt_free_args(&raw);
	if (parsed != 0 || args_with_config(argc, argv, &cfg, &args))
		goto out;
	if (fuse_opt_parse(&args, &conf, conf_opts, conf_proc) != 0)
		goto out;
	if (!conf.store && cfg->store)
		conf.store = strdup(cfg->store);
	if (conf.nonopt < 2 && cfg->mountpoint)
		fuse_opt_add_arg(&args, cfg->mountpoint);
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

	/* the service's workers find this host's state as the daemon does */
	if (conf.state_dir && *conf.state_dir)
		setenv("MESHFS_STATE_DIR", conf.state_dir, 1);
	/* under systemd, stderr is the journal already: no second copy */
	log_stderr = opts.foreground && !getenv("JOURNAL_STREAM");
	openlog("meshfs", LOG_PID | (log_stderr ? LOG_PERROR : 0), LOG_DAEMON);
	if (apply_log_level(conf.log_level)) {
		fprintf(stderr, "meshfs: -o log_level=%s: expected err, warning, notice, info or debug\n", conf.log_level);
		goto out;
	}
	struct daemon_options dopts = {
		.store = store,
		.poll_interval = conf.poll,
		.open_mesh = conf.open_mesh,
		.usage_dir = conf.usage_dir,
		.state_dir = conf.state_dir,
		.hostname = conf.hostname,
		.usage_slots = conf.usage_slots > 0 ? (size_t)conf.usage_slots : 0,
		.metrics_path = conf.metrics,
		.no_usage = conf.no_usage,
		.usage_sink = conf.usage_sink,
	};
	if (conf.release_cache < 0) {
		fprintf(stderr, "meshfs: -o release_cache=%d: expected a number of releases (> 0)\n", conf.release_cache);
		goto out;
	}
	dopts.release_cache = (size_t)conf.release_cache;
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
	/* this host's record of the last clean audit: without one (no usable
	 * state directory) the whole store is audited at every start */
	char audit_state[PATH_MAX + 32];
	const char *audit_state_path = audit_state;
	if (store_audit_state_path(store, conf.state_dir, audit_state, sizeof audit_state, &err)) {
		syslog(LOG_NOTICE, "store audit: no record kept (%s): every start audits the whole store", err.msg);
		audit_state_path = NULL;
	}
	struct audit_job audit;
	audit_job_start(&audit, store, audit_state_path);
	mesh_err_clear(&err);
	int opened = daemon_open(&dopts, &d, &err);
	if (refuse_insecure(&audit, conf.insecure_store))
		goto out;
	if (opened) {
		fprintf(stderr, "meshfs: %s\n", err.msg);
		goto out;
	}
	mesh_err_clear(&err);
	/* a daemon killed earlier left "Transport endpoint is not connected" */
	int stale = startup_clear_stale(opts.mountpoint, &err);
	if (stale < 0) {
		fprintf(stderr, "meshfs: %s\n", err.msg);
		goto out;
	}
	if (stale > 0) {
		syslog(LOG_WARNING, "%s: cleared the stale mount of a daemon that died "
		       "(Transport endpoint is not connected; lazy unmount)", opts.mountpoint);
		if (!log_stderr)
			fprintf(stderr, "meshfs: %s: cleared the stale mount of a daemon that died "
				"(Transport endpoint is not connected; lazy unmount)\n", opts.mountpoint);
	}
	if (open_service(&conf, store, opts.mountpoint, false, &svc))
		goto out;
	/* One file descriptor per open file: raise the soft limit. */
	struct rlimit rlim;
	if (getrlimit(RLIMIT_NOFILE, &rlim) == 0 && rlim.rlim_cur < rlim.rlim_max) {
		rlim.rlim_cur = rlim.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rlim);
	}

	guarded_ops = meshfs_ops;
	guarded_ops.open = guarded_open;
	se = fuse_session_new(&args, &guarded_ops, sizeof guarded_ops, d);
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
	/* Into the background, the parent waiting for our exit status: what
	 * fails from here on (the journal held by another daemon...) is
	 * printed and makes `meshfs` exit non-zero, as with -f. */
	if (!opts.foreground && startup_detach(&report_fd, &err)) {
		fprintf(stderr, "meshfs: %s\n", err.msg);
		goto out_unmount;
	}
	/* Signals go to the main thread only (libfuse's loop waits there):
	 * every thread started from here inherits them blocked.  SIGHUP stays
	 * blocked everywhere and is read by the reloader's signalfd. */
	sigset_t sigs, hup;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGQUIT);
	sigaddset(&sigs, SIGHUP);
	sigemptyset(&hup);
	sigaddset(&hup, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	/* Threads and databases only after the fork. */
	struct daemon_invalidate inval = meshfs_invalidator(se);
	if (daemon_start(d, &inval, &err)) {
		report_error("%s", err.msg);
		goto out_unmount;
	}
	if (svc && service_listen_start(svc, &err)) {
		report_error("%s", err.msg);
		goto out_unmount;
	}
	/* what the incremental audit cannot see (a chmod of a file in a
	 * directory that did not change) the background audit looks for */
	if (store_guard_start(store, audit_state_path, audit.info.incremental, conf.insecure_store, &open_guard,
			      &err)) {
		report_error("%s", err.msg);
		goto out_unmount;
	}
	rl.guard = open_guard;
	rl.d = d;
	rl.cfg = cfg;
	rl.explicit_path = config_path_from_args(argc, argv) != NULL;
	rl.cmdline = &cmdline;
	if (reloader_start(&rl, &err)) {
		report_error("%s", err.msg);
		goto out_unmount;
	}
	cfg = NULL;   /* the reloader's now */
	pthread_sigmask(SIG_SETMASK, &hup, NULL);
	syslog(LOG_INFO, "serving %s at %s", store, opts.mountpoint);
	sd_notifyf(0, "READY=1\nSTATUS=serving %s at %s\nMAINPID=%lu", store, opts.mountpoint,
		   (unsigned long)getpid());
	startup_report(&report_fd, 0);
	int rc;
	if (opts.singlethread) {
		rc = fuse_session_loop(se);
	} else {
		loop = fuse_loop_cfg_create();
		fuse_loop_cfg_set_clone_fd(loop, opts.clone_fd);
		fuse_loop_cfg_set_max_threads(loop, conf.max_threads > 0 ? (unsigned)conf.max_threads : 16);
		rc = fuse_session_loop_mt(se, loop);
	}
	status = rc == 0 || rc == SIGTERM || rc == SIGINT ? 0 : 1;
	sd_notify(0, "STOPPING=1\nSTATUS=unmounting");
	syslog(LOG_INFO, "unmounting %s", opts.mountpoint);
out_unmount:
	reloader_stop(&rl);
	store_guard_stop(open_guard);
	open_guard = NULL;
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
	/* usage flushed into the database only now, after the unmount: no
	 * open can start after this point */
	daemon_close(d);
	if (loop)
		fuse_loop_cfg_destroy(loop);
	if (status == 0)
		syslog(LOG_INFO, "stopped cleanly");
	startup_report(&report_fd, status);
	config_file_free(rl.cfg);
	config_file_free(cfg);
	free(opts.mountpoint);
	conf_free(&conf);
	conf_free(&cmdline);
	fuse_opt_free_args(&args);
	return status;
}
