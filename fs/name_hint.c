/*
 * name_hint.c - closest known name for error messages (contract in
 * include/name_hint.h).  Two rolling rows plus the one before them for
 * the swap case; names are short, so this is cheap.
 */
#include "name_hint.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mesh_util.h"

static size_t min3(size_t a, size_t b, size_t c)
{
	size_t m = a < b ? a : b;
	return m < c ? m : c;
}

static int same(char x, char y)
{
	return tolower((unsigned char)x) == tolower((unsigned char)y);
}

size_t name_hint_distance(const char *a, const char *b)
{
	size_t n = strlen(a), m = strlen(b);
	if (n > NAME_HINT_MAX_LEN || m > NAME_HINT_MAX_LEN)
		return SIZE_MAX;
	size_t rows[3][NAME_HINT_MAX_LEN + 1];
	size_t *prev2 = rows[0], *prev = rows[1], *cur = rows[2];
	for (size_t j = 0; j <= m; j++)
		prev[j] = j;
	for (size_t i = 1; i <= n; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= m; j++) {
			size_t cost = same(a[i - 1], b[j - 1]) ? 0 : 1;
			cur[j] = min3(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost);
			if (i > 1 && j > 1 && same(a[i - 1], b[j - 2]) && same(a[i - 2], b[j - 1]) &&
			    prev2[j - 2] + 1 < cur[j])
				cur[j] = prev2[j - 2] + 1;
		}
		size_t *t = prev2;
		prev2 = prev;
		prev = cur;
		cur = t;
	}
	return prev[m];
}

const char *name_hint_closest(const char *word, const char *const *names, size_t n)
{
	size_t len = strlen(word);
	size_t limit = len <= 4 ? 1 : len <= 8 ? 2 : 3;
	const char *best = NULL;
	size_t best_d = SIZE_MAX;
	for (size_t i = 0; i < n; i++) {
		size_t d = name_hint_distance(word, names[i]);
		if (d < best_d) {
			best_d = d;
			best = names[i];
		}
	}
	return best_d <= limit ? best : NULL;
}

char *name_hint_columns(const char *const *got, size_t n_got, const char *const *want, size_t n_want)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_puts(&sb, "");
	for (size_t i = 0; i < n_got; i++) {
		bool known = false;
		for (size_t k = 0; k < n_want && !known; k++)
			known = !strcmp(got[i], want[k]);
		const char *hint = known ? NULL : name_hint_closest(got[i], want, n_want);
		if (!hint)
			continue;
		char *shown = mesh_escape_text(got[i]);
		strbuf_printf(&sb, "; '%s' is not a contract column, did you mean '%s'?", shown, hint);
		free(shown);
	}
	return strbuf_detach(&sb, NULL);
}
