/*
 * identity.h - who is asking: a uid, a primary gid and supplementary groups,
 * as the kernel reports them (the CLI's own credentials, or a FUSE
 * request's), and names resolved through NSS (getpwuid_r/getgrgid_r, so
 * LDAP/SSSD users work).  Never a name the user typed.
 *
 * Name lookups are cached for IDENTITY_CACHE_SECONDS; the cache is shared
 * and protected by a mutex, so every function is thread-safe.
 */
#ifndef IDENTITY_H
#define IDENTITY_H

#include <stdbool.h>
#include <sys/types.h>

/* Supplementary groups kept per identity.  A caller with more is never
 * silently cut short: groups_truncated is set, and policy_decide() denies
 * such a caller (a deny rule naming a dropped group would be missed). */
#define IDENTITY_MAX_GROUPS 256
#define IDENTITY_CACHE_SECONDS 30

struct identity {
	uid_t uid;
	gid_t gid;
	gid_t groups[IDENTITY_MAX_GROUPS];
	int n_groups;
	bool groups_truncated;    /* the caller has more than IDENTITY_MAX_GROUPS */
	char user[64];            /* name, or the number when NSS does not know it */
};

/* The calling process's real uid and groups. */
void identity_current(struct identity *id);
/* An identity from kernel-reported ids (FUSE); groups may be NULL/0.  `n`
 * is the caller's total number of groups, which may exceed what `groups`
 * holds (fuse_req_getgroups returns the total): n > IDENTITY_MAX_GROUPS
 * sets groups_truncated. */
void identity_from_ids(struct identity *id, uid_t uid, gid_t gid, const gid_t *groups, int n);

/* Name of a uid / gid (cached).  Writes the number when unknown. */
void identity_user_name(uid_t uid, char *buf, size_t size);
void identity_group_name(gid_t gid, char *buf, size_t size);
/* gid of a group name; -1 if unknown. */
long identity_group_id(const char *name);
/* uid of a user name; -1 if unknown. */
long identity_user_id(const char *name);

/* Is `id` user:NAME, a member of group:NAME, or anyone for "*"? */
bool identity_matches(const struct identity *id, const char *subject);
bool identity_in_group(const struct identity *id, gid_t gid);

/* Become `id` for good: its groups, gid and uid (real, effective and
 * saved), so that the kernel and every filesystem decide for it.  For a
 * child about to act as a caller (it needs root, or to be that user).  An
 * identity whose groups were truncated is refused (-E2BIG: acting with
 * fewer groups than the caller has would decide wrongly).  0, or -errno;
 * -EPERM too when root could still be regained afterwards. */
int identity_become(const struct identity *id);

#endif
