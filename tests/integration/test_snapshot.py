"""The daemon's snapshot at scale (issue 13, "Bounds"): domains and products
from this host's index, each product's versions and files read from the
store on first use and kept in an LRU bounded by -o release_cache, inode
numbers that stay the same across evictions, changes seen after mount,
and a walk of the store (logged, with the reason) when the index is
missing or damaged.  Access decisions are the same either way."""
import errno
import glob
import hashlib
import os
import subprocess
import threading
import time

import pytest

from conftest import make_release, run, wait_for

RESTRICTED = "customProperties:\n  - property: meshRestricted\n    value: true\n"


def rows(product, version):
    return f"id,product,version\n1,{product},{version}\n2,{product},{version}\n"


@pytest.fixture
def many(store, scratch):
    """Two domains, 8 products of 2 versions, one restricted product."""
    store.create_domain("sales", "group:mesh_sales", "user:root")
    store.create_domain("ops", "group:mesh_sales", "user:root")
    rel = scratch / "rel"
    expected = {}
    for i in range(8):
        domain = "sales" if i % 2 else "ops"
        for version in ("1.0.0", "1.1.0"):
            product = f"p{i}"
            store.publish(make_release(rel, domain, product, version, {"data.csv": rows(product, version)}))
            expected[(domain, product, version)] = rows(product, version)
    store.publish(make_release(rel, "sales", "secret", "1.0.0", {"data.csv": rows("secret", "1.0.0")},
                               extra=RESTRICTED))
    store.ctl("grant", "sales", "group:mesh_analysts", "--reason", "tests", check=True)
    return store, expected


def build_index(store):
    store.ctl("list", check=True)    # builds this host's index
    assert glob.glob(os.environ["MESHFS_STATE_DIR"] + "/*/index.db")


def index_path():
    found = glob.glob(os.environ["MESHFS_STATE_DIR"] + "/*/index.db")
    assert len(found) == 1, found
    return found[0]


def snapshot_lines(m):
    return [line for line in m.read_log().splitlines() if "snapshot of" in line]


def read_all(m, expected):
    """Read every release's data file: {path: (inode, sha256)}."""
    seen = {}
    for (domain, product, version), text in expected.items():
        path = m / domain / product / version / "data.csv"
        with open(path, "rb") as f:
            data = f.read()
        assert data == text.encode(), path
        seen[str(path)] = (os.stat(path).st_ino, hashlib.sha256(data).hexdigest())
    return seen


def test_snapshot_from_index_loads_on_demand_and_evicts(many, mounter):
    store, expected = many
    build_index(store)
    m = mounter(store, options="allow_other,release_cache=2,log_level=debug")
    assert any("from this host's index" in line for line in snapshot_lines(m)), m.read_log()
    assert sorted(os.listdir(m.path)) == ["ops", "sales"]
    assert sorted(os.listdir(m / "sales")) == ["p1", "p3", "p5", "p7", "secret"]
    first = read_all(m, expected)
    # 8 products of 2 releases through a cache of 2 releases: products were
    # evicted and read again, and nothing moved
    assert "evictions" in m.read_log()
    evictions = [line for line in m.read_log().splitlines() if "release cache:" in line]
    assert evictions and int(evictions[-1].rsplit(" ", 2)[-2]) > 0, evictions[-3:]
    again = read_all(m, dict(reversed(list(expected.items()))))
    assert again == first
    # same inode numbers as a walk of the store gives (the catalog's hash of the path)
    inodes = {p: ino for p, (ino, _) in first.items()}
    assert len(set(inodes.values())) == len(inodes)
    assert os.readlink(m / "ops" / "p0" / "latest") == "1.1.0"
    assert {"1.0.0", "1.1.0", "latest"} <= set(os.listdir(m / "ops" / "p0"))


def tree(root):
    """Every path below root: (mode, inode, size, mtime of files and
    versions; a link's target)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            depth = rel.count("/")
            mtime = st.st_mtime_ns if depth >= 2 else None   # products' and domains' differ (see README)
            out[rel] = (st.st_mode, st.st_ino, st.st_size, mtime,
                        os.readlink(p) if os.path.islink(p) else None)
    return out


def test_same_tree_as_a_walk_of_the_store(many, mounter, scratch):
    store, expected = many
    build_index(store)
    lazy = mounter(store, options="allow_other,release_cache=3", name="lazy")
    walk = mounter(store, options=f"allow_other,state_dir={scratch / 'elsewhere'}", name="walk")
    assert any("from this host's index" in line for line in snapshot_lines(lazy)), lazy.read_log()
    assert any("walking the store" in line for line in snapshot_lines(walk)), walk.read_log()
    a, b = tree(lazy.path), tree(walk.path)
    assert a == b
    assert len(a) > 60


def test_open_file_and_held_inodes_survive_eviction(many, mounter):
    store, expected = many
    build_index(store)
    m = mounter(store, options="allow_other,release_cache=1")
    path = m / "ops" / "p0" / "1.0.0" / "data.csv"
    f = open(path, "rb")
    ino = os.fstat(f.fileno()).st_ino
    st_dir = os.stat(m / "ops" / "p0" / "1.0.0")
    # evict ops/p0 many times over
    for (domain, product, version) in expected:
        if product != "p0":
            assert (m / domain / product / version / "data.csv").read_bytes()
    # the open file reads on, and the kernel's cached inodes still answer
    assert f.read() == expected[("ops", "p0", "1.0.0")].encode()
    f.close()
    assert os.fstat(os.open(path, os.O_RDONLY)).st_ino == ino
    assert os.stat(m / "ops" / "p0" / "1.0.0").st_ino == st_dir.st_ino
    assert os.stat(path).st_ino == ino
    # and from another user's lookups too (the kernel shares them)
    r = run(["cat", path], user="mesh_bob")   # ops is owned by group mesh_sales
    assert r.returncode == 0 and r.stdout == expected[("ops", "p0", "1.0.0")], r.stderr


def test_changes_after_mount(many, mounter, scratch):
    store, expected = many
    build_index(store)
    m = mounter(store, options="allow_other,poll=0.2,release_cache=2,log_level=debug")
    assert (m / "ops" / "p0" / "1.1.0" / "data.csv").read_bytes()
    # a new release of a loaded product and a new product appear
    store.publish(make_release(scratch / "rel2", "ops", "p0", "1.2.0", {"data.csv": rows("p0", "1.2.0")}))
    store.publish(make_release(scratch / "rel2", "ops", "fresh", "0.1.0", {"data.csv": rows("fresh", "0.1.0")}))
    assert wait_for(lambda: "1.2.0" in os.listdir(m / "ops" / "p0"), timeout=10)
    assert wait_for(lambda: os.path.exists(m / "ops" / "p0" / "latest") and
                    os.readlink(m / "ops" / "p0" / "latest") == "1.2.0", timeout=10)
    assert (m / "ops" / "p0" / "latest" / "data.csv").read_text() == rows("p0", "1.2.0")
    assert wait_for(lambda: "fresh" in os.listdir(m / "ops"), timeout=10)
    assert (m / "ops" / "fresh" / "0.1.0" / "data.csv").read_text() == rows("fresh", "0.1.0")
    # a retired release disappears, from the listing and from lookups
    held = m / "ops" / "p2" / "1.0.0"
    assert os.path.isdir(held)
    held_dir = os.open(held, os.O_RDONLY | os.O_DIRECTORY)     # a working directory inside it
    held_file = open(held / "data.csv", "rb")                  # a reader that opened before
    try:
        store.ctl("retire", "ops/p2", "1.0.0", "--reason", "gone", check=True)
        assert wait_for(lambda: "1.0.0" not in os.listdir(m / "ops" / "p2"), timeout=10)
        assert wait_for(lambda: not os.path.exists(held), timeout=10)
        assert not os.path.exists(held / "data.csv")
        with pytest.raises(FileNotFoundError):     # by path: gone, not stale
            (held / "data.csv").read_bytes()
        with pytest.raises(OSError) as stale:      # below a directory held open: stale, as on NFS
            os.open("contract.yaml", os.O_RDONLY, dir_fd=held_dir)
        assert stale.value.errno == errno.ESTALE, stale.value
        assert held_file.read() == rows("p2", "1.0.0").encode()   # an open file keeps reading
    finally:
        held_file.close()
        os.close(held_dir)
    # a deprecated one says so in its contract
    # (still readable all along: a deprecated release stays, so a read
    # that fails on the way is a defect, reported with the daemon's log)
    failed = []

    def says_deprecated():
        try:
            return "deprecated" in (m / "ops" / "p2" / "1.1.0" / "contract.yaml").read_text()
        except OSError as e:
            failed.append(f"{time.strftime('%H:%M:%S')} {e!r}")
            return False

    def log_tail():
        return "\n".join(m.read_log().splitlines()[-300:])
    store.ctl("deprecate", "ops/p2", "1.1.0", "--reason", "old", check=True)
    assert wait_for(says_deprecated, timeout=10), (failed, log_tail())
    assert not failed, (failed, log_tail())
    assert any("from this host's index" in line for line in snapshot_lines(m)), m.read_log()
    assert not any("walking the store" in line for line in snapshot_lines(m)), m.read_log()
    # after a change only the products the change log names were read from the index
    assert any("changed products only" in line for line in snapshot_lines(m)), snapshot_lines(m)


@pytest.mark.parametrize("source", ["index", "walk"])
def test_held_names_stay_readable_while_products_change(many, mounter, scratch, source):
    """Readers read every release's contract and data in a loop while
    versions are deprecated (their contract moves to a re-stated copy,
    another inode) and new versions published.  A product loaded from the
    store between a change and the daemon's rescan no longer holds the
    inode the kernel has for the name: that open used to fail with ENOENT
    (the kernel must be told ESTALE and look the name up again)."""
    store, expected = many
    if source == "index":
        build_index(store)
    m = mounter(store, options="allow_other,poll=0.2,release_cache=2,log_level=debug")
    paths = [m / d / p / v / name for (d, p, v) in expected for name in ("contract.yaml", "data.csv")]
    stop = threading.Event()
    failed = []

    def reader(mine):
        while not stop.is_set():
            for path in mine:
                try:
                    path.read_bytes()
                except OSError as e:
                    failed.append(f"{time.strftime('%H:%M:%S')} {path.relative_to(m.path)}: {e!r}")
    readers = [threading.Thread(target=reader, args=(paths[i::3],)) for i in range(3)]
    for t in readers:
        t.start()
    try:
        for i in range(0, 8, 2):
            product = f"p{i}"
            for version in ("1.0.0", "1.1.0"):
                store.ctl("deprecate", f"ops/{product}", version, "--reason", "old", check=True)
                time.sleep(0.15)
            store.publish(make_release(scratch / "next", "ops", product, "1.2.0",
                                       {"data.csv": rows(product, "1.2.0")}))
            time.sleep(0.3)
    finally:
        stop.set()
        for t in readers:
            t.join()
    assert not failed, (len(failed), failed[:10], "\n".join(m.read_log().splitlines()[-200:]))
    assert "deprecated" in (m / "ops" / "p6" / "1.1.0" / "contract.yaml").read_text()


@pytest.mark.parametrize("damage", ["absent", "corrupt"])
def test_walks_the_store_when_the_index_cannot_vouch(many, mounter, damage):
    store, expected = many
    if damage == "corrupt":
        build_index(store)
        db = index_path()
        for side in ("-wal", "-shm"):
            if os.path.exists(db + side):
                os.unlink(db + side)
        with open(db, "wb") as f:
            f.write(b"this is not an index" * 100)
    m = mounter(store, options="allow_other,release_cache=2")
    lines = snapshot_lines(m)
    assert any("walking the store" in line for line in lines), m.read_log()
    assert any(("no index" if damage == "absent" else "cannot be refreshed") in line for line in lines), lines
    read_all(m, expected)
    if damage == "corrupt":
        # left for meshctl reindex: the daemon did not rebuild it on the mount path
        assert open(index_path(), "rb").read(20) == b"this is not an index"


@pytest.mark.parametrize("source", ["index", "walk"])
def test_access_decisions_do_not_depend_on_the_source(many, mounter, source):
    store, expected = many
    if source == "index":
        build_index(store)
    m = mounter(store, options="allow_other,release_cache=1")
    want = "from this host's index" if source == "index" else "walking the store"
    assert any(want in line for line in snapshot_lines(m)), m.read_log()
    # a restricted product: hidden from someone without a grant, there for its owners
    assert "secret" not in run(["ls", m / "sales"], user="mesh_dave").stdout.split()
    r = run(["cat", m / "sales" / "secret" / "1.0.0" / "data.csv"], user="mesh_dave")
    assert r.returncode != 0
    r = run(["cat", m / "sales" / "secret" / "1.0.0" / "data.csv"], user="mesh_bob")
    assert r.returncode == 0 and r.stdout == rows("secret", "1.0.0"), r.stderr
    # data needs a grant: alice (analysts) reads sales, dave reads nothing
    assert run(["cat", m / "sales" / "p1" / "1.0.0" / "data.csv"], user="mesh_alice").returncode == 0
    r = run(["cat", m / "sales" / "p1" / "1.0.0" / "data.csv"], user="mesh_dave")
    assert r.returncode != 0 and "Permission denied" in r.stderr
    assert run(["cat", m / "ops" / "p0" / "1.0.0" / "contract.yaml"], user="mesh_dave").returncode == 0


def test_switch_from_a_walk_to_the_index_keeps_held_inodes(many, mounter, scratch):
    store, expected = many
    m = mounter(store, options="allow_other,poll=0.2,release_cache=1")
    assert any("walking the store" in line for line in snapshot_lines(m)), m.read_log()
    path = m / "sales" / "p1" / "1.0.0" / "data.csv"
    ino = os.stat(path).st_ino
    # the index appears (meshctl list builds it) and the store changes: the
    # next snapshot comes from the index, with lazy products
    build_index(store)
    store.publish(make_release(scratch / "rel2", "ops", "later", "1.0.0", {"data.csv": rows("later", "1.0.0")}))
    assert wait_for(lambda: any("from this host's index" in line for line in snapshot_lines(m)), timeout=10)
    assert wait_for(lambda: "later" in os.listdir(m / "ops"), timeout=10)
    # the kernel's cached entry still opens the same file (found through the
    # product it belongs to, loaded again)
    for (domain, product, version) in expected:
        if product != "p1":
            (m / domain / product / version / "data.csv").read_bytes()
    with open(path, "rb") as f:
        assert os.fstat(f.fileno()).st_ino == ino
        assert f.read() == expected[("sales", "p1", "1.0.0")].encode()
