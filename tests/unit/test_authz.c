/* Unit tests for the store's locked-down layout and the authorization
 * decisions the mesh service relies on: every check is made on the caller
 * identity given (never on the process's own credentials), governance-group
 * members pass, a caller with more groups than an identity holds is denied,
 * a domain whose domain.yaml does not load is denied on its own. */
#include "check.h"
#include "governance.h"
#include "identity.h"
#include "mesh_util.h"
#include "policy.h"
#include "publish.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char store[256];

/* mesh.yaml naming group "root" (gid 0 exists on every host) as governance */
static const char mesh_yaml[] =
	"apiVersion: meshfs/v1\nkind: MeshPolicy\ngovernance:\n  group: root\n";

static struct identity someone(uid_t uid, const char *name, const gid_t *groups, int n)
{
	struct identity id;
	identity_from_ids(&id, uid, 4242, groups, n);
	snprintf(id.user, sizeof id.user, "%s", name);
	return id;
}

static void test_layout(void)
{
	struct stat st;
	CHECK(stat(store, &st) == 0 && (st.st_mode & 0777) == 0700);
	char path[512];
	snprintf(path, sizeof path, "%s/mesh.yaml", store);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
	char *report = NULL;
	struct mesh_err err = {0};
	CHECK(store_audit(store, &report, &err) == 0 && report == NULL);
	/* a group-readable file and a symlink are problems; lock-down fixes both */
	CHECK(chmod(path, 0640) == 0);
	snprintf(path, sizeof path, "%s/index/planted", store);
	CHECK(symlink("/etc/passwd", path) == 0);
	CHECK(store_audit(store, &report, &err) == 2);
	CHECK(report && strstr(report, "mesh.yaml: mode 0640") && strstr(report, "symbolic link") &&
	      strstr(report, "doctor --fix"));
	free(report);
	size_t fixed = 0;
	CHECK(store_lock_down(store, getuid(), getgid(), &fixed, &err) == 0 && fixed == 2);
	CHECK(store_audit(store, NULL, &err) == 0);
	CHECK(access("/etc/passwd", R_OK) == 0);   /* the link was removed, not its target */
	/* the service's private spool stands in for a client's links and FIFOs
	 * with placeholders: no problem there (a crash mid-publish must not
	 * keep the daemon from starting) */
	snprintf(path, sizeof path, "%s/.incoming", store);
	CHECK(mkdir(path, 0700) == 0);
	snprintf(path, sizeof path, "%s/.incoming/42-1", store);
	CHECK(mkdir(path, 0700) == 0);
	snprintf(path, sizeof path, "%s/.incoming/42-1/link", store);
	CHECK(symlink("(a symbolic link)", path) == 0);
	snprintf(path, sizeof path, "%s/.incoming/42-1/fifo", store);
	CHECK(mkfifo(path, 0600) == 0);
	CHECK(store_audit(store, NULL, &err) == 0);
	CHECK(chmod(path, 0644) == 0);             /* modes still count there */
	CHECK(store_audit(store, NULL, &err) == 1);
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf %s/.incoming", store);
	CHECK(system(cmd) == 0);
}

static void test_publisher_checks(void)
{
	struct mesh_err err = {0};
	char *owners[] = {"user:nobody"};
	CHECK(gov_create_domain(store, "sales", owners, 1, &err) == 0);
	char path[512];
	struct stat st;
	snprintf(path, sizeof path, "%s/domains/sales", store);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0700 && st.st_uid == geteuid());
	snprintf(path, sizeof path, "%s/domains/sales/domain.yaml", store);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);

	gid_t gov[] = {0};
	struct identity member = someone(4242, "govmember", gov, 1);
	struct identity owner = someone(65534, "nobody", NULL, 0);
	struct identity other = someone(4243, "mallory", NULL, 0);
	CHECK(meshfs_check_publisher(store, "sales", "grant", &member, &err) == 0);
	CHECK(meshfs_check_publisher(store, "sales", "publish", &owner, &err) == 0);
	mesh_err_clear(&err);
	CHECK(meshfs_check_publisher(store, "sales", "approve", &other, &err) == -EACCES);
	CHECK(strstr(err.msg, "mallory is not an owner of domain sales") && strstr(err.msg, "user:nobody") &&
	      strstr(err.msg, "group root"));
	mesh_err_clear(&err);
	CHECK(meshfs_check_publisher(store, "nosuch", "publish", &member, &err) == -ENOENT);

	struct mesh_policy *mp = NULL;
	CHECK(gov_load_mesh(store, &mp, &err) == 0);
	CHECK(gov_is_governance(mp, &member));
	CHECK(!gov_is_governance(mp, &other));
	gov_mesh_free(mp);
}

static void test_policy_fails_closed(void)
{
	struct mesh_err err = {0};
	char *owners[] = {"user:nobody"};
	CHECK(gov_create_domain(store, "customer", owners, 1, &err) == 0);
	struct policy *p = NULL;
	char *warnings = NULL;
	CHECK(policy_load(store, &p, &warnings, &err) == 0);
	free(warnings);
	struct identity owner = someone(65534, "nobody", NULL, 0);
	struct policy_decision dec;
	policy_decide(p, &owner, "sales", "orders", "1.0.0", NULL, 0, time(NULL), &dec);
	CHECK(dec.result == POLICY_ALLOW);
	/* more groups than an identity holds: a deny naming a dropped one
	 * would be missed, so nothing is allowed */
	gid_t many[300];
	for (int i = 0; i < 300; i++)
		many[i] = (gid_t)(20000 + i);
	struct identity crowded = someone(65534, "nobody", many, 300);
	CHECK(crowded.groups_truncated && crowded.n_groups == IDENTITY_MAX_GROUPS);
	policy_decide(p, &crowded, "sales", "orders", "1.0.0", NULL, 0, time(NULL), &dec);
	CHECK(dec.result == POLICY_DENY && strstr(dec.reason, "groups"));
	policy_free(p);

	/* customer's domain.yaml becomes a FIFO: loading neither blocks nor
	 * fails the mesh; customer is denied, sales decides as before */
	char path[512];
	snprintf(path, sizeof path, "%s/domains/customer/domain.yaml", store);
	CHECK(unlink(path) == 0 && mkfifo(path, 0600) == 0);
	warnings = NULL;
	CHECK(policy_load(store, &p, &warnings, &err) == 0);
	CHECK(warnings && strstr(warnings, "domains/customer/domain.yaml") && strstr(warnings, "fail closed"));
	free(warnings);
	policy_decide(p, &owner, "customer", "orders", "1.0.0", NULL, 0, time(NULL), &dec);
	CHECK(dec.result == POLICY_DENY && strstr(dec.reason, "does not load"));
	policy_decide(p, &owner, "sales", "orders", "1.0.0", NULL, 0, time(NULL), &dec);
	CHECK(dec.result == POLICY_ALLOW);
	gid_t gov[] = {0};
	struct identity member = someone(4242, "govmember", gov, 1);
	policy_decide(p, &member, "customer", "orders", "1.0.0", NULL, 0, time(NULL), &dec);
	CHECK(dec.result == POLICY_ALLOW);
	policy_free(p);
	unlink(path);
}

int main(void)
{
	snprintf(store, sizeof store, "/tmp/test_authz.%d", (int)getpid());
	struct mesh_err err = {0};
	CHECK(store_init(store, mesh_yaml, &err) == 0);
	test_layout();
	test_publisher_checks();
	test_policy_fails_closed();
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf %s", store);
	CHECK(system(cmd) == 0);
	return check_done("test_authz");
}
