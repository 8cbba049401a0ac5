"""meshctl catalog --html (issue 11): a static, offline site checked in
headless Chromium (playwright-core from npm, /usr/bin/chromium): no console
errors, the search box filters the list, a product page shows its columns,
versions and lineage picture; only what the caller may discover."""
import os
import json
import shutil
import subprocess

import pytest

from conftest import SCRATCH_ROOT, make_release

SDK_DIR = SCRATCH_ROOT / "mcp-sdk"     # shared with test_mcp: one npm directory per machine


@pytest.fixture(scope="session")
def browser_script():
    import pathlib
    if not shutil.which("node") or not shutil.which("npm") or not shutil.which("chromium"):
        pytest.skip("node, npm and chromium are needed (tests/install-deps.sh installs them)")
    if not (SDK_DIR / "node_modules/playwright-core").exists():
        SDK_DIR.mkdir(parents=True, exist_ok=True)
        r = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(SDK_DIR),
                            "playwright-core"], capture_output=True, text=True, timeout=600)
        if r.returncode:
            pytest.skip(f"npm install playwright-core failed (offline?): {r.stderr[-500:]}")
    here = pathlib.Path(__file__).resolve().parent
    shutil.copy(here / "catalog_browser.mjs", SDK_DIR / "catalog_browser.mjs")
    return SDK_DIR / "catalog_browser.mjs"


@pytest.fixture
def mesh(store, scratch):
    store.create_domain("sales", "group:mesh_sales")
    store.create_domain("hr", "user:mesh_erin")
    rel = scratch / "rel"
    cols = {"orders.csv": [("order_id", "integer", None), ("email", "string", "pii"), ("amount", "number", None)]}
    store.publish(make_release(rel, "sales", "orders", "1.0.0", columns=cols))
    store.publish(make_release(rel, "sales", "orders", "1.1.0", columns=cols))
    store.publish(make_release(rel, "sales", "daily", "1.0.0",
                               extra="customProperties:\n  - property: meshInputs\n    value: [sales/orders@^1]\n"))
    store.publish(make_release(rel, "hr", "salaries", "1.0.0",
                               extra="customProperties:\n  - property: meshRestricted\n    value: true\n"))
    store.ctl("deprecate", "sales/orders", "1.0.0", "--reason", "use 1.1", check=True)
    return store


def test_site_in_headless_chromium(mesh, scratch, browser_script):
    site = scratch / "site"
    site.mkdir()
    site.chmod(0o777)
    r = mesh.ctl("catalog", "--html", site, user="mesh_dave", check=True)
    assert "2 product page(s)" in r.stdout, r.stdout
    # written by the caller, not by the service: the service never creates
    # files where a caller names a path
    import pwd
    assert pwd.getpwuid((site / "index.html").stat().st_uid).pw_name == "mesh_dave"
    r = mesh.ctl("catalog", "--html", "/etc/meshfs-should-not-exist", user="mesh_dave")
    assert r.returncode != 0 and not os.path.exists("/etc/meshfs-should-not-exist")
    assert not (site / "products/hr.salaries.html").exists()          # restricted: not for dave
    assert "salaries" not in (site / "index.html").read_text()
    shots = scratch / "shots"
    shots.mkdir()
    out = subprocess.run(["node", str(browser_script), str(site), "orders", "sales.orders.html", str(shots)],
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    rep = json.loads(out.stdout)
    assert rep["errors"] == []
    assert rep["count_before"] == 2 and rep["count_after"] == 1
    assert rep["visible"] == ["sales/orders"]
    assert rep["title"].startswith("orders")
    assert rep["columns"] == ["order_id", "email", "amount"]
    assert rep["versions"] == ["1.0.0", "1.1.0 (latest)"]
    if shutil.which("dot"):
        assert rep["lineage_svg"] == 1 and "sales/daily" in rep["lineage_text"]
    else:
        assert "Graphviz" in rep["lineage_text"]
    assert (shots / "index.png").stat().st_size > 1000 and (shots / "product.png").stat().st_size > 1000
    shutil.copy(shots / "product.png", SCRATCH_ROOT / "catalog-product-last.png")
    shutil.copy(shots / "index.png", SCRATCH_ROOT / "catalog-index-last.png")


def test_search_box_filters(mesh, scratch, browser_script):
    site = scratch / "site2"
    mesh.ctl("catalog", "--html", site, check=True)                   # root: governance sees all
    assert (site / "products/hr.salaries.html").exists()
    shots = scratch / "shots2"
    shots.mkdir()
    out = subprocess.run(["node", str(browser_script), str(site), "orders pii", "sales.daily.html", str(shots)],
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    rep = json.loads(out.stdout)
    assert rep["errors"] == []
    assert rep["count_before"] == 3 and rep["visible"] == ["sales/orders"], rep
    assert rep["counter"] == "1 of 3 products"
