/*
 * fuse_passthrough.c - kernel FUSE passthrough from libfuse 3.14 (see
 * include/fuse_passthrough.h for what and why).
 *
 * Relies on two facts of libfuse 3.14, checked at run time where possible:
 * the INIT reply is written as [fuse_out_header][fuse_init_out] in one
 * writev, and fuse_init_out's layout is the kernel's (flags2 at byte 32,
 * max_stack_depth in the word after it, which 3.14 leaves zero).
 */
#include "fuse_passthrough.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <syslog.h>
#include <unistd.h>

#include "mesh_util.h"

/* From the kernel's uapi fuse.h (7.40+), newer than this system's headers. */
#define MESH_FUSE_PASSTHROUGH_FLAG2  (1u << 5)     /* FUSE_PASSTHROUGH is bit 37 */
#define MESH_FOPEN_PASSTHROUGH       (1u << 7)
struct mesh_backing_map {
	int32_t fd;
	uint32_t flags;
	uint64_t padding;
};
#define MESH_FUSE_DEV_IOC_BACKING_OPEN  _IOW(229, 1, struct mesh_backing_map)
#define MESH_FUSE_DEV_IOC_BACKING_CLOSE _IOW(229, 2, uint32_t)
struct mesh_open_out {
	uint64_t fh;
	uint32_t open_flags;
	int32_t backing_id;
};
#define INIT_OUT_FLAGS2_OFFSET 32
#define INIT_OUT_STACK_DEPTH_OFFSET 36

static struct {
	int fd;                          /* our /dev/fuse connection */
	char *mountpoint;
	_Atomic uint64_t init_unique;    /* unique id of the kernel's INIT */
	atomic_bool offered;             /* the kernel offered passthrough */
	atomic_bool active;              /* ... and we accepted it */
	pthread_mutex_t lock;            /* protects the backing table */
	/* a backing id per (FUSE inode, backing file): an inode whose file
	 * changed (a re-stated contract, a rebuilt view) gets a new id */
	struct backing { uint64_t ino; dev_t dev; ino_t file; int id; unsigned opens; uint64_t last_use; } *table;
	size_t n, cap, idle;
	uint64_t clock;
} pt = {.fd = -1, .lock = PTHREAD_MUTEX_INITIALIZER};

static ssize_t hook_read(int fd, void *buf, size_t len, void *userdata)
{
	(void)userdata;
	ssize_t r = read(fd, buf, len);
	if (r >= (ssize_t)(sizeof(struct fuse_in_header) + sizeof(struct fuse_init_in))) {
		const struct fuse_in_header *h = buf;
		if (h->opcode == FUSE_INIT) {
			const struct fuse_init_in *in = (const void *)(h + 1);
			bool ext = in->flags & FUSE_INIT_EXT;
			atomic_store(&pt.offered, ext && (in->flags2 & MESH_FUSE_PASSTHROUGH_FLAG2));
			atomic_store(&pt.init_unique, h->unique);
		}
	}
	return r;
}

static ssize_t hook_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	(void)userdata;
	uint64_t init = atomic_load(&pt.init_unique);
	if (init && count >= 2 && iov[0].iov_len == sizeof(struct fuse_out_header)) {
		struct fuse_out_header *oh = iov[0].iov_base;
		if (oh->unique == init && oh->error == 0 && atomic_load(&pt.offered) &&
		    iov[1].iov_len >= INIT_OUT_STACK_DEPTH_OFFSET + 4) {
			unsigned char *out = iov[1].iov_base;
			uint32_t flags, flags2, depth;
			memcpy(&flags, out + offsetof(struct fuse_init_out, flags), 4);
			memcpy(&depth, out + INIT_OUT_STACK_DEPTH_OFFSET, 4);
			/* only when libfuse speaks the extended INIT and left the
			 * stack depth word alone, and the page cache write-back
			 * (incompatible with passthrough) is off */
			if ((flags & FUSE_INIT_EXT) && depth == 0 && !(flags & FUSE_WRITEBACK_CACHE)) {
				memcpy(&flags2, out + INIT_OUT_FLAGS2_OFFSET, 4);
				flags2 |= MESH_FUSE_PASSTHROUGH_FLAG2;
				depth = 1;
				memcpy(out + INIT_OUT_FLAGS2_OFFSET, &flags2, 4);
				memcpy(out + INIT_OUT_STACK_DEPTH_OFFSET, &depth, 4);
				atomic_store(&pt.active, true);
				syslog(LOG_INFO, "kernel FUSE passthrough enabled");
			}
		}
		if (oh->unique == init)
			atomic_store(&pt.init_unique, 0);
	}
	return writev(fd, iov, count);
}

int passthrough_mount(struct fuse_session *se, const char *source, const char *mountpoint,
		      bool allow_other, struct mesh_err *err)
{
	if (geteuid() != 0)
		return mesh_errf(err, -EPERM, "passthrough needs root");
	int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return mesh_errf(err, -errno, "/dev/fuse: %s", strerror(errno));
	struct stat st;
	if (stat(mountpoint, &st) < 0 || !S_ISDIR(st.st_mode)) {
		int e = errno ? errno : ENOTDIR;
		close(fd);
		return mesh_errf(err, -e, "%s: %s", mountpoint, strerror(e));
	}
	char opts[256];
	snprintf(opts, sizeof opts, "fd=%d,rootmode=%o,user_id=%u,group_id=%u%s", fd,
		 (unsigned)(st.st_mode & S_IFMT), (unsigned)getuid(), (unsigned)getgid(),
		 allow_other ? ",allow_other" : "");
	if (mount(source, mountpoint, "fuse.meshfs", MS_NOSUID | MS_NODEV | MS_RDONLY, opts) < 0) {
		int e = errno;
		close(fd);
		return mesh_errf(err, -e, "mount %s: %s", mountpoint, strerror(e));
	}
	static const struct fuse_custom_io io = {.read = hook_read, .writev = hook_writev};
	if (fuse_session_custom_io(se, &io, fd) != 0) {
		umount2(mountpoint, MNT_DETACH);
		close(fd);
		return mesh_errf(err, -EIO, "fuse_session_custom_io failed");
	}
	pt.fd = fd;   /* closed by fuse_session_destroy */
	pt.mountpoint = xstrdup(mountpoint);
	return 0;
}

void passthrough_unmount(void)
{
	if (!pt.mountpoint)
		return;
	if (umount2(pt.mountpoint, 0) < 0 && errno != EINVAL && errno != ENOENT)
		umount2(pt.mountpoint, MNT_DETACH);
	free(pt.mountpoint);
	pt.mountpoint = NULL;
	pthread_mutex_lock(&pt.lock);
	free(pt.table);
	pt.table = NULL;
	pt.n = pt.cap = 0;
	pthread_mutex_unlock(&pt.lock);
}

bool passthrough_active(void)
{
	return atomic_load(&pt.active);
}

static void close_id(size_t i)
{
	uint32_t id = (uint32_t)pt.table[i].id;
	ioctl(pt.fd, MESH_FUSE_DEV_IOC_BACKING_CLOSE, &id);
	if (!pt.table[i].opens)
		pt.idle--;
	pt.table[i] = pt.table[--pt.n];
}

int passthrough_reply_open(fuse_req_t req, uint64_t ino, int backing_fd, uint64_t fh, int *backing_id)
{
	if (!passthrough_active())
		return -ENOSYS;
	struct stat st;
	if (fstat(backing_fd, &st) < 0)
		return -errno;
	pthread_mutex_lock(&pt.lock);
	struct backing *b = NULL;
	for (size_t i = 0; i < pt.n; i++) {
		if (pt.table[i].ino != ino)
			continue;
		if (pt.table[i].dev == st.st_dev && pt.table[i].file == st.st_ino) {
			b = &pt.table[i];
			break;
		}
		if (pt.table[i].opens) {
			/* the kernel allows one backing file per inode while it
			 * has passthrough opens, and fails any other open of it
			 * with EIO.  meshfs gives content that changes a new
			 * inode (views, re-stated contracts), so the former
			 * file holds the same bytes (a rebuilt view): share it */
			b = &pt.table[i];
			break;
		}
		close_id(i--);   /* an idle id of the inode's former file */
	}
	if (!b) {
		struct mesh_backing_map map = {.fd = backing_fd};
		int id = ioctl(pt.fd, MESH_FUSE_DEV_IOC_BACKING_OPEN, &map);
		if (id <= 0) {
			int e = errno;
			pthread_mutex_unlock(&pt.lock);
			return -(e ? e : EIO);
		}
		if (pt.n == pt.cap) {
			pt.cap = pt.cap ? pt.cap * 2 : 64;
			pt.table = xrealloc(pt.table, pt.cap * sizeof *pt.table);
		}
		b = &pt.table[pt.n++];
		*b = (struct backing){.ino = ino, .dev = st.st_dev, .file = st.st_ino, .id = id, .opens = 0};
		pt.idle++;
	}
	if (b->opens++ == 0)
		pt.idle--;
	b->last_use = ++pt.clock;
	*backing_id = b->id;
	struct mesh_open_out out = {
		.fh = fh,
		.open_flags = MESH_FOPEN_PASSTHROUGH | FOPEN_NOFLUSH,
		.backing_id = b->id,
	};
	pthread_mutex_unlock(&pt.lock);
	fuse_reply_buf(req, (const char *)&out, sizeof out);
	return 0;
}

/* Backing ids whose last open went are kept (up to MAX_IDLE): files are
 * often opened again, and registering a backing file costs an ioctl. */
#define MAX_IDLE 1024

void passthrough_release(uint64_t ino, int backing_id)
{
	pthread_mutex_lock(&pt.lock);
	for (size_t i = 0; i < pt.n; i++) {
		if (pt.table[i].ino != ino || pt.table[i].id != backing_id)
			continue;
		if (--pt.table[i].opens == 0)
			pt.idle++;
		break;
	}
	while (pt.idle > MAX_IDLE) {
		/* close the least recently used idle id */
		size_t victim = pt.n;
		for (size_t i = 0; i < pt.n; i++)
			if (!pt.table[i].opens && (victim == pt.n || pt.table[i].last_use < pt.table[victim].last_use))
				victim = i;
		if (victim == pt.n)
			break;
		close_id(victim);
	}
	pthread_mutex_unlock(&pt.lock);
}
