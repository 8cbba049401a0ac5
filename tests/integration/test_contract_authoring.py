"""Writing contracts (issue 10): what `meshctl init` drafts reads back as
written (libyaml's emitter, RFC 4122 ids), errors cite the real place and
suggest the closest name, and relationships and SQL rules are checked or
listed as not checked."""
import csv
import json
import os
import re
import subprocess
import uuid

import pytest
import yaml

from conftest import BUILD, DEMO, copy_release, make_release, run

ODCS_SCHEMA = DEMO.parents[2].parent / "shared" / "examples" / "odcs" / "odcs-json-schema-v3.1.0.json"

# names YAML written by hand gets wrong: a comment sign, a mapping
# indicator, a leading dash, YAML 1.1 booleans and nulls, unicode, a line
# break, a quote, a flow indicator, digits
TRICKY = ["orders #2", "key: value", "-lead", "yes", "no", "null", "~", "ünïcødé 名前", "multi\nline",
          "it's", "[x]", "1.5", "@at", "% pct", "tab\tbed"]


def fill_todos(path):
    doc = yaml.safe_load(path.read_text())
    doc["description"] = {"purpose": "Orders", "usage": "Joins", "limitations": "None"}
    doc["team"]["members"][0]["username"] = "root"
    doc["support"][0]["channel"] = "#sales-data"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))


def test_init_writes_yaml_that_reads_back_as_written(store, scratch):
    store.create_domain("sales", "user:root")
    work = scratch / "tricky"
    work.mkdir()
    data = work / "orders #2.csv"
    with open(data, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(TRICKY)
        w.writerow([f"v{i}" for i in range(len(TRICKY))])
        w.writerow(["yes", "no: x", "- y", "null", "#", "~", "é", "a\nb", "'", "{", "2", "@", "%", "\t", "z"])
    r = store.ctl("init", data, "--domain", "sales", "--product", "orders")
    assert r.returncode == 0, r.stderr
    text = (work / "contract.yaml").read_text()
    doc = yaml.safe_load(text)
    obj = doc["schema"][0]
    assert obj["physicalName"] == "orders #2.csv" and obj["name"] == "orders #2"
    assert [p["name"] for p in obj["properties"]] == TRICKY
    examples = {p["name"]: p.get("examples") for p in obj["properties"]}
    assert examples["key: value"] == ["v1", "no: x"] and examples["yes"] == ["v3", "null"]
    assert examples["ünïcødé 名前"] == ["v7", "a\nb"] and examples["-lead"] == ["v2", "- y"]
    assert examples["multi\nline"] == ["v8", "'"] and examples["it's"] == ["v9", "{"]
    # an RFC 4122 version 5 UUID of the release's identity (the same on every draft)
    ident = uuid.UUID(doc["id"])
    assert ident.version == 5 and ident.variant == uuid.RFC_4122
    assert ident == uuid.uuid5(uuid.NAMESPACE_URL, "meshfs://sales/orders/1.0.0")
    assert isinstance(doc["version"], str) and doc["version"] == "1.0.0"
    # meshfs's own reader agrees: the data validates, header against contract
    # (the mesh's columnNames rule refuses such names, which is its job)
    fill_todos(work / "contract.yaml")
    r = store.ctl("validate", work)
    assert "ok     data orders #2.csv: 2 rows" in r.stdout, r.stdout
    lines = r.stdout.splitlines()
    assert [line for line in lines if line.startswith("FAIL")] == ["FAIL   governance:"], r.stdout
    refused = [line for line in lines if "contract.yaml:" in line]
    assert refused and all("columnNames" in line for line in refused), r.stdout
    # the header's line break is shown escaped, not printed raw to the terminal
    r = store.ctl("init", data, "--domain", "sales", "--product", "orders", "--version", "1.1.0",
                  "--out", scratch)
    assert r.returncode == 0 and "multi\\nline" in r.stdout
    assert uuid.UUID(yaml.safe_load((scratch / "contract.yaml").read_text())["id"]) == \
        uuid.uuid5(uuid.NAMESPACE_URL, "meshfs://sales/orders/1.1.0")


def test_init_jsonl_keys_and_a_name_that_is_not_utf8(store, scratch):
    work = scratch / "jl"
    work.mkdir()
    keys = ["yes", "a: b", "- c", "Ω"]
    (work / "ev.jsonl").write_text("".join(json.dumps({k: f"{k}{i}" for k in keys}) + "\n" for i in range(3)))
    r = store.ctl("init", work / "ev.jsonl", "--domain", "sales", "--product", "ev")
    assert r.returncode == 0, r.stderr
    doc = yaml.safe_load((work / "contract.yaml").read_text())
    assert [p["name"] for p in doc["schema"][0]["properties"]] == keys
    # a CSV header in Latin-1: refused with the column named, no broken YAML written
    bad = scratch / "latin"
    bad.mkdir()
    (bad / "x.csv").write_bytes(b"id,caf\xe9\n1,2\n")
    r = store.ctl("init", bad / "x.csv", "--domain", "sales", "--product", "x")
    assert r.returncode != 0 and not (bad / "contract.yaml").exists()
    assert "x.csv:1:7" in r.stderr and "UTF-8" in r.stderr


@pytest.mark.skipif(not ODCS_SCHEMA.exists(), reason="shared ODCS examples not present")
def test_official_odcs_schema_accepts_tricky_names(store, scratch):
    import jsonschema
    work = scratch / "odcs"
    work.mkdir()
    with open(work / "orders #2.csv", "w", newline="") as f:
        csv.writer(f).writerows([TRICKY, ["1"] * len(TRICKY)])
    r = store.ctl("init", work / "orders #2.csv", "--domain", "sales", "--product", "orders")
    assert r.returncode == 0, r.stderr
    schema = json.loads(ODCS_SCHEMA.read_text())
    doc = yaml.safe_load((work / "contract.yaml").read_text())
    assert [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(doc)] == []


# ---- citations with the real line and column, and closest-name hints ----

def position(text, needle, nth=0):
    """1-based line and column where the nth `needle` starts in text."""
    at = -1
    for _ in range(nth + 1):
        at = text.index(needle, at + 1)
    line = text.count("\n", 0, at) + 1
    return line, at - (text.rfind("\n", 0, at) + 1) + 1


def demo_release(scratch, name="rel"):
    return copy_release(DEMO / "sales-orders-1.0.0", scratch / name)


@pytest.mark.parametrize("typo, fix, context", [
    ("        required: true\n", "        requried: true\n", "required"),
    ("description:\n  purpose:", "descripton:\n  purpose:", "description"),
    ("        mustBeGreaterThan: 100\n", "        mustBeGreatherThan: 100\n", "mustBeGreaterThan"),
    ("    physicalName: orders.csv\n", "    physicalNmae: orders.csv\n", "physicalName"),
    ("  - channel: \"#sales-data\"\n    tool: slack\n", "  - channel: \"#sales-data\"\n    tol: slack\n", "tool"),
])
def test_unknown_field_cites_its_place_and_the_closest_name(store, scratch, typo, fix, context):
    store.create_domain("sales", "user:root")
    rel = demo_release(scratch)
    text = (rel / "contract.yaml").read_text().replace(typo, fix, 1)
    (rel / "contract.yaml").write_text(text)
    bad = fix.split("\n")[1 if fix.startswith("  - ") else 0].strip().split(":")[0]
    line, col = position(text, bad + ":")
    r = store.ctl("validate", rel)
    assert r.returncode == 1
    assert f"unknown field '{bad}' at {rel}/contract.yaml:{line}:{col}" in r.stdout, r.stdout
    assert f"did you mean '{context}'?" in r.stdout, r.stdout
    assert store.ctl("publish", rel).returncode == 1


def test_unknown_field_without_a_close_name_points_at_custom_properties(store, scratch):
    store.create_domain("sales", "user:root")
    rel = demo_release(scratch)
    text = (rel / "contract.yaml").read_text().replace("tags: [demo]\n", "tags: [demo]\nteamSlackWorkspace: x\n")
    (rel / "contract.yaml").write_text(text)
    r = store.ctl("validate", rel)
    line, col = position(text, "teamSlackWorkspace")
    assert f"unknown field 'teamSlackWorkspace' at {rel}/contract.yaml:{line}:{col}" in r.stdout
    assert "did you mean" not in r.stdout and "customProperties" in r.stdout
    # the same key as a customProperties entry is fine
    text = text.replace("teamSlackWorkspace: x\n", "customProperties:\n  - property: teamSlackWorkspace\n"
                        "    value: x\n")
    (rel / "contract.yaml").write_text(text)
    assert store.ctl("validate", rel).returncode == 0


def test_mesh_rules_cite_the_line_and_column_of_both_sides(store, scratch):
    store.create_domain("sales", "user:root")
    mesh = store.path / "mesh.yaml"
    mesh_text = mesh.read_text()
    rel = demo_release(scratch)
    text = (rel / "contract.yaml").read_text()
    text = text.replace('purpose: "Orders placed in the web shop, for finance and demand planning"',
                        'purpose: "TODO: say why"')
    text = text.replace("name: customer_id\n", "name: CustomerID\n")
    text = text.replace("description: \"Order total\"\n        classification: internal",
                        "description: \"Order total\"\n        classification: internall")
    text = text.replace("E-mail address of the customer\"\n        classification: pii",
                        "E-mail address of the customer\"\n        classification: public")
    (rel / "contract.yaml").write_text(text)
    (rel / "orders.csv").write_text((rel / "orders.csv").read_text().replace("customer_id", "CustomerID", 1))
    r = store.ctl("validate", rel)
    assert r.returncode == 1
    out = r.stdout
    c = f"{rel}/contract.yaml"

    def rule_at(key):
        line, col = position(mesh_text, "  " + key + ":")
        return f"(rule defined in mesh.yaml:{line}:{col + 2})"
    line, col = position(text, '"TODO: say why"')
    assert f"{c}:{line}:{col}: requiredFields: description.purpose is missing or still a TODO placeholder " \
           f"{rule_at('requiredFields')}" in out, out
    line, col = position(text, "CustomerID")
    assert f'{c}:{line}:{col}: columnNames: column "CustomerID" does not match' in out
    assert rule_at("columnNames") in out
    line, col = position(text, "internall")
    assert f'{c}:{line}:{col}: allowedClassifications: column "amount" is classified "internall", not one ' \
           f"of the allowed classifications; did you mean 'internal'? {rule_at('allowedClassifications')}" in out
    line, col = position(text, "public", nth=text[:text.index("E-mail address")].count("public"))
    assert f'{c}:{line}:{col}: classifyPersonalData: column "customer_email"' in out
    assert rule_at("classifyPersonalData") in out
    # no citation of the publish: section's first line for every rule any more
    assert len(set(re.findall(r"rule defined in (mesh\.yaml:\d+:\d+)", out))) == 4


def test_domain_rule_citations_and_hints_for_policy_typos(store, scratch):
    store.create_domain("sales", "user:root")
    domain_yaml = store.path / "domains/sales/domain.yaml"
    base = domain_yaml.read_text()
    domain_yaml.write_text(base + "publish:\n  requiredFields: [tags, description.usage]\n")
    rel = demo_release(scratch)
    text = (rel / "contract.yaml").read_text().replace("tags: [demo]\n", "")
    (rel / "contract.yaml").write_text(text)
    r = store.ctl("validate", rel)
    dtext = domain_yaml.read_text()
    line, col = position(dtext, "requiredFields")
    assert f"{rel}/contract.yaml:1:1: requiredFields: tags is missing" in r.stdout, r.stdout
    assert f"(rule defined in domains/sales/domain.yaml:{line}:{col})" in r.stdout
    # a misspelt rule and a misspelt field name: refused, with the fix
    domain_yaml.write_text(base + "publish:\n  requiredFields: [tags, descripton.usage]\n  columNames: '^x'\n")
    r = store.ctl("validate", rel)
    assert r.returncode != 0
    out = r.stdout + r.stderr
    line, col = position(domain_yaml.read_text(), "columNames")
    assert f"domain.yaml:{line}:{col}: publish.columNames: unknown rule; did you mean 'columnNames'?" in out, out
    domain_yaml.write_text(base + "publish:\n  requiredFields: [tags, descripton.usage]\n")
    r = store.ctl("validate", rel)
    out = r.stdout + r.stderr
    line, col = position(domain_yaml.read_text(), "descripton.usage")
    assert f"domain.yaml:{line}:{col}: publish.requiredFields: \"descripton.usage\"" in out, out
    assert "did you mean 'description.usage'?" in out


def test_misspelt_header_column_names_the_contract_column(store, scratch):
    store.create_domain("sales", "user:root")
    rel = demo_release(scratch)
    csv_text = (rel / "orders.csv").read_text()
    (rel / "orders.csv").write_text(csv_text.replace("quantity", "quantiy", 1).replace("customer_id", "CustomerID", 1))
    r = store.ctl("validate", rel)
    assert r.returncode == 1
    assert "'quantiy' is not a contract column, did you mean 'quantity'?" in r.stdout
    assert "'CustomerID' is not a contract column, did you mean 'customer_id'?" in r.stdout
    # data rules cite their place in the contract too
    (rel / "orders.csv").write_text(csv_text.replace(",EUR,", ",USD,", 1))
    r = store.ctl("validate", rel)
    line, col = position((rel / "contract.yaml").read_text(), "metric: invalidValues")
    assert f"allowed_values:currency (line {line}, column {col}): FAILED" in r.stdout, r.stdout


# ---- ODCS relationships (foreign keys) and SQL quality rules ----

SHOP = """\
apiVersion: v3.1.0
kind: DataContract
id: 3b0d2f7e-0000-5000-8000-000000000001
name: shop
version: {version}
status: active
domain: sales
dataProduct: shop
description:
  purpose: Orders and customers
  usage: Tests
  limitations: None
team:
  members:
    - username: mesh_bob
      role: owner
support:
  - channel: "#sales"
schema:
  - name: customers
    physicalName: customers.{ext}
    properties:
      - name: id
        logicalType: string
        classification: public
      - name: country
        logicalType: string
        classification: public
  - name: orders
    physicalName: orders.csv
    relationships:
      - type: foreignKey
        from: [orders.customer_id, orders.country]
        to: [customers.id, customers.country]
{object_extra}    properties:
      - name: order_id
        logicalType: integer
        classification: public
      - name: customer_id
        logicalType: string
        classification: public
        relationships:
          - to: {target}
      - name: country
        logicalType: string
        classification: public
"""

CUSTOMERS = "id,country\nc1,DE\nc2,FR\n"


def shop(scratch, orders, version="1.0.0", target="customers.id", object_extra="", parquet=False, name="shop"):
    rel = scratch / name
    rel.mkdir()
    (rel / "contract.yaml").write_text(SHOP.format(version=version, target=target, object_extra=object_extra,
                                                   ext="parquet" if parquet else "csv"))
    (rel / "orders.csv").write_text(orders)
    (rel / "customers.csv").write_text(CUSTOMERS)
    if parquet:
        r = run([BUILD / "tools" / "parquet_gen", rel / "customers.csv", rel / "customers.parquet", "string,string"])
        assert r.returncode == 0, r.stderr
        (rel / "customers.csv").unlink()
    subprocess.run(["chmod", "-R", "a+rX", str(rel)], check=True)
    return rel


def relationships_check(doc):
    return [c for c in doc["checks"] if c["check"] == "relationships"][0]


@pytest.mark.parametrize("parquet", [False, True])
def test_foreign_keys_are_checked_in_the_release(store, scratch, parquet):
    store.create_domain("sales", "user:mesh_bob", "user:root")
    good = shop(scratch, "order_id,customer_id,country\n1,c1,DE\n2,c2,FR\n3,,DE\n", parquet=parquet)
    r = store.ctl("validate", good)
    assert r.returncode == 0, r.stdout
    assert "orders.customer_id -> customers.id: 2 references, all found" in r.stdout
    assert "(orders.customer_id, orders.country) -> (customers.id, customers.country): 2 references" in r.stdout
    bad = shop(scratch, "order_id,customer_id,country\n1,c1,DE\n2,c2,DE\n3,c9,FR\n", parquet=parquet, name="bad")
    r = store.ctl("validate", "--json", bad)
    assert r.returncode == 1
    check = relationships_check(json.loads(r.stdout))         # in quality.json too
    assert check["passed"] is False
    assert "orders.customer_id -> customers.id: 1 of 3 references have no target" in check["detail"]
    assert "orders.csv row 4: c9 not found in customers." in check["detail"]
    assert "2 of 3 references have no target" in check["detail"]         # (c2, DE) and (c9, FR)
    assert "orders.csv row 3: c2,DE not found" in check["detail"]
    assert store.ctl("publish", bad).returncode == 1


def test_relationship_references_must_exist(store, scratch):
    store.create_domain("sales", "user:mesh_bob", "user:root")
    rel = shop(scratch, "order_id,customer_id,country\n1,c1,DE\n", target="customers.ident")
    r = store.ctl("validate", rel)
    text = (rel / "contract.yaml").read_text()
    line, col = position(text, "- to: customers.ident")
    assert r.returncode == 1
    assert (f"{rel}/contract.yaml:{line}:{col + 2}: relationship orders.customer_id -> customers.ident: to schema "
            "object customers has no property ident") in r.stdout, r.stdout
    # malformed relationships are contract errors with their place
    bad = text.replace("          - to: customers.ident", "          - to: customers.id\n            from: orders.x")
    (rel / "contract.yaml").write_text(bad)
    r = store.ctl("validate", rel)
    assert "a property's relationship has no `from`" in r.stdout, r.stdout
    bad = text.replace("to: [customers.id, customers.country]", "to: [customers.id]")
    (rel / "contract.yaml").write_text(bad)
    r = store.ctl("validate", rel)
    line, col = position(bad, "- type: foreignKey")
    assert f"contract.yaml:{line}:{col + 2}:" in r.stdout and "lists of the same length (2 and 1)" in r.stdout
    bad = text.replace("to: [customers.id, customers.country]", "to: [customers, customers.country]")
    (rel / "contract.yaml").write_text(bad)
    assert 'customers": expected OBJECT.PROPERTY' in store.ctl("validate", rel).stdout


def test_relationships_to_another_product_as_the_caller_may_see_it(store, scratch):
    store.create_domain("sales", "user:mesh_bob", "user:root")
    store.create_domain("customer", "user:mesh_erin")
    secret = "customProperties:\n  - property: meshRestricted\n    value: true\n"
    store.publish(make_release(scratch / "c", "customer", "profiles", "1.0.0", {"profiles.csv": "id,tier\nc1,gold\n"}))
    store.publish(make_release(scratch / "c", "customer", "hidden", "1.0.0", {"hidden.csv": "id,tier\nc1,gold\n"},
                               extra=secret))
    orders = "order_id,customer_id,country\n1,c1,DE\n"
    target = "customer/profiles/contract.yaml#/schema/profiles/properties/id"
    rel = shop(scratch, orders, target=target)
    r = store.ctl("validate", rel, user="mesh_bob")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "customer/profiles:profiles.id: references found; integrity not checked" in r.stdout
    # a version that does not exist, a property that does not
    for bad, why in (("customer/profiles/9.9.9/contract.yaml#/schema/profiles/properties/id",
                      "no published release customer/profiles/9.9.9"),
                     ("customer/profiles/contract.yaml#/schema/profiles/properties/tierx",
                      "schema object profiles of customer/profiles has no property tierx")):
        r = store.ctl("validate", shop(scratch, orders, target=bad, name=f"s{len(why)}"), user="mesh_bob")
        assert r.returncode == 1 and why in r.stdout, r.stdout
    # a restricted product mesh_bob may not see reads as absent, to him; root sees it
    hidden = shop(scratch, orders, target="customer/hidden/contract.yaml#/schema/hidden/properties/id", name="h")
    r = store.ctl("validate", hidden, user="mesh_bob")
    assert r.returncode == 1 and "no published release customer/hidden (latest) in the mesh" in r.stdout
    assert store.ctl("validate", hidden).returncode == 0


SQL_RULES = """\
    quality:
      - type: sql
        query: SELECT count(*) FROM ${object} WHERE customer_id IS NULL
        mustBe: 0
      - type: sql
        query: "SELECT count(*) FROM {object} WHERE order_id > 100"
        mustBeLessThan: 2
      - type: sql
        query: SELECT max(order_id) FROM orders
        mustBeBetween: [1, 1000]
      - type: sql
        query: SELECT count(*) FROM orders QUALIFY row_number() OVER () = 1
        mustBe: 0
      - type: sql
        query: ATTACH DATABASE '/tmp/meshfs-sql-attack.db' AS x
        mustBe: 0
      - type: sql
        query: SELECT 1; DELETE FROM orders
        mustBe: 1
"""


def sql_results(store, rel, *opts):
    r = store.ctl("validate", "--json", *opts, rel)
    doc = json.loads(r.stdout)
    orders = [f for f in doc["files"] if f["file"] == "orders.csv"][0]
    return r, [x for x in orders["rules"] if x["kind"] == "sql"]


def test_sql_rules_run_in_sqlite_under_a_cap(store, scratch):
    store.create_domain("sales", "user:mesh_bob", "user:root")
    orders = "order_id,customer_id,country\n1,c1,DE\n2,c2,FR\n101,c1,DE\n102,c2,FR\n"
    rel = shop(scratch, orders, object_extra=SQL_RULES)
    r, rules = sql_results(store, rel)
    assert len(rules) == 6
    assert r.returncode == 1
    nulls, big, top, qualify, attach, two = rules
    assert nulls["checked"] and nulls["passed"] and nulls["note"] == "query returned 0"
    assert big["checked"] and not big["passed"] and big["note"] == "query returned 2"
    assert "the query returned 2" in big["examples"][0]["message"]
    assert top["checked"] and top["passed"] and top["note"] == "query returned 102"
    # outside what SQLite runs, or what a quality query may do: not checked, never passed silently
    assert not qualify["checked"] and "syntax error" in qualify["note"]
    assert not attach["checked"] and "not authorized" in attach["note"]
    assert not os.path.exists("/tmp/meshfs-sql-attack.db")
    assert not two["checked"] and "one statement only" in two["note"]
    # the cap: 0 runs none, a file over the cap is listed
    r, rules = sql_results(store, rel, "--sql-max-mib", "0")
    assert all(not x["checked"] and "turned off (--sql-max-mib 0)" in x["note"] for x in rules)
    (rel / "orders.csv").write_text("order_id,customer_id,country\n" + "".join(
        f"{i},c1,DE\n" for i in range(1, 150000)))
    r, rules = sql_results(store, rel, "--sql-max-mib", "1")
    assert all(not x["checked"] and "more than the 1.0 MiB" in x["note"] for x in rules), rules
    r, rules = sql_results(store, rel, "--sql-max-mib", "8")
    assert rules[1]["checked"] and rules[1]["note"] == "query returned 149899"
    # the human report says which rules were not run, and why
    r = store.ctl("validate", "--sql-max-mib", "1", rel)
    assert "sql rule not run: orders.csv is 1.8 MiB, more than the 1.0 MiB" in r.stdout, r.stdout


def test_require_inputs_cites_its_own_line(store, scratch):
    store.create_domain("sales", "user:root")
    domain_yaml = store.path / "domains/sales/domain.yaml"
    domain_yaml.write_text(domain_yaml.read_text() + "publish:\n  requiredFields: [tags]\n  requireInputs: true\n")
    rel = demo_release(scratch)
    text = (rel / "contract.yaml").read_text().replace(
        "tags: [demo]\n", "tags: [demo]\ncustomProperties:\n  - property: meshInputs\n    value: [crm/nothing]\n")
    (rel / "contract.yaml").write_text(text)
    r = store.ctl("validate", rel)
    line, col = position(domain_yaml.read_text(), "requireInputs")
    assert r.returncode == 1
    assert f"requireInputs, defined in domains/sales/domain.yaml:{line}:{col})" in r.stdout, r.stdout
