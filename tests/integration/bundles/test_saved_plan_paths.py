"""A saved plan is validated as a fresh plan would be (issue 10, item 2), against the real server.

`apply PLAN.json` used to trust the plan's upload lists: a `../` in `remove` deleted a file outside the
storage location, a `bundle_dir` outside the repository uploaded private files. Each forged path is now
one line naming the plan file, exit 1, and nothing is written: not to the server, not to the storage.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pytest

from integration.helpers import Server, reconcile
from integration.upload_support import (
    Project, block_ref, make_block, many_files, shown, stat_snapshot, upload_actions, upload_manifest,
)

SLUG = "local-file-system"


@pytest.fixture
def server(prefect_api_url):
    with Server(prefect_api_url) as srv:
        yield srv


class Saved(Project):
    """One deployment uploading to tmp/storage/base/code, planned with --out; a victim file beside the storage."""

    def __init__(self, server: Server, api_url: str, tmp_path: Path, unique: str) -> None:
        super().__init__(api_url, tmp_path, unique, "saved-paths")
        self.basepath = tmp_path / "storage" / "base"
        self.block = make_block(server, SLUG, f"it-saved-paths-{unique}", {"basepath": str(self.basepath)})
        self.victim = tmp_path / "storage" / "victim.txt"
        self.private = tmp_path / "private"
        self.plan_file = tmp_path / "plan.json"

    def start(self) -> None:
        self.victim.parent.mkdir(parents=True)
        self.victim.write_text("not reconcile's\n", encoding="utf-8")
        self.private.mkdir()
        (self.private / "id_rsa").write_text("PRIVATE KEY\n", encoding="utf-8")
        self.write(many_files(4))
        storage = block_ref(self.block, SLUG, basepath=str(self.basepath))
        self.add_manifest(upload_manifest(self.flow, "main", storage, "code"))

    def save_plan(self) -> dict:
        run = self.plan("--out", self.plan_file)
        assert run.returncode == 0, run
        return json.loads(self.plan_file.read_text(encoding="utf-8"))

    def apply_saved(self):
        # applied from the checkout the plan was made in, as CI does
        return shown(reconcile(self.api_url, "apply", self.plan_file, "-v", cwd=self.repo))


def forged_remove(project: Saved, plan: dict) -> str:
    upload_actions(plan)[0]["remove"].append("../../victim.txt")
    return "'../../victim.txt'"


def forged_write(project: Saved, plan: dict) -> str:
    upload_actions(plan)[0]["write"].append("../../victim.txt")
    return "'../../victim.txt'"


def absolute_remove(project: Saved, plan: dict) -> str:
    upload_actions(plan)[0]["remove"].append(str(project.victim))
    return repr(str(project.victim))


def bundle_dir_outside_the_repository(project: Saved, plan: dict) -> str:
    upload_actions(plan)[0]["bundle_dir"] = str(project.private)
    return "leaves the repository"


def storage_path_outside_the_basepath(project: Saved, plan: dict) -> str:
    for action in plan["actions"]:
        if action["action"] == "create":
            action["desired"]["fields"]["path"] = "../elsewhere"
    upload_actions(plan)[0]["url"] = str(project.tmp / "storage" / "elsewhere")
    return "'../elsewhere' leaves storage"


def remove_a_file_the_marker_does_not_list(project: Saved, plan: dict) -> str:
    upload_actions(plan)[0]["remove"].append("other-team.py")   # inside the location, but not reconcile's
    (project.basepath / "code").mkdir(parents=True)
    (project.basepath / "code" / "other-team.py").write_text("X = 1\n", encoding="utf-8")
    return "is not the one its code and storage call for"


FORGERIES: dict[str, Callable[[Saved, dict], str]] = {
    "remove-climbs-out": forged_remove,
    "write-climbs-out": forged_write,
    "remove-absolute": absolute_remove,
    "bundle-dir-outside-the-repository": bundle_dir_outside_the_repository,
    "storage-path-outside-the-basepath": storage_path_outside_the_basepath,
    "remove-a-file-the-marker-does-not-list": remove_a_file_the_marker_does_not_list,
}


@pytest.mark.parametrize("forge", list(FORGERIES.values()), ids=list(FORGERIES))
def test_a_forged_path_in_a_saved_plan_is_one_line_and_nothing_is_written(
        server, prefect_api_url, tmp_path, unique, forge):
    project = Saved(server, prefect_api_url, tmp_path, unique)
    project.start()
    plan = project.save_plan()
    named = forge(project, plan)
    project.plan_file.write_text(json.dumps(plan), encoding="utf-8")
    before = stat_snapshot(tmp_path / "storage")

    run = project.apply_saved()
    assert run.returncode == 1, run
    assert "Traceback" not in run.stderr, run
    errors = [m for m in run.messages if m.startswith("error: ")]
    assert len(errors) == 1 and str(project.plan_file) in errors[0] and named in errors[0], run
    assert run.writes == [], f"a write reached the server:\n{run}"
    assert stat_snapshot(tmp_path / "storage") == before, "the storage (or the file beside it) was touched"
    assert project.victim.read_text(encoding="utf-8") == "not reconcile's\n"
    assert server.deployments(project.flow) == {}
    assert not (project.basepath / "code" / ".reconcile-bundle.json").exists()


def test_the_same_plan_unforged_applies(server, prefect_api_url, tmp_path, unique):
    project = Saved(server, prefect_api_url, tmp_path, unique)
    project.start()
    project.save_plan()
    run = project.apply_saved()
    assert run.returncode == 0, run
    marker = json.loads((project.basepath / "code" / ".reconcile-bundle.json").read_text(encoding="utf-8"))
    assert marker["source"] == project.source and marker["complete"] is True
    assert project.victim.exists()
