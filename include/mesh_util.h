/*
 * mesh_util.h - small helpers shared by the modules: names, SemVer, time,
 * SHA-256, whole-file reads, a growable string buffer.
 *
 * Nothing here knows about the store, contracts or FUSE.  All functions are
 * thread-safe (no hidden state).
 */
#ifndef MESH_UTIL_H
#define MESH_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "mesh_err.h"

/* Domain and product names: [a-z0-9][a-z0-9_-]*, at most 64 bytes. */
#define MESH_NAME_MAX 64
bool mesh_name_ok(const char *name);

/* A file name inside a release: one path component, printable, no '/',
 * not "." or "..", no leading '.', at most 255 bytes. */
bool mesh_filename_ok(const char *name);

/* ---- Semantic Versioning 2.0.0 ---- */
struct semver {
	uint64_t major, minor, patch;
	char prerelease[128];   /* "" when none */
	char build[128];        /* "" when none; ignored by comparison */
};
/* 0 if `text` is a valid SemVer 2.0.0 string (at most 255 bytes). */
int semver_parse(const char *text, struct semver *out);
/* <0, 0, >0 like strcmp, by SemVer precedence. */
int semver_cmp(const struct semver *a, const struct semver *b);
/* Compare two strings that are known to parse; invalid ones sort first. */
int semver_cmp_str(const char *a, const char *b);

/* ---- time ---- */
/* RFC 3339 UTC with milliseconds: "2026-11-24T20:10:47.123Z".  buf >= 32. */
void mesh_time_rfc3339(const struct timespec *ts, char *buf, size_t size);
/* Parse "YYYY-MM-DD" or RFC 3339 (Z or +hh:mm offset, optional fraction)
 * into seconds since the epoch. 0 on success, -EINVAL otherwise. */
int mesh_time_parse(const char *text, time_t *out);

/* ---- SHA-256 (OpenSSL's libcrypto) ---- */
struct mesh_sha256;
struct mesh_sha256 *mesh_sha256_new(void);
void mesh_sha256_update(struct mesh_sha256 *ctx, const void *data, size_t len);
/* Writes 64 lowercase hex digits + NUL into hex[65] and frees ctx. */
void mesh_sha256_final(struct mesh_sha256 *ctx, char hex[65]);

/* ---- files ---- */
/* THE way to open a file under the store (or any file nobody vouches for):
 * openat(dirfd, path) with O_NOFOLLOW|O_NONBLOCK|O_CLOEXEC added to
 * `flags` (O_RDONLY/O_WRONLY/O_RDWR, optionally O_CREAT, O_EXCL, O_APPEND,
 * O_TRUNC; `mode` for O_CREAT), then fstat: only a regular file is kept.
 * A symlink as the last component fails with -ELOOP, a FIFO, device,
 * socket or directory with -EINVAL (never blocks: a FIFO without a
 * writer is not waited for).  O_NONBLOCK is cleared again on the returned
 * descriptor.  Returns the descriptor or a negative errno; *st (if not
 * NULL) is the file's fstat.  Thread-safe. */
int mesh_open_regular_at(int dirfd, const char *path, int flags, mode_t mode, struct stat *st);
/* A directory under the store: O_RDONLY|O_DIRECTORY|O_NOFOLLOW|O_CLOEXEC
 * (a symlink in its place fails with -ELOOP or -ENOTDIR).  fd or -errno. */
int mesh_open_dir_at(int dirfd, const char *path);
/* A message for an error of mesh_open_regular_at ("a symbolic link (not
 * followed)", "not a regular file (a FIFO, device or directory)", or
 * strerror). */
const char *mesh_open_strerror(int rc);

/* Read a whole regular file (at most `limit` bytes) relative to dirfd,
 * through mesh_open_regular_at (no symlink, no FIFO, no device).
 * *data is NUL-terminated and malloc'ed (caller frees). */
int mesh_read_file_at(int dirfd, const char *path, size_t limit,
		      char **data, size_t *len, struct mesh_err *err);
/* write(2) all of buf, retrying on EINTR and short writes. */
int mesh_write_all(int fd, const void *buf, size_t len);
/* Write `data` to dirfd/path atomically: a temporary name beside it that
 * is unique across hosts (".tmp-NAME.HOST.PID.RANDOM", created O_EXCL and
 * never through a symlink), fsync, rename over `path`, fsync the directory.
 * Readers see the old or the new content, never a mix, also on a shared
 * filesystem.  mode is the new file's mode (umask not applied). */
int mesh_write_file_atomic(int dirfd, const char *path, const void *data,
			   size_t len, mode_t mode, struct mesh_err *err);
/* The same without fsync (temp file, rename): readers see the old or the
 * new content, never a part, but a crash may lose the new one.  For files
 * meshfs derives and a rebuild regenerates (cards, served descriptors, the
 * catalog page); a batch that wants them durable syncfs()es once at its end. */
int mesh_write_file_replace(int dirfd, const char *path, const void *data,
			    size_t len, mode_t mode, struct mesh_err *err);
/* fsync a directory by path relative to dirfd. */
int mesh_fsync_dir_at(int dirfd, const char *path);
/* Remove dirfd/name and everything below it (at most 16 levels deep: a
 * deeper tree is left, with -ELOOP), never following a symlink (one is
 * removed as the link it is).  For staging and incoming directories.
 * 0, or the first -errno met; removes what it can either way. */
int mesh_remove_tree_at(int dirfd, const char *name);

/* ---- text for a terminal ---- */
/* `text` (user-supplied: a reason, a description, a name) made safe to
 * print: C0 controls, DEL, C1 controls (U+0080..U+009F) and bytes that are
 * not valid UTF-8 are written as \n, \t, \e or \xNN, and a backslash as
 * \\, so no escape sequence reaches a terminal.  Printable UTF-8 passes.
 * Returns malloc'ed text (caller frees); NULL gives "". */
char *mesh_escape_text(const char *text);

/* ---- string buffer ---- */
struct strbuf {
	char *buf;     /* always NUL-terminated once anything was added */
	size_t len, cap;
};
#define STRBUF_INIT { NULL, 0, 0 }
void strbuf_add(struct strbuf *sb, const void *data, size_t len);
void strbuf_puts(struct strbuf *sb, const char *s);
void strbuf_printf(struct strbuf *sb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Returns the buffer (caller frees) and resets sb. */
char *strbuf_detach(struct strbuf *sb, size_t *len);
void strbuf_release(struct strbuf *sb);

/* A jansson value as pretty JSON text with a trailing newline, keys in
 * insertion order (malloc'ed).  `json` is a json_t *. */
char *mesh_json_text(const void *json);

/* malloc/strdup that abort on out-of-memory (we do not limp on). */
/* Replace each `from` in the string buf (of capacity size) by `to`; the
 * result is cut at size - 1 bytes (for messages only). */
void mesh_str_replace(char *buf, size_t size, const char *from, const char *to);

void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

#endif
