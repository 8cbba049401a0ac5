#!/usr/bin/python3
"""Benchmark of the mesh service (issue 8): what going through the control
socket costs an ordinary user, against root working on the store directly,
in the same run (medians of interleaved repetitions, min and max beside).

  meshctl list / search through the service, on a store of --products
  small products (goal: under 20 ms), and the same commands direct;
  publish of a --size-mib release through the service vs direct
  (goal: at most 10 % more).

Builds its store once under --work (cached).  Needs root (it creates the
bench user and starts `meshfs --service`)."""
import argparse
import pathlib
import shutil
import statistics
import subprocess
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("--build", default=str(pathlib.Path(__file__).resolve().parents[2] / "build"))
ap.add_argument("--work", default="/var/tmp/meshfs-bench-service")
ap.add_argument("--products", type=int, default=10000)
ap.add_argument("--size-mib", type=int, default=256)
ap.add_argument("--repeat", type=int, default=5)
args = ap.parse_args()

BUILD = pathlib.Path(args.build)
MESHCTL, MESHFS = BUILD / "meshctl", BUILD / "meshfs"
WORK = pathlib.Path(args.work)
STORE = WORK / "store"
USER = "mesh_bench_svc"
CONTRACT = """apiVersion: v3.1.0
kind: DataContract
id: {id}
name: {product}
version: {version}
status: active
domain: bench
dataProduct: {product}
description:
  purpose: Benchmark product {product} about churn and orders
team:
  members:
    - username: root
      role: owner
support:
  - channel: "#bench"
schema:
  - name: data
    physicalName: data.csv
    properties:
      - {{name: id, logicalType: integer}}
      - {{name: value, logicalType: integer}}
"""


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def sh(cmd, user=None, **kw):
    prefix = ["setpriv", "--reuid", user, "--regid", user, "--init-groups", "--"] if user else []
    return subprocess.run(prefix + [str(c) for c in cmd], check=True, capture_output=True, text=True, **kw)


def release(parent, product, version, rows):
    d = parent / f"{product}-{version}"
    d.mkdir(parents=True)
    with open(d / "data.csv", "w") as f:
        f.write("id,value\n")
        k = 0
        while f.tell() < rows:
            f.write("".join(f"{k + i},{(k + i) * 7}\n" for i in range(10000)))
            k += 10000
    (d / "contract.yaml").write_text(CONTRACT.format(id=f"svc-{product}-{version}", product=product,
                                                     version=version))
    subprocess.run(["chmod", "-R", "a+rX", str(parent)], check=True)
    return d


def build():
    marker = WORK / f"built-{args.products}"
    if marker.exists():
        return
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    WORK.chmod(0o755)
    sh([MESHCTL, "--store", STORE, "init"])
    sh([MESHCTL, "--store", STORE, "domain", "create", "bench", "--owner", "user:root",
        "--owner", f"user:{USER}"])
    log(f"publishing {args.products} small products")
    src = WORK / "src"
    procs = []
    for i in range(args.products):
        d = release(src, f"p{i:05d}", "1.0.0", 64)
        procs.append(subprocess.Popen([str(MESHCTL), "--store", str(STORE), "publish", str(d)],
                                      stdout=subprocess.DEVNULL))
        if len(procs) >= 4:
            procs.pop(0).wait()
    for p in procs:
        p.wait()
    shutil.rmtree(src)
    sh([MESHCTL, "--store", STORE, "reindex"])
    marker.touch()


def timed(cmd, user=None):
    t0 = time.perf_counter()
    sh(cmd, user=user)
    return time.perf_counter() - t0


def row(metric, a, b, unit, goal):
    ma, mb = statistics.median(a), statistics.median(b)
    print(f"| {metric} | {ma:.1f} ({min(a):.1f}-{max(a):.1f}) | {mb:.1f} ({min(b):.1f}-{max(b):.1f}) "
          f"| {unit} | {ma / mb:.2f}x | {goal} |")


def main():
    if subprocess.run(["id", USER], capture_output=True).returncode:
        subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/sh", USER], check=True)
    build()
    svc = subprocess.Popen([str(MESHFS), "--service", str(STORE), "-f"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        ctl = [MESHCTL, "--store", STORE]
        print(f"| measurement (median of {args.repeat * 2 + 1} or {args.repeat}, min-max) | through the service "
              f"| direct (root) | unit | ratio | goal |")
        print("|---|---|---|---|---|---|")
        for name, cmd in (("meshctl list", ["list"]), ("meshctl search", ["search", "churn", "p00042"])):
            served, direct = [], []
            for _ in range(args.repeat * 2 + 1):        # interleaved
                served.append(1000 * timed(ctl + cmd, user=USER))
                direct.append(1000 * timed(ctl + cmd))
            row(f"{name}, {args.products} products", served, direct, "ms", "< 20 ms through the service")
        src = WORK / "publish-src"
        shutil.rmtree(src, ignore_errors=True)
        served, direct = [], []
        for i in range(args.repeat):
            a = release(src, "big", f"1.{2 * i}.0", args.size_mib << 20)
            b = release(src, "big", f"1.{2 * i + 1}.0", args.size_mib << 20)
            served.append(timed(ctl + ["publish", a], user=USER))
            direct.append(timed(ctl + ["publish", b]))
            shutil.rmtree(a)
            shutil.rmtree(b)
        row(f"publish {args.size_mib} MiB", served, direct, "s", "<= 1.10x")
        shutil.rmtree(STORE / "domains/bench/big", ignore_errors=True)
        sh([MESHCTL, "--store", STORE, "reindex"])
    finally:
        svc.terminate()
        svc.wait()


if __name__ == "__main__":
    main()
