/*
 * listener.c - the mesh service's control socket (service.h): bind, accept,
 * and one served meshctl process per connection.
 *
 * A request should not wait for a process to start (exec and dynamic
 * linking of meshctl cost a few milliseconds): one spare worker, `meshctl
 * --serve-spare 3`, is started ahead and waits on a socket pair; the next
 * connection is handed to it as a descriptor and a new spare is started
 * after the hand-over, off the caller's path.  When no spare is ready
 * (two requests at once, or a spare that died) the connection gets a
 * worker of its own, `meshctl --serve-fd 3`, as before.  The spare has
 * read nothing of the store: it learns who asks and what from the
 * connection, as every worker does.  It waits with stdout and stderr on
 * /dev/null and gets the service's stderr with the connection.
 *
 * What a request may do and for whom is decided by the served process
 * (fs/cli/serve.c), never here: this file only moves connections.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "mesh_util.h"
#include "service.h"
#include "service_proto.h"

extern char **environ;

struct service {
	char *store, *socket_path, *link_path, *meshctl;
	int fd;
	int wake[2];                 /* pipe: close() wakes the accept thread */
	unsigned max_clients;
	atomic_uint running;
	pthread_t thread;
	bool started;
	char **env;                  /* the served process's environment */
	pthread_mutex_t spare_lock;  /* guards the three below */
	pid_t spare_pid;             /* 0: no spare waiting */
	int spare_sock;              /* our end of its socket pair */
	bool closing;                /* no new spare once set */
};

struct connection {
	struct service *svc;
	int fd;
};

const char *service_listen_path(const struct service *s)
{
	return s->socket_path;
}

/* Is somebody answering on `path`?  Sets *pid from SO_PEERCRED. */
static bool socket_alive(const char *path, long *pid)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	bool alive = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
	if (alive && pid) {
		struct ucred cred;
		socklen_t len = sizeof cred;
		*pid = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 ? (long)cred.pid : -1;
	}
	close(fd);
	return alive;
}

/* The served process gets a small, fixed environment: nothing of the
 * operator's shell but meshfs's own settings (MESHFS_*, e.g. a runtime or
 * state directory chosen for tests). */
static char **served_environment(void)
{
	size_t n = 0, cap = 8;
	char **env = xcalloc(cap, sizeof *env);
	env[n++] = xstrdup("PATH=/usr/local/bin:/usr/bin:/bin");
	env[n++] = xstrdup("LC_ALL=C.UTF-8");
	for (char **e = environ; e && *e; e++) {
		if (strncmp(*e, "MESHFS_", 7) && strncmp(*e, "TZ=", 3))
			continue;
		if (n + 2 > cap)
			env = xrealloc(env, (cap *= 2) * sizeof *env);
		env[n++] = xstrdup(*e);
	}
	env[n] = NULL;
	return env;
}

static int default_meshctl(char *buf, size_t size, struct mesh_err *err)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n < 0)
		return mesh_errf(err, -errno, "/proc/self/exe: %s", strerror(errno));
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	if (slash)
		*slash = '\0';
	if ((size_t)snprintf(buf, size, "%s/meshctl", self) >= size)
		return mesh_errf(err, -ENAMETOOLONG, "%s/meshctl: path too long", self);
	return 0;
}

int service_listen_open(const struct service_options *opts, struct service **out, long *busy_pid,
			struct mesh_err *err)
{
	*out = NULL;
	if (busy_pid)
		*busy_pid = 0;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char link[sizeof path] = "";
	int rc;
	if (opts->socket_path) {
		if (strlen(opts->socket_path) >= sizeof path)
			return mesh_errf(err, -ENAMETOOLONG, "%s: socket path too long", opts->socket_path);
		snprintf(path, sizeof path, "%s", opts->socket_path);
	} else {
		if ((rc = service_socket_path(opts->store, false, path, sizeof path, err)))
			return rc;
		/* 0755 whatever the umask (meshfs runs with 077): everyone must
		 * reach the socket in it */
		if (mkdir(service_runtime_dir(), 0755) == 0)
			chmod(service_runtime_dir(), 0755);
		else if (errno != EEXIST)
			return mesh_errf(err, -errno, "%s: %s (the control socket's directory; as a service "
				"user, let systemd make it: RuntimeDirectory=meshfs)", service_runtime_dir(),
				strerror(errno));
	}
	if (opts->mountpoint && !opts->socket_path
	    && (rc = service_socket_path(opts->mountpoint, true, link, sizeof link, err)))
		return rc;
	char meshctl[PATH_MAX];
	if (opts->meshctl)
		snprintf(meshctl, sizeof meshctl, "%s", opts->meshctl);
	else if ((rc = default_meshctl(meshctl, sizeof meshctl, err)))
		return rc;
	if (access(meshctl, X_OK) != 0)
		return mesh_errf(err, -errno, "%s: %s (the service runs meshctl for each request; "
			"install it beside meshfs or say -o meshctl=PATH)", meshctl, strerror(errno));

	long pid = 0;
	if (socket_alive(path, &pid)) {
		if (busy_pid)
			*busy_pid = pid;
		return mesh_errf(err, -EADDRINUSE, "a mesh service for %s already answers on %s (pid %ld)",
				 opts->store, path, pid);
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return mesh_errf(err, -errno, "socket: %s", strerror(errno));
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			close(fd);
			return mesh_errf(err, -EEXIST, "%s exists and is not a socket: remove it", path);
		}
		unlink(path);    /* stale: nobody answered */
	}
	/* bind creates the socket with the umask's mode: make it 0666 after */
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || chmod(path, 0666) < 0 || listen(fd, 64) < 0) {
		rc = mesh_errf(err, -errno, "%s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return rc;
	}
	if (*link) {
		unlink(link);
		if (symlink(path, link) < 0)
			syslog(LOG_WARNING, "%s: %m (meshctl will not find the service from the mount point)", link);
	}
	struct service *s = xcalloc(1, sizeof *s);
	s->store = xstrdup(opts->store);
	s->socket_path = xstrdup(path);
	s->link_path = *link ? xstrdup(link) : NULL;
	s->meshctl = xstrdup(meshctl);
	s->fd = fd;
	s->wake[0] = s->wake[1] = -1;
	s->max_clients = opts->max_clients ? opts->max_clients : 32;
	s->env = served_environment();
	pthread_mutex_init(&s->spare_lock, NULL);
	s->spare_sock = -1;
	*out = s;
	return 0;
}

/* Answer a connection we will not serve, without reading its request. */
static void refuse(int fd, const char *why)
{
	char buf[512];
	int n = snprintf(buf, sizeof buf, "{\"meshfs\":%d,\"exit\":4,\"error\":{\"message\":\"%s\"}}",
			 SERVICE_PROTO_VERSION, why);
	service_send(fd, buf, (size_t)n, NULL, 0, NULL);
}

/* Start meshctl with `fd` as its descriptor 3 and `mode` (--serve-fd or
 * --serve-spare) naming it.  0 or an errno value (posix_spawn's). */
static int spawn_worker(struct service *s, int fd, const char *mode, pid_t *pid)
{
	/* A dup2 onto itself would leave fd's close-on-exec flag set (and the
	 * worker without it), so the source is a copy above 3. */
	int src = fcntl(fd, F_DUPFD_CLOEXEC, 10);
	if (src < 0)
		return errno;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, src, 3);
	posix_spawn_file_actions_addclosefrom_np(&fa, 4);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	if (!strcmp(mode, "--serve-spare")) {
		/* a spare may wait for long: it must not hold what our stdout and
		 * stderr are now (the starting meshfs's caller waits for them to
		 * close); it is handed our stderr with its connection */
		posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
		posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	}
	posix_spawnattr_t attr;
	posix_spawnattr_init(&attr);
	sigset_t none;
	sigemptyset(&none);
	posix_spawnattr_setsigmask(&attr, &none);
	sigset_t dflt;
	sigemptyset(&dflt);
	sigaddset(&dflt, SIGPIPE);
	sigaddset(&dflt, SIGTERM);
	sigaddset(&dflt, SIGINT);
	sigaddset(&dflt, SIGHUP);
	posix_spawnattr_setsigdefault(&attr, &dflt);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSID);
	char *argv[] = {"meshctl", "--store", s->store, (char *)mode, "3", NULL};
	int rc = posix_spawn(pid, s->meshctl, &fa, &attr, argv, s->env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(src);
	return rc;
}

static void reap(pid_t pid)
{
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFSIGNALED(status))
		syslog(LOG_ERR, "control socket: worker %d died of signal %d", (int)pid, WTERMSIG(status));
}

/* Start a spare if none waits (and the service is not closing). */
static void spare_refill(struct service *s)
{
	pthread_mutex_lock(&s->spare_lock);
	bool wanted = !s->closing && !s->spare_pid;
	pthread_mutex_unlock(&s->spare_lock);
	if (!wanted)
		return;
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) {
		syslog(LOG_WARNING, "control socket: no spare worker: socketpair: %m");
		return;
	}
	pid_t pid;
	int rc = spawn_worker(s, sp[1], "--serve-spare", &pid);
	close(sp[1]);
	if (rc) {
		syslog(LOG_WARNING, "control socket: no spare worker: cannot start %s: %s", s->meshctl, strerror(rc));
		close(sp[0]);
		return;
	}
	pthread_mutex_lock(&s->spare_lock);
	bool keep = !s->closing && !s->spare_pid;
	if (keep) {
		s->spare_pid = pid;
		s->spare_sock = sp[0];
	}
	pthread_mutex_unlock(&s->spare_lock);
	if (!keep) {            /* another thread was faster, or we stop */
		close(sp[0]);   /* the spare sees the end and exits */
		reap(pid);
	}
}

/* Hand the connection to the waiting spare.  True (and *pid its process)
 * if it has it; false if there was none or it was gone. */
static bool spare_hand_over(struct service *s, int conn, pid_t *pid)
{
	pthread_mutex_lock(&s->spare_lock);
	*pid = s->spare_pid;
	int sock = s->spare_sock;
	s->spare_pid = 0;
	s->spare_sock = -1;
	pthread_mutex_unlock(&s->spare_lock);
	if (!*pid)
		return false;
	/* the connection, and where a worker's own complaints go (a
	 * sanitizer's report, say): our stderr as it is now */
	int fds[2] = {conn, STDERR_FILENO};
	int rc = service_send(sock, "{}", 2, fds, 2, NULL);
	close(sock);
	if (rc) {
		syslog(LOG_WARNING, "control socket: the spare worker %d was gone (%s): starting one",
		       (int)*pid, strerror(-rc));
		reap(*pid);
		return false;
	}
	return true;
}

static void *serve_connection(void *arg)
{
	struct connection *c = arg;
	struct service *s = c->svc;
	pid_t pid;
	if (spare_hand_over(s, c->fd, &pid)) {
		spare_refill(s);        /* for the next request, while this one runs */
		reap(pid);
	} else {
		int rc = spawn_worker(s, c->fd, "--serve-fd", &pid);
		if (rc == EMFILE || rc == ENFILE) {
			syslog(LOG_ERR, "control socket: %s", strerror(rc));
			refuse(c->fd, "the mesh service is out of descriptors: try again");
		} else if (rc) {
			syslog(LOG_ERR, "control socket: cannot start %s: %s", s->meshctl, strerror(rc));
			refuse(c->fd, "the mesh service could not start its worker (see the service's log)");
		} else {
			spare_refill(s);
			reap(pid);
		}
	}
	close(c->fd);
	atomic_fetch_sub(&s->running, 1);
	free(c);
	return NULL;
}

static void *accept_loop(void *arg)
{
	struct service *s = arg;
	struct pollfd pfd[2] = {{s->fd, POLLIN, 0}, {s->wake[0], POLLIN, 0}};
	for (;;) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[1].revents)
			break;
		if (!(pfd[0].revents & POLLIN))
			continue;
		int fd = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE) {
				syslog(LOG_ERR, "control socket: %m: connections wait");
				struct timespec pause = {0, 100 * 1000 * 1000};
				nanosleep(&pause, NULL);
			}
			continue;
		}
		if (atomic_fetch_add(&s->running, 1) >= s->max_clients) {
			atomic_fetch_sub(&s->running, 1);
			syslog(LOG_WARNING, "control socket: %u requests running (max_clients): refused one",
			       s->max_clients);
			refuse(fd, "the mesh service is busy (too many requests at once): try again");
			close(fd);
			continue;
		}
		struct connection *c = xcalloc(1, sizeof *c);
		c->svc = s;
		c->fd = fd;
		pthread_t t;
		pthread_attr_t ta;
		pthread_attr_init(&ta);
		pthread_attr_setdetachstate(&ta, PTHREAD_CREATE_DETACHED);
		pthread_attr_setstacksize(&ta, 256 * 1024);
		if (pthread_create(&t, &ta, serve_connection, c) != 0) {
			refuse(fd, "the mesh service cannot start a thread: try again");
			close(fd);
			free(c);
			atomic_fetch_sub(&s->running, 1);
		}
		pthread_attr_destroy(&ta);
	}
	return NULL;
}

int service_listen_start(struct service *s, struct mesh_err *err)
{
	if (pipe2(s->wake, O_CLOEXEC) < 0)
		return mesh_errf(err, -errno, "pipe: %s", strerror(errno));
	int rc = pthread_create(&s->thread, NULL, accept_loop, s);
	if (rc)
		return mesh_errf(err, -rc, "control socket thread: %s", strerror(rc));
	pthread_setname_np(s->thread, "mesh-control");
	s->started = true;
	spare_refill(s);        /* the first request need not wait for it */
	return 0;
}

void service_listen_close(struct service *s)
{
	if (!s)
		return;
	if (s->started) {
		close(s->wake[1]);
		pthread_join(s->thread, NULL);
		close(s->wake[0]);
		/* the spare sees its socket end and exits */
		pthread_mutex_lock(&s->spare_lock);
		s->closing = true;
		pid_t spare = s->spare_pid;
		int sock = s->spare_sock;
		s->spare_pid = 0;
		s->spare_sock = -1;
		pthread_mutex_unlock(&s->spare_lock);
		if (spare) {
			close(sock);
			reap(spare);
		}
		/* requests already running finish (a publish under way completes);
		 * wait a while for them */
		for (int i = 0; i < 300 && atomic_load(&s->running); i++) {
			struct timespec pause = {0, 20 * 1000 * 1000};
			nanosleep(&pause, NULL);
		}
	}
	close(s->fd);
	unlink(s->socket_path);
	if (s->link_path)
		unlink(s->link_path);
	if (atomic_load(&s->running)) {
		/* a worker thread still waits for its request: leave it its state */
		syslog(LOG_WARNING, "control socket: %u requests still running at exit", atomic_load(&s->running));
		return;
	}
	for (char **e = s->env; e && *e; e++)
		free(*e);
	free(s->env);
	free(s->store);
	free(s->socket_path);
	free(s->link_path);
	free(s->meshctl);
	pthread_mutex_destroy(&s->spare_lock);
	free(s);
}
