/*
 * meshctl_init.c - `meshctl init DATAFILE --domain D --product P`: draft
 * contract.yaml and schema.json from the data, beside it (or in --out).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "contract.h"
#include "infer.h"
#include "meshctl_cmds.h"
#include "mesh_util.h"
#include "pii.h"
#include "schema.h"

int meshctl_cmd_draft(const struct meshctl_ctx *ctx, int argc, char **argv)
{
	static const struct option longopts[] = {
		{"domain", required_argument, NULL, 'd'},
		{"product", required_argument, NULL, 'p'},
		{"version", required_argument, NULL, 'v'},
		{"out", required_argument, NULL, 'o'},
		{"full", no_argument, NULL, 'f'},
		{"force", no_argument, NULL, 'F'},
		{"schema-json", no_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *domain = NULL, *product = NULL, *version = "1.0.0", *outdir = NULL;
	struct infer_options io = {0};
	bool force = false, want_schema = false;
	optind = 0;
	int c;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': domain = optarg; break;
		case 'p': product = optarg; break;
		case 'v': version = optarg; break;
		case 'o': outdir = optarg; break;
		case 'f': io.full = true; break;
		case 'F': force = true; break;
		case 's': want_schema = true; break;
		case 'h':
			printf("usage: meshctl init DATAFILE --domain D --product P [--version V] [--out DIR] [--full] [--force]\n"
			       "                    [--schema-json]\n"
			       "Drafts contract.yaml (ODCS v3) from a CSV, JSON Lines or Parquet file:\n"
			       "types, nullability, uniqueness, examples, and a pii classification where the\n"
			       "values look like personal data.  Reads the first %d rows unless --full; for\n"
			       "Parquet, types, nullability and the row count come from the file's footer.\n"
			       "Writes beside DATAFILE unless --out; never overwrites without --force.\n"
			       "The mount serves a schema.json derived from the contract; --schema-json also\n"
			       "writes one (a shipped schema.json must agree with the contract at publish).\n",
			       INFER_SAMPLE_ROWS);
			return MESHCTL_OK;
		default:
			return MESHCTL_USAGE;
		}
	}
	if (optind != argc - 1 || !domain || !product) {
		meshctl_fail(ctx, "init", "usage: meshctl init DATAFILE --domain D --product P (see --help)");
		return MESHCTL_USAGE;
	}
	if (!mesh_name_ok(domain) || !mesh_name_ok(product) || semver_parse(version, NULL)) {
		meshctl_fail(ctx, "init", "--domain and --product must be safe names ([a-z0-9][a-z0-9_-]*) and "
			     "--version SemVer");
		return MESHCTL_USAGE;
	}
	const char *data = argv[optind];
	char dir[PATH_MAX];
	if (outdir) {
		snprintf(dir, sizeof dir, "%s", outdir);
	} else {
		const char *slash = strrchr(data, '/');
		snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - data) : 1, slash ? data : ".");
	}
	struct infer_result *r = NULL;
	struct mesh_err err = {0};
	int rc = infer_file(data, &io, &r, &err);
	if (rc) {
		meshctl_fail(ctx, "init", "%s", err.msg);
		return meshctl_exit_for(rc);
	}
	char *yaml = NULL;
	/* the draft must be a contract meshfs reads back */
	struct contract *ct = NULL;
	char cpath[PATH_MAX + 16], spath[PATH_MAX + 16];
	snprintf(cpath, sizeof cpath, "%s/contract.yaml", dir);
	snprintf(spath, sizeof spath, "%s/schema.json", dir);
	rc = infer_contract_yaml(r, domain, product, version, &yaml, &err);
	if (!rc)
		rc = contract_parse(yaml, strlen(yaml), cpath, &ct, &err);
	struct table_schema *schema = NULL;
	char *json = NULL;
	if (!rc && (schema_from_contract_object(&ct->objects[0], ct, &schema) || schema_to_json(schema, &json)))
		rc = mesh_errf(&err, -EIO, "cannot derive schema.json");
	if (!rc && !force && (access(cpath, F_OK) == 0 || (want_schema && access(spath, F_OK) == 0)))
		rc = mesh_errf(&err, -EEXIST, "%s or %s exists already (--force overwrites)", cpath, spath);
	int dfd = -1;
	if (!rc && (dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		rc = mesh_errf(&err, -errno, "%s: %s", dir, strerror(errno));
	if (!rc)
		rc = mesh_write_file_atomic(dfd, "contract.yaml", yaml, strlen(yaml), 0644, &err);
	if (!rc && want_schema)
		rc = mesh_write_file_atomic(dfd, "schema.json", json, strlen(json), 0644, &err);
	if (dfd >= 0)
		close(dfd);
	if (!rc) {
		printf("drafted %s%s%s from %s (%llu rows%s)\n", cpath, want_schema ? " and " : "",
		       want_schema ? spath : "", data, (unsigned long long)r->rows, r->sampled ? ", a sample" : "");
		for (size_t i = 0; i < r->n_cols; i++) {
			char *name = mesh_escape_text(r->cols[i].name);   /* a header is data, not terminal input */
			printf("  %-24s %-9s %s%s%s%s\n", name, logical_type_name(r->cols[i].type),
			       r->cols[i].required ? "required " : "", r->cols[i].unique ? "unique " : "",
			       r->cols[i].pii ? "pii: " : "", r->cols[i].pii ? r->cols[i].pii_reason : "");
			free(name);
		}
		printf("next: fill in the TODOs in %s, then 'meshctl validate %s'\n", cpath, dir);
	} else {
		meshctl_fail(ctx, "init", "%s", err.msg);
	}
	free(json);
	schema_free(schema);
	contract_free(ct);
	free(yaml);
	infer_result_free(r);
	return rc ? meshctl_exit_for(rc) : MESHCTL_OK;
}
