"""Lineage (issue 11): declared inputs drawn as a graph over the mesh,
checked at publish (missing, deprecated, cycles; errors under
requireInputs), filtered for the caller, with readers by usage."""
import json
import shutil
import subprocess
import time

import pytest

from conftest import make_release, run


def inputs(*names):
    return ("customProperties:\n  - property: meshInputs\n    value: ["
            + ", ".join(f'"{n}"' for n in names) + "]\n")


def restricted_inputs(*names):
    return inputs(*names) + "  - property: meshRestricted\n    value: true\n"


@pytest.fixture
def diamond(store, scratch):
    """raw/events -> sales/left, sales/right -> sales/joined -> fin/report;
    hr/secret (restricted, owner mesh_erin) reads sales/joined."""
    store.create_domain("raw", "group:mesh_sales")
    store.create_domain("sales", "group:mesh_sales")
    store.create_domain("fin", "group:mesh_sales")
    store.create_domain("hr", "user:mesh_erin")
    rel = scratch / "rel"
    store.publish(make_release(rel, "raw", "events", "1.0.0"))
    store.publish(make_release(rel, "raw", "events", "1.1.0"))
    store.publish(make_release(rel, "raw", "events", "2.0.0"))
    store.publish(make_release(rel, "sales", "left", "1.0.0", extra=inputs("raw/events@^1.0")))
    store.publish(make_release(rel, "sales", "right", "1.0.0", extra=inputs("raw/events@>=2.0.0")))
    store.publish(make_release(rel, "sales", "joined", "3.0.0",
                               extra=inputs("sales/left", "sales/right@1.0.0")))
    store.publish(make_release(rel, "fin", "report", "1.0.0", extra=inputs("sales/joined@^3")))
    store.publish(make_release(rel, "hr", "secret", "1.0.0", extra=restricted_inputs("sales/joined")))
    return store


def test_diamond_tree_json_dot(diamond):
    out = diamond.ctl("lineage", "fin/report", "--upstream", check=True).stdout
    assert out.splitlines()[0] == "fin/report 1.0.0 (active)"
    assert "<- sales/joined @^3 = 3.0.0" in out
    assert "<- raw/events @^1.0 = 1.1.0" in out        # newest in range, not 2.0.0
    assert "<- raw/events @>=2.0.0 = 2.0.0" in out
    assert "downstream" not in out

    doc = json.loads(diamond.ctl("lineage", "raw/events", "--downstream", "--format", "json",
                                 user="mesh_dave", check=True).stdout)
    ids = {n["id"] for n in doc["nodes"]}
    assert ids == {"raw/events", "sales/left", "sales/right", "sales/joined", "fin/report"}   # no hr/secret
    edges = {(e["from"], e["to"]) for e in doc["edges"]}
    assert ("sales/left", "sales/joined") in edges and ("sales/right", "sales/joined") in edges
    assert len(doc["edges"]) == 5
    # root is governance: it sees the restricted consumer too
    doc = json.loads(diamond.ctl("lineage", "raw/events", "--downstream", "--json", check=True).stdout)
    assert "hr/secret" in {n["id"] for n in doc["nodes"]} and len(doc["edges"]) == 6

    dot = diamond.ctl("lineage", "sales/joined", "--format", "dot", check=True).stdout
    assert dot.startswith("digraph lineage {")
    assert '"sales/joined" -> "fin/report"' in dot
    if shutil.which("dot"):
        svg = subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, text=True, check=True).stdout
        assert "<svg" in svg and "fin/report" in svg


def test_restricted_consumer_visible_only_to_who_may_read_it(diamond):
    # mesh_dave may not read hr/secret: it is neither a consumer nor a product for him
    out = diamond.ctl("lineage", "sales/joined", "--downstream", user="mesh_dave", check=True).stdout
    assert "fin/report" in out and "hr/secret" not in out
    r = diamond.ctl("lineage", "hr/secret", user="mesh_dave")
    assert r.returncode == 1 and "no such product" in r.stderr
    # its owner sees it, with its own upstream
    out = diamond.ctl("lineage", "sales/joined", "--downstream", user="mesh_erin", check=True).stdout
    assert "-> hr/secret" in out
    out = diamond.ctl("lineage", "hr/secret", "--upstream", user="mesh_erin", check=True).stdout
    assert "<- sales/joined @* = 3.0.0" in out


def test_publish_warns_about_missing_deprecated_and_cycles(diamond, scratch):
    rel = scratch / "rel2"
    r = diamond.publish(make_release(rel, "fin", "budget", "1.0.0", extra=inputs("nope/nothing@9.9.9")))
    assert "warn   lineage" in r.stdout and "nope/nothing@9.9.9: no product nope/nothing" in r.stdout
    assert "published fin/budget 1.0.0" in r.stdout

    diamond.ctl("deprecate", "raw/events", "1.1.0", check=True)
    diamond.ctl("deprecate", "raw/events", "1.0.0", check=True)
    r = diamond.publish(make_release(rel, "fin", "old", "1.0.0", extra=inputs("raw/events@^1")))
    assert "raw/events@^1: resolves to raw/events 1.1.0, which is deprecated (active: 2.0.0)" in r.stdout

    # raw/events 2.1.0 reading fin/report closes raw -> ... -> fin/report -> raw
    r = diamond.publish(make_release(rel, "raw", "events", "2.1.0", extra=inputs("fin/report")))
    assert "warn   lineage" in r.stdout
    assert any(f"closes a cycle: raw/events <- fin/report <- sales/joined <- sales/{arm} <- raw/events" in r.stdout
               for arm in ("left", "right")), r.stdout
    out = diamond.ctl("lineage", "raw/events", "--upstream", check=True).stdout
    assert "(cycle)" in out


def test_require_inputs_makes_problems_errors(diamond, scratch):
    mesh_yaml = diamond.path / "mesh.yaml"
    text = mesh_yaml.read_text()
    assert "publish:\n" in text
    mesh_yaml.write_text(text.replace("publish:\n", "publish:\n  requireInputs: true\n", 1))
    rel = scratch / "rel3"
    r = diamond.publish(make_release(rel, "fin", "budget", "1.0.0", extra=inputs("nope/nothing")), check=False)
    assert r.returncode == 1
    assert "FAIL   lineage" in r.stdout and "requireInputs, defined in" in r.stdout
    assert "NOT published" in r.stdout
    r = diamond.publish(make_release(rel, "fin", "budget", "1.0.1", extra=inputs("sales/joined@^3")))
    assert "ok     lineage: 1 declared input(s) found and active" in r.stdout


def test_downstream_by_usage_names_for_owners_only(diamond, mounter):
    diamond.ctl("grant", "fin/report", "group:mesh_analysts", check=True)
    m = mounter(diamond)
    run(["cat", m / "fin/report/1.0.0/orders.csv"], user="mesh_alice", check=True)
    run(["head", "-n1", m / "fin/report/1.0.0/orders.csv"], user="mesh_carol", check=True)
    m.stop()
    owner = diamond.ctl("lineage", "fin/report", "--downstream", user="mesh_bob", check=True).stdout
    assert "downstream (usage, last 30 days): 2 readers" in owner
    assert "mesh_alice" in owner and "mesh_carol" in owner and "(cat)" in owner
    other = diamond.ctl("lineage", "fin/report", "--downstream", user="mesh_dave", check=True).stdout
    assert "2 readers (names are shown to the domain's owners)" in other
    assert "mesh_alice" not in other
    doc = json.loads(diamond.ctl("lineage", "fin/report", "--json", user="mesh_bob", check=True).stdout)
    assert doc["usage"]["consumers"] == 2 and {u["user"] for u in doc["usage"]["readers"]} == {
        "mesh_alice", "mesh_carol"}


def test_bad_arguments(diamond):
    assert diamond.ctl("lineage").returncode == 2
    assert diamond.ctl("lineage", "fin/report", "--format", "png").returncode == 2
    assert diamond.ctl("lineage", "nope/nothing").returncode == 1
    assert "--upstream" in diamond.ctl("lineage", "--help", check=True).stdout


def test_observed_hints_from_usage(diamond, scratch, mounter):
    """mesh_erin reads raw/events and hr/secret (restricted, hers), then
    publishes sales/daily declaring nothing: --hints (off by default) shows
    raw/events -> sales/daily as a hint, named for owners of both domains,
    unnamed for others, and never the restricted product to those who may
    not see it."""
    diamond.ctl("grant", "raw", "group:mesh_analysts", check=True)
    m = mounter(diamond)
    run(["cat", m / "raw/events/2.0.0/orders.csv"], user="mesh_erin", check=True)
    run(["cat", m / "hr/secret/1.0.0/orders.csv"], user="mesh_erin", check=True)
    run(["cat", m / "sales/left/1.0.0/orders.csv"], user="mesh_alice")    # not a publisher: no hint
    m.stop()
    time.sleep(2.2)
    rel = scratch / "rel-daily"
    rel.mkdir(mode=0o755)
    d = make_release(rel, "sales", "daily", "1.0.0")
    subprocess.run(["chmod", "-R", "a+rX", str(rel)], check=True)
    diamond.publish(d, user="mesh_erin")

    plain = diamond.ctl("lineage", "sales/daily", user="mesh_bob", check=True).stdout
    assert "hint" not in plain and "raw/events" not in plain                  # off by default
    owner = diamond.ctl("lineage", "sales/daily", "--hints", user="mesh_gina", check=True).stdout
    assert "hints (observed from usage, not declared: a read within 60m before a publish): 2" in owner, owner
    assert "~ raw/events -> sales/daily 1.0.0  (hint: mesh_erin read it" in owner
    assert "~ hr/secret -> sales/daily 1.0.0  (hint: mesh_erin read it" in owner
    dave = diamond.ctl("lineage", "sales/daily", "--hints", user="mesh_dave", check=True).stdout
    assert "~ raw/events -> sales/daily 1.0.0  (hint: its publisher read it" in dave
    assert "hr/secret" not in dave and "mesh_erin" not in dave                # restricted, and no names
    # bob owns sales and raw, not hr: named for raw/events, and hr/secret is not his to see
    bob = diamond.ctl("lineage", "sales/daily", "--hints", user="mesh_bob", check=True).stdout
    assert "~ raw/events -> sales/daily 1.0.0  (hint: mesh_erin read it" in bob and "hr/secret" not in bob
    # downstream from the product read; upstream only does not list it
    down = diamond.ctl("lineage", "raw/events", "--downstream", "--hints", user="mesh_bob", check=True).stdout
    assert "~ raw/events -> sales/daily 1.0.0" in down
    up = diamond.ctl("lineage", "raw/events", "--upstream", "--hints", user="mesh_bob", check=True).stdout
    assert "hints (observed" in up and "sales/daily" not in up
    # the window is configurable: the reads were more than 2 s before the publish
    narrow = diamond.ctl("lineage", "sales/daily", "--hints", "--hint-window", "1s", user="mesh_gina",
                         check=True).stdout
    assert "before a publish): 0" in narrow and "~ " not in narrow
    doc = json.loads(diamond.ctl("lineage", "sales/daily", "--hints", "--json", user="mesh_gina",
                                 check=True).stdout)
    assert doc["hints"]["windowSeconds"] == 3600
    assert {(x["from"], x["to"], x["user"]) for x in doc["hints"]["hints"]} == {
        ("raw/events", "sales/daily", "mesh_erin"), ("hr/secret", "sales/daily", "mesh_erin")}
    assert all(x["leadSeconds"] >= 2 and not x["declared"] for x in doc["hints"]["hints"])
    dot = diamond.ctl("lineage", "sales/daily", "--hints", "--format", "dot", user="mesh_dave", check=True).stdout
    assert '"raw/events" -> "sales/daily" [style=dashed' in dot and dot.rstrip().endswith("}")
    assert diamond.ctl("lineage", "sales/daily", "--hints", "--hint-window", "soon").returncode == 2
