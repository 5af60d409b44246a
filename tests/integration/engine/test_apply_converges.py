"""Converging against a real Prefect 2.20 server: a converged apply writes nothing, an edit writes only itself.

Scenarios 1 and 2: idempotent re-apply (no write request, `updated` and schedule ids untouched),
field-level PATCHes, and schedule changes that keep the ids of the schedules that did not change.
Every write deletes the deployment's future auto-scheduled runs on 2.20, so each write list ends
with `POST /deployments/{id}/schedule` for a deployment that has runs to make
(test_scheduled_runs.py checks the runs themselves).
"""
from __future__ import annotations

import pytest

from integration.helpers import (
    RecordingProxy, Server, cron, edited, interval, manifest, reconcile, rrule, schedule_active,
    schedule_ids, write_manifest,
)


@pytest.fixture
def server(server_api_url):
    with Server(server_api_url) as srv:
        yield srv


def _varied_manifests(flow: str) -> list[dict]:
    """Deployments in the shapes real manifests have, so idempotence is checked on each."""
    return [
        manifest(flow, "plain"),
        manifest(flow, "two-schedules", schedules=[cron("30 6 * * 1", timezone="Europe/Amsterdam"), interval(900)]),
        # no anchor_date: the server picks one, and that must not read as drift afterwards
        manifest(flow, "interval-no-anchor",
                 schedules=[{"schedule": {"interval": 600, "timezone": "America/Chicago"}, "active": True}]),
        manifest(flow, "paused-rrule", schedules=[rrule(active=False)], is_schedule_active=False),
        manifest(flow, "no-schedule", schedules=[], tags=[], parameters={},
                 description="Every Monday: a description with a colon\nand a second line"),
        manifest(flow, "overrides", infra_overrides={"env.REPORTS_BUCKET": "/var/lib/x", "env": {"A": "1"}},
                 parameters={"n": 7, "label": "seven"}, tags=["b", "a"], work_queue_name="it-queue",
                 version=None),
        # the old single-schedule shape (Prefect < 2.19)
        manifest(flow, "old-shape", schedules=None,
                 schedule={"cron": "0 0 * * *", "timezone": None, "day_or": True}, is_schedule_active=True),
    ]


def test_second_apply_makes_zero_writes_and_leaves_every_deployment_untouched(server_api_url, server, tmp_path, unique):
    flow, source = f"it-idem-{unique}", f"it-idem-{unique}"
    root = tmp_path / "deployments"
    docs = _varied_manifests(flow)
    for doc in docs:
        write_manifest(root, doc)

    first = reconcile(server_api_url, "apply", root, "--source", source, cwd=tmp_path)
    assert first.returncode == 0, first
    before = server.deployments(flow)
    assert set(before) == {d["above"]["name"] for d in docs}

    second = reconcile(server_api_url, "apply", root, "--source", source, "-v", cwd=tmp_path)
    assert second.returncode == 0, second
    assert any(r.path.endswith("/deployments/filter") for r in second.requests), second  # -v did log
    assert second.writes == [], f"a converged apply wrote:\n{second}"
    assert "No changes." in second.stdout

    after = server.deployments(flow)
    for name, dep in before.items():
        assert after[name]["id"] == dep["id"]
        assert after[name]["updated"] == dep["updated"], f"{name} was written"
        assert schedule_ids(after[name]) == schedule_ids(dep), f"{name}: schedules were replaced"

    # and a plan agrees: nothing to do, exit 0 with --detailed-exitcode
    plan = reconcile(server_api_url, "plan", root, "--source", source, "--detailed-exitcode", cwd=tmp_path)
    assert plan.returncode == 0, plan
    assert f"{len(docs)} deployments in sync" in plan.stdout


@pytest.mark.parametrize(
    ("field", "change", "expected_body_value"),
    [
        pytest.param("version", {"version": "2"}, "2", id="version"),
        pytest.param("parameters", {"parameters": {"n": 5, "label": "x"}}, {"n": 5, "label": "x"}, id="parameter"),
        pytest.param("description", {"description": "now described"}, "now described", id="description"),
        pytest.param("tags", {"tags": ["it", "extra"]}, ["extra", "it"], id="tags"),
        pytest.param("work_queue_name", {"work_queue_name": "it-other-queue"}, "it-other-queue", id="work-queue"),
    ],
)
def test_editing_one_field_patches_only_that_field(server_api_url, server_line, server, tmp_path, unique, field, change,
                                                   expected_body_value):
    flow, source = f"it-edit-{unique}", f"it-edit-{unique}"
    root = tmp_path / "deployments"
    doc = manifest(flow, "target", schedules=[cron(), interval()])
    write_manifest(root, doc)
    write_manifest(root, manifest(flow, "bystander"))
    assert reconcile(server_api_url, "apply", root, "--source", source, cwd=tmp_path).returncode == 0
    before = server.deployments(flow)

    write_manifest(root, edited(doc, **change))
    with RecordingProxy(server_api_url) as proxy:
        run = reconcile(server_api_url, "apply", root, "--source", source, "--api-url", proxy.api_url, cwd=tmp_path)
    assert run.returncode == 0, run

    target = before["target"]
    writes = proxy.deployment_writes()
    assert [(w.method, w.path) for w in writes] == [("PATCH", f"/api/deployments/{target['id']}"),
                                                    ("POST", f"/api/deployments/{target['id']}/schedule")], writes
    sent = {field: expected_body_value}
    if server_line == "3.9" and field == "work_queue_name":   # with its pool: 3.x looks for a lone queue elsewhere
        sent["work_pool_name"] = target["work_pool_name"]
    assert writes[0].body == sent

    after = server.deployments(flow)
    assert after["target"]["id"] == target["id"]
    assert after["target"][field] == expected_body_value
    assert schedule_ids(after["target"]) == schedule_ids(target)
    assert after["bystander"]["updated"] == before["bystander"]["updated"]
    for key in ("version", "parameters", "description", "tags", "work_queue_name", "path", "entrypoint"):
        if key != field:
            assert after["target"][key] == target[key], key

    again = reconcile(server_api_url, "apply", root, "--source", source, "-v", cwd=tmp_path)
    assert again.returncode == 0 and again.writes == [], again


def test_toggling_one_schedule_changes_only_that_schedule(server_api_url, server, tmp_path, unique):
    flow, source = f"it-sched-{unique}", f"it-sched-{unique}"
    root = tmp_path / "deployments"
    doc = manifest(flow, "three", schedules=[cron(), interval(), rrule()])
    write_manifest(root, doc)
    assert reconcile(server_api_url, "apply", root, "--source", source, cwd=tmp_path).returncode == 0
    before = server.deployment(flow, "three")
    ids = schedule_ids(before)
    assert len(ids) == 3

    write_manifest(root, edited(doc, schedules=[cron(), interval(active=False), rrule()]))
    with RecordingProxy(server_api_url) as proxy:
        run = reconcile(server_api_url, "apply", root, "--source", source, "--api-url", proxy.api_url, cwd=tmp_path)
    assert run.returncode == 0, run

    interval_id = ids["interval 3600.0"]
    writes = proxy.deployment_writes()
    assert [(w.method, w.path, w.body) for w in writes] == [
        ("PATCH", f"/api/deployments/{before['id']}/schedules/{interval_id}", {"active": False}),
        ("POST", f"/api/deployments/{before['id']}/schedule", {})], writes
    after = server.deployment(flow, "three")
    assert schedule_ids(after) == ids
    assert schedule_active(after) == {"cron 0 * * * *": True, "interval 3600.0": False,
                                      "rrule FREQ=WEEKLY;BYDAY=MO;BYHOUR=7": True}
    assert after["paused"] is False

    again = reconcile(server_api_url, "apply", root, "--source", source, "-v", cwd=tmp_path)
    assert again.returncode == 0 and again.writes == [], again


def test_adding_and_removing_a_schedule_keeps_the_ids_of_the_others(server_api_url, server, tmp_path, unique):
    flow, source = f"it-sched-add-{unique}", f"it-sched-add-{unique}"
    root = tmp_path / "deployments"
    doc = manifest(flow, "grows", schedules=[cron()])
    write_manifest(root, doc)
    assert reconcile(server_api_url, "apply", root, "--source", source, cwd=tmp_path).returncode == 0
    first = server.deployment(flow, "grows")
    cron_id = schedule_ids(first)["cron 0 * * * *"]

    # add an rrule: one POST of the new schedule, the cron keeps its id
    write_manifest(root, edited(doc, schedules=[cron(), rrule()]))
    with RecordingProxy(server_api_url) as proxy:
        run = reconcile(server_api_url, "apply", root, "--source", source, "--api-url", proxy.api_url, cwd=tmp_path)
    assert run.returncode == 0, run
    writes = proxy.deployment_writes()
    assert [(w.method, w.path) for w in writes] == [("POST", f"/api/deployments/{first['id']}/schedules"),
                                                    ("POST", f"/api/deployments/{first['id']}/schedule")], writes
    assert [e["schedule"].get("rrule") for e in writes[0].body] == ["FREQ=WEEKLY;BYDAY=MO;BYHOUR=7"]
    second = server.deployment(flow, "grows")
    ids = schedule_ids(second)
    assert ids["cron 0 * * * *"] == cron_id
    assert set(ids) == {"cron 0 * * * *", "rrule FREQ=WEEKLY;BYDAY=MO;BYHOUR=7"}

    # remove the cron: one DELETE of that schedule, the rrule keeps its id
    write_manifest(root, edited(doc, schedules=[rrule()]))
    with RecordingProxy(server_api_url) as proxy:
        run = reconcile(server_api_url, "apply", root, "--source", source, "--api-url", proxy.api_url, cwd=tmp_path)
    assert run.returncode == 0, run
    writes = proxy.deployment_writes()
    assert [(w.method, w.path) for w in writes] == [("DELETE", f"/api/deployments/{first['id']}/schedules/{cron_id}"),
                                                    ("POST", f"/api/deployments/{first['id']}/schedule")]
    third = server.deployment(flow, "grows")
    assert schedule_ids(third) == {"rrule FREQ=WEEKLY;BYDAY=MO;BYHOUR=7": ids["rrule FREQ=WEEKLY;BYDAY=MO;BYHOUR=7"]}


def test_pausing_a_deployment_keeps_its_schedules(server_api_url, server, tmp_path, unique):
    """`is_schedule_active: false` pauses the deployment; the schedules (and their ids) stay."""
    flow, source = f"it-pause-{unique}", f"it-pause-{unique}"
    root = tmp_path / "deployments"
    doc = manifest(flow, "pausable", schedules=[cron(), interval()])
    write_manifest(root, doc)
    assert reconcile(server_api_url, "apply", root, "--source", source, cwd=tmp_path).returncode == 0
    before = server.deployment(flow, "pausable")

    write_manifest(root, edited(doc, is_schedule_active=False))
    run = reconcile(server_api_url, "apply", root, "--source", source, cwd=tmp_path)
    assert run.returncode == 0, run
    after = server.deployment(flow, "pausable")
    assert after["paused"] is True
    assert schedule_ids(after) == schedule_ids(before)

    again = reconcile(server_api_url, "apply", root, "--source", source, "-v", cwd=tmp_path)
    assert again.returncode == 0 and again.writes == [], again


def test_changing_the_parameter_schema_replaces_in_place_and_converges(server_api_url, server, tmp_path, unique):
    """PATCH cannot set `parameter_openapi_schema` on 2.20: the deployment is upserted (same id) and converges."""
    flow, source = f"it-schema-{unique}", f"it-schema-{unique}"
    root = tmp_path / "deployments"
    doc = manifest(flow, "reshaped")
    write_manifest(root, doc)
    assert reconcile(server_api_url, "apply", root, "--source", source, cwd=tmp_path).returncode == 0
    before = server.deployment(flow, "reshaped")

    schema = doc["below"]["parameter_openapi_schema"]
    new_schema = {**schema, "properties": {**schema["properties"],
                                           "extra": {"default": None, "position": 2, "title": "extra"}}}
    write_manifest(root, edited(doc, parameter_openapi_schema=new_schema))
    run = reconcile(server_api_url, "apply", root, "--source", source, cwd=tmp_path)
    assert run.returncode == 0, run
    assert "parameter_openapi_schema" in run.stdout
    after = server.deployment(flow, "reshaped")
    assert after["id"] == before["id"]
    assert set(after["parameter_openapi_schema"]["properties"]) == {"n", "label", "extra"}
    for key in ("version", "parameters", "tags", "paused", "path", "entrypoint", "work_queue_name"):
        assert after[key] == before[key], key
    assert len(after["schedules"]) == 1

    again = reconcile(server_api_url, "apply", root, "--source", source, "-v", cwd=tmp_path)
    assert again.returncode == 0 and again.writes == [], again
