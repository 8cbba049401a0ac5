"""The store audit at mount (issue 13): after a clean audit this host keeps
a record of every directory of the store in its state directory, and the
next mount re-reads only what changed.  What that cannot see (a chmod of a
file in a directory that did not change) the daemon's background audit
finds, and then every open is refused.  A record that is damaged, foreign
or not the daemon's own means a full audit, never trust."""
import os
import pathlib
import re
import shutil
import stat
import subprocess
import time

import pytest

from conftest import MESHCTL, make_release, make_store, wait_for

ORDERS = "order_id,amount\n1,2.50\n2,3.00\n"


@pytest.fixture
def mesh(store, scratch):
    store.create_domain("sales", "user:root")
    store.publish(make_release(scratch / "rel", "sales", "orders", "1.0.0", {"orders.csv": ORDERS}))
    return store


def state_file(scratch):
    files = list((scratch / "state").glob("*/store-audit"))
    assert len(files) <= 1, files
    return files[0] if files else None


def mount_log_of_refusal(mounter, mesh, name):
    with pytest.raises(AssertionError, match="not locked down") as e:
        mounter(mesh, name=name)
    return str(e.value)


def clean_mount(mounter, mesh, name, settle=True):
    """Mount, read through it, unmount: the record of a clean audit is kept.
    Directories changed within 2 s of being recorded are re-read at the
    next mount anyway (their ctime may not move again): with `settle`, the
    record is taken once the store has been quiet that long, so that the
    next mount trusts what did not change."""
    if settle:
        time.sleep(2.5)
    m = mounter(mesh, name=name)
    assert (m / "sales/orders/1.0.0/orders.csv").read_text() == ORDERS
    m.stop()
    return m


def release_dir(mesh):
    return mesh.path / "domains/sales/orders/1.0.0"


def planting(directory):
    """A release directory is 0500: open it for writing, then close it again."""
    class Ctx:
        def __enter__(self):
            os.chmod(directory, 0o700)

        def __exit__(self, *exc):
            os.chmod(directory, 0o500)
    return Ctx()


def test_record_kept_and_used(mesh, mounter, scratch):
    m = clean_mount(mounter, mesh, "first", settle=False)
    assert "store audit: full (no record of an earlier clean audit" in m.read_log()
    f = state_file(scratch)
    assert f is not None and stat.S_IMODE(f.stat().st_mode) == 0o600
    assert f.read_bytes().startswith(b"meshfs store audit 1\n")
    m = clean_mount(mounter, mesh, "second", settle=False)
    assert "store audit: incremental" in m.read_log()
    # directories changed within 2 s of their record are re-read (their
    # ctime may not have moved since); later, only what changed is: the
    # usage directory the last mount shipped its segment into
    m = clean_mount(mounter, mesh, "third")
    m = clean_mount(mounter, mesh, "fourth")
    found = re.search(r"store audit: incremental, (\d+) directories checked, (\d+) re-read, 0 new, 0 gone",
                      m.read_log())
    assert found, m.read_log()
    checked, reread = map(int, found.groups())
    assert checked > 10 and reread <= 2, m.read_log()


@pytest.mark.parametrize("plant", ["symlink", "fifo", "chmod_dir", "new_dir_with_link"])
def test_incremental_audit_finds_changes_deep(mesh, mounter, scratch, plant):
    clean_mount(mounter, mesh, "clean")
    assert state_file(scratch) is not None
    rel = release_dir(mesh)
    if plant == "symlink":
        with planting(rel):
            os.symlink("/etc/shadow", rel / "shadow.csv")
        what = "shadow.csv: a symbolic link"
    elif plant == "fifo":
        with planting(rel):
            os.mkfifo(rel / "pipe.csv", 0o600)
        what = "pipe.csv: a FIFO"
    elif plant == "chmod_dir":
        os.chmod(rel, 0o505)       # o+rx on a deep directory
        what = "1.0.0: mode 0505"
    else:
        # a new subdirectory is audited whole, however deep its problem
        with planting(rel):
            deep = rel / "a" / "b" / "c"
            deep.mkdir(parents=True, mode=0o700)
            for d in (rel / "a", rel / "a" / "b", deep):
                os.chmod(d, 0o700)
            os.symlink("/etc/passwd", deep / "link")
        what = "a/b/c/link: a symbolic link"
    log = mount_log_of_refusal(mounter, mesh, "refused")
    assert "store audit: incremental" in log, log
    assert what in log, log
    # a store that failed has no record: the next audit is whole
    assert state_file(scratch) is None
    r = subprocess.run([str(MESHCTL), "--store", str(mesh.path), "doctor", "--fix"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    if plant == "chmod_dir":
        assert stat.S_IMODE(rel.stat().st_mode) == 0o500
    m = mounter(mesh, name="fixed")
    assert "store audit: full" in m.read_log()
    assert (m / "sales/orders/1.0.0/orders.csv").read_text() == ORDERS


def open_errno(path):
    try:
        with open(path) as f:
            f.read()
        return 0
    except OSError as e:
        return e.errno


def test_file_chmod_found_by_background_audit(mesh, mounter, scratch):
    clean_mount(mounter, mesh, "clean")
    data = release_dir(mesh) / "orders.csv"
    os.chmod(data, 0o404)              # o+r, in a directory that did not change
    m = mounter(mesh, name="served")   # the incremental audit cannot see it: the mount comes up
    assert "store audit: incremental" in m.read_log()
    path = m / "sales/orders/1.0.0/orders.csv"
    # ... and the background audit closes it: every open refused
    assert wait_for(lambda: open_errno(path) == 13, 10), m.read_log()
    assert open_errno(m / "sales/orders/1.0.0/contract.yaml") == 13
    log = m.read_log()
    assert "NOT locked down" in log and "refusing every open" in log
    assert f"{data}: mode 0404" in log, log
    assert "refused open" in log
    assert state_file(scratch) is None        # the next mount audits everything first
    m.stop()
    log = mount_log_of_refusal(mounter, mesh, "refused")
    assert "store audit: full" in log and f"{data}: mode 0404" in log
    r = subprocess.run([str(MESHCTL), "--store", str(mesh.path), "doctor", "--fix"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert stat.S_IMODE(data.stat().st_mode) == 0o400
    m = mounter(mesh, name="again")
    assert open(m / "sales/orders/1.0.0/orders.csv").read() == ORDERS
    assert "store audit: full" in m.read_log()


def test_refusal_lifts_when_fixed_while_mounted(mesh, mounter, scratch):
    clean_mount(mounter, mesh, "clean")
    data = release_dir(mesh) / "orders.csv"
    os.chmod(data, 0o440)              # g+r
    m = mounter(mesh, name="served")
    path = m / "sales/orders/1.0.0/orders.csv"
    assert wait_for(lambda: open_errno(path) == 13, 10), m.read_log()
    os.chmod(data, 0o400)
    m.proc.send_signal(1)              # SIGHUP: audit again now
    assert wait_for(lambda: open_errno(path) == 0, 10), m.read_log()
    assert "locked down again" in m.read_log()


def corrupt_flip(f):
    b = bytearray(f.read_bytes())
    b[len(b) // 2] ^= 0x40
    f.write_bytes(bytes(b))


def corrupt_truncate(f):
    b = f.read_bytes()
    f.write_bytes(b[:len(b) - 7])


def corrupt_garbage(f):
    f.write_bytes(b"meshfs store audit 1\n" + os.urandom(300))


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage", "empty", "foreign", "not_own", "symlink"])
def test_bad_record_means_full_audit(mesh, mounter, scratch, damage):
    clean_mount(mounter, mesh, "clean")
    f = state_file(scratch)
    # a problem only a full audit sees: trusting the record would serve
    data = release_dir(mesh) / "orders.csv"
    os.chmod(data, 0o404)
    if damage == "flip":
        corrupt_flip(f)
    elif damage == "truncate":
        corrupt_truncate(f)
    elif damage == "garbage":
        corrupt_garbage(f)
    elif damage == "empty":
        f.write_bytes(b"")
    elif damage == "foreign":
        # a valid record of another store (another id, path and root inode)
        other = make_store(scratch / "other")
        other_state = scratch / "other-state"
        m = mounter(other, name="other-mnt", extra_args=["-o", f"state_dir={other_state}"])
        m.stop()
        (src,) = other_state.glob("*/store-audit")
        shutil.copyfile(src, f)
    elif damage == "not_own":
        os.chown(f, pwd_uid("mesh_bob"), -1)
    else:
        target = scratch / "elsewhere"
        shutil.copyfile(f, target)
        f.unlink()
        f.symlink_to(target)
    log = mount_log_of_refusal(mounter, mesh, "refused")
    assert "store audit: full (" in log, log
    assert f"{data}: mode 0404" in log, log


def pwd_uid(user):
    import pwd
    return pwd.getpwnam(user).pw_uid


def test_moved_store_is_audited_whole(mesh, mounter, scratch):
    """The record names the store's real path and root inode."""
    clean_mount(mounter, mesh, "clean")
    f = state_file(scratch)
    data = release_dir(mesh) / "orders.csv"
    os.chmod(data, 0o404)
    moved = scratch / "moved-store"
    os.rename(mesh.path, moved)
    mesh.path = pathlib.Path(moved)
    log = mount_log_of_refusal(mounter, mesh, "refused")
    assert "store audit: full (" in log and "another store" in log, log
    assert not f.exists()
