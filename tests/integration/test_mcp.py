"""meshctl mcp (issue 11) driven by the official MCP TypeScript SDK client
(@modelcontextprotocol/sdk, installed with npm into a temporary directory):
tools listed and called as different users; a masked user's sample has no
clear pii, a denied user's read fails with a clear error, restricted products
do not exist for those who may not read them, reads are recorded as "mcp"."""
import json
import pathlib
import shutil
import subprocess

import pytest

from conftest import MESHCTL, SCRATCH_ROOT, as_user, make_release, run

HERE = pathlib.Path(__file__).resolve().parent
ORDERS = ("order_id,email,amount\n1,alice.smith@example.com,10.50\n2,bob@example.org,3.00\n"
          "3,carol@example.net,7.25\n")
SDK_DIR = SCRATCH_ROOT / "mcp-sdk"


@pytest.fixture(scope="session")
def sdk():
    if not shutil.which("node") or not shutil.which("npm"):
        pytest.skip("node and npm are needed (tests/install-deps.sh installs them)")
    if not (SDK_DIR / "node_modules/@modelcontextprotocol/sdk").exists():
        SDK_DIR.mkdir(parents=True, exist_ok=True)
        r = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(SDK_DIR),
                            "@modelcontextprotocol/sdk"], capture_output=True, text=True, timeout=600)
        if r.returncode:
            pytest.skip(f"npm install @modelcontextprotocol/sdk failed (offline?): {r.stderr[-500:]}")
    shutil.copy(HERE / "mcp_client.mjs", SDK_DIR / "mcp_client.mjs")
    return SDK_DIR / "mcp_client.mjs"


@pytest.fixture
def mesh(store, scratch):
    store.create_domain("sales", "group:mesh_sales")
    store.create_domain("hr", "user:mesh_erin")
    rel = scratch / "rel"
    store.publish(make_release(rel, "sales", "orders", "1.0.0", {"orders.csv": ORDERS},
                               columns={"orders.csv": [("order_id", "integer", None), ("email", "string", "pii"),
                                                       ("amount", "number", None)]}))
    store.publish(make_release(rel, "sales", "daily", "1.0.0",
                               extra="customProperties:\n  - property: meshInputs\n    value: [sales/orders]\n"))
    store.publish(make_release(rel, "hr", "salaries", "1.0.0",
                               extra="customProperties:\n  - property: meshRestricted\n    value: true\n"))
    store.ctl("grant", "sales/orders", "group:mesh_analysts", check=True)
    store.ctl("reindex", check=True)
    return store


def mcp(sdk, store, mount, user, calls, read=()):
    plan = {"command": "setpriv", "args": as_user(user)[1:] + [str(MESHCTL), "--store", str(store.path), "mcp",
                                                                "--mount", str(mount.path)],
            "calls": calls, "read": list(read)}
    r = subprocess.run(["node", str(sdk), json.dumps(plan)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


ALL_CALLS = [
    {"name": "search_products", "arguments": {"query": "orders"}},
    {"name": "describe_product", "arguments": {"product": "sales/orders"}},
    {"name": "read_sample", "arguments": {"product": "sales/orders", "rows": 2}},
    {"name": "lineage", "arguments": {"product": "sales/orders", "direction": "downstream"}},
    {"name": "product_usage", "arguments": {"product": "sales/orders"}},
    {"name": "request_access", "arguments": {"product": "sales/orders", "reason": "churn study"}},
]


def by_name(out):
    return {r["name"]: r for r in out["results"]}


def test_masked_user_every_tool(sdk, mesh, mounter):
    m = mounter(mesh)
    out = mcp(sdk, mesh, m, "mesh_alice", ALL_CALLS, read=["mesh://sales/orders", "mesh://hr/salaries"])
    assert out["server"]["name"] == "meshfs"
    assert set(out["tools"]) == {"search_products", "describe_product", "read_sample", "request_access",
                                 "lineage", "product_usage"}
    assert "mesh://sales/orders" in out["resources"] and "mesh://hr/salaries" not in out["resources"]
    assert out["reads"][0]["text"].startswith("# orders") and "error" in out["reads"][1]
    r = by_name(out)
    assert not r["search_products"]["isError"]
    assert [h["product"] for h in r["search_products"]["structured"]["results"]][0] == "sales/orders"
    d = r["describe_product"]
    assert not d["isError"] and "| email | string | pii" in d["text"] and "apiVersion:" in d["text"]
    # the card says what alice sees, as the mount's does for her
    assert "| email | string | pii (masked for you: null) |" in d["text"]
    assert "| orders.csv | a masked view: email null |" in d["text"] and "clear for you" not in d["text"]
    assert d["structured"]["access"]["decision"] == "mask"
    assert out["reads"][0]["text"].count("masked for you: null") == 1
    assert "schema.json of 1.0.0" in d["text"]
    s = r["read_sample"]
    assert not s["isError"]
    assert "alice.smith@example.com" not in s["text"] and "bob@example.org" not in s["text"]
    assert "\n1,,10.50\n" in s["text"]        # the email masked: a missing value in the reader's view
    assert "carol@example.net" not in s["text"] and s["text"].count("\n") == 4   # intro, header, 2 rows
    assert not r["lineage"]["isError"] and "sales/daily" in r["lineage"]["text"]
    assert r["product_usage"]["isError"] and "for the owners" in r["product_usage"]["text"]
    assert not r["request_access"]["isError"]
    # the sample was read through the mount: recorded for alice as program mcp
    m.stop()
    rep = json.loads(mesh.ctl("usage", "sales/orders", "--by", "consumer", "--format", "json", check=True).stdout)
    assert {(row["user"], row["program"]) for row in rep["rows"]} >= {("mesh_alice", "mcp")}
    assert "churn study" in mesh.ctl("requests", check=True).stdout


def test_clear_owner_and_denied_user(sdk, mesh, mounter):
    m = mounter(mesh)
    owner = by_name(mcp(sdk, mesh, m, "mesh_bob", ALL_CALLS[2:5]))
    assert "alice.smith@example.com" in owner["read_sample"]["text"]          # owners read clear
    assert not owner["product_usage"]["isError"]
    dave = mcp(sdk, mesh, m, "mesh_dave", [
        {"name": "read_sample", "arguments": {"product": "sales/orders"}},
        {"name": "describe_product", "arguments": {"product": "hr/salaries"}},
        {"name": "search_products", "arguments": {"query": "salaries"}},
        {"name": "no_such_tool", "arguments": {}},
        {"name": "describe_product", "arguments": {"product": "sales/daily"}},
    ])
    r = by_name(dave)
    daily = [x for x in dave["results"] if x["name"] == "describe_product"][-1]
    assert "You may not read the data of `sales/daily`" in daily["text"]
    assert 'meshctl request sales/daily --reason' in daily["text"]
    assert r["read_sample"]["isError"]
    assert "access denied" in r["read_sample"]["text"] and "request_access" in r["read_sample"]["text"]
    salaries = [x for x in dave["results"] if x["name"] == "describe_product"][0]
    assert salaries["isError"] and "no such product" in salaries["text"]
    assert "hr/salaries" not in r["search_products"]["text"]
    assert "protocolError" in r["no_such_tool"] and "unknown tool" in r["no_such_tool"]["protocolError"]
    erin = by_name(mcp(sdk, mesh, m, "mesh_erin", [{"name": "describe_product",
                                                    "arguments": {"product": "hr/salaries"}}]))
    assert not erin["describe_product"]["isError"]


def test_raw_protocol_errors(mesh):
    lines = "\n".join([
        "not json",
        json.dumps({"jsonrpc": "2.0", "id": 1, "method": "nope"}),
        json.dumps([{"jsonrpc": "2.0", "id": 2, "method": "ping"}]),
        json.dumps({"jsonrpc": "2.0", "id": 3, "method": "ping"}),
        json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    ]) + "\n"
    r = subprocess.run([str(MESHCTL), "--store", str(mesh.path), "mcp"], input=lines, capture_output=True,
                       text=True, timeout=30)
    replies = [json.loads(l) for l in r.stdout.splitlines()]
    assert [x.get("error", {}).get("code") for x in replies] == [-32700, -32601, -32600, None]
    assert replies[3] == {"jsonrpc": "2.0", "id": 3, "result": {}}
