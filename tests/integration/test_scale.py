"""Listing at scale (issue 13): `meshctl list` and `meshctl status` answer
from this host's index, filtered per caller exactly as a scan of the store
would, and are right immediately after a publish, deprecate or retire; the
index refresh after a change reads the store's change log (the products it
names), not every product, and a change nobody logged is still found by the
periodic walk of every product."""
import glob
import json
import os
import sqlite3
import time

import pytest

from conftest import make_release

ORDERS = "order_id,email,amount\n1,a@example.com,10.5\n2,b@example.com,3\n"
RESTRICTED = "customProperties:\n  - property: meshRestricted\n    value: true\n"


@pytest.fixture
def mesh(store, scratch):
    store.create_domain("sales", "group:mesh_sales")
    store.create_domain("hr", "user:mesh_erin")
    rel = scratch / "rel"
    for v in ("1.0.0", "1.1.0", "1.10.0", "2.0.0-rc.1"):
        store.publish(make_release(rel, "sales", "orders", v, {"orders.csv": ORDERS}))
    store.publish(make_release(rel, "sales", "secret", "1.0.0", {"orders.csv": ORDERS}, extra=RESTRICTED))
    store.publish(make_release(rel, "hr", "people", "1.0.0", {"p.csv": "id,tier\n1,gold\n"}))
    store.publish(make_release(rel, "hr", "people", "2.0.0", {"p.csv": "id,tier\n1,gold\n"}))
    store.ctl("deprecate", "hr/people", "2.0.0", "--reason", "old", check=True)
    store.ctl("retire", "sales/orders", "1.0.0", "--reason", "gone", check=True)
    store.ctl("grant", "sales/orders", "group:mesh_analysts", "--reason", "analytics", check=True)
    return store


def index_db(scratch):
    found = glob.glob(str(scratch / "state" / "*" / "index.db"))
    assert len(found) == 1, found
    return found[0]


def meta(scratch):
    with sqlite3.connect(index_db(scratch)) as db:
        return dict(db.execute("SELECT key, value FROM meta"))


def scan(store, scratch, *args):
    """The same command answered from a scan of the store: this host's
    index cannot be written (a state directory under a file)."""
    blocker = scratch / "not-a-dir"
    blocker.write_text("")
    return store.ctl("--state-dir", blocker / "state", *args, check=True)


def without_times(doc):
    for p in doc["products"]:
        for v in p.get("versions", []):
            v.pop("published_at", None)
    return doc


@pytest.mark.parametrize("args", [(), ("sales",), ("sales/orders",), ("hr/people",), ("sales/orders/latest",),
                                  ("sales/orders/1.10.0",)])
def test_list_from_index_matches_the_scan(mesh, scratch, args):
    # same products, versions (SemVer order, retired left out), status, latest marker
    listed = mesh.ctl("--json", "list", *args, check=True)
    scanned = scan(mesh, scratch, "--json", "list", *args)
    assert without_times(json.loads(listed.stdout)) == without_times(json.loads(scanned.stdout))
    text = mesh.ctl("list", *args, check=True).stdout
    assert [line.split()[:2] for line in text.splitlines()] == \
        [line.split()[:2] for line in scan(mesh, scratch, "list", *args).stdout.splitlines()]
    if not args:
        assert "1.0.0" not in text.split("sales/orders")[1].split("sales/secret")[0]   # retired
        assert text.index("1.1.0") < text.index("1.10.0") < text.index("2.0.0-rc.1")
        assert "1.10.0     active" in text and "<- latest" in text.split("1.10.0")[1].splitlines()[0]
        assert "2.0.0      deprecated" in text


@pytest.mark.parametrize("user,visible", [
    ("mesh_dave", {"sales/orders", "hr/people"}),                   # outsider
    ("mesh_bob", {"sales/orders", "sales/secret", "hr/people"}),    # owner of sales
    ("mesh_alice", {"sales/orders", "hr/people"}),                  # granted consumer of sales/orders
    ("root", {"sales/orders", "sales/secret", "hr/people"}),
])
def test_list_and_status_are_filtered_per_caller(mesh, user, visible):
    r = mesh.ctl("--json", "list", user=user, check=True)
    assert {f"{p['domain']}/{p['product']}" for p in json.loads(r.stdout)["products"]} == visible
    st = json.loads(mesh.ctl("--json", "status", user=user, check=True).stdout)
    assert st["products"] == len(visible) and st["domains"] == 2
    versions = {"sales/orders": 3, "sales/secret": 1, "hr/people": 2}
    assert st["versions"] == sum(versions[p] for p in visible) and st["deprecated"] == 1
    hidden = mesh.ctl("list", "sales/secret", user=user)
    assert (hidden.returncode == 0) == ("sales/secret" in visible)
    if "sales/secret" not in visible:
        assert "no such domain or product" in hidden.stderr and hidden.stdout == ""


def test_list_is_current_right_after_each_change(mesh, scratch):
    rel = scratch / "rel2"
    for user in ("root", "mesh_bob"):
        v = "3.0.0" if user == "root" else "3.1.0"
        mesh.publish(make_release(rel, "sales", "orders", v, {"orders.csv": ORDERS}), user=user)
        assert f"{v}      active" in mesh.ctl("list", "sales/orders", user=user, check=True).stdout
        mesh.ctl("deprecate", "sales/orders", v, "--reason", "x", user=user, check=True)
        assert f"{v}      deprecated" in mesh.ctl("list", "sales/orders", user=user, check=True).stdout
        mesh.ctl("retire", "sales/orders", v, "--reason", "x", user=user, check=True)
        assert v not in mesh.ctl("list", "sales/orders", user=user, check=True).stdout
    mesh.publish(make_release(rel, "sales", "fresh", "1.0.0", {"orders.csv": ORDERS}))
    assert json.loads(mesh.ctl("--json", "status", check=True).stdout)["products"] == 4
    assert "sales/fresh" in mesh.ctl("list", "sales", user="mesh_dave", check=True).stdout


def settle(mesh):
    """A first list builds the index; one more, past the settle window
    (3 s), walks the store once and takes its position in the change log."""
    mesh.ctl("list", check=True)
    time.sleep(3.2)
    mesh.ctl("list", check=True)


def test_refresh_reads_the_change_log_not_every_product(mesh, scratch):
    settle(mesh)
    before = meta(scratch)
    assert before["changes_cursor"]
    log = sorted(glob.glob(str(mesh.path / "changes" / "*" / "*" / "[0-9]*")))
    assert log, "publish and lifecycle changes are logged in the store"
    for entry in log:
        st = os.stat(entry)
        assert st.st_mode & 0o077 == 0 and st.st_uid == 0
    mesh.publish(make_release(scratch / "rel3", "hr", "payroll", "1.0.0", {"p.csv": "id\n1\n"}))
    assert "hr/payroll" in mesh.ctl("list", check=True).stdout
    after = meta(scratch)
    # the refresh after the publish took the change log's word: no walk of
    # every product (that one is hourly), and the position moved
    assert after["full_walk_ns"] == before["full_walk_ns"]
    time.sleep(3.2)                    # settled: the position moves
    mesh.ctl("list", check=True)
    assert meta(scratch)["changes_cursor"] != before["changes_cursor"]
    assert meta(scratch)["full_walk_ns"] == before["full_walk_ns"]
    with open(sorted(glob.glob(str(mesh.path / "changes" / "*" / "*" / "[0-9]*")))[-1]) as f:
        assert f.read() == "hr/payroll\n"


def test_an_unlogged_change_is_found_by_the_periodic_walk(mesh, scratch):
    import shutil
    settle(mesh)
    # a release directory copied by hand (as an older meshfs or an admin
    # would), generation moved, nothing logged
    src = mesh.path / "domains/hr/people/1.0.0"
    dst = mesh.path / "domains/hr/people/1.5.0"
    shutil.copytree(src, dst)
    man = json.loads((dst / ".manifest.json").read_text())
    man["version"] = "1.5.0"
    os.chmod(dst, 0o700)
    os.chmod(dst / ".manifest.json", 0o600)
    (dst / ".manifest.json").write_text(json.dumps(man))
    with open(mesh.path / "generation", "r+") as f:
        f.write("999 hand edit".ljust(63) + "\n")
    assert "1.5.0" not in mesh.ctl("list", "hr/people", check=True).stdout
    with sqlite3.connect(index_db(scratch)) as db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'full_walk_ns'", (str((time.time() - 3601) * 1e9),))
    with open(mesh.path / "generation", "r+") as f:
        f.write("1000 hand edit".ljust(63) + "\n")
    assert "1.5.0" in mesh.ctl("list", "hr/people", check=True).stdout
