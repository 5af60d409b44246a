"""A storage location holds one source's code (issue 10, item 4), against the real server.

Two sources (`--source a-…`, `--source b-…`, two checkouts) point deployments at one local-file-system
location. A deployment left alone as a conflict uploads nothing, and a location whose marker names another
source is a conflict in the plan: nothing is uploaded there and no deployment using it is written. A marker
an older reconcile wrote (no source in it) belongs to whoever uploads next, and the plan says so.

Whether a conflict fails the run is decided elsewhere: these tests check the plan and what was written.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from integration.helpers import Server
from integration.upload_support import (
    MARKER_NAME, Project, block_ref, make_block, many_files, stat_snapshot, upload_actions, upload_manifest,
)

SLUG = "local-file-system"


@pytest.fixture
def server(prefect_api_url):
    with Server(prefect_api_url) as srv:
        yield srv


class Shared:
    """One storage block, two checkouts (sources a and b) whose deployments upload to its `code` path."""

    def __init__(self, server: Server, api_url: str, tmp_path: Path, unique: str) -> None:
        self.server = server
        self.basepath = tmp_path / "storage"
        self.location = self.basepath / "code"
        self.block = make_block(server, SLUG, f"it-owner-{unique}", {"basepath": str(self.basepath)})
        self.flow = f"it-owner-{unique}"
        self.a = self._source(api_url, tmp_path / "a", unique, "a", "A = 'source a'\n")
        self.b = self._source(api_url, tmp_path / "b", unique, "b", "B = 'source b'\n")

    def _source(self, api_url: str, tmp: Path, unique: str, label: str, code: str) -> Project:
        tmp.mkdir()
        project = Project(api_url, tmp, unique, f"owner-{label}")
        project.source = f"{label}-{unique}"
        project.write({**many_files(3), f"{label}.py": code})
        return project

    def declare(self, project: Project, name: str) -> None:
        storage = block_ref(self.block, SLUG, basepath=str(self.basepath))
        project.add_manifest(upload_manifest(self.flow, name, storage, "code"))

    def marker(self) -> dict:
        return json.loads((self.location / MARKER_NAME).read_bytes())


@pytest.fixture
def shared(server, prefect_api_url, tmp_path, unique) -> Shared:
    return Shared(server, prefect_api_url, tmp_path, unique)


def _refused(run) -> None:
    """A conflict fails apply before its first write: one error line, exit 1."""
    assert run.returncode == 1, run
    assert run.messages[-1].startswith("error: 1 deployment declared here belongs to another source"), run


def test_a_deployment_in_conflict_uploads_nothing_over_the_owners_code(shared, server):
    """The issue's case: b declares a's deployment; it is `conflict … left alone` and its code stays home."""
    shared.declare(shared.a, "etl")
    shared.declare(shared.b, "etl")
    applied = shared.a.apply()
    assert applied.returncode == 0, applied
    assert shared.marker()["source"] == shared.a.source
    assert (shared.location / "a.py").is_file()
    owned = server.deployment(shared.flow, "etl")

    plan = shared.b.plan_json()
    assert [(c["deployment"], c["owner"]) for c in plan["conflicts"]] == [(f"{shared.flow}/etl", shared.a.source)]
    assert upload_actions(plan) == [] and plan["summary"]["upload"] == 0, plan

    before = stat_snapshot(shared.location)
    run = shared.b.apply("-v")
    _refused(run)
    assert stat_snapshot(shared.location) == before, f"b's code went over a's:\n{run}"
    run = shared.b.apply("--allow-conflicts")      # left alone on purpose: still nothing of b's goes there
    assert run.returncode == 0, run
    assert stat_snapshot(shared.location) == before, f"b's code went over a's:\n{run}"
    assert not (shared.location / "b.py").exists()
    assert server.deployment(shared.flow, "etl")["updated"] == owned["updated"]


def test_a_location_another_source_owns_is_a_conflict_and_nothing_is_written(shared, server):
    shared.declare(shared.a, "etl")
    shared.declare(shared.b, "report")            # b's own deployment, pointed at a's location
    assert shared.a.apply().returncode == 0

    plan = shared.b.plan_json()
    [conflict] = plan["conflicts"]
    assert (conflict["deployment"], conflict["owner"]) == (f"{shared.flow}/report", shared.a.source)
    assert conflict["reason"] == f"its storage location {shared.location} holds the code of source {shared.a.source!r}"
    assert upload_actions(plan) == [] and [a for a in plan["actions"] if a["action"] == "create"] == []
    assert f"{shared.flow}/report" not in plan["inventory"]["after"]

    text = shared.b.plan()
    assert f"! conflict {shared.flow}/report" in text.stdout, text
    assert f"holds the code of source {shared.a.source!r}; not applied" in text.stdout, text

    before = stat_snapshot(shared.location)
    run = shared.b.apply("-v")
    _refused(run)
    assert stat_snapshot(shared.location) == before, f"b uploaded to a's location:\n{run}"
    run = shared.b.apply("--allow-conflicts")
    assert run.returncode == 0, run
    assert stat_snapshot(shared.location) == before, f"b uploaded to a's location:\n{run}"
    assert server.deployment(shared.flow, "report") is None, "a deployment pointing at a's code was written"
    assert shared.marker()["source"] == shared.a.source


def test_a_marker_without_a_source_belongs_to_whoever_uploads_next(shared, server):
    shared.declare(shared.a, "etl")
    assert shared.a.apply().returncode == 0
    legacy = shared.marker()
    del legacy["source"]                           # as reconcile wrote markers before they named a source
    (shared.location / MARKER_NAME).write_text(json.dumps(legacy), encoding="utf-8")

    shared.declare(shared.b, "report")
    plan = shared.b.plan_json()
    assert plan["conflicts"] == []
    [upload] = upload_actions(plan)
    assert upload["deployments"] == [f"{shared.flow}/report"]
    assert any("names no source" in n and repr(shared.b.source) in n for n in plan["notices"]), plan["notices"]

    run = shared.b.apply()
    assert run.returncode == 0, run
    assert shared.marker()["source"] == shared.b.source
    assert (shared.location / "b.py").is_file() and not (shared.location / "a.py").exists()

    # the location is b's now: a's next code change is a conflict there, not an upload
    (shared.a.root / "a.py").write_text("A = 'changed'\n", encoding="utf-8")
    again = shared.a.plan_json()
    assert [(c["deployment"], c["owner"]) for c in again["conflicts"]] == [(f"{shared.flow}/etl", shared.b.source)]
    assert upload_actions(again) == []
    assert f"{shared.flow}/etl" in again["inventory"]["after"], "a still owns its deployment, only not the location"
