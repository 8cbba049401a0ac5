#!/usr/bin/python3
"""meshfs benchmark: every figure is the median of --repeat (>= 5)
interleaved repetitions (A, B, A, B ...) with its min and max, and a ratio
against a baseline measured inside the same loop on the same machine:
native access to the store's own files, the same mount with a feature off,
libfuse's passthrough_hp 3.14 when $PASSTHROUGH_HP names a locally built
binary (never committed), DuckDB when $DUCKDB names its command-line client.

Builds (once, cached under --work) a store with a --size-mib CSV (10
columns) and --products small products, and measures:
  seq       sequential read of the big file, cold and warm
  random    4 KiB random reads: page-cache hits and daemon misses (fio)
  open      open+close per second as a granted non-root user, 1 and 2
            processes: checks and usage on, -o open_mesh, -o no_usage,
            passthrough_hp, native
  meta      ls -lR, find -ls and stat of every entry: first pass after
            mount (vs passthrough_hp) and second pass (vs native)
  access    masked sequential read vs an unmasked one served by the daemon
  usage     sequential read served by the daemon, recording on vs off
  validate  meshctl validate at 1 and 2 threads vs wc -l (and DuckDB at 1 and 2
            threads, in the same interleaved loop), its own peak RSS,
            publish vs validate of the same release
  views     masked views: first open (builds the view) vs a cold clear
            read, repeated masked vs clear reads, 4 KiB random reads
  pqviews   masked Parquet views: first open (builds the view) vs a cold
            clear read, and the build rate
  pgsink    usage shipped to PostgreSQL during an open storm (events/s, backlog)
Prints a Markdown table (and writes it to --out).  Needs root (drop_caches,
mounting with allow_other, a benchmark user).  --quick: a small store and
short runs (about a minute) for a developer's loop; `make bench-quick`."""
import argparse
import ctypes
import json
import os
import pathlib
import platform
import resource
import shutil
import subprocess
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("--build", default=str(pathlib.Path(__file__).resolve().parents[2] / "build"))
ap.add_argument("--work", default=None)
ap.add_argument("--products", type=int, default=None)
ap.add_argument("--size-mib", type=int, default=None)
ap.add_argument("--repeat", type=int, default=None)
ap.add_argument("--seconds", type=float, default=None, help="length of each timed open+close run")
ap.add_argument("--quick", action="store_true", help="small store, short runs (about a minute)")
ap.add_argument("--people-mib", type=int, default=0, help="size of the classified CSV (default: size-mib/4)")
ap.add_argument("--out", default=None)
ap.add_argument("--only", default="", help="comma-separated sections to run (seq,random,open,meta,readers,access,usage,validate,views,parquet,pqviews)")
args = ap.parse_args()
QUICK = args.quick
args.work = args.work or ("/var/tmp/meshfs-bench-quick" if QUICK else "/var/tmp/meshfs-bench")
args.products = args.products or (500 if QUICK else 10000)
args.size_mib = args.size_mib or (64 if QUICK else 1024)
args.repeat = max(args.repeat or 5, 5 if not QUICK else 3)
args.seconds = args.seconds or (0.5 if QUICK else 2.0)

BUILD = pathlib.Path(args.build)
MESHCTL, MESHFS = BUILD / "meshctl", BUILD / "meshfs"
WORK = pathlib.Path(args.work)
STORE = WORK / "store"
SRC = WORK / "src"
HP = os.environ.get("PASSTHROUGH_HP")
DUCKDB = os.environ.get("DUCKDB")
rows = []


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def sh(cmd, **kw):
    return subprocess.run([str(c) for c in cmd], check=True, capture_output=True, text=True, **kw)


def ctl(*a):
    return sh([MESHCTL, "--store", STORE, *a])


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def interleave(reps, runs):
    """runs: [(name, callable)]; called A, B, C, A, B, C ... with the order
    rotated every repetition, so no side always goes first; {name: [values]}."""
    out = {name: [] for name, _ in runs}
    for rep in range(reps):
        k = rep % len(runs)
        for name, fn in runs[k:] + runs[:k]:
            out[name].append(fn())
    return out


def spread(xs):
    return f"{median(xs):,.0f} ({min(xs):,.0f}-{max(xs):,.0f})" if max(xs) >= 100 else \
        f"{median(xs):,.2f} ({min(xs):,.2f}-{max(xs):,.2f})"


def record(section, metric, values, base, unit, goal="", note="", lower_is_better=False, base_name=""):
    """values/base: lists of repetitions (base may be None: no baseline).
    The ratio is of medians, oriented so that > 1 means better than the
    baseline (for times: baseline time / our time)."""
    ratio = float("nan")
    if base:
        ratio = median(base) / median(values) if lower_is_better else median(values) / median(base)
    rows.append((section, metric, spread(values), spread(base) if base else "-", base_name, unit, ratio, goal, note))
    log(f"  {metric}: {spread(values)}" + (f" vs {base_name} {spread(base)}" if base else "") + f" {unit}"
        + (f" = {ratio:.2f}x" if base else "") + (f" (goal {goal})" if goal else ""))


BENCH_USER = "meshbench"


def ensure_bench_user():
    if subprocess.run(["id", BENCH_USER], capture_output=True).returncode != 0:
        sh(["useradd", "--no-create-home", "--shell", "/bin/sh", BENCH_USER])
    if BENCH_USER not in ctl("grants", "bench").stdout:
        ctl("grant", "bench", f"user:{BENCH_USER}", "--reason", "benchmark")


def as_user(user):
    """The command prefix that runs a command as `user` with its groups."""
    return ["setpriv", "--reuid", user, "--regid", user, "--init-groups", "--"]


def as_bench_user(code, *argv):
    r = subprocess.run(as_user(BENCH_USER) + ["/usr/bin/python3", "-c", code, *map(str, argv)],
                       capture_output=True, text=True, check=True)
    return float(r.stdout.strip())


def as_root(code, *argv):
    """The store is locked down (0700/0600): native access and
    passthrough_hp (which lets the kernel check the store's own modes) are
    measured as root, the store's owner."""
    r = subprocess.run(["/usr/bin/python3", "-c", code, *map(str, argv)], capture_output=True, text=True, check=True)
    return float(r.stdout.strip())


CONTRACT = """apiVersion: v3.1.0
kind: DataContract
id: {id}
name: {product}
version: 1.0.0
status: active
domain: bench
dataProduct: {product}
description:
  purpose: Benchmark product
team:
  members:
    - username: root
      role: owner
support:
  - channel: "#bench"
schema:
{objects}"""

BIG_OBJECT = """  - name: events
    physicalName: events.csv
    properties:
      - {name: event_id, logicalType: integer, required: true, unique: true}
      - {name: user_id, logicalType: integer, required: true}
      - {name: kind, logicalType: string, required: true}
      - {name: amount, logicalType: number}
      - {name: country, logicalType: string}
      - {name: user_ref, logicalType: string, quality: [{metric: invalidValues, arguments: {pattern: '^u[0-9]+[.]ref$'}, mustBe: 0}]}
      - {name: created_at, logicalType: timestamp}
      - {name: day, logicalType: date}
      - {name: flag, logicalType: boolean}
      - {name: note, logicalType: string}
"""


def write_big_csv(path, size):
    kinds = ["view", "click", "purchase", "refund"]
    countries = ["DE", "FR", "US", "JP", "BR"]
    with open(path, "w") as f:
        f.write("event_id,user_id,kind,amount,country,user_ref,created_at,day,flag,note\n")
        i, written = 0, 0
        while written < size:
            chunk = []
            for _ in range(20000):
                i += 1
                chunk.append(f"{i},{i % 99991},{kinds[i % 4]},{(i % 10000) / 100:.2f},{countries[i % 5]},"
                             f"u{i % 99991}.ref,2026-11-{1 + i % 28:02d}T{i % 24:02d}:00:00Z,"
                             f"2026-11-{1 + i % 28:02d},{'true' if i % 2 else 'false'},n{i % 7}\n")
            s = "".join(chunk)
            f.write(s)
            written += len(s)


def people_mib():
    return args.people_mib or args.size_mib // 4


def build_store():
    # "locked": stores built before the store was locked down are rebuilt
    # (meshfs refuses to serve them)
    marker = WORK / f"built-locked-{args.products}-{args.size_mib}-{people_mib()}"
    if marker.exists() and (STORE / ".meshfs-store").exists():
        return
    shutil.rmtree(WORK, ignore_errors=True)
    SRC.mkdir(parents=True)
    ctl("init")
    sh([MESHCTL, "--store", STORE, "domain", "create", "bench", "--owner", "user:root"])
    log(f"building a {args.size_mib} MiB CSV")
    big = SRC / "big"
    big.mkdir()
    write_big_csv(big / "events.csv", args.size_mib << 20)
    (big / "contract.yaml").write_text(CONTRACT.format(id="bench-big", product="big", objects=BIG_OBJECT))
    people = SRC / "people"
    people.mkdir()
    with open(people / "people.csv", "w") as f:
        f.write("id,email,country\n")
        n = 0
        while f.tell() < people_mib() << 20:
            f.write("".join(f"{n + k},person{n + k}@example.com,DE\n" for k in range(20000)))
            n += 20000
    (people / "contract.yaml").write_text(CONTRACT.format(id="bench-people", product="people", objects=(
        "  - name: people\n    physicalName: people.csv\n    properties:\n"
        "      - {name: id, logicalType: integer}\n"
        "      - {name: email, logicalType: string, classification: pii}\n"
        "      - {name: country, logicalType: string}\n")))
    ctl("publish", people)
    ctl("publish", big)
    log(f"publishing {args.products} small products")
    small = SRC / "small"
    small.mkdir()
    procs = []
    for i in range(args.products):
        d = small / f"p{i:05d}"
        d.mkdir()
        (d / "data.csv").write_text("id,value\n" + "".join(f"{k},{i * k}\n" for k in range(1, 20)))
        (d / "contract.yaml").write_text(CONTRACT.format(
            id=f"bench-{i}", product=f"p{i:05d}",
            objects="  - name: data\n    physicalName: data.csv\n    properties:\n"
                    "      - {name: id, logicalType: integer}\n      - {name: value, logicalType: integer}\n"))
        procs.append(subprocess.Popen([str(MESHCTL), "--store", str(STORE), "publish", str(d)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        if len(procs) >= 4:
            p = procs.pop(0)
            if p.wait():
                raise SystemExit(f"publish failed: {p.stderr.read().decode()}")
    for p in procs:
        if p.wait():
            raise SystemExit(f"publish failed: {p.stderr.read().decode()}")
    marker.touch()


class Mount:
    """meshfs STORE at WORK/name with -o options (always allow_other)."""

    def __init__(self, name, options=""):
        self.path = WORK / name
        self.options = "allow_other" + ("," + options if options else "")

    def __enter__(self):
        subprocess.run(["fusermount3", "-uz", str(self.path)], capture_output=True)
        self.path.mkdir(exist_ok=True)
        # one usage directory per daemon: a host's journal has one writer
        opts = self.options + f",hostname=bench-{self.path.name}"
        self.proc = subprocess.Popen([str(MESHFS), str(STORE), str(self.path), "-f", "-o", opts],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(400):
            if os.path.ismount(self.path):
                return self
            time.sleep(0.025)
        raise SystemExit(f"mount {self.path} failed")

    def __exit__(self, *exc):
        subprocess.run(["fusermount3", "-u", str(self.path)], capture_output=True)
        subprocess.run(["fusermount3", "-uz", str(self.path)], capture_output=True)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def hp_limits():
    """passthrough_hp keeps one descriptor per known inode and raises its
    soft limit only to the hard one: 20,000 here, fewer than the inodes of
    2,000 products (its walks then fail with EMFILE).  Root lifts both
    where it may (CAP_SYS_RESOURCE; a container may not grant it)."""
    want = min(1 << 20, int(open("/proc/sys/fs/nr_open").read()))
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
    except (ValueError, OSError):
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class HpMount:
    """libfuse's passthrough_hp over STORE/domains.  Its 3.14 option parser
    takes no -o, so the mount is made here (mount(2) with allow_other, as
    every meshfs mount of this benchmark has) and handed to it as
    /dev/fd/N, which libfuse accepts as an already mounted session."""

    def __init__(self, name):
        self.path = WORK / name

    def __enter__(self):
        subprocess.run(["umount", "-l", str(self.path)], capture_output=True)
        self.path.mkdir(exist_ok=True)
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open("/dev/fuse", os.O_RDWR)
        opts = f"fd={fd},rootmode=40000,user_id=0,group_id=0,allow_other,default_permissions".encode()
        if libc.mount(b"hpps", str(self.path).encode(), b"fuse.hpps", 2 | 4, opts) != 0:   # nosuid, nodev
            raise SystemExit(f"mount {self.path}: {os.strerror(ctypes.get_errno())}")
        self.proc = subprocess.Popen([HP, "--foreground", str(STORE / "domains"), f"/dev/fd/{fd}"], pass_fds=[fd],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=hp_limits)
        os.close(fd)
        return self

    def __exit__(self, *exc):
        subprocess.run(["umount", str(self.path)], capture_output=True)
        subprocess.run(["umount", "-l", str(self.path)], capture_output=True)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def read_seq(path, bs=1 << 20):
    fd = os.open(path, os.O_RDONLY)
    t0 = time.perf_counter()
    n = 0
    while True:
        b = os.read(fd, bs)
        if not b:
            break
        n += len(b)
    dt = time.perf_counter() - t0
    os.close(fd)
    return n / dt / 1e6


def read_seq_uncached(path):
    """The mount's pages dropped (fadvise on its path), the backing file's kept."""
    fd = os.open(path, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
    return read_seq(path)


BIG = "bench/big/1.0.0/events.csv"


def bench_sequential(mounts, hp):
    native = STORE / "domains" / BIG
    log("sequential read")

    def cold(path):
        def run():
            drop_caches()
            return read_seq(path)
        return run

    def warm(path):
        def run():
            read_seq(path)
            return read_seq(path)
        return run

    paths = [("native", native)] + [(label, m.path / BIG) for label, m in mounts] + \
        ([("passthrough_hp", hp.path / BIG)] if hp else [])
    if not QUICK:
        c = interleave(args.repeat, [(label, cold(p)) for label, p in paths])
        for label, _ in mounts:
            record("sequential read", f"cold, {label}", c[label], c["native"], "MB/s", ">= 0.85x native",
                   base_name="native")
        if hp:
            record("sequential read", "cold, passthrough_hp (reference)", c["passthrough_hp"], c["native"], "MB/s",
                   base_name="native")
    w = interleave(args.repeat, [(label, warm(p)) for label, p in paths])
    for label, _ in mounts:
        record("sequential read", f"warm, {label}", w[label], w["native"], "MB/s", ">= 0.9x native",
               base_name="native")
    if hp:
        record("sequential read", "warm, passthrough_hp (reference)", w["passthrough_hp"], w["native"], "MB/s",
               base_name="native")
    u = interleave(args.repeat, [(label, lambda p=p: read_seq_uncached(p)) for label, p in paths[1:]])
    for label, _ in mounts:
        if hp:
            record("sequential read", f"first read through the mount (backing cached), {label}", u[label],
                   u["passthrough_hp"], "MB/s", ">= 1.0x passthrough_hp", base_name="passthrough_hp")


def fio(path, extra):
    r = sh(["fio", "--name=rr", f"--filename={path}", "--rw=randread", "--bs=4k", "--ioengine=psync",
            "--fadvise_hint=1", "--output-format=json", *extra])
    return json.loads(r.stdout)["jobs"][0]["read"]["iops"]


def bench_random(mounts, hp):
    if not shutil.which("fio"):
        log("4 KiB random reads: no fio, skipped")
        return
    native = STORE / "domains" / BIG
    log("4 KiB random reads")
    paths = [("native", native)] + [(label, m.path / BIG) for label, m in mounts] + \
        ([("passthrough_hp", hp.path / BIG)] if hp else [])
    for _, p in paths:
        read_seq(p)
    runtime = "1" if QUICK else "3"
    hits = interleave(args.repeat, [(label, lambda p=p: fio(p, ["--time_based", f"--runtime={runtime}",
                                                                 "--invalidate=0"])) for label, p in paths])
    for label, _ in mounts:
        record("4 KiB random", f"page-cache hits, {label}", hits[label], hits["native"], "IOPS", ">= 0.95x native",
               base_name="native")
    # misses: the mount's cache is dropped (fio invalidate=1), the backing file stays cached
    span = min(64 if QUICK else 256, os.path.getsize(native) >> 20)
    miss = interleave(args.repeat, [(label, lambda p=p: fio(p, [f"--size={span}m", f"--number_ios={span * 128}",
                                                                 "--invalidate=1"])) for label, p in paths[1:]])
    for label, _ in mounts:
        if hp:
            record("4 KiB random", f"misses (backing cached), {label}", miss[label], miss["passthrough_hp"], "IOPS",
                   ">= 1.0x passthrough_hp", base_name="passthrough_hp")
        else:
            record("4 KiB random", f"misses (backing cached), {label}", miss[label], None, "IOPS",
                   ">= 1.0x passthrough_hp", "PASSTHROUGH_HP not set: no baseline")


OPEN_CODE = """
import os, sys, time
root, n, secs, procs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
paths = [f"{root}/bench/p{i:05d}/1.0.0/data.csv" for i in range(n)]
def loop(ps, w):
    for p in ps[:200]:
        os.close(os.open(p, os.O_RDONLY))
    t0 = time.perf_counter(); k = 0
    while time.perf_counter() - t0 < secs:
        os.close(os.open(ps[k % len(ps)], os.O_RDONLY)); k += 1
    os.write(w, f"{k / (time.perf_counter() - t0)} {k + min(200, len(ps))}\\n".encode())
r, w = os.pipe()
kids = []
for j in range(procs):
    pid = os.fork()
    if pid == 0:
        loop(paths[j::procs], w)
        os._exit(0)
    kids.append(pid)
for p in kids:
    os.waitpid(p, 0)
os.close(w)
got = [line.split() for line in os.read(r, 4096).decode().splitlines()]
print(sum(float(rate) for rate, _ in got), sum(int(opens) for _, opens in got))
"""


USAGE_THREADS = ("usage-writer", "usage-shipper")


def daemon_cpu_ns(pid):
    """CPU time of process pid's threads so far (schedstat, ns): (all of
    them, the usage writer's and shipper's, named by meshfs)."""
    total = usage = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            ns = int(open(f"/proc/{pid}/task/{task}/schedstat").read().split()[0])
            name = open(f"/proc/{pid}/task/{task}/comm").read().strip()
        except (OSError, ValueError, IndexError):
            continue   # a worker thread that just exited
        total += ns
        usage += ns if name in USAGE_THREADS else 0
    return total, usage


def bench_open(hp):
    """One loop over every variant: the meshfs mounts (checks and usage on,
    -o open_mesh, -o no_usage) as a granted non-root user, so the access
    decision does its full work; native and passthrough_hp as root (the
    locked-down store is the service account's).  Each run also gives the
    daemon's CPU time (all its threads: FUSE workers, usage writer and
    shipper) per open+close, less sensitive to other load than the rate."""
    log("open+close")
    ensure_bench_user()
    n = min(2000, args.products)
    with Mount("mnt-acl", "passthrough=off") as acl, Mount("mnt-open", "passthrough=off,open_mesh") as open_, \
            Mount("mnt-norec", "passthrough=off,no_usage") as norec:
        roots = [("checks+usage", acl.path, BENCH_USER, acl.proc.pid), ("open_mesh", open_.path, BENCH_USER, open_.proc.pid),
                 ("no_usage", norec.path, BENCH_USER, norec.proc.pid), ("native", STORE / "domains", None, None)] + \
            ([("passthrough_hp", hp.path, None, hp.proc.pid)] if hp else [])
        for procs in (1, 2):
            cpu = {label: [] for label, *_ in roots}
            usage_cpu = []

            def storm(label, root, user, pid):
                prefix = as_user(user) if user else []
                before = daemon_cpu_ns(pid) if pid else (0, 0)
                out = subprocess.run(prefix + ["/usr/bin/python3", "-c", OPEN_CODE, str(root), str(n), str(args.seconds),
                                               str(procs)], capture_output=True, text=True, check=True).stdout.split()
                if pid:
                    # the last RELEASE is answered after close() returned;
                    # the usage writer commits within its flush interval
                    time.sleep(0.5)
                    after = daemon_cpu_ns(pid)
                    cpu[label].append((after[0] - before[0]) / 1000 / int(out[1]))
                    if label == "checks+usage":
                        usage_cpu.append((after[1] - before[1]) / 1000 / int(out[1]))
                return float(out[0])

            r = interleave(args.repeat, [(label, lambda a=(label, root, user, pid): storm(*a))
                                         for label, root, user, pid in roots])
            what = f"open+close/s, {procs} process{'es' if procs > 1 else ''}, checks and usage on"
            if hp:
                record("open+close", f"{what} vs passthrough_hp", r["checks+usage"], r["passthrough_hp"], "opens/s",
                       ">= 1.5x passthrough_hp", base_name="passthrough_hp")
            record("open+close", f"{what} vs -o open_mesh", r["checks+usage"], r["open_mesh"], "opens/s",
                   ">= 0.9 (within 10%)", base_name="open_mesh")
            record("open+close", f"{what} vs -o no_usage (usage recording cost)", r["checks+usage"], r["no_usage"],
                   "opens/s", ">= 0.95 (cost < 5%)", base_name="no_usage")
            record("open+close", f"{what} vs native", r["checks+usage"], r["native"], "opens/s", "",
                   "2 round trips per open+close (OPEN, RELEASE)", base_name="native")
            what = f"daemon CPU per open+close, {procs} process{'es' if procs > 1 else ''}, checks and usage on"
            for base in ["open_mesh", "no_usage"] + (["passthrough_hp"] if hp else []):
                record("open+close", f"{what} vs {base if base == 'passthrough_hp' else '-o ' + base}",
                       cpu["checks+usage"], cpu[base], "us", "", "all threads, from /proc/PID/task/*/schedstat; "
                       "ratio > 1: less CPU than the baseline", lower_is_better=True, base_name=base)
            record("open+close", f"usage writer and shipper CPU per open+close, {procs} "
                   f"process{'es' if procs > 1 else ''}", usage_cpu, None, "us", "",
                   "threads usage-writer and usage-shipper of the checks+usage mount: SQLite and segments")


def walk_stat(root):
    n = 0
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.lstat(os.path.join(dirpath, name))
            n += 1
    return n


WALKS = [("ls -lR", lambda root: sh(["ls", "-lR", root])),
         ("find -ls", lambda root: sh(["find", root, "-ls"])),
         ("stat of every entry", walk_stat)]


def timed(fn, root):
    t0 = time.perf_counter()
    fn(root)
    return time.perf_counter() - t0


def bench_metadata(hp):
    """First pass right after mounting (vs passthrough_hp, mounted afresh
    in the same repetition), second pass (vs native, all caches warm)."""
    log("directory walks")
    native = STORE / "domains"
    for walk, fn in WALKS:
        fn(native)
        first = {"meshfs": [], "passthrough_hp": []}
        second = {"meshfs": [], "passthrough_hp": [], "native": []}
        for rep in range(args.repeat):
            sides = [("meshfs", lambda: Mount("mnt-meta")), ("passthrough_hp", lambda: HpMount("mnt-hp-meta"))]
            if not hp:
                sides = sides[:1]
            if rep % 2:
                sides.reverse()
            for label, make in sides:
                with make() as m:
                    first[label].append(timed(fn, m.path))
                    second[label].append(timed(fn, m.path))
                    second["native"].append(timed(fn, native))
        if hp:
            record("directory walks", f"{walk}, first pass after mount", first["meshfs"], first["passthrough_hp"], "s",
                   ">= 1.0x passthrough_hp", lower_is_better=True, base_name="passthrough_hp")
        else:
            record("directory walks", f"{walk}, first pass after mount", first["meshfs"], None, "s",
                   ">= 1.0x passthrough_hp", "PASSTHROUGH_HP not set: no baseline", lower_is_better=True)
        record("directory walks", f"{walk}, second pass", second["meshfs"], second["native"], "s", ">= 0.9x native",
               lower_is_better=True, base_name="native")
        if hp:
            record("directory walks", f"{walk}, second pass, passthrough_hp (reference)", second["passthrough_hp"],
                   second["native"], "s", lower_is_better=True, base_name="native")


READERS = 40


def bench_readers():
    """Walks as many distinct readers, the kernel's shared entries warm:
    every reader's cards are inodes of their own (a card says what that
    reader may do; an outsider's names the outsider), which the daemon
    keeps in a table the kernel may ask about.  The last reader's walk
    against the first's in the same mount: flat when finding a reader's
    card costs the same however many readers came before."""
    log(f"walks as {READERS} distinct readers")
    users = [f"{BENCH_USER}{k:02d}" for k in range(1, READERS + 1)]
    for u in users:
        if subprocess.run(["id", u], capture_output=True).returncode:
            sh(["useradd", "--no-create-home", "--shell", "/bin/sh", u])

    first, last = [], []
    try:
        for rep in range(args.repeat):
            with Mount("mnt-readers") as m:
                sh(["find", m.path, "-ls"])
                times = [timed(lambda root, u=u: sh(as_user(u) + ["find", root, "-ls"]), m.path) for u in users]
                first.append(times[0])
                last.append(times[-1])
    finally:
        for u in users:
            subprocess.run(["userdel", u], capture_output=True)
    record("directory walks", f"find -ls as the {READERS}th distinct reader vs the first", last, first, "s",
           ">= 0.9x the first reader", lower_is_better=True, base_name="first reader")


READ_CODE = """
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
t0 = time.perf_counter(); n = 0
while True:
    b = os.read(fd, 1 << 20)
    if not b:
        break
    n += len(b)
print(n / (time.perf_counter() - t0) / 1e6)
"""


def bench_access():
    log("masked reads")
    ensure_bench_user()
    people = "bench/people/1.0.0/people.csv"
    with Mount("mnt-acl", "passthrough=off") as acl, Mount("mnt-open", "passthrough=off,open_mesh") as open_:
        read_seq(STORE / "domains" / people)
        r = interleave(args.repeat, [("masked", lambda: as_bench_user(READ_CODE, acl.path / people)),
                                     ("clear", lambda: as_bench_user(READ_CODE, open_.path / people))])
        record("access control", "masked sequential read (a view) vs clear read, no passthrough", r["masked"],
               r["clear"], "MB/s", ">= 0.9", f"{people_mib()} MiB CSV, repeated: the view exists",
               base_name="open_mesh")


VIEW_OPEN_CODE = """
import os, time
t0 = time.perf_counter()
fd = os.open("{path}", os.O_RDONLY)
t1 = time.perf_counter()
n = 0
while True:
    b = os.read(fd, 1 << 20)
    if not b:
        break
    n += len(b)
print(t1 - t0, time.perf_counter() - t0, n)
"""


def as_bench_user_raw(code):
    return subprocess.run(as_user(BENCH_USER) + ["/usr/bin/python3", "-c", code], capture_output=True, text=True,
                          check=True).stdout


def fio_as(user, path, extra):
    r = sh(as_user(user) + ["fio", "--name=rr", f"--filename={path}", "--rw=randread", "--bs=4k", "--ioengine=psync",
                            "--fadvise_hint=1", "--output-format=json", *extra])
    return json.loads(r.stdout)["jobs"][0]["read"]["iops"]


def bench_views():
    """Masked views (issue 9): the bench user reads people.csv masked (its
    email is pii), root reads it clear, through the same mount."""
    log("masked views")
    ensure_bench_user()
    rel = "bench/people/1.0.0/people.csv"
    native = STORE / "domains" / rel
    cache = WORK / "view-cache"
    for label, opts in (("passthrough", ""), ("no passthrough", "passthrough=off")):
        first, builds, seq_clear = [], [], []
        sep = "," if opts else ""
        for rep in range(args.repeat):
            shutil.rmtree(cache, ignore_errors=True)
            with Mount("mnt-views", f"{opts}{sep}view_cache={cache}") as m:
                def masked_first():
                    drop_caches()
                    opened, total, n = map(float, as_bench_user_raw(VIEW_OPEN_CODE.format(path=m.path / rel)).split())
                    builds.append(os.path.getsize(native) / opened / 1e6)
                    return n / total / 1e6

                def clear_cold():
                    drop_caches()
                    return read_seq(m.path / rel)
                # the masked first open must come first (it builds the view)
                first.append(masked_first())
                seq_clear.append(clear_cold())
        record("masked views", f"first open + read vs one cold clear read, {label}", first, seq_clear, "MB/s",
               ">= 0.67 (first open within 1.5x)", f"{people_mib()} MiB CSV, view built at first lookup",
               base_name="clear, cold")
        record("masked views", f"view build rate, {label}", builds, None, "MB/s", "",
               "release MB per second of the open that builds it")
        with Mount("mnt-views", f"{opts}{sep}view_cache={cache}") as m:
            path = m.path / rel
            as_bench_user(READ_CODE, path)          # the view exists (verified once)

            def masked_warm():
                as_bench_user_raw(VIEW_OPEN_CODE.format(path=path))
                _, total, n = map(float, as_bench_user_raw(VIEW_OPEN_CODE.format(path=path)).split())
                return n / total / 1e6

            def clear_warm():
                read_seq(path)
                return read_seq(path)
            r = interleave(args.repeat, [("masked", masked_warm), ("clear", clear_warm)])
            record("masked views", f"repeated masked read vs clear read (warm), {label}", r["masked"], r["clear"],
                   "MB/s", ">= 0.9", base_name="clear")
            if shutil.which("fio"):
                runtime = "1" if QUICK else "3"
                h = interleave(args.repeat, [
                    ("masked", lambda: fio_as(BENCH_USER, path, ["--time_based", f"--runtime={runtime}", "--invalidate=0"])),
                    ("clear", lambda: fio_as("root", path, ["--time_based", f"--runtime={runtime}", "--invalidate=0"]))])
                record("masked views", f"4 KiB random reads, masked vs clear, {label}", h["masked"], h["clear"], "IOPS",
                       ">= 0.95", base_name="clear")


def bench_usage():
    log("usage recording on vs off (reads)")
    with Mount("mnt-rec", "passthrough=off") as rec, Mount("mnt-norec", "passthrough=off,no_usage") as norec:
        read_seq(STORE / "domains" / BIG)          # the backing file in memory for both
        r = interleave(args.repeat, [("on", lambda: read_seq_uncached(rec.path / BIG)),
                                     ("off", lambda: read_seq_uncached(norec.path / BIG))])
        record("usage recording", "sequential read served by the daemon, recording on vs off", r["on"], r["off"],
               "MB/s", "difference < 2%", base_name="no_usage")
    rows.append(("usage recording", "journal bytes per event / writer batch", "512", "-", "", "bytes", float("nan"),
                 "", "one 512-byte slot per open; the writer wakes every 50 ms or after 1024 pending "
                     "begin/end calls and commits up to 4096 events per transaction"))


def run_peak(cmd):
    """Wall time and peak RSS (MiB) of this one command (wait4: its own
    rusage, not the largest of every child this script ever had)."""
    t0 = time.perf_counter()
    p = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    run_peak.cpu = ru.ru_utime + ru.ru_stime   # CPU seconds of the command (all its threads)
    return time.perf_counter() - t0, ru.ru_maxrss / 1024, out


DUCKDB_SQL = """SET threads={threads};
SELECT count(*) AS rows,
       count(*) - count(DISTINCT event_id) AS duplicate_ids,
       count(*) FILTER (WHERE event_id IS NULL OR user_id IS NULL OR kind IS NULL) AS missing,
       count(*) FILTER (WHERE NOT regexp_full_match(user_ref, '^u[0-9]+[.]ref$')) AS bad_refs
FROM read_csv('{path}', header=true, columns={{'event_id': 'BIGINT', 'user_id': 'BIGINT', 'kind': 'VARCHAR',
  'amount': 'DOUBLE', 'country': 'VARCHAR', 'user_ref': 'VARCHAR', 'created_at': 'TIMESTAMP', 'day': 'DATE',
  'flag': 'BOOLEAN', 'note': 'VARCHAR'}});"""


PGBIN = pathlib.Path("/usr/lib/postgresql/15/bin")


def bench_pgsink():
    """Usage shipped to PostgreSQL while the mount takes an open storm: the
    forwarder's events/s against the open rate, and the outbox backlog."""
    log("usage to PostgreSQL")
    if not (PGBIN / "initdb").exists():
        log("  skipped: PostgreSQL 15 not installed")
        return
    ensure_bench_user()
    root = WORK / "pg"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    shutil.chown(root, "postgres", "postgres")
    as_pg = ["setpriv", "--reuid", "postgres", "--regid", "postgres", "--clear-groups", "--"]
    sh(as_pg + [PGBIN / "initdb", "-D", root / "data", "-A", "trust", "-U", "meshfs", "--no-sync"])
    port = 25432
    sh(as_pg + [PGBIN / "pg_ctl", "-D", root / "data", "-l", root / "log", "-w", "-o",
                f"-k {root} -c listen_addresses='' -p {port}", "start"])
    conninfo = f"postgresql:///postgres?host={root}&port={port}&user=meshfs"

    def count():
        r = subprocess.run(["psql", conninfo, "-AtXqc", "SELECT count(*) FROM meshfs_usage_events"],
                           capture_output=True, text=True)
        return int(r.stdout.strip() or 0) if r.returncode == 0 else 0

    try:
        with Mount("mnt-pgsink", f"allow_other,passthrough=off,usage_sink={conninfo}") as m:
            n = min(2000, args.products)
            as_bench_user(OPEN_CODE, m.path, n, 1, 1)     # warm: lookups cached, table created
            time.sleep(1)
            before = count()
            t0 = time.perf_counter()
            rate = as_bench_user(OPEN_CODE, m.path, n, 5, 2)
            t_end = time.perf_counter()
            at_end = count() - before
            # drained: the count has not moved for 2 s (the number of opens is
            # not known exactly: the loops' rate times the wall time overstates
            # it by their start-up); the time is that of the last change
            last, t_last = at_end, t_end
            deadline = t_end + 120
            while time.perf_counter() < deadline and time.perf_counter() - t_last < 2:
                time.sleep(0.1)
                now = count() - before
                if now != last:
                    last, t_last = now, time.perf_counter()
            shipped = last
        record("usage to PostgreSQL", "events shipped/s during an open storm (2 processes, 5 s) vs its open rate",
               [at_end / (t_end - t0)], [rate], "events/s", "sustains the open rate (ratio >= 1.0)",
               f"one run; {shipped:,} events in all", base_name="open rate")
        record("usage to PostgreSQL", "backlog when the storm ended (recorded locally, not yet in PostgreSQL)",
               [shipped - at_end], None, "events", note="one run")
        record("usage to PostgreSQL", "time to ship that backlog after the storm", [t_last - t_end], None, "s",
               note=f"one run; {(shipped - at_end) / max(t_last - t_end, 1e-3):,.0f} events/s once the opens stopped")
    finally:
        subprocess.run(as_pg + [str(PGBIN / "pg_ctl"), "-D", str(root / "data"), "-m", "fast", "-w", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def bench_validate():
    log("validation")
    big = SRC / "big"
    csv = big / "events.csv"
    size = os.path.getsize(csv) / 1e6

    def validator(threads):
        def validate():
            wall, rss, out = run_peak([MESHCTL, "--store", STORE, "validate", big, "--threads", threads])
            validate.rss.append(rss)
            validate.per_cpu.append(size / run_peak.cpu)
            # the release is published already: validate reports that (and only that) as failed
            fails = [line for line in out.splitlines() if line.startswith("FAIL")]
            if not (len(fails) == 1 and "version" in fails[0]):
                validate.note = "unexpected: " + "; ".join(fails)
            return size / wall
        validate.rss, validate.per_cpu, validate.note = [], [], ""
        return validate
    v1, v2 = validator(1), validator(2)

    def publish():
        # a real publish of the same release, into a throwaway store made
        # afresh each time (so repetitions do not pile gigabytes up)
        pub = WORK / "pubstore"
        shutil.rmtree(pub, ignore_errors=True)
        sh([MESHCTL, "--store", pub, "init"])
        sh([MESHCTL, "--store", pub, "domain", "create", "bench", "--owner", "user:root"])
        wall, _, _ = run_peak([MESHCTL, "--store", pub, "publish", big])
        shutil.rmtree(pub, ignore_errors=True)
        return wall

    def wc():
        t0 = time.perf_counter()
        sh(["wc", "-l", csv])
        return size / (time.perf_counter() - t0)

    # every side in one interleaved loop: meshctl at 1 and 2 threads, wc -l,
    # DuckDB at 1 and 2 threads (same checks: types, required, unique, pattern)
    runs = [("validate1", v1), ("validate2", v2), ("wc", wc)]
    duck_rss, duck_cpu = {}, {}
    if DUCKDB:
        for threads in (1, 2):
            def duck(threads=threads):
                wall, rss, _ = run_peak([DUCKDB, "-c", DUCKDB_SQL.format(threads=threads, path=csv)])
                duck_rss.setdefault(threads, []).append(rss)
                duck_cpu.setdefault(threads, []).append(size / run_peak.cpu)
                return size / wall
            runs.append((f"duckdb{threads}", duck))
    r = interleave(args.repeat, runs)
    record("validation", f"meshctl validate, 1 thread, vs wc -l ({args.size_mib} MiB CSV)", r["validate1"], r["wc"],
           "MB/s", ">= 300 MB/s", v1.note, base_name="wc -l")
    record("validation", f"meshctl validate, 2 threads vs 1 thread ({args.size_mib} MiB CSV)", r["validate2"],
           r["validate1"], "MB/s", "scales with cores", v2.note, base_name="1 thread")
    # on a machine shared with other work the wall-clock rate says how much
    # CPU was left over; MB per CPU-second (user+sys, wait4) says what one core does
    record("validation", "meshctl validate, 1 thread, MB per CPU-second (user+sys)", v1.per_cpu,
           duck_cpu.get(1), "MB/s", ">= 300 MB/s", base_name="DuckDB" if DUCKDB else "")
    if DUCKDB:
        record("validation", "meshctl validate vs DuckDB, 1 thread each, same checks", r["validate1"], r["duckdb1"],
               "MB/s", ">= 2x DuckDB", base_name="DuckDB")
        record("validation", "meshctl validate vs DuckDB, 2 threads each, same checks", r["validate2"], r["duckdb2"],
               "MB/s", ">= 2x DuckDB", base_name="DuckDB")
        for threads, v in ((1, v1), (2, v2)):
            record("validation", f"peak RSS, meshctl validate vs DuckDB, {threads} thread{'s' if threads > 1 else ''}",
                   v.rss, duck_rss[threads], "MiB", "< 0.1x DuckDB (ratio > 10)", "ratio > 1: smaller than DuckDB",
                   lower_is_better=True, base_name="DuckDB")
    else:
        for threads, v in ((1, v1), (2, v2)):
            record("validation", f"peak RSS of meshctl validate, {threads} thread{'s' if threads > 1 else ''} "
                   "(its own, wait4)", v.rss, None, "MiB", "< 95 MiB (a tenth of DuckDB's 948)",
                   "DUCKDB not set: no baseline")
    p = interleave(args.repeat, [("publish", publish), ("validate", lambda: size / v2())])
    record("validation", "publish (validate+copy+SHA-256+fsync) vs validate of the same release", p["publish"],
           p["validate"], "s", "< 2x validation time", "ratio = validate time / publish time", lower_is_better=True,
           base_name="validate")


def bench_parquet_views():
    """Masked Parquet views: the bench user is masked on user_ref (pii) of
    a Parquet file, so the view copies the other nine columns' chunks and
    rewrites the footer; first open + read (builds the view) vs a cold
    clear read of the same file by root, through the same mount."""
    log("masked Parquet views")
    ensure_bench_user()
    gen = BUILD / "tools" / "parquet_gen"
    src = WORK / "pqview-src"
    rel = "bench/pqview/1.0.0/events.parquet"
    native = STORE / "domains" / rel
    if not native.exists():
        shutil.rmtree(src, ignore_errors=True)
        src.mkdir(parents=True)
        csv = src / "events.csv"
        write_big_csv(csv, (args.size_mib << 20) // 4)
        sh([gen, "--codec", "snappy", "--dict", "--rows", "500000", csv, src / "events.parquet",
            "int64,int64,string,double,string,string,timestamp,date,boolean,string"])
        csv.unlink()
        objects = "\n".join(line.split(", quality:")[0] + ("}" if ", quality:" in line else "")
                            for line in BIG_OBJECT.split("\n")).replace(", unique: true", "")
        objects = objects.replace("physicalName: events.csv", "physicalName: events.parquet").replace(
            "{name: user_ref, logicalType: string}", "{name: user_ref, logicalType: string, classification: pii}")
        (src / "contract.yaml").write_text(CONTRACT.format(id="bench-pqview", product="pqview", objects=objects))
        ctl("publish", src)
        shutil.rmtree(src, ignore_errors=True)
    cache = WORK / "view-cache-pq"
    size = os.path.getsize(native)
    for label, opts in (("passthrough", ""), ("no passthrough", "passthrough=off")):
        first, builds, seq_clear = [], [], []
        sep = "," if opts else ""
        for rep in range(args.repeat):
            shutil.rmtree(cache, ignore_errors=True)
            with Mount("mnt-pqviews", f"{opts}{sep}view_cache={cache}") as m:
                def masked_first():
                    drop_caches()
                    opened, total, n = map(float, as_bench_user_raw(VIEW_OPEN_CODE.format(path=m.path / rel)).split())
                    builds.append(size / opened / 1e6)
                    return n / total / 1e6

                def clear_cold():
                    drop_caches()
                    return read_seq(m.path / rel)
                first.append(masked_first())      # first: it builds the view
                seq_clear.append(clear_cold())
        record("masked Parquet views", f"first open + read vs one cold clear read, {label}", first, seq_clear,
               "MB/s", "", f"{size / 1e6:.0f} MB Parquet (Snappy, dictionaries), 1 of 10 columns left out",
               base_name="clear, cold")
        record("masked Parquet views", f"view build rate, {label}", builds, None, "MB/s", "",
               "release MB per second of the open that builds it")


def bench_parquet():
    """Parquet validation: footer-only (schema, row count, null counts,
    statistics) and with value checks on decoded pages (pattern, allowed
    values, unique), MB/s of the Parquet file.  The file is written by the
    tests' generator, which holds the table in memory: it is made from a
    CSV of a quarter of --size-mib."""
    log("parquet validation")
    gen = BUILD / "tools" / "parquet_gen"
    pq = WORK / "parquet"
    types = "int64,int64,string,double,string,string,timestamp,date,boolean,string"
    if not (pq / "done").exists():
        shutil.rmtree(pq, ignore_errors=True)
        pq.mkdir(parents=True)
        csv = pq / "events.csv"
        write_big_csv(csv, (args.size_mib << 20) // 4)
        for name in ("footer", "values"):
            (pq / name).mkdir()
        sh([gen, "--codec", "snappy", "--dict", "--rows", "1000000", csv, pq / "footer" / "events.parquet", types])
        shutil.copy(pq / "footer" / "events.parquet", pq / "values" / "events.parquet")
        csv.unlink()
        (pq / "done").write_text("")
    plain = BIG_OBJECT.replace("physicalName: events.csv", "physicalName: events.parquet")
    footer_only = "\n".join(line.split(", quality:")[0] + ("}" if ", quality:" in line else "")
                             for line in plain.split("\n")).replace(", unique: true", "")
    values = plain.replace("{name: kind, logicalType: string}",
                           "{name: kind, logicalType: string, quality: [{metric: invalidValues, "
                           "arguments: {validValues: [view, click, purchase, refund]}, mustBe: 0}]}")
    (pq / "footer" / "contract.yaml").write_text(CONTRACT.format(id="bench-pq", product="pq", objects=footer_only))
    (pq / "values" / "contract.yaml").write_text(CONTRACT.format(id="bench-pq", product="pq", objects=values))
    size = os.path.getsize(pq / "footer" / "events.parquet") / 1e6

    def cat():
        t0 = time.perf_counter()
        subprocess.run(["cat", str(pq / "footer" / "events.parquet")], stdout=subprocess.DEVNULL, check=True)
        return size / (time.perf_counter() - t0)

    last = {}

    def validate(name):
        def run():
            t0 = time.perf_counter()
            last[name] = subprocess.run([str(MESHCTL), "--store", str(STORE), "validate", str(pq / name), "--json"],
                                        capture_output=True, text=True)
            return size / (time.perf_counter() - t0)
        return run
    r = interleave(args.repeat, [("cat", cat), ("footer", validate("footer")), ("values", validate("values"))])
    for name, label in (("footer", "footer only (schema, rows, null counts, statistics)"),
                        ("values", "with value checks (pattern, allowed values, unique on decoded pages)")):
        try:
            f = json.loads(last[name].stdout)["files"][0]
            note = f"{f['rows']} rows, {size:.0f} MB file, " + \
                ("all rules checked" if all(x["checked"] for x in f["rules"]) else "some rules not checked")
        except (ValueError, KeyError, IndexError):
            note = "unexpected output: " + last[name].stdout[-200:]
        record("validation Parquet", f"{label} vs cat", r[name], r["cat"], "MB/s", "", note, base_name="cat")

def main():
    if os.geteuid() != 0:
        raise SystemExit("bench needs root")
    t_start = time.time()
    build_store()
    only = set(filter(None, args.only.split(",")))
    want = lambda s: (not only or s in only) and not (QUICK and s in ("access", "usage", "validate", "random", "views",
                                                                       "parquet", "pqviews", "readers")
                                                       and s not in only)
    if HP and not os.access(HP, os.X_OK):
        raise SystemExit(f"PASSTHROUGH_HP={HP}: not an executable")
    load = os.getloadavg()
    hp_ctx = HpMount("mnt-hp") if HP else None
    if want("seq") or want("random"):
        with Mount("mnt-pt") as pt, Mount("mnt-nopt", "passthrough=off") as nopt:
            mounts = [("passthrough", pt), ("no passthrough", nopt)]
            if hp_ctx:
                with hp_ctx as hp:
                    want("seq") and bench_sequential(mounts, hp)
                    want("random") and bench_random(mounts, hp)
            else:
                want("seq") and bench_sequential(mounts, None)
                want("random") and bench_random(mounts, None)
    if want("open"):
        if hp_ctx:
            with hp_ctx as hp:
                bench_open(hp)
        else:
            bench_open(None)
    if want("meta"):
        bench_metadata(HP)
    if want("readers"):
        bench_readers()
    if want("validate"):
        bench_validate()
    if want("parquet"):
        bench_parquet()
    if want("access"):
        bench_access()
    if want("usage"):
        bench_usage()
    if want("pgsink"):
        bench_pgsink()
    if want("views"):
        bench_views()
    if want("pqviews"):
        bench_parquet_views()
    load_end = os.getloadavg()
    busy = max(load[0], load_end[0]) > 0.5 * (os.cpu_count() or 1)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    lines = [f"Machine: {os.cpu_count()} vCPU {cpu}, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') >> 30} GiB, "
             f"kernel {platform.release()}; {time.strftime('%Y-%m-%d')}; {args.products} products, {args.size_mib} MiB CSV; "
             f"median of {args.repeat} interleaved repetitions (min-max); {time.time() - t_start:.0f} s; "
             f"load average {load[0]:.1f} at start, {load_end[0]:.1f} at end"
             + (" (a BUSY machine: other work shared the CPUs)." if busy else "."),
             "", "| section | measurement | meshfs | baseline | against | unit | ratio | goal | note |",
             "|---|---|---|---|---|---|---|---|---|"]
    for s, m, v, b, bn, u, r, g, n in rows:
        ratio = f"{r:.2f}x" if r == r else "-"
        lines.append(f"| {s} | {m} | {v} | {b} | {bn} | {u} | {ratio} | {g or ''} | {n} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        pathlib.Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
