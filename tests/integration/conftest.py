"""Integration test harness: real binaries, real stores, real FUSE mounts.

Every test gets its own store and mount point under a world-traversable
scratch directory (other Unix users act on the mount too).  Mounts are
always unmounted in teardown, even when the test failed: `fusermount3 -u`,
then a lazy `-uz`, then the daemon is killed, so a stale mount never
breaks the next test or run.

Stores are made by `meshctl init`, so they are locked down like a real one
(root owns everything, 0700/0600) and meshfs serves them without
`-o insecure_store`; a test that needs an insecure store passes that option
explicitly.  Ordinary users' meshctl reaches such a store through the mesh
service (Store.ctl starts `meshfs --service` when no daemon serves it).

Test users (created once per machine with useradd):
    mesh_alice  groups: mesh_analysts
    mesh_bob    groups: mesh_sales          (owner of domain sales in tests)
    mesh_carol  groups: mesh_analysts, mesh-pii
    mesh_dave   groups: (none)
    mesh_erin   groups: mesh_sales, mesh_analysts
    mesh_gina   groups: mesh-governance   (mesh.yaml's governance group)
"""
import hashlib
import os
import pathlib
import socket
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("MESHFS_BUILD", REPO / "build"))
MESHFS = BUILD / "meshfs"
MESHCTL = BUILD / "meshctl"
DEMO = REPO / "mounts" / "demo" / "releases"
# $MESHFS_TEST_SCRATCH: another root for this run's stores and mounts
SCRATCH_ROOT = pathlib.Path(os.environ.get("MESHFS_TEST_SCRATCH", "/var/tmp/meshfs-tests"))

GROUPS = ["mesh_analysts", "mesh_sales", "mesh-pii", "mesh-governance"]
USERS = {
    "mesh_alice": ["mesh_analysts"],
    "mesh_bob": ["mesh_sales"],
    "mesh_carol": ["mesh_analysts", "mesh-pii"],
    "mesh_dave": [],
    "mesh_erin": ["mesh_sales", "mesh_analysts"],
    "mesh_gina": ["mesh-governance"],
}


def _ensure_users():
    for g in GROUPS:
        if subprocess.run(["getent", "group", g], capture_output=True).returncode != 0:
            subprocess.run(["groupadd", g], check=True)
    for u, groups in USERS.items():
        if subprocess.run(["id", u], capture_output=True).returncode != 0:
            cmd = ["useradd", "--no-create-home", "--shell", "/bin/sh"]
            if groups:
                cmd += ["-G", ",".join(groups)]
            subprocess.run(cmd + [u], check=True)
        else:
            subprocess.run(["usermod", "-G", ",".join(groups), u], check=True)


@pytest.fixture(scope="session", autouse=True)
def environment():
    if os.geteuid() != 0:
        pytest.exit("integration tests need root (mounts with allow_other, test users)", 2)
    assert MESHFS.exists() and MESHCTL.exists(), f"build first: {MESHFS}"
    _ensure_users()
    # a run that was killed may have left mounts behind: clear the dead ones
    # (ENOTCONN).  Live ones may be another run's on this host: unmounting
    # them broke that run's tests at random (ENOENT in the middle of a test).
    for line in open("/proc/self/mounts"):
        mountpoint = line.split()[1]
        if not mountpoint.startswith(str(SCRATCH_ROOT) + "/"):
            continue
        r = subprocess.run(["stat", "-c", "%i", mountpoint], capture_output=True, text=True, timeout=10)
        if r.returncode != 0 and "not connected" in r.stderr:
            subprocess.run(["fusermount3", "-uz", mountpoint], capture_output=True)
    SCRATCH_ROOT.mkdir(parents=True, exist_ok=True)
    SCRATCH_ROOT.chmod(0o755)
    yield


@pytest.fixture
def scratch(monkeypatch):
    d = pathlib.Path(tempfile.mkdtemp(prefix="t-", dir=SCRATCH_ROOT))
    d.chmod(0o755)
    # each test's hosts keep their local state (index, usage) in its scratch
    # directory, never in the machine's /var/lib/meshfs
    monkeypatch.setenv("MESHFS_STATE_DIR", str(d / "state"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def as_user(user):
    """Command prefix that runs as `user` with its groups (setpriv)."""
    if user is None:
        return []
    return ["setpriv", "--reuid", user, "--regid", user, "--init-groups", "--"]


def run(cmd, user=None, check=False, env=None, timeout=120, **kw):
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    return subprocess.run(as_user(user) + [str(c) for c in cmd], capture_output=True,
                          text=True, env=full_env, timeout=timeout, check=check, **kw)


RUNTIME_DIR = pathlib.Path(os.environ.get("MESHFS_RUNTIME_DIR", "/run/meshfs"))
_SERVICES = []   # meshfs --service processes started by Store.ensure_service


def socket_path(path, mountpoint=False):
    digest = hashlib.sha256(os.path.realpath(path).encode()).hexdigest()[:16]
    return RUNTIME_DIR / f"{'m' if mountpoint else 's'}-{digest}.sock"


def service_alive(path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(str(socket_path(path)))
            return True
        except OSError:
            return False


@pytest.fixture(autouse=True)
def _stop_services():
    yield
    while _SERVICES:
        p = _SERVICES.pop()
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


class Store:
    """A store directory plus the meshctl that acts on it.  Ordinary users'
    meshctl reaches the store through the mesh service: ctl() as a user
    starts `meshfs --service` for the store when no daemon serves it."""

    def __init__(self, path):
        self.path = pathlib.Path(path)

    def ensure_service(self):
        if service_alive(self.path):
            return
        p = subprocess.Popen([str(MESHFS), "--service", str(self.path), "-f"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _SERVICES.append(p)
        deadline = time.time() + 10
        while time.time() < deadline and not service_alive(self.path):
            assert p.poll() is None, "meshfs --service exited"
            time.sleep(0.02)

    def ctl(self, *args, user=None, check=False, env=None, timeout=300):
        if user not in (None, "root"):
            self.ensure_service()
        r = run([MESHCTL, "--store", self.path, *args], user=user, env=env, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"meshctl {' '.join(map(str, args))} -> {r.returncode}\n"
                                 f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}")
        return r

    def create_domain(self, name, *owners):
        args = ["domain", "create", name]
        for o in owners or ("group:mesh_sales", "user:root"):
            args += ["--owner", o]
        return self.ctl(*args, check=True)

    def publish(self, release_dir, user=None, check=True):
        return self.ctl("publish", release_dir, user=user, check=check)


def make_store(path):
    """A store as `meshctl init` lays it out: owned by root, nothing readable
    or writable by anyone else (meshfs refuses to serve it otherwise)."""
    s = Store(path)
    r = s.ctl("init")
    assert r.returncode == 0, r.stderr
    st = os.stat(s.path)
    assert st.st_uid == 0 and st.st_mode & 0o077 == 0, oct(st.st_mode)
    return s


@pytest.fixture
def store(scratch):
    return make_store(scratch / "store")


class Mount:
    def __init__(self, store, mountpoint, options, extra_args=()):
        self.store = store
        self.path = pathlib.Path(mountpoint)
        self.options = options
        self.extra_args = list(extra_args)
        self.proc = None

    def start(self):
        self.path.mkdir(parents=True, exist_ok=True)
        self.path.chmod(0o755)
        options = self.options
        if "view_cache=" not in options:
            # each mount its own view cache (never the host's /var/cache)
            options += ",view_cache=" + str(self.path.parent / (self.path.name + "-views"))
        cmd = [MESHFS, self.store.path, self.path, "-f", "-o", options] + self.extra_args
        self.log = open(self.path.parent / (self.path.name + ".log"), "w")
        self.proc = subprocess.Popen([str(c) for c in cmd], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while time.time() < deadline:
            if os.path.ismount(self.path):
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise AssertionError(f"meshfs did not mount: {self.read_log()}")

    def read_log(self):
        try:
            return (self.path.parent / (self.path.name + ".log")).read_text()
        except OSError:
            return ""

    def stop(self):
        if os.path.ismount(self.path):
            if subprocess.run(["fusermount3", "-u", str(self.path)], capture_output=True).returncode:
                subprocess.run(["fusermount3", "-uz", str(self.path)], capture_output=True)
        if self.proc and self.proc.poll() is None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.log.close()
        self.returncode = self.proc.returncode if self.proc else None

    def __truediv__(self, other):
        return self.path / other


@pytest.fixture
def mounter(scratch):
    """Factory: mounter(store, options=...) mounts and is always unmounted."""
    mounts = []

    def make(store, options="allow_other", name="mnt", extra_args=()):
        m = Mount(store, scratch / name, options, extra_args)
        mounts.append(m)
        return m.start()

    yield make
    for m in mounts:
        m.stop()
    # a sanitizer build reports memory errors and leaks in the daemon's log
    for m in mounts:
        log = m.read_log()
        for marker in ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer"):
            assert marker not in log, f"meshfs ({m.path}): {log[-3000:]}"


def wait_for(predicate, timeout=5.0, interval=0.05):
    """Poll until predicate() is true.  `timeout` is what a quiet machine
    needs; on a loaded one (load average above the CPU count, as when
    several test runs share it) it is stretched by that ratio, up to 6x:
    these waits say that something happens, never how fast (speed is for
    make bench)."""
    load = os.getloadavg()[0] / (os.cpu_count() or 1)
    deadline = time.time() + timeout * min(6.0, max(1.0, load))
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def copy_release(src, dst_parent, **changes):
    """Copy a demo release directory, optionally rewriting contract fields
    (version=..., product=...) with plain text substitution."""
    src = pathlib.Path(src)
    dst = pathlib.Path(dst_parent) / (src.name + "-" + "-".join(f"{k}{v}" for k, v in changes.items())
                                      if changes else src.name)
    shutil.copytree(src, dst)
    if changes:
        text = (dst / "contract.yaml").read_text()
        lines = []
        for line in text.splitlines(keepends=True):
            for key, value in changes.items():
                field = {"product": "dataProduct"}.get(key, key)
                if line.startswith(field + ":"):
                    line = f"{field}: {value}\n"
            lines.append(line)
        (dst / "contract.yaml").write_text("".join(lines))
    return dst


CONTRACT_TEMPLATE = """\
apiVersion: v3.1.0
kind: DataContract
id: {id}
name: {product}
version: {version}
status: active
domain: {domain}
dataProduct: {product}
description:
  purpose: Test product {product} of domain {domain}
  usage: Integration tests
  limitations: Synthetic data
team:
  name: {domain}-team
  members:
    - username: mesh_bob
      role: owner
support:
  - channel: "#{domain}-data"
    tool: slack
{extra}schema:
{objects}"""


def make_release(parent, domain, product, version, files=None, extra="", columns=None,
                 with_schema=False):
    """Write a release directory with a valid ODCS v3 contract describing
    `files` ({name: text}).  CSV columns come from the header row unless
    `columns` ({file: [(name, type, classification)]}) says otherwise."""
    import uuid
    files = files or {"orders.csv": "order_id,email,amount\n1,a@example.com,10.5\n2,b@example.com,3\n"}
    d = pathlib.Path(parent) / f"{domain}-{product}-{version}"
    d.mkdir(parents=True, exist_ok=True)
    objects = ""
    for name, text in files.items():
        data = text.encode() if isinstance(text, str) else text
        (d / name).write_bytes(data)
        cols = (columns or {}).get(name)
        if cols is None and name.endswith(".csv"):
            header = data.split(b"\n", 1)[0].decode().strip()
            cols = [(c, "string", "pii" if "email" in c else None) for c in header.split(",")]
        if cols is None:
            cols = []
        objects += f"  - name: {name.rsplit('.', 1)[0]}\n    physicalName: {name}\n    physicalType: file\n"
        if cols:
            objects += "    properties:\n"
        for cname, ctype, cls in cols:
            objects += f"      - name: {cname}\n        logicalType: {ctype}\n"
            if cls:
                objects += f"        classification: {cls}\n"
    (d / "contract.yaml").write_text(CONTRACT_TEMPLATE.format(
        id=uuid.uuid5(uuid.NAMESPACE_URL, f"{domain}/{product}/{version}"),
        domain=domain, product=product, version=version, extra=extra, objects=objects))
    return d
