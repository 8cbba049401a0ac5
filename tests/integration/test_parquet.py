"""Parquet as a first-class format (issue 10): footer integrity, schema,
row count, null counts, statistics and value rules on decoded pages, every
rule that cannot run listed as not checked.  The corpus is written by our
own generator (tests/tools/parquet_gen.c) through the same Thrift layer."""
import json
import struct

import pytest

from conftest import BUILD, DEMO, copy_release, run

GEN = BUILD / "tools" / "parquet_gen"
ORDERS_TYPES = "int64,string,string,string,int32,double,string,string,string,timestamp"


@pytest.fixture
def sales(store):
    store.create_domain("sales")
    return store


def parquet_release(scratch, csv_text=None, types=ORDERS_TYPES, opts=(), contract_edit=None, name="rel"):
    """The demo's sales/orders 1.0.0 with orders.parquet instead of orders.csv."""
    rel = copy_release(DEMO / "sales-orders-1.0.0", scratch / name)
    csv = rel / "orders.csv"
    if csv_text is not None:
        csv.write_text(csv_text)
    r = run([GEN, *opts, csv, rel / "orders.parquet", types])
    assert r.returncode == 0, r.stderr
    csv.unlink()
    text = (rel / "contract.yaml").read_text().replace("physicalName: orders.csv", "physicalName: orders.parquet")
    if contract_edit:
        text = contract_edit(text)
    (rel / "contract.yaml").write_text(text)
    return rel


def demo_csv():
    return (DEMO / "sales-orders-1.0.0" / "orders.csv").read_text()


def report(store, rel):
    r = store.ctl("validate", rel, "--json")
    doc = json.loads(r.stdout)
    files = [f for f in doc.get("files", []) if f["file"] == "orders.parquet"]
    return r, doc, (files[0] if files else None)


def rules_of(f):
    return {x["rule"].split(" (line")[0]: x for x in f["rules"]}


@pytest.mark.parametrize("opts", [(), ("--dict",), ("--codec", "snappy", "--dict"), ("--codec", "gzip"),
                                  ("--codec", "zstd", "--v2", "--dict"), ("--codec", "snappy", "--v2"),
                                  ("--codec", "gzip", "--rows", "300", "--dict")])
def test_valid_parquet_every_codec(sales, scratch, opts):
    rel = parquet_release(scratch, opts=opts)
    r, doc, f = report(sales, rel)
    assert r.returncode == 0, r.stdout
    assert doc["passed"] and f["format"] == "parquet" and f["content_checked"]
    assert f["rows"] == 1000
    rules = rules_of(f)
    # value-level rules ran on decoded values, not skipped
    assert rules["allowed_values:status"]["checked"] and rules["allowed_values:status"]["passed"]
    assert rules["primary_key:order_id"]["checked"] and rules["unique:order_id"]["checked"]
    assert "newest 2026-" in rules["freshness:ordered_at"]["note"]
    assert all(x["checked"] for x in f["rules"])


def test_value_rules_fail_on_decoded_dictionary_pages(sales, scratch):
    lines = demo_csv().split("\n")
    lines[3] = lines[3].replace(",EUR,", ",USD,")
    parts = lines[10].split(",")
    parts[8] = "lost"
    lines[10] = ",".join(parts)
    lines[20] = lines[2]                          # duplicate order_id
    rel = parquet_release(scratch, "\n".join(lines), opts=("--dict", "--codec", "zstd"))
    r, doc, f = report(sales, rel)
    assert r.returncode == 1 and not doc["passed"]
    rules = rules_of(f)
    cur = rules["allowed_values:currency"]
    assert not cur["passed"] and cur["failures"] == 1
    assert cur["examples"][0]["row"] == 3 and cur["examples"][0]["value"] == "USD"
    assert rules["allowed_values:status"]["examples"][0]["value"] == "lost"
    assert not rules["primary_key:order_id"]["passed"]
    text = sales.ctl("validate", rel).stdout
    assert 'orders.parquet row 3 column currency value "USD": not one of the allowed values' in text


def test_pattern_rule_on_dictionary_encoded_column(sales, scratch):
    def edit(text):
        return text.replace('        description: "Product SKU"\n',
                            '        description: "Product SKU"\n        quality:\n'
                            '          - metric: invalidValues\n'
                            "            arguments: {pattern: 'SKU-\\d{4}'}\n            mustBe: 0\n")
    rel = parquet_release(scratch, opts=("--dict",), contract_edit=edit)
    r, doc, f = report(sales, rel)
    assert r.returncode == 0, r.stdout
    assert rules_of(f)["pattern:sku"]["checked"]
    lines = demo_csv().split("\n")
    parts = lines[5].split(",")
    parts[3] = "SKU-12X"
    lines[5] = ",".join(parts)
    rel = parquet_release(scratch, "\n".join(lines), opts=("--dict", "--v2"), contract_edit=edit, name="rel2")
    r, doc, f = report(sales, rel)
    assert r.returncode == 1
    p = rules_of(f)["pattern:sku"]
    assert p["failures"] == 1 and p["examples"][0]["value"] == "SKU-12X" and p["examples"][0]["row"] == 5


def test_wrong_columns(sales, scratch):
    text = "\n".join(",".join(line.split(",")[:9]) for line in demo_csv().split("\n"))
    rel = parquet_release(scratch, text, types=ORDERS_TYPES.rsplit(",", 1)[0])
    r, doc, f = report(sales, rel)
    assert r.returncode == 1
    cols = rules_of(f)["columns"]
    assert not cols["passed"] and "ordered_at" in cols["examples"][0]["message"]


def test_wrong_types(sales, scratch):
    rel = parquet_release(scratch, types=ORDERS_TYPES.replace("int32", "string").rsplit(",", 1)[0] + ",string")
    r, doc, f = report(sales, rel)
    assert r.returncode == 1
    rules = rules_of(f)
    assert "BYTE_ARRAY" in rules["type:quantity"]["examples"][0]["message"]
    assert "contract says integer" in rules["type:quantity"]["examples"][0]["message"]
    assert not rules["type:ordered_at"]["passed"]
    assert rules["type:amount"]["passed"]


def test_nulls_in_required_column(sales, scratch):
    lines = demo_csv().split("\n")
    for i in (4, 9):
        parts = lines[i].split(",")
        parts[2] = ""
        lines[i] = ",".join(parts)
    types = ORDERS_TYPES.replace("int64,string,string,", "int64,string,string?,", 1)
    # from the null counts in the footer (no value rule on the column) ...
    rel = parquet_release(scratch, "\n".join(lines), types=types)
    r, doc, f = report(sales, rel)
    assert r.returncode == 1
    req = rules_of(f)["required:customer_email"]
    assert not req["passed"] and req["failures"] == 2
    # ... and from decoded definition levels when statistics are absent
    rel = parquet_release(scratch, "\n".join(lines), types=types, opts=("--no-stats", "--codec", "snappy"),
                          name="rel2")
    r, doc, f = report(sales, rel)
    req = rules_of(f)["required:customer_email"]
    assert not req["passed"] and req["failures"] == 2 and req["examples"][0]["row"] == 4


def test_row_count_rule(sales, scratch):
    text = "\n".join(demo_csv().split("\n")[:51]) + "\n"
    rel = parquet_release(scratch, text)
    r, doc, f = report(sales, rel)
    assert r.returncode == 1 and f["rows"] == 50
    rc = rules_of(f)["row_count"]
    assert not rc["passed"] and "50 rows" in rc["examples"][0]["message"]


def test_min_max_from_statistics(sales, scratch):
    def edit(lo, hi):
        return lambda text: text.replace('        description: "Items ordered"\n',
                                         '        description: "Items ordered"\n'
                                         f'        logicalTypeOptions: {{minimum: {lo}, maximum: {hi}}}\n')
    rel = parquet_release(scratch, contract_edit=edit(1, 100))
    r, doc, f = report(sales, rel)
    assert r.returncode == 0, r.stdout
    rules = rules_of(f)
    assert rules["maximum:quantity"]["passed"] and "statistics" in rules["maximum:quantity"]["note"]
    rel = parquet_release(scratch, contract_edit=edit(2, 3), name="rel2")
    r, doc, f = report(sales, rel)
    assert r.returncode == 1
    rules = rules_of(f)
    assert not rules["maximum:quantity"]["passed"] and not rules["minimum:quantity"]["passed"]
    assert rules["maximum:quantity"]["examples"][0]["value"] == "4"


def test_truncated_footer_and_text_named_parquet(sales, scratch):
    rel = parquet_release(scratch)
    data = (rel / "orders.parquet").read_bytes()
    (rel / "orders.parquet").write_bytes(data[:len(data) // 2])
    r = sales.ctl("validate", rel)
    assert r.returncode == 1
    assert "orders.parquet" in r.stdout and "truncated Parquet file" in r.stdout
    # a footer cut inside, with a consistent length and magic
    n = struct.unpack("<I", data[-8:-4])[0]
    footer = data[-8 - n:-8][: n // 2]
    (rel / "orders.parquet").write_bytes(data[:-8 - n] + footer + struct.pack("<I", len(footer)) + b"PAR1")
    r = sales.ctl("validate", rel)
    assert r.returncode == 1 and "corrupt Parquet footer" in r.stdout
    (rel / "orders.parquet").write_text("order_id,amount\n1,2\n")
    r = sales.ctl("publish", rel)
    assert r.returncode == 1
    assert "orders.parquet" in r.stdout and "not a Parquet file" in r.stdout
    _, doc, f = report(sales, rel)
    assert f["rows"] == 0 and not doc["passed"]


def test_unsupported_codec_lists_rules_not_checked(sales, scratch):
    # the generator writes LZ4_RAW in the metadata without compressing:
    # meshfs cannot decode it and must say which rules it did not run
    rel = parquet_release(scratch, opts=("--codec", "lz4"))
    r, doc, f = report(sales, rel)
    rules = rules_of(f)
    av = rules["allowed_values:status"]
    assert av["checked"] is False and "LZ4_RAW" in av["note"]
    assert rules["primary_key:order_id"]["checked"] is False
    # null counts and statistics still judge what they can
    assert rules["required:order_id"]["checked"] and rules["required:order_id"]["passed"]
    assert rules["freshness:ordered_at"]["checked"]
    text = sales.ctl("validate", rel).stdout
    assert "not checked" in text


def test_personal_data_rule_looks_inside_parquet(sales, scratch):
    def edit(text):
        return text.replace('description: "E-mail address of the customer"\n        classification: pii',
                            'description: "E-mail address of the customer"\n        classification: public')
    rel = parquet_release(scratch, opts=("--dict", "--codec", "snappy"), contract_edit=edit)
    r = sales.ctl("publish", rel)
    assert r.returncode == 1
    assert 'personal data (email address) but is classified public' in r.stdout


def test_publish_quality_json_has_real_rows(sales, scratch, mounter):
    rel = parquet_release(scratch, opts=("--codec", "zstd"))
    sales.publish(rel)
    m = mounter(sales)
    q = json.loads((m / "sales/orders/1.0.0/quality.json").read_text())
    f = q["files"][0]
    assert f["format"] == "parquet" and f["rows"] == 1000 and q["passed"] is True
    assert (m / "sales/orders/1.0.0/orders.parquet").read_bytes()[:4] == b"PAR1"


ODCS_SCHEMA = DEMO.parents[2].parent / "shared" / "examples" / "odcs" / "odcs-json-schema-v3.1.0.json"


def odcs_errors(contract_path):
    import jsonschema
    import yaml
    schema = json.loads(ODCS_SCHEMA.read_text())
    doc = yaml.safe_load(contract_path.read_text())
    return [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(doc)]


def test_init_drafts_a_contract_from_the_footer(store, scratch):
    rel = parquet_release(scratch, types=ORDERS_TYPES.replace("string,string,string,int32", "string,string?,string,int32"),
                          opts=("--dict", "--codec", "snappy"))
    work = scratch / "draft"
    work.mkdir()
    (work / "orders.parquet").write_bytes((rel / "orders.parquet").read_bytes())
    r = store.ctl("init", work / "orders.parquet", "--domain", "sales", "--product", "orders")
    assert r.returncode == 0, r.stderr
    assert not (work / "schema.json").exists()          # derived by the mount, not shipped
    text = (work / "contract.yaml").read_text()
    import yaml
    props = {p["name"]: p for p in yaml.safe_load(text)["schema"][0]["properties"]}
    assert props["order_id"]["logicalType"] == "integer" and props["order_id"]["required"]
    assert props["amount"]["logicalType"] == "number"
    assert props["ordered_at"]["logicalType"] == "timestamp"
    # optional in the schema, but the null counts say no row is null
    assert props["customer_email"]["required"] is True
    assert props["customer_email"]["classification"] == "pii"   # from decoded values
    assert "930.96" in props["amount"]["examples"]
    assert yaml.safe_load(text)["schema"][0]["physicalName"] == "orders.parquet"
    # --schema-json still writes one on request
    r = store.ctl("init", work / "orders.parquet", "--domain", "sales", "--product", "orders", "--force",
                  "--schema-json")
    assert r.returncode == 0 and (work / "schema.json").exists()


@pytest.mark.skipif(not ODCS_SCHEMA.exists(), reason="shared ODCS examples not present")
def test_official_odcs_schema_accepts_what_init_writes(store, scratch):
    rel = parquet_release(scratch)
    work = scratch / "draft"
    work.mkdir()
    (work / "orders.parquet").write_bytes((rel / "orders.parquet").read_bytes())
    (work / "orders.csv").write_text(demo_csv())
    (work / "events.jsonl").write_text('{"id": 1, "at": "2026-11-20T10:00:00Z", "tags": ["a"]}\n'
                                       '{"id": 2, "at": "2026-11-21T10:00:00Z", "email": "x@example.com"}\n')
    for data in ("orders.parquet", "orders.csv", "events.jsonl"):
        out = work / data.replace(".", "-")
        out.mkdir()
        r = store.ctl("init", work / data, "--domain", "sales", "--product", "orders", "--out", out)
        assert r.returncode == 0, r.stderr
        assert odcs_errors(out / "contract.yaml") == [], data
