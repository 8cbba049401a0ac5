"""Fleet usage in PostgreSQL (issue 13): a real server from Debian's
postgresql package, started by these tests as an unprivileged user on a
Unix socket in a temporary directory, stopped and removed by PID at the
end.  Events reach the database; a database that is down fails no read and
loses nothing once it is back; replay after kill -9 inserts no duplicate;
reports read PostgreSQL when mesh.yaml names it; no password is logged."""
import json
import os
import pathlib
import random
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time

import pytest

from conftest import MESHFS, SCRATCH_ROOT, make_release, run, wait_for

PGBIN = pathlib.Path("/usr/lib/postgresql/15/bin")
DATA = "id,email,v\n" + "".join(f"{i},u{i}@example.com,{i}\n" for i in range(40))


class Postgres:
    def __init__(self, root):
        self.root = root
        self.data = root / "data"
        self.port = random.randint(20000, 29999)
        self.conninfo = f"postgresql:///postgres?host={root}&port={self.port}&user=meshfs"

    def pg(self, *args, check=True):
        return run(["setpriv", "--reuid", "postgres", "--regid", "postgres", "--clear-groups", "--",
                    *args], check=check, timeout=120)

    def start(self):
        self.pg(PGBIN / "pg_ctl", "-D", self.data, "-l", self.root / "server.log", "-w", "-t", "60", "-o",
                f"-k {self.root} -c listen_addresses='' -p {self.port} -c fsync=off", "start")

    def stop(self):
        self.pg(PGBIN / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop", check=False)
        pid_file = self.data / "postmaster.pid"
        if pid_file.exists():          # pg_ctl failed: by PID
            try:
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
            except (ValueError, ProcessLookupError):
                pass

    def sql(self, query):
        r = run(["psql", self.conninfo, "-AtXqc", query])
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()


@pytest.fixture(scope="module")
def postgres():
    if not (PGBIN / "initdb").exists() and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "postgresql"],
                       cwd="/", env=dict(os.environ, TMPDIR="/var/tmp", DEBIAN_FRONTEND="noninteractive"),
                       capture_output=True)
    if not (PGBIN / "initdb").exists() or subprocess.run(["id", "postgres"], capture_output=True).returncode:
        pytest.skip("PostgreSQL 15 (Debian's postgresql package) is not installed")
    SCRATCH_ROOT.mkdir(parents=True, exist_ok=True)
    root = pathlib.Path(tempfile.mkdtemp(prefix="pg-", dir=SCRATCH_ROOT))
    shutil.chown(root, "postgres", "postgres")
    db = Postgres(root)
    db.pg(PGBIN / "initdb", "-D", db.data, "-A", "trust", "-U", "meshfs", "--no-sync", "-E", "UTF8")
    db.start()
    try:
        yield db
    finally:
        db.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def mesh(store, scratch, postgres):
    store.create_domain("sales", "group:mesh_sales")
    store.publish(make_release(scratch / "rel", "sales", "orders", "1.0.0", {"orders.csv": DATA}))
    store.ctl("grant", "sales/orders", "group:mesh_analysts", check=True)
    postgres.sql("DROP TABLE IF EXISTS meshfs_usage_events")
    return store


class Daemon:
    def __init__(self, store, scratch, host, options=""):
        self.mp = scratch / f"mnt-{host}"
        self.mp.mkdir(exist_ok=True)
        self.usage_dir = scratch / f"usage-{host}"
        self.logfile = scratch / f"{host}.log"
        self.args = [MESHFS, store.path, self.mp, "-f", "-o",
                     f"allow_other,hostname={host},usage_dir={self.usage_dir}" + (f",{options}" if options else "")]
        self.proc = None

    def start(self):
        self.log = open(self.logfile, "a")
        before = self.logfile.stat().st_size
        self.proc = subprocess.Popen([str(a) for a in self.args], stdout=self.log, stderr=subprocess.STDOUT)
        assert wait_for(lambda: f"at {self.mp}" in self.logfile.read_text()[before:] or self.proc.poll() is not None,
                        20)
        assert self.proc.poll() is None, self.logfile.read_text()
        return self

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        subprocess.run(["fusermount3", "-uz", str(self.mp)], capture_output=True)
        if self.proc:
            self.log.close()
        return self.proc.returncode

    def read(self, n, user="mesh_alice"):
        for _ in range(n):
            r = run(["cat", self.mp / "sales/orders/1.0.0/orders.csv"], user=user)
            assert r.returncode == 0, r.stderr


@pytest.fixture
def daemons(mesh, scratch):
    started = []

    def make(host, options=""):
        d = Daemon(mesh, scratch, host, options)
        started.append(d)
        return d.start()

    yield make
    for d in started:
        d.stop()
    for d in started:                           # a sanitizer build reports in the log
        text = d.logfile.read_text(errors="replace")
        for marker in ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer"):
            assert marker not in text, f"{d.logfile}: {text[-3000:]}"


def pg_data_events(postgres, host=None):
    where = f" AND host = '{host}'" if host else ""
    return int(postgres.sql(f"SELECT count(*) FROM meshfs_usage_events WHERE kind = 'data'{where}") or 0)


def pg_has_table(postgres):
    return postgres.sql("SELECT count(*) FROM pg_tables WHERE tablename = 'meshfs_usage_events'") == "1"


def test_events_reach_postgresql_and_reports_read_it(mesh, postgres, daemons, scratch):
    (mesh.path / "mesh.yaml").write_text((mesh.path / "mesh.yaml").read_text() +
                                         f"usage:\n  sink: \"{postgres.conninfo}\"\n")
    a = daemons("host-a")
    # passthrough off: reads reach the daemon, so bytes are counted
    b = daemons("host-b", options=f"passthrough=off,usage_sink={postgres.conninfo}&password=s3cr3t-pw")
    a.read(7)
    b.read(5, user="mesh_bob")
    assert wait_for(lambda: pg_has_table(postgres) and pg_data_events(postgres) == 12, 30)
    row = postgres.sql("SELECT user_name, program, domain, product, version, file, decision, bytes, complete"
                       " FROM meshfs_usage_events WHERE host = 'host-b' AND kind = 'data' LIMIT 1")
    assert row == f"mesh_bob|cat|sales|orders|1.0.0|orders.csv|allow|{len(DATA)}|t"
    assert pg_data_events(postgres, "host-a") == 7
    assert a.stop() == 0 and b.stop() == 0
    for log in (a.logfile, b.logfile):
        assert "s3cr3t-pw" not in log.read_text()
    # the report reads PostgreSQL: the local databases can go
    shutil.rmtree(a.usage_dir)
    shutil.rmtree(b.usage_dir)
    r = mesh.ctl("usage", "sales/orders", "--by", "host", "--format", "json", check=True)
    rows = {x["host"]: x["reads"] for x in json.loads(r.stdout)["rows"]}
    assert rows == {"host-a": 7, "host-b": 5}, r.stdout


def test_database_down_fails_no_read_and_loses_nothing(mesh, postgres, daemons):
    a = daemons("host-a", options=f"usage_sink={postgres.conninfo}")
    a.read(3)
    assert wait_for(lambda: pg_has_table(postgres) and pg_data_events(postgres) == 3, 30)
    postgres.stop()
    try:
        a.read(30)                       # every read is served
        time.sleep(1)
        assert a.proc.poll() is None
        assert "events wait in the local outbox" in a.logfile.read_text()
    finally:
        postgres.start()
    assert wait_for(lambda: pg_data_events(postgres) == 33, 40), pg_data_events(postgres)
    assert "reachable again" in a.logfile.read_text()
    assert a.stop() == 0
    assert pg_data_events(postgres) == 33


def test_replay_after_kill9_inserts_no_duplicate(mesh, postgres, daemons):
    a = daemons("host-a", options=f"usage_sink={postgres.conninfo}")
    a.read(10)
    assert wait_for(lambda: pg_has_table(postgres) and pg_data_events(postgres) == 10, 30)
    a.read(15)
    a.stop(signal.SIGKILL)               # some of these are neither in SQLite nor shipped
    a2 = daemons("host-a", options=f"usage_sink={postgres.conninfo}")
    a2.read(5)
    assert a2.stop() == 0
    assert pg_data_events(postgres) == 30, pg_data_events(postgres)
    # exactly the host's own record, each event once
    con = sqlite3.connect(f"file:{a.usage_dir}/usage.db?mode=ro", uri=True)
    local = sorted(r[0] for r in con.execute("SELECT event_id FROM events"))
    con.close()
    remote = sorted(int(x) for x in postgres.sql("SELECT event_id FROM meshfs_usage_events").split())
    assert remote == local


def test_status_and_metrics_show_the_sink_backlog(mesh, postgres, scratch):
    """The forwarder's backlog (outbox events not yet in PostgreSQL), the age
    of the oldest and the last error: in `meshctl status` for owners and
    governance (not for other users) and in the daemon's metrics file."""
    prom = scratch / "meshfs.prom"
    d = Daemon(mesh, scratch, "host-a", options=f"usage_sink={postgres.conninfo},metrics={prom}")
    # this host's usage in its state directory, where `meshctl status` reads it
    d.args[-1] = d.args[-1].replace(f",usage_dir={d.usage_dir}", "")
    d.start()
    try:
        d.read(3)
        assert wait_for(lambda: pg_has_table(postgres) and pg_data_events(postgres) == 3, 30)
        assert wait_for(lambda: "postgresql   connected, backlog 0," in mesh.ctl("status", check=True).stdout, 5)
        postgres.stop()
        try:
            d.read(5)
            # the discovery opens of `cat` count too: at least the 5 data opens wait

            def waiting():
                out = mesh.ctl("status", check=True).stdout
                line = [x for x in out.splitlines() if x.startswith("postgresql")]
                return line and "not connected" in line[0] and int(line[0].split("backlog ")[1].split(",")[0]) >= 5 \
                    and "oldest" in line[0] and out
            out = wait_for(waiting, 15) and mesh.ctl("status", check=True).stdout
            assert out, mesh.ctl("status").stdout
            error = [x for x in out.splitlines() if x.startswith("pg error")][0]
            assert error != "pg error     -"
            text = prom.read_text()
            assert 'meshfs_usage_sink_connected{host="host-a"} 0' in text
            backlog = [x for x in text.splitlines() if x.startswith("meshfs_usage_sink_backlog{")]
            assert backlog and float(backlog[0].split()[-1]) >= 5, text
            age = [x for x in text.splitlines() if x.startswith("meshfs_usage_sink_oldest_age_seconds{")]
            assert age and float(age[0].split()[-1]) > 0
            # owners see it, other users do not
            assert "postgresql" in mesh.ctl("status", user="mesh_bob", check=True).stdout
            outsider = mesh.ctl("status", user="mesh_dave", check=True).stdout
            assert "postgresql" not in outsider and "pg error" not in outsider and "backlog" in outsider
        finally:
            postgres.start()
        assert wait_for(lambda: "postgresql   connected, backlog 0," in mesh.ctl("status", check=True).stdout, 40)
        assert wait_for(lambda: 'meshfs_usage_sink_backlog{host="host-a"} 0' in prom.read_text(), 5)
    finally:
        assert d.stop() == 0
