"""Uploads through the Python API, in this process, to fsspec's memory:// filesystem.

The storage is a real remote-file-system block on the server whose basepath is `memory://…`;
the memory filesystem is process-wide, so what reconcile wrote can be read back here. A crash
between the files and the marker is simulated by making `reconciler.bundles.transfer.write_marker` raise
when it is about to write the final (complete) marker of the new bundle.
"""
from __future__ import annotations

import json

import fsspec
import pytest

import reconciler.bundles.transfer
from reconciler import apply, plan
from integration.helpers import Server
from integration.upload_support import (
    MARKER_NAME, Project, block_ref, bundle_files, make_block, many_files, upload_manifest,
)

SLUG = "remote-file-system"


@pytest.fixture
def server(prefect_api_url):
    with Server(prefect_api_url) as srv:
        yield srv


def crash_before_the_final_marker(monkeypatch, digest: str) -> None:
    """Make the upload die right before it writes the marker for bundle `digest` (after every file).

    Other marker writes (an implementation may mark an upload as in progress first) go through.
    """
    real = reconciler.bundles.transfer.write_marker

    def write_marker(fs, root, marker):
        if marker.digest == digest and getattr(marker, "complete", True):
            raise OSError("simulated crash before the marker")
        return real(fs, root, marker)

    monkeypatch.setattr(reconciler.bundles.transfer, "write_marker", write_marker)


@pytest.fixture
def memory_root(unique):
    fs = fsspec.filesystem("memory")
    root = f"/it-mem-{unique}"
    yield root
    if fs.exists(root):
        fs.rm(root, recursive=True)


def test_a_crash_before_the_marker_fails_the_upload_and_its_deployments_and_the_next_apply_converges(
        server, prefect_api_url, tmp_path, unique, memory_root, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fs = fsspec.filesystem("memory")
    project = Project(prefect_api_url, tmp_path, unique, "up-mem")
    basepath = f"memory://{memory_root.lstrip('/')}/bundles"
    block = make_block(server, SLUG, f"it-mem-{unique}", {"basepath": basepath, "settings": {}})
    location = f"{memory_root}/bundles/code"
    storage = block_ref(block, SLUG, basepath=basepath)
    kwargs = {"api_url": prefect_api_url, "source": project.source}

    def stored() -> dict[str, bytes]:
        return {path[len(location) + 1:]: fs.cat_file(path) for path in fs.find(location)}

    def marker() -> dict:
        return json.loads(fs.cat_file(f"{location}/{MARKER_NAME}"))

    # 1. a first upload, and a plan that then has nothing to do
    project.write(many_files(8))
    project.add_manifest(upload_manifest(project.flow, "first", storage, "code"))
    first_plan = plan(project.root, **kwargs)
    assert [len(u.write) for u in first_plan.uploads] == [len(bundle_files(project.root))]
    first = apply(project.root, **kwargs)
    assert first.exit_code == 0, first.to_json()
    assert set(stored()) == set(bundle_files(project.root)) | {MARKER_NAME}
    converged = plan(project.root, **kwargs)
    assert converged.uploads == () and not converged.has_changes

    # 2. a changed file and a new deployment; the upload dies after the files, before the marker
    changed = "pkg/part3/mod_003.py"
    (project.root / changed).write_text("NEW = 3\n", encoding="utf-8")
    project.add_manifest(upload_manifest(project.flow, "second", storage, "code"))

    [pending] = plan(project.root, **kwargs).uploads
    crash_before_the_final_marker(monkeypatch, pending.digest)
    report = apply(project.root, **kwargs)
    assert report.exit_code == 1, report.to_json()
    failed = {(r.action, r.identity): r.message for r in report.failures}
    upload_failures = [message for (action, _), message in failed.items() if action == "upload"]
    assert len(upload_failures) == 1 and "simulated crash" in upload_failures[0], failed
    assert ("create", f"{project.flow}/second") in failed, failed
    assert "upload" in failed[("create", f"{project.flow}/second")]
    assert server.deployment(project.flow, "second") is None, "a deployment was created for code that failed to upload"
    assert server.deployment(project.flow, "first") is not None
    assert stored()[changed] == b"NEW = 3\n"           # the files went up ...
    assert marker()["bundle"] != pending.digest         # ... no marker claims the new bundle

    # 3. the next plan still shows the upload (and the create); the next apply converges
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    again = plan(project.root, **kwargs)
    assert len(again.uploads) == 1
    assert {changed, "second-deployment.yaml"} <= set(again.uploads[0].write)
    assert [a.action for a in again.actions if a.identity == f"{project.flow}/second"] == ["create"]
    healed = apply(project.root, **kwargs)
    assert healed.exit_code == 0, healed.to_json()
    assert server.deployment(project.flow, "second") is not None
    assert set(marker()["files"]) == set(bundle_files(project.root))
    assert marker()["bundle"] == again.uploads[0].digest
    assert {k: v for k, v in stored().items() if k != MARKER_NAME} == {
        rel: (project.root / rel).read_bytes() for rel in bundle_files(project.root)}
    final = plan(project.root, **kwargs)
    assert not final.has_changes, final.to_json()


def test_after_a_crash_before_the_marker_reverting_the_code_still_uploads_it_again(
        server, prefect_api_url, tmp_path, unique, memory_root, monkeypatch):
    """The crash left new files under the old marker; going back to the old code must not read as 'in sync'."""
    monkeypatch.chdir(tmp_path)
    fs = fsspec.filesystem("memory")
    project = Project(prefect_api_url, tmp_path, unique, "up-mem")
    basepath = f"memory://{memory_root.lstrip('/')}/bundles"
    block = make_block(server, SLUG, f"it-mem-{unique}", {"basepath": basepath, "settings": {}})
    location = f"{memory_root}/bundles/code"
    kwargs = {"api_url": prefect_api_url, "source": project.source}
    project.write(many_files(4))
    project.add_manifest(upload_manifest(project.flow, "only", block_ref(block, SLUG, basepath=basepath), "code"))
    assert apply(project.root, **kwargs).exit_code == 0
    module = "pkg/part1/mod_001.py"
    original = (project.root / module).read_bytes()

    (project.root / module).write_text("BROKEN = True\n", encoding="utf-8")

    [pending] = plan(project.root, **kwargs).uploads
    with monkeypatch.context() as patch:
        crash_before_the_final_marker(patch, pending.digest)
        assert apply(project.root, **kwargs).exit_code == 1
    assert fs.cat_file(f"{location}/{module}") == b"BROKEN = True\n"   # the crash left the new file there

    (project.root / module).write_bytes(original)                      # e.g. `git revert` of the bad change
    after = plan(project.root, **kwargs)
    assert len(after.uploads) == 1 and module in after.uploads[0].write, (
        "the storage holds code its marker does not describe, yet the plan shows no upload")
    assert apply(project.root, **kwargs).exit_code == 0
    assert fs.cat_file(f"{location}/{module}") == original


@pytest.mark.parametrize("first_upload", [False, True], ids=["after-an-upload", "first-upload"])
def test_a_file_added_by_a_crashed_upload_is_removed_once_the_code_no_longer_has_it(
        server, prefect_api_url, tmp_path, unique, memory_root, monkeypatch, first_upload):
    """The crashed upload wrote `added.py`; the code then drops it again: storage must not keep it."""
    monkeypatch.chdir(tmp_path)
    fs = fsspec.filesystem("memory")
    project = Project(prefect_api_url, tmp_path, unique, "up-mem")
    basepath = f"memory://{memory_root.lstrip('/')}/bundles"
    block = make_block(server, SLUG, f"it-mem-{unique}", {"basepath": basepath, "settings": {}})
    location = f"{memory_root}/bundles/code"
    kwargs = {"api_url": prefect_api_url, "source": project.source}
    project.write(many_files(4))
    project.add_manifest(upload_manifest(project.flow, "only", block_ref(block, SLUG, basepath=basepath), "code"))
    if not first_upload:
        assert apply(project.root, **kwargs).exit_code == 0

    (project.root / "added.py").write_text("import os\n", encoding="utf-8")
    [pending] = plan(project.root, **kwargs).uploads
    assert "added.py" in pending.write
    with monkeypatch.context() as patch:
        crash_before_the_final_marker(patch, pending.digest)
        assert apply(project.root, **kwargs).exit_code == 1
    assert fs.exists(f"{location}/added.py")           # the crash left it there

    (project.root / "added.py").unlink()
    assert apply(project.root, **kwargs).exit_code == 0
    stored = {path[len(location) + 1:] for path in fs.find(location)}
    assert stored == set(bundle_files(project.root)) | {MARKER_NAME}, (
        f"left at the storage though the code no longer has it: "
        f"{sorted(stored - set(bundle_files(project.root)) - {MARKER_NAME})}")
    assert not plan(project.root, **kwargs).has_changes
