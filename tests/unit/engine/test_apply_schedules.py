"""apply and schedules: new schedules before old ones go, and the runs scheduled after every write.

Against the fake Prefect API: the order of the schedule writes, when
`POST /deployments/{id}/schedule` is sent (after a write to a deployment with
runs to make, never on a no-op nor for a paused one), what a failure between
the writes leaves, and a kill before each write in turn.
"""
from __future__ import annotations

import pytest

from reconciler.engine.applier import Applier
from reconciler.engine.report import FAILED
from reconciler.manifests import schedules as schedule_forms
from reconciler.prefect.v2 import adapter_for

try:
    from .. import prefect_fake as pf
    from .test_apply import CRON, INTERVAL, RRULE, apply, owned, replan
except ImportError:
    import prefect_fake as pf
    from test_apply import CRON, INTERVAL, RRULE, apply, owned, replan

NEW_CRON = {"schedule": {"cron": "30 7 * * 1-5", "timezone": "UTC", "day_or": True}, "active": True}


def deployment_calls(fake: pf.FakePrefect):
    return [(c.method, c.path) for c in fake.writes if c.path.startswith(("/deployments", "/flows"))]


# -- the schedule request ---------------------------------------------------------------------

def test_a_create_with_active_schedules_has_its_runs_scheduled_after_it():
    fake = pf.FakePrefect()
    plan, report = apply(fake, [pf.manifest("hourly", schedules=[CRON])])
    dep = fake.deployment("Cat Facts", "hourly")
    assert deployment_calls(fake)[-2:] == [("POST", "/deployments/"), ("POST", f"/deployments/{dep['id']}/schedule")]
    assert fake.scheduled == [dep["id"]]
    assert report.exit_code == 0


@pytest.mark.parametrize("changes", [
    dict(schedules=[]),
    dict(schedules=[CRON], is_schedule_active=False),
    dict(schedules=[{**CRON, "active": False}]),
], ids=["no-schedule", "paused", "inactive-schedule"])
def test_a_deployment_without_runs_to_make_gets_no_schedule_request(changes):
    fake = pf.FakePrefect()
    apply(fake, [pf.manifest("quiet", **changes)])   # a create
    assert fake.deployment("Cat Facts", "quiet") is not None
    fake2 = pf.FakePrefect()                          # and an update
    [dep] = owned(fake2, pf.manifest("quiet", **changes))
    apply(fake2, [pf.manifest("quiet", description="changed", **changes)])
    assert deployment_calls(fake2) == [("PATCH", f"/deployments/{dep['id']}")]
    assert fake.scheduled == [] and fake2.scheduled == []


def test_a_noop_sends_no_schedule_request():
    fake = pf.FakePrefect()
    docs = [pf.manifest("hourly", schedules=[CRON, INTERVAL]), pf.manifest("weekly", schedules=[RRULE])]
    owned(fake, *docs)
    plan, report = apply(fake, docs)
    assert fake.writes == [] and fake.scheduled == []


def test_making_the_last_active_schedule_inactive_sends_no_schedule_request():
    fake = pf.FakePrefect()
    [dep] = owned(fake, pf.manifest("hourly", schedules=[CRON]))
    apply(fake, [pf.manifest("hourly", schedules=[{**CRON, "active": False}])])
    assert [m for m, _ in deployment_calls(fake)] == ["PATCH"]
    assert fake.scheduled == []


# -- order ---------------------------------------------------------------------------------------

def test_a_changed_schedule_is_created_before_the_patch_and_the_old_one_deleted_after_it():
    fake = pf.FakePrefect()
    [dep] = owned(fake, pf.manifest("hourly", schedules=[CRON, INTERVAL]))
    old_interval = next(s["id"] for s in dep["schedules"] if "interval" in s["schedule"])
    apply(fake, [pf.manifest("hourly", schedules=[CRON, NEW_CRON], tags=["x"])])
    base = f"/deployments/{dep['id']}"
    assert deployment_calls(fake) == [
        ("POST", f"{base}/schedules"), ("PATCH", base), ("DELETE", f"{base}/schedules/{old_interval}"),
        ("POST", f"{base}/schedule")]
    assert replan(fake, [pf.manifest("hourly", schedules=[CRON, NEW_CRON], tags=["x"])]) == {"Cat Facts/hourly": "noop"}


# -- failures between the writes --------------------------------------------------------------------

def test_a_failed_delete_leaves_old_and_new_schedules_and_still_schedules_the_runs():
    fake = pf.FakePrefect()
    [dep] = owned(fake, pf.manifest("hourly", schedules=[INTERVAL]))
    old_id = dep["schedules"][0]["id"]
    fake.fail("DELETE", f"/deployments/{dep['id']}/schedules/{old_id}", 500, {"detail": "boom"})
    wanted = [pf.manifest("hourly", schedules=[NEW_CRON])]
    plan, report = apply(fake, wanted)
    [result] = report.results
    assert result.status == FAILED and "boom" in result.message
    kinds = {("cron" if "cron" in s["schedule"] else "interval") for s in fake.deployments[dep["id"]]["schedules"]}
    assert kinds == {"cron", "interval"}  # the old and the new: never neither
    assert fake.calls("GET", f"/deployments/{dep['id']}")  # what the server holds now decides
    assert fake.scheduled == [dep["id"]]
    fake.faults.clear()
    plan, report = apply(fake, wanted)
    assert deployment_calls(fake) == [("DELETE", f"/deployments/{dep['id']}/schedules/{old_id}"),
                                      ("POST", f"/deployments/{dep['id']}/schedule")]
    assert replan(fake, wanted) == {"Cat Facts/hourly": "noop"}


def test_a_failed_first_write_sends_nothing_more():
    fake = pf.FakePrefect()
    [dep] = owned(fake, pf.manifest("hourly", schedules=[INTERVAL]))
    fake.fail("POST", f"/deployments/{dep['id']}/schedules", 500, {"detail": "boom"})
    plan, report = apply(fake, [pf.manifest("hourly", schedules=[NEW_CRON])])
    assert report.exit_code == 1
    assert deployment_calls(fake) == [("POST", f"/deployments/{dep['id']}/schedules")]
    assert not fake.calls("GET", f"/deployments/{dep['id']}")
    assert len(fake.deployments[dep["id"]]["schedules"]) == 1


def test_a_failed_schedule_request_fails_the_action_and_says_what_was_done():
    fake = pf.FakePrefect()
    [dep] = owned(fake, pf.manifest("hourly", schedules=[CRON]))
    fake.fail("POST", f"/deployments/{dep['id']}/schedule", 500, {"detail": "boom"})
    wanted = [pf.manifest("hourly", schedules=[CRON], description="new")]
    plan, report = apply(fake, wanted)
    [result] = report.results
    assert result.status == FAILED
    assert result.message.startswith("updated (description), but its runs were not scheduled")
    assert "boom" in result.message and "\n" not in result.message
    assert fake.deployments[dep["id"]]["description"] == "new"
    assert replan(fake, wanted) == {"Cat Facts/hourly": "noop"}


# -- a kill before each write in turn -------------------------------------------------------------------

class Killed(BaseException):
    """Stands for SIGKILL: not an Exception, so nothing in reconcile catches it."""


def _forms(entries, dep) -> set[str]:
    """Schedule definitions (not their `active`) in canonical form; an interval takes the server's anchor."""
    anchors = [schedule_forms.from_live(s["schedule"]).get("anchor_date") for s in dep["schedules"]
               if "interval" in s["schedule"]]
    out = set()
    for entry in entries:
        form = schedule_forms.validate(entry["schedule"])
        if "interval" in form and "anchor_date" not in form:
            form["anchor_date"] = anchors[0] if anchors else None
        out.add(schedule_forms.sort_key(form))
    return out


def _live_forms(dep) -> set[str]:
    return {schedule_forms.sort_key(schedule_forms.from_live(s["schedule"])) for s in dep["schedules"]}


OLD = [pf.manifest("swap", schedules=[INTERVAL, RRULE]), pf.manifest("grow", schedules=[CRON]),
       pf.manifest("shrink", schedules=[CRON, RRULE], tags=["a"])]
NEW = [pf.manifest("swap", schedules=[NEW_CRON, RRULE], description="swapped"),
       pf.manifest("grow", schedules=[CRON, INTERVAL], tags=["b"]),
       pf.manifest("shrink", schedules=[{**RRULE, "active": False}], tags=["b"])]


def _killing(handler, n: int):
    """A handler that dies at the n-th deployment write: it and every request after it never arrive."""
    count = [0]

    def handle(request):
        path = request.url.path
        if request.method != "GET" and not path.endswith("/filter") and "/deployments" in path:
            count[0] += 1
        if count[0] >= n:
            raise Killed()
        return handler(request)
    return handle


def _deployment_writes_of_the_whole_apply() -> int:
    fake = pf.FakePrefect()
    owned(fake, *OLD)
    apply(fake, NEW)
    return len([c for c in fake.writes if "/deployments" in c.path])


@pytest.mark.parametrize("n", range(1, _deployment_writes_of_the_whole_apply() + 1))
def test_a_kill_before_any_write_leaves_old_or_new_schedules_and_the_next_apply_converges(n):
    fake = pf.FakePrefect()
    old = {d["name"]: _live_forms(d) for d in owned(fake, *OLD)}
    planned = pf.make_plan(fake, NEW)
    handler = fake.handler
    fake.handler = _killing(handler, n)
    planned.client = fake.client()   # built on the killing handler
    with pytest.raises(Killed):  # one write at a time, so each n cuts at a different point
        Applier(planned.client, planned.live, adapter_for(planned.live.server_version), parallelism=1).run(planned.plan)
    fake.handler = handler
    for doc in NEW:
        dep = fake.deployment("Cat Facts", doc["name"])
        now = _live_forms(dep)
        assert old[doc["name"]] <= now or _forms(doc["schedules"], dep) <= now, (doc["name"], now)
    plan, report = apply(fake, NEW)
    assert report.exit_code == 0, [r.message for r in report.failures]
    assert replan(fake, NEW) == {f"Cat Facts/{d['name']}": "noop" for d in NEW}  # schedules and `active` as declared
