"""Code uploads to a real local-file-system storage block (basepath in tmp_path), through the CLI.

Checked at the storage side, not only in reconcile's output: which files landed there, their
contents, and (for the incremental cases) which files were written at all, by their mtime_ns
and inode before and after.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from integration.helpers import Server, reconcile
from integration.upload_support import (
    MARKER_NAME, Project, block_ref, bundle_files, deployment_writes, file_mtimes, human_size, make_block,
    many_files, parse_upload_line, read_marker, shown, stat_snapshot, stored_files, upload_actions, upload_lines,
    upload_manifest,
)

SLUG = "local-file-system"


@pytest.fixture
def server(prefect_api_url):
    with Server(prefect_api_url) as srv:
        yield srv


class Local(Project):
    """A project whose deployments upload to a local-file-system block with its basepath in tmp_path."""

    def __init__(self, server: Server, api_url: str, tmp_path: Path, unique: str, path: str = "code") -> None:
        super().__init__(api_url, tmp_path, unique, "up-local")
        self.basepath = tmp_path / "storage"
        self.block = make_block(server, SLUG, f"it-local-{unique}", {"basepath": str(self.basepath)})
        self.path = path

    @property
    def location(self) -> Path:
        return self.basepath / self.path

    @property
    def storage_key(self) -> str:
        return f"{SLUG}/{self.block['name']}"

    def deployment(self, name: str, **overrides) -> Path:
        storage = block_ref(self.block, SLUG, basepath=str(self.basepath))
        return self.add_manifest(upload_manifest(self.flow, name, storage, self.path, **overrides))

    def stored(self) -> dict[str, bytes]:
        """What is at the location, without the marker."""
        return {k: v for k, v in stored_files(self.location).items() if k != MARKER_NAME}

    def marker(self) -> dict:
        return read_marker((self.location / MARKER_NAME).read_bytes())


@pytest.fixture
def project(server, prefect_api_url, tmp_path, unique) -> Local:
    return Local(server, prefect_api_url, tmp_path, unique)


def _local_contents(root: Path) -> dict[str, bytes]:
    return {rel: (root / rel).read_bytes() for rel in bundle_files(root)}


def _uploaded(project: Local, files: dict[str, str]) -> None:
    """The project with these files and one deployment, applied once (the starting point)."""
    project.write(files)
    project.deployment("main")
    run = project.apply()
    assert run.returncode == 0, run
    assert project.stored() == _local_contents(project.root)


def test_many_files_are_uploaded_once_and_a_converged_apply_touches_nothing(project, server):
    project.write(many_files(60))
    project.deployment("main")
    local = bundle_files(project.root)           # 60 modules + the manifest itself + its flow file
    assert len(local) == 62
    total = sum(local.values())

    plan = project.plan()
    assert plan.returncode == 0, plan
    lines = upload_lines(plan.stdout)
    assert len(lines) == 1, plan
    shown = parse_upload_line(lines[0])
    assert shown["storage"] == project.storage_key
    assert shown["path"] == project.path
    assert shown["details"] == f"62 files changed, {human_size(total)}", plan
    assert "1 bundle to upload" in plan.stdout, plan

    [action] = upload_actions(project.plan_json())
    assert (action["files_changed"], action["files_removed"], action["bytes"]) == (62, 0, total)
    assert action["deployments"] == [f"{project.flow}/main"]
    assert not project.basepath.exists(), "plan wrote to the storage"

    applied = project.apply()
    assert applied.returncode == 0, applied
    assert project.stored() == _local_contents(project.root)
    marker = project.marker()
    assert set(marker["files"]) == set(local)
    for rel, entry in marker["files"].items():
        assert entry["sha256"] == hashlib.sha256((project.root / rel).read_bytes()).hexdigest(), rel
        assert entry["size"] == local[rel]
    dep = server.deployment(project.flow, "main")
    assert dep is not None
    assert dep["storage_document_id"] == project.block["id"]
    assert dep["path"] == project.path

    again = project.plan("--detailed-exitcode")
    assert again.returncode == 0, again
    assert upload_lines(again.stdout) == [], again
    assert "No changes." in again.stdout, again

    before = stat_snapshot(project.location)
    second = project.apply("-v")
    assert second.returncode == 0, second
    assert any(r.path.endswith("/deployments/filter") for r in second.requests), second  # -v did log
    assert second.writes == [], f"a converged apply wrote:\n{second}"
    assert "No changes." in second.stdout, second
    assert stat_snapshot(project.location) == before, "a converged apply touched the storage"


def test_one_changed_file_is_the_only_file_written_besides_the_marker(project):
    _uploaded(project, many_files(20))
    changed = "pkg/part1/mod_001.py"
    assert (project.root / changed).is_file()
    (project.root / changed).write_text("# edited\nVALUE = 'new'\n", encoding="utf-8")
    new_size = (project.root / changed).stat().st_size

    plan = project.plan()
    assert plan.returncode == 0, plan
    [line] = upload_lines(plan.stdout)
    assert parse_upload_line(line)["details"] == f"1 file changed, {human_size(new_size)}", plan
    [action] = upload_actions(project.plan_json())
    assert (action["write"], action["remove"], action["bytes"]) == ([changed], [], new_size)

    before = file_mtimes(project.location)
    applied = project.apply("-v")
    assert applied.returncode == 0, applied
    assert deployment_writes(applied) == [], f"a code change rewrote the deployment:\n{applied}"
    after = file_mtimes(project.location)
    assert set(after) == set(before)
    written = {rel for rel in after if after[rel] != before[rel]}
    assert written == {changed, MARKER_NAME}, f"files written: {sorted(written)}"
    assert (project.location / changed).read_text(encoding="utf-8") == "# edited\nVALUE = 'new'\n"
    assert project.marker()["files"][changed]["size"] == new_size

    settled = project.plan("--detailed-exitcode")
    assert settled.returncode == 0, settled
    assert upload_lines(settled.stdout) == []


def test_a_removed_file_is_removed_from_storage(project):
    files = many_files(10)
    files["pkg/obsolete.py"] = "OLD = True\n"
    _uploaded(project, files)
    assert (project.location / "pkg/obsolete.py").is_file()
    (project.root / "pkg/obsolete.py").unlink()

    plan = project.plan()
    assert plan.returncode == 0, plan
    [line] = upload_lines(plan.stdout)
    assert parse_upload_line(line)["details"] == "0 files changed, 1 removed, 0 B", plan
    [action] = upload_actions(project.plan_json())
    assert (action["write"], action["remove"]) == ([], ["pkg/obsolete.py"])

    before = file_mtimes(project.location)
    applied = project.apply()
    assert applied.returncode == 0, applied
    assert not (project.location / "pkg/obsolete.py").exists()
    assert "pkg/obsolete.py" not in project.marker()["files"]
    assert project.stored() == _local_contents(project.root)
    after = file_mtimes(project.location)
    assert {rel for rel in after if after[rel] != before[rel]} == {MARKER_NAME}

    settled = project.plan("--detailed-exitcode")
    assert settled.returncode == 0, settled


def test_prefectignore_with_negation_decides_what_lands_in_storage(project):
    project.write({
        "flow.py": "from prefect import flow\n",
        ".prefectignore": "# logs, except the important one\n*.log\n!important.log\n"
                          "build/\nsecrets/*\n!secrets/README.md\n",
        "debug.log": "noise\n",
        "logs/trace.log": "noise\n",
        "logs/important.log": "keep me\n",
        "build/out.bin": b"\x00\x01",
        "secrets/dev.txt": "password\n",
        "secrets/README.md": "how to get the secrets\n",
        # Prefect 2's default ignore list applies as well
        "__pycache__/flow.cpython-311.pyc": b"\x00",
        ".venv/lib/site.py": "x = 1\n",
        ".env": "TOKEN=1\n",
    })
    project.deployment("main")
    expected = {"flow.py", "logs/important.log", "secrets/README.md", "main-deployment.yaml"}

    [action] = upload_actions(project.plan_json())
    assert set(action["write"]) - {".prefectignore"} == expected, action["write"]

    applied = project.apply()
    assert applied.returncode == 0, applied
    landed = set(project.stored()) - {".prefectignore"}
    assert landed == expected
    assert set(project.marker()["files"]) - {".prefectignore"} == expected


def test_two_deployments_sharing_one_location_upload_once(project, server):
    project.write(many_files(5))
    project.deployment("one")
    project.deployment("two", tags=["it", "second"])
    local = bundle_files(project.root)

    plan = project.plan()
    assert plan.returncode == 0, plan
    assert len(upload_lines(plan.stdout)) == 1, plan
    assert "1 bundle to upload" in plan.stdout, plan
    [action] = upload_actions(project.plan_json())
    assert action["deployments"] == [f"{project.flow}/one", f"{project.flow}/two"]
    assert action["files_changed"] == len(local)

    applied = project.apply()
    assert applied.returncode == 0, applied
    assert len([l for l in applied.stdout.splitlines() if l.lstrip().startswith("✓ upload")]) == 1, applied
    assert project.stored() == _local_contents(project.root)
    deps = server.deployments(project.flow)
    assert set(deps) == {"one", "two"}
    for dep in deps.values():
        assert (dep["storage_document_id"], dep["path"]) == (project.block["id"], project.path)


def test_the_executable_bit_is_part_of_the_bundle(project):
    _uploaded(project, {"bin/run.sh": "#!/bin/sh\necho hi\n", **many_files(3)})
    script = project.location / "bin/run.sh"
    assert not script.stat().st_mode & 0o100
    (project.root / "bin/run.sh").chmod(0o755)

    [action] = upload_actions(project.plan_json())
    assert (action["write"], action["remove"]) == (["bin/run.sh"], [])
    applied = project.apply()
    assert applied.returncode == 0, applied
    assert script.stat().st_mode & 0o100, oct(script.stat().st_mode)
    assert project.marker()["files"]["bin/run.sh"]["exec"] is True
    settled = project.plan("--detailed-exitcode")
    assert settled.returncode == 0, settled


def test_a_saved_plan_uploads_exactly_what_it_showed(project, server, tmp_path):
    project.write(many_files(6))
    project.deployment("main")
    saved = tmp_path / "plan.json"
    planned = project.plan("--out", saved)
    assert planned.returncode == 0, planned
    assert not project.basepath.exists(), "plan --out wrote to the storage"

    applied = shown(reconcile(project.api_url, "apply", saved, cwd=tmp_path))
    assert applied.returncode == 0, applied
    assert project.stored() == _local_contents(project.root)
    assert project.marker()["bundle"] == upload_actions(json.loads(saved.read_text()))[0]["digest"]
    assert server.deployment(project.flow, "main") is not None


def test_a_saved_plan_is_refused_when_the_code_changed_after_it_was_made(project, server, tmp_path):
    _uploaded(project, many_files(6))
    (project.root / "pkg/part0/deep/mod_000.py").write_text("FIRST = 1\n", encoding="utf-8")
    saved = tmp_path / "plan.json"
    planned = project.plan("--out", saved)
    assert planned.returncode == 0, planned
    (project.root / "pkg/part0/deep/mod_000.py").write_text("SECOND = 2\n", encoding="utf-8")
    before = stat_snapshot(project.location)

    applied = shown(reconcile(project.api_url, "apply", saved, "-v", cwd=tmp_path))
    assert applied.returncode == 1, applied
    errors = [m for m in applied.messages if m.startswith("error: ")]
    assert len(errors) == 1 and "changed" in errors[0] and "plan again" in errors[0], applied
    assert applied.writes == [], applied
    assert stat_snapshot(project.location) == before, "a refused plan touched the storage"
