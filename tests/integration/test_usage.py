"""Usage recording (issue 5): every open recorded exactly, decisions kept,
nothing lost across kill -9 or disk full, several hosts aggregate."""
import concurrent.futures
import csv
import io
import json
import os
import signal
import sqlite3
import subprocess
import time

import pytest

from conftest import MESHFS, Mount, make_release, make_store, run, wait_for

DATA = "id,email,v\n" + "".join(f"{i},u{i}@example.com,{i * 3}\n" for i in range(200))


@pytest.fixture
def used(store, scratch):
    store.create_domain("sales", "group:mesh_sales")
    rel = scratch / "rel"
    store.publish(make_release(rel, "sales", "orders", "1.0.0", {"orders.csv": DATA}))
    store.publish(make_release(rel, "sales", "orders", "1.1.0", {"orders.csv": DATA}))
    store.ctl("grant", "sales/orders", "group:mesh_analysts", check=True)
    return store


def usage_json(store, *args):
    r = store.ctl("usage", *args, "--format", "json", check=True)
    return json.loads(r.stdout)


def host_dbs(store):
    """Each host's usage.db: on its local state directory (the tests' hosts
    share one machine, so one state root under the test's scratch dir)."""
    return sorted((store.path.parent / "state").glob("*/usage/*/usage.db"))


def events(store):
    """All raw events of all hosts, as dicts (reads the databases directly)."""
    rows = []
    for db in host_dbs(store):
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        con.row_factory = sqlite3.Row
        rows += [dict(r) for r in con.execute("SELECT * FROM events")]
        con.close()
    return rows


def test_known_sequence_recorded_exactly(used, mounter):
    # bytes are counted for reads the daemon serves: kernel passthrough
    # (root) now serves classified files and views too, so it is off here
    m = mounter(used, options="allow_other,passthrough=off")
    f = m / "sales/orders/1.0.0/orders.csv"
    run(["cat", f], user="mesh_bob", check=True)
    run(["head", "-n", "3", f], user="mesh_alice", check=True)
    run(["/usr/bin/python3", "-c", f"import pandas; pandas.read_csv('{f}')"], user="mesh_carol", check=True)
    assert run(["cat", f], user="mesh_dave").returncode != 0       # denied
    run(["cat", m / "sales/orders/1.0.0/contract.yaml"], user="mesh_dave", check=True)   # discovery
    m.stop()   # clean unmount: everything committed
    ev = [e for e in events(used) if e["kind"] == "data"]
    by_user = {(e["user_name"], e["program"], e["decision"]) for e in ev}
    assert ("mesh_bob", "cat", "allow") in by_user
    assert ("mesh_alice", "head", "mask") in by_user
    assert ("mesh_carol", "python3", "allow") in by_user
    assert ("mesh_dave", "cat", "deny") in by_user
    assert len(ev) == 4
    bob = [e for e in ev if e["user_name"] == "mesh_bob"][0]
    assert bob["bytes"] == len(DATA) and bob["domain"] == "sales" and bob["version"] == "1.0.0"
    disc = [e for e in events(used) if e["kind"] == "discovery"]
    assert len(disc) == 1 and disc[0]["file"] == "contract.yaml"
    rep = usage_json(used, "sales/orders", "--by", "consumer")
    assert {r["user"] for r in rep["rows"]} >= {"mesh_bob", "mesh_alice", "mesh_carol"}
    denied = usage_json(used, "--denied")
    assert {r["decision"] for r in denied["rows"]} == {"deny", "mask"}
    out = used.ctl("usage", "--by", "day", "--format", "csv", check=True).stdout
    assert list(csv.reader(io.StringIO(out)))[0][0] == "day"


def test_concurrent_readers_exact_count(used, mounter):
    m = mounter(used)
    path = str(m / "sales/orders/1.1.0/orders.csv")

    def worker(_):
        for _ in range(1000):
            fd = os.open(path, os.O_RDONLY)
            os.read(fd, 16)
            os.close(fd)

    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        list(ex.map(worker, range(8)))
    m.stop()
    ev = [e for e in events(used) if e["version"] == "1.1.0" and e["kind"] == "data"]
    assert len(ev) == 8000


def test_kill9_loses_nothing(used, scratch):
    m = Mount(used, scratch / "mnt", "allow_other").start()
    path = str(m / "sales/orders/1.0.0/orders.csv")
    done = 0
    stop = time.time() + 1.5
    try:
        while time.time() < stop:
            fd = os.open(path, os.O_RDONLY)   # returned to us: must be recorded
            done += 1
            os.close(fd)
    finally:
        m.proc.send_signal(signal.SIGKILL)
        m.proc.wait()
        subprocess.run(["fusermount3", "-uz", str(m.path)], capture_output=True)
    m2 = Mount(used, scratch / "mnt2", "allow_other").start()   # replays the journal
    m2.stop()
    ev = [e for e in events(used) if e["kind"] == "data"]
    ids = [e["event_id"] for e in ev]
    assert len(ids) == len(set(ids))                 # none duplicated
    assert done <= len(ev) <= done + 1, (done, len(ev))


def test_two_hosts_aggregate(used, scratch):
    a = Mount(used, scratch / "a", "allow_other,hostname=host-a").start()
    b = Mount(used, scratch / "b", "allow_other,hostname=host-b").start()
    try:
        for _ in range(3):
            run(["cat", a / "sales/orders/1.0.0/orders.csv"], user="mesh_bob", check=True)
        for _ in range(2):
            run(["cat", b / "sales/orders/1.0.0/orders.csv"], user="mesh_bob", check=True)
    finally:
        a.stop()
        b.stop()
    rep = usage_json(used, "sales/orders", "--by", "host")
    reads = {r["host"]: r["reads"] for r in rep["rows"]}
    assert reads == {"host-a": 3, "host-b": 2}


def test_disk_full_reads_go_on(scratch, monkeypatch):
    small = scratch / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(small)], check=True)
    # the host's state (journal, usage.db) on the disk that fills up
    monkeypatch.setenv("MESHFS_STATE_DIR", str(small / "state"))
    m = None
    try:
        store = make_store(small / "store")
        store.create_domain("sales")
        rel = scratch / "rel"
        store.publish(make_release(rel, "sales", "orders", "1.0.0", {"orders.csv": DATA}))
        m = Mount(store, scratch / "mnt", "allow_other,usage_slots=2048").start()
        filler = small / "filler"
        with open(filler, "wb", buffering=0) as f:   # unbuffered: a short write at the end raises here, not at close
            try:
                while True:
                    f.write(b"\0" * 65536)
            except OSError:
                pass
        path = m / "sales/orders/1.0.0/orders.csv"
        for _ in range(200):
            assert path.read_text() == DATA               # no failed read
        # the events wait in the journal, and status says so
        assert wait_for(lambda: "backlog      200" in store.ctl("status").stdout, 5), store.ctl("status").stdout
        filler.unlink()
        # recording catches up by itself once there is room
        assert wait_for(lambda: "backlog      0" in store.ctl("status").stdout, 8), store.ctl("status").stdout
        m.stop()
        m = None
        ev = [e for e in events(store) if e["kind"] == "data"]
        assert len(ev) == 200
    finally:
        if m:
            m.stop()
        subprocess.run(["umount", "-l", str(small)])


def test_restart_over_a_used_journal(used, scratch):
    """A daemon started over a journal with slots left (ended and not) must
    replay them once and keep a consistent free list (a double count here
    once overflowed the heap)."""
    for round_ in range(3):
        m = Mount(used, scratch / f"m{round_}", "allow_other,usage_slots=64").start()
        path = m / "sales/orders/1.0.0/orders.csv"
        fds = [os.open(path, os.O_RDONLY) for _ in range(10)]     # begun, never ended
        for _ in range(40):
            os.close(os.open(path, os.O_RDONLY))
        m.proc.send_signal(signal.SIGKILL)
        m.proc.wait()
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass
        subprocess.run(["fusermount3", "-uz", str(m.path)], capture_output=True)
    m = Mount(used, scratch / "final", "allow_other,usage_slots=64").start()
    for _ in range(100):                       # more than the journal holds: slots are reused
        os.close(os.open(m / "sales/orders/1.0.0/orders.csv", os.O_RDONLY))
    m.stop()
    assert "ERROR: AddressSanitizer" not in m.read_log()
    ev = [e for e in events(used) if e["kind"] == "data"]
    assert len(ev) == 3 * 50 + 100
    assert len({e["event_id"] for e in ev}) == len(ev)
    # the 10 held open each round never ended; a close's RELEASE is
    # asynchronous, so the kill may also catch the last one or two
    assert 30 <= sum(1 for e in ev if not e["complete"]) <= 36


def test_prune_keeps_totals_and_metrics(used, scratch):
    m = Mount(used, scratch / "mnt", f"allow_other,metrics={scratch}/meshfs.prom").start()
    for _ in range(5):
        run(["cat", m / "sales/orders/1.0.0/orders.csv"], user="mesh_bob", check=True)
    time.sleep(1.2)                      # the writer refreshes the metrics file every second
    m.stop()
    prom = (scratch / "meshfs.prom").read_text()
    assert 'meshfs_opens_total{host=' in prom and 'decision="allow"} 5' in prom
    assert "meshfs_usage_journal_backlog" in prom
    before = usage_json(used, "sales/orders")
    tomorrow = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 86400))
    r = used.ctl("usage", "--prune-before", tomorrow, check=True)
    assert "5 events folded" in r.stdout
    assert events(used) == []
    after = usage_json(used, "sales/orders")
    assert after["summary"]["reads"] == before["summary"]["reads"] == 5
    assert after["rows"][0]["reads"] == 5


def test_retention_setting_folds_old_events(used, scratch):
    """mesh.yaml usage.retentionDays: the daemon folds older raw events into
    daily rollups by itself; report totals stay the same."""
    m = Mount(used, scratch / "mnt", "allow_other").start()
    for _ in range(3):
        run(["cat", m / "sales/orders/1.0.0/orders.csv"], user="mesh_bob", check=True)
    m.stop()
    db = host_dbs(used)[0]
    con = sqlite3.connect(db)
    con.execute("UPDATE events SET open_ns = open_ns - 40 * 86400 * 1000000000, "
                "time = '2020-01-01T00:00:00.000Z'")
    con.commit()
    con.close()
    with open(used.path / "mesh.yaml", "a") as f:
        f.write("usage:\n  retentionDays: 30\n")
    m = Mount(used, scratch / "mnt2", "allow_other").start()
    assert wait_for(lambda: not [e for e in events(used) if e["kind"] == "data"], 5)
    m.stop()
    rep = usage_json(used, "sales/orders", "--since", "2019-12-01")
    assert rep["summary"]["reads"] == 3


def test_consumers_of_a_version(used, scratch):
    """Who still reads a version, before it is retired."""
    m = Mount(used, scratch / "mnt", "allow_other").start()
    run(["cat", m / "sales/orders/1.0.0/orders.csv"], user="mesh_bob", check=True)
    run(["cat", m / "sales/orders/1.0.0/orders.csv"], user="mesh_carol", check=True)
    run(["cat", m / "sales/orders/1.1.0/orders.csv"], user="mesh_erin", check=True)
    assert run(["cat", m / "sales/orders/1.0.0/orders.csv"], user="mesh_dave").returncode != 0
    m.stop()
    out = used.ctl("consumers", "sales/orders", "1.0.0", check=True).stdout
    assert "mesh_bob" in out and "mesh_carol" in out
    assert "mesh_erin" not in out                  # read another version
    assert "mesh_dave" not in out                  # denied: not a consumer
    assert used.ctl("consumers", "sales/orders").returncode == 2


def test_second_daemon_of_a_host_is_refused_even_daemonized(used, scratch):
    """One daemon records per host name: a second one, started the way
    systemd or mount(8) would (daemonizing), must fail with the reason
    rather than exit 0 in a parent that forked before it knew."""
    a = Mount(used, scratch / "a", "allow_other,hostname=twin").start()
    try:
        mnt = scratch / "b"
        mnt.mkdir()
        r = run([MESHFS, used.path, mnt, "-o", "allow_other,hostname=twin"], timeout=30)
        try:
            assert r.returncode != 0, r
            assert "another meshfs daemon records usage" in r.stderr, r.stderr
            assert not os.path.ismount(mnt)
        finally:
            if os.path.ismount(mnt):
                subprocess.run(["fusermount3", "-u", str(mnt)])
        # another host name on the same machine is fine, and daemonizes
        r = run([MESHFS, used.path, mnt, "-o", "allow_other,hostname=other"], timeout=30)
        assert r.returncode == 0, r
        assert os.path.ismount(mnt)
        subprocess.run(["fusermount3", "-u", str(mnt)], check=True)
    finally:
        a.stop()


def seg_rows(path, sql):
    con = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_shipped_segments_are_pruned_by_their_host(used, scratch):
    """mesh.yaml usage.shippedRetentionDays: the host that shipped segments
    merges them leaving out events older than the limit and removes the old
    files; another host's segments are never touched; a governance prune
    (--prune-before) leaves the shipped copies too, its totals kept as
    rollups in the merged segment."""
    import shutil
    m = Mount(used, scratch / "mnt", "allow_other,hostname=host-a").start()
    for _ in range(3):
        run(["cat", m / "sales/orders/1.0.0/orders.csv"], user="mesh_bob", check=True)
    assert wait_for(lambda: list((used.path / "usage/host-a").glob("seg-*.db")), 5)
    m.stop()
    ship = used.path / "usage/host-a"
    recent = sorted(ship.glob("seg-*.db"))[-1]
    # a segment of 40-day-old events, and another host's old segment
    old = ship / "seg-000000000000-1-3.db"
    other = used.path / "usage/host-z" / "seg-000000000001-1-3.db"
    other.parent.mkdir(mode=0o700)
    for target in (old, other):
        shutil.copy(recent, target)
        os.chmod(target, 0o600)
        con = sqlite3.connect(target)
        con.execute("UPDATE events SET event_id = event_id - 1000000, open_ns = open_ns - 40 * 86400 * 1000000000,"
                    " time = '2020-01-01T00:00:00.000Z'")
        if target == other:
            con.execute("UPDATE events SET host = 'host-z'")
        con.commit()
        con.close()
    # what another host reports: the shipped segments (no local database of host-a there)
    def remote_reads():
        r = used.ctl("--state-dir", scratch / "elsewhere", "usage", "sales/orders", "--by", "host",
                     "--since", "2019-12-01", "--format", "json", check=True)
        return {row["host"]: row["reads"] for row in json.loads(r.stdout)["rows"]}
    assert remote_reads() == {"host-a": 6, "host-z": 3}
    with open(used.path / "mesh.yaml", "a") as f:
        f.write("usage:\n  shippedRetentionDays: 30\n")
    m = Mount(used, scratch / "mnt2", "allow_other,hostname=host-a").start()
    try:
        # merged into place first, then the old ones removed
        assert wait_for(lambda: not old.exists() and not recent.exists(), 8), sorted(ship.iterdir())
        segs = sorted(ship.glob("seg-*.db"))
        assert len(segs) == 1
        assert seg_rows(segs[0], "SELECT count(*), min(open_ns) > strftime('%s', 'now', '-31 days') * 1000000000"
                                 " FROM events WHERE kind = 'data'") == [(3, 1)]
        assert other.exists() and seg_rows(other, "SELECT count(*) FROM events WHERE kind = 'data'") == [(3,)]
        assert remote_reads() == {"host-a": 3, "host-z": 3}
        # a governance prune: the shipped raw events go, their count stays
        tomorrow = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 86400))
        used.ctl("usage", "--prune-before", tomorrow, check=True)

        def merged_without_raw():
            s = sorted(ship.glob("seg-*.db"))
            return len(s) == 1 and s[0] != segs[0] and \
                seg_rows(s[0], "SELECT count(*) FROM events WHERE kind = 'data'") == [(0,)]
        assert wait_for(merged_without_raw, 8), sorted(ship.iterdir())
        merged = sorted(ship.glob("seg-*.db"))[0]
        assert seg_rows(merged, "SELECT sum(opens) FROM rollups WHERE kind = 'data'") == [(3,)]
        assert other.exists()
    finally:
        m.stop()
    assert remote_reads() == {"host-a": 3, "host-z": 3}          # the prune kept the totals
    local = usage_json(used, "sales/orders", "--by", "host", "--since", "2019-12-01")
    assert {r["host"]: r["reads"] for r in local["rows"]} == {"host-a": 3, "host-z": 3}
