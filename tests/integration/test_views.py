"""Masked views (issue 9): a masked reader gets a file of its own, with its
own inode, size and pages; masked values read as typed missing values or
as their masking rule's function makes them; the host's view cache builds,
verifies, evicts and fails closed; passthrough never serves a former file."""
import hashlib
import json
import os
import subprocess
import time

import pytest

from conftest import MESHCTL, make_release, make_store, run, wait_for

PEOPLE = ("id,email,birth_date,salary,city\n"
          "1,alice.smith@example.com,1984-03-02,52345.5,Lisboa\n"
          "2,\"bob, the builder@example.org\",1990-12-31,61000,Köln\n"
          "3,carol@example.net,2001-07-15,48999.99,Zürich\n")
PEOPLE_COLUMNS = [("id", "integer", None), ("email", "string", "pii"), ("birth_date", "date", "pii"),
                  ("salary", "number", "confidential"), ("city", "string", None)]
CLEAR_VALUES = ["alice.smith", "bob, the builder", "carol@example", "1984-03-02", "52345.5", "61000"]
EVENTS = ('{"id": 1, "email": "a@example.com", "salary": 52000, "vip": true, "tier": "gold"}\n'
          '{"id": 2, "email": "bb@example.com", "salary": 61000.5, "vip": false, "tier": "silver"}\n')
EVENT_COLUMNS = [("id", "integer", None), ("email", "string", "pii"), ("salary", "number", "confidential"),
                 ("vip", "boolean", "confidential"), ("tier", "string", None)]

CONFIDENTIAL_RULE = ("  - classification: confidential\n"
                     "    unmaskedFor: [group:mesh-pii, owners]\n")


def add_rules(store, text):
    path = store.path / "mesh.yaml"
    path.write_text(path.read_text() + text)


def set_pii_function(store, function, extra=""):
    path = store.path / "mesh.yaml"
    text = path.read_text()
    head, sep, rest = text.partition("  - classification: pii\n    unmaskedFor: [group:mesh-pii, owners]\n")
    assert sep
    rest_lines = [l for l in rest.splitlines(keepends=True)
                  if not l.startswith("    function:") and not l.startswith("    precision:")]
    path.write_text(head + sep + f"    function: {function}\n{extra}" + "".join(rest_lines))


@pytest.fixture
def vmesh(store, scratch):
    store.create_domain("hr", "group:mesh_sales")
    add_rules(store, CONFIDENTIAL_RULE)
    rel = scratch / "rel"
    store.publish(make_release(rel, "hr", "people", "1.0.0", {"people.csv": PEOPLE},
                               columns={"people.csv": PEOPLE_COLUMNS}))
    store.publish(make_release(rel, "hr", "events", "1.0.0", {"events.jsonl": EVENTS},
                               columns={"events.jsonl": EVENT_COLUMNS}))
    store.publish(make_release(rel, "hr", "plain", "1.0.0", {"plain.csv": "id,city\n1,Lisboa\n"},
                               columns={"plain.csv": [("id", "integer", None), ("city", "string", None)]}))
    store.ctl("grant", "hr", "group:mesh_analysts", "--reason", "analytics", check=True)
    return store


def cat(path, user):
    r = run(["cat", path], user=user)
    return r.stdout if r.returncode == 0 else "ERR " + r.stderr


def stat_of(path, user):
    r = run(["stat", "-c", "%i %s", path], user=user, check=True)
    ino, size = r.stdout.split()
    return int(ino), int(size)


def test_views_have_their_own_inode_size_and_values(vmesh, mounter):
    m = mounter(vmesh)
    path = m / "hr/people/1.0.0/people.csv"
    alice = cat(path, "mesh_alice")          # analyst without pii clearance
    carol = cat(path, "mesh_carol")          # analyst in mesh-pii
    assert carol == PEOPLE
    assert alice == ("id,email,birth_date,salary,city\n1,,,,Lisboa\n2,,,,Köln\n3,,,,Zürich\n")
    ino_a, size_a = stat_of(path, "mesh_alice")
    ino_c, size_c = stat_of(path, "mesh_carol")
    assert ino_a != ino_c and size_a == len(alice.encode()) and size_c == len(PEOPLE.encode())
    assert stat_of(path, "mesh_alice") == (ino_a, size_a)     # stable
    # a file without classified columns: one inode for everyone
    plain = m / "hr/plain/1.0.0/plain.csv"
    assert stat_of(plain, "mesh_alice") == stat_of(plain, "mesh_carol")
    # JSON Lines: masked numbers and booleans are null, the rest as it was
    rows = [json.loads(l) for l in cat(m / "hr/events/1.0.0/events.jsonl", "mesh_alice").splitlines()]
    assert rows == [{"id": 1, "email": None, "salary": None, "vip": None, "tier": "gold"},
                    {"id": 2, "email": None, "salary": None, "vip": None, "tier": "silver"}]
    # xattrs: the hash of the bytes this reader gets, and the plan
    h = run(["getfattr", "--only-values", "-n", "user.mesh.sha256", path], user="mesh_alice")
    assert h.stdout == hashlib.sha256(alice.encode()).hexdigest(), h
    v = run(["getfattr", "--only-values", "-n", "user.mesh.view", path], user="mesh_alice", check=True)
    assert v.stdout == "email:null, birth_date:null, salary:null"
    h = run(["getfattr", "--only-values", "-n", "user.mesh.sha256", path], user="mesh_carol", check=True)
    assert h.stdout == hashlib.sha256(PEOPLE.encode()).hexdigest()
    assert run(["getfattr", "-n", "user.mesh.view", path], user="mesh_carol").returncode != 0
    # no grant: no clear hash to confirm guesses with
    assert run(["getfattr", "-n", "user.mesh.sha256", path], user="mesh_dave").returncode != 0
    # meshctl access says which function applies to which column, and why
    out = vmesh.ctl("access", "hr/people/1.0.0/people.csv", user="mesh_alice", check=True).stdout
    assert "email: null (classification pii, masking rule mesh.yaml:" in out, out
    assert "salary: null (classification confidential" in out, out


def test_interleaved_mmap_private_and_reads_never_mix(vmesh, mounter):
    """The leak of issue 9: a cleared and an uncleared reader at once, one
    with MAP_PRIVATE mappings and one with plain reads, then swapped."""
    m = mounter(vmesh)
    path = m / "hr/people/1.0.0/people.csv"
    tries = int(os.environ.get("MESH_VIEW_TRIES", "20000"))
    code = r"""
import mmap, sys
path, mode, tries, clear = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "clear"
leaks = 0
for i in range(tries):
    with open(path, "rb") as f:
        if mode == "mmap":
            mm = mmap.mmap(f.fileno(), 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
            data = mm[:]
            mm.close()
        else:
            data = f.read()
    has_clear = b"alice.smith@example.com" in data and b"1984-03-02" in data
    if clear and not has_clear:
        leaks += 1
    if not clear and (b"@" in data or b"1984" in data or b"52345" in data):
        leaks += 1
print(leaks)
"""
    for masked_mode, clear_mode in (("mmap", "read"), ("read", "mmap")):
        procs = [subprocess.Popen(["setpriv", "--reuid", user, "--regid", user, "--init-groups", "--",
                                   "/usr/bin/python3", "-c", code, str(path), mode, str(tries), kind],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for user, mode, kind in (("mesh_alice", masked_mode, "masked"),
                                          ("mesh_carol", clear_mode, "clear"))]
        outs = [p.communicate(timeout=900) for p in procs]
        for p, (out, errout) in zip(procs, outs):
            assert p.returncode == 0, errout
        assert [int(o) for o, _ in outs] == [0, 0], (masked_mode, outs)


def test_mmap_shared_and_pandas(vmesh, mounter):
    m = mounter(vmesh)
    path = m / "hr/people/1.0.0/people.csv"
    code = ("import mmap,sys\nf=open(sys.argv[1],'rb')\n"
            "mm=mmap.mmap(f.fileno(),0,flags=mmap.MAP_SHARED,prot=mmap.PROT_READ)\n"
            "sys.stdout.write(mm[:].decode())")
    assert run(["/usr/bin/python3", "-c", code, path], user="mesh_alice", check=True).stdout == \
        cat(path, "mesh_alice")
    assert run(["/usr/bin/python3", "-c", code, path], user="mesh_carol", check=True).stdout == PEOPLE
    # pandas with the schema's types: masked columns are missing, the others equal the clear file's
    code = ("import pandas,sys\n"
            "df=pandas.read_csv(sys.argv[1], parse_dates=['birth_date'], dtype={'id':'int64','salary':'float64'})\n"
            "print(df.to_json(orient='split', date_format='iso'))")
    masked = json.loads(run(["/usr/bin/python3", "-c", code, path], user="mesh_alice", check=True).stdout)
    clear = json.loads(run(["/usr/bin/python3", "-c", code, path], user="mesh_carol", check=True).stdout)
    cols = masked["columns"]
    assert cols == clear["columns"] == ["id", "email", "birth_date", "salary", "city"]
    for i, name in enumerate(cols):
        mine = [row[i] for row in masked["data"]]
        theirs = [row[i] for row in clear["data"]]
        if name in ("id", "city"):
            assert mine == theirs, name
        else:
            assert mine == [None] * 3, (name, mine)


def test_functions_hash_joins_across_products_and_secrets(store, scratch, mounter):
    store.create_domain("hr", "group:mesh_sales")
    set_pii_function(store, "hash")
    add_rules(store, "  - classification: confidential\n    unmaskedFor: [owners]\n"
                     "    function: truncate\n    precision: 1000\n")
    rel = scratch / "rel"
    store.publish(make_release(rel, "hr", "people", "1.0.0", {"people.csv": PEOPLE},
                               columns={"people.csv": PEOPLE_COLUMNS}))
    other = "email,score\nalice.smith@example.com,1\nnobody@example.com,2\n"
    store.publish(make_release(rel, "hr", "scores", "1.0.0", {"scores.csv": other},
                               columns={"scores.csv": [("email", "string", "pii"), ("score", "integer", None)]}))
    store.ctl("grant", "hr", "group:mesh_analysts", check=True)
    m = mounter(store)
    people = cat(m / "hr/people/1.0.0/people.csv", "mesh_alice").splitlines()
    scores = cat(m / "hr/scores/1.0.0/scores.csv", "mesh_alice").splitlines()
    token = people[1].split(",")[1]
    assert token.startswith("h") and len(token) == 17
    assert scores[1].split(",")[0] == token                  # the same value, the same token
    assert scores[2].split(",")[0] != token
    assert people[1].split(",")[3] == "52000"                # truncate(1000)
    assert people[3].split(",")[3] == "48000"
    for value in CLEAR_VALUES[:4]:
        assert value not in "\n".join(people)
    # the secret: made by the service, 0600
    key = store.path / "secrets" / "view-hash.key"
    assert key.stat().st_mode & 0o777 == 0o600
    # another mesh, another secret: other tokens
    store2 = make_store(scratch / "store2")
    store2.create_domain("hr", "group:mesh_sales")
    set_pii_function(store2, "hash")
    store2.publish(make_release(scratch / "rel2", "hr", "scores", "1.0.0", {"scores.csv": other},
                                columns={"scores.csv": [("email", "string", "pii"), ("score", "integer", None)]}))
    store2.ctl("grant", "hr", "group:mesh_analysts", check=True)
    m2 = mounter(store2, name="mnt2")
    scores2 = cat(m2 / "hr/scores/1.0.0/scores.csv", "mesh_alice").splitlines()
    assert scores2[1].split(",")[0].startswith("h") and scores2[1].split(",")[0] != token


def test_policy_change_applies_to_the_next_open(vmesh, mounter):
    m = mounter(vmesh, options="allow_other,poll=0.5")
    path = m / "hr/people/1.0.0/people.csv"
    assert cat(path, "mesh_alice").splitlines()[1] == "1,,,,Lisboa"
    set_pii_function(vmesh, "redact")
    assert wait_for(lambda: cat(path, "mesh_alice").splitlines()[1] == "1,***,***,,Lisboa", 3)
    set_pii_function(vmesh, "year")
    assert wait_for(lambda: cat(path, "mesh_alice").splitlines()[1] == "1,,1984,,Lisboa", 3)
    v = run(["getfattr", "--only-values", "-n", "user.mesh.view", path], user="mesh_alice", check=True)
    assert v.stdout == "email:year, birth_date:year, salary:null"
    # cleared readers are untouched
    assert cat(path, "mesh_carol") == PEOPLE


def cache_files(d):
    return sorted(p for p in os.listdir(d) if p.endswith(".view"))


def test_cache_eviction_corruption_and_full_disk(vmesh, mounter, scratch):
    cache = scratch / "cache"
    # cap: room for about two views of people.csv
    m = mounter(vmesh, options=f"allow_other,poll=0.3,view_cache={cache},view_cache_max=300")
    path = m / "hr/people/1.0.0/people.csv"
    first = cat(path, "mesh_alice")
    assert first.startswith("id,email") and len(cache_files(cache)) == 1
    # corrupt the entry (as its owner could): detected, rebuilt, never served
    entry = cache / cache_files(cache)[0]
    with open(entry, "r+b") as f:
        f.seek(len("id,email,birth_date,salary,city\n1,"))
        f.write(b"alice.smith@example.com")
    assert cat(path, "mesh_alice") == first
    assert "does not match its record: rebuilding" in m.read_log()
    # more plans than the cap holds: the least recently used go
    for function in ("redact", "hash", "last4"):
        set_pii_function(vmesh, function)
        assert wait_for(lambda: cat(path, "mesh_alice") != first, 3)
        first = cat(path, "mesh_alice")
        total = sum(os.path.getsize(cache / f) for f in cache_files(cache))
        assert total <= 300, total
    assert "view cache: evicted" in m.read_log()


def test_full_cache_disk_fails_closed(vmesh, mounter, scratch):
    cache = scratch / "tmpfs"
    cache.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8k", "tmpfs", str(cache)], check=True)
    try:
        big = "id,email\n" + "".join(f"{i},user{i}@example.com\n" for i in range(4000))
        make_release(scratch / "rel", "hr", "big", "1.0.0", {"big.csv": big},
                     columns={"big.csv": [("id", "integer", None), ("email", "string", "pii")]})
        vmesh.publish(scratch / "rel" / "hr-big-1.0.0")
        m = mounter(vmesh, options=f"allow_other,view_cache={cache}")
        r = run(["cat", m / "hr/big/1.0.0/big.csv"], user="mesh_alice")
        assert r.returncode != 0 and "Permission denied" in r.stderr
        assert "@example.com" not in r.stdout
        log = m.read_log()
        assert "the view cannot be served" in log and "No space left" in log, log[-2000:]
        assert not [f for f in os.listdir(cache) if not f.endswith(".meta")] or \
            all(not f.endswith(".view") for f in os.listdir(cache))
        # a cleared reader still reads the release file
        assert cat(m / "hr/big/1.0.0/big.csv", "mesh_carol") == big
    finally:
        subprocess.run(["umount", "-l", str(cache)])


def test_passthrough_serves_current_files(vmesh, mounter):
    """Under passthrough (root) a deprecated version's re-stated contract,
    a policy change and a rebuilt view are read from their current files."""
    m = mounter(vmesh, options="allow_other,poll=0.3")
    if "passthrough enabled" not in m.read_log():
        pytest.skip("this kernel offers no FUSE passthrough")
    contract = m / "hr/people/1.0.0/contract.yaml"
    before = contract.read_bytes()
    with open(contract, "rb") as held:            # an open kept across the change
        vmesh.ctl("deprecate", "hr/people", "1.0.0", "--reason", "superseded", check=True)
        assert wait_for(lambda: b"status: deprecated" in contract.read_bytes(), 3)
        after = contract.read_bytes()
        assert len(after) == os.stat(contract).st_size and after != before
        assert held.read() == before                  # the old open reads the old file whole
    assert contract.read_bytes() == after
    path = m / "hr/people/1.0.0/people.csv"
    masked = cat(path, "mesh_alice")
    set_pii_function(vmesh, "redact")
    assert wait_for(lambda: "***" in cat(path, "mesh_alice"), 3)
    assert len(cat(path, "mesh_alice").encode()) == stat_of(path, "mesh_alice")[1]
    # a view rebuilt under the same inode
    cache = m.path.parent / (m.path.name + "-views")
    for f in cache_files(cache):
        with open(cache / f, "r+b") as fh:
            fh.write(b"XX")
    redacted = cat(path, "mesh_alice")
    assert redacted.startswith("id,email") and "***" in redacted and masked != redacted


def test_wide_tables_mask_every_column(store, scratch, mounter):
    store.create_domain("hr", "group:mesh_sales")
    classes = [f"class{i}" for i in range(20)]
    text = (store.path / "mesh.yaml").read_text().replace(
        "allowedClassifications: [public, internal, confidential, restricted, pii]",
        "allowedClassifications: [public, internal, confidential, restricted, pii, " + ", ".join(classes) + "]")
    (store.path / "mesh.yaml").write_text(text)
    add_rules(store, "".join(f"  - classification: {c}\n    unmaskedFor: [owners]\n" for c in classes))
    cols = [("id", "integer", None)] + [(f"p{i}", "string", "pii") for i in range(70)]
    header = ",".join(c for c, _, _ in cols)
    row = "1," + ",".join(f"secret{i}" for i in range(70))
    rel = scratch / "rel"
    store.publish(make_release(rel, "hr", "wide", "1.0.0", {"wide.csv": header + "\n" + row + "\n"},
                               columns={"wide.csv": cols}))
    cols2 = [("id", "integer", None)] + [(f"c{i}", "string", classes[i]) for i in range(20)] + \
        [("e", "string", "pii")]
    store.publish(make_release(rel, "hr", "many", "1.0.0",
                               {"many.csv": ",".join(c for c, _, _ in cols2) + "\n1," +
                                ",".join(f"secret{i}" for i in range(21)) + "\n"},
                               columns={"many.csv": cols2}))
    store.ctl("grant", "hr", "group:mesh_analysts", check=True)
    m = mounter(store)
    wide = cat(m / "hr/wide/1.0.0/wide.csv", "mesh_alice")
    assert wide == header + "\n1" + "," * 70 + "\n", wide
    many = cat(m / "hr/many/1.0.0/many.csv", "mesh_carol")   # pii-cleared, not owner
    assert many == ",".join(c for c, _, _ in cols2) + "\n1" + "," * 20 + ",secret20\n", many


def test_sidecars_tell_the_truth_for_the_reader(store, scratch, mounter):
    store.create_domain("hr", "group:mesh_sales")
    set_pii_function(store, "hash")
    rel = make_release(scratch / "rel", "hr", "people", "1.0.0", {"people.csv": PEOPLE},
                       columns={"people.csv": PEOPLE_COLUMNS})
    contract = rel / "contract.yaml"
    text = contract.read_text()
    marker = "      - name: email\n        logicalType: string\n        classification: pii\n"
    assert marker in text
    contract.write_text(text.replace(marker, marker +
                                     "        quality:\n"
                                     "          - metric: invalidValues\n"
                                     "            arguments:\n"
                                     "              pattern: '^[a-z.]+@example[.]com$'\n"
                                     "            mustBe: 0\n"
                                     "            severity: warning\n"))
    store.publish(rel)
    store.ctl("grant", "hr", "group:mesh_analysts", check=True)
    m = mounter(store)
    quality, schema = m / "hr/people/1.0.0/quality.json", m / "hr/people/1.0.0/schema.json"
    # the owner's (clear) quality.json carries the failing sample
    assert "bob, the builder" in cat(quality, "mesh_bob")
    for user in ("mesh_alice", "mesh_dave"):          # masked; no grant at all
        q = cat(quality, user)
        assert q.startswith("{") and "bob, the builder" not in q and "carol@example.net" not in q, (user, q)
        assert json.loads(q)["meshView"]
    s = json.loads(cat(schema, "mesh_alice"))
    fields = {f["name"]: f for f in s["fields"]}
    assert fields["email"]["masked"] == "hash" and fields["email"]["type"] == "string"
    assert fields["birth_date"]["masked"] == "hash" and fields["birth_date"]["type"] == "string"
    assert "masked" not in fields["id"] and "masked" not in fields["salary"]
    assert s["meshView"] == "email:hash, birth_date:hash"
    clear = json.loads(cat(schema, "mesh_bob"))
    assert all("masked" not in f for f in clear["fields"]) and clear["fields"][2]["type"] == "date"
    # stat tells each reader the size of its own sidecar
    assert stat_of(schema, "mesh_alice")[1] == len(cat(schema, "mesh_alice").encode())
    assert stat_of(schema, "mesh_alice")[0] != stat_of(schema, "mesh_bob")[0]
