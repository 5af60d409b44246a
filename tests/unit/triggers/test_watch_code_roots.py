"""watch sees the code too: a manifest in deployments/ whose entrypoint is flows/etl.py at the repository's
root makes watch look at the repository's root as well (hidden and tool directories still do not count)."""
from __future__ import annotations

from pathlib import Path

from watchfiles import Change

from reconciler.engine import run as engine
from reconciler.triggers import watch

MANIFEST = ("name: nightly\nwork_queue_name: default\n###\n### DO NOT EDIT BELOW THIS LINE\n###\n"
            "flow_name: etl\npath: null\nentrypoint: flows/etl.py:etl\n")


def layout(tmp_path: Path) -> Path:
    repo = (tmp_path / "repo").resolve()
    (repo / ".git").mkdir(parents=True)
    (repo / "flows").mkdir()
    (repo / "flows" / "etl.py").write_text("from prefect import flow\n\n\n@flow\ndef etl():\n    pass\n")
    (repo / "deployments").mkdir()
    (repo / "deployments" / "etl-deployment.yaml").write_text(MANIFEST)
    return repo


def test_the_code_roots_of_a_directory_are_where_its_entrypoints_are(tmp_path):
    repo = layout(tmp_path)
    assert engine.code_roots(repo / "deployments") == [repo]
    (repo / "deployments" / "etl-deployment.yaml").write_text("name: [\n")     # broken: nothing to add
    assert engine.code_roots(repo / "deployments") == []


def test_only_code_roots_outside_the_directory_are_added_outermost_first(tmp_path):
    repo = layout(tmp_path)
    root = repo / "deployments"
    assert watch.outside(root, [repo]) == (repo,)
    assert watch.outside(root, [root, root / "sub"]) == ()
    assert watch.outside(root, [repo / "a" / "b", repo / "a", repo / "c"]) == (repo / "a", repo / "c")


def test_a_change_to_the_flow_code_is_relevant_and_git_is_not(tmp_path, monkeypatch):
    repo = layout(tmp_path)
    monkeypatch.chdir(repo)
    roots = (repo / "deployments", repo)
    assert watch.relevant_in(roots, str(repo / "flows" / "etl.py"))
    assert watch.relevant_in(roots, str(repo / "deployments" / "etl-deployment.yaml"))
    for rel in (".git/index", ".reconcile/hash-cache.json", "flows/__pycache__/etl.cpython-311.pyc",
                "flows/etl.py~"):
        assert not watch.relevant_in(roots, str(repo / rel)), rel
    known = watch.scan(repo / "deployments", (repo,))
    assert str(repo / "flows" / "etl.py") in known and not any("/.git/" in k for k in known)
    batch = {(Change.modified, str(repo / "flows" / "etl.py")), (Change.modified, str(repo / ".git" / "index"))}
    assert watch.describe(repo / "deployments", batch, known, (repo,)) == ["flows/etl.py (modified)"]
