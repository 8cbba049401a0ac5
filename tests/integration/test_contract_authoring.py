"""Writing contracts (issue 10): what `meshctl init` drafts reads back as
written (libyaml's emitter, RFC 4122 ids), errors cite the real place and
suggest the closest name, and relationships and SQL rules are checked or
listed as not checked."""
import csv
import re
import json
import uuid

import pytest
import yaml

from conftest import DEMO, copy_release

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
