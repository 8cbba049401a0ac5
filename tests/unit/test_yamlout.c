/* Unit tests for yamlout.c: whatever string goes in reads back through
 * yamltree.c as the same string, and words YAML resolves to other types
 * are never left plain. */
#include "check.h"
#include "yamlout.h"
#include "yamltree.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const struct ytree_limits limits = {1u << 20, 32, 10000};

int main(void)
{
	CHECK(yamlout_plain_is_string("orders"));
	CHECK(yamlout_plain_is_string("ünï"));
	static const char *typed[] = {"", "yes", "No", "NULL", "~", "on", "Off", "y", "N", "true", "12",
				      "-1", "1.5e3", ".inf", "2026-01-01", "1:20", "0x1f", "+3"};
	for (size_t i = 0; i < sizeof typed / sizeof *typed; i++)
		CHECK(!yamlout_plain_is_string(typed[i]));

	static const char *values[] = {"orders #2.csv", "key: value", "- lead", "-", "yes", "null", "~", "",
				       "ünïcødé 名前", "multi\nline", "tab\there", " padded ", "it's",
				       "say \"hi\"", "[1, 2]", "{a: b}", "&anchor", "*alias", "!tag", "%dir",
				       "@at", "`tick", "|", ">", "?", "a,b", "trailing:", "back\\slash", "\x01ctl"};
	size_t n = sizeof values / sizeof *values;
	struct yamlout *y = yamlout_new();
	CHECK(y != NULL);
	yamlout_comment(y, "a comment\nnot: yaml");
	yamlout_map_start(y);
	yamlout_str(y, "list");
	yamlout_seq_start(y, false);
	for (size_t i = 0; i < n; i++)
		yamlout_str(y, values[i]);
	yamlout_seq_end(y);
	yamlout_str(y, "flow");
	yamlout_seq_start(y, true);
	for (size_t i = 0; i < n; i++)
		yamlout_str(y, values[i]);
	yamlout_seq_end(y);
	for (size_t i = 0; i < n; i++)      /* every value as a key too */
		yamlout_kv_bool(y, values[i], i % 2);
	yamlout_map_end(y);
	char *text = NULL;
	struct mesh_err err = {0};
	CHECK(yamlout_finish(y, &text, &err) == 0);
	yamlout_free(y);
	struct ynode *root = NULL;
	CHECK(text && yamltree_parse(text, strlen(text), "out.yaml", &limits, &root, &err) == 0);
	CHECK(root && root->kind == Y_MAPPING && root->n == 2 + n);
	CHECK(!ymap_get(root, "not"));        /* the comment's line break stayed in the comment */
	const struct ynode *list = ymap_get(root, "list"), *flow = ymap_get(root, "flow");
	CHECK(list && list->n == n && flow && flow->n == n);
	for (size_t i = 0; list && flow && i < n; i++) {
		CHECK(!strcmp(list->items[i]->text, values[i]));
		CHECK(yamlout_plain_is_string(values[i]) || list->items[i]->quoted);
		CHECK(!strcmp(flow->items[i]->text, values[i]));
		CHECK(yscalar(list->items[i]) != NULL);              /* never read as null */
		CHECK(ybool(list->items[i]) == -1);                  /* nor as a boolean */
		CHECK(ybool(ymap_get(root, values[i])) == (int)(i % 2));
	}
	yamltree_free(root);
	free(text);

	/* invalid UTF-8 is refused, not written */
	y = yamlout_new();
	yamlout_map_start(y);
	yamlout_kv_str(y, "name", "caf\xe9");
	yamlout_map_end(y);
	CHECK(yamlout_finish(y, &text, &err) == -EINVAL && text == NULL && strstr(err.msg, "UTF-8"));
	yamlout_free(y);
	yamlout_free(NULL);
	return check_done("test_yamlout");
}
