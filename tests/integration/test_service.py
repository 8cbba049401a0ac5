"""The mesh service (issue 8): ordinary users reach the store only through
the control socket, which knows them from the kernel; every answer is
filtered for the caller exactly as the mount filters what it shows.

Roles: mesh_bob and mesh_erin own sales (group mesh_sales), mesh_erin owns
customer, mesh_alice is a granted consumer (group grant on sales/orders, a
user grant on customer), mesh_dave is an outsider, mesh_gina is a member
of the governance group (not root)."""
import json
import os
import pathlib
import signal
import socket
import subprocess
import time

import pytest

from conftest import MESHCTL, MESHFS, make_release, run, service_alive, socket_path, wait_for

ORDERS = "order_id,email,amount\n1,a@example.com,10.5\n2,b@example.com,3\n"
RESTRICTED = "customProperties:\n  - property: meshRestricted\n    value: true\n"


@pytest.fixture
def mesh(store, scratch):
    store.create_domain("sales", "group:mesh_sales")
    store.create_domain("customer", "user:mesh_erin")
    rel = scratch / "rel"
    store.publish(make_release(rel, "sales", "orders", "1.0.0", {"orders.csv": ORDERS}))
    store.publish(make_release(rel, "sales", "secret", "1.0.0", {"orders.csv": ORDERS}, extra=RESTRICTED))
    store.publish(make_release(rel, "customer", "profiles", "1.0.0", {"p.csv": "id,tier\n1,gold\n"}))
    store.ctl("grant", "sales/orders", "group:mesh_analysts", "--reason", "analytics", check=True)
    store.ctl("grant", "customer", "user:mesh_alice", "--reason", "churn study", check=True)
    return store


def products(text):
    return sorted(line for line in text.splitlines() if line and not line.startswith(" "))


def test_list_and_search_hide_restricted_products(mesh):
    everything = ["customer/profiles", "sales/orders", "sales/secret"]
    visible = {"mesh_bob": everything, "mesh_erin": everything, "mesh_gina": everything,
               "mesh_alice": ["customer/profiles", "sales/orders"],
               "mesh_carol": ["customer/profiles", "sales/orders"],
               "mesh_dave": ["customer/profiles", "sales/orders"]}
    for user, expected in visible.items():
        r = mesh.ctl("list", user=user, check=True)
        assert products(r.stdout) == expected, (user, r.stdout)
        r = mesh.ctl("list", "sales/secret", user=user)
        if "sales/secret" in expected:
            assert r.returncode == 0 and "1.0.0" in r.stdout
        else:
            assert r.returncode == 1 and "no such domain or product" in r.stderr and "1.0.0" not in r.stdout
        r = mesh.ctl("access", "sales/secret", user=user)
        assert (r.returncode == 0) == ("sales/secret" in expected), (user, r.stdout, r.stderr)
        r = mesh.ctl("diff", "sales/secret", "1.0.0", "1.0.0", user=user)
        assert (r.returncode == 0) == ("sales/secret" in expected), (user, r.stdout, r.stderr)
        r = mesh.ctl("status", user=user, check=True)
        assert f"products     {len(expected)}" in r.stdout, (user, r.stdout)
        r = mesh.ctl("search", "test", "product", user=user)
        found = sorted({line.split()[0] for line in r.stdout.splitlines() if not line.startswith(" ")})
        assert found == expected, (user, r.stdout, r.stderr)


def test_grants_requests_per_role(mesh):
    mesh.ctl("request", "sales/secret", "--reason", "audit", user="mesh_dave", check=True)
    mesh.ctl("request", "customer/profiles", "--reason", "more tiers", user="mesh_carol", check=True)

    def grant_subjects(user):
        r = mesh.ctl("grants", user=user, check=True)
        return sorted(line.split()[1] for line in r.stdout.splitlines()[1:])

    assert grant_subjects("mesh_gina") == ["group:mesh_analysts", "user:mesh_alice"]
    assert grant_subjects("mesh_bob") == ["group:mesh_analysts"]          # owns sales only
    assert grant_subjects("mesh_erin") == ["group:mesh_analysts", "user:mesh_alice"]
    assert grant_subjects("mesh_alice") == ["group:mesh_analysts", "user:mesh_alice"]  # both name her
    assert grant_subjects("mesh_dave") == []

    def requesters(user):
        r = mesh.ctl("requests", user=user, check=True)
        return sorted(line.split()[1] for line in r.stdout.splitlines()[1:])

    assert requesters("mesh_gina") == ["mesh_carol", "mesh_dave"]
    assert requesters("mesh_erin") == ["mesh_carol", "mesh_dave"]        # owns both domains
    assert requesters("mesh_bob") == ["mesh_dave"]
    assert requesters("mesh_dave") == ["mesh_dave"]                      # their own
    assert requesters("mesh_alice") == []
    # the requester is who the kernel says, not who the file's writer is
    r = mesh.ctl("requests", user="mesh_bob", check=True)
    assert "mesh_dave" in r.stdout and "root" not in r.stdout


def test_usage_per_role(mesh, mounter):
    m = mounter(mesh)
    for user in ("mesh_alice", "mesh_bob", "mesh_dave"):
        run(["cat", m / "sales/orders/1.0.0/orders.csv"], user=user)
    run(["cat", m / "customer/profiles/1.0.0/p.csv"], user="mesh_alice", check=True)
    m.stop()

    def consumers(user):
        r = mesh.ctl("usage", "--by", "consumer", "--format", "json", user=user, check=True)
        return sorted({row["user"] for row in json.loads(r.stdout)["rows"]})

    assert consumers("mesh_gina") == ["mesh_alice", "mesh_bob", "mesh_dave"]
    assert consumers("mesh_bob") == ["mesh_alice", "mesh_bob", "mesh_dave"]     # sales readers
    assert consumers("mesh_alice") == ["mesh_alice"]
    assert consumers("mesh_dave") == ["mesh_dave"]
    r = mesh.ctl("usage", "--by", "product", "--format", "json", user="mesh_bob", check=True)
    assert {(row["domain"], row["product"]) for row in json.loads(r.stdout)["rows"]} == {("sales", "orders")}, r.stdout
    r = mesh.ctl("usage", "--denied", user="mesh_alice", check=True)
    assert "mesh_dave" not in r.stdout
    r = mesh.ctl("consumers", "sales/orders", "1.0.0", user="mesh_alice")
    assert r.returncode == 3 and "not an owner" in r.stderr
    r = mesh.ctl("usage", "--prune-before", "2020-01-01", user="mesh_bob")
    assert r.returncode == 3 and "governance" in r.stderr


def test_governance_group_member_administers(mesh):
    """A member of mesh.yaml's governance group (not root) creates domains,
    grants and approves; an outsider is refused each."""
    r = mesh.ctl("domain", "create", "hr", "--owner", "user:mesh_dave", user="mesh_gina")
    assert r.returncode == 0, r.stderr
    r = mesh.ctl("domain", "create", "ops", "--owner", "user:mesh_dave", user="mesh_dave")
    assert r.returncode == 3 and "governance" in r.stderr
    r = mesh.ctl("grant", "sales/orders", "user:mesh_dave", "--reason", "audit", user="mesh_gina")
    assert r.returncode == 0, r.stderr
    r = mesh.ctl("grant", "customer", "user:mesh_dave", "--reason", "self", user="mesh_dave")
    assert r.returncode == 3 and "not an owner" in r.stderr
    mesh.ctl("request", "customer/profiles", "--reason", "tiers", user="mesh_dave", check=True)
    r = mesh.ctl("approve", "1", user="mesh_dave")
    assert r.returncode == 3
    r = mesh.ctl("approve", "1", user="mesh_gina")
    assert r.returncode == 0, r.stderr
    r = mesh.ctl("grants", "customer", user="mesh_gina", check=True)
    assert "user:mesh_dave" in r.stdout
    log = (mesh.path / "domains/customer/access.log").read_text()
    assert '"user":"mesh_gina"' in log.replace(" ", "")


def test_publish_through_service_reads_only_what_the_caller_can(mesh, scratch):
    rel = make_release(scratch / "rel2", "sales", "orders", "1.1.0", {"orders.csv": ORDERS})
    subprocess.run(["chmod", "-R", "a+rX", str(scratch / "rel2")], check=True)
    (rel / "orders.csv").chmod(0o600)     # root's file: mesh_bob cannot read it
    r = mesh.ctl("publish", rel, user="mesh_bob")
    assert r.returncode == 3 and "orders.csv: Permission denied" in r.stderr, r.stderr
    assert not (mesh.path / "domains/sales/orders/1.1.0").exists()
    (rel / "orders.csv").chmod(0o644)
    r = mesh.ctl("publish", rel, user="mesh_bob")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "published sales/orders 1.1.0" in r.stdout
    # nothing of the private copy is left behind
    assert os.listdir(mesh.path / ".incoming") == []
    # an outsider's publish is refused by the caller's identity, not by file modes
    rel3 = make_release(scratch / "rel3", "sales", "orders", "1.2.0", {"orders.csv": ORDERS})
    subprocess.run(["chmod", "-R", "a+rX", str(scratch / "rel3")], check=True)
    r = mesh.ctl("publish", rel3, user="mesh_dave")
    assert r.returncode == 3 and "mesh_dave is not an owner of domain sales" in r.stderr


def test_without_service_the_error_says_how_to_start_one(store):
    assert not service_alive(store.path)
    r = run([MESHCTL, "--store", store.path, "list"], user="mesh_dave")
    assert r.returncode == 4
    assert "no mesh service runs for" in r.stderr and "meshfs" in r.stderr
    r = run([MESHCTL, "--store", store.path, "reindex"], user="mesh_dave")
    assert r.returncode == 3 and "root or as the store's owner" in r.stderr


def test_protocol_errors_and_identity_from_the_kernel(mesh):
    """A raw client: a bad request is refused with a message; a request
    cannot name its own user; captured output comes back in the answer."""
    mesh.ensure_service()
    path = str(socket_path(mesh.path))

    def call(payload, user=None):
        code = ("import json,socket,struct,sys\n"
                "s=socket.socket(socket.AF_UNIX);s.connect(sys.argv[1])\n"
                "b=sys.argv[2].encode();s.sendall(struct.pack('>I',len(b))+b)\n"
                "h=b''\nwhile len(h)<4:\n  h+=s.recv(4-len(h))\n"
                "n=struct.unpack('>I',h)[0];d=b''\nwhile len(d)<n:\n  d+=s.recv(n-len(d))\n"
                "print(d.decode())\n")
        r = run(["/usr/bin/python3", "-c", code, path, payload], user=user, check=True)
        return json.loads(r.stdout)

    a = call('{"meshfs": 1, "argv": ["list"], "user": "mesh_bob", "uid": 1}', user="mesh_dave")
    assert a["exit"] == 0 and "sales/secret" not in a["stdout"] and "sales/orders" in a["stdout"]
    a = call('{"meshfs": 2, "argv": ["list"]}', user="mesh_dave")
    assert a["exit"] == 2 and "protocol version" in a["error"]["message"]
    a = call('{"meshfs": 1, "argv": ["reindex"]}', user="mesh_dave")
    assert a["exit"] == 3 and "not served" in a["stderr"]
    a = call('not json', user="mesh_dave")
    assert a["exit"] == 2
    a = call('{"meshfs": 1, "argv": ["publish", "/root"]}', user="mesh_dave")
    assert a["exit"] != 0 and "must come from meshctl" in a["stderr"]


def test_json_everywhere_errors_included(mesh, mounter):
    """--json: every command answers one JSON document, errors too, with the
    documented exit code of its class."""
    def js(*args, user="mesh_bob", code=0):
        r = run([MESHCTL, "--store", mesh.path, "--json", *args], user=user)
        assert r.returncode == code, (args, r.returncode, r.stdout, r.stderr)
        return json.loads(r.stdout)

    mesh.ensure_service()
    doc = js("list")
    assert {p["product"] for p in doc["products"]} == {"orders", "secret", "profiles"}
    assert js("list", "sales/orders")["products"][0]["versions"][0]["latest"] is True
    assert js("status")["products"] == 3
    assert js("search", "test")[0]["domain"]
    assert js("grants")["grants"][0]["subject"] == "group:mesh_analysts"
    assert js("domain", "list")["domains"]
    assert js("domain", "show", "sales")["restricted"] == []
    assert js("domain", "owners", "sales")["owners"] == ["group:mesh_sales"]
    assert js("diff", "sales/orders", "1.0.0", "1.0.0")["breaking"] == 0
    assert js("request", "customer/profiles", "--reason", "x", user="mesh_dave")["request"] == "1"
    assert js("requests", user="mesh_dave")["requests"][0]["user"] == "mesh_dave"
    assert js("grant", "sales/orders", "user:mesh_dave", "--reason", "y")["ok"] is True
    assert js("revoke", "sales/orders", "user:mesh_dave")["revoked"] == "1"
    assert js("deprecate", "sales/orders", "1.0.0", "--reason", "old")["status"] == "deprecated"
    assert "rows" in js("usage")
    # errors: one document {"error": ...} with the exit code of the class
    e = js("list", "sales/nothing", code=1)["error"]
    assert e["class"] == "failed" and e["exit"] == 1 and "no such" in e["message"]
    e = js("frobnicate", code=2)["error"]
    assert e["class"] == "usage"
    e = js("grant", "customer", "user:mesh_dave", "--reason", "z", user="mesh_dave", code=3)["error"]
    assert e["class"] == "denied" and "not an owner" in e["message"]
    e = js("reindex", user="mesh_dave", code=3)["error"]
    assert e["class"] == "denied"
    r = run([MESHCTL, "--store", "/nonexistent/store", "--json", "list"], user="mesh_dave")
    assert r.returncode == 4 and json.loads(r.stdout)["error"]["class"] == "environment"


def test_meshctl_finds_the_service_from_the_mount_point(mesh, mounter):
    m = mounter(mesh)
    assert os.path.islink(socket_path(m.path, mountpoint=True))
    r = run([MESHCTL, "--store", m.path, "list"], user="mesh_dave")
    assert r.returncode == 0, r.stderr
    assert products(r.stdout) == ["customer/profiles", "sales/orders"]
    r = run([MESHCTL, "list"], user="mesh_dave", env={"MESH_STORE": str(m.path)})
    assert r.returncode == 0 and "sales/orders" in r.stdout
    m.stop()
    assert not os.path.lexists(socket_path(m.path, mountpoint=True))


def _spares(service_pid):
    """The service's spare workers: its children waiting with --serve-spare."""
    found = []
    for child in pathlib.Path(f"/proc/{service_pid}/task").glob("*/children"):
        for pid in child.read_text().split():
            try:
                cmd = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except FileNotFoundError:
                continue
            if b"--serve-spare" in cmd:
                found.append(int(pid))
    return found


def _one_spare(service_pid, timeout=10):
    """The pid of the one spare once it has stayed the same for 0.3 s (a
    spare serving a connection keeps its command line until it exits)."""
    seen = []

    def settled():
        now = _spares(service_pid)
        if len(now) != 1 or not seen or seen[-1][0] != now[0]:
            seen.append((now[0] if len(now) == 1 else None, time.time()))
            return False
        return time.time() - seen[-1][1] >= 0.3

    assert wait_for(settled, timeout), seen[-5:]
    return seen[-1][0]


def test_spare_worker_takes_requests_and_is_replaced(mesh):
    """One spare worker waits ahead of requests; each request is handed to
    it and a new one started; a dead spare does not fail a request; many
    requests at once are all answered; a stopped service leaves no spare."""
    assert not service_alive(mesh.path)
    svc = subprocess.Popen([str(MESHFS), "--service", str(mesh.path), "-f"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def ls(user):
        # not mesh.ctl: its check that a service runs is a connection too
        return run([MESHCTL, "--store", mesh.path, "list"], user=user, check=True).stdout

    try:
        assert wait_for(lambda: socket_path(mesh.path).exists(), 10)
        first = _one_spare(svc.pid)
        out = ls("mesh_dave")
        assert "sales/orders" in out and "sales/secret" not in out
        second = _one_spare(svc.pid)
        assert second != first        # the request went to the spare; a new one waits
        # a spare killed while it waits: the next request still gets an answer
        os.kill(second, signal.SIGKILL)
        assert "sales/orders" in ls("mesh_alice")
        third = _one_spare(svc.pid)
        assert third not in (first, second)
        # requests at once: one may have the spare, the others their own worker
        procs = [subprocess.Popen(["setpriv", "--reuid", "mesh_dave", "--regid", "mesh_dave", "--init-groups",
                                   str(MESHCTL), "--store", str(mesh.path), "--json", "list"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(8)]
        for p in procs:
            out, err = p.communicate(timeout=60)
            assert p.returncode == 0, err
            assert {x["product"] for x in json.loads(out)["products"]} == {"orders", "profiles"}
        spare = _one_spare(svc.pid)
    finally:
        svc.terminate()
        svc.wait(timeout=20)
    assert wait_for(lambda: not os.path.exists(f"/proc/{spare}") or
                    "Z" in pathlib.Path(f"/proc/{spare}/stat").read_text().split()[2], 10)
