/* libFuzzer target: declared inputs and SemVer ranges (lineage.h).  The
 * input is split at its first newline: an input "domain/product@range" and
 * a version; parsing, checking and matching must agree (a range that
 * parses matches without crashing; one that does not never matches), and
 * a graph with the input must render in every format. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lineage.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 512)
		return 0;
	char *text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';
	if (strlen(text) != size) {      /* NULs inside: a C string stops there */
		free(text);
		return 0;
	}
	char *version = strchr(text, '\n');
	if (version)
		*version++ = '\0';
	else
		version = "1.2.3";
	struct mesh_err err = {0};
	struct lineage_input in;
	if (lineage_input_parse(text, &in, &err) == 0) {
		(void)lineage_range_match(in.range, version);
		if (lineage_range_check(in.range, &err) != 0)
			abort();             /* parse accepted what check refuses */
	}
	bool ok = lineage_range_check(text, &err) == 0;
	bool match = lineage_range_match(text, version);
	if (match && !ok)
		abort();
	struct lineage *g = lineage_new();
	lineage_add_version(g, "a", "b", "1.2.3", LC_ACTIVE, false, true);
	lineage_add_input(g, "a", "b", text, "fuzz");
	lineage_add_input(g, "c", "d", text, "fuzz");
	lineage_finish(g);
	for (int f = LINEAGE_TREE; f <= LINEAGE_DOT; f++)
		free(lineage_format(g, "c", "d", LINEAGE_BOTH, (enum lineage_format)f, NULL, NULL));
	char *problems = NULL;
	char *inputs[] = {text};
	lineage_check(g, "a", "b", inputs, 1, NULL, NULL, &problems);
	free(problems);
	lineage_free(g);
	free(text);
	return 0;
}
