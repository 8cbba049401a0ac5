"""Self-serve publishing (issue 3): validation with actionable errors,
versioning and compatibility, lifecycle, bad input never installs."""
import json
import os
import re
import shutil
import subprocess
import time

import pytest

from conftest import DEMO, copy_release, make_release, run, wait_for


@pytest.fixture
def sales(store):
    store.create_domain("sales")
    return store


def release(scratch, name="sales-orders-1.0.0", **changes):
    return copy_release(DEMO / name, scratch / "work", **changes)


def versions(store, product="orders"):
    d = store.path / "domains/sales" / product
    return sorted(n for n in os.listdir(d) if not n.startswith(".")) if d.exists() else []


def test_validate_installs_nothing_and_reports_json(sales, scratch):
    rel = release(scratch)
    r = sales.ctl("validate", rel)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "valid (nothing installed)" in r.stdout
    assert versions(sales) == []
    r = sales.ctl("validate", rel, "--json")
    doc = json.loads(r.stdout)
    assert doc["passed"] is True
    rules = {x["rule"]: x for f in doc["files"] for x in f["rules"]}
    assert rules["primary_key:order_id"]["passed"]
    assert any(k.startswith("row_count") for k in rules)


def test_failed_rules_name_file_line_column_value(sales, scratch):
    rel = release(scratch)
    lines = (rel / "orders.csv").read_text().split("\n")
    lines[3] = lines[3].replace(",EUR,", ",USD,")
    lines[7] = lines[2]
    (rel / "orders.csv").write_text("\n".join(lines))
    r = sales.ctl("publish", rel)
    assert r.returncode == 1
    assert 'orders.csv:4 row 4 column currency value "USD": not one of the allowed values' in r.stdout
    assert "orders.csv:8 row 8 column order_id" in r.stdout and "duplicate value" in r.stdout
    assert "NOT published" in r.stdout
    assert versions(sales) == []
    doc = json.loads(sales.ctl("validate", rel, "--json").stdout)
    failed = [x for f in doc["files"] for x in f["rules"] if not x["passed"]]
    assert {x["kind"] for x in failed} >= {"allowed_values", "primary_key"}
    assert failed[0]["examples"][0]["line"] > 1


def test_quality_sidecar_in_mount(sales, scratch, mounter):
    sales.publish(release(scratch))
    m = mounter(sales)
    q = json.loads((m / "sales/orders/1.0.0/quality.json").read_text())
    assert q["passed"] is True and q["files"][0]["rows"] == 1000
    assert all(r["passed"] or not r["checked"] for r in q["files"][0]["rules"])


def test_breaking_change_needs_major(sales, scratch):
    sales.publish(release(scratch))
    # 1.1.0 adds an optional column: a minor change
    sales.publish(release(scratch, "sales-orders-1.1.0"))
    # rename a column under a minor bump: refused with the list of breaking changes
    rel = release(scratch, "sales-orders-1.1.0", version="1.2.0")
    text = (rel / "contract.yaml").read_text().replace("name: coupon", "name: voucher")
    (rel / "contract.yaml").write_text(text)
    csv = (rel / "orders.csv").read_text().replace(",coupon\n", ",voucher\n", 1)
    (rel / "orders.csv").write_text(csv)
    r = sales.ctl("publish", rel)
    assert r.returncode == 1
    assert "breaking change(s) since 1.1.0 need a new major version" in r.stdout
    assert "voucher: renamed from coupon BREAKING" in r.stdout
    assert versions(sales) == ["1.0.0", "1.1.0"]
    # the same change as 2.0.0 is fine
    rel2 = release(scratch, "sales-orders-1.1.0", version="2.0.0")
    (rel2 / "contract.yaml").write_text((rel2 / "contract.yaml").read_text().replace("name: coupon", "name: voucher"))
    (rel2 / "orders.csv").write_text(csv)
    sales.publish(rel2)
    out = sales.ctl("diff", "sales/orders", "1.1.0", "2.0.0", check=True).stdout
    assert "BREAKING" in out and "1 breaking" in out
    out = sales.ctl("diff", "sales/orders", "1.0.0", "1.1.0", check=True).stdout
    assert "coupon: column added (optional)" in out and "0 breaking" in out


def test_lifecycle_in_mount(sales, scratch, mounter):
    sales.publish(release(scratch))
    sales.publish(release(scratch, "sales-orders-1.1.0"))
    m = mounter(sales)
    assert os.readlink(m / "sales/orders/latest") == "1.1.0"
    sales.ctl("deprecate", "sales/orders", "1.1.0", "--sunset", "2027-03-01", "--reason", "use 2.x", check=True)
    assert wait_for(lambda: os.readlink(m / "sales/orders/latest") == "1.0.0", 3)
    assert wait_for(lambda: "status: deprecated" in (m / "sales/orders/1.1.0/contract.yaml").read_text(), 3)
    assert os.getxattr(m / "sales/orders/1.1.0", "user.mesh.status") == b"deprecated"
    assert (m / "sales/orders/1.1.0/orders.csv").read_text().startswith("order_id")   # still readable
    assert "deprecated" in sales.ctl("list", "sales/orders", check=True).stdout
    sales.ctl("retire", "sales/orders", "1.0.0", check=True)
    assert wait_for(lambda: sorted(os.listdir(m / "sales/orders")) == ["1.1.0", "README.md", "latest", "product.yaml"], 3)
    assert (sales.path / "domains/sales/orders/1.0.0/orders.csv").exists()   # files kept
    r = sales.ctl("deprecate", "sales/orders", "9.9.9")
    assert r.returncode == 1 and "no version 9.9.9" in r.stderr
    r = sales.ctl("deprecate", "sales/orders", "1.1.0", "--sunset", "someday")
    assert r.returncode == 2


BAD = {
    "malformed YAML": (lambda d: (d / "contract.yaml").write_text("apiVersion: v3.1.0\nkind: [\n"),
                       "contract.yaml:3:1: YAML syntax error"),
    "not ODCS": (lambda d: (d / "contract.yaml").write_text("name: x\nversion: 1.0.0\n"),
                 "apiVersion: required field missing"),
    "schema contradicts data": (lambda d: (d / "orders.csv").write_text(
        (d / "orders.csv").read_text().replace("order_id,", "id,", 1)), "header is \"id,customer_id"),
    "ragged rows": (lambda d: (d / "orders.csv").write_text((d / "orders.csv").read_text() + "1,2,3\n"),
                    "3 fields, the header has 10"),
    "invalid UTF-8": (lambda d: (d / "orders.csv").write_bytes((d / "orders.csv").read_bytes()
                                                               .replace(b"DE", b"D\xe9", 1)), "invalid UTF-8"),
    "0-byte file": (lambda d: (d / "orders.csv").write_text(""), "empty file"),
    "10 GB file": (lambda d: os.truncate(d / "orders.csv", 10 << 30), "more than the 4 GiB"),
    "symlink": (lambda d: os.symlink("/etc/passwd", d / "passwd.csv"), "a symbolic link"),
    "fifo": (lambda d: os.mkfifo(d / "pipe.csv"), "a device, fifo or socket"),
    "subdirectory": (lambda d: (d / "sub").mkdir(), "a directory"),
    "hidden file": (lambda d: (d / ".DS_Store").write_text("x"), "not an allowed file name"),
    "no contract": (lambda d: (d / "contract.yaml").unlink(), "contract.yaml: missing"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_clear_error_nothing_installed(sales, scratch, case):
    rel = release(scratch)
    make_bad, expected = BAD[case]
    make_bad(rel)
    r = sales.ctl("publish", rel)
    assert r.returncode in (1, 4), (case, r.returncode, r.stdout, r.stderr)
    assert expected in r.stdout + r.stderr, (case, r.stdout, r.stderr)
    assert versions(sales) == []
    assert not [n for n in os.listdir(sales.path / "domains/sales")
                if n not in ("domain.yaml", "grants") and (sales.path / "domains/sales" / n / "1.0.0").exists()]


def test_unreadable_release_dir(sales, scratch):
    rel = release(scratch)
    os.chmod(rel, 0o700)
    r = sales.ctl("publish", rel, user="mesh_bob")
    assert r.returncode != 0 and "Permission denied" in r.stderr
    assert versions(sales) == []


def test_publish_into_missing_domain(store, scratch):
    r = store.ctl("publish", release(scratch))
    assert r.returncode == 1
    assert "meshctl domain create sales" in r.stdout + r.stderr


def test_owners_publish_without_root(store, scratch, mounter):
    """An owner (member of the domain's group) publishes as an ordinary user
    (through the mesh service); anyone else is refused with the list of
    owners; only governance creates domains."""
    r = store.ctl("domain", "create", "sales", "--owner", "group:mesh_sales", user="mesh_bob")
    assert r.returncode == 3 and "not governance" in r.stderr
    store.ctl("domain", "create", "sales", "--owner", "group:mesh_sales", "--owner", "user:mesh_dave", check=True)
    st = os.stat(store.path / "domains/sales")
    assert st.st_uid == 0 and st.st_mode & 0o7777 == 0o700   # the store's owner's, like everything
    rel = release(scratch)
    os.chmod(scratch / "work", 0o755)
    subprocess.run(["chmod", "-R", "a+rX", str(scratch / "work")], check=True)
    # mesh_alice is not an owner
    r = store.ctl("publish", rel, user="mesh_alice")
    assert r.returncode == 3
    assert "mesh_alice is not an owner of domain sales" in r.stderr
    assert "group:mesh_sales, user:mesh_dave" in r.stderr
    # mesh_bob is in group mesh_sales: publishes without root
    r = store.ctl("publish", rel, user="mesh_bob")
    assert r.returncode == 0, r.stdout + r.stderr
    # through the mesh service: the files belong to the service, the
    # manifest names the publisher the kernel reported
    owner = os.stat(store.path / "domains/sales/orders/1.0.0/orders.csv")
    assert owner.st_uid == os.stat(store.path).st_uid
    manifest = json.loads((store.path / "domains/sales/orders/1.0.0/.manifest.json").read_text())
    assert manifest["publisher"]["name"] == "mesh_bob", manifest
    # the kernel enforces the boundary: alice cannot write into the domain at all
    r = run(["touch", store.path / "domains/sales/x"], user="mesh_alice")
    assert r.returncode != 0
    # erin (mesh_sales too) publishes the next version; deprecating needs ownership
    store.ctl("publish", release(scratch, "sales-orders-1.1.0"), user="mesh_erin", check=True)
    r = store.ctl("deprecate", "sales/orders", "1.0.0", user="mesh_alice")
    assert r.returncode == 3
    store.ctl("deprecate", "sales/orders", "1.0.0", user="mesh_bob", check=True)
    m = mounter(store)
    assert os.readlink(m / "sales/orders/latest") == "1.1.0"
    # owners manage owners
    store.ctl("domain", "owners", "sales", "--add", "user:mesh_carol", user="mesh_bob", check=True)
    assert "user:mesh_carol" in store.ctl("domain", "show", "sales", check=True).stdout
    assert store.ctl("domain", "owners", "sales", "--add", "user:mesh_alice", user="mesh_alice").returncode == 3


def test_governance_rules_named_with_their_source(store, scratch):
    store.create_domain("sales")
    domain_yaml = store.path / "domains/sales/domain.yaml"
    domain_yaml.write_text(domain_yaml.read_text() + "publish:\n  requiredFields: [tags]\n"
                           "  allowedClassifications: [public, internal, pii]\n")
    rel = release(scratch)
    text = (rel / "contract.yaml").read_text()
    text = text.replace("tags: [demo]\n", "").replace("name: customer_id\n", "name: CustomerID\n")
    text = text.replace("classification: internal\n        description: \"Order total\"",
                        "classification: secret\n        description: \"Order total\"")
    text = text.replace("name: customer_email\n        logicalType: string\n        required: true\n"
                        "        description: \"E-mail address of the customer\"\n        classification: pii",
                        "name: customer_email\n        logicalType: string\n        required: true\n"
                        "        description: \"E-mail address of the customer\"\n        classification: public")
    (rel / "contract.yaml").write_text(text)
    (rel / "orders.csv").write_text((rel / "orders.csv").read_text().replace("customer_id", "CustomerID", 1))
    r = store.ctl("publish", rel)
    assert r.returncode == 1
    out = r.stdout
    assert "requiredFields: tags is missing" in out and "domains/sales/domain.yaml" in out
    assert 'column "CustomerID" does not match' in out and "mesh.yaml" in out
    assert 'personal data (email address) but is classified public' in out
    assert versions(store) == []
    # malformed domain policy: refused, never a silent pass
    domain_yaml.write_text(domain_yaml.read_text() + "  bogusRule: 1\n")
    r = store.ctl("publish", release(scratch, version="1.0.0"))
    assert r.returncode in (1, 3) and "bogusRule" in r.stdout + r.stderr


def test_init_drafts_a_contract_from_data(store, scratch):
    store.create_domain("customer", "user:root")
    work = scratch / "draft"
    work.mkdir()
    shutil.copy(DEMO / "customer-profiles-2.0.0/profiles.csv", work / "profiles.csv")
    with open(work / "profiles.csv", "a") as f:
        f.write("C09999,Ann,Lee,ann@example.com,+49 30 1234567,1990-01-01,DE,2026-11-01T10:00:00Z,gold\n")
    r = store.ctl("init", work / "profiles.csv", "--domain", "customer", "--product", "profiles",
                  "--schema-json")
    assert r.returncode == 0, r.stderr
    assert "email" in r.stdout and "pii" in r.stdout
    text = (work / "contract.yaml").read_text()
    schema = json.loads((work / "schema.json").read_text())
    fields = {f["name"]: f for f in schema["fields"]}
    assert fields["email"]["classification"] == "pii" and fields["phone"]["classification"] == "pii"
    assert fields["birth_date"]["type"] == "date" and fields["signup_at"]["type"] == "datetime"
    assert fields["customer_id"]["constraints"]["unique"] is True
    assert fields["country"].get("classification") == "public"
    assert "ann@example.com" not in text                    # no personal data in examples
    # a second init does not overwrite
    assert store.ctl("init", work / "profiles.csv", "--domain", "customer", "--product", "profiles").returncode == 1
    # TODO placeholders are refused
    r = store.ctl("validate", work)
    assert r.returncode == 1 and "still a TODO placeholder" in r.stdout
    text = text.replace('"TODO: what this product is for"', "Customer master data") \
               .replace("TODO-owner", "mesh_bob").replace('"TODO: #customer-data"', '"#customer-data"')
    (work / "contract.yaml").write_text(text)
    os.unlink(work / "schema.json")
    r = store.ctl("publish", work)
    assert r.returncode == 0, r.stdout
    # JSON Lines, sampled
    jl = scratch / "jl"
    jl.mkdir()
    (jl / "events.jsonl").write_text("".join(
        json.dumps({"id": i, "ip": f"10.0.{i % 250}.{i % 200}", "ok": i % 2 == 0, "v": i / 3}) + "\n"
        for i in range(50)))
    r = store.ctl("init", jl / "events.jsonl", "--domain", "customer", "--product", "events")
    assert r.returncode == 0, r.stderr
    assert not (jl / "schema.json").exists()        # only on request: the mount derives it
    r = store.ctl("init", jl / "events.jsonl", "--domain", "customer", "--product", "events", "--force",
                  "--schema-json")
    assert r.returncode == 0, r.stderr
    schema = json.loads((jl / "schema.json").read_text())
    types = {f["name"]: f["type"] for f in schema["fields"]}
    assert types == {"id": "integer", "ip": "string", "ok": "boolean", "v": "number"}
    assert {f["name"]: f.get("classification") for f in schema["fields"]}["ip"] == "pii"
    assert store.ctl("init", scratch / "nope.csv", "--domain", "customer", "--product", "x").returncode == 1


def test_search_finds_products_by_description_and_column(store, scratch):
    for d in ("sales", "customer"):
        store.create_domain(d)
    store.publish(release(scratch))
    store.publish(release(scratch, "customer-profiles-2.0.0"))
    out = store.ctl("search", "web", "shop", check=True).stdout
    assert out.startswith("sales/orders 1.0.0")
    out = store.ctl("search", "birth_date", check=True).stdout
    assert "customer/profiles 2.0.0" in out and "sales/orders" not in out
    r = store.ctl("search", "nothing-like-this")
    assert r.returncode == 1 and r.stdout == ""
    # the index is a local cache: deleted or damaged, it is rebuilt from the files
    (index,) = (scratch / "state").glob("*/index.db")
    os.unlink(index)
    assert "customer/profiles" in store.ctl("search", "birth_date", check=True).stdout
    index.write_bytes(b"not a database" * 100)
    assert "customer/profiles" in store.ctl("search", "birth_date", check=True).stdout
    # a release published since the last search is found at once
    store.create_domain("hr")
    store.publish(make_release(scratch, "hr", "payroll", "1.0.0"))
    assert "hr/payroll 1.0.0" in store.ctl("search", "payroll", check=True).stdout
    # deprecated: shown as such; retired: gone
    store.ctl("deprecate", "hr/payroll", "1.0.0", check=True)
    assert "hr/payroll 1.0.0  deprecated" in store.ctl("search", "payroll", check=True).stdout
    store.ctl("retire", "hr/payroll", "1.0.0", check=True)
    assert store.ctl("search", "payroll").returncode == 1
    store.publish(make_release(scratch, "hr", "payroll", "2.0.0"))
    assert "hr/payroll 2.0.0" in store.ctl("search", "--limit", "1", "payroll", check=True).stdout


def test_threads_give_the_same_report(sales, scratch):
    """A CSV big enough for several chunks a thread, with failures, CRLF,
    quoted newlines (a chunk may start inside one) and duplicate keys far
    apart: --threads 1, 2 and 3 give the same report, line for line."""
    rel = release(scratch)
    path = rel / "orders.csv"
    lines = path.read_text().split("\n")
    header, rows = lines[0], [line for line in lines[1:] if line]
    out, size, n, seen, dups = [header], len(header), 0, set(), 0
    while size < 12 << 20:
        for row in rows:
            n += 1
            f = row.split(",")
            f[0] = str(200000 + (n // 2 if n % 997 == 0 else n))   # every 997th may repeat an earlier id
            dups += f[0] in seen
            seen.add(f[0])
            if n % 1009 == 0:
                f[6] = "USD"
            if n % 1013 == 0:
                f[4] = "two"
            if n % 7 == 0:
                f[1] = f'"{f[1]}\r\n\n"'   # quoted line ends inside a field
            out.append(",".join(f))
            size += len(out[-1]) + 2
    path.write_bytes(("\r\n".join(out) + "\r\n").encode())
    reports = {}
    for threads in ("1", "2", "3"):
        r = sales.ctl("validate", rel, "--json", "--threads", threads)
        assert r.returncode == 1, r.stdout + r.stderr
        # the freshness note gives an age in seconds: the runs are a second apart
        reports[threads] = json.loads(re.sub(r", \d+ s old", ", N s old", r.stdout))["files"]
    assert reports["1"] == reports["2"] == reports["3"]
    rules = {x["rule"]: x for f in reports["1"] for x in f["rules"]}
    pk = rules["primary_key:order_id"]
    assert pk["failures"] == dups and dups > 20 and len(pk["examples"]) == 20
    assert [e["row"] for e in pk["examples"]] == sorted(e["row"] for e in pk["examples"])
    assert rules["type:quantity"]["failures"] == n // 1013
    assert reports["1"][0]["rows"] == n
    r = sales.ctl("validate", rel, "--threads", "0")
    assert r.returncode != 0 and "--threads" in r.stderr
