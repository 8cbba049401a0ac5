"""Directory walks through the mount and the kernel's caches (issue 12).

The kernel keeps dentries, attributes and readdir listings per inode, for
every user alike: meshfs lets it cache only what is the same for every
caller (listings with nothing hidden, release entries), and keeps what
differs per caller (a domain that hides restricted products, everything
inside a restricted product, a reader's card) out of those caches.  These
tests walk the tree with real tools as two users right after each other,
in both orders, and after a grant and a revoke, and fail if one user's walk
ever shows what only the other may see."""
import os
import re

import pytest

from conftest import make_release, run, wait_for

ORDERS = "order_id,amount\n1,10.50\n2,3.00\n"

# every walk the benchmark times, as a user runs it
WALK_STAT = ("import os, sys\n"
             "for d, dirs, files in os.walk(sys.argv[1]):\n"
             "    for name in sorted(dirs + files):\n"
             "        p = os.path.join(d, name); st = os.lstat(p)\n"
             "        print(p, st.st_ino, st.st_size)\n")


@pytest.fixture
def mesh(store, scratch):
    """sales (owners: group mesh_sales, so mesh_bob): orders (open to
    discovery), secret (restricted, two versions); analytics (nothing
    hidden)."""
    store.create_domain("sales", "group:mesh_sales")
    store.create_domain("analytics", "group:mesh_sales")
    rel = scratch / "rel"
    restricted = "customProperties:\n  - property: meshRestricted\n    value: true\n"
    store.publish(make_release(rel, "sales", "orders", "1.0.0", {"orders.csv": ORDERS}))
    store.publish(make_release(rel, "sales", "secret", "1.0.0", {"orders.csv": ORDERS}, extra=restricted))
    store.publish(make_release(rel, "sales", "secret", "1.1.0", {"orders.csv": ORDERS}, extra=restricted))
    store.publish(make_release(rel, "analytics", "daily", "1.0.0", {"orders.csv": ORDERS}))
    return store


def walks(root, user, check=True):
    """What ls -lR, find -ls and a stat of every entry show `user`.  A
    walk that fails is an error, or with check=False None: a walk that
    runs while a grant or a revoke takes effect may list a name under one
    decision and find it gone under the next, as on any filesystem where
    a walk meets a removal."""
    out = {}
    for name, cmd in (("ls -lR", ["ls", "-lR", root]), ("find -ls", ["find", root, "-ls"]),
                      ("stat", ["/usr/bin/python3", "-c", WALK_STAT, root])):
        r = run(cmd, user=user)
        if not check and r.returncode:
            return None
        assert r.returncode == 0, (user, name, r.stderr)
        out[name] = r.stdout
    return out


def all_show_secret(root, user):
    """Every walk succeeded and showed the restricted product."""
    seen = walks(root, user, check=False)
    return seen is not None and all(shows_secret(seen).values())


def none_show_secret(root, user):
    seen = walks(root, user, check=False)
    return seen is not None and not any(shows_secret(seen).values())


def shows_secret(outputs):
    return {name: bool(re.search(r"\bsecret\b", text)) for name, text in outputs.items()}


@pytest.mark.parametrize("source", ["index", "walk"])
def test_walk_never_shows_a_restricted_product_to_an_outsider(mesh, mounter, source):
    """The owner walks, the outsider walks right after (the kernel's
    caches warm from the owner's walk), and the reverse, several times;
    with the snapshot from this host's index and from a walk."""
    if source == "index":
        mesh.ctl("list", check=True)     # builds this host's index
    m = mounter(mesh)
    assert ("from this host's index" in m.read_log()) == (source == "index"), m.read_log()
    everyone = {"ls -lR": True, "find -ls": True, "stat": True}
    nobody = {"ls -lR": False, "find -ls": False, "stat": False}
    for order in (("mesh_bob", "mesh_dave"), ("mesh_dave", "mesh_bob"), ("mesh_bob", "mesh_dave")):
        for user in order:
            for root in (m.path, m / "sales"):
                assert shows_secret(walks(root, user)) == (everyone if user == "mesh_bob" else nobody), (order, user)
            # a path the owner's walk just put in the dentry cache
            for path in ("sales/secret", "sales/secret/1.1.0", "sales/secret/1.1.0/contract.yaml",
                         "sales/secret/README.md", "sales/secret/latest"):
                r = run(["stat", "-c", "%i", m / path], user=user)
                assert (r.returncode == 0) == (user == "mesh_bob"), (order, user, path, r.stderr)
    # a domain that hides nothing lists the same for both (but each
    # reader's card, which says what that reader may do)
    def names(user):
        return [line for line in walks(m / "analytics", user)["ls -lR"].splitlines() 
                if "README.md" not in line and not line.startswith("total")]
    assert names("mesh_dave") == names("mesh_bob")


@pytest.mark.parametrize("source", ["index", "walk"])
def test_walk_follows_a_grant_and_a_revoke(mesh, mounter, source):
    """After a grant the grantee's walk shows the product, after the revoke
    it no longer does, also when the owner walked just before."""
    if source == "index":
        mesh.ctl("list", check=True)     # builds this host's index
    m = mounter(mesh)
    assert not any(shows_secret(walks(m / "sales", "mesh_dave")).values())
    mesh.ctl("grant", "sales/secret", "user:mesh_dave", "--reason", "audit", check=True)
    assert wait_for(lambda: all_show_secret(m / "sales", "mesh_dave"), timeout=10)
    for user in ("mesh_bob", "mesh_dave", "mesh_alice"):
        assert all(shows_secret(walks(m / "sales", user)).values()) == (user != "mesh_alice"), user
    walks(m / "sales", "mesh_bob")
    mesh.ctl("revoke", "sales/secret", "user:mesh_dave", check=True)
    assert wait_for(lambda: none_show_secret(m / "sales", "mesh_dave"), timeout=10)
    for _ in range(2):
        assert all(shows_secret(walks(m / "sales", "mesh_bob")).values())
        assert not any(shows_secret(walks(m / "sales", "mesh_dave")).values())
        assert run(["stat", m / "sales/secret/1.0.0"], user="mesh_dave").returncode != 0


def test_walk_after_another_user_equals_a_walk_on_a_cold_mount(mesh, mounter):
    """Each user's walks on a mount whose caches the other users just
    warmed are exactly what that user sees on a second mount of the same
    store that only they use (names, inodes, sizes, modes), with a grant on
    one version of the restricted product in place."""
    mesh.ctl("grant", "sales/secret@1.0.0", "user:mesh_dave", "--reason", "one release", check=True)
    mesh.ctl("grant", "sales/orders", "user:mesh_alice", "--reason", "analytics", check=True)
    warm = mounter(mesh, name="warm")
    cold = {u: mounter(mesh, options=f"allow_other,hostname=cold-{u[5:]}", name=f"cold-{u}")
            for u in ("mesh_bob", "mesh_dave", "mesh_alice")}

    def own(user):
        return {k: v.replace(str(cold[user].path), "MNT") for k, v in walks(cold[user].path, user).items()}

    for order in (("mesh_bob", "mesh_dave", "mesh_alice"), ("mesh_dave", "mesh_alice", "mesh_bob")):
        for user in order:
            seen = {k: v.replace(str(warm.path), "MNT") for k, v in walks(warm.path, user).items()}
            assert seen == own(user), (order, user)


def test_cards_seen_in_a_walk_are_each_readers_own(mesh, mounter):
    """The owner walks and reads every card, then the outsider walks: each
    card's size in the outsider's walk is the size of what the outsider
    reads from it (never the owner's card), and the reverse."""
    m = mounter(mesh)

    def sizes(user):
        text = walks(m.path, user)["stat"]
        cards = {}
        for line in text.splitlines():
            path, ino, size = line.rsplit(" ", 2)
            if os.path.basename(path) == "README.md":
                cards[path] = (ino, int(size))
        return cards

    for order in (("mesh_bob", "mesh_dave"), ("mesh_dave", "mesh_bob")):
        for user in order:
            cards = sizes(user)
            assert len(cards) >= 4, cards
            for path, (ino, size) in cards.items():
                body = run(["cat", path], user=user, check=True).stdout
                assert len(body.encode()) == size, (user, path, size)
                wc = run(["wc", "-c", path], user=user, check=True).stdout.split()[0]
                assert int(wc) == size, (user, path, wc)
    owner, outsider = sizes("mesh_bob"), sizes("mesh_dave")
    shared = set(owner) & set(outsider)
    assert shared and all(owner[p][0] != outsider[p][0] for p in shared), "cards share an inode across readers"


@pytest.mark.parametrize("source", ["index", "walk"])
def test_rewritten_descriptor_is_invalidated(mesh, mounter, scratch, source):
    """The kernel keeps a product.yaml entry and its attributes for an
    hour: a descriptor meshctl rewrites (a new release, a deprecation) is
    invalidated at the rescan, so a plain stat (no listing, no read, which
    would each refresh it anyway) gives its new size, and a walk and a read
    all of its new bytes, for every user; with the snapshot from this
    host's index (products loaded on demand) and from a walk."""
    if source == "index":
        mesh.ctl("list", check=True)     # builds this host's index
    m = mounter(mesh)
    path = m / "sales/orders/product.yaml"

    def size(user="mesh_dave"):
        return int(run(["stat", "-c", "%s", path], user=user, check=True).stdout)
    before = size()
    mesh.publish(make_release(scratch / "rel2", "sales", "orders", "1.1.0", {"orders.csv": ORDERS}))
    mesh.ctl("deprecate", "sales/orders", "1.0.0", "--reason", "use 1.1", check=True)
    assert wait_for(lambda: size() != before, timeout=10), before
    if source == "index":
        assert "from this host's index" in m.read_log(), m.read_log()
    for user in ("mesh_dave", "mesh_bob"):
        body = run(["cat", path], user=user, check=True).stdout
        assert size(user) == len(body.encode()), user
        assert "1.1.0" in body and "deprecated" in body, body
        line = [l for l in walks(m / "sales/orders", user)["stat"].splitlines() if l.split(" ")[0] == str(path)]
        assert int(line[0].rsplit(" ", 1)[1]) == len(body.encode()), (user, line)
