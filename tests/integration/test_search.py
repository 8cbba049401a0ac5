"""Search (issue 11): relevance on a mesh of 50+ products (expected top hits
for ten queries: names, descriptions, column names and descriptions, tags,
owners), filters, usage as the tie-breaker, and visibility per user."""
import json

import pytest

from conftest import make_release, run

# (domain, product, purpose, tags, columns [(name, type, classification, description)])
SPECIAL = [
    ("sales", "orders", "Every order placed in the web shop", ["revenue"],
     [("order_id", "integer", None, "Order number"), ("email", "string", "pii", "Buyer email address"),
      ("amount", "number", None, "Order total in EUR")]),
    ("sales", "refunds", "Money paid back to customers after a return", ["revenue"],
     [("refund_id", "integer", None, "Refund number"), ("amount", "number", None, "Refunded amount")]),
    ("crm", "churn", "Customers predicted to leave next quarter", ["ml"],
     [("customer_id", "integer", None, "Customer"), ("churn_probability", "number", None,
                                                       "Likelihood the customer cancels")]),
    ("crm", "customers", "Master data of every customer", ["master"],
     [("customer_id", "integer", None, "Customer"), ("iban", "string", "pii", "Bank account for direct debit")]),
    ("logistics", "shipments", "Parcels handed to carriers", ["ops"],
     [("parcel_id", "string", None, "Tracking number"), ("carrier", "string", None, "DHL, UPS or GLS")]),
    ("logistics", "warehouses", "Warehouse locations and capacity", ["ops"],
     [("warehouse_id", "string", None, "Site code"), ("latitude", "number", None, "Geographic latitude")]),
    ("finance", "invoices", "Invoices sent to business customers", ["revenue", "tax"],
     [("invoice_id", "string", None, "Invoice number"), ("vat_rate", "number", None, "Value added tax rate")]),
    ("marketing", "campaigns", "Email and display campaigns with budget", ["ads"],
     [("campaign_id", "string", None, "Campaign"), ("budget", "number", None, "Planned spend")]),
    ("hr", "payroll", "Monthly salaries of employees", ["people"],
     [("employee_id", "integer", None, "Employee"), ("salary", "number", "confidential", "Gross salary")]),
    ("product", "catalog", "Articles we sell with their prices", ["master"],
     [("sku", "string", None, "Stock keeping unit"), ("price", "number", None, "List price")]),
]
FILLER_WORDS = ["alpha", "bravo", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo"]


def filler(i):
    w = FILLER_WORDS[i % 10]
    return ("filler", f"{w}-{i}", f"Synthetic dataset number {i} about {w}", ["synthetic"],
            [("id", "integer", None, "Row"), ("value", "number", None, f"Measurement {w}")])


def contract_extra(purpose, tags, restricted=False):
    extra = "tags: [" + ", ".join(tags) + "]\n"
    if restricted:
        extra += "customProperties:\n  - property: meshRestricted\n    value: true\n"
    return extra


@pytest.fixture(scope="module")
def big_mesh():
    import pathlib
    import shutil
    import tempfile
    import conftest
    base = pathlib.Path(tempfile.mkdtemp(prefix="search-", dir=conftest.SCRATCH_ROOT))
    base.chmod(0o755)
    store = conftest.make_store(base / "store")
    for d in sorted({s[0] for s in SPECIAL} | {"filler"}):
        store.create_domain(d, "user:mesh_erin" if d == "hr" else "group:mesh_sales")
    specs = SPECIAL + [filler(i) for i in range(45)]
    for domain, product, purpose, tags, cols in specs:
        header = ",".join(c[0] for c in cols)
        row = ",".join("1" if c[1] in ("integer", "number") else "x" for c in cols)
        d = make_release(base / "rel", domain, product, "1.0.0", {"data.csv": f"{header}\n{row}\n"},
                         extra=contract_extra(purpose, tags, restricted=(domain == "hr")),
                         columns={"data.csv": [(c[0], c[1], c[2]) for c in cols]})
        text = (d / "contract.yaml").read_text()
        text = text.replace(f"  purpose: Test product {product} of domain {domain}", f"  purpose: {purpose}")
        for name, _, _, desc in cols:
            text = text.replace(f"      - name: {name}\n", f"      - name: {name}\n        description: {desc}\n", 1)
        (d / "contract.yaml").write_text(text)
        store.publish(d)
    assert len(specs) >= 50
    yield store
    shutil.rmtree(base, ignore_errors=True)


def search(store, *args, user="mesh_dave"):
    r = store.ctl("search", *args, "--json", user=user)
    assert r.returncode in (0, 1), r.stderr
    return [f"{h['domain']}/{h['product']}" for h in json.loads(r.stdout)] if r.returncode == 0 else []


# query -> expected first hit (ten queries over names, descriptions, columns, tags)
EXPECTED = [
    (["orders"], "sales/orders"),                     # product name
    (["churn"], "crm/churn"),                         # name beats the column churn_probability's prefix
    (["cancels"], "crm/churn"),                       # a column's description
    (["iban"], "crm/customers"),                      # a column name
    (["parcel*"], "logistics/shipments"),             # prefix search on a column name
    (["tracking", "number"], "logistics/shipments"),  # two words in one column description
    (["vat"], "finance/invoices"),                    # column name with underscore
    (["warehouse", "capacity"], "logistics/warehouses"),
    (["budget"], "marketing/campaigns"),
    (["stock", "keeping"], "product/catalog"),
]


@pytest.mark.parametrize("words,top", EXPECTED, ids=[" ".join(w) for w, _ in EXPECTED])
def test_relevance_top_hit(big_mesh, words, top):
    hits = search(big_mesh, *words)
    assert hits and hits[0] == top, hits[:5]


def test_filters_and_visibility(big_mesh):
    assert set(search(big_mesh, "amount")) == {"sales/orders", "sales/refunds"}
    assert search(big_mesh, "amount", "--domain", "sales", "--classification", "pii") == ["sales/orders"]
    revenue = set(search(big_mesh, "customers", "--tag", "revenue"))
    assert revenue == {"sales/refunds", "finance/invoices"}, revenue
    assert search(big_mesh, "dataset", "--status", "deprecated") == []
    assert len(search(big_mesh, "dataset")) == 45
    # hr/payroll is restricted: invisible to dave, found by its owner
    assert search(big_mesh, "salary") == []
    assert search(big_mesh, "salary", user="mesh_erin") == ["hr/payroll"]
    assert search(big_mesh, "salary", "--classification", "confidential", user="mesh_erin") == ["hr/payroll"]
    r = big_mesh.ctl("search", "salary", user="mesh_dave")
    assert r.returncode == 1 and r.stdout == ""


def test_usage_breaks_ties(big_mesh, mounter):
    # filler products of one word have identical text but their numbers; two of
    # them are equal matches for "juliet": the one with readers comes first
    tied = search(big_mesh, "juliet")
    assert len(tied) >= 2
    last = tied[-1]
    big_mesh.ctl("grant", last, "group:mesh_analysts", check=True)
    m = mounter(big_mesh)
    run(["cat", m / last / "1.0.0/data.csv"], user="mesh_alice", check=True)
    m.stop()
    assert search(big_mesh, "juliet")[0] == last


def test_bad_queries(big_mesh):
    assert big_mesh.ctl("search").returncode == 2
    assert big_mesh.ctl("search", "x", "--status", "gone").returncode == 2
    r = big_mesh.ctl("search", 'we"ird', "AND", "(")
    assert r.returncode in (0, 1)           # quoted: never an FTS5 syntax error
