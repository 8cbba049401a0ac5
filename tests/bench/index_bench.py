#!/usr/bin/python3
"""Index scale benchmark: a store of N releases (default 1,000 and 10,000),
this host's index (STATE/<store-id>/index.db) built and refreshed by
meshctl, measured the way a user meets it:

  index build                 the first `meshctl search` on a host without an
                              index (a build from the files), --repeat times:
                              median (min-max) wall time, CPU time (user+sys)
                              and releases/s
  reindex                     `meshctl reindex` (a full build from the files,
                              and every product's card and product.yaml)
  refresh after one release   the first `meshctl search` after one more publish
                              (stat of every product directory, one new
                              release read), minus a search on a current index
  search median               `meshctl search` of one product's name, index current
  search matching everything  a word in every contract, all hits printed

Releases are cloned from one published release (manifest and contract
rewritten) so that building a 100k store takes seconds, not a day of
publishing; every clone is a complete release the index must read.
Prints a Markdown table (and writes it to --out)."""
import argparse
import os
import pathlib
import shutil
import statistics
import subprocess
import time
import uuid

from benchstore import children_cpu, clone_releases, log, move_generation, spread

ap = argparse.ArgumentParser()
ap.add_argument("--build", default=str(pathlib.Path(__file__).resolve().parents[2] / "build"))
ap.add_argument("--work", default="/var/tmp/meshfs-index-bench")
ap.add_argument("--sizes", default="1000,10000")
ap.add_argument("--versions", type=int, default=10, help="versions per product (products = releases / this)")
ap.add_argument("--repeat", type=int, default=3, help="index builds per size (median, min-max)")
ap.add_argument("--out", default=None)
args = ap.parse_args()

MESHCTL = pathlib.Path(args.build) / "meshctl"
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
  purpose: Benchmark product {product} about {topic}
  usage: everything
team:
  members:
    - username: root
      role: owner
support:
  - channel: "#bench"
schema:
  - name: orders
    physicalName: orders.csv
    properties:
      - {{name: order_id, logicalType: integer}}
      - {{name: amount, logicalType: number}}
"""

TOPICS = ["sales", "finance", "logistics", "marketing", "support", "hr", "risk", "web"]


def ctl(store, state, *a):
    env = dict(os.environ, MESHFS_STATE_DIR=str(state))
    r = subprocess.run([str(MESHCTL), "--store", str(store), *map(str, a)], capture_output=True, text=True, env=env)
    return r


def timed(store, state, *a):
    t = time.perf_counter()
    r = ctl(store, state, *a)
    return time.perf_counter() - t, r


def index_build(store, root):
    """The index built from scratch (a host without one) --repeat times:
    lists of wall and CPU seconds."""
    walls, cpus = [], []
    for k in range(args.repeat):
        state = root / f"state-build-{k}"
        shutil.rmtree(state, ignore_errors=True)
        c0 = children_cpu()
        dt, r = timed(store, state, "search", "p1")
        assert r.returncode == 0, r.stderr
        walls.append(dt)
        cpus.append(children_cpu() - c0)
        shutil.rmtree(state, ignore_errors=True)
    return walls, cpus


def release_dir(parent, domain, product, version, topic):
    d = parent / f"{product}-{version}"
    d.mkdir(parents=True)
    (d / "orders.csv").write_text("order_id,amount\n1,2.5\n")
    (d / "contract.yaml").write_text(CONTRACT.format(id=uuid.uuid4(), domain=domain, product=product,
                                                     version=version, topic=topic))
    return d


def build_store(n):
    root = WORK / f"store-{n}-v{args.versions}"
    store, state = root / "store", root / "state"
    if (root / "done").exists():
        return store, state
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    ctl(store, state, "init")
    domains = max(1, n // 1000)
    for d in range(domains):
        r = ctl(store, state, "domain", "create", f"d{d}", "--owner", "user:root")
        assert r.returncode == 0, r.stderr
    # one real publish: the template every clone copies
    tpl = release_dir(root / "rel", "d0", "p0", "1.0.0", TOPICS[0])
    r = ctl(store, state, "publish", tpl)
    assert r.returncode == 0, r.stdout + r.stderr
    src = store / "domains/d0/p0/1.0.0"
    t = time.perf_counter()
    targets = ((f"d{(i // args.versions) % domains}", f"p{i // args.versions}", f"1.{i % args.versions}.0")
               for i in range(1, n))

    def contract(i, d, p, v):
        topic = TOPICS[((i + 1) // args.versions) % len(TOPICS)]
        return CONTRACT.format(id=uuid.uuid4(), domain=d, product=p, version=v, topic=topic)

    made = 1 + clone_releases(store, src, targets, contract, copy=("orders.csv", "schema.json"), every=0)
    ctl(store, state, "domain", "list")   # touch
    move_generation(store, n)   # as a publish would have moved it
    log(f"  built {made} releases in {time.perf_counter() - t:.1f} s")
    (root / "done").write_text("")
    return store, state


def main():
    rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        log(f"{n} releases")
        store, state = build_store(n)
        walls, cpus = index_build(store, store.parent)
        log(f"  index build {spread(walls)} s, CPU {spread(cpus)} s, {n / statistics.median(walls):,.0f} releases/s")
        shutil.rmtree(state, ignore_errors=True)
        reindex, r = timed(store, state, "reindex")
        assert r.returncode == 0, r.stderr
        log("  " + r.stdout.strip())
        time.sleep(3.5)                     # past the settle window: the index is current
        ctl(store, state, "search", "p1")
        searches = []
        for i in range(9):
            dt, r = timed(store, state, "search", f"p{(i * 37) % max(1, n // args.versions)}")
            assert r.returncode == 0, r.stderr
            searches.append(dt)
        median = statistics.median(searches)
        everything, r = timed(store, state, "search", "Benchmark")
        hits = sum(1 for line in r.stdout.splitlines() if line and not line.startswith(" "))
        # one more release, then the first search (refresh + search)
        rel = release_dir(WORK / f"rel-{n}-{time.time_ns()}", "d0", f"new{time.time_ns()}", "1.0.0", "fresh")
        r = ctl(store, state, "publish", rel)
        assert r.returncode == 0, r.stdout + r.stderr
        after, r = timed(store, state, "search", "fresh")
        assert r.returncode == 0 and "fresh" in r.stdout, r
        refresh = max(0.0, after - median)
        rows.append((n, walls, cpus, reindex, refresh, after, median, everything, hits))
        log(f"  reindex {reindex:.2f} s, first search after a publish {after * 1000:.0f} ms "
            f"(refresh ~{refresh * 1000:.0f} ms), search median {median * 1000:.1f} ms, "
            f"match-everything {everything * 1000:.0f} ms ({hits} hits)")
    lines = [f"| releases | index build, median of {args.repeat} (min-max) (s) | its CPU (s) | releases/s |"
             " reindex (s) | refresh after one release (ms) | first search after publish (ms) |"
             " search median (ms) | match everything (ms, hits) |", "|---|---|---|---|---|---|---|---|---|"]
    for n, walls, cpus, reindex, refresh, after, median, everything, hits in rows:
        lines.append(f"| {n:,} | {spread(walls)} | {spread(cpus)} | {n / statistics.median(walls):,.0f} |"
                     f" {reindex:.2f} | {refresh * 1000:.0f} | {after * 1000:.0f} | {median * 1000:.1f} |"
                     f" {everything * 1000:.0f} ({hits:,}) |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        pathlib.Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
