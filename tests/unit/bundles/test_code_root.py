"""An upload needs its code: each deployment's bundle is its code root (manifests/coderoot.py), and an upload
whose entrypoint is found nowhere fails, naming the manifest's `entrypoint:` line, before any file is read."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from reconciler.bundles import collect
from reconciler.engine import desired
from reconciler.errors import ManifestErrors
from reconciler.manifests import manifest
from reconciler.manifests.blocks import BlockRef
from reconciler.manifests.configmodel import Config

def write(path: Path, text: str = "from prefect import flow\n\n\n@flow\ndef etl():\n    pass\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def manifest_at(path: Path, entrypoint: str) -> manifest.Manifest:
    write(path, "name: nightly\nwork_queue_name: default\n###\n### DO NOT EDIT BELOW THIS LINE\n###\n"
                f"flow_name: etl\npath: null\nentrypoint: {entrypoint}\n")
    return manifest.parse(path.read_bytes(), path, path.name)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    return (tmp_path / "repo").resolve()


def test_desired_carries_the_code_root_and_the_problem(repo):
    write(repo / "flows" / "etl.py")
    [ok] = desired.resolve([manifest_at(repo / "deployments" / "a-deployment.yaml", "flows/etl.py:etl")])
    [lost] = desired.resolve([manifest_at(repo / "deployments" / "b-deployment.yaml", "flows/gone.py:etl")])
    assert ok.bundle_dir == str(repo) and ok.code_problem is None
    assert lost.bundle_dir == str(repo / "deployments") and "gone.py" in (lost.code_problem or "")


def test_an_upload_whose_entrypoint_is_nowhere_fails_before_any_file_is_read(repo):
    [lost] = desired.resolve([manifest_at(repo / "deployments" / "b-deployment.yaml", "flows/gone.py:etl")])
    uploading = replace(lost, storage=BlockRef("local-file-system", "prod"))
    with pytest.raises(ManifestErrors) as info:
        collect.collect_all(repo / "deployments", Config(), [uploading])
    assert [str(e) for e in info.value.errors] == [lost.code_problem]
    assert not (repo / ".reconcile").exists()                          # nothing hashed, no cache written
    # storage that takes no upload (none, or a git repository) does not need the code here
    assert collect.collect_all(repo / "deployments", Config(), [lost]) == {}
    github = replace(lost, storage=BlockRef("github", "repo"))
    assert collect.collect_all(repo / "deployments", Config(), [github]) == {}


def test_the_bundle_of_a_manifest_in_a_subfolder_is_the_code_root(repo):
    write(repo / "flows" / "etl.py")
    write(repo / "README.md", "# flows\n")
    [want] = desired.resolve([manifest_at(repo / "deployments" / "etl-deployment.yaml", "flows/etl.py:etl")])
    bundles = collect.collect_all(repo / "deployments", Config(), [replace(want, storage=BlockRef("s3", "prod"))])
    bundle = bundles[want.identity]
    assert bundle.root == repo
    assert sorted(f.path for f in bundle.files) == ["README.md", "deployments/etl-deployment.yaml", "flows/etl.py"]


def test_runtime_root_maps_the_code_root(repo):
    write(repo / "flows" / "etl.py")
    [want] = desired.resolve([manifest_at(repo / "team" / "deployments" / "etl-deployment.yaml",
                                          "flows/etl.py:etl")])
    assert want.bundle_dir == str(repo)
    assert collect.runtime_path(want, repo, "/opt/flows") == "/opt/flows"
    # the code root above the source's directory maps to runtime_root itself
    assert collect.runtime_path(want, repo / "team", "/opt/flows") == "/opt/flows"
