/*
 * meshctl_usage.c - `meshctl usage`, `meshctl consumers` and the usage part
 * of `meshctl status`: arguments, default time windows, printing, exit
 * codes.  The reports, pruning and status themselves are usage_report.c.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "meshctl_cmds.h"
#include "mesh_util.h"
#include "state_dir.h"
#include "pgsink.h"
#include "scope.h"
#include "usage_report.h"

#define NS ((int64_t)1000000000)
#define DAY_NS (86400 * NS)

static const char usage_help[] =
"usage: meshctl usage [DOMAIN[/PRODUCT[/VERSION]]] [--domain D] [--product P] [--version V]\n"
"                     [--user U] [--host H] [--program P] [--decision allow|mask|deny] [--denied]\n"
"                     [--since DATE] [--until DATE] [--by product|version|consumer|host|program|day]\n"
"                     [--format table|csv|json] [--json] [--limit N]\n"
"       meshctl usage --prune-before DATE\n"
"\n"
"Who reads what through the mount, from every host's usage database in STORE/usage.\n"
"Default: products by distinct consumers and reads over the last 30 days (today\n"
"included), with the adoption summary and the trend against the 30 days before.\n"
"\n"
"  --by consumer   user, host, program, reads, bytes, last read\n"
"  --denied        the audit listing: every denied and masked open\n"
"  --since/--until a day (YYYY-MM-DD, UTC; --until includes that day) or RFC 3339\n"
"  --format csv    RFC 4180 (header line first); json: an object with summary and rows\n"
"  --prune-before  fold raw events that opened before DATE into daily rollups and\n"
"                  delete them (report totals do not change; pruned days have day\n"
"                  resolution).  A host whose daemon runs does it itself; other\n"
"                  hosts' databases are pruned here if you may write them, else skipped.\n"
"\n"
"A read is an open of a data file that was served (allowed or masked); opens of\n"
"contracts, schemas and docs are counted apart as discovery.  Opens are exact.\n"
"Bytes are the bytes the daemon served: reads answered from the kernel's page\n"
"cache (or by kernel passthrough) never reach it, so bytes are a lower bound.\n";

static const char consumers_help[] =
"usage: meshctl consumers DOMAIN/PRODUCT VERSION [--since DATE] [--until DATE]\n"
"                         [--format table|csv|json] [--json]\n"
"\n"
"Who read that version (allowed or masked opens of its data files): user, host,\n"
"programs, reads, bytes, last read; most recent first.  Default: the last 90 days.\n"
"For deprecation notices before a version is retired.\n";

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

static int64_t floor_day(int64_t t)
{
	return t - ((t % DAY_NS) + DAY_NS) % DAY_NS;
}

/* A day (UTC midnight; with end_of_day the next midnight, so --until
 * includes the day) or an RFC 3339 time. */
static int parse_time_arg(const char *text, bool end_of_day, int64_t *out)
{
	time_t t;
	if (mesh_time_parse(text, &t))
		return -EINVAL;
	*out = (int64_t)t * NS;
	if (end_of_day && strlen(text) == 10)
		*out += DAY_NS;
	return 0;
}

/* DOMAIN[/PRODUCT[/VERSION]] into parts (pointing into `buf`, a copy). */
static int split_path(char *buf, const char **domain, const char **product, const char **version)
{
	char *a = strtok(buf, "/"), *b = a ? strtok(NULL, "/") : NULL, *c = b ? strtok(NULL, "/") : NULL;
	if (!a || (c && strtok(NULL, "/")))
		return -EINVAL;
	*domain = a;
	if (b)
		*product = b;
	if (c)
		*version = c;
	return 0;
}

/* The hosts recording on this machine: STATE/<store-id>/usage (local disk). */
static char *usage_root(const struct meshctl_ctx *ctx)
{
	char dir[PATH_MAX];
	struct strbuf sb = STRBUF_INIT;
	if (state_dir_for_store(ctx->store, ctx->state_dir, false, dir, sizeof dir, NULL) == 0)
		strbuf_printf(&sb, "%s/usage", dir);
	else
		strbuf_printf(&sb, "%s/usage/.none", ctx->store);   /* no such host directory */
	return strbuf_detach(&sb, NULL);
}

/* Every host's shipped segments: STORE/usage. */
static char *shipped_root(const struct meshctl_ctx *ctx)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_printf(&sb, "%s/usage", ctx->store);
	return strbuf_detach(&sb, NULL);
}

/* The hosts that could not be read, on stderr; their number. */
static size_t print_warnings(const struct meshctl_ctx *ctx, const char *cmd, const struct usage_report *r)
{
	const char *w;
	size_t i;
	for (i = 0; (w = usage_report_warning(r, i)); i++)
		fprintf(stderr, "%s %s: %s: left out of this report\n", ctx->prog ? ctx->prog : "meshctl", cmd, w);
	return i;
}

/* A report that left a host out is printed, but never passes for
 * complete: the exit status says so (MESHCTL_ERROR). */
static int print_report(const struct meshctl_ctx *ctx, const char *cmd, struct usage_report *r,
			enum usage_format fmt)
{
	size_t unread = print_warnings(ctx, cmd, r);
	char *text = usage_report_format(r, fmt);
	if (fmt == USAGE_FORMAT_JSON)
		meshctl_print_document(text);
	else
		fputs(text, stdout);
	free(text);
	usage_report_free(r);
	return fflush(stdout) == 0 && !unread ? MESHCTL_OK : MESHCTL_ERROR;
}

static int prune(const struct meshctl_ctx *ctx, const char *root, const char *date)
{
	struct scope *sc = NULL;
	scope_open(ctx->store, &ctx->caller, &sc, NULL);
	bool governance = scope_governance(sc);
	scope_close(sc);
	if (!governance) {
		meshctl_fail(ctx, "usage", "--prune-before: for governance only (root and the governance group)");
		return MESHCTL_DENIED;
	}
	int64_t before;
	if (parse_time_arg(date, false, &before)) {
		meshctl_fail(ctx, "usage", "--prune-before: '%s' is not a day (YYYY-MM-DD) or an RFC 3339 time", date);
		return MESHCTL_USAGE;
	}
	struct usage_prune_result *res;
	size_t n;
	struct mesh_err err = {0};
	int rc = usage_prune_store(root, before, 10000, &res, &n, &err);
	if (rc) {
		meshctl_fail(ctx, "usage", "%s", err.msg);
		return meshctl_exit_for(rc);
	}
	size_t done = 0, skipped = 0, failed = 0;
	for (size_t i = 0; i < n; i++) {
		const struct usage_prune_result *r = &res[i];
		if (r->outcome == USAGE_PRUNE_FAILED) {
			meshctl_fail(ctx, "usage", "host %s: %s", r->host, r->message);
			failed++;
			continue;
		}
		printf("host %s: %s%s\n", r->host, r->outcome == USAGE_PRUNE_SKIPPED ? "skipped: " : "", r->message);
		done += r->outcome != USAGE_PRUNE_SKIPPED;
		skipped += r->outcome == USAGE_PRUNE_SKIPPED;
	}
	if (!n)
		printf("no usage database in %s\n", root);
	free(res);
	return failed ? MESHCTL_ERROR : skipped && !done ? MESHCTL_DENIED : MESHCTL_OK;
}

int meshctl_cmd_usage(const struct meshctl_ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {
		{"domain", required_argument, NULL, 'd'}, {"product", required_argument, NULL, 'p'},
		{"version", required_argument, NULL, 'v'}, {"user", required_argument, NULL, 'u'},
		{"host", required_argument, NULL, 'H'}, {"program", required_argument, NULL, 'P'},
		{"decision", required_argument, NULL, 'D'}, {"denied", no_argument, NULL, 'x'},
		{"since", required_argument, NULL, 's'}, {"until", required_argument, NULL, 'U'},
		{"by", required_argument, NULL, 'b'}, {"format", required_argument, NULL, 'f'},
		{"json", no_argument, NULL, 'j'}, {"limit", required_argument, NULL, 'l'},
		{"prune-before", required_argument, NULL, 'R'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct usage_query q = {.by = USAGE_BY_PRODUCT};
	enum usage_format fmt = ctx->json ? USAGE_FORMAT_JSON : USAGE_FORMAT_TABLE;
	const char *since = NULL, *until = NULL, *prune_before = NULL;
	optind = 0;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (c) {
		case 'd': q.domain = optarg; break;
		case 'p': q.product = optarg; break;
		case 'v': q.version = optarg; break;
		case 'u': q.user = optarg; break;
		case 'H': q.host = optarg; break;
		case 'P': q.program = optarg; break;
		case 'D': q.decision = optarg; break;
		case 'x': q.denied = true; break;
		case 's': since = optarg; break;
		case 'U': until = optarg; break;
		case 'j': fmt = USAGE_FORMAT_JSON; break;
		case 'R': prune_before = optarg; break;
		case 'h':
			fputs(usage_help, stdout);
			return MESHCTL_OK;
		case 'b':
			if (usage_by_parse(optarg, &q.by)) {
				meshctl_fail(ctx, "usage", "--by %s: use product, version, consumer, host, program or day",
					     optarg);
				return MESHCTL_USAGE;
			}
			break;
		case 'f':
			if (usage_format_parse(optarg, &fmt)) {
				meshctl_fail(ctx, "usage", "--format %s: use table, csv or json", optarg);
				return MESHCTL_USAGE;
			}
			break;
		case 'l': {
			char *end;
			unsigned long long n = strtoull(optarg, &end, 10);
			if (*end || !*optarg || optarg[0] == '-') {
				meshctl_fail(ctx, "usage", "--limit %s: not a number", optarg);
				return MESHCTL_USAGE;
			}
			q.limit = (size_t)n;
			break;
		}
		default:
			meshctl_fail(ctx, "usage", "unknown or incomplete option %s (see meshctl usage --help)",
				     argv[optind - 1]);
			return MESHCTL_USAGE;
		}
	}
	char path[512] = "";
	if (optind < argc) {
		snprintf(path, sizeof path, "%s", argv[optind++]);
		if (split_path(path, &q.domain, &q.product, &q.version)) {
			meshctl_fail(ctx, "usage", "'%s': expected DOMAIN, DOMAIN/PRODUCT or DOMAIN/PRODUCT/VERSION",
				     argv[optind - 1]);
			return MESHCTL_USAGE;
		}
	}
	if (optind < argc) {
		meshctl_fail(ctx, "usage", "unexpected argument '%s' (see meshctl usage --help)", argv[optind]);
		return MESHCTL_USAGE;
	}
	if (q.decision && strcmp(q.decision, "allow") && strcmp(q.decision, "mask") && strcmp(q.decision, "deny")) {
		meshctl_fail(ctx, "usage", "--decision %s: use allow, mask or deny", q.decision);
		return MESHCTL_USAGE;
	}
	char *root = usage_root(ctx);
	if (prune_before) {
		int rc = prune(ctx, root, prune_before);
		free(root);
		return rc;
	}
	/* the default window: 30 whole days, today the last of them */
	q.until_ns = floor_day(now_ns()) + DAY_NS;
	if (until && parse_time_arg(until, true, &q.until_ns)) {
		meshctl_fail(ctx, "usage", "--until %s: not a day (YYYY-MM-DD) or an RFC 3339 time", until);
		free(root);
		return MESHCTL_USAGE;
	}
	q.since_ns = q.until_ns - 30 * DAY_NS;
	if (since && parse_time_arg(since, false, &q.since_ns)) {
		meshctl_fail(ctx, "usage", "--since %s: not a day (YYYY-MM-DD) or an RFC 3339 time", since);
		free(root);
		return MESHCTL_USAGE;
	}
	if (q.since_ns >= q.until_ns) {
		meshctl_fail(ctx, "usage", "--since must come before --until");
		free(root);
		return MESHCTL_USAGE;
	}
	/* owners see their domains' usage, governance all of it, everyone
	 * else their own reads */
	struct scope *sc = NULL;
	scope_open(ctx->store, &ctx->caller, &sc, NULL);
	q.scope_domains = scope_domain_list(sc);
	q.scope_limited = !scope_governance(sc);
	q.scope_user = ctx->caller.user;
	struct usage_report *r;
	struct mesh_err err = {0};
	char *shipped = shipped_root(ctx);
	q.shipped_root = shipped;
	char sink[2048];                          /* ops: fleet usage in PostgreSQL */
	if (pgsink_store_setting(ctx->store, sink, sizeof sink) == 0)
		q.pg_conninfo = sink;
	int rc = usage_report_run(root, &q, &r, &err);
	scope_close(sc);
	free(root);
	free(shipped);
	if (rc) {
		meshctl_fail(ctx, "usage", "%s", err.msg);
		return meshctl_exit_for(rc);
	}
	return print_report(ctx, "usage", r, fmt);
}

int meshctl_cmd_consumers(const struct meshctl_ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {
		{"since", required_argument, NULL, 's'}, {"until", required_argument, NULL, 'U'},
		{"format", required_argument, NULL, 'f'}, {"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
	};
	enum usage_format fmt = ctx->json ? USAGE_FORMAT_JSON : USAGE_FORMAT_TABLE;
	const char *since = NULL, *until = NULL;
	optind = 0;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (c) {
		case 's': since = optarg; break;
		case 'U': until = optarg; break;
		case 'j': fmt = USAGE_FORMAT_JSON; break;
		case 'h':
			fputs(consumers_help, stdout);
			return MESHCTL_OK;
		case 'f':
			if (usage_format_parse(optarg, &fmt)) {
				meshctl_fail(ctx, "consumers", "--format %s: use table, csv or json", optarg);
				return MESHCTL_USAGE;
			}
			break;
		default:
			meshctl_fail(ctx, "consumers", "unknown or incomplete option %s (see meshctl consumers --help)",
				     argv[optind - 1]);
			return MESHCTL_USAGE;
		}
	}
	char path[512] = "";
	const char *domain = NULL, *product = NULL, *version = NULL;
	if (optind < argc)
		snprintf(path, sizeof path, "%s", argv[optind++]);
	if (optind < argc)
		version = argv[optind++];
	if (!path[0] || optind < argc || split_path(path, &domain, &product, &version) || !product || !version) {
		meshctl_fail(ctx, "consumers", "usage: meshctl consumers DOMAIN/PRODUCT VERSION [--since DATE]");
		return MESHCTL_USAGE;
	}
	int64_t until_ns = floor_day(now_ns()) + DAY_NS, since_ns;
	if (until && parse_time_arg(until, true, &until_ns)) {
		meshctl_fail(ctx, "consumers", "--until %s: not a day (YYYY-MM-DD) or an RFC 3339 time", until);
		return MESHCTL_USAGE;
	}
	since_ns = until_ns - 90 * DAY_NS;
	if (since && parse_time_arg(since, false, &since_ns)) {
		meshctl_fail(ctx, "consumers", "--since %s: not a day (YYYY-MM-DD) or an RFC 3339 time", since);
		return MESHCTL_USAGE;
	}
	if (since_ns >= until_ns) {
		meshctl_fail(ctx, "consumers", "--since must come before --until");
		return MESHCTL_USAGE;
	}
	struct scope *sc = NULL;
	scope_open(ctx->store, &ctx->caller, &sc, NULL);
	bool allowed = scope_administers(sc, domain);
	scope_close(sc);
	if (!allowed) {
		meshctl_fail(ctx, "consumers", "%s is not an owner of domain %s (consumers are for its owners "
			     "and governance)", ctx->caller.user, domain);
		return MESHCTL_DENIED;
	}
	char *root = usage_root(ctx);
	struct usage_report *r;
	struct mesh_err err = {0};
	char *shipped = shipped_root(ctx);
	int rc = usage_consumers_run(root, shipped, domain, product, version, since_ns, until_ns, &r, &err);
	free(root);
	free(shipped);
	if (rc) {
		meshctl_fail(ctx, "consumers", "%s", err.msg);
		return meshctl_exit_for(rc);
	}
	return print_report(ctx, "consumers", r, fmt);
}

int meshctl_usage_status(const struct meshctl_ctx *ctx, FILE *out)
{
	char *root = usage_root(ctx);
	struct usage_host_status *hosts;
	size_t n;
	struct mesh_err err = {0};
	int64_t now = now_ns();
	int rc = usage_status_read(root, now, &hosts, &n, &err);
	free(root);
	if (rc) {
		meshctl_fail(ctx, "status", "%s", err.msg);
		return meshctl_exit_for(rc);
	}
	/* the PostgreSQL forwarder's state (its errors name the database
	 * server) is for the people who run the mesh: governance and owners */
	struct scope *sc = NULL;
	scope_open(ctx->store, &ctx->caller, &sc, NULL);
	const char *owned = scope_domain_list(sc);
	bool operator = scope_governance(sc) || (owned && strcmp(owned, ","));
	scope_close(sc);
	for (size_t i = 0; i < n && !operator; i++)
		hosts[i].sink = false;
	char *text = usage_status_format(hosts, n, now, ctx->json);
	fputs(text, out);
	free(text);
	free(hosts);
	return MESHCTL_OK;
}
