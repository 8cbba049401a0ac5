/*
 * test_view_inodes.c - the daemon's view inode table: an inode added is
 * found again with what was stored in it, an unknown one is not, adding
 * twice gives the same entry, and pointers stay valid while the table
 * grows (the daemon keeps one across a lock it holds).  Numbers shaped as
 * the daemon's are (mesh_ino_view: the top two bits the same for all).
 */
#include <stdint.h>
#include <stdio.h>

#include "check.h"
#include "mesh_ino.h"
#include "mesh_util.h"
#include "view_inodes.h"

#define N 200000

static uint64_t ino_of(uint64_t i)
{
	return mesh_ino_view(i * 0x100000001b3ull + 7);
}

int main(void)
{
	struct view_inodes *t = view_inodes_new();
	CHECK(view_inodes_find(t, ino_of(1)) == NULL);
	CHECK(view_inodes_count(t) == 0);

	bool added = false;
	struct view_inode *first = view_inodes_add(t, ino_of(0), &added);
	CHECK(added);
	CHECK(first->ino == ino_of(0));
	CHECK(first->sha256[0] == '\0' && !first->plan && !first->refused && !first->size);
	first->base_ino = 42;
	first->plan = xstrdup("email:hash");
	CHECK(view_inodes_add(t, ino_of(0), &added) == first);
	CHECK(!added);

	for (uint64_t i = 1; i < N; i++) {
		struct view_inode *v = view_inodes_add(t, ino_of(i), NULL);
		v->base_ino = i;
		v->size = i * 3;
		if (i % 1000 == 0)
			snprintf(v->sha256, sizeof v->sha256, "%064llx", (unsigned long long)i);
	}
	CHECK(view_inodes_count(t) == N);
	/* the first entry survived every doubling where it was */
	CHECK(view_inodes_find(t, ino_of(0)) == first);
	CHECK(first->base_ino == 42);
	CHECK_STR(first->plan, "email:hash");
	int wrong = 0;
	for (uint64_t i = 1; i < N; i++) {
		const struct view_inode *v = view_inodes_find(t, ino_of(i));
		wrong += !v || v->ino != ino_of(i) || v->base_ino != i || v->size != i * 3 ||
			 (i % 1000 == 0) != (v->sha256[0] != '\0');
	}
	CHECK(wrong == 0);
	CHECK(view_inodes_find(t, ino_of(N)) == NULL);
	CHECK(view_inodes_find(t, ino_of(N) ^ 1) == NULL);
	view_inodes_free(t);
	view_inodes_free(NULL);
	return check_done("test_view_inodes");
}
