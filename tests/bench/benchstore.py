"""Large stores for the benchmarks, built fast and shared by index_bench.py,
scale_bench.py and discovery_bench.py.

A store of 100,000 releases cannot be published one by one in a bench's
time, so one release is published for real and its files are cloned under
other names: each clone gets its own contract (the caller's text) and a
manifest naming it, the other files are the template's bytes.  The
store's generation is then moved, as a publish would move it, so a daemon
or meshctl sees the change.  What a store holds beyond that (domains,
modes, an index) is each bench's own business.
"""
import json
import resource
import statistics
import sys
import time


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def children_cpu():
    """CPU seconds (user+sys) of every waited-for child so far."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def timed(fn):
    """Wall seconds of fn()."""
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def spread(xs, digits=2, unit=""):
    """'median (min-max)' of a list of numbers."""
    f = f"{{:.{digits}f}}"
    return f"{f.format(statistics.median(xs))}{unit} ({f.format(min(xs))}-{f.format(max(xs))}{unit})"


def clone_releases(store, src, targets, contract, copy=("orders.csv", "schema.json", "quality.json"),
                   mode=0o777, every=20000):
    """Clone the published release at `src` to each (domain, product,
    version) of `targets` under store/domains.  contract(i, domain,
    product, version) gives the i-th clone's contract.yaml text; the files
    named in `copy` that the template has are copied as they are.  Returns
    the number of releases written."""
    manifest = json.loads((src / ".manifest.json").read_text())
    files = {name: (src / name).read_bytes() for name in copy if (src / name).exists()}
    t = time.perf_counter()
    made = 0
    for i, (d, p, v) in enumerate(targets):
        dst = store / "domains" / d / p / v
        dst.mkdir(parents=True, mode=mode)
        for name, data in files.items():
            (dst / name).write_bytes(data)
        (dst / "contract.yaml").write_text(contract(i, d, p, v))
        (dst / ".manifest.json").write_text(json.dumps(dict(manifest, domain=d, product=p, version=v)))
        made += 1
        if every and made % every == 0:
            log(f"  {made} releases written ({time.perf_counter() - t:.0f} s)")
    return made


def move_generation(store, n):
    """Change the store's generation text, as a publish would."""
    with open(store / "generation", "r+") as f:
        f.write(f"{n} {time.time()} bench".ljust(63) + "\n")
