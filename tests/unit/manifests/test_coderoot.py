"""coderoot.locate: the directory a manifest's entrypoint is relative to, as Prefect resolves it.

Real directories and files in tmp_path (a `.git` folder marks the repository's root); the manifests are
parsed by the real loader, so the errors name the file and the line of `entrypoint:`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import pytest

from reconciler.manifests import coderoot, manifest

FLOW = "from prefect import flow\n\n\n@flow\ndef etl():\n    pass\n"


def write(path: Path, text: str = FLOW) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def manifest_at(path: Path, entrypoint: Optional[str]) -> manifest.Manifest:
    text = ("name: nightly\nwork_queue_name: default\n###\n### DO NOT EDIT BELOW THIS LINE\n###\n"
            "flow_name: etl\npath: null\n" + (f"entrypoint: {entrypoint}\n" if entrypoint is not None else ""))
    write(path, text)
    return manifest.parse(path.read_bytes(), path, path.name)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    return (tmp_path / "repo").resolve()


def test_a_manifest_next_to_its_code_keeps_its_own_directory(repo):
    write(repo / "flows" / "etl.py")
    write(repo / "etl.py")                       # a file of the same name higher up does not win
    found = coderoot.locate(manifest_at(repo / "flows" / "etl-deployment.yaml", "etl.py:etl"))
    assert found.directory == repo / "flows" and found.flow_file == repo / "flows" / "etl.py"
    assert found.problem is None


def test_a_manifest_in_a_subfolder_has_the_repository_root_as_its_code_root(repo):
    write(repo / "flows" / "etl.py")
    found = coderoot.locate(manifest_at(repo / "deployments" / "etl-deployment.yaml", "flows/etl.py:etl"))
    assert found.directory == repo and found.flow_file == repo / "flows" / "etl.py"


def test_the_nearest_directory_holding_the_entrypoint_wins(repo):
    # built from team/ (`prefect deployment build flows/etl.py:etl -o deploy/prod/etl-deployment.yaml`)
    write(repo / "team" / "flows" / "etl.py")
    write(repo / "flows" / "etl.py")
    found = coderoot.locate(manifest_at(repo / "team" / "deploy" / "prod" / "etl-deployment.yaml",
                                        "flows/etl.py:etl"))
    assert found.directory == repo / "team"


def test_the_search_stops_at_the_repository_root(repo):
    write(repo.parent / "flows" / "etl.py")      # beside the repository, not in it
    found = coderoot.locate(manifest_at(repo / "deployments" / "etl-deployment.yaml", "flows/etl.py:etl"))
    assert not found.found and found.directory == repo / "deployments"


def test_an_entrypoint_found_nowhere_is_one_line_naming_the_entrypoint_line(repo, monkeypatch):
    monkeypatch.chdir(repo)
    found = coderoot.locate(manifest_at(repo / "deployments" / "etl-deployment.yaml", "flows/etl.py:etl"))
    assert not found.found and found.directory == repo / "deployments"   # as before: the manifest's own
    assert found.problem is not None and "\n" not in found.problem
    assert found.problem.startswith("etl-deployment.yaml:8:")           # entrypoint: is line 8
    assert "'flows/etl.py:etl'" in found.problem and "no file flows/etl.py in deployments/" in found.problem


def test_a_flow_file_linked_from_outside_the_repository_is_refused(repo, tmp_path):
    write(tmp_path / "elsewhere" / "etl.py")
    (repo / "flows").mkdir()
    os.symlink(tmp_path / "elsewhere" / "etl.py", repo / "flows" / "etl.py")
    found = coderoot.locate(manifest_at(repo / "deployments" / "etl-deployment.yaml", "flows/etl.py:etl"))
    assert not found.found
    assert "leaves the repository" in (found.problem or "") and "through a symlink" in (found.problem or "")


def test_a_directory_linked_from_outside_the_repository_is_refused(repo, tmp_path):
    write(tmp_path / "elsewhere" / "etl.py")
    os.symlink(tmp_path / "elsewhere", repo / "flows")
    found = coderoot.locate(manifest_at(repo / "deployments" / "etl-deployment.yaml", "flows/etl.py:etl"))
    assert not found.found and "leaves the repository" in (found.problem or "")


@pytest.mark.parametrize("entrypoint, says", [
    ("../flows/etl.py:etl", "climbs out"),
    ("/srv/flows/etl.py:etl", "absolute path"),
])
def test_entrypoints_that_cannot_be_inside_the_code_are_problems(repo, entrypoint, says):
    write(repo / "flows" / "etl.py")
    found = coderoot.locate(manifest_at(repo / "deployments" / "etl-deployment.yaml", entrypoint))
    assert not found.found and says in (found.problem or "")


@pytest.mark.parametrize("entrypoint", [None, "flows.etl.etl"])
def test_an_entrypoint_naming_no_file_keeps_the_manifests_directory_without_a_problem(repo, entrypoint):
    # Prefect 2.0 wrote `manifest_path` and no entrypoint; a module path names no file to look for
    found = coderoot.locate(manifest_at(repo / "deployments" / "etl-deployment.yaml", entrypoint))
    assert (found.directory, found.found, found.problem) == (repo / "deployments", False, None)


def test_bundle_root_overrides_the_search(repo):
    write(repo / "flows" / "etl.py")
    write(repo / "src" / "flows" / "etl.py")
    found = coderoot.locate(manifest_at(repo / "deployments" / "etl-deployment.yaml", "flows/etl.py:etl"),
                            override=repo / "src")
    assert found.directory == repo / "src" and found.flow_file == repo / "src" / "flows" / "etl.py"


def test_bundle_root_without_the_entrypoint_is_a_problem_not_a_search(repo):
    write(repo / "flows" / "etl.py")
    (repo / "src").mkdir()
    found = coderoot.locate(manifest_at(repo / "deployments" / "etl-deployment.yaml", "flows/etl.py:etl"),
                            override=repo / "src")
    assert not found.found and found.directory == repo / "src" and "(bundle_root)" in (found.problem or "")


def test_without_a_repository_only_the_manifests_directory_is_searched(tmp_path):
    write(tmp_path / "flows" / "etl.py")
    found = coderoot.locate(manifest_at(tmp_path / "deployments" / "etl-deployment.yaml", "flows/etl.py:etl"))
    assert not found.found
