"""meshctl validate over a data file that cannot be read to its end.

`meshctl validate` maps CSV files; a file truncated by its writer while it
is mapped faults (SIGBUS) where a read would have come back short.  The
promise: a message and exit 4 (MESHCTL_ERROR), never a silent death by
signal.  A real truncation races the reader, so these tests use
tests/tools/faultfs instead: a FUSE view of the release directory in which
the CSV file keeps its size but every read from an offset on fails, fixed
before meshctl starts.  The mapped pages past that offset cannot be
served, which the kernel turns into the same SIGBUS, on every run.

Served (an ordinary user), the service copies the release into its own
staging area first: the copy meets the failing read as an I/O error and
says so, with the same exit status.
"""
import os
import subprocess

import pytest

from conftest import BUILD, Mount, make_release, wait_for

FAULTFS = BUILD / "tools" / "faultfs"
FAULT_AT = 1 << 20          # mid-file, page-aligned


class FaultMount(Mount):
    """faultfs instead of meshfs, with Mount's teardown (unmount, lazily if
    need be, then wait for or kill the process)."""

    def __init__(self, source, mountpoint, name, offset):
        super().__init__(None, mountpoint, "ro,allow_other")   # allow_other: the served test's user
        self.source, self.name, self.offset = source, name, offset

    def start(self):
        self.path.mkdir()
        self.path.chmod(0o755)
        self.log = open(self.path.parent / (self.path.name + ".log"), "w")
        # -s: one thread is plenty
        self.proc = subprocess.Popen([str(FAULTFS), str(self.source), str(self.path), self.name,
                                      str(self.offset), "-f", "-s", "-o", self.options],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        if not (wait_for(lambda: os.path.ismount(self.path) or self.proc.poll() is not None, 10)
                and os.path.ismount(self.path)):
            self.stop()
            raise AssertionError(f"faultfs did not mount: {self.read_log()}")
        return self


@pytest.fixture
def faulty(store, scratch):
    """faulty(offset) -> the release directory seen through faultfs, its
    orders.csv (about 3 MiB) failing from `offset` on; unmounted after."""
    store.create_domain("sales")
    rows = "".join(f"{i},u{i}@example.com,{i}.5\n" for i in range(100000))
    release = make_release(scratch, "sales", "orders", "1.0.0",
                           files={"orders.csv": "order_id,email,amount\n" + rows})
    mounts = []

    def make(offset):
        mounts.append(FaultMount(release, scratch / f"faulty-{len(mounts)}", "orders.csv", offset))
        return mounts[-1].start().path

    make.size = (release / "orders.csv").stat().st_size
    assert make.size > 3 * FAULT_AT
    yield make
    for m in mounts:
        m.stop()


def test_the_view_without_a_fault_validates(store, faulty):
    """The control: through faultfs with nothing failing, the release is
    valid (what fails below fails because of the fault, not the mount)."""
    r = store.ctl("validate", faulty(faulty.size))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "data orders.csv: 100000 rows" in r.stdout


def test_a_mapped_file_that_cannot_be_read_to_its_end(store, faulty):
    """Mapped (the store's own account, run directly): SIGBUS is caught,
    said, and exits 4; no report of a valid release."""
    r = store.ctl("validate", faulty(FAULT_AT))
    assert r.returncode == 4, (r.returncode, r.stdout, r.stderr)   # not -SIGBUS
    assert "a file shrank while it was being read (SIGBUS)" in r.stderr, r.stderr
    assert "nothing was published" in r.stderr
    assert "valid (nothing installed)" not in r.stdout


def test_served_validate_reports_the_read_error(store, faulty):
    """Served, the service reads the file into its staging copy: the
    failing read is an I/O error naming the file, exit 4 as well."""
    r = store.ctl("validate", faulty(FAULT_AT), user="mesh_bob")
    assert r.returncode == 4, (r.returncode, r.stdout, r.stderr)
    assert "orders.csv: Input/output error" in r.stderr, r.stderr
    assert "valid (nothing installed)" not in r.stdout
