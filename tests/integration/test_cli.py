"""meshctl as scripts and shells use it (issue 10's machine interfaces):
bash completion of commands, options and the caller's products."""
import os
import pathlib
import shutil
import tempfile

from conftest import BUILD, REPO, make_release, run

COMPLETION = REPO / "mounts" / "completion" / "meshctl.bash"


def complete(words, user=None, store=None):
    """COMPREPLY of the completion function for the command line `words`
    (the last word is the one being completed).  The script and meshctl are
    run from a copy other users can reach: a checkout under /root is closed
    to them (a fresh Debian's /root is 0700).  setpriv starts a program
    there all the same (the exec's path walk still has root's
    capabilities), but the shell's PATH search as the user does not find
    it, so an outsider's completion came back empty on a fresh machine."""
    line = " ".join(words)
    copy = pathlib.Path(tempfile.mkdtemp(prefix="completion-", dir="/var/tmp")) / "meshctl.bash"
    copy.write_text(COMPLETION.read_text())
    copy.parent.chmod(0o755)
    copy.chmod(0o644)
    shutil.copy(BUILD / "meshctl", copy.parent / "meshctl")
    (copy.parent / "meshctl").chmod(0o755)
    script = (f"source {copy}; COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; "
              "_meshctl; printf '%s\\n' \"${COMPREPLY[@]}\"")
    env = {"PATH": f"{copy.parent}:{os.environ['PATH']}"}
    if store:
        env["MESH_STORE"] = str(store)
    r = run(["bash", "-c", script], user=user, env=env, cwd="/")
    shutil.rmtree(copy.parent, ignore_errors=True)
    assert r.returncode == 0, r.stderr
    return sorted(w for w in r.stdout.split("\n") if w)


def test_bash_completion(store, scratch):
    store.create_domain("sales", "group:mesh_sales")
    store.publish(make_release(scratch / "rel", "sales", "orders", "1.0.0"))
    store.publish(make_release(scratch / "rel", "sales", "secret", "1.0.0",
                               extra="customProperties:\n  - property: meshRestricted\n    value: true\n"))
    assert complete(["meshctl", "pub"]) == ["publish"]
    assert "deprecate" in complete(["meshctl", "''"])
    assert complete(["meshctl", "deprecate", "--s"]) == ["--sunset"]
    assert complete(["meshctl", "--store", str(store.path), "list", "sales/"]) == ["sales/orders", "sales/secret"]
    store.ensure_service()
    # an outsider completes only what they may see (`meshctl list` through the service)
    assert complete(["meshctl", "list", "sales/"], user="mesh_dave", store=store.path) == ["sales/orders"]
    assert complete(["meshctl", "show", "sa"], user="mesh_dave", store=store.path) == ["sales", "sales/orders"]


def test_man_page_says_what_help_says(tmp_path):
    """mounts/man/meshctl.1 is generated from --help: regenerate it with
    `mounts/man/gen-meshctl-man.py build/meshctl mounts/man/meshctl.1`."""
    out = tmp_path / "meshctl.1"
    r = run(["/usr/bin/python3", REPO / "mounts/man/gen-meshctl-man.py", BUILD / "meshctl", out])
    assert r.returncode == 0, r.stderr
    assert out.read_text() == (REPO / "mounts/man/meshctl.1").read_text(), \
        "meshctl.1 is stale: run mounts/man/gen-meshctl-man.py build/meshctl mounts/man/meshctl.1"
    for section in ("OPTIONS", "COMMANDS", "ENVIRONMENT", "FILES", "EXIT STATUS", "EXAMPLES"):
        assert f".SH {section}" in out.read_text()
