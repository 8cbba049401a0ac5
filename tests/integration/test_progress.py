"""A progress line for long validations and publishes (issue 10): on a
terminal only (tested through a pseudo-terminal), rewritten in place at
most 4 times a second, never with --json or --quiet or when stderr is a
pipe, and through the mesh service too (the client's stderr descriptor
is passed to the worker, which sees the same terminal)."""
import os
import pty
import re
import select
import subprocess
import time

import pytest

from conftest import MESHCTL, as_user, make_release

ROW_BYTES = 60
TARGET_BYTES = 64 << 20


def big_release(parent, version="1.0.0"):
    rel = make_release(parent, "sales", "events", version,
                       {"events.csv": "event_id,customer,amount,note\n1,c1,1.5,x\n"},
                       columns={"events.csv": [("event_id", "integer", None), ("customer", "string", None),
                                               ("amount", "number", None), ("note", "string", None)]})
    # a few rules per value, so that a quiet machine still takes a while
    text = (rel / "contract.yaml").read_text()
    text = text.replace("      - name: event_id\n        logicalType: integer\n",
                        "      - name: event_id\n        logicalType: integer\n        unique: true\n"
                        "        required: true\n")
    text = text.replace("      - name: customer\n        logicalType: string\n",
                        "      - name: customer\n        logicalType: string\n"
                        "        logicalTypeOptions: {pattern: '^customer-[0-9]{5}$', maxLength: 20}\n")
    text = text.replace("      - name: note\n        logicalType: string\n",
                        "      - name: note\n        logicalType: string\n"
                        "        logicalTypeOptions: {pattern: '(note|text)', minLength: 3}\n")
    (rel / "contract.yaml").write_text(text)
    with open(rel / "events.csv", "w") as f:
        f.write("event_id,customer,amount,note\n")
        chunk = []
        for i in range(1, TARGET_BYTES // ROW_BYTES):
            chunk.append(f"{i},customer-{i % 9973:05d},{i % 1000}.25,a note of some length here\n")
            if len(chunk) == 50000:
                f.write("".join(chunk))
                chunk = []
        f.write("".join(chunk))
    subprocess.run(["chmod", "-R", "a+rX", str(parent)], check=True)
    return rel


def run_on_pty(args, user=None, stderr_tty=True, interval_ms=None, term=None):
    """Run meshctl with stderr on a pseudo-terminal (or a pipe): returns
    (exit code, stdout, what reached stderr, seconds)."""
    master, slave = pty.openpty()
    start = time.monotonic()
    env = dict(os.environ, TERM=term or "xterm")   # a terminal that can draw (CI's TERM may be dumb or unset)
    if interval_ms:
        env["MESHCTL_PROGRESS_INTERVAL_MS"] = str(interval_ms)
    p = subprocess.Popen(as_user(user) + [str(MESHCTL), *map(str, args)], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=slave if stderr_tty else subprocess.PIPE, env=env)
    os.close(slave)
    got = b""
    while True:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:       # the slave side is closed: the program is done
                break
            if not data:
                break
            got += data
        elif p.poll() is not None:
            break
    out = p.stdout.read().decode()
    err = p.stderr.read() if not stderr_tty else b""
    p.wait()
    os.close(master)
    return p.returncode, out, (got if stderr_tty else err).decode(errors="replace"), time.monotonic() - start


LINE = re.compile(r"\r(validating|staging) [^\r]*?\d+\.\d MB / \d+\.\d MB +\d+%  \d+ MB/s[^\r]*\x1b\[K")


def check_progress(err, seconds, rel, interval_ms=250):
    updates = LINE.findall(err)
    if seconds < 4 * interval_ms / 1000 and not updates:
        pytest.skip(f"publishing took {seconds:.2f}s: too quick for a progress line (first after "
                    f"{interval_ms} ms)")
    assert updates, repr(err[:300])
    # at most one per interval of the run, in place
    assert len(err.split("\r")) - 1 <= seconds * 1000 / interval_ms + 2, (len(updates), seconds)
    assert "\n" not in err.replace("\r\n", "")
    total = (rel / "events.csv").stat().st_size
    assert f" / {total / 1e6:.1f} MB" in err, repr(err[:300])
    for line in err.split("\r"):
        m = re.search(r"(\d+)%", line)
        if m and int(m.group(1)) < 100:
            assert re.search(r"ETA (\d+m)?\d+s", line), line   # bytes left: an estimate of the time
    # the line is erased before the report (stdout) follows
    assert err.endswith("\r\x1b[K"), repr(err[-40:])


@pytest.fixture
def sales(store):
    store.create_domain("sales", "group:mesh_sales", "user:root")
    return store


def test_progress_on_a_terminal_only(sales, scratch):
    rel = big_release(scratch / "big")
    # validation is fast (hundreds of MB/s): updates every 10 ms, so that
    # even a quick run draws some (the default pace is 4 a second)
    code, out, err, seconds = run_on_pty(["--store", sales.path, "validate", "--threads", "1", rel],
                                         interval_ms=10)
    assert code == 0, out
    assert "events.csv" in out and "valid (nothing installed)" in out
    assert "MB/s" not in out                     # the report itself is unchanged
    check_progress(err, seconds, rel, interval_ms=10)
    # scripts see nothing: stderr a pipe, --json, --quiet
    for args, tty in ((["validate", rel], False), (["--json", "validate", rel], True),
                      (["validate", "--json", rel], True), (["validate", "--quiet", rel], True)):
        code, out2, err2, _ = run_on_pty(["--store", sales.path, *args], stderr_tty=tty)
        assert code == 0 and err2 == "", (args, repr(err2[:200]))
    r = subprocess.run([str(MESHCTL), "--store", str(sales.path), "validate", str(rel)], capture_output=True,
                       text=True)
    assert r.stdout == out and r.stderr == ""   # byte for byte what a terminal user's stdout got


def test_progress_through_the_mesh_service(sales, scratch):
    """The client's terminal, TERM and pace decide, not the worker's
    environment: a pace of 10 ms shows validation too, however quick."""
    rel = big_release(scratch / "big2", version="2.0.0")
    sales.ensure_service()
    code, out, err, seconds = run_on_pty(["--store", sales.path, "publish", rel], user="mesh_bob",
                                         interval_ms=10)
    assert code == 0, out + err
    assert "published sales/events 2.0.0" in out
    check_progress(err, seconds, rel, interval_ms=10)
    assert "staging events.csv" in err and "validating events.csv" in err, repr(err[:300])
    # the client's TERM=dumb, a pipe, --quiet: nothing, served as local
    rel3 = big_release(scratch / "big3", version="3.0.0")
    for args, tty, term in ((["validate", rel3], True, "dumb"), (["validate", rel3], False, None),
                            (["validate", "--quiet", rel3], True, None)):
        code, out3, err3, _ = run_on_pty(["--store", sales.path, *args], user="mesh_bob", stderr_tty=tty,
                                         interval_ms=10, term=term)
        assert code == 0 and err3 == "", (args, term, repr(err3[:200]))
