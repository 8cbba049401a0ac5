"""The mesh mount (issue 2): tree shape, byte equality, latest, read-only,
live publishing, atomic publish, daemon lifecycle, mount helper."""
import concurrent.futures
import errno
import filecmp
import hashlib
import os
import random
import signal
import subprocess
import time

import pytest

from conftest import (MESHCTL, MESHFS, Store, copy_release, make_release, make_store, run,
                      wait_for)


def publish_all(store, scratch, releases):
    for (domain, product, version, files) in releases:
        d = make_release(scratch / "rel", domain, product, version, files)
        store.publish(d)


@pytest.fixture
def small_mesh(store, scratch):
    store.create_domain("sales")
    store.create_domain("customer")
    publish_all(store, scratch, [
        ("sales", "orders", "1.0.0", None),
        ("sales", "orders", "1.1.0", None),
        ("sales", "returns", "0.1.0", None),
        ("customer", "profiles", "2.0.0",
         {"profiles.jsonl": '{"id": 1, "email": "a@example.com"}\n{"id": 2, "email": "b@example.com"}\n'}),
    ])
    return store


def test_tree_shape(small_mesh, mounter, scratch):
    m = mounter(small_mesh)
    assert sorted(os.listdir(m.path)) == ["customer", "sales"]
    assert sorted(os.listdir(m / "sales")) == ["orders", "returns"]
    assert sorted(os.listdir(m / "sales/orders")) == ["1.0.0", "1.1.0", "README.md", "latest", "product.yaml"]
    assert os.readlink(m / "sales/orders/latest") == "1.1.0"
    assert sorted(os.listdir(m / "sales/orders/1.1.0")) == ["README.md", "contract.yaml", "orders.csv",
                                                             "quality.json", "schema.json"]
    ls = run(["ls", "-l", m / "sales/orders"], check=True).stdout
    assert "latest -> 1.1.0" in ls
    st = os.stat(m / "sales/orders/1.1.0/orders.csv")
    assert st.st_mode & 0o777 in (0o444, 0o440)
    # stable: same inode numbers and sizes on a second look and after remount
    st2 = os.stat(m / "sales/orders/1.1.0/orders.csv")
    assert (st.st_ino, st.st_size, st.st_mtime) == (st2.st_ino, st2.st_size, st2.st_mtime)
    m.stop()
    m2 = mounter(small_mesh, name="mnt2")
    st3 = os.stat(m2 / "sales/orders/1.1.0/orders.csv")
    assert (st.st_ino, st.st_size, st.st_mtime) == (st3.st_ino, st3.st_size, st3.st_mtime)


READ_MODES = ["allow_other", "allow_other,passthrough=off"]


@pytest.mark.parametrize("options", READ_MODES)
def test_data_files_equal_originals(small_mesh, mounter, scratch, options):
    m = mounter(small_mesh, options)
    src = scratch / "rel" / "sales-orders-1.1.0" / "orders.csv"
    dst = m / "sales/orders/latest/orders.csv"
    assert subprocess.run(["cmp", src, dst]).returncode == 0
    assert os.stat(dst).st_size == os.stat(src).st_size == len(dst.read_bytes())
    head = run(["head", "-n", "2", dst], check=True).stdout
    assert head.splitlines()[0] == "order_id,email,amount"
    assert run(["grep", "-c", "example.com", dst], check=True).stdout.strip() == "2"
    # the schema sidecar is derived from the contract when the release has none
    import json
    schema = json.loads((m / "sales/orders/latest/schema.json").read_text())
    assert [f["name"] for f in schema["fields"]] == ["order_id", "email", "amount"]
    jl = (m / "customer/profiles/latest/profiles.jsonl").read_text().splitlines()
    assert json.loads(jl[1])["id"] == 2


@pytest.mark.parametrize("options", READ_MODES)
def test_large_file_random_reads_threads(store, scratch, mounter, options):
    store.create_domain("sales")
    rel = scratch / "big"
    rel.mkdir()
    size = 100 * 1024 * 1024
    rng = random.Random(7)
    block = bytes(rng.getrandbits(8) for _ in range(1 << 16))
    with open(rel / "blob.bin", "wb") as f:
        for i in range(size // len(block)):
            f.write(block[i % 7:] + block[:i % 7])
    make_release(scratch / "rel", "sales", "blob", "1.0.0", files={})
    d = scratch / "rel" / "sales-blob-1.0.0"
    os.replace(rel / "blob.bin", d / "blob.bin")
    (d / "contract.yaml").write_text((d / "contract.yaml").read_text().replace(
        "schema:\n", "schema:\n  - name: blob\n    physicalName: blob.bin\n    physicalType: file\n"))
    store.publish(d)
    m = mounter(store, options)
    path = m / "sales/blob/1.0.0/blob.bin"
    assert subprocess.run(["cmp", d / "blob.bin", path]).returncode == 0
    with open(d / "blob.bin", "rb") as f:
        original = f.read()

    def reader(seed):
        r = random.Random(seed)
        fd = os.open(path, os.O_RDONLY)
        try:
            for _ in range(300):
                off = r.randrange(0, size)
                n = r.choice([1, 4096, 65536, 1 << 20])
                assert os.pread(fd, n, off) == original[off:off + n]
        finally:
            os.close(fd)
        return True

    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        assert all(ex.map(reader, range(8)))


def test_latest_with_prereleases(store, scratch, mounter):
    store.create_domain("sales")
    publish_all(store, scratch, [("sales", "orders", "1.0.0-rc.1", None),
                                 ("sales", "orders", "1.0.0-beta.2", None)])
    m = mounter(store)
    assert os.readlink(m / "sales/orders/latest") == "1.0.0-rc.1"
    publish_all(store, scratch, [("sales", "orders", "0.9.0", None)])
    assert wait_for(lambda: os.readlink(m / "sales/orders/latest") == "0.9.0", 3)
    publish_all(store, scratch, [("sales", "orders", "1.0.0", None), ("sales", "orders", "2.0.0-alpha", None)])
    assert wait_for(lambda: os.readlink(m / "sales/orders/latest") == "1.0.0", 3)
    assert (m / "sales/orders/latest/orders.csv").read_text().startswith("order_id")


WRITES = {
    "create": lambda p: open(p / "sales/new.txt", "w"),
    "open_write": lambda p: open(p / "sales/orders/1.0.0/orders.csv", "r+"),
    "append": lambda p: open(p / "sales/orders/1.0.0/orders.csv", "a"),
    "truncate": lambda p: os.truncate(p / "sales/orders/1.0.0/orders.csv", 0),
    "mkdir": lambda p: os.mkdir(p / "sales/x"),
    "rmdir": lambda p: os.rmdir(p / "sales/orders/1.0.0"),
    "unlink": lambda p: os.unlink(p / "sales/orders/1.0.0/orders.csv"),
    "rename": lambda p: os.rename(p / "sales/orders/1.0.0", p / "sales/orders/9.0.0"),
    "chmod": lambda p: os.chmod(p / "sales/orders/1.0.0/orders.csv", 0o666),
    "chown": lambda p: os.chown(p / "sales/orders/1.0.0/orders.csv", 1, 1),
    "utime": lambda p: os.utime(p / "sales/orders/1.0.0/orders.csv", (0, 0)),
    "symlink": lambda p: os.symlink("x", p / "sales/link"),
    "link": lambda p: os.link(p / "sales/orders/1.0.0/orders.csv", p / "sales/hard"),
    "setxattr": lambda p: os.setxattr(p / "sales/orders/1.0.0/orders.csv", "user.x", b"1"),
    "mknod": lambda p: os.mkfifo(p / "sales/fifo"),
}


@pytest.mark.parametrize("op", sorted(WRITES))
def test_writes_are_erofs(small_mesh, mounter, op):
    m = mounter(small_mesh)
    with pytest.raises(OSError) as e:
        WRITES[op](m.path)
    assert e.value.errno == errno.EROFS, e.value


def test_publish_while_mounted(small_mesh, mounter, scratch):
    m = mounter(small_mesh)
    os.listdir(m / "sales")            # let the kernel cache the listings
    os.listdir(m / "sales/orders")
    publish_all(small_mesh, scratch, [("sales", "orders", "1.2.0", None), ("sales", "refunds", "1.0.0", None)])
    t0 = time.time()
    assert wait_for(lambda: "1.2.0" in os.listdir(m / "sales/orders"), 2.0)
    assert wait_for(lambda: os.readlink(m / "sales/orders/latest") == "1.2.0", 2.0)
    assert wait_for(lambda: "refunds" in os.listdir(m / "sales"), 2.0)
    assert time.time() - t0 < 2.0
    assert (m / "sales/refunds/latest/orders.csv").exists()


def test_publish_refuses_duplicates_and_unsafe_names(small_mesh, scratch):
    r = small_mesh.publish(make_release(scratch / "dup", "sales", "orders", "1.0.0"), check=False)
    assert r.returncode == 1
    assert "already exists" in r.stderr
    for domain, product, version in [("sales", "Orders", "1.0.0"), ("sales", "a/b", "1.0.0"),
                                     ("sales", "orders", "1.0"), ("sales", "orders", "v1.0.0"),
                                     ("Sales", "orders", "1.0.0"), ("sales", "..", "1.0.0")]:
        d = scratch / "bad" / f"{abs(hash((domain, product, version)))}"
        d.mkdir(parents=True)
        rel = make_release(d, "sales", "orders", "7.0.0")
        text = (rel / "contract.yaml").read_text()
        text = text.replace("domain: sales", f"domain: {domain}").replace(
            "dataProduct: orders", f"dataProduct: '{product}'").replace("version: 7.0.0", f"version: {version}")
        (rel / "contract.yaml").write_text(text)
        r = small_mesh.publish(rel, check=False)
        assert r.returncode == 1, (domain, product, version, r.stdout, r.stderr)
        assert "contract.yaml" in r.stdout + r.stderr
    # nothing was installed by the refusals
    assert sorted(n for n in os.listdir(small_mesh.path / "domains/sales/orders") if not n.startswith(".")) == ["1.0.0", "1.1.0"]


def test_kill_during_publish_leaves_nothing(store, scratch, mounter):
    store.create_domain("sales")
    m = mounter(store)
    rel = make_release(scratch / "rel", "sales", "huge", "1.0.0",
                       files={"blob.bin": b""}, columns={"blob.bin": []})
    with open(rel / "blob.bin", "wb") as f:
        f.write(os.urandom(1 << 20) * 300)   # 300 MB: the copy takes a while
    product_dir = store.path / "domains/sales/huge"
    for delay in (0.05, 0.3, 0.8):
        p = subprocess.Popen([str(MESHCTL), "--store", str(store.path), "publish", str(rel)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait()
        # whatever was staged is invisible: no version, in the store or the mount
        versions = [n for n in os.listdir(product_dir) if not n.startswith(".")] \
            if product_dir.exists() else []
        assert versions == [] or versions == ["1.0.0"] and (product_dir / "1.0.0/.manifest.json").exists()
        if versions:
            break
        assert not (m / "sales/huge").exists()
    # the next publish cleans up and succeeds
    if not (product_dir / "1.0.0").exists():
        store.publish(rel)
    assert wait_for(lambda: (m / "sales/huge/1.0.0/blob.bin").exists(), 3)
    assert os.stat(m / "sales/huge/1.0.0/blob.bin").st_size == 300 << 20
    store.ctl("reindex", check=True)
    assert [n for n in os.listdir(product_dir) if n.startswith(".tmp-")] == []


def test_pandas_reads_mounted_csv(small_mesh, mounter):
    m = mounter(small_mesh)
    code = ("import pandas; df = pandas.read_csv('%s'); print(df.shape[0], df.shape[1], df['amount'].sum())"
            % (m / "sales/orders/latest/orders.csv"))
    out = run(["/usr/bin/python3", "-c", code], user="mesh_bob", check=True).stdout.split()
    assert out == ["2", "3", "13.5"]


def test_large_directory_listing_concurrent(store, scratch, mounter):
    store.create_domain("sales")
    base = make_release(scratch / "rel", "sales", "p0000", "1.0.0")
    for i in range(300):
        rel = copy_release(base, scratch / "many", product=f"p{i:04d}")
        store.publish(rel)
    m = mounter(store)
    expected = sorted(f"p{i:04d}" for i in range(300))

    def lister(_):
        return sorted(os.listdir(m / "sales"))

    with concurrent.futures.ThreadPoolExecutor(6) as ex:
        assert all(r == expected for r in ex.map(lister, range(12)))
    out = run(["ls", "-l", m / "sales"], check=True).stdout
    assert out.count("\n") == 301


def test_bad_arguments(scratch, store):
    (scratch / "mp").mkdir()
    cases = [
        [MESHFS],
        [MESHFS, store.path],
        [MESHFS, scratch / "nope", scratch / "mp"],
        [MESHFS, scratch, scratch / "mp"],            # a directory that is not a store
        [MESHFS, store.path, scratch / "mp", "-o", "no_such_option"],
    ]
    for cmd in cases:
        r = run(cmd, timeout=20)
        assert r.returncode != 0, cmd
        assert r.stderr.strip(), cmd
        assert len(r.stderr.strip().splitlines()) <= 2, r.stderr
        assert not os.path.ismount(scratch / "mp")
    r = run([MESHFS, scratch, scratch / "mp"])
    assert "not a meshfs store" in r.stderr
    assert run([MESHFS, "--help"]).returncode == 0
    assert "meshfs" in run([MESHFS, "--version"]).stdout


def test_sigterm_unmounts_cleanly(small_mesh, mounter):
    m = mounter(small_mesh)
    m.proc.send_signal(signal.SIGTERM)
    assert m.proc.wait(timeout=10) == 0
    assert wait_for(lambda: not os.path.ismount(m.path), 5)


def test_daemonizes_and_mount_helper(small_mesh, scratch):
    mp = scratch / "helper"
    mp.mkdir()
    env = {"PATH": f"{MESHFS.parent}:{os.environ['PATH']}"}
    try:
        # the fstab path: mount.fuse3 runs `meshfs STORE MP -o ...`, adding dev,suid
        r = run(["mount.fuse3", small_mesh.path, mp, "-t", "meshfs", "-o", "allow_other"], env=env, timeout=30)
        assert r.returncode == 0, r.stderr
        assert os.path.ismount(mp)
        opts = [l for l in open("/proc/self/mounts") if f" {mp} " in l][0].split()[3].split(",")
        assert "nosuid" in opts and "nodev" in opts and "ro" in opts
        assert os.readlink(mp / "sales/orders/latest") == "1.1.0"
    finally:
        subprocess.run(["fusermount3", "-u", str(mp)])
        subprocess.run(["fusermount3", "-uz", str(mp)], capture_output=True)
    # plain daemon mode: returns once mounted
    mp2 = scratch / "daemon"
    mp2.mkdir()
    try:
        r = run([MESHFS, small_mesh.path, mp2, "-o", "allow_other"], timeout=30)
        assert r.returncode == 0, r.stderr
        assert os.path.ismount(mp2)
        assert sorted(os.listdir(mp2)) == ["customer", "sales"]
    finally:
        subprocess.run(["fusermount3", "-u", str(mp2)])
        subprocess.run(["fusermount3", "-uz", str(mp2)], capture_output=True)
    assert wait_for(lambda: not os.path.ismount(mp2), 5)


@pytest.mark.parametrize("options", READ_MODES)
def test_open_close_storm(store, scratch, mounter, options):
    """Many processes opening and closing many files at once: RELEASE races
    the OPEN reply (a use-after-free here once crashed the daemon)."""
    store.create_domain("sales")
    base = make_release(scratch / "rel", "sales", "p000", "1.0.0")
    for i in range(40):
        store.publish(copy_release(base, scratch / "many", product=f"p{i:03d}"))
    # a journal big enough for the storm even on a slow (sanitizer) build
    m = mounter(store, options + ",usage_slots=262144")
    code = ("import os,sys,time\nt=time.time();n=0\n"
            "paths=[f'%s/sales/p{i:03d}/1.0.0/orders.csv' for i in range(40)]\n"
            "while time.time()-t<2:\n fd=os.open(paths[n%%40],os.O_RDONLY);os.read(fd,8);os.close(fd);n+=1\n"
            "print(n)" % m.path)
    procs = [subprocess.Popen(["/usr/bin/python3", "-c", code], stdout=subprocess.PIPE, text=True)
             for _ in range(4)]
    counts = [int(p.communicate(timeout=60)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert all(c > 100 for c in counts)
    assert m.proc.poll() is None                     # the daemon is alive
    assert (m / "sales/p000/1.0.0/orders.csv").read_text().startswith("order_id")
