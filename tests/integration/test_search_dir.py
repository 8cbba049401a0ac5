"""/mesh/.search (issue 11): the search answered by the mount for the
calling user, entries as symlinks, never cached across users; a README;
ls /mesh stays clean."""
import os

import pytest

from conftest import make_release, run


@pytest.fixture
def mesh(store, scratch):
    store.create_domain("crm", "group:mesh_sales")
    store.create_domain("hr", "user:mesh_erin")
    rel = scratch / "rel"
    for product in ("churn", "customers", "contracts"):
        d = make_release(rel, "crm", product, "1.0.0")
        text = (d / "contract.yaml").read_text().replace(
            f"purpose: Test product {product} of domain crm",
            "purpose: Customers likely to churn" if product == "churn" else f"purpose: All {product} of the shop")
        (d / "contract.yaml").write_text(text)
        store.publish(d)
    d = make_release(rel, "hr", "attrition", "1.0.0",
                     extra="customProperties:\n  - property: meshRestricted\n    value: true\n")
    (d / "contract.yaml").write_text((d / "contract.yaml").read_text().replace(
        "purpose: Test product attrition of domain hr", "purpose: Employees who churn"))
    store.publish(d)
    store.ctl("reindex", check=True)
    return store


def ls(path, user):
    r = run(["ls", "-1", path], user=user)
    return r.stdout.split() if r.returncode == 0 else r.stderr


def test_search_directory_per_user(mesh, mounter):
    m = mounter(mesh)
    assert ".search" not in os.listdir(m.path)           # ls /mesh stays clean
    assert ls(m / ".search/churn", "mesh_dave") == ["crm.churn"]
    # the same path, another user: the restricted product appears only for its owner
    assert sorted(ls(m / ".search/churn", "mesh_erin")) == ["crm.churn", "hr.attrition"]
    assert ls(m / ".search/churn", "mesh_dave") == ["crm.churn"]     # and not cached from erin's answer
    link = m / ".search/churn/crm.churn"
    assert run(["readlink", link], user="mesh_dave", check=True).stdout.strip() == "../../crm/churn"
    assert "1.0.0" in ls(str(link) + "/", "mesh_dave")               # follows into the product
    assert run(["cat", m / ".search/churn/hr.attrition/1.0.0/contract.yaml"], user="mesh_dave").returncode != 0
    # spaces, prefixes, nothing found
    assert ls(m / ".search/all of the shop", "mesh_dave") == ["crm.contracts", "crm.customers"] or \
        sorted(ls(m / ".search/all of the shop", "mesh_dave")) == ["crm.contracts", "crm.customers"]
    assert sorted(ls(m / ".search/cust*", "mesh_dave")) == ["crm.churn", "crm.customers"]
    assert ls(m / ".search/nothingmatches", "mesh_dave") == []
    readme = run(["cat", m / ".search/README"], user="mesh_dave", check=True).stdout
    assert "ls /mesh/.search/churn/" in readme
    assert ls(m / ".search", "mesh_dave") == ["README"]
    assert run(["touch", m / ".search/churn/x"], user="mesh_dave").returncode != 0


def test_search_follows_publishes(mesh, mounter, scratch):
    m = mounter(mesh)
    assert ls(m / ".search/loyalty", "mesh_dave") == []
    d = make_release(scratch / "rel2", "crm", "loyalty", "1.0.0")
    mesh.publish(d)
    assert ls(m / ".search/loyalty", "mesh_dave") == ["crm.loyalty"]
