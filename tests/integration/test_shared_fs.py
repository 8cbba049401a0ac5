"""Many hosts, one store: a real shared filesystem (GlusterFS) mounted twice.

One GlusterFS brick (glusterfsd, a one-brick volume on the 127.0.0.2
loopback address, its directory under this module's temporary directory)
and two glusterfs client processes mounting it: two "hosts".  Each host has
its own meshfs daemon (its own host name and local state directory) and its
own meshctl environment, so every test sees what two machines sharing a
store would see: FUSE attribute caches, no RENAME_NOREPLACE (GlusterFS's
FUSE client has no rename2), no shared page cache, no coherent locks.

Why glusterfsd with written volfiles, not glusterd: glusterd's CLI refuses
changes over TCP (read-only) and, started with a private working directory
and socket (-f glusterd.vol with working-directory, -S SOCKFILE), answered
"RPC program not available" to `gluster volume create`; a brick served by
glusterfsd is the same server stack (storage/posix, features/locks,
io-threads, protocol/server) and the clients the same client stack
(protocol/client, distribute, write-behind, md-cache) that glusterd would
generate, and nothing is written to /var/lib/glusterd.  Everything is
stopped by PID and removed at the end.
"""
import json
import os
import pathlib
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import MESHCTL, Mount, Store, make_release, run, wait_for

GLUSTERFSD = shutil.which("glusterfsd") or "/usr/sbin/glusterfsd"
GLUSTERFS = shutil.which("glusterfs") or "/usr/sbin/glusterfs"
ADDR = "127.0.0.2"
POLL = 1.0
GLUSTER_ROOT = pathlib.Path("/var/tmp/meshfs-gluster-tests")

pytestmark = pytest.mark.skipif(not (os.path.exists(GLUSTERFSD) and os.path.exists(GLUSTERFS)),
                                reason="GlusterFS (glusterfs-server, glusterfs-client) is not installed")

SERVER_VOL = """\
volume posix
    type storage/posix
    option directory {brick}
end-volume
volume locks
    type features/locks
    subvolumes posix
end-volume
volume iot
    type performance/io-threads
    subvolumes locks
end-volume
volume server
    type protocol/server
    option transport-type tcp
    option transport.socket.bind-address {addr}
    option transport.socket.listen-port {port}
    option auth.addr.iot.allow 127.0.0.*
    subvolumes iot
end-volume
"""

CLIENT_VOL = """\
volume remote
    type protocol/client
    option transport-type tcp
    option remote-host {addr}
    option remote-port {port}
    option remote-subvolume iot
end-volume
volume dht
    type cluster/distribute
    subvolumes remote
end-volume
volume wb
    type performance/write-behind
    subvolumes dht
end-volume
volume md
    type performance/md-cache
    subvolumes wb
end-volume
"""


def _free_port():
    with socket.socket() as s:
        s.bind((ADDR, 0))
        return s.getsockname()[1]


def _pid(path, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            return int(pathlib.Path(path).read_text().strip())
        except (OSError, ValueError):
            time.sleep(0.05)
    raise AssertionError(f"no pid in {path}")


def _stop_pid(pid):
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="module")
def gluster(environment):
    """A one-brick volume and two client mounts: {"a": path, "b": path}."""
    # not under SCRATCH_ROOT: a test session starting elsewhere on this
    # machine unmounts every FUSE mount it finds there (conftest.py)
    GLUSTER_ROOT.mkdir(parents=True, exist_ok=True)
    base = pathlib.Path(tempfile.mkdtemp(prefix="gluster-", dir=GLUSTER_ROOT))
    base.chmod(0o755)
    brick = base / "brick"
    brick.mkdir()
    port = _free_port()
    (base / "server.vol").write_text(SERVER_VOL.format(brick=brick, addr=ADDR, port=port))
    (base / "client.vol").write_text(CLIENT_VOL.format(addr=ADDR, port=port))
    pids, mounts = [], []
    try:
        subprocess.run([GLUSTERFSD, "-f", base / "server.vol", "-p", base / "server.pid",
                        "-l", base / "server.log"], check=True)
        pids.append(_pid(base / "server.pid"))
        for host in ("a", "b"):
            mnt = base / f"gl-{host}"
            mnt.mkdir()
            subprocess.run([GLUSTERFS, "-f", base / "client.vol", "-p", base / f"client-{host}.pid",
                            "-l", base / f"client-{host}.log", mnt], check=True)
            pids.append(_pid(base / f"client-{host}.pid"))
            mounts.append(mnt)
            assert wait_for(lambda: os.path.ismount(mnt), 10), (base / f"client-{host}.log").read_text()
        # the volume is shared: what one client writes the other reads
        (mounts[0] / "probe").write_text("x")
        assert wait_for(lambda: (mounts[1] / "probe").exists(), 5)
        (mounts[0] / "probe").unlink()
        os.chmod(mounts[0], 0o755)
        yield {"a": mounts[0], "b": mounts[1], "base": base}
    finally:
        for mnt in mounts:
            if os.path.ismount(mnt):
                if subprocess.run(["fusermount3", "-u", str(mnt)], capture_output=True).returncode:
                    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
        for pid in reversed(pids):
            _stop_pid(pid)
        shutil.rmtree(base, ignore_errors=True)


class Host:
    """One host: its view of the store (its own client mount), its state
    directory, its meshctl and its meshfs daemon."""

    def __init__(self, name, store_path, state, scratch):
        self.name = name
        self.store = Store(store_path)
        self.state = state
        self.scratch = scratch
        self.mount = None

    def ctl(self, *args, check=False, timeout=300):
        return self.store.ctl(*args, check=check, env={"MESHFS_STATE_DIR": str(self.state)}, timeout=timeout)

    def popen_ctl(self, *args):
        env = dict(os.environ, MESHFS_STATE_DIR=str(self.state))
        return subprocess.Popen([str(MESHCTL), "--store", str(self.store.path), *map(str, args)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)

    def start(self, mnt_name=None):
        self.mount = Mount(self.store, self.scratch / (mnt_name or f"mnt-{self.name}"),
                           f"allow_other,hostname=host-{self.name},state_dir={self.state},poll={POLL}")
        return self.mount.start()

    def stop(self):
        if self.mount:
            self.mount.stop()
            log = self.mount.read_log()    # a sanitizer build reports in the daemon's log
            for marker in ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer"):
                assert marker not in log, f"meshfs ({self.mount.path}): {log[-3000:]}"


@pytest.fixture
def hosts(gluster, scratch):
    """Hosts a and b on a fresh store on the shared volume."""
    name = scratch.name
    store_a = gluster["a"] / name / "store"
    (gluster["a"] / name).mkdir()
    store_b = gluster["b"] / name / "store"
    a = Host("a", store_a, scratch / "state-a", scratch)
    b = Host("b", store_b, scratch / "state-b", scratch)
    a.ctl("init", check=True)
    a.ctl("domain", "create", "sales", "--owner", "user:root", check=True)
    assert wait_for(lambda: (store_b / "domains/sales/domain.yaml").exists(), 5)
    yield a, b
    a.stop()
    b.stop()
    shutil.rmtree(gluster["a"] / name, ignore_errors=True)


def test_publish_on_a_is_visible_on_b_within_the_poll_interval(hosts, scratch):
    a, b = hosts
    b.start()
    rel = make_release(scratch / "rel", "sales", "orders", "1.0.0")
    r = a.ctl("publish", rel)
    assert r.returncode == 0, r.stderr            # no "Invalid argument" from rename flags
    published = time.time()
    path = b.mount / "sales/orders/1.0.0/orders.csv"
    assert wait_for(lambda: path.exists(), POLL + 2.0, 0.02), b.mount.read_log()
    seen = time.time() - published
    assert path.read_text().startswith("order_id,")
    print(f"publish on A visible on B after {seen:.3f} s (poll {POLL} s)")
    # B's search finds it in B's own index
    assert "sales/orders 1.0.0" in b.ctl("search", "orders", check=True).stdout
    # no database was written to the shared store
    assert not list(b.store.path.rglob("*.db")) or all("usage" in p.parts for p in b.store.path.rglob("*.db"))


def test_concurrent_publishes_of_different_products_lose_nothing(hosts, scratch):
    a, b = hosts
    expected = set()
    for i in range(20):
        ra = make_release(scratch / "rel", "sales", f"pa{i}", "1.0.0")
        rb = make_release(scratch / "rel", "sales", f"pb{i}", "1.0.0")
        pa, pb = a.popen_ctl("publish", ra), b.popen_ctl("publish", rb)
        for p, who in ((pa, "a"), (pb, "b")):
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, (i, who, out, err)
        expected |= {f"sales/pa{i}", f"sales/pb{i}"}
        # both hosts' indexes agree after every round
        if i % 5 == 4:
            for h in (a, b):
                found = {line.split()[0] for line in h.ctl("search", "Integration", check=True).stdout.splitlines()
                         if line.startswith("sales/")}
                assert found == expected, (h.name, expected - found)
    for h in (a, b):
        found = {line.split()[0] for line in h.ctl("search", "Synthetic", check=True).stdout.splitlines()
                 if line.startswith("sales/")}
        assert found == expected, (h.name, sorted(expected - found))


def test_same_version_races_have_exactly_one_winner(hosts, scratch):
    a, b = hosts
    rel = make_release(scratch / "rel", "sales", "race", "1.0.0")
    bad = []
    for i in range(50):
        text = (rel / "contract.yaml").read_text().replace(f"version: {i}.0.0" if i else "version: 1.0.0",
                                                           f"version: {i + 1}.0.0")
        (rel / "contract.yaml").write_text(text)
        pa, pb = a.popen_ctl("publish", rel), b.popen_ctl("publish", rel)
        results = [(p.returncode, out, err) for p in (pa, pb) for out, err in [p.communicate(timeout=120)]]
        codes = sorted(c for c, _, _ in results)
        loser = [e for c, _, e in results if c != 0]
        if codes != [0, 1] or "already exists" not in loser[0]:
            bad.append((i, results))
    assert not bad, bad[:3]
    versions = sorted(p.name for p in (a.store.path / "domains/sales/race").iterdir() if not p.name.startswith("."))
    assert len(versions) == 50
    leftovers = [p.name for p in (a.store.path / "domains/sales/race").iterdir() if p.name.startswith(".tmp-")]
    assert leftovers == []


def test_concurrent_deprecations_from_two_hosts_lose_nothing(hosts, scratch):
    a, b = hosts
    for i in range(20):
        a.ctl("publish", make_release(scratch / "rel", "sales", "life", f"1.{i}.0"), check=True)
    script = "for v in {vs}; do {ctl} --store {store} deprecate sales/life $v || exit 1; done"
    procs = []
    for h, vs in ((a, range(0, 20, 2)), (b, range(1, 20, 2))):
        cmd = script.format(vs=" ".join(f"1.{i}.0" for i in vs), ctl=MESHCTL, store=h.store.path)
        procs.append(subprocess.Popen(["sh", "-c", cmd], env=dict(os.environ, MESHFS_STATE_DIR=str(h.state)),
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    for h in (a, b):
        out = h.ctl("list", "sales/life", check=True).stdout
        states = [line.split()[1] for line in out.splitlines() if line.strip().startswith("1.")]
        assert states == ["deprecated"] * 20, (h.name, out)


def _usage(host, *args):
    r = host.ctl("usage", *args, "--format", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_usage_from_both_hosts_reported_exactly_from_both_sides(hosts, scratch):
    a, b = hosts
    a.ctl("publish", make_release(scratch / "rel", "sales", "orders", "1.0.0"), check=True)
    a.ctl("publish", make_release(scratch / "rel", "sales", "noise", "1.0.0"), check=True)
    ma, mb = a.start(), b.start()
    for m in (ma, mb):
        for product in ("noise", "orders"):
            assert wait_for(lambda: (m / f"sales/{product}/1.0.0/orders.csv").exists(), POLL + 3)
    stop = threading.Event()

    def noise(m):               # both daemons keep writing while we report
        while not stop.is_set():
            with open(m / "sales/noise/1.0.0/orders.csv") as f:
                f.read()

    threads = [threading.Thread(target=noise, args=(m,)) for m in (ma, mb)]
    for t in threads:
        t.start()
    try:
        for _ in range(30):
            (ma / "sales/orders/1.0.0/orders.csv").read_text()
        for _ in range(17):
            (mb / "sales/orders/1.0.0/orders.csv").read_text()

        def both_exact():
            reports = [_usage(h, "sales/orders", "--by", "host") for h in (a, b)]
            return all({r["host"]: r["reads"] for r in rep["rows"]} == {"host-a": 30, "host-b": 17}
                       for rep in reports)
        assert wait_for(both_exact, 10, 0.3), [_usage(h, "sales/orders", "--by", "host") for h in (a, b)]
    finally:
        stop.set()
        for t in threads:
            t.join()
    # what another host reads are closed segments, never a live database
    shipped = list((a.store.path / "usage").rglob("*"))
    assert [p for p in shipped if p.name.startswith("seg-")], shipped
    assert not [p for p in shipped if p.name in ("usage.db", "journal") or p.name.endswith("-wal")]


def test_unreadable_host_is_named_and_fails_the_report(hosts, scratch):
    a, b = hosts
    a.ctl("publish", make_release(scratch / "rel", "sales", "orders", "1.0.0"), check=True)
    mb = b.start()
    # B's client may still hold a cached lookup from before the publish
    assert wait_for(lambda: (mb / "sales/orders/1.0.0/orders.csv").exists(), POLL + 3)
    (mb / "sales/orders/1.0.0/orders.csv").read_text()
    b.stop()
    seg = sorted((a.store.path / "usage/host-b").glob("seg-*.db"))[0]
    seg.chmod(0o644)
    seg.write_bytes(b"garbage" * 1000)
    r = a.ctl("usage", "--by", "host")
    assert r.returncode == 4 and "host host-b" in r.stderr, r


def test_kill9_of_b_under_read_load_loses_no_acknowledged_open(hosts, scratch):
    a, b = hosts
    a.ctl("publish", make_release(scratch / "rel", "sales", "orders", "1.0.0"), check=True)
    mb = b.start()
    path = str(mb / "sales/orders/1.0.0/orders.csv")
    assert wait_for(lambda: os.path.exists(path), POLL + 3)
    done = 0
    stop_at = time.time() + 1.5
    try:
        while time.time() < stop_at:
            fd = os.open(path, os.O_RDONLY)     # returned to us: must be recorded
            done += 1
            os.close(fd)
    finally:
        b.mount.proc.send_signal(signal.SIGKILL)
        b.mount.proc.wait()
        subprocess.run(["fusermount3", "-uz", str(b.mount.path)], capture_output=True)
    b.start("mnt-b2")                            # replays the local journal
    b.stop()
    dbs = list(b.state.glob("*/usage/host-b/usage.db"))
    assert len(dbs) == 1
    con = sqlite3.connect(f"file:{dbs[0]}?mode=ro", uri=True)
    ids = [r[0] for r in con.execute("SELECT event_id FROM events WHERE kind = 'data'")]
    con.close()
    assert len(ids) == len(set(ids))
    assert done <= len(ids) <= done + 1, (done, len(ids))
    # and host A, reading B's shipped segments, counts the same
    rep = _usage(a, "sales/orders", "--by", "host")
    assert {r["host"]: r["reads"] for r in rep["rows"]} == {"host-b": len(ids)}
