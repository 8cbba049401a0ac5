"""ODCS checks that run at publish (issue 10): a shipped schema.json must
agree with the contract; logicalTypeOptions and percentage metrics are
judged, not turned into warnings."""
import json

import pytest

from conftest import DEMO, copy_release


@pytest.fixture
def sales(store):
    store.create_domain("sales")
    return store


def test_shipped_schema_json_must_agree_with_the_contract(sales, scratch):
    rel = copy_release(DEMO / "sales-orders-1.0.0", scratch / "a")
    draft = scratch / "draft"
    draft.mkdir()
    r = sales.ctl("init", rel / "orders.csv", "--domain", "sales", "--product", "orders", "--out", draft,
                  "--schema-json")
    assert r.returncode == 0, r.stderr
    # the schema derived from this release's own contract agrees
    r = sales.ctl("validate", rel)
    assert r.returncode == 0
    shipped = json.loads((draft / "schema.json").read_text())
    # a schema.json made for another contract disagrees: a made-up field and a wrong type
    shipped["fields"].append({"name": "loyalty_tier", "type": "string"})
    for f in shipped["fields"]:
        if f["name"] == "quantity":
            f["type"] = "string"
    (rel / "schema.json").write_text(json.dumps(shipped))
    r = sales.ctl("publish", rel)
    assert r.returncode == 1, r.stdout
    assert "schema.json disagrees with the contract" in r.stdout
    assert "loyalty_tier" in r.stdout and "quantity" in r.stdout
    assert "NOT published" in r.stdout
    # the derived one, shipped as is, is accepted
    (rel / "schema.json").unlink()
    assert sales.ctl("publish", rel).returncode == 0


def test_percent_metric_is_judged_not_a_warning(sales, scratch):
    rel = copy_release(DEMO / "sales-orders-1.0.0", scratch / "b")
    text = (rel / "contract.yaml").read_text().replace(
        "            arguments: {validValues: [EUR]}\n            mustBe: 0\n",
        "            arguments: {validValues: [EUR]}\n            mustBeLessOrEqualTo: 1\n            unit: percent\n")
    (rel / "contract.yaml").write_text(text)
    lines = (rel / "orders.csv").read_text().split("\n")
    for i in range(1, 6):                      # 5 of 1000 rows: 0.5%, allowed
        lines[i] = lines[i].replace(",EUR,", ",USD,")
    (rel / "orders.csv").write_text("\n".join(lines))
    doc = json.loads(sales.ctl("validate", rel, "--json").stdout)
    rule = [x for f in doc["files"] for x in f["rules"] if x["rule"].startswith("allowed_values:currency")][0]
    assert rule["passed"] and rule["severity"] == "error" and "0.50%" in rule["note"]
    for i in range(6, 30):                     # 29 rows: 2.9%, refused
        lines[i] = lines[i].replace(",EUR,", ",USD,")
    (rel / "orders.csv").write_text("\n".join(lines))
    r = sales.ctl("publish", rel)
    assert r.returncode == 1 and "allowed_values:currency" in r.stdout


def test_logical_type_options_refuse_at_publish(sales, scratch):
    rel = copy_release(DEMO / "sales-orders-1.0.0", scratch / "c")
    text = (rel / "contract.yaml").read_text().replace(
        '        description: "Product SKU"\n',
        '        description: "Product SKU"\n        logicalTypeOptions: {pattern: \'^SKU-\\d{4}$\', maxLength: 8}\n')
    (rel / "contract.yaml").write_text(text)
    assert sales.ctl("validate", rel).returncode == 0
    lines = (rel / "orders.csv").read_text().split("\n")
    parts = lines[7].split(",")
    parts[3] = "SKU-00781"
    lines[7] = ",".join(parts)
    (rel / "orders.csv").write_text("\n".join(lines))
    r = sales.ctl("publish", rel)
    assert r.returncode == 1
    assert 'orders.csv:8 row 8 column sku value "SKU-00781": does not match the pattern' in r.stdout
    assert "longer than maxLength 8" in r.stdout
