"""apply: the writes a plan turns into, recorded by the fake Prefect API.

Each test plans against the fake (as `reconcile plan` does), applies, and then
looks at the exact requests sent and at the server state (a re-plan must be
all noop: apply converges).
"""
from __future__ import annotations

import copy

import pytest

from reconciler import cli
from reconciler.engine.report import FAILED, OK

try:
    from .. import prefect_fake as pf
except ImportError:
    import prefect_fake as pf

CRON = {"schedule": {"cron": "0 6 * * *", "timezone": "Europe/Berlin", "day_or": True}, "active": True}
INTERVAL = {"schedule": {"interval": 3600}, "active": True}
RRULE = {"schedule": {"rrule": "FREQ=WEEKLY;BYDAY=MO"}, "active": True}
INLINE_PROCESS = {"type": "process", "env": {"MODE": "batch"}, "labels": {}, "name": None, "command": None,
                  "stream_output": True, "working_dir": None, "block_type_slug": "process",
                  "_block_type_slug": "process"}


def deployment_writes(fake: pf.FakePrefect):
    return [c for c in fake.writes if c.path.startswith(("/deployments", "/flows"))]


def inventory_writes(fake: pf.FakePrefect):
    return [c for c in fake.writes if c.path.startswith("/block_documents")
            and isinstance(c.body, dict) and isinstance((c.body.get("data") or {}).get("value"), dict)]


def owned(fake: pf.FakePrefect, *docs):
    """Deploy these manifests as Prefect would and list them in this source's inventory."""
    deps = [fake.deploy_manifest(d) for d in docs]
    fake.set_inventory(pf.SOURCE, [f"{d['flow_name']}/{d['name']}" for d in docs])
    return deps


def apply(fake: pf.FakePrefect, docs):
    planned = pf.make_plan(fake, docs)
    fake.requests.clear()
    report = planned.apply()
    return planned.plan, report


def replan(fake: pf.FakePrefect, docs):
    return {a.identity: a.action for a in pf.make_plan(fake, docs).plan.actions}


# -- updates -----------------------------------------------------------------------------

def test_update_sends_one_patch_with_only_the_changed_fields():
    fake = pf.FakePrefect()
    [dep] = owned(fake, pf.manifest("hourly", schedules=[CRON]))
    wanted = pf.manifest("hourly", schedules=[CRON], description="Hourly cat facts", tags=["cats", "facts"])
    plan, report = apply(fake, [wanted])
    assert [(c.method, c.path, c.body) for c in fake.writes] == [
        ("PATCH", f"/deployments/{dep['id']}", {"description": "Hourly cat facts", "tags": ["cats", "facts"]}),
        ("POST", f"/deployments/{dep['id']}/schedule", {})]  # the PATCH deleted its runs: made again at once
    assert report.exit_code == 0
    assert report.writes == 2
    assert replan(fake, [wanted]) == {"Cat Facts/hourly": "noop"}


def test_parameter_change_sends_the_whole_parameters_field():
    fake = pf.FakePrefect()
    [dep] = owned(fake, pf.manifest("hourly"))
    wanted = pf.manifest("hourly", parameters={"url": "https://example.org/facts", "n": 2})
    apply(fake, [wanted])
    assert [(c.method, c.body) for c in fake.writes] == [
        ("PATCH", {"parameters": {"url": "https://example.org/facts", "n": 2}})]
    assert fake.deployments[dep["id"]]["parameters"] == {"url": "https://example.org/facts", "n": 2}


@pytest.mark.parametrize("paused", [True, False], ids=["pause", "unpause"])
def test_pause_change_sends_paused_and_leaves_schedules_alone(paused):
    fake = pf.FakePrefect()
    [dep] = owned(fake, pf.manifest("hourly", schedules=[CRON, INTERVAL], is_schedule_active=paused))  # the opposite
    schedule_ids = sorted(s["id"] for s in dep["schedules"])
    wanted = pf.manifest("hourly", schedules=[CRON, INTERVAL], is_schedule_active=not paused)
    plan, report = apply(fake, [wanted])
    assert [(c.method, c.path, c.body) for c in fake.writes] == [
        ("PATCH", f"/deployments/{dep['id']}", {"paused": paused})] + (
        [] if paused else [("POST", f"/deployments/{dep['id']}/schedule", {})])  # a paused deployment gets no runs
    body = fake.writes[0].body
    assert "is_schedule_active" not in body and "schedule" not in body and "schedules" not in body
    assert report.exit_code == 0
    stored = fake.deployments[dep["id"]]
    assert stored["paused"] is paused
    assert sorted(s["id"] for s in stored["schedules"]) == schedule_ids  # the same schedules, not recreated
    assert replan(fake, [wanted]) == {"Cat Facts/hourly": "noop"}


def test_schedule_change_goes_through_the_schedules_endpoints():
    fake = pf.FakePrefect()
    old_hourly = {"schedule": {"interval": 3600}, "active": True}
    [dep] = owned(fake, pf.manifest("hourly", schedules=[CRON, old_hourly, RRULE]))
    ids = {("cron" if "cron" in s["schedule"] else "interval" if "interval" in s["schedule"] else "rrule"): s["id"]
           for s in dep["schedules"]}
    new = {"schedule": {"cron": "30 7 * * 1-5", "timezone": "UTC", "day_or": True}, "active": True}
    wanted = pf.manifest("hourly", schedules=[CRON, {"schedule": {"interval": 3600}, "active": False}, new])
    plan, report = apply(fake, [wanted])
    assert report.exit_code == 0
    base = f"/deployments/{dep['id']}/schedules"
    assert [(c.method, c.path) for c in fake.writes] == [
        ("POST", base),                          # the new schedule first,
        ("PATCH", f"{base}/{ids['interval']}"),
        ("DELETE", f"{base}/{ids['rrule']}"),    # the old one after it,
        ("POST", f"/deployments/{dep['id']}/schedule"),  # and the runs last
    ]
    [patched] = fake.calls("PATCH", f"{base}/{ids['interval']}")
    assert patched.body == {"active": False}
    [posted] = fake.calls("POST", base)
    assert posted.body == [{"schedule": {"cron": "30 7 * * 1-5", "timezone": "UTC", "day_or": True}, "active": True}]
    assert not any(ids["cron"] in c.path for c in fake.requests)  # the unchanged schedule is untouched
    assert not fake.calls("PATCH", f"/deployments/{dep['id']}")
    assert ids["cron"] in {s["id"] for s in fake.deployments[dep["id"]]["schedules"]}
    assert replan(fake, [wanted]) == {"Cat Facts/hourly": "noop"}


def test_schedule_and_field_change_together():
    fake = pf.FakePrefect()
    [dep] = owned(fake, pf.manifest("hourly", schedules=[CRON]))
    wanted = pf.manifest("hourly", schedules=[CRON, INTERVAL], description="two schedules")
    apply(fake, [wanted])
    assert [(c.method, c.path) for c in fake.writes] == [
        ("POST", f"/deployments/{dep['id']}/schedules"), ("PATCH", f"/deployments/{dep['id']}"),
        ("POST", f"/deployments/{dep['id']}/schedule")]
    assert fake.writes[1].body == {"description": "two schedules"}
    assert replan(fake, [wanted]) == {"Cat Facts/hourly": "noop"}


def test_parameter_schema_change_uses_the_upsert_with_the_complete_body():
    fake = pf.FakePrefect()
    [dep] = owned(fake, pf.manifest("hourly", schedules=[CRON], tags=["cats"]))
    schema = copy.deepcopy(pf.manifest("x")["parameter_openapi_schema"])
    schema["properties"]["n"]["default"] = 10
    wanted = pf.manifest("hourly", schedules=[CRON], tags=["cats"], parameter_openapi_schema=schema)
    plan, report = apply(fake, [wanted])
    assert report.exit_code == 0
    assert [(c.method, c.path) for c in fake.writes] == [
        ("POST", "/deployments/"), ("POST", f"/deployments/{dep['id']}/schedule")]
    body = fake.writes[0].body
    assert {"name", "flow_id", "description", "version", "work_queue_name", "work_pool_name", "tags", "parameters",
            "schedules", "paused", "infra_overrides", "infrastructure_document_id", "storage_document_id", "path",
            "entrypoint", "manifest_path", "parameter_openapi_schema", "enforce_parameter_schema"} <= set(body)
    assert body["name"] == "hourly" and body["flow_id"] == dep["flow_id"]
    assert body["parameter_openapi_schema"] == {k: v for k, v in schema.items() if v is not None}
    assert body["tags"] == ["cats"] and body["paused"] is False
    assert body["parameters"] == {"url": "https://catfact.ninja/facts"}
    assert body["infrastructure_document_id"] == dep["infrastructure_document_id"]
    stored = fake.deployments[dep["id"]]["parameter_openapi_schema"]  # same deployment, replaced
    assert stored == {k: v for k, v in schema.items() if v is not None}
    assert replan(fake, [wanted]) == {"Cat Facts/hourly": "noop"}


def test_noop_makes_no_write_at_all():
    fake = pf.FakePrefect()
    docs = [pf.manifest("hourly", schedules=[CRON, INTERVAL]), pf.manifest("daily")]
    owned(fake, *docs)
    plan, report = apply(fake, docs)
    assert fake.writes == []
    assert report.writes == 0 and report.exit_code == 0
    assert report.failures == []


def test_adopt_without_changes_writes_only_the_inventory():
    fake = pf.FakePrefect()
    doc = pf.manifest("hourly")
    fake.deploy_manifest(doc)
    plan, report = apply(fake, [doc])
    assert deployment_writes(fake) == []
    assert fake.inventory(pf.SOURCE) == ["Cat Facts/hourly"]
    assert [(r.action, r.status) for r in report.results] == [("adopt", OK)]


def test_adopt_with_changes_patches_only_those():
    fake = pf.FakePrefect()
    dep = fake.deploy_manifest(pf.manifest("hourly"))
    apply(fake, [pf.manifest("hourly", version="2")])
    assert [(c.method, c.path, c.body) for c in deployment_writes(fake)] == [
        ("PATCH", f"/deployments/{dep['id']}", {"version": "2"})]


# -- creates and deletes ------------------------------------------------------------------

def test_create_of_a_new_flow_upserts_the_flow_first():
    fake = pf.FakePrefect()
    plan, report = apply(fake, [pf.manifest("daily", flow="Weather Summary")])
    calls = [(c.method, c.path) for c in deployment_writes(fake)]
    assert calls == [("POST", "/flows/"), ("POST", "/deployments/")]
    assert fake.writes[0].path == "/block_documents/"  # the inventory, written first
    dep = fake.deployment("Weather Summary", "daily")
    assert dep is not None and fake.flows[dep["flow_id"]]["name"] == "Weather Summary"
    assert replan(fake, [pf.manifest("daily", flow="Weather Summary")]) == {"Weather Summary/daily": "noop"}


def test_create_with_schedules_and_pause_converges():
    fake = pf.FakePrefect()
    doc = pf.manifest("hourly", schedules=[CRON, INTERVAL], is_schedule_active=False, work_pool_name=None,
                      infra_overrides={"env.FOO": "bar"})
    apply(fake, [doc])
    [create] = fake.calls("POST", "/deployments/")
    assert create.body["paused"] is True
    assert len(create.body["schedules"]) == 2
    assert replan(fake, [doc]) == {"Cat Facts/hourly": "noop"}


def test_deletes_happen_after_creates_and_updates():
    fake = pf.FakePrefect()
    owned(fake, pf.manifest("changed"), pf.manifest("retired-1"), pf.manifest("retired-2"))
    docs = [pf.manifest("changed", description="x"), pf.manifest("new-1"), pf.manifest("new-2")]
    plan, report = apply(fake, docs)
    kinds = [("delete" if c.method == "DELETE" else "write") for c in deployment_writes(fake)]
    assert kinds.count("delete") == 2 and kinds.count("write") >= 3
    assert kinds.index("delete") > max(i for i, k in enumerate(kinds) if k == "write")
    assert report.exit_code == 0
    assert fake.deployment("Cat Facts", "retired-1") is None
    assert fake.inventory(pf.SOURCE) == ["Cat Facts/changed", "Cat Facts/new-1", "Cat Facts/new-2"]


def test_delete_of_a_deployment_already_gone_is_not_a_failure():
    fake = pf.FakePrefect()
    [dep] = owned(fake, pf.manifest("retired"))
    planned = pf.make_plan(fake, [])
    del fake.deployments[dep["id"]]  # deleted by hand between plan and apply
    report = planned.apply()
    assert [(r.action, r.status, r.message) for r in report.results] == [("delete", OK, "already gone")]
    assert report.exit_code == 0


# -- failures --------------------------------------------------------------------------------

def test_one_failing_action_does_not_stop_the_others():
    fake = pf.FakePrefect()
    broken, fine, _ = owned(fake, pf.manifest("broken"), pf.manifest("fine"), pf.manifest("retired"))
    fake.fail("PATCH", f"/deployments/{broken['id']}", 500, {"exception_message": "Internal Server Error"},
              times=None)
    docs = [pf.manifest("broken", tags=["x"]), pf.manifest("fine", tags=["x"]), pf.manifest("new")]
    plan, report = apply(fake, docs)
    assert report.exit_code == 1
    [failure] = report.failures
    assert (failure.identity, failure.status) == ("Cat Facts/broken", FAILED)
    assert "500" in failure.message and "\n" not in failure.message
    statuses = {r.identity: r.status for r in report.results}
    assert statuses == {"Cat Facts/broken": FAILED, "Cat Facts/fine": OK, "Cat Facts/new": OK,
                        "Cat Facts/retired": OK}
    assert fake.deployments[fine["id"]]["tags"] == ["x"]
    assert fake.deployment("Cat Facts", "new") is not None
    assert fake.deployment("Cat Facts", "retired") is None
    assert fake.inventory(pf.SOURCE) == ["Cat Facts/broken", "Cat Facts/fine", "Cat Facts/new"]
    # the next run converges
    fake.faults.clear()
    apply(fake, docs)
    assert replan(fake, docs) == {"Cat Facts/broken": "noop", "Cat Facts/fine": "noop", "Cat Facts/new": "noop"}


def test_a_failed_delete_stays_in_the_inventory():
    fake = pf.FakePrefect()
    _, retired = owned(fake, pf.manifest("kept"), pf.manifest("retired"))
    fake.fail("DELETE", f"/deployments/{retired['id']}", 500, {"detail": "boom"}, times=None)
    plan, report = apply(fake, [pf.manifest("kept")])
    assert report.exit_code == 1
    assert fake.inventory(pf.SOURCE) == ["Cat Facts/kept", "Cat Facts/retired"]
    assert replan(fake, [pf.manifest("kept")]) == {"Cat Facts/kept": "noop", "Cat Facts/retired": "delete"}


def test_a_failing_create_is_reported_and_the_rest_applied():
    fake = pf.FakePrefect()
    fake.fail("POST", "/deployments/", 422, {"detail": [{"loc": ["body", "name"], "msg": "bad name"}]})
    plan, report = apply(fake, [pf.manifest("a"), pf.manifest("b")])
    assert report.exit_code == 1
    assert sorted(r.status for r in report.results) == [FAILED, OK]
    assert "body.name: bad name" in report.failures[0].message


# -- blocks --------------------------------------------------------------------------------------

def test_anonymous_infrastructure_is_found_by_content_not_recreated():
    fake = pf.FakePrefect()
    existing = fake.add_block_document("process", data={k: v for k, v in INLINE_PROCESS.items()
                                                        if not k.startswith("_") and k != "block_type_slug"})
    before = set(fake.block_documents)
    plan, report = apply(fake, [pf.manifest("hourly", infrastructure=INLINE_PROCESS)])
    assert report.exit_code == 0
    [create] = fake.calls("POST", "/deployments/")
    assert create.body["infrastructure_document_id"] == existing["id"]
    new_docs = [d for i, d in fake.block_documents.items() if i not in before]
    assert [d["block_type"]["slug"] for d in new_docs] == ["json"]  # only the inventory


def test_one_anonymous_block_is_created_for_many_deployments_sharing_it():
    fake = pf.FakePrefect()
    docs = [pf.manifest(f"d{i}", infrastructure=INLINE_PROCESS) for i in range(4)]
    apply(fake, docs)
    created = [c for c in fake.calls("POST", "/block_documents/") if c.body.get("is_anonymous")]
    assert len(created) == 1
    ids = {c.body["infrastructure_document_id"] for c in fake.calls("POST", "/deployments/")}
    assert len(ids) == 1
    assert replan(fake, docs) == {f"Cat Facts/d{i}": "noop" for i in range(4)}


def test_anonymous_block_created_by_prefect_itself_is_reused():
    # Prefect's own `deployment apply` saved the inline block; reconcile must not create another one
    fake = pf.FakePrefect()
    fake.deploy_manifest(pf.manifest("old", infrastructure=INLINE_PROCESS))
    apply(fake, [pf.manifest("old", infrastructure=INLINE_PROCESS), pf.manifest("new", infrastructure=INLINE_PROCESS)])
    assert not [c for c in fake.calls("POST", "/block_documents/") if c.body.get("is_anonymous")]


def test_named_infrastructure_change_points_at_the_named_document():
    fake = pf.FakePrefect()
    prod = fake.add_block_document("process", "prod", {"type": "process", "stream_output": True})
    [dep] = owned(fake, pf.manifest("hourly"))
    named = {"type": "process", "_block_document_id": prod["id"], "_block_document_name": "prod",
             "_is_anonymous": False, "block_type_slug": "process", "_block_type_slug": "process"}
    apply(fake, [pf.manifest("hourly", infrastructure=named)])
    assert [(c.method, c.body) for c in fake.writes] == [("PATCH", {"infrastructure_document_id": prod["id"]})]


# -- the inventory ---------------------------------------------------------------------------------

def test_inventory_is_widened_before_the_first_deployment_write_and_narrowed_after():
    fake = pf.FakePrefect()
    owned(fake, pf.manifest("kept"), pf.manifest("retired"))
    plan, report = apply(fake, [pf.manifest("kept", tags=["x"]), pf.manifest("new")])
    writes = fake.writes
    inv = inventory_writes(fake)
    assert len(inv) == 2
    first_deployment_write = min(i for i, c in enumerate(writes) if c.path.startswith(("/deployments", "/flows")))
    assert writes.index(inv[0]) < first_deployment_write
    assert writes[-1] is inv[-1]
    assert inv[0].body["data"]["value"]["deployments"] == ["Cat Facts/kept", "Cat Facts/new", "Cat Facts/retired"]
    assert inv[1].body["data"]["value"]["deployments"] == ["Cat Facts/kept", "Cat Facts/new"]
    assert inv[1].body.get("merge_existing_data") is False  # replaced, not merged into the wider list


def test_first_run_creates_the_inventory_before_any_deployment_write():
    fake = pf.FakePrefect()
    apply(fake, [pf.manifest("hourly")])
    first = fake.writes[0]
    assert (first.method, first.path) == ("POST", "/block_documents/")
    assert first.body["name"].startswith("reconcile-inventory-")
    assert first.body["data"]["value"] == {"source": pf.SOURCE, "deployments": ["Cat Facts/hourly"]}
    assert fake.inventory(pf.SOURCE) == ["Cat Facts/hourly"]


def test_report_counts_the_writes_made():
    fake = pf.FakePrefect()
    owned(fake, pf.manifest("a"), pf.manifest("b"))
    plan, report = apply(fake, [pf.manifest("a", tags=["t"]), pf.manifest("c")])
    assert report.writes == len(fake.writes)
    assert {r.identity: r.action for r in report.results} == {
        "Cat Facts/a": "update", "Cat Facts/c": "create", "Cat Facts/b": "delete"}


# -- through the command line ----------------------------------------------------------------------

def test_cli_apply_converges_and_releases_its_lock(monkeypatch, capsys, tmp_path):
    fake = pf.FakePrefect()
    owned(fake, pf.manifest("hourly"))
    pf.route_default_transport(monkeypatch, fake)
    docs = [pf.manifest("hourly", tags=["x"]), pf.manifest("new")]
    root = pf.write_manifests(tmp_path, docs)
    code = cli.main(["apply", str(root), "--api-url", pf.API_URL, "--source", pf.SOURCE])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Apply complete: 1 created, 1 updated, 0 deleted, 0 adopted" in out
    assert replan(fake, docs) == {"Cat Facts/hourly": "noop", "Cat Facts/new": "noop"}
    assert not [d for d in fake.block_documents.values() if d["name"].startswith("reconcile-lock-")]


def test_cli_apply_with_a_failed_action_exits_1(monkeypatch, capsys, tmp_path):
    fake = pf.FakePrefect()
    [dep] = owned(fake, pf.manifest("hourly"))
    fake.fail("PATCH", f"/deployments/{dep['id']}", 500, {"exception_message": "Internal Server Error"}, times=None)
    pf.route_default_transport(monkeypatch, fake)
    root = pf.write_manifests(tmp_path, [pf.manifest("hourly", tags=["x"]), pf.manifest("new")])
    code = cli.main(["apply", str(root), "--api-url", pf.API_URL, "--source", pf.SOURCE])
    out, err = capsys.readouterr()
    assert "1 failed" in out
    assert fake.deployment("Cat Facts", "new") is not None  # the other action still ran
    assert code == 1
