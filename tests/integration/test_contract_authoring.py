"""Writing contracts (issue 10): what `meshctl init` drafts reads back as
written (libyaml's emitter, RFC 4122 ids), errors cite the real place and
suggest the closest name, and relationships and SQL rules are checked or
listed as not checked."""
import csv
import json
import uuid

import pytest
import yaml

from conftest import DEMO

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
