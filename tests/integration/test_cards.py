"""Product cards and extended attributes (issue 11): README.md per product
and per version in the mount (a shipped README.md wins), restricted
neighbours never named, xattrs read with getfattr."""
import errno
import subprocess

import pytest

from conftest import make_release, run, wait_for

FULL = """\
slaProperties:
  - property: freshness
    value: 1
    unit: d
tags: [orders, revenue]
customProperties:
  - property: meshInputs
    value: ["crm/customers@^1", "hr/secret"]
"""


@pytest.fixture
def mesh(store, scratch):
    store.create_domain("sales", "group:mesh_sales")
    store.create_domain("crm", "group:mesh_sales")
    store.create_domain("hr", "user:mesh_erin")
    rel = scratch / "rel"
    store.publish(make_release(rel, "crm", "customers", "1.0.0"))
    store.publish(make_release(rel, "hr", "secret", "1.0.0",
                               extra="customProperties:\n  - property: meshRestricted\n    value: true\n"))
    store.publish(make_release(rel, "sales", "orders", "1.0.0", extra=FULL,
                               columns={"orders.csv": [("order_id", "integer", None), ("email", "string", "pii"),
                                                       ("amount", "number", None)]}))
    store.publish(make_release(rel, "sales", "orders", "1.1.0", extra=FULL,
                               columns={"orders.csv": [("order_id", "integer", None), ("email", "string", "pii"),
                                                       ("amount", "number", None)]}))
    store.ctl("deprecate", "sales/orders", "1.0.0", "--sunset", "2027-02-01", "--reason", "use 1.1", check=True)
    return store


def test_product_and_version_cards(mesh, mounter):
    m = mounter(mesh)
    card = run(["cat", m / "sales/orders/README.md"], user="mesh_dave", check=True).stdout
    assert card.startswith("# orders\n\n> Test product orders of domain sales")
    for piece in ["| Status | active (latest: 1.1.0) |", "| Owners | user:mesh_bob, group:mesh_sales |",
                  "| Support | #sales-data |", "| SLA | freshness 1d |", "| Tags | orders, revenue |",
                  "| 1.0.0 | deprecated |", "| 2027-02-01 | use 1.1 |",
                  "| email | string | pii (no access for you) |",
                  "`crm/customers@^1 = 1.0.0`", "1 input(s) not visible to every reader",
                  "pd.read_csv(\"/mesh/sales/orders/latest/orders.csv\")",
                  "read_csv_auto('/mesh/sales/orders/[0-9]*/orders.csv'",
                  "meshctl request sales/orders --reason"]:
        assert piece in card, (piece, card)
    assert "hr/secret" not in card                      # a restricted input is never named
    v = run(["cat", m / "sales/orders/1.0.0/README.md"], user="mesh_dave", check=True).stdout
    assert "| Version | 1.0.0 |" in v and "| Status | deprecated, sunset 2027-02-01 (use 1.1) |" in v
    assert "## Quality of 1.0.0 (checked at publish)" in v and "| passed |" in v
    assert "SELECT * FROM '/mesh/sales/orders/1.0.0/orders.csv' LIMIT 10;" in v
    assert "README.md" in run(["ls", m / "sales/orders/1.1.0"], user="mesh_dave", check=True).stdout.split()
    # a restricted product's cards are hidden with it
    assert run(["cat", m / "hr/secret/README.md"], user="mesh_dave").returncode != 0
    assert run(["cat", m / "hr/secret/1.0.0/README.md"], user="mesh_erin").returncode == 0


def test_shipped_readme_wins_for_its_version(mesh, scratch, mounter):
    d = make_release(scratch / "rel2", "sales", "orders", "1.2.0")
    (d / "README.md").write_text("# Our own words\n")
    mesh.publish(d)
    m = mounter(mesh)
    assert run(["cat", m / "sales/orders/1.2.0/README.md"], check=True).stdout == "# Our own words\n"
    assert run(["cat", m / "sales/orders/1.1.0/README.md"], check=True).stdout.startswith("# orders")
    assert "(latest: 1.2.0)" in run(["cat", m / "sales/orders/README.md"], check=True).stdout


def getfattr(path, user="mesh_dave"):
    r = run(["getfattr", "-d", "-m", "user.mesh", "--absolute-names", path], user=user, check=True)
    out = {}
    for line in r.stdout.splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            out[k] = v.strip('"')
    return out


def test_xattrs(mesh, mounter):
    m = mounter(mesh)
    p = getfattr(m / "sales/orders")
    cid = p.pop("user.mesh.contract_id")
    assert len(cid) == 36 and cid.count("-") == 4
    assert p == {"user.mesh.domain": "sales", "user.mesh.product": "orders", "user.mesh.status": "active",
                 "user.mesh.owner": "user:mesh_bob,group:mesh_sales"}     # of the latest, 1.1.0: no sunset
    v = getfattr(m / "sales/orders/1.0.0")
    assert v["user.mesh.version"] == "1.0.0" and v["user.mesh.status"] == "deprecated"
    assert v["user.mesh.published_at"].endswith("Z")
    assert v["user.mesh.sunset"] == "2027-02-01" and v["user.mesh.reason"] == "use 1.1"
    assert v["user.mesh.owner"] == "user:mesh_bob,group:mesh_sales"
    assert len(v["user.mesh.contract_id"]) == 36
    assert "user.mesh.sunset" not in getfattr(m / "sales/orders/1.1.0")
    # getxattr answers exactly what listxattr names, on every kind of node
    for path in ["sales", "sales/orders", "sales/orders/1.0.0", "sales/orders/1.1.0/orders.csv",
                 "sales/orders/1.1.0/contract.yaml", "sales/orders/README.md"]:
        for user in ("mesh_dave", "mesh_bob"):
            listed = run(["getfattr", "--absolute-names", "-m", "-", m / path], user=user).stdout
            names = {l for l in listed.splitlines() if l.startswith("user.")}
            for name in names:
                assert run(["getfattr", "--absolute-names", "-n", name, m / path], user=user).returncode == 0, \
                    (path, user, name)
            for name in {"user.mesh.sha256", "user.mesh.owner", "user.mesh.sunset", "user.mesh.view"} - names:
                assert run(["getfattr", "--absolute-names", "-n", name, m / path], user=user).returncode != 0, \
                    (path, user, name)
    f = getfattr(m / "sales/orders/1.1.0/orders.csv")
    # the clear file's hash only to readers who get it clear (it would
    # confirm guesses of the masked values): not to mesh_dave, to an owner
    assert f["user.mesh.classification"] == "email=pii" and "user.mesh.sha256" not in f
    f = getfattr(m / "sales/orders/1.1.0/orders.csv", user="mesh_bob")
    assert len(f["user.mesh.sha256"]) == 64
    r = run(["setfattr", "-n", "user.mesh.status", "-v", "active", m / "sales/orders/1.0.0"], user="mesh_bob")
    assert r.returncode != 0                             # read-only


def set_pii_hash(store):
    path = store.path / "mesh.yaml"
    text = path.read_text()
    rule = "  - classification: pii\n    unmaskedFor: [group:mesh-pii, owners]\n"
    assert rule in text
    path.write_text(text.replace(rule, rule + "    function: hash\n"))


def test_cards_say_what_each_reader_sees(mesh, mounter):
    """A masked reader (mesh_alice), a cleared one (mesh_carol) and a denied
    one (mesh_dave) read the same card paths through one mount, alternately
    and many times: each always gets their own card (its own inode), never
    another's from the page cache."""
    set_pii_hash(mesh)
    mesh.ctl("grant", "sales", "group:mesh_analysts", "--reason", "analytics", check=True)
    m = mounter(mesh)
    product, version = m / "sales/orders/README.md", m / "sales/orders/1.1.0/README.md"
    want = {
        "mesh_alice": ["| email | string | pii (masked for you: hash) |",
                       "You may read this product, with masked columns",
                       "| orders.csv | a masked view: email hash |"],
        "mesh_carol": ["| email | string | pii (clear for you) |",
                       "You may read this product in clear", "| orders.csv | clear |"],
        "mesh_dave": ["| email | string | pii (no access for you) |",
                      "You may not read the data of `sales/orders`",
                      'meshctl request sales/orders --reason "what you need it for"'],
    }
    never = {"mesh_alice": ["clear for you", "no access for you", "You may not read"],
             "mesh_carol": ["masked for you", "no access for you", "You may not read", "a masked view"],
             "mesh_dave": ["clear for you", "masked for you", "You may read this product"]}
    seen_ino = {}
    for round_ in range(12):
        for user in ("mesh_alice", "mesh_carol", "mesh_dave"):
            for path in (product, version):
                r = run(["sh", "-c", 'stat -c "%i %s" "$1"; cat "$1"', "sh", path], user=user, check=True)
                head, _, card = r.stdout.partition("\n")
                ino, size = map(int, head.split())
                assert len(card.encode()) == size, (user, path, size)
                for piece in want[user]:
                    assert piece in card, (round_, user, path, piece, card)
                for piece in never[user]:
                    assert piece not in card, (round_, user, path, piece, card)
                assert "\x1e" not in card and "\x1f" not in card      # no marker is ever served
                seen_ino.setdefault((user, str(path)), set()).add(ino)
    for path in (product, version):
        inos = [seen_ino[(u, str(path))] for u in ("mesh_alice", "mesh_carol", "mesh_dave")]
        assert all(len(i) == 1 for i in inos), inos           # one inode per reader's card
        assert len(set.union(*inos)) == 3, inos               # and no two readers share one
    # the version card names the version's own files
    assert "| File of 1.1.0 | What you read |" in run(["cat", version], user="mesh_alice", check=True).stdout
    # an owner reads clear; the product's domain owners are cleared by "owners"
    assert "pii (clear for you)" in run(["cat", product], user="mesh_bob", check=True).stdout


def test_show_and_describe_carry_the_readers_masking(mesh):
    set_pii_hash(mesh)
    mesh.ctl("grant", "sales", "group:mesh_analysts", "--reason", "analytics", check=True)
    alice = mesh.ctl("show", "sales/orders", user="mesh_alice", check=True).stdout
    assert "## What you see" in alice and "| orders.csv | a masked view: email hash |" in alice
    carol = mesh.ctl("show", "sales/orders", "--json", user="mesh_carol", check=True).stdout
    import json
    access = json.loads(carol)["access"]
    assert access["decision"] == "allow" and access["files"] == [
        {"file": "orders.csv", "decision": "allow", "masked": []}]
    a = json.loads(mesh.ctl("show", "sales/orders", "--json", user="mesh_alice", check=True).stdout)["access"]
    assert a["decision"] == "mask" and a["files"][0]["masked"] == [
        {"column": "email", "classification": "pii", "function": "hash"}]
    d = json.loads(mesh.ctl("show", "sales/orders", "--json", user="mesh_dave", check=True).stdout)["access"]
    assert d["decision"] == "deny" and d["request"].startswith("meshctl request sales/orders")


def test_xattr_values_escaped_and_bounded(mesh, mounter):
    reason = "line one\nline two \x1b[31mred\\ " + "é" * 1500
    mesh.ctl("deprecate", "sales/orders", "1.1.0", "--reason", reason, check=True)
    m = mounter(mesh)
    raw = subprocess.run(["getfattr", "--absolute-names", "--only-values", "-n", "user.mesh.reason",
                          m / "sales/orders/1.1.0"], capture_output=True, check=True).stdout
    assert raw.startswith(b"line one\\x0aline two \\x1b[31mred\\x5c \xc3\xa9"), raw[:60]
    assert b"\n" not in raw and b"\x1b" not in raw
    assert len(raw) <= 1024 and raw.endswith(b"...")
    raw.decode("utf-8")                                   # cut at a character, never inside one
    # the product's are its latest's: 1.1.0 is deprecated, so latest is still 1.1.0
    assert subprocess.run(["getfattr", "--absolute-names", "--only-values", "-n", "user.mesh.reason",
                           m / "sales/orders"], capture_output=True).stdout == raw


XATTR_PROBE = """
import errno, os, sys
for path in sys.argv[1:]:
    for name in ("security.selinux", "security.capability", "system.posix_acl_access",
                 "system.posix_acl_default"):
        try:
            os.getxattr(path, name, follow_symlinks=False)
            print(path, name, "answered")
        except OSError as e:
            print(path, name, errno.errorcode[e.errno])
    try:
        print(path, "user.mesh.nothing", os.getxattr(path, "user.mesh.nothing"))
    except OSError as e:
        print(path, "user.mesh.nothing", errno.errorcode[e.errno])
"""


def test_foreign_xattr_namespaces_unsupported_for_everyone(mesh, mounter):
    """Names outside user.* (SELinux labels, capabilities, POSIX ACLs) are
    "not supported" on every node and for every caller, as on a file system
    without them: `ls -l` then stops asking after the first file instead of
    three round trips per entry.  user.mesh.* answers as before, per caller."""
    m = mounter(mesh)
    paths = [m / p for p in ("sales", "sales/orders", "sales/orders/latest", "sales/orders/README.md",
                             "sales/orders/1.1.0", "sales/orders/1.1.0/orders.csv",
                             "sales/orders/1.1.0/README.md", "sales/orders/1.1.0/contract.yaml")]
    for user in ("mesh_dave", "mesh_bob", "mesh_alice", None):
        out = run(["/usr/bin/python3", "-c", XATTR_PROBE] + [str(p) for p in paths], user=user, check=True).stdout
        lines = out.splitlines()
        assert len(lines) == 5 * len(paths), out
        for line in lines:
            path, name, answer = line.split(" ", 2)
            if name == "user.mesh.nothing":
                assert answer == "ENODATA", (user, line)      # the user namespace exists
            else:
                assert answer == errno.errorcode[errno.EOPNOTSUPP], (user, line)     # ENOTSUP
        # ls -l lists without ACL or label marks, and without errors
        r = run(["ls", "-lR", m / "sales"], user=user, check=True)
        assert r.stderr == "", r.stderr
        modes = [l.split()[0] for l in r.stdout.splitlines() if l[:1] in "-dl" and len(l.split()) > 8]
        assert modes and all(len(mode) == 10 for mode in modes), modes     # no "+" or "."
    # the namespaces that exist still answer, per caller
    assert getfattr(m / "sales/orders/1.1.0/orders.csv", user="mesh_bob")["user.mesh.sha256"]
    assert "user.mesh.sha256" not in getfattr(m / "sales/orders/1.1.0/orders.csv", user="mesh_dave")


def test_card_attributes_follow_each_reader(mesh, mounter):
    """The kernel keeps a card inode's attributes (its number names its
    bytes) but asks for the entry at every walk: readers who alternate
    stat and read the same card path each get their own size, also after
    a grant changes what one of them sees."""
    m = mounter(mesh)
    card = m / "sales/orders/README.md"
    probe = 'stat -c "%i %s" "$1"; cat "$1" | wc -c'

    def seen(user):
        ino, size, length = run(["sh", "-c", probe, "sh", card], user=user, check=True).stdout.split()
        assert int(size) == int(length), (user, size, length)
        return ino
    before = {u: seen(u) for u in ("mesh_alice", "mesh_dave", "mesh_bob")}
    assert before["mesh_bob"] != before["mesh_dave"], before          # owner and outsider
    for _ in range(3):
        assert {u: seen(u) for u in ("mesh_dave", "mesh_bob", "mesh_alice")} == before
    mesh.ctl("grant", "sales", "group:mesh_analysts", "--reason", "analytics", check=True)
    assert wait_for(lambda: seen("mesh_alice") != before["mesh_alice"], timeout=10)
    assert seen("mesh_dave") == before["mesh_dave"]
    assert "pii (masked for you" in run(["cat", card], user="mesh_alice", check=True).stdout
