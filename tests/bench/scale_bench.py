#!/usr/bin/python3
"""Scale benchmark (issue 13): stores of 1,000 / 10,000 / 100,000 releases
(one version per product, the worst case for anything per product; 1,000
products a domain), measured the way users and ops meet them:

  list            `meshctl list` (all products, index current)
  status          `meshctl status`
  refresh         this host's index refresh after one new release (the
                  first `meshctl list d0/p0` after the publish minus one
                  on a current index; the refresh reads the change log)
  rss             the daemon's RSS after mount and a listing of one domain
  mount ready     mount until the first `ls` of the mount answers (index
                  warm: the daemon has mounted this store before, so its
                  record of the last clean store audit is there too), and the
                  daemon's CPU time (user + system) until then
  ready           the same alone (--only ready: no publish), with the store
                  audit's own time as the daemon logs it: incremental (this
                  host's record used), and full (the record removed first;
                  the --baseline build's daemon, which keeps none, beside)
  visible         one new release published (a new product in d0): from
                  its manifest appearing in the store until a listing of d0
                  on the mount shows it, and the daemon's CPU time during
                  the publish (the machine is shared: CPU beside wall)

Each timing is the median of --repeat (>= 5) interleaved runs, min-max
beside it.  Releases are cloned from one published release (manifest and
contract rewritten), so a 100k store is built in minutes, not a day of
publishing; every clone is a complete release.  The change log of the
clones is left empty on purpose and the index built by `meshctl reindex`.
Needs root (mounting).  Prints a Markdown table (and writes it to --out)."""
import argparse
import os
import pathlib
import re
import shutil
import statistics
import subprocess
import time
import uuid

from benchstore import children_cpu, clone_releases, log, move_generation, timed

ap = argparse.ArgumentParser()
ap.add_argument("--build", default=str(pathlib.Path(__file__).resolve().parents[2] / "build"))
ap.add_argument("--work", default="/var/tmp/meshfs-scale-bench")
ap.add_argument("--sizes", default="1000,10000,100000")
ap.add_argument("--repeat", type=int, default=5)
ap.add_argument("--only", default="", help="comma-separated: list,status,refresh,daemon,ready")
ap.add_argument("--baseline", default=None, help="a directory with another build's meshctl: its list and status"
                " timed in the same loop (the before of a change)")
ap.add_argument("--build-only", action="store_true")
ap.add_argument("--daemon-options", default="", help="more -o options for the daemon (e.g. release_cache=N)")
ap.add_argument("--out", default=None)
args = ap.parse_args()
args.repeat = max(5, args.repeat)
ONLY = set(filter(None, args.only.split(",")))

BUILD = pathlib.Path(args.build)
MESHCTL, MESHFS = BUILD / "meshctl", BUILD / "meshfs"
WORK = pathlib.Path(args.work)

CONTRACT = """apiVersion: v3.1.0
kind: DataContract
id: {id}
name: {product}
version: {version}
status: active
domain: {domain}
dataProduct: {product}
description:
  purpose: Scale product {product} about {topic}
team:
  members:
    - username: root
      role: owner
support:
  - channel: "#scale"
schema:
  - name: orders
    physicalName: orders.csv
    properties:
      - {{name: order_id, logicalType: integer}}
      - {{name: amount, logicalType: number}}
"""


def ctl(store, state, *a, check=True, binary=None):
    env = dict(os.environ, MESHFS_STATE_DIR=str(state))
    r = subprocess.run([str(binary or MESHCTL), "--store", str(store), *map(str, a)], capture_output=True, text=True,
                       env=env)
    if check and r.returncode:
        raise RuntimeError(f"meshctl {' '.join(map(str, a))}: {r.stdout}{r.stderr}")
    return r


def cpu_timed(cpu_list, fn):
    """Wall time of fn; its children's CPU (user+sys) appended to cpu_list."""
    c0 = children_cpu()
    t = timed(fn)
    cpu_list.append(children_cpu() - c0)
    return t


def release_dir(parent, domain, product, version, topic):
    d = parent / f"{product}-{version}"
    d.mkdir(parents=True)
    (d / "orders.csv").write_text("order_id,amount\n1,2.5\n")
    (d / "contract.yaml").write_text(CONTRACT.format(id=uuid.uuid4(), domain=domain, product=product,
                                                     version=version, topic=topic))
    return d


def build_store(n):
    root = WORK / f"store-{n}"
    store, state = root / "store", root / "state"
    if (root / "done").exists():
        return store, state
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    ctl(store, state, "init")
    domains = max(1, n // 1000)
    for d in range(domains):
        ctl(store, state, "domain", "create", f"d{d}", "--owner", "user:root")
    tpl = release_dir(root / "rel", "d0", "p0", "1.0.0", "sales")
    ctl(store, state, "publish", tpl)
    src = store / "domains/d0/p0/1.0.0"
    t = time.perf_counter()

    def contract(i, d, p, v):
        return CONTRACT.format(id=uuid.uuid4(), domain=d, product=p, version=v, topic="sales")

    clone_releases(store, src, ((f"d{i % domains}", f"p{i}", "1.0.0") for i in range(1, n)), contract,
                   mode=0o700)
    subprocess.run(["chmod", "-R", "go-rwx", str(store)], check=True)
    move_generation(store, n)
    ctl(store, state, "reindex")
    log(f"  built {n} releases in {time.perf_counter() - t:.1f} s")
    (root / "done").write_text("")
    return store, state


def fmt(xs, unit_scale=1000.0, digits=1):
    xs = [x * unit_scale for x in xs]
    return f"{statistics.median(xs):.{digits}f} ({min(xs):.{digits}f}-{max(xs):.{digits}f})"


def proc_cpu(pid):
    """user + system CPU seconds of a process"""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


AUDIT_LINE = re.compile(r"store audit: (incremental|full)\b.*?([0-9.]+) s$")


def audit_seconds(log_path):
    """(kind, seconds) of the mount's synchronous store audit, from its log"""
    for line in pathlib.Path(log_path).read_text(errors="replace").splitlines():
        m = AUDIT_LINE.search(line)
        if m:
            return m.group(1), float(m.group(2))
    return None, None


def daemon_run(store, state, extra="", publish=True, binary=None, log_path=None):
    """Start the daemon, time until `ls` of the mount answers, then list one
    domain and read the daemon's RSS; publish one release and time until the
    mount lists it (unless not `publish`); unmount.  (mount-ready s, ready
    CPU s, RSS MiB, visible s, visible CPU s)"""
    mnt = WORK / "mnt"
    mnt.mkdir(exist_ok=True)
    subprocess.run(["fusermount3", "-uz", str(mnt)], capture_output=True)
    env = dict(os.environ, MESHFS_STATE_DIR=str(state))
    log = open(log_path, "w") if log_path else subprocess.DEVNULL
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(binary or MESHFS), str(store), str(mnt), "-f", "-o", "allow_other,no_usage" + extra],
                            stdout=log, stderr=log, env=env)
    try:
        ready = None
        while time.perf_counter() - t0 < 600:
            if proc.poll() is not None:
                raise RuntimeError("meshfs exited")
            r = subprocess.run(["ls", str(mnt)], capture_output=True, text=True)
            if r.returncode == 0 and "d0" in r.stdout.split():
                ready = time.perf_counter() - t0
                break
            time.sleep(0.01)
        ready_cpu = proc_cpu(proc.pid)
        if not publish:
            return ready, ready_cpu, None, None, None
        subprocess.run(["ls", str(mnt / "d0")], capture_output=True)
        rss = 0
        for line in open(f"/proc/{proc.pid}/status"):
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
        name = f"vis{time.time_ns()}"
        rel = release_dir(WORK / f"rel-vis-{time.time_ns()}", "d0", name, "1.0.0", "fresh")
        # from the moment the release is in the store (publish renames it
        # into place, then goes on with descriptors and cards) until the
        # mount lists it
        cpu0 = proc_cpu(proc.pid)
        pub = subprocess.Popen([str(MESHCTL), "--store", str(store), "publish", str(rel)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=dict(os.environ, MESHFS_STATE_DIR=str(state)))
        installed = visible = None
        t = time.perf_counter()
        while time.perf_counter() - t < 300 and visible is None:
            if installed is None and (store / "domains" / "d0" / name / "1.0.0" / ".manifest.json").exists():
                installed = time.perf_counter()
            if installed is not None and name in os.listdir(mnt / "d0"):
                visible = time.perf_counter() - installed
            time.sleep(0.002)
        visible_cpu = proc_cpu(proc.pid) - cpu0
        pub.wait()
        shutil.rmtree(rel.parent)
        return ready, ready_cpu, rss, visible, visible_cpu
    finally:
        subprocess.run(["fusermount3", "-u", str(mnt)], capture_output=True)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        subprocess.run(["fusermount3", "-uz", str(mnt)], capture_output=True)
        if log_path:
            log.close()


def main():
    sizes = [int(s) for s in args.sizes.split(",")]
    stores = {}
    for n in sizes:
        log(f"store of {n} releases")
        stores[n] = build_store(n)
    if args.build_only:
        return
    rows = []
    want = lambda k: not ONLY or k in ONLY
    # interleaved: one run of each size, repeated
    res = {n: {"list": [], "status": [], "refresh": [], "ready": [], "rss": [], "list_before": [], "status_before": [],
               "ready_cpu": [], "visible": [], "visible_cpu": [],
               "list_cpu": [], "status_cpu": [], "list_before_cpu": [], "status_before_cpu": [],
               "ready_incr": [], "ready_incr_cpu": [], "audit_incr": [], "ready_full": [], "ready_full_cpu": [],
               "audit_full": [], "ready_before": [], "ready_before_cpu": [], "audit_before": []}
           for n in sizes}
    before_bin = pathlib.Path(args.baseline) / "meshctl" if args.baseline else None
    for n in sizes:
        store, state = stores[n]
        time.sleep(0.1)
        ctl(store, state, "list")
    before_meshfs = pathlib.Path(args.baseline) / "meshfs" if args.baseline else None
    if "ready" in ONLY:
        for n in sizes:    # a first mount keeps the record of a clean audit
            daemon_run(*stores[n], publish=False)
    for rep in range(args.repeat):
        for n in sizes:
            store, state = stores[n]
            if "ready" in ONLY:
                log_path = WORK / "ready.log"
                ready, cpu, *_ = daemon_run(store, state, publish=False, log_path=log_path)
                kind, secs = audit_seconds(log_path)
                if kind == "incremental":
                    res[n]["ready_incr"].append(ready)
                    res[n]["ready_incr_cpu"].append(cpu)
                    res[n]["audit_incr"].append(secs)
                for f in state.glob("*/store-audit"):
                    f.unlink()
                ready, cpu, *_ = daemon_run(store, state, publish=False, log_path=log_path)
                kind, secs = audit_seconds(log_path)
                if kind == "full":
                    res[n]["ready_full"].append(ready)
                    res[n]["ready_full_cpu"].append(cpu)
                    res[n]["audit_full"].append(secs)
                if before_meshfs:
                    t = time.perf_counter()
                    subprocess.run([str(before_meshfs.parent / "meshctl"), "--store", str(store), "doctor"],
                                   capture_output=True)
                    res[n]["audit_before"].append(time.perf_counter() - t)
                    ready, cpu, *_ = daemon_run(store, state, publish=False, binary=before_meshfs)
                    res[n]["ready_before"].append(ready)
                    res[n]["ready_before_cpu"].append(cpu)
                continue
            if want("list"):
                res[n]["list"].append(cpu_timed(res[n]["list_cpu"], lambda: ctl(store, state, "list")))
                if before_bin:
                    res[n]["list_before"].append(cpu_timed(res[n]["list_before_cpu"],
                                                           lambda: ctl(store, state, "list", binary=before_bin)))
            if want("status"):
                res[n]["status"].append(cpu_timed(res[n]["status_cpu"], lambda: ctl(store, state, "status")))
                if before_bin:
                    res[n]["status_before"].append(cpu_timed(res[n]["status_before_cpu"],
                                                             lambda: ctl(store, state, "status", binary=before_bin)))
            if want("refresh"):
                ctl(store, state, "list", "d0/p0")
                base = timed(lambda: ctl(store, state, "list", "d0/p0", check=False))
                rel = release_dir(WORK / f"rel-{n}-{time.time_ns()}", "d0", f"new{time.time_ns()}", "1.0.0",
                                  "fresh")
                ctl(store, state, "publish", rel)
                shutil.rmtree(rel.parent)
                after = timed(lambda: ctl(store, state, "list", "d0/p0", check=False))
                res[n]["refresh"].append(max(0.0, after - base))
            if want("daemon"):
                extra = "," + args.daemon_options if args.daemon_options else ""
                ready, ready_cpu, rss, visible, visible_cpu = daemon_run(store, state, extra)
                res[n]["ready"].append(ready)
                res[n]["ready_cpu"].append(ready_cpu)
                res[n]["rss"].append(rss)
                if visible is not None:
                    res[n]["visible"].append(visible)
                    res[n]["visible_cpu"].append(visible_cpu)
    for n in sizes:
        r = res[n]
        rows.append((n, r))
        log(f"{n}: " + ", ".join(f"{k} {fmt(v)}" for k, v in r.items() if v))
    lines = [f"| releases (1 per product) | `meshctl list` (ms) | `meshctl status` (ms) | index refresh after one"
             f" new release (ms) | mount until first `ls` (s, warm page cache; daemon CPU s) | daemon RSS (MiB) |"
             f" new release visible on the mount (ms; daemon CPU ms) |",
             "|---|---|---|---|---|---|---|"]
    if before_bin:
        lines[0] += " `list` / `status` before (ms) |"
        lines[1] += "---|"
    cell = lambda xs, scale=1000.0, digits=1: fmt(xs, scale, digits) if xs else "-"
    for n, r in rows:
        with_cpu = lambda k: cell(r[k]) + (f"; CPU {cell(r[k + '_cpu'])}" if r.get(k + "_cpu") else "")
        lines.append(f"| {n:,} | {with_cpu('list')} | {with_cpu('status')} | {cell(r['refresh'])}"
                     f" | {cell(r['ready'], 1.0, 2)}; CPU {cell(r['ready_cpu'], 1.0, 2)} | {cell(r['rss'], 1.0, 0)}"
                     f" | {cell(r['visible'])}; CPU {cell(r['visible_cpu'])} |" +
                     (f" {with_cpu('list_before')} / {with_cpu('status_before')} |" if before_bin else ""))
    if "ready" in ONLY:
        lines = ["| releases | mount until first `ls`, incremental audit (s; daemon CPU s) | its audit (s) |"
                 " the same with a full audit (no record) | its audit (s) |" +
                 (" baseline build: mount until first `ls` (s; CPU s) | its full audit (`meshctl doctor`, s) |"
                  if before_bin else ""),
                 "|---|---|---|---|---|" + ("---|---|" if before_bin else "")]
        for n, r in rows:
            lines.append(f"| {n:,} | {cell(r['ready_incr'], 1.0, 2)}; CPU {cell(r['ready_incr_cpu'], 1.0, 2)}"
                         f" | {cell(r['audit_incr'], 1.0, 2)} | {cell(r['ready_full'], 1.0, 2)};"
                         f" CPU {cell(r['ready_full_cpu'], 1.0, 2)} | {cell(r['audit_full'], 1.0, 2)} |" +
                         (f" {cell(r['ready_before'], 1.0, 2)}; CPU {cell(r['ready_before_cpu'], 1.0, 2)}"
                          f" | {cell(r['audit_before'], 1.0, 2)} |" if before_bin else ""))
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        pathlib.Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
