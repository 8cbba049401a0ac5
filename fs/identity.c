/*
 * identity.c - callers' identities and name lookups (contract in
 * include/identity.h).
 */
#include "identity.h"
#include "mesh_util.h"

#include <errno.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CACHE_SLOTS 256

struct cached_name {
	unsigned id;
	bool is_group, used;
	time_t at;
	char name[64];
};

static struct cached_name cache[CACHE_SLOTS];
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

static bool cache_get(unsigned id, bool group, char *buf, size_t size)
{
	bool hit = false;
	pthread_mutex_lock(&cache_lock);
	struct cached_name *c = &cache[(id * 2654435761u + group) % CACHE_SLOTS];
	if (c->used && c->id == id && c->is_group == group && time(NULL) - c->at < IDENTITY_CACHE_SECONDS) {
		snprintf(buf, size, "%s", c->name);
		hit = true;
	}
	pthread_mutex_unlock(&cache_lock);
	return hit;
}

static void cache_put(unsigned id, bool group, const char *name)
{
	pthread_mutex_lock(&cache_lock);
	struct cached_name *c = &cache[(id * 2654435761u + group) % CACHE_SLOTS];
	c->id = id;
	c->is_group = group;
	c->used = true;
	c->at = time(NULL);
	snprintf(c->name, sizeof c->name, "%s", name);
	pthread_mutex_unlock(&cache_lock);
}

void identity_user_name(uid_t uid, char *buf, size_t size)
{
	if (cache_get(uid, false, buf, size))
		return;
	char tmp[4096];
	struct passwd pw, *res = NULL;
	if (getpwuid_r(uid, &pw, tmp, sizeof tmp, &res) == 0 && res)
		snprintf(buf, size, "%s", res->pw_name);
	else
		snprintf(buf, size, "%u", (unsigned)uid);
	cache_put(uid, false, buf);
}

void identity_group_name(gid_t gid, char *buf, size_t size)
{
	if (cache_get(gid, true, buf, size))
		return;
	char tmp[16384];
	struct group gr, *res = NULL;
	if (getgrgid_r(gid, &gr, tmp, sizeof tmp, &res) == 0 && res)
		snprintf(buf, size, "%s", res->gr_name);
	else
		snprintf(buf, size, "%u", (unsigned)gid);
	cache_put(gid, true, buf);
}

long identity_group_id(const char *name)
{
	char tmp[16384];
	struct group gr, *res = NULL;
	if (getgrnam_r(name, &gr, tmp, sizeof tmp, &res) == 0 && res)
		return (long)res->gr_gid;
	return -1;
}

long identity_user_id(const char *name)
{
	char tmp[4096];
	struct passwd pw, *res = NULL;
	if (getpwnam_r(name, &pw, tmp, sizeof tmp, &res) == 0 && res)
		return (long)res->pw_uid;
	return -1;
}

void identity_from_ids(struct identity *id, uid_t uid, gid_t gid, const gid_t *groups, int n)
{
	id->uid = uid;
	id->gid = gid;
	id->n_groups = 0;
	id->groups_truncated = n > IDENTITY_MAX_GROUPS;
	for (int i = 0; groups && i < n && i < IDENTITY_MAX_GROUPS; i++)
		id->groups[id->n_groups++] = groups[i];
	identity_user_name(uid, id->user, sizeof id->user);
}

void identity_current(struct identity *id)
{
	/* all of them, however many: identity_from_ids keeps what fits and
	 * marks the rest as dropped (a decision on it then denies) */
	int total = getgroups(0, NULL);
	gid_t *groups = xcalloc(total > 0 ? (size_t)total : 1, sizeof *groups);
	int n = total > 0 ? getgroups(total, groups) : 0;
	identity_from_ids(id, getuid(), getgid(), groups, n < 0 ? 0 : n);
	free(groups);
}

bool identity_in_group(const struct identity *id, gid_t gid)
{
	if (id->gid == gid)
		return true;
	for (int i = 0; i < id->n_groups; i++)
		if (id->groups[i] == gid)
			return true;
	return false;
}

bool identity_matches(const struct identity *id, const char *subject)
{
	if (!strcmp(subject, "*"))
		return true;
	if (!strncmp(subject, "user:", 5))
		return !strcmp(subject + 5, id->user);
	if (!strncmp(subject, "group:", 6)) {
		long gid = identity_group_id(subject + 6);
		return gid >= 0 && identity_in_group(id, (gid_t)gid);
	}
	return false;
}

int identity_become(const struct identity *id)
{
	if (id->groups_truncated)
		return -E2BIG;
	if (setgroups((size_t)id->n_groups, id->groups) < 0 || setresgid(id->gid, id->gid, id->gid) < 0 ||
	    setresuid(id->uid, id->uid, id->uid) < 0)
		return -errno;
	if (id->uid != 0 && setuid(0) == 0)
		return -EPERM;
	return 0;
}
