/*
 * audit_state.h - the record of a clean store audit, kept in this host's
 * state directory (state_dir.h) so the next mount re-checks only what
 * changed (store_audit.h says what that proves and what it does not).
 *
 * One record per directory of the store: its parent's record, its name,
 * and the st_dev, st_ino, st_mode, st_uid, st_ctim and st_mtim seen when
 * its entries were last read and found locked down.  The file:
 *
 *   "meshfs store audit 1\n"                   magic and format version
 *   u64 root_dev, u64 root_ino, u32 owner_uid,  the store it belongs to
 *   i64 written_at, u32 n_records, u32 path_len, path (the store's realpath)
 *   n_records x { u32 parent, u64 dev, u64 ino, i64 ctime_s, u32 ctime_ns,
 *                 i64 mtime_s, u32 mtime_ns, u32 mode, u32 uid, u8 flags,
 *                 u16 name_len, name }
 *   32 bytes SHA-256 of everything before
 *
 * little-endian.  Record 0 is the store's root (parent AUDIT_STATE_NONE,
 * empty name); every other record's parent is an earlier record, names
 * are single path components, and no (parent, name) repeats.  A file that
 * breaks any of this, or names another store, is refused (-EINVAL), and
 * the caller audits the whole store: the file is never trusted in part.
 *
 * Not here: walking the store (store_audit.c).  Thread-safety: a state is
 * owned by one thread; the functions keep no global state.
 */
#ifndef AUDIT_STATE_H
#define AUDIT_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "mesh_err.h"

#define AUDIT_STATE_MAGIC "meshfs store audit 1\n"
#define AUDIT_STATE_FILE  "store-audit"     /* in STATE_ROOT/<store-id>/ */
#define AUDIT_STATE_NONE  UINT32_MAX        /* the root's parent */
#define AUDIT_REC_RACY    0x01u             /* changed too close to when it was read: re-read */
#define AUDIT_STATE_MAX_BYTES (1ull << 32)  /* a larger file is refused */

struct audit_dir_rec {
	uint32_t parent;
	uint8_t flags;
	uint16_t name_len;
	uint32_t name_off;      /* into audit_state.names */
	uint64_t dev, ino;
	int64_t ctime_sec, mtime_sec;
	uint32_t ctime_nsec, mtime_nsec;
	uint32_t mode, uid;
};

struct audit_state {
	char *store;            /* the store's realpath */
	uint64_t root_dev, root_ino;
	uint32_t owner;         /* the store root's owner when audited */
	int64_t written_at;     /* CLOCK_REALTIME seconds */
	struct audit_dir_rec *recs;
	size_t n, cap;
	char *names;
	size_t names_len, names_cap;
	uint32_t *slots;        /* (parent, name) -> index + 1; 0 empty */
	size_t n_slots;
};

/* An empty state for the store at realpath `store` (root's dev, ino and
 * owner).  Never NULL (allocation failure aborts). */
struct audit_state *audit_state_new(const char *store, uint64_t root_dev, uint64_t root_ino, uint32_t owner);
void audit_state_free(struct audit_state *st);   /* NULL: no-op */

/* Append a directory record (name: one component, "" for the root);
 * returns its index.  The caller keeps parent < index and (parent, name)
 * unique. */
uint32_t audit_state_add(struct audit_state *st, uint32_t parent, const char *name, size_t name_len,
			 const struct stat *sb, uint8_t flags);
/* Overwrite record i's stat fields and flags. */
void audit_state_set(struct audit_state *st, uint32_t i, const struct stat *sb, uint8_t flags);
/* The index of (parent, name), or AUDIT_STATE_NONE. */
uint32_t audit_state_find(const struct audit_state *st, uint32_t parent, const char *name, size_t name_len);
/* Does record i still describe `sb` (dev, ino, mode, uid, ctime, mtime)? */
bool audit_state_same(const struct audit_state *st, uint32_t i, const struct stat *sb);

/* The file's bytes (malloc'ed into *buf, length *len). */
void audit_state_serialize(const struct audit_state *st, char **buf, size_t *len);
/* Parse a file's bytes; it must name `store` with root (root_dev,
 * root_ino).  0 and *out, or -EINVAL with err saying what is wrong. */
int audit_state_parse(const void *buf, size_t len, const char *store, uint64_t root_dev, uint64_t root_ino,
		      struct audit_state **out, struct mesh_err *err);

/* Read and parse `path`: a regular file (never through a symlink) owned
 * by the effective uid and writable by nobody else, else -EPERM.  -ENOENT
 * when there is none. */
int audit_state_load(const char *path, const char *store, uint64_t root_dev, uint64_t root_ino,
		     struct audit_state **out, struct mesh_err *err);
/* Write to a temporary name beside `path`, fsync, rename over it, fsync
 * the directory (mode 0600). */
int audit_state_save(const char *path, const struct audit_state *st, struct mesh_err *err);

#endif
