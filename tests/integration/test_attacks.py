"""Attacks on the store (issue 8): ordinary users against a store laid out
by `meshctl init` and a running daemon.  The store belongs to its service
account; the mount is the only way in.  Every attack here worked before
the store was locked down (see the issue)."""
import hashlib
import json
import os
import subprocess
import threading
import time

import pytest

from conftest import MESHCTL, MESHFS, make_release, run, wait_for

ORDERS = ("order_id,email,country,amount\n"
          "1,alice.smith@example.com,DE,10.50\n"
          "2,bob@example.org,FR,3.00\n")
COLUMNS = {"orders.csv": [("order_id", "integer", None), ("email", "string", "pii"),
                          ("country", "string", None), ("amount", "number", None)]}
ATTACKERS = ("mesh_alice", "mesh_bob", "mesh_dave")

# Run as an attacker: try to read, write and list every path given on stdin;
# print each that worked.  O_NONBLOCK: a FIFO never hangs the probe itself.
PROBE = r"""
import os, sys
for p in sys.stdin.read().split("\0"):
    if not p:
        continue
    for flags, what in ((os.O_RDONLY, "read"), (os.O_WRONLY, "write")):
        try:
            fd = os.open(p, flags | os.O_NONBLOCK | os.O_NOFOLLOW)
            os.close(fd)
            print(what, p)
        except OSError:
            pass
    try:
        os.listdir(p)
        print("list", p)
    except OSError:
        pass
    try:
        os.stat(p)
        print("stat", p)
    except OSError:
        pass
"""


@pytest.fixture
def mesh(store, scratch):
    """sales (owners: group mesh_sales) and customer (user mesh_erin), one
    release each, a grant, a request, the index, and usage recorded."""
    store.create_domain("sales", "group:mesh_sales")
    store.create_domain("customer", "user:mesh_erin")
    rel = scratch / "rel"
    store.publish(make_release(rel, "sales", "orders", "1.0.0", {"orders.csv": ORDERS}, columns=COLUMNS))
    store.publish(make_release(rel, "customer", "orders", "1.0.0", {"orders.csv": ORDERS}, columns=COLUMNS))
    store.ctl("grant", "sales/orders", "user:mesh_dave", "--reason", "attack tests", check=True)
    store.ctl("grant", "customer/orders", "user:mesh_dave", "--reason", "attack tests", check=True)
    store.ctl("request", "customer/orders", "--reason", "needed", check=True)
    store.ctl("deprecate", "sales/orders", "1.0.0", check=True)
    return store


def all_paths(root):
    paths = [str(root)]
    for d, dirs, files in os.walk(root):
        paths += [os.path.join(d, n) for n in dirs + files]
    return paths


def test_store_unreadable_and_unwritable_by_others(mesh, mounter):
    m = mounter(mesh)
    # usage is recorded (the daemon's own files appear in the store too)
    assert run(["cat", m / "sales/orders/1.0.0/orders.csv"], user="mesh_dave").returncode == 0
    paths = all_paths(mesh.path)
    names = {os.path.relpath(p, mesh.path) for p in paths}
    # the walk covers what the issue lists: data, contracts, grants,
    # requests, usage, index, lifecycle
    for expected in ("domains/sales/orders/1.0.0/orders.csv", "domains/sales/orders/1.0.0/contract.yaml",
                     "domains/sales/domain.yaml", "mesh.yaml", "index/index.db", "requests/1.json",
                     "domains/sales/orders/.lifecycle.json", "generation"):
        assert expected in names, (expected, sorted(names))
    assert any(n.startswith("domains/sales/grants/") for n in names)
    assert any(n.startswith("usage/") and n.endswith("usage.db") for n in names)
    for p in paths:
        st = os.lstat(p)
        assert st.st_uid == 0 and st.st_mode & 0o077 == 0, (p, oct(st.st_mode))
    for user in ATTACKERS:
        r = run(["/usr/bin/python3", "-c", PROBE], user=user, input="\0".join(paths))
        assert r.returncode == 0, r.stderr
        # only the store directory itself may be stat'ed (its parent is public)
        got = [l for l in r.stdout.splitlines() if l != f"stat {mesh.path}"]
        assert got == [], (user, got[:20])
    # the mount is the way in: the same user reads there
    assert run(["cat", m / "sales/orders/1.0.0/orders.csv"], user="mesh_dave").stdout.startswith("order_id")
    r = mesh.ctl("doctor", check=True)
    assert "locked down" in r.stdout


def test_insecure_store_refused_with_the_fix(mesh, mounter, scratch):
    os.chmod(mesh.path / "index", 0o777)
    (mesh.path / "domains/sales/domain.yaml").chmod(0o664)
    mp = scratch / "refused"
    mp.mkdir()
    r = run([MESHFS, mesh.path, mp, "-o", "allow_other"], timeout=20)
    assert r.returncode != 0 and not os.path.ismount(mp)
    assert "not locked down" in r.stderr and "index: mode 0777" in r.stderr
    assert "doctor --fix" in r.stderr and "insecure_store" in r.stderr
    r = mesh.ctl("doctor")
    assert r.returncode == 1 and "2 problem(s)" in r.stdout
    # an explicit insecure_store serves it, loudly
    m = mounter(mesh, "allow_other,insecure_store", name="insecure")
    assert "WARNING" in m.read_log() and "NOT locked down" in m.read_log()
    m.stop()
    # the fix the message names makes it servable again
    assert "fixed 2 entries" in mesh.ctl("doctor", "--fix", check=True).stdout
    assert os.stat(mesh.path / "index").st_mode & 0o777 == 0o700
    mounter(mesh, name="fixed")


def test_service_user_owns_the_store(scratch, mounter):
    store_dir = scratch / "svc"
    r = run([MESHCTL, "--store", store_dir, "init", "--service-user", "mesh_dave"])
    assert r.returncode == 0, r.stderr
    import pwd
    dave = pwd.getpwnam("mesh_dave").pw_uid
    for p in all_paths(store_dir):
        st = os.lstat(p)
        assert st.st_uid == dave and st.st_mode & 0o077 == 0, (p, oct(st.st_mode))
    assert run([MESHCTL, "--store", store_dir, "doctor"]).returncode == 0
    r = run([MESHCTL, "--store", scratch / "nobody", "init", "--service-user", "no_such_user_x"])
    assert r.returncode == 2 and "no such user" in r.stderr
    # someone else (not root, not the account) cannot make a store for it
    os.chmod(scratch, 0o777)
    r = run([MESHCTL, "--store", scratch / "alice-store", "init", "--service-user", "root"], user="mesh_alice")
    assert r.returncode == 3 and not (scratch / "alice-store").exists()


def test_index_symlink_plant_creates_nothing(mesh, scratch):
    target = scratch / "planted-target"
    index = mesh.path / "index"
    # an ordinary user cannot even reach the index directory any more
    r = run(["ln", "-s", target, index / "evil"], user="mesh_alice")
    assert r.returncode != 0 and not target.exists()
    # and should one be there (as the old 0777 directory allowed), root's
    # next publish neither follows it nor chmods what it points to
    os.unlink(index / "index.db")
    os.symlink(target, index / "index.db")
    os.symlink(scratch / "planted-wal", index / "index.db-wal")
    rel = make_release(scratch / "rel2", "sales", "orders", "1.1.0", {"orders.csv": ORDERS}, columns=COLUMNS)
    r = mesh.ctl("publish", rel)
    assert r.returncode == 0, r.stdout + r.stderr      # the index is a cache: publish goes on
    assert not os.path.lexists(target) and not os.path.lexists(scratch / "planted-wal")
    # search refuses the planted file rather than reading through it
    r = mesh.ctl("search", "orders")
    assert not os.path.lexists(target)
    # reindex replaces the links themselves (rename never follows)
    os.unlink(index / "index.db-wal")
    mesh.ctl("reindex", check=True)
    assert not os.path.lexists(target)
    st = os.lstat(index / "index.db")
    assert not os.path.islink(index / "index.db") and st.st_mode & 0o777 == 0o600
    assert "sales/orders" in mesh.ctl("search", "orders", check=True).stdout


def test_fifo_in_requests_does_not_hang(mesh):
    os.mkfifo(mesh.path / "requests/7.json", 0o600)
    r = mesh.ctl("requests", "--all", timeout=15)
    assert r.returncode == 0, r.stderr
    assert "needed" in r.stdout            # the real request is still listed
    r = mesh.ctl("approve", "7", timeout=15)
    assert r.returncode == 1 and "no request 7" in r.stderr
    r = mesh.ctl("request", "sales/orders", "--reason", "after the fifo", timeout=15)
    assert r.returncode == 0, r.stderr


def test_fifo_as_domain_yaml_blocks_nothing(mesh, mounter):
    m = mounter(mesh, "allow_other,poll=0.5")
    sales = m / "sales/orders/1.0.0/orders.csv"
    customer = m / "customer/orders/1.0.0/orders.csv"
    assert run(["cat", sales], user="mesh_dave").returncode == 0
    assert run(["cat", customer], user="mesh_dave").returncode == 0
    # the customer domain's owner swaps domain.yaml for a FIFO (no writer)
    domain_yaml = mesh.path / "domains/customer/domain.yaml"
    good = domain_yaml.read_text()
    os.unlink(domain_yaml)
    os.mkfifo(domain_yaml, 0o600)
    # a revoke in another domain still applies within the poll interval
    mesh.ctl("revoke", "sales/orders", "user:mesh_dave", check=True, timeout=15)
    assert wait_for(lambda: run(["cat", sales], user="mesh_dave").returncode != 0, 5)
    # the broken domain fails closed for all but governance
    assert wait_for(lambda: run(["cat", customer], user="mesh_dave").returncode != 0, 5)
    # meshctl does not hang on it either
    for args in (("domain", "show", "customer"), ("domain", "list"), ("list",), ("grants",),
                 ("access", "customer/orders")):
        r = mesh.ctl(*args, timeout=15)
        assert r.returncode in (0, 1, 3, 4), (args, r)
    r = mesh.ctl("domain", "show", "customer", timeout=15)
    assert r.returncode != 0 and "not a regular file" in r.stderr
    # and the daemon still exits on unmount
    t = time.time()
    m.stop()
    assert m.returncode == 0 and time.time() - t < 10
    os.unlink(domain_yaml)
    domain_yaml.write_text(good)
    os.chmod(domain_yaml, 0o600)


def test_swapped_file_installed_exactly_as_validated(store, scratch):
    """A swapper flips orders.csv between a valid and an invalid file as
    fast as it can while releases are published: every release that is
    installed holds exactly the bytes its checks passed on."""
    store.create_domain("sales")
    good = ORDERS.encode()
    bad = ORDERS.replace("10.50", "not-a-number").encode() * 2000
    base = make_release(scratch / "swap", "sales", "orders", "1.0.0", {"orders.csv": ORDERS}, columns=COLUMNS)
    stop = threading.Event()

    def swapper():
        # prepared outside the release, renamed in whole
        g, b = scratch / "g.csv", scratch / "b.csv"
        while not stop.is_set():
            for src, data in ((g, good), (b, bad)):
                src.write_bytes(data)
                os.replace(src, base / "orders.csv")

    t = threading.Thread(target=swapper)
    t.start()
    installed = failed = 0
    try:
        contract = (base / "contract.yaml").read_text()
        for i in range(25):
            (base / "contract.yaml").write_text(contract.replace("version: 1.0.0", f"version: 1.0.{i}"))
            r = store.ctl("publish", base)
            if r.returncode != 0:
                failed += 1
                assert "not-a-number" in r.stdout + r.stderr or "changed" in r.stdout + r.stderr, r.stdout
                continue
            installed += 1
            rel = store.path / f"domains/sales/orders/1.0.{i}"
            data = (rel / "orders.csv").read_bytes()
            assert data == good                              # never the bytes that fail validation
            manifest = json.loads((rel / ".manifest.json").read_text())
            sha = [f["sha256"] for f in manifest["files"] if f["name"] == "orders.csv"][0]
            assert sha == hashlib.sha256(data).hexdigest()
            quality = json.loads((rel / "quality.json").read_text())
            assert quality["passed"] is True
    finally:
        stop.set()
        t.join()
    # the race is real: both outcomes happened (else the test proves nothing)
    assert installed and failed, (installed, failed)


def test_escape_sequences_escaped_in_requests(mesh):
    reason = "legit\x1b]0;owned\x07\x1b[2J\x1b[31mred\u009b31m\x08end"
    mesh.ctl("request", "sales/orders", "--reason", reason, check=True)
    out = mesh.ctl("requests", check=True).stdout
    assert "legit" in out and "end" in out
    for raw in ("\x1b", "\x07", "\x08", "\u009b"):
        assert raw not in out, repr(raw)
    assert "\\e]0;owned\\x07\\e[2J\\e[31mred\\xc2\\x9b31m\\x08end" in out
    # a grant reason too
    mesh.ctl("grant", "sales/orders", "user:mesh_alice", "--reason", "x\x1b[31my", check=True)
    out = mesh.ctl("grants", "sales", check=True).stdout
    assert "\x1b" not in out and "x\\e[31my" in out


def test_staging_left_by_a_dead_publish_is_cleaned_by_the_next(mesh, scratch):
    product = mesh.path / "domains/sales/orders"
    # a publish that died: its pid no longer runs
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = product / f".tmp-1.2.0.{dead.pid}.123"
    stale.mkdir(mode=0o700)
    (stale / "orders.csv").write_text("half")
    # one of a live process is left alone
    live = product / f".tmp-1.3.0.{os.getpid()}.456"
    live.mkdir(mode=0o700)
    rel = make_release(scratch / "rel3", "sales", "orders", "1.1.0", {"orders.csv": ORDERS}, columns=COLUMNS)
    mesh.ctl("publish", rel, check=True)
    assert not stale.exists()
    assert live.exists()
    live.rmdir()


def test_fresh_runtime_dir_reachable_by_everyone(mesh, mounter, scratch, monkeypatch):
    """On a fresh boot meshfs makes the socket's directory itself: with the
    daemon's umask 077 it came out 0700, and no ordinary user reached the
    service."""
    runtime = scratch / "run"
    monkeypatch.setenv("MESHFS_RUNTIME_DIR", str(runtime))
    mounter(mesh)
    assert runtime.stat().st_mode & 0o777 == 0o755
    # run() hands the environment (MESHFS_RUNTIME_DIR) on, through setpriv
    r = run([MESHCTL, "--store", mesh.path, "list"], user="mesh_dave", timeout=30)
    assert r.returncode == 0 and "sales/orders" in r.stdout, r.stderr
