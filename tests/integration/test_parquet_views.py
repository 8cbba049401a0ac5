"""Masked views of Parquet files (issues 9 and 10): a reader masked on a
classified Parquet file gets a valid Parquet file without the classified
columns, which DuckDB (from npm) queries; a cleared reader gets the
original bytes.  Files are written by DuckDB itself: several row groups,
dictionary pages, a nested struct and a list."""
import hashlib
import json
import shutil
import subprocess

import pytest

from conftest import SCRATCH_ROOT, make_release, run

DUCK_DIR = SCRATCH_ROOT / "duckdb-node"     # one npm directory per machine
HERE = __import__("pathlib").Path(__file__).resolve().parent

COLUMNS = [("id", "integer", None), ("amount", "number", None), ("email", "string", "pii"),
           ("customer.name", "object", None), ("customer.phone", "object", "pii"),
           ("tags.list.element", "object", "pii"), ("city", "string", None)]
ROWS = 5000
SQL = ("copy (select i as id, (i % 100) * 1.5::double as amount, 'user' || i || '@example.com' as email, "
       "{{'name': 'n' || (i % 50), 'phone': '+351 9' || (i % 7)}} as customer, [i, i + 1] as tags, "
       "(['Lisboa', 'Porto', 'Braga'])[i % 3 + 1] as city from range({rows}) t(i)) "
       "to '{path}' (format parquet, row_group_size 1000, compression {codec})")


@pytest.fixture(scope="session")
def duck():
    if not shutil.which("node") or not shutil.which("npm"):
        pytest.skip("node and npm are needed (tests/install-deps.sh installs them)")
    if not (DUCK_DIR / "node_modules/@duckdb/node-api").exists():
        DUCK_DIR.mkdir(parents=True, exist_ok=True)
        r = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(DUCK_DIR),
                            "@duckdb/node-api"], capture_output=True, text=True, timeout=600)
        if r.returncode:
            pytest.skip(f"npm install @duckdb/node-api failed (offline?): {r.stderr[-500:]}")
    shutil.copy(HERE / "duck.mjs", DUCK_DIR / "duck.mjs")
    DUCK_DIR.chmod(0o755)

    def query(*sql, user=None):
        r = run(["node", DUCK_DIR / "duck.mjs", *sql], user=user, timeout=300)
        if r.returncode:
            return "ERR " + r.stderr
        return json.loads(r.stdout)
    return query


def publish_parquet(store, scratch, duck, product="payments", codec="snappy", columns=COLUMNS, rows=ROWS):
    # nested Parquet leaves are named by their dotted paths in a contract,
    # which the default mesh rule for column names allows
    src = scratch / f"{product}.parquet"
    assert not isinstance(duck(SQL.format(rows=rows, path=src, codec=codec)), str)
    rel = make_release(scratch / "rel", "hr", product, "1.0.0", {f"{product}.parquet": src.read_bytes()},
                       columns={f"{product}.parquet": columns})
    store.publish(rel)
    return src


@pytest.fixture
def pmesh(store, scratch, duck):
    store.create_domain("hr", "group:mesh_sales")
    src = publish_parquet(store, scratch, duck)
    store.ctl("grant", "hr", "group:mesh_analysts", "--reason", "analytics", check=True)
    return store, src


def columns_of(duck, path, user):
    rows = duck(f"describe select * from '{path}'", user=user)
    assert not isinstance(rows, str), rows
    return {r["column_name"]: r["column_type"] for r in rows}


def test_masked_reader_gets_parquet_without_classified_columns(pmesh, mounter, duck):
    store, src = pmesh
    m = mounter(store)
    path = m / "hr/payments/1.0.0/payments.parquet"
    clear = src.read_bytes()
    # the cleared reader gets the original bytes
    r = run(["sha256sum", path], user="mesh_carol", check=True)
    assert r.stdout.split()[0] == hashlib.sha256(clear).hexdigest()
    # the masked reader: a Parquet file without email, customer.phone and tags
    cols = columns_of(duck, path, "mesh_alice")
    assert list(cols) == ["id", "amount", "customer", "city"], cols
    assert "phone" not in cols["customer"] and "name" in cols["customer"]
    want = duck(f"select sum(amount) s, count(*) n, count(distinct city) c, max(customer.name) cn from '{src}'")
    got = duck(f"select sum(amount) s, count(*) n, count(distinct city) c, max(customer.name) cn from '{path}'",
               user="mesh_alice")
    assert got == want and want[0]["n"] == str(ROWS), (got, want)
    # the layout survives: the same row groups, dictionary pages, 4 of 7 leaves each
    q = "select count(distinct row_group_id) g, count(dictionary_page_offset) d, count(*) c from parquet_metadata('{}')"
    meta, meta_c = duck(q.format(path), user="mesh_alice")[0], duck(q.format(src))[0]
    groups = int(meta_c["g"])
    assert groups >= 2 and meta["g"] == meta_c["g"] and int(meta["c"]) == 4 * groups, (meta, meta_c)
    assert 0 < int(meta["d"]) < int(meta_c["d"]), (meta, meta_c)
    # every kept value equals the clear file's, row by row
    diff = duck(f"select count(*) n from (select id, amount, customer.name, city from '{src}' except "
                f"select id, amount, customer.name, city from '{path}')", user="mesh_alice")
    assert diff == [{"n": "0"}], diff
    # no classified byte in the view
    view = subprocess.run(["setpriv", "--reuid=mesh_alice", "--regid=mesh_alice", "--init-groups", "cat",
                           str(path)], capture_output=True, check=True).stdout
    assert view[:4] == b"PAR1" and view[-4:] == b"PAR1" and len(view) < len(clear)
    for secret in (b"user42@example.com", b"+351 9", b"@example.com", b"phone", b"email"):
        assert secret not in view, secret
    assert b"ARROW:schema" not in view
    # stat size is the view's; the xattrs name the plan and the view's hash
    st = run(["stat", "-c", "%s", path], user="mesh_alice", check=True)
    assert int(st.stdout) == len(view)
    v = run(["getfattr", "--only-values", "-n", "user.mesh.view", path], user="mesh_alice", check=True)
    assert v.stdout == "email:omit, customer.phone:omit, tags.list.element:omit", v.stdout
    h = run(["getfattr", "--only-values", "-n", "user.mesh.sha256", path], user="mesh_alice", check=True)
    assert h.stdout == hashlib.sha256(view).hexdigest()
    # the reader's schema.json describes the view: the left-out fields are gone
    schema = json.loads(run(["cat", m / "hr/payments/1.0.0/schema.json"], user="mesh_alice", check=True).stdout)
    names = [f["name"] for f in schema["fields"]]
    assert "email" not in names and "customer.phone" not in names and "id" in names, names
    assert schema["meshView"] == v.stdout
    schema_c = json.loads(run(["cat", m / "hr/payments/1.0.0/schema.json"], user="mesh_carol", check=True).stdout)
    assert "email" in [f["name"] for f in schema_c["fields"]]
    # quality.json: the view's rules only (none on a left-out column)
    quality = json.loads(run(["cat", m / "hr/payments/1.0.0/quality.json"], user="mesh_alice", check=True).stdout)
    ruled = {r.get("column") for f in quality["files"] for r in f["rules"]}
    assert "amount" in ruled and not ruled & {"email", "customer.phone", "tags.list.element"}, ruled
    quality_c = json.loads(run(["cat", m / "hr/payments/1.0.0/quality.json"], user="mesh_carol", check=True).stdout)
    assert "email" in {r.get("column") for f in quality_c["files"] for r in f["rules"]}
    # meshctl access says the columns are left out
    out = store.ctl("access", "hr/payments/1.0.0/payments.parquet", user="mesh_alice", check=True).stdout
    assert "email: null (classification pii" in out and "left out of the Parquet view" in out, out
    # no grant at all: denied
    assert isinstance(duck(f"select count(*) from '{path}'", user="mesh_dave"), str)


@pytest.mark.parametrize("codec", ["uncompressed", "zstd", "gzip"])
def test_parquet_view_every_codec(store, scratch, duck, mounter, codec):
    store.create_domain("hr", "group:mesh_sales")
    src = publish_parquet(store, scratch, duck, product="p" + codec, codec=codec, rows=3000)
    store.ctl("grant", "hr", "group:mesh_analysts", check=True)
    m = mounter(store)
    path = m / f"hr/p{codec}/1.0.0/p{codec}.parquet"
    got = duck(f"select sum(amount) s, sum(id) i, string_agg(distinct city, ',' order by city) c from '{path}'",
               user="mesh_alice")
    want = duck(f"select sum(amount) s, sum(id) i, string_agg(distinct city, ',' order by city) c from '{src}'")
    assert got == want, (got, want)
    assert "email" not in columns_of(duck, path, "mesh_alice")


def test_parquet_function_it_cannot_apply_fails_closed(pmesh, mounter, duck):
    """hash cannot be had by leaving a column out: denied, with the reason
    in meshctl access; null and redact are left out."""
    store, src = pmesh
    mesh_yaml = store.path / "mesh.yaml"
    text = mesh_yaml.read_text()
    anchor = "  - classification: pii\n    unmaskedFor: [group:mesh-pii, owners]\n"
    assert anchor in text
    mesh_yaml.write_text(text.replace(anchor, anchor + "    function: hash\n"))
    m = mounter(store)
    path = m / "hr/payments/1.0.0/payments.parquet"
    r = run(["head", "-c", "4", path], user="mesh_alice")
    assert r.returncode != 0 and "Permission denied" in r.stderr, r
    out = store.ctl("access", "hr/payments/1.0.0/payments.parquet", user="mesh_alice", check=True).stdout
    assert "can only leave columns out, not apply hash" in out, out
    # the cleared reader still reads it
    r = run(["sha256sum", path], user="mesh_carol", check=True)
    assert r.stdout.split()[0] == hashlib.sha256(src.read_bytes()).hexdigest()
    # redact: left out like null
    mesh_yaml.write_text(text.replace(anchor, anchor + "    function: redact\n"))
    for _ in range(100):
        cols = columns_of(duck, path, "mesh_alice") if run(["head", "-c", "4", path],
                                                            user="mesh_alice").returncode == 0 else None
        if cols:
            break
        __import__("time").sleep(0.1)
    assert cols and "email" not in cols and "amount" in cols, cols


def test_parquet_view_without_any_column_is_denied(store, scratch, duck, mounter):
    """Every column classified: a view would have none, so the masked reader
    is denied (test -r says so too) and meshctl access says why."""
    store.create_domain("hr", "group:mesh_sales")
    src = scratch / "only.parquet"
    assert not isinstance(duck(f"copy (select 'u' || i || '@example.com' as email from range(10) t(i)) "
                               f"to '{src}' (format parquet)"), str)
    store.publish(make_release(scratch / "rel", "hr", "only", "1.0.0", {"only.parquet": src.read_bytes()},
                               columns={"only.parquet": [("email", "string", "pii")]}))
    store.ctl("grant", "hr", "group:mesh_analysts", check=True)
    m = mounter(store)
    path = m / "hr/only/1.0.0/only.parquet"
    r = run(["cat", path], user="mesh_alice")
    assert r.returncode != 0 and "Permission denied" in r.stderr, r
    assert run(["test", "-r", path], user="mesh_alice").returncode != 0
    out = store.ctl("access", "hr/only/1.0.0/only.parquet", user="mesh_alice", check=True).stdout
    assert "only.parquet" in out and "deny" in out and "its view would have none" in out, out
    assert run(["cmp", path, src], user="mesh_carol").returncode == 0
