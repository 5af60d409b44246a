"""What scripts and CI depend on, against a real server (scenario 8).

`--format json` prints only JSON with the documented keys; `--detailed-exitcode` is 2 with changes
and 0 without; `reconcile --dry-run DIR` and `apply --dry-run` print exactly what `plan` prints;
`status` tells in sync / drifted / missing / unmanaged; `from reconciler import plan, apply` works.
"""
from __future__ import annotations

import json

import pytest

import reconciler
from integration.helpers import Server, edited, manifest, reconcile, write_manifest

PLAN_KEYS = {"version", "source", "server", "actions", "summary"}
ACTION_KEYS = {"action", "deployment", "manifest", "changes"}
SUMMARY_KEYS = {"create", "update", "delete", "adopt", "noop"}


@pytest.fixture
def server(prefect_api_url):
    with Server(prefect_api_url) as srv:
        yield srv


def test_json_plan_is_only_json_with_the_contract_keys(prefect_api_url, server, tmp_path, unique):
    flow, source = f"it-json-{unique}", f"it-json-{unique}"
    root = tmp_path / "deployments"
    write_manifest(root, manifest(flow, "a"))
    write_manifest(root, manifest(flow, "b", tags=["x"]))

    for extra in ([], ["-v"]):  # the request log goes to stderr, never into the JSON
        run = reconcile(prefect_api_url, "plan", root, "--source", source, "--format", "json", *extra, cwd=tmp_path)
        assert run.returncode == 0, run
        data = json.loads(run.stdout)  # the whole of stdout is one JSON document
        assert PLAN_KEYS <= set(data), data.keys()
        assert data["version"] == 1 and data["source"] == source
        assert data["server"]["url"] == prefect_api_url and data["server"]["version"].startswith("2.")
        assert SUMMARY_KEYS <= set(data["summary"])
        assert data["summary"]["create"] == 2 and data["summary"]["noop"] == 0
        assert [a["deployment"] for a in data["actions"]] == [f"{flow}/a", f"{flow}/b"]
        for action in data["actions"]:
            assert ACTION_KEYS <= set(action)
            assert action["action"] == "create"
            assert action["manifest"].endswith("-deployment.yaml")
            assert all({"field", "before", "after"} <= set(c) for c in action["changes"])
            assert {"version", "tags", "schedules"} <= {c["field"] for c in action["changes"]}

    applied = reconcile(prefect_api_url, "apply", root, "--source", source, "--format", "json", cwd=tmp_path)
    assert applied.returncode == 0, applied
    report = json.loads(applied.stdout)
    assert report["source"] == source and report["failed"] == 0
    assert sorted((r["deployment"], r["action"], r["status"]) for r in report["results"]) == [
        (f"{flow}/a", "create", "ok"), (f"{flow}/b", "create", "ok")]

    write_manifest(root, manifest(flow, "b", tags=["y"]))
    drift = reconcile(prefect_api_url, "plan", root, "--source", source, "--format", "json", cwd=tmp_path).json()
    update = next(a for a in drift["actions"] if a["deployment"] == f"{flow}/b")
    assert update["action"] == "update"
    assert update["changes"] == [{"field": "tags", "before": ["x"], "after": ["y"]}]
    assert drift["summary"]["update"] == 1 and drift["summary"]["noop"] == 1


def test_detailed_exitcode_is_2_with_changes_and_0_without(prefect_api_url, tmp_path, unique):
    flow, source = f"it-exit-{unique}", f"it-exit-{unique}"
    root = tmp_path / "deployments"
    doc = manifest(flow, "one")
    write_manifest(root, doc)
    base = ["--source", source, "--detailed-exitcode"]

    assert reconcile(prefect_api_url, "plan", root, *base, cwd=tmp_path).returncode == 2
    assert reconcile(prefect_api_url, "plan", root, *base, "--format", "json", cwd=tmp_path).returncode == 2
    assert reconcile(prefect_api_url, "--dry-run", root, *base, cwd=tmp_path).returncode == 2
    assert reconcile(prefect_api_url, "apply", root, *base, cwd=tmp_path).returncode == 2  # it changed something
    assert reconcile(prefect_api_url, "plan", root, *base, cwd=tmp_path).returncode == 0
    assert reconcile(prefect_api_url, "apply", root, *base, cwd=tmp_path).returncode == 0
    assert reconcile(prefect_api_url, "status", root, *base, cwd=tmp_path).returncode == 0

    write_manifest(root, edited(doc, version="2"))
    assert reconcile(prefect_api_url, "plan", root, *base, cwd=tmp_path).returncode == 2
    assert reconcile(prefect_api_url, "status", root, *base, cwd=tmp_path).returncode == 2
    # without the flag, changes are still exit 0
    assert reconcile(prefect_api_url, "plan", root, "--source", source, cwd=tmp_path).returncode == 0


def test_dry_run_prints_exactly_the_plan_and_writes_nothing(prefect_api_url, server, tmp_path, unique):
    flow, source = f"it-dry-{unique}", f"it-dry-{unique}"
    root = tmp_path / "deployments"
    doc = manifest(flow, "one")
    write_manifest(root, doc)
    write_manifest(root, manifest(flow, "two"))
    assert reconcile(prefect_api_url, "apply", root, "--source", source, cwd=tmp_path).returncode == 0
    write_manifest(root, edited(doc, version="2"))
    write_manifest(root, manifest(flow, "three"))
    before = server.deployments(flow)

    plan = reconcile(prefect_api_url, "plan", root, "--source", source, cwd=tmp_path)
    assert plan.returncode == 0 and "~ update" in plan.stdout and "+ create" in plan.stdout, plan
    for argv in (["--dry-run", root], ["apply", "--dry-run", root], ["apply", root, "--dry-run"]):
        run = reconcile(prefect_api_url, *argv, "--source", source, "-v", cwd=tmp_path)
        assert run.returncode == 0, run
        assert run.stdout == plan.stdout, argv
        assert run.writes == [], run
    for fmt in ("json", "markdown"):
        same = reconcile(prefect_api_url, "plan", root, "--source", source, "--format", fmt, cwd=tmp_path)
        dry = reconcile(prefect_api_url, "apply", "--dry-run", root, "--source", source, "--format", fmt, cwd=tmp_path)
        if fmt == "json":
            strip = lambda text: {k: v for k, v in json.loads(text).items() if k != "created"}  # noqa: E731
            assert strip(dry.stdout) == strip(same.stdout)
        else:
            assert dry.stdout == same.stdout
    after = server.deployments(flow)
    assert {n: d["updated"] for n, d in after.items()} == {n: d["updated"] for n, d in before.items()}


def test_status_shows_in_sync_drifted_missing_and_unmanaged(prefect_api_url, server, tmp_path, unique):
    flow, source = f"it-status-{unique}", f"it-status-{unique}"
    root = tmp_path / "deployments"
    write_manifest(root, manifest(flow, "synced"))
    write_manifest(root, manifest(flow, "drifts"))
    assert reconcile(prefect_api_url, "apply", root, "--source", source, cwd=tmp_path).returncode == 0
    drifting = server.deployment(flow, "drifts")
    server.patch_deployment(drifting["id"], {"version": "edited-in-the-ui"})  # drift made on the server
    write_manifest(root, manifest(flow, "not-yet"))                            # declared, never applied
    server.create_deployment(flow, "hand-made")                                # on the server, not managed
    write_manifest(root, manifest(flow, "hand-made"))

    run = reconcile(prefect_api_url, "status", root, "--source", source, "--format", "json", cwd=tmp_path)
    assert run.returncode == 0, run
    data = run.json()
    statuses = {e["deployment"]: e["status"] for e in data["deployments"]}
    assert statuses == {f"{flow}/synced": "in sync", f"{flow}/drifts": "drifted",
                        f"{flow}/not-yet": "missing", f"{flow}/hand-made": "unmanaged"}
    assert data["summary"]["in sync"] == 1 and data["summary"]["drifted"] == 1
    drift = next(e for e in data["deployments"] if e["status"] == "drifted")
    assert "version" in drift["detail"]

    text = reconcile(prefect_api_url, "status", root, "--source", source, cwd=tmp_path)
    assert text.returncode == 0, text
    for status, name in (("in sync", "synced"), ("drifted", "drifts"), ("missing", "not-yet"),
                         ("unmanaged", "hand-made")):
        lines = [line for line in text.stdout.splitlines() if line.rstrip().split()[-1:] and f"{flow}/{name}" in line]
        assert len(lines) == 1 and lines[0].strip().startswith(status), text.stdout


def test_python_api_plan_and_apply(prefect_api_url, server, tmp_path, unique, monkeypatch):
    from reconciler import apply, plan

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    flow, source = f"it-pyapi-{unique}", f"it-pyapi-{unique}"
    root = tmp_path / "deployments"
    write_manifest(root, manifest(flow, "api"))

    planned = plan(root, api_url=prefect_api_url, source=source)
    assert isinstance(planned, reconciler.Plan)
    assert planned.summary["create"] == 1 and planned.has_changes
    assert server.deployments(flow) == {}

    report = apply(root, api_url=prefect_api_url, source=source)
    assert isinstance(report, reconciler.Report)
    assert report.exit_code == 0 and [r.action for r in report.results] == ["create"]
    assert set(server.deployments(flow)) == {"api"}

    assert not plan(root, api_url=prefect_api_url, source=source).has_changes

    # a Plan value can be applied later, like a saved plan
    write_manifest(root, manifest(flow, "second"))
    later = plan(root, api_url=prefect_api_url, source=source)
    assert apply(later, api_url=prefect_api_url).exit_code == 0
    assert set(server.deployments(flow)) == {"api", "second"}

    with pytest.raises(reconciler.ReconcileError) as caught:
        plan(tmp_path / "does-not-exist", api_url=prefect_api_url, source=source)
    assert "\n" not in str(caught.value)


def test_apply_with_a_failed_action_exits_1(prefect_api_url, server, tmp_path, unique):
    """The server refuses one deployment (its work pool rejects the job variables); the other is applied.

    The failure is the server's own validation, which reconcile cannot know before writing, so the run
    goes on: one failure does not stop the others, the report names it, and the exit status is 1.
    """
    flow, source = f"it-fail-{unique}", f"it-fail-{unique}"
    pool = f"it-strict-{unique}"
    server.call("POST", "work_pools/", {"name": pool, "type": "process", "base_job_template": {
        "job_configuration": {"command": "{{ command }}", "x": "{{ x }}"},
        "variables": {"type": "object", "properties": {"x": {"type": "string"}, "command": {"type": "string"}}},
    }}, ok=(201,))
    root = tmp_path / "deployments"
    write_manifest(root, manifest(flow, "fine"))
    write_manifest(root, manifest(flow, "refused", work_pool_name=pool, infra_overrides={"x": 5}))

    run = reconcile(prefect_api_url, "apply", root, "--source", source, cwd=tmp_path)
    assert run.returncode == 1, run
    assert f"✗ create  {flow}/refused: POST " in run.stdout and "Validation failed for field 'x'" in run.stdout, run
    assert set(server.deployments(flow)) == {"fine"}

    as_json = reconcile(prefect_api_url, "apply", root, "--source", source, "--format", "json", cwd=tmp_path)
    assert as_json.returncode == 1, as_json
    report = as_json.json()
    assert report["failed"] == 1
    assert [r["deployment"] for r in report["results"] if r["status"] == "failed"] == [f"{flow}/refused"]


def test_a_missing_work_pool_is_refused_before_any_write(prefect_api_url, server, tmp_path, unique):
    flow, source = f"it-nopool-{unique}", f"it-nopool-{unique}"
    root = tmp_path / "deployments"
    write_manifest(root, manifest(flow, "fine"))
    path = write_manifest(root, manifest(flow, "orphan", work_pool_name=f"no-such-pool-{unique}"))
    run = reconcile(prefect_api_url, "apply", root, "--source", source, cwd=tmp_path)
    assert run.returncode == 1, run
    errors = [line for line in run.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, run
    assert errors[0].startswith(f"error: deployments/{path.name}:") and "work_pool_name" in errors[0]
    assert f"no-such-pool-{unique}" in errors[0]
    assert server.deployments(flow) == {}