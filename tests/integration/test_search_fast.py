"""Search and listing as the index answers them fast (issues 11 and 13):
hits ranked over every match but read (details, snippets) only for those
shown must give the same answer as ranking everything, never show a
product the caller may not discover (not as a hit, not in a snippet, not
as "more"), honour --state-dir, and an index that is current is read, not
written."""
import json
import os
import subprocess

import pytest

from conftest import MESHCTL, as_user, make_release


RESTRICTED = "customProperties:\n  - property: meshRestricted\n    value: true\n"


@pytest.fixture(scope="module")
def fast_mesh():
    import pathlib
    import shutil
    import tempfile
    import conftest
    base = pathlib.Path(tempfile.mkdtemp(prefix="search-fast-", dir=conftest.SCRATCH_ROOT))
    base.chmod(0o755)
    saved = os.environ.get("MESHFS_STATE_DIR")
    os.environ["MESHFS_STATE_DIR"] = str(base / "state")
    store = conftest.make_store(base / "store")
    store.create_domain("open", "group:mesh_sales")
    store.create_domain("secret", "user:mesh_erin")
    # twelve products with the same words (ties the index cannot break:
    # their order is by readers, then by name), every third one restricted;
    # the restricted ones name the word "zebra" most (they rank first)
    for i in range(12):
        restricted = i % 3 == 0
        domain = "secret" if restricted else "open"
        name = f"zebra{i:02d}" if restricted else f"plain{i:02d}"
        d = make_release(base / "rel", domain, name, "1.0.0", extra="tags: [fast]\n" + (RESTRICTED if restricted else ""))
        text = (d / "contract.yaml").read_text()
        secret_words = f" zebra zebra classifiedcodeword{i}" if restricted else ""
        text = text.replace(f"  purpose: Test product {name} of domain {domain}",
                            f"  purpose: Striped animals and zebra crossings{secret_words}")
        (d / "contract.yaml").write_text(text)
        store.publish(d)
    yield store, base
    if saved is None:
        os.environ.pop("MESHFS_STATE_DIR", None)
    else:
        os.environ["MESHFS_STATE_DIR"] = saved
    shutil.rmtree(base, ignore_errors=True)


def search_json(store, *args, user=None, state=None):
    pre = ["--state-dir", str(state)] if state else []
    r = store.ctl(*pre, "search", *args, "--json", user=user)
    assert r.returncode in (0, 1), r.stderr
    return json.loads(r.stdout) if r.returncode == 0 else []


def names(hits):
    return [f"{h['domain']}/{h['product']}" for h in hits]


@pytest.mark.parametrize("user", [None, "mesh_dave", "mesh_erin"])
def test_limit_is_a_prefix_of_the_full_ranking(fast_mesh, user):
    store, _ = fast_mesh
    full = search_json(store, "zebra", user=user)
    assert len(full) == (12 if user in (None, "mesh_erin") else 8), names(full)
    for k in (1, 2, 3, 5, 8, 11):
        part = search_json(store, "zebra", "--limit", str(k), user=user)
        assert names(part) == names(full)[:k], (k, names(part), names(full))
        assert [h["snippet"] for h in part] == [h["snippet"] for h in full[:k]]


def test_restricted_never_in_hits_or_snippets(fast_mesh):
    store, _ = fast_mesh
    for args in (["zebra"], ["zebra", "--limit", "1"], ["classifiedcodeword3"], ["striped", "--limit", "4"]):
        hits = search_json(store, *args, user="mesh_dave")
        text = json.dumps(hits)
        assert "secret/" not in text and "classifiedcodeword" not in text and "zebra0" not in text, text
        for h in hits:
            assert h["snippet"] and "[" in h["snippet"], h   # a visible hit still has its snippet
    r = store.ctl("search", "classifiedcodeword3", user="mesh_dave")
    assert r.returncode == 1 and r.stdout == ""
    # the owner sees them, with the snippet of their own text
    hits = search_json(store, "classifiedcodeword3", user="mesh_erin")
    assert names(hits) == ["secret/zebra03"] and "[classifiedcodeword3]" in hits[0]["snippet"]


def mcp_search(store, user, query, limit):
    lines = "\n".join(json.dumps(m) for m in [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize",
         "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
         "params": {"name": "search_products", "arguments": {"query": query, "limit": limit}}},
    ]) + "\n"
    store.ensure_service()
    r = subprocess.run(as_user(user) + [str(MESHCTL), "--store", str(store.path), "mcp"], input=lines,
                       capture_output=True, text=True, timeout=60)
    replies = {x.get("id"): x for x in map(json.loads, r.stdout.splitlines())}
    assert "result" in replies[2], r.stdout + r.stderr
    return replies[2]["result"]


def test_more_counts_only_visible_products(fast_mesh):
    store, _ = fast_mesh
    # "crossings" matches all twelve; mesh_dave may discover eight: with a
    # limit of 8 nothing more is there for him, with 7 there is
    text = json.dumps(mcp_search(store, "mesh_dave", "crossings", 8))
    assert "more than" not in text and "secret/" not in text and "classifiedcodeword" not in text, text
    assert "more than 7" in json.dumps(mcp_search(store, "mesh_dave", "crossings", 7))
    assert "more than 8" in json.dumps(mcp_search(store, "mesh_erin", "crossings", 8))


def test_state_dir_is_honoured(fast_mesh):
    store, base = fast_mesh
    mine = base / "state-elsewhere"
    assert not mine.exists()
    before = sorted(str(p) for p in (base / "state").glob("*/index.db"))
    hits = search_json(store, "zebra", "--limit", "3", state=mine)
    assert len(hits) == 3
    assert list(mine.glob("*/index.db")), "search did not use --state-dir"
    assert sorted(str(p) for p in (base / "state").glob("*/index.db")) == before


def test_current_index_is_read_not_written(fast_mesh):
    store, base = fast_mesh
    store.ctl("list", check=True)
    (index,) = (base / "state").glob("*/index.db")
    import time
    time.sleep(3.5)                            # past the settle window: the next refresh settles it
    store.ctl("list", check=True)
    st = os.stat(index)
    for cmd in (["list"], ["status"], ["search", "zebra"]):
        store.ctl(*cmd, check=True)
    st2 = os.stat(index)
    assert (st.st_mtime_ns, st.st_size, st.st_ino) == (st2.st_mtime_ns, st2.st_size, st2.st_ino)
    # ... and a release published now is listed and found at once
    d = make_release(base / "rel2", "open", "fresh", "1.0.0")
    store.publish(d)
    assert "open/fresh" in store.ctl("list", check=True).stdout
    assert "open/fresh" in store.ctl("search", "fresh", check=True).stdout
