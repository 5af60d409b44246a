"""`plan --out p.json` then `apply p.json` against a real server (scenario 6).

The saved plan is applied exactly as shown, whatever the directory says by then, and refused
(one line, exit 1, no write) when the server moved in between.
"""
from __future__ import annotations

import json

import pytest

from integration.helpers import Server, edited, manifest, reconcile, write_manifest


@pytest.fixture
def server(prefect_api_url):
    with Server(prefect_api_url) as srv:
        yield srv


def test_apply_of_a_saved_plan_does_exactly_that_plan(prefect_api_url, server, tmp_path, unique):
    flow, source = f"it-saved-{unique}", f"it-saved-{unique}"
    root = tmp_path / "deployments"
    doc = manifest(flow, "planned", version="1")
    write_manifest(root, doc)
    plan_file = tmp_path / "p.json"

    planned = reconcile(prefect_api_url, "plan", root, "--source", source, "--out", plan_file, cwd=tmp_path)
    assert planned.returncode == 0, planned
    saved = json.loads(plan_file.read_text())
    assert [(a["action"], a["deployment"]) for a in saved["actions"]] == [("create", f"{flow}/planned")]
    assert server.deployments(flow) == {}, "plan --out wrote to the server"

    # the directory moves on after the plan was reviewed: apply p.json must not pick that up
    write_manifest(root, edited(doc, version="2"))
    write_manifest(root, manifest(flow, "not-in-the-plan"))

    run = reconcile(prefect_api_url, "apply", plan_file, cwd=tmp_path)
    assert run.returncode == 0, run
    deployments = server.deployments(flow)
    assert set(deployments) == {"planned"}
    assert deployments["planned"]["version"] == "1"
    assert server.inventory(source) == {f"{flow}/planned"}

    # the directory's own plan now shows what the saved plan left out
    after = reconcile(prefect_api_url, "plan", root, "--source", source, "--format", "json", cwd=tmp_path)
    actions = {a["deployment"]: a["action"] for a in after.json()["actions"]}
    assert actions == {f"{flow}/planned": "update", f"{flow}/not-in-the-plan": "create"}


def test_saved_plan_is_refused_when_the_server_changed_in_between(prefect_api_url, server, tmp_path, unique):
    flow, source = f"it-stale-{unique}", f"it-stale-{unique}"
    root = tmp_path / "deployments"
    doc = manifest(flow, "moving", version="1")
    write_manifest(root, doc)
    assert reconcile(prefect_api_url, "apply", root, "--source", source, cwd=tmp_path).returncode == 0

    write_manifest(root, edited(doc, version="2"))
    plan_file = tmp_path / "p.json"
    planned = reconcile(prefect_api_url, "plan", root, "--source", source, "--out", plan_file, cwd=tmp_path)
    assert planned.returncode == 0 and "→ \"2\"" in planned.stdout, planned

    dep = server.deployment(flow, "moving")
    server.patch_deployment(dep["id"], {"description": "changed in the UI"})
    touched = server.deployment(flow, "moving")

    run = reconcile(prefect_api_url, "apply", plan_file, cwd=tmp_path)
    assert run.returncode == 1, run
    assert run.stdout == ""
    assert len(run.messages) == 1, run
    line = run.messages[0]
    assert line.startswith("error: ") and "p.json" in line and "changed" in line, line
    assert f"{flow}/moving" in line
    now = server.deployment(flow, "moving")
    assert now["updated"] == touched["updated"] and now["version"] == "1"
    assert now["description"] == "changed in the UI"
    assert server.locks(source) == [], "the lock taken to check the plan was released"

    # with -v: not one write to deployments or flows (only the lock document comes and goes)
    verbose = reconcile(prefect_api_url, "apply", plan_file, "-v", cwd=tmp_path)
    assert verbose.returncode == 1, verbose
    assert not [w for w in verbose.writes if "/deployments" in w.path or "/flows" in w.path], verbose


def test_a_saved_plan_cannot_be_applied_twice(prefect_api_url, server, tmp_path, unique):
    flow, source = f"it-twice-{unique}", f"it-twice-{unique}"
    root = tmp_path / "deployments"
    write_manifest(root, manifest(flow, "once"))
    plan_file = tmp_path / "p.json"
    assert reconcile(prefect_api_url, "plan", root, "--source", source, "--out", plan_file,
                     cwd=tmp_path).returncode == 0
    assert reconcile(prefect_api_url, "apply", plan_file, cwd=tmp_path).returncode == 0
    created = server.deployment(flow, "once")

    again = reconcile(prefect_api_url, "apply", plan_file, cwd=tmp_path)
    assert again.returncode == 1, again
    assert len(again.messages) == 1 and "run plan again" in again.messages[0], again
    assert server.deployment(flow, "once")["updated"] == created["updated"]


def test_saved_plan_for_another_source_is_refused(prefect_api_url, server, tmp_path, unique):
    flow, source = f"it-wrongsrc-{unique}", f"it-wrongsrc-{unique}"
    root = tmp_path / "deployments"
    write_manifest(root, manifest(flow, "mine"))
    plan_file = tmp_path / "p.json"
    assert reconcile(prefect_api_url, "plan", root, "--source", source, "--out", plan_file,
                     cwd=tmp_path).returncode == 0
    run = reconcile(prefect_api_url, "apply", plan_file, "--source", source + "-other", cwd=tmp_path)
    assert run.returncode == 1, run
    assert len(run.messages) == 1 and source in run.messages[0], run
    assert server.deployments(flow) == {}


def test_saved_delete_plan_honours_max_deletes(prefect_api_url, server, tmp_path, unique):
    flow, source = f"it-saved-del-{unique}", f"it-saved-del-{unique}"
    root = tmp_path / "deployments"
    write_manifest(root, manifest(flow, "stays"))
    doomed = write_manifest(root, manifest(flow, "doomed"))
    assert reconcile(prefect_api_url, "apply", root, "--source", source, cwd=tmp_path).returncode == 0
    doomed.unlink()
    plan_file = tmp_path / "p.json"
    assert reconcile(prefect_api_url, "plan", root, "--source", source, "--out", plan_file,
                     cwd=tmp_path).returncode == 0

    refused = reconcile(prefect_api_url, "apply", plan_file, "--max-deletes", "0", cwd=tmp_path)
    assert refused.returncode == 1 and len(refused.messages) == 1, refused
    assert "--allow-deletes" in refused.messages[0]
    assert set(server.deployments(flow)) == {"stays", "doomed"}

    run = reconcile(prefect_api_url, "apply", plan_file, cwd=tmp_path)
    assert run.returncode == 0, run
    assert set(server.deployments(flow)) == {"stays"}
