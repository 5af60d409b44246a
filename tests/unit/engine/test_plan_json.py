"""The plan's JSON form: the documented contract, and save → load → apply the same plan."""
from __future__ import annotations

import json

import pytest

from reconciler.errors import ReconcileError
from reconciler.engine.plans import KINDS, Plan

try:
    from .. import prefect_fake as pf
except ImportError:
    import prefect_fake as pf

CRON = {"schedule": {"cron": "*/5 * * * *", "timezone": None, "day_or": True}, "active": True}


def docs():
    return [
        pf.manifest("kept"),
        pf.manifest("changed", parameters={"url": "https://new.test"}, schedules=[CRON], tags=["b"]),
        pf.manifest("unmanaged", description="now managed"),
        pf.manifest("theirs"),
        pf.manifest("created", flow="Weather Summary", schedules=[CRON]),
    ]


def fake_server() -> pf.FakePrefect:
    fake = pf.FakePrefect()
    fake.deploy_manifest(pf.manifest("kept"))
    fake.deploy_manifest(pf.manifest("changed", parameters={"url": "https://old.test"}, tags=["a"]))
    fake.deploy_manifest(pf.manifest("unmanaged"))
    fake.deploy_manifest(pf.manifest("theirs"))
    fake.deploy_manifest(pf.manifest("retired"))
    fake.set_inventory(pf.SOURCE, ["Cat Facts/kept", "Cat Facts/changed", "Cat Facts/retired"])
    fake.set_inventory("other-source", ["Cat Facts/theirs"])
    return fake


@pytest.fixture
def plan() -> Plan:
    return pf.make_plan(fake_server(), docs()).plan


def test_contract_keys(plan):
    raw = json.loads(plan.dumps())
    assert {"version", "source", "server", "actions", "summary"} <= set(raw)
    assert raw["version"] == 1
    assert raw["source"] == pf.SOURCE
    assert {"url", "version"} <= set(raw["server"])
    assert (raw["server"]["url"], raw["server"]["version"]) == (pf.API_URL, "2.20.27")
    assert {"create", "update", "delete", "adopt", "noop"} <= set(raw["summary"])
    assert all(isinstance(raw["summary"][k], int) for k in KINDS)
    for action in raw["actions"]:
        assert {"action", "deployment", "manifest", "changes"} <= set(action)
        assert action["action"] in KINDS
        for change in action["changes"]:
            assert set(change) >= {"field", "before", "after"}


def test_contract_values(plan):
    raw = json.loads(plan.dumps())
    by_name = {a["deployment"]: a for a in raw["actions"]}
    assert {name: a["action"] for name, a in by_name.items()} == {
        "Cat Facts/kept": "noop", "Cat Facts/changed": "update", "Cat Facts/unmanaged": "adopt",
        "Weather Summary/created": "create", "Cat Facts/retired": "delete"}
    assert raw["summary"] == {"create": 1, "update": 1, "delete": 1, "adopt": 1, "noop": 1, "conflict": 1, "upload": 0}
    assert by_name["Cat Facts/retired"]["manifest"] is None
    assert by_name["Cat Facts/changed"]["manifest"] == "deployments/changed-deployment.yaml"
    changes = {c["field"]: (c["before"], c["after"]) for c in by_name["Cat Facts/changed"]["changes"]}
    assert changes["parameters.url"] == ("https://old.test", "https://new.test")
    assert changes["tags"] == (["a"], ["b"])
    assert raw["conflicts"] == [{"deployment": "Cat Facts/theirs", "manifest": "deployments/theirs-deployment.yaml",
                                 "owner": "other-source"}]


def test_round_trip_gives_the_same_plan(plan):
    again = Plan.from_json(json.loads(plan.dumps()))
    assert again.actions == plan.actions
    assert again.conflicts == plan.conflicts
    assert (again.source, again.api_url, again.server_version) == (plan.source, plan.api_url, plan.server_version)
    assert (again.inventory_before, again.inventory_after) == (plan.inventory_before, plan.inventory_after)
    assert again.notices == plan.notices and again.summary == plan.summary
    assert again.dumps() == plan.dumps()


def test_round_tripped_plan_applies_exactly_like_the_original():
    # two identical servers: one gets the plan as made, the other the plan as loaded from JSON
    results = []
    for through_json in (False, True):
        fake = fake_server()
        planned = pf.make_plan(fake, docs())
        if through_json:
            planned.plan = Plan.from_json(json.loads(planned.plan.dumps()))
        fake.requests.clear()
        report = planned.apply()
        assert report.exit_code == 0
        writes = sorted((c.method, c.path, json.dumps(c.body, sort_keys=True)) for c in fake.writes)
        results.append((writes, sorted((r.identity, r.action, r.status) for r in report.results)))
    assert results[0] == results[1]
    assert results[0][0]  # the plan did write something


@pytest.mark.parametrize("raw", [
    [], "plan", {"version": 99, "actions": []}, {"source": "x", "actions": []}, {"version": 1},
], ids=["list", "string", "future-version", "no-version", "no-actions"])
def test_not_a_plan_is_one_line_error(raw):
    with pytest.raises(ReconcileError) as err:
        Plan.from_json(raw, "saved.json")
    assert str(err.value).startswith("saved.json: not a saved reconcile plan")
    assert "\n" not in str(err.value)


def test_incomplete_plan_is_one_line_error(plan):
    raw = json.loads(plan.dumps())
    del raw["server"]
    with pytest.raises(ReconcileError, match=r"^saved\.json: saved plan is incomplete"):
        Plan.from_json(raw, "saved.json")
    raw = json.loads(plan.dumps())
    del raw["actions"][0]["deployment"]
    with pytest.raises(ReconcileError, match=r"^saved\.json: saved plan is incomplete"):
        Plan.from_json(raw, "saved.json")
