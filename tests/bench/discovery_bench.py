#!/usr/bin/python3
"""Discovery benchmark (issue 11): on a store of --products products (one
release each, default 100,000) and one of --catalog-products (10,000):

  search                 `meshctl search WORDS` (process start, index query, ranking,
                         visibility), goal median < 20 ms
  ls /mesh/.search/<q>   the same search answered by the mount, goal < 50 ms
  MCP search_products    one tools/call round trip to a running `meshctl mcp`, goal < 50 ms
  index build            this host's index built from every release's files (the
                         first search on a host without one), goal < 60 s
  catalog page           `meshctl catalog --html DIR` of the smaller store
  reindex                `meshctl reindex` of the smaller store: the index and every
                         product's card and served descriptor rewritten

Every figure is the median of --repeat (>= 5) repetitions with min-max, the
measurements interleaved (search, ls, MCP, ... in a rotating order within
each repetition).  Stores are built once under --work by writing release
directories directly (a published release cloned, manifest and contract
rewritten, as index_bench.py does): publishing 100,000 releases one by one
would take hours.  Runs as root (the mount and the store are root's here);
prints a Markdown table (and writes it to --out)."""
import argparse
import json
import os
import pathlib
import platform
import random
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid

from benchstore import children_cpu, clone_releases, log, move_generation, timed

ap = argparse.ArgumentParser()
ap.add_argument("--build", default=str(pathlib.Path(__file__).resolve().parents[2] / "build"))
ap.add_argument("--work", default="/var/tmp/meshfs-discovery-bench")
ap.add_argument("--products", type=int, default=100000)
ap.add_argument("--catalog-products", type=int, default=10000)
ap.add_argument("--repeat", type=int, default=5)
ap.add_argument("--queries", type=int, default=5, help="queries timed per repetition")
ap.add_argument("--only", default="", help="comma list of: search,index,catalog,reindex")
ap.add_argument("--build-only", action="store_true", help="build the stores and stop")
ap.add_argument("--out", default=None)
args = ap.parse_args()
args.repeat = max(args.repeat, 5)

BUILD = pathlib.Path(args.build)
MESHCTL, MESHFS = BUILD / "meshctl", BUILD / "meshfs"
WORK = pathlib.Path(args.work)
TOPICS = ["sales", "finance", "logistics", "marketing", "support", "hr", "risk", "web"]
VOCAB = [f"{a}{b}" for a in ("churn", "order", "ship", "invoice", "lead", "ticket", "claim", "click",
                             "refund", "stock") for b in ("rate", "daily", "agg", "raw", "model", "score",
                                                          "event", "fact", "dim", "mart")]   # 100 words
CONTRACT = """apiVersion: v3.1.0
kind: DataContract
id: {id}
name: {product}
version: 1.0.0
status: active
domain: {domain}
dataProduct: {product}
description:
  purpose: Benchmark product {product} about {topic} {w1} and {w2}
  usage: dashboards
tags: [{topic}, {w1}]
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
      - {{name: {w2}_amount, logicalType: number, description: amount of {w2}}}
"""


def state_of(store):
    return store.parent / "state"


def ctl(store, *a, check=True, state=None, **kw):
    env = dict(os.environ, MESHFS_STATE_DIR=str(state or state_of(store)))
    r = subprocess.run([str(MESHCTL), "--store", str(store), *map(str, a)], capture_output=True, text=True,
                       env=env, **kw)
    if check and r.returncode:
        raise SystemExit(f"meshctl {' '.join(map(str, a))}: {r.returncode}\n{r.stdout}{r.stderr}")
    return r


def words_of(i):
    rnd = random.Random(i)
    return TOPICS[i % len(TOPICS)], rnd.choice(VOCAB), rnd.choice(VOCAB)


def build_store(n):
    root = WORK / f"store-{n}"
    store = root / "store"
    if (root / "done").exists():
        return store
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    old = os.umask(0o077)
    ctl(store, "init")
    domains = max(1, n // 1000)
    for d in range(domains):
        ctl(store, "domain", "create", f"d{d}", "--owner", "user:root")
    tpl = root / "rel" / "p0"
    tpl.mkdir(parents=True)
    (tpl / "orders.csv").write_text("order_id,churnrate_amount\n1,2.5\n")
    topic, w1, w2 = words_of(0)
    (tpl / "contract.yaml").write_text(CONTRACT.format(id=uuid.uuid4(), domain="d0", product="p0", topic=topic,
                                                       w1=w1, w2="churnrate"))
    ctl(store, "publish", tpl)
    src = store / "domains/d0/p0/1.0.0"
    t = time.perf_counter()

    def contract(i, d, p, v):
        topic, w1, w2 = words_of(i + 1)
        return CONTRACT.format(id=uuid.uuid4(), domain=d, product=p, topic=topic, w1=w1, w2=w2)

    clone_releases(store, src, ((f"d{i % domains}", f"p{i}", "1.0.0") for i in range(1, n)), contract)
    os.umask(old)
    move_generation(store, n)
    log(f"  built {n} releases in {time.perf_counter() - t:.0f} s")
    (root / "done").write_text("")
    return store


def spread(xs, unit):
    fmt = "{:,.0f}" if max(xs) >= 100 else "{:,.1f}" if max(xs) >= 10 else "{:,.2f}"
    return f"{fmt.format(statistics.median(xs))} ({fmt.format(min(xs))}-{fmt.format(max(xs))})"


rows = []


def record(what, values, unit, goal, ok, note=""):
    med = statistics.median(values)
    rows.append(f"| {what} | {spread(values, unit)} | {unit} | {goal} | {'yes' if ok(med) else 'NO'} | {note} |")
    log(f"  {what}: {spread(values, unit)} {unit} (goal {goal})")


class Mount:
    def __init__(self, store):
        self.store = store
        self.path = pathlib.Path(tempfile.mkdtemp(prefix="mnt-", dir=WORK))

    def __enter__(self):
        self.p = subprocess.Popen([str(MESHFS), str(self.store), str(self.path), "-f", "-o", "allow_other"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  env=dict(os.environ, MESHFS_STATE_DIR=str(state_of(self.store))))
        t0 = time.perf_counter()
        deadline = time.time() + 600                  # the first scan of 100,000 releases
        while not os.path.ismount(self.path):
            if self.p.poll() is not None or time.time() > deadline:
                self.__exit__()
                raise SystemExit("meshfs did not mount")
            time.sleep(0.1)
        self.mount_seconds = time.perf_counter() - t0
        log(f"  mounted in {self.mount_seconds:.1f} s (the first catalog scan)")
        return self

    def __exit__(self, *exc):
        for cmd in (["fusermount3", "-u", str(self.path)], ["fusermount3", "-uz", str(self.path)]):
            if not os.path.ismount(self.path) or subprocess.run(cmd, capture_output=True).returncode == 0:
                break
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        shutil.rmtree(self.path, ignore_errors=True)


class Mcp:
    """`meshctl mcp` kept running; one tools/call per round trip."""

    def __init__(self, store, mount):
        self.p = subprocess.Popen([str(MESHCTL), "--store", str(store), "mcp", "--mount", str(mount)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
                                  env=dict(os.environ, MESHFS_STATE_DIR=str(state_of(store))))
        self.id = 0
        self.call("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                                 "clientInfo": {"name": "bench", "version": "1"}})
        self.p.stdin.write(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}) + "\n")

    def call(self, method, params):
        self.id += 1
        self.p.stdin.write(json.dumps({"jsonrpc": "2.0", "id": self.id, "method": method, "params": params}) + "\n")
        self.p.stdin.flush()
        reply = json.loads(self.p.stdout.readline())
        assert "result" in reply, reply
        return reply["result"]

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=10)


def bench_search(store, n):
    log(f"search over {n:,} products")
    ctl(store, "search", "p1", check=False)           # the index, built if missing
    time.sleep(3.5)                                   # past the index's settle window
    queries = [f"p{(k * 7919) % n}" for k in range(args.queries)] + \
              [VOCAB[(k * 13) % len(VOCAB)] for k in range(args.queries)] + \
              [f"{VOCAB[k * 3 % len(VOCAB)]} {TOPICS[k % len(TOPICS)]}" for k in range(args.queries)]
    hits = {q: len(json.loads(ctl(store, "search", q, "--json", check=False).stdout or "[]"))
            for q in queries[::args.queries]}
    log(f"  hits of some queries: {hits}")
    out = {"search": [], "ls": [], "mcp": []}
    search_cpu = []
    with Mount(store) as m:
        mcp = Mcp(store, m.path)
        try:
            def one_search():
                c0 = children_cpu()
                t = statistics.median(timed(lambda q=q: ctl(store, "search", q, "--limit", "20", check=False))
                                      for q in queries)
                search_cpu.append((children_cpu() - c0) / len(queries) * 1000)
                return t

            def one_ls():
                return statistics.median(timed(lambda q=q: subprocess.run(["ls", str(m.path / ".search" / q)],
                                                                          capture_output=True, check=True))
                                         for q in queries)

            def one_mcp():
                return statistics.median(timed(lambda q=q: mcp.call("tools/call", {
                    "name": "search_products", "arguments": {"query": q, "limit": 20}})) for q in queries)

            runs = [("search", one_search), ("ls", one_ls), ("mcp", one_mcp)]
            one_ls()                                    # the mount's first use: not timed
            for rep in range(args.repeat):
                k = rep % len(runs)
                for name, fn in runs[k:] + runs[:k]:
                    out[name].append(fn() * 1000)
        finally:
            mcp.close()
    note = f"{len(queries)} queries a repetition (a name, a word, two words), their median"
    record(f"`meshctl search`, {n:,} products", out["search"], "ms", "< 20 ms", lambda v: v < 20,
           note + f"; CPU (user+sys) per query, mean of a repetition: {spread(search_cpu, 'ms')} ms")
    record(f"`ls /mesh/.search/<q>`, {n:,} products", out["ls"], "ms", "< 50 ms", lambda v: v < 50, note)
    record(f"MCP `search_products` round trip, {n:,} products", out["mcp"], "ms", "< 50 ms", lambda v: v < 50,
           note + "; one `meshctl mcp` kept running")


def bench_index(store, n):
    log(f"index build, {n:,} releases")
    times, cpu = [], []
    for k in range(args.repeat):
        state = store.parent / f"state-build-{k}"
        shutil.rmtree(state, ignore_errors=True)
        c0 = children_cpu()
        times.append(timed(lambda: ctl(store, "search", "p1", state=state, check=False)))
        cpu.append(children_cpu() - c0)
        shutil.rmtree(state, ignore_errors=True)
    record(f"index build (first `meshctl search` on a host without an index), {n:,} releases", times, "s",
           "< 60 s", lambda v: v < 60, f"{n / statistics.median(times):,.0f} releases/s; CPU (user+sys) "
           f"{spread(cpu, 's')} s")


def bench_reindex(store, n):
    log(f"meshctl reindex, {n:,} products")
    times = [timed(lambda: ctl(store, "reindex")) for _ in range(args.repeat)]
    record(f"`meshctl reindex` (index, every card and product.yaml rewritten), {n:,} products", times, "s", "-",
           lambda v: True, f"{n / statistics.median(times):,.0f} products/s")


def bench_catalog(store, n):
    log(f"catalog page, {n:,} products")
    ctl(store, "search", "p1", check=False)
    times = []
    for _ in range(args.repeat):
        site = pathlib.Path(tempfile.mkdtemp(prefix="site-", dir=WORK))
        times.append(timed(lambda: ctl(store, "catalog", "--html", site)))
        pages = sum(1 for _ in (site / "products").iterdir()) if (site / "products").exists() else 0
        shutil.rmtree(site)
    record(f"catalog page (`meshctl catalog --html`), {n:,} products", times, "s", "-", lambda v: True,
           f"{pages:,} product pages")


def main():
    if os.geteuid() != 0:
        raise SystemExit("the discovery bench needs root")
    t0 = time.time()
    load = os.getloadavg()
    only = set(filter(None, args.only.split(",")))
    want = lambda s: not only or s in only
    if args.build_only:
        build_store(args.products)
        build_store(args.catalog_products)
        return
    if want("search") or want("index"):
        big = build_store(args.products)
        want("search") and bench_search(big, args.products)
        want("index") and bench_index(big, args.products)
    if want("catalog") or want("reindex"):
        small = build_store(args.catalog_products)
        want("catalog") and bench_catalog(small, args.catalog_products)
        want("reindex") and bench_reindex(small, args.catalog_products)
    load_end = os.getloadavg()
    busy = max(load[0], load_end[0]) > 0.5 * (os.cpu_count() or 1)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    head = (f"Machine: {os.cpu_count()} vCPU {cpu}, kernel {platform.release()}; {time.strftime('%Y-%m-%d')}; "
            f"median of {args.repeat} interleaved repetitions (min-max); {time.time() - t0:.0f} s; load average "
            f"{load[0]:.1f} at start, {load_end[0]:.1f} at end"
            + (" (a BUSY machine: other work shared the CPUs)." if busy else "."))
    text = "\n".join([head, "", "| measurement | median (min-max) | unit | goal | met | note |",
                      "|---|---|---|---|---|---|", *rows]) + "\n"
    print(text)
    if args.out:
        pathlib.Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
