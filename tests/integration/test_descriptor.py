"""Product descriptors (issue 11): product.yaml (ODPS v1.x) published with a
release or derived from the contracts, served in the mount with one output
port per published version, validated with file:line errors; meshctl show."""
import json

import pytest
import yaml

from conftest import make_release, run, wait_for

DESCRIPTOR = """\
apiVersion: v1.0.0
kind: DataProduct
id: 5b7d1a36-8d1c-4a43-9a4e-6f2c6c3f0b11
name: Orders
status: active
domain: sales
description:
  purpose: Every order placed in the web shop
tags: [orders, revenue]
team:
  - username: mesh_bob
    role: owner
support:
  - channel: "#sales-data"
    url: https://chat.example.com/sales-data
inputPorts:
  - name: crm/customers
    version: "^1"
    contractId: 3c5a0c55-1b1c-4d3e-8a53-0f8c2c1d2e01
outputPorts:
  - name: stale-port-the-publisher-wrote
    version: 0.0.1
"""


@pytest.fixture
def mesh(store, scratch):
    store.create_domain("sales", "group:mesh_sales")
    store.create_domain("crm", "group:mesh_sales")
    store.create_domain("hr", "user:mesh_erin")
    rel = scratch / "rel"
    store.publish(make_release(rel, "crm", "customers", "1.0.0"))
    store.publish(make_release(rel, "sales", "orders", "1.0.0",
                               extra=SLA))
    store.publish(make_release(rel, "hr", "secret", "1.0.0",
                               extra="customProperties:\n  - property: meshRestricted\n    value: true\n"))
    return store


SLA = "slaProperties:\n  - property: freshness\n    value: 1\n    unit: d\n"


def ship(store, scratch, version, text, extra=""):
    d = make_release(scratch / "rel-desc", "sales", "orders", version, extra=extra)
    (d / "product.yaml").write_text(text)
    return store.publish(d, check=False)


def test_derived_descriptor_served_in_mount(mesh, mounter):
    m = mounter(mesh)
    text = run(["cat", m / "sales/orders/product.yaml"], user="mesh_dave", check=True).stdout
    doc = yaml.safe_load(text)
    assert doc["apiVersion"] == "v1.1.0" and doc["kind"] == "DataProduct" and doc["domain"] == "sales"
    assert doc["description"]["purpose"] == "Test product orders of domain sales"
    assert doc["team"]["members"] == [{"username": "mesh_bob", "role": "owner"}]
    assert [(p["version"], p["customProperties"][0]["value"]) for p in doc["outputPorts"]] == [("1.0.0", "active")]
    manifest = json.loads((mesh.path / "domains/sales/orders/1.0.0/.manifest.json").read_text())
    assert doc["outputPorts"][0]["contractId"] == manifest["contract_id"]
    # stable id: the same product gets the same UUID in every rendering
    assert doc["id"] == yaml.safe_load((mesh.path / "domains/sales/orders/.descriptor.yaml").read_text())["id"]
    assert "product.yaml" in run(["ls", m / "sales/orders"], user="mesh_dave", check=True).stdout.split()
    # a restricted product's descriptor is as hidden as the product
    assert run(["cat", m / "hr/secret/product.yaml"], user="mesh_dave").returncode != 0
    assert run(["cat", m / "hr/secret/product.yaml"], user="mesh_erin").returncode == 0


def test_shipped_descriptor_kept_and_ports_follow_versions(mesh, scratch, mounter):
    r = ship(mesh, scratch, "1.1.0", DESCRIPTOR)
    assert r.returncode == 0, r.stdout
    assert "ok     descriptor" in r.stdout and "ODPS v1.0.0" in r.stdout
    m = mounter(mesh)
    path = m / "sales/orders/product.yaml"
    doc = yaml.safe_load(run(["cat", path], user="mesh_alice", check=True).stdout)
    assert doc["id"] == "5b7d1a36-8d1c-4a43-9a4e-6f2c6c3f0b11" and doc["tags"] == ["orders", "revenue"]
    assert [p["version"] for p in doc["outputPorts"]] == ["1.0.0", "1.1.0"]     # the publisher's port is gone
    # the release keeps its copy too
    assert run(["cat", m / "sales/orders/1.1.0/product.yaml"], user="mesh_alice", check=True).stdout == DESCRIPTOR
    # a later release without one keeps the product's descriptor; a deprecation shows in the ports
    mesh.publish(make_release(scratch / "rel3", "sales", "orders", "1.2.0"))
    mesh.ctl("deprecate", "sales/orders", "1.0.0", "--reason", "use 1.2", check=True)

    def ports():
        d = yaml.safe_load(run(["cat", path], user="mesh_alice", check=True).stdout)
        return [(p["version"], p.get("deprecated", False)) for p in d["outputPorts"]]
    assert wait_for(lambda: ports() == [("1.0.0", True), ("1.1.0", False), ("1.2.0", False)], timeout=10), ports()
    # declared input ports are lineage
    out = mesh.ctl("lineage", "sales/orders", "--upstream", check=True).stdout
    assert "<- crm/customers @^1 = 1.0.0" in out


@pytest.mark.parametrize("text,expected", [
    ("apiVersion: v1.0.0\nkind: DataProduct\nid: x\n", "product.yaml:1:1: status: missing (required by ODPS v1.0.0)"),
    ("apiVersion: v2.0.0\nkind: DataProduct\nid: x\nstatus: active\n", "product.yaml:1:13: apiVersion: \"v2.0.0\""),
    ("apiVersion: v1.0.0\nkind: DataContract\nid: x\nstatus: active\n", "product.yaml:2:7: kind: expected DataProduct"),
    ("apiVersion: v1.0.0\nkind: DataProduct\nid: x\nstatus: active\nowner: bob\n",
     "product.yaml:5:1: owner: not a field of an ODPS product"),
    ("apiVersion: v1.0.0\nkind: DataProduct\nid: x\nstatus: active\ntags: orders\n",
     "product.yaml:5:7: tags: expected a list of strings"),
    ("apiVersion: v1.0.0\nkind: DataProduct\nid: x\nstatus: active\ninputPorts:\n  - name: a/b\n",
     "product.yaml:6:5: inputPorts[0].version: missing"),
    ("apiVersion: v1.0.0\nkind: DataProduct\nid: x\nstatus: active\nsupport:\n  - channel: x\n    url: [1]\n",
     "product.yaml:7:10: support[0].url: expected a string"),
    ("apiVersion: v1.1.0\nkind: DataProduct\nid: x\nproductCreatedTs: yesterday\n",
     "product.yaml:4:19: productCreatedTs: expected a date-time"),
    ("apiVersion: v1.1.0\nkind: DataProduct\nid: x\ndomain: crm\n", "but the release's contract is of domain sales"),
    ("apiVersion: v1.1.0\nkind: DataProduct\nid: x\ndeprecated: maybe\n", "product.yaml:4:13: deprecated: expected true or false"),
    ("- just\n- a list\n", "product.yaml:1:1: expected an ODPS product descriptor"),
    ("{apiVersion: v1.0.0, kind: DataProduct, id: x, status: active}\n", "write the descriptor in block style"),
])
def test_invalid_descriptors_refused_with_line(mesh, scratch, text, expected):
    r = ship(mesh, scratch, "1.1.0", text)
    assert r.returncode == 1, r.stdout
    assert "FAIL   descriptor" in r.stdout and expected in r.stdout, r.stdout
    assert "NOT published" in r.stdout


def test_valid_v110_minimal_and_every_problem_listed(mesh, scratch):
    r = ship(mesh, scratch, "1.1.0", "apiVersion: v1.1.0\nkind: DataProduct\nid: p1\n"
             "team:\n  name: Sales\n  members:\n    - username: mesh_bob\n      role: owner\n"
             "inputPorts:\n  - name: crm/customers\n")
    assert r.returncode == 0, r.stdout
    r = ship(mesh, scratch, "1.2.0", "apiVersion: v1.0.0\nkind: DataProduct\nid: x\nstatus: active\n"
             "tags: x\nsupport: {}\nfoo: 1\n")
    assert r.returncode == 1
    assert "tags: expected a list" in r.stdout and "support: expected a list" in r.stdout and "foo: not a field" in r.stdout


def test_show(mesh, scratch, mounter):
    ship(mesh, scratch, "1.1.0", DESCRIPTOR, extra=SLA)
    mesh.ctl("deprecate", "sales/orders", "1.0.0", "--sunset", "2027-01-31", "--reason", "moved to 1.1", check=True)
    mesh.ctl("grant", "sales/orders", "group:mesh_analysts", check=True)
    m = mounter(mesh)
    run(["cat", m / "sales/orders/1.1.0/orders.csv"], user="mesh_alice", check=True)
    m.stop()
    out = mesh.ctl("show", "sales/orders", user="mesh_dave", check=True).stdout
    lines = out.splitlines()
    assert lines[0].startswith("sales/orders  orders")
    assert "status     active (latest 1.1.0)" in out
    assert "owners     user:mesh_bob, group:mesh_sales" in out
    assert "SLA        freshness 1d" in out
    assert "consumers  1 in the last 30 days" in out
    assert "inputs     crm/customers@^1 = 1.0.0" in out
    assert "descriptor product.yaml (published with a release)" in out
    assert "quality    1.1.0: " in out
    after = lines[lines.index("versions") + 1:]
    v = [l.split()[0] for l in after[:after.index("")]]
    assert v == ["1.0.0", "1.1.0"]
    assert "## What you see" in out and "You may not read the data of `sales/orders`" in out   # dave: no grant
    assert "sunset 2027-01-31  (moved to 1.1)" in out
    doc = json.loads(mesh.ctl("show", "sales/orders", "--json", user="mesh_dave", check=True).stdout)
    assert doc["versions"][0]["status"] == "deprecated" and doc["versions"][1]["latest"] is True
    assert doc["consumers30d"] == 1 and doc["quality"]["checks"] > 0
    # restricted: invisible to dave, visible to its owner
    r = mesh.ctl("show", "hr/secret", user="mesh_dave")
    assert r.returncode == 1 and "no such product" in r.stderr
    assert "(restricted)" in mesh.ctl("show", "hr/secret", user="mesh_erin", check=True).stdout
    assert mesh.ctl("show", "sales").returncode == 2


def test_retired_versions_listed_by_show_and_reindex_rewrites(mesh, scratch):
    mesh.publish(make_release(scratch / "r", "sales", "orders", "1.1.0"))
    mesh.ctl("retire", "sales/orders", "1.0.0", check=True)
    out = mesh.ctl("show", "sales/orders", check=True).stdout
    assert "1.0.0        retired" in out
    served = mesh.path / "domains/sales/orders/.descriptor.yaml"
    served.unlink()
    mesh.ctl("reindex", check=True)
    doc = yaml.safe_load(served.read_text())
    assert [p["version"] for p in doc["outputPorts"]] == ["1.1.0"]
