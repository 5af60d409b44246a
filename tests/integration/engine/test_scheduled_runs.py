"""Scheduled runs after apply, on a real Prefect 2.20 server: the runs due in the next minutes exist at once.

Prefect 2.20 deletes a deployment's future auto-scheduled runs on every PATCH and
schedule write and makes them again only on its scheduler's next loop (every 60 s
by default). apply asks the server to schedule them (`POST /deployments/{id}/schedule`)
after writing a deployment that has runs to make, so nothing due in that gap is lost.
"""
from __future__ import annotations

import pytest

from integration.engine.schedule_support import assert_runs_due_in_the_next_minutes, future_runs
from integration.helpers import RecordingProxy, Server, cron, edited, manifest, reconcile, write_manifest

EVERY_MINUTE = "* * * * *"


@pytest.fixture
def server(prefect_api_url):
    with Server(prefect_api_url) as srv:
        yield srv


def apply_through(prefect_api_url: str, root, source: str, cwd):
    with RecordingProxy(prefect_api_url) as proxy:
        run = reconcile(prefect_api_url, "apply", root, "--source", source, "--api-url", proxy.api_url, cwd=cwd)
    assert run.returncode == 0, run
    return [(w.method, w.path) for w in proxy.deployment_writes()]


def test_runs_due_in_the_next_minutes_exist_right_after_an_update(prefect_api_url, server, tmp_path, unique):
    flow, source = f"it-runs-{unique}", f"it-runs-{unique}"
    root = tmp_path / "deployments"
    doc = manifest(flow, "every-minute", schedules=[cron(EVERY_MINUTE)], parameters={"n": 1})
    write_manifest(root, doc)
    writes = apply_through(prefect_api_url, root, source, tmp_path)
    dep = server.deployment(flow, "every-minute")
    assert_runs_due_in_the_next_minutes(server, dep["id"])
    assert writes[-1] == ("POST", f"/api/deployments/{dep['id']}/schedule"), writes  # a create is scheduled too

    # a PATCH deletes every future auto-scheduled run; apply has them made again before it returns
    write_manifest(root, edited(doc, parameters={"n": 2}))
    writes = apply_through(prefect_api_url, root, source, tmp_path)
    due = assert_runs_due_in_the_next_minutes(server, dep["id"])
    assert {r["parameters"]["n"] for r in due} == {2}  # made from the updated deployment, not left over
    assert writes == [("PATCH", f"/api/deployments/{dep['id']}"),
                      ("POST", f"/api/deployments/{dep['id']}/schedule")], writes

    again = reconcile(prefect_api_url, "apply", root, "--source", source, "-v", cwd=tmp_path)
    assert again.returncode == 0 and again.writes == [], again  # no-op: not even the schedule request


def test_a_new_schedule_has_its_runs_right_after_apply(prefect_api_url, server, tmp_path, unique):
    """The old schedule is replaced (new one created, old one deleted): the new schedule's runs exist at once."""
    flow, source = f"it-runs-swap-{unique}", f"it-runs-swap-{unique}"
    root = tmp_path / "deployments"
    doc = manifest(flow, "swapped", schedules=[cron("0 0 1 1 *")])
    write_manifest(root, doc)
    apply_through(prefect_api_url, root, source, tmp_path)
    dep = server.deployment(flow, "swapped")
    old_id = dep["schedules"][0]["id"]

    write_manifest(root, edited(doc, schedules=[cron(EVERY_MINUTE)]))
    writes = apply_through(prefect_api_url, root, source, tmp_path)
    assert_runs_due_in_the_next_minutes(server, dep["id"])
    base = f"/api/deployments/{dep['id']}"
    assert writes == [("POST", f"{base}/schedules"), ("DELETE", f"{base}/schedules/{old_id}"),
                      ("POST", f"{base}/schedule")], writes


def test_a_paused_deployment_gets_no_runs_and_unpausing_schedules_them_at_once(prefect_api_url, server, tmp_path,
                                                                                unique):
    flow, source = f"it-runs-pause-{unique}", f"it-runs-pause-{unique}"
    root = tmp_path / "deployments"
    doc = manifest(flow, "pausable", schedules=[cron(EVERY_MINUTE)], is_schedule_active=False)
    write_manifest(root, doc)
    writes = apply_through(prefect_api_url, root, source, tmp_path)
    assert not [w for w in writes if w[1].endswith("/schedule")], writes
    dep = server.deployment(flow, "pausable")
    assert dep["paused"] is True
    assert future_runs(server, dep["id"]) == []

    write_manifest(root, edited(doc, is_schedule_active=True))
    writes = apply_through(prefect_api_url, root, source, tmp_path)
    assert_runs_due_in_the_next_minutes(server, dep["id"])
    assert writes == [("PATCH", f"/api/deployments/{dep['id']}"),
                      ("POST", f"/api/deployments/{dep['id']}/schedule")], writes

    write_manifest(root, edited(doc, is_schedule_active=False))
    writes = apply_through(prefect_api_url, root, source, tmp_path)
    assert writes == [("PATCH", f"/api/deployments/{dep['id']}")], writes  # no runs asked for a paused one
    # (the PATCH deleted the runs; 2.20's scheduler may still insert runs it computed just before it)
