"""diff: which action each deployment gets, and which fields count as a change.

The server side of every case is what Prefect 2.20 itself stores: a
deployment created the way `prefect deployment apply` creates it (see
`prefect_fake.FakePrefect.deploy_manifest`), optionally edited afterwards the
way the UI or the server would edit it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import pytest

from reconciler.manifests.configmodel import IgnoreRule
from reconciler.engine.plans import Change

try:
    from .. import prefect_fake as pf
except ImportError:
    import prefect_fake as pf

ID = "Cat Facts/hourly"
INTERVAL = {"schedule": {"interval": 3600}, "active": True}
CRON = {"schedule": {"cron": "0 6 * * *", "timezone": None, "day_or": True}, "active": True}
RRULE = {"schedule": {"rrule": "FREQ=WEEKLY;BYDAY=MO"}, "active": True}
# the flow's parameters, as `prefect deployment build` writes them (every case uses this schema)
SCHEMA = {
    "title": "Parameters", "type": "object",
    "properties": {
        "url": {"position": 0, "title": "url", "type": "string"},
        "n": {"default": 3, "position": 1, "title": "n", "type": "integer"},
        "some_key": {"position": 2, "title": "some_key"},
        "kwargs": {"position": 3, "title": "kwargs", "type": "object"},
        "ids": {"position": 4, "title": "ids", "type": "array", "items": {"type": "integer"}},
        "added": {"position": 5, "title": "added"},
        "removed": {"position": 6, "title": "removed"},
    },
    "required": ["url"], "definitions": None,
}


@dataclass
class Case:
    id: str
    manifest: dict[str, Any] = field(default_factory=dict)          # changes to the manifest the user has
    server: Optional[dict[str, Any]] = None                        # the manifest the server was deployed from
    edit: Optional[Callable[[dict[str, Any]], None]] = None         # then, changes on the server
    ignore: list[Any] = field(default_factory=list)
    action: str = "noop"
    fields: list[str] = field(default_factory=list)                  # the changed fields expected


def edit(**values: Any) -> Callable[[dict[str, Any]], None]:
    def apply(dep: dict[str, Any]) -> None:
        dep.update(values)
    return apply


def set_schedule(index: int, **values: Any) -> Callable[[dict[str, Any]], None]:
    def apply(dep: dict[str, Any]) -> None:
        dep["schedules"][index]["schedule"].update(values)
    return apply


def pause(dep: dict[str, Any]) -> None:
    dep.update(paused=True, is_schedule_active=False)


def server_bookkeeping(dep: dict[str, Any]) -> None:
    dep.update(created="2023-01-01T00:00:00+00:00", updated="2024-06-01T08:00:00.123000+00:00",
               status="READY", last_polled="2024-06-01T08:00:00+00:00", created_by={"id": "u1", "type": "USER"},
               updated_by={"id": "u2", "type": "USER"}, pull_steps=[{"prefect.deployments.steps.noop": {}}])
    for n, entry in enumerate(dep["schedules"]):
        entry.update(id=f"00000000-0000-4000-8000-0000000abc{n:02d}", created="2023-01-01T00:00:00+00:00",
                     updated="2024-06-01T00:00:00+00:00", max_active_runs=None, catchup=False)


def reverse_schedules(dep: dict[str, Any]) -> None:
    dep["schedules"].reverse()


def add_parameter(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(dep: dict[str, Any]) -> None:
        dep["parameters"][key] = value
    return apply


def both(*edits: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def apply(dep: dict[str, Any]) -> None:
        for e in edits:
            e(dep)
    return apply


CASES = [
    # -- values the server sets are never drift ------------------------------------------
    Case("as-prefect-apply-left-it", manifest=dict(schedules=[CRON])),
    Case("server-bookkeeping-fields", manifest=dict(schedules=[CRON, INTERVAL]), edit=server_bookkeeping),
    Case("interval-anchor-date-set-by-server", manifest=dict(schedules=[INTERVAL])),
    Case("interval-timezone-utc-filled-in", manifest=dict(schedules=[
        {"schedule": {"interval": 600, "timezone": None}, "active": True}])),
    Case("cron-timezone-null-kept-null-by-server", manifest=dict(schedules=[CRON])),
    Case("cron-timezone-utc-filled-in", manifest=dict(schedules=[CRON]), edit=set_schedule(0, timezone="UTC")),
    Case("rrule-timezone-utc-filled-in", manifest=dict(schedules=[RRULE])),
    Case("work-pool-default-agent-pool-for-null", manifest=dict(work_pool_name=None)),
    Case("schedule-order-does-not-matter", manifest=dict(schedules=[CRON, INTERVAL, RRULE]), edit=reverse_schedules),
    Case("tag-order-and-duplicates-do-not-matter", manifest=dict(tags=["b", "a", "a"]),
         edit=edit(tags=["a", "b"])),
    Case("legacy-schedule-key-same-as-schedules-list",
         manifest=dict(schedule={"cron": "0 6 * * *", "timezone": None}, schedules=pf.DROP),
         server=dict(schedules=[CRON])),
    Case("version-number-written-as-text", manifest=dict(version=1), server=dict(version="1")),
    Case("null-and-empty-overrides-are-the-same", manifest=dict(infra_overrides=None)),
    # -- ignore_differences keeps the server's value -------------------------------------
    Case("ignored-is-schedule-active-keeps-pause", edit=pause, ignore=["is_schedule_active"]),
    Case("ignored-parameter-key-set-from-ui", edit=add_parameter("some_key", "from-ui"),
         ignore=["parameters.some_key"]),
    Case("ignored-parameter-key-differs", manifest=dict(parameters={"url": "https://x", "some_key": 1}),
         server=dict(parameters={"url": "https://x", "some_key": 2}), ignore=["parameters.some_key"]),
    Case("ignored-whole-field", manifest=dict(description="repo"), edit=edit(description="ui"),
         ignore=["description"]),
    Case("ignored-key-does-not-hide-other-keys", manifest=dict(parameters={"url": "https://new"}),
         server=dict(), edit=add_parameter("some_key", "from-ui"), ignore=["parameters.some_key"],
         action="update", fields=["parameters.url"]),
    Case("ignore-rule-for-other-deployments-does-not-apply", edit=pause,
         ignore=[IgnoreRule(field="is_schedule_active", deployments=["Weather*/*"])],
         action="update", fields=["is_schedule_active"]),
    Case("ignore-rule-glob-matches-this-deployment", edit=pause,
         ignore=[IgnoreRule(field="is_schedule_active", deployments=["Cat Facts/*"])]),
    # -- real drift -------------------------------------------------------------------------
    Case("paused-in-the-ui", edit=pause, action="update", fields=["is_schedule_active"]),
    Case("parameter-value-changed", manifest=dict(parameters={"url": "https://new"}), server=dict(),
         action="update", fields=["parameters.url"]),
    Case("parameter-added-on-server", edit=add_parameter("n", 7), action="update", fields=["parameters.n"]),
    Case("nested-parameter-changed", manifest=dict(parameters={"url": "u", "kwargs": {"channel": "online", "k": 1}}),
         server=dict(parameters={"url": "u", "kwargs": {"channel": "retail", "k": 1}}),
         action="update", fields=["parameters.kwargs.channel"]),
    Case("two-parameters-changed", manifest=dict(parameters={"url": "a", "n": 1}),
         server=dict(parameters={"url": "b", "n": 2}), action="update", fields=["parameters.n", "parameters.url"]),
    Case("infra-override-changed", manifest=dict(infra_overrides={"env.FOO": "bar"}),
         server=dict(infra_overrides={"env.FOO": "baz"}), action="update", fields=["infra_overrides.env.FOO"]),
    Case("explicit-anchor-date-differs",
         manifest=dict(schedules=[{"schedule": {"interval": 3600, "anchor_date": "2024-01-01T00:00:00Z"}, "active": True}]),
         server=dict(schedules=[{"schedule": {"interval": 3600, "anchor_date": "2024-02-01T00:00:00+00:00"},
                                 "active": True}]),
         action="update", fields=["schedules"]),
    Case("interval-changed", manifest=dict(schedules=[{"schedule": {"interval": 60}, "active": True}]),
         server=dict(schedules=[INTERVAL]), action="update", fields=["schedules"]),
    Case("cron-timezone-differs", manifest=dict(schedules=[CRON]), edit=set_schedule(0, timezone="Europe/Berlin"),
         action="update", fields=["schedules"]),
    Case("schedule-deactivated", manifest=dict(schedules=[{**CRON, "active": False}]), server=dict(schedules=[CRON]),
         action="update", fields=["schedules"]),
    Case("schedule-removed-on-server", manifest=dict(schedules=[CRON, INTERVAL]), server=dict(schedules=[CRON]),
         action="update", fields=["schedules"]),
    Case("explicit-work-pool-differs", manifest=dict(work_pool_name="k8s"), server=dict(), action="update",
         fields=["work_pool_name"]),
    Case("description-and-tags", manifest=dict(description="new", tags=["x"]), server=dict(), action="update",
         fields=["description", "tags"]),
    Case("anonymous-infrastructure-content", manifest=dict(infrastructure={
        "type": "process", "env": {"A": "1"}, "stream_output": True, "_block_type_slug": "process"}),
         server=dict(), action="update", fields=["infrastructure"]),
    Case("parameter-schema-default-changed",
         edit=lambda dep: dep["parameter_openapi_schema"]["properties"]["n"].update(default=4),
         action="update", fields=["parameter_openapi_schema.properties.n.default"]),
    Case("enforce-parameter-schema", manifest=dict(enforce_parameter_schema=True), server=dict(),
         action="update", fields=["enforce_parameter_schema"]),
]


def plan_case(case: Case, owned: bool = True):
    fake = pf.FakePrefect()
    mine = pf.manifest("hourly", **{"parameter_openapi_schema": SCHEMA, **case.manifest})
    theirs = pf.manifest("hourly", **{"parameter_openapi_schema": SCHEMA,
                                      **(case.server if case.server is not None else case.manifest)})
    dep = fake.deploy_manifest(theirs)
    if case.edit:
        case.edit(dep)
    if owned:
        fake.set_inventory(pf.SOURCE, [ID])
    return fake, dep, pf.make_plan(fake, [mine], ignore=case.ignore).plan


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case(case: Case):
    _, _, plan = plan_case(case)
    [action] = plan.actions
    assert action.identity == ID
    assert (action.action, [c.field for c in action.changes]) == (case.action, case.fields)
    assert plan.conflicts == ()


@pytest.mark.parametrize("case", [c for c in CASES if c.action == "noop"], ids=lambda c: c.id)
def test_unmanaged_in_sync_deployment_is_adopted_without_changes(case: Case):
    _, _, plan = plan_case(case, owned=False)
    [action] = plan.actions
    assert (action.action, action.changes) == ("adopt", ())


def test_server_really_filled_in_what_the_noop_cases_rely_on():
    # guards the cases above against a fake that does not behave like Prefect 2.20
    _, dep, _ = plan_case(Case("x", manifest=dict(schedules=[INTERVAL, CRON], work_pool_name=None)))
    by_kind = {("interval" in s["schedule"]): s["schedule"] for s in dep["schedules"]}
    assert by_kind[True]["anchor_date"] and by_kind[True]["timezone"] == "UTC"
    assert by_kind[False]["timezone"] is None
    assert dep["work_pool_name"] == "default-agent-pool"
    assert dep["status"] == "NOT_READY" and all(s["id"] for s in dep["schedules"])


def test_dict_changes_are_reported_per_key_with_before_and_after():
    case = Case("x", manifest=dict(parameters={"url": "https://new", "added": [1, 2]}),
                server=dict(parameters={"url": "https://old", "removed": True}))
    _, _, plan = plan_case(case)
    assert plan.actions[0].changes == (
        Change("parameters.added", None, [1, 2]),
        Change("parameters.removed", True, None),
        Change("parameters.url", "https://old", "https://new"),
    )


def test_list_inside_a_parameter_is_shown_whole():
    case = Case("x", manifest=dict(parameters={"url": "u", "ids": [1, 2, 3]}),
                server=dict(parameters={"url": "u", "ids": [1, 9, 3]}))
    _, _, plan = plan_case(case)
    assert plan.actions[0].changes == (Change("parameters.ids", [1, 9, 3], [1, 2, 3]),)


def test_ignored_key_keeps_the_server_value_in_the_desired_state():
    # apply later sends desired fields: the ignored key must carry the server's value, not the manifest's
    case = Case("x", manifest=dict(parameters={"url": "https://new", "some_key": "repo"}),
                server=dict(parameters={"url": "https://old", "some_key": "ui"}), ignore=["parameters.some_key"])
    _, _, plan = plan_case(case)
    [action] = plan.actions
    assert [c.field for c in action.changes] == ["parameters.url"]


def test_pause_change_shows_before_and_after():
    _, _, plan = plan_case(Case("x", edit=pause))
    assert plan.actions[0].changes == (Change("is_schedule_active", False, True),)


# -- actions across several deployments ---------------------------------------------------------

def scenario():
    """A server with deployments in every relation to the manifests and the inventories."""
    fake = pf.FakePrefect()
    docs = {name: pf.manifest(name) for name in ("kept", "changed", "unmanaged", "theirs", "new")}
    fake.deploy_manifest(docs["kept"])
    fake.deploy_manifest(docs["changed"], description="edited in the UI")
    fake.deploy_manifest(docs["unmanaged"])
    fake.deploy_manifest(docs["theirs"])
    fake.deploy_manifest(pf.manifest("retired"))
    fake.deploy_manifest(pf.manifest("stranger"))          # on the server, in nobody's inventory
    fake.deploy_manifest(pf.manifest("their-retired"))     # another source's, not declared here
    fake.set_inventory(pf.SOURCE, ["Cat Facts/kept", "Cat Facts/changed", "Cat Facts/retired", "Cat Facts/vanished"])
    fake.set_inventory("gitlab.com/other/repo", ["Cat Facts/theirs", "Cat Facts/their-retired"])
    return fake, pf.make_plan(fake, list(docs.values())).plan


def test_every_action_kind():
    _, plan = scenario()
    got = {a.identity.split("/")[1]: a.action for a in plan.actions}
    assert got == {"new": "create", "changed": "update", "unmanaged": "adopt", "kept": "noop", "retired": "delete"}
    assert plan.summary == {"create": 1, "update": 1, "delete": 1, "adopt": 1, "noop": 1, "conflict": 1, "upload": 0}


def test_prune_is_inventory_minus_desired():
    _, plan = scenario()
    deleted = {a.identity for a in plan.actions if a.action == "delete"}
    assert deleted == {"Cat Facts/retired"}


@pytest.mark.parametrize("name", ["stranger", "their-retired"])
def test_deployment_not_in_this_inventory_is_never_deleted(name):
    _, plan = scenario()
    assert f"Cat Facts/{name}" not in {a.identity for a in plan.actions}


def test_deployment_in_another_inventory_is_a_conflict_not_adopted():
    _, plan = scenario()
    [conflict] = plan.conflicts
    assert (conflict.identity, conflict.owner) == ("Cat Facts/theirs", "gitlab.com/other/repo")
    assert conflict.manifest == "deployments/theirs-deployment.yaml"
    assert "Cat Facts/theirs" not in {a.identity for a in plan.actions}
    assert "Cat Facts/theirs" not in plan.inventory_after


def test_inventory_entry_already_gone_is_a_notice_not_a_delete():
    _, plan = scenario()
    assert any("Cat Facts/vanished" in n and "already gone" in n for n in plan.notices)


def test_inventory_after_is_what_is_declared_minus_conflicts():
    _, plan = scenario()
    assert plan.inventory_before == {"Cat Facts/kept", "Cat Facts/changed", "Cat Facts/retired", "Cat Facts/vanished"}
    assert plan.inventory_after == {"Cat Facts/kept", "Cat Facts/changed", "Cat Facts/unmanaged", "Cat Facts/new"}


def test_creates_come_first_and_deletes_last():
    _, plan = scenario()
    kinds = [a.action for a in plan.actions]
    assert kinds[0] == "create" and kinds[-1] == "delete"


def test_create_lists_the_declared_values_and_no_live_id():
    _, plan = scenario()
    [create] = [a for a in plan.actions if a.action == "create"]
    fields = [c.field for c in create.changes]
    assert {"work_queue_name", "parameters", "infrastructure", "entrypoint"} <= set(fields)
    assert all(c.before is None for c in create.changes)
    assert create.live_id is None and create.desired is not None


def test_update_and_delete_carry_the_live_fingerprint():
    fake, plan = scenario()
    by_name = {a.identity: a for a in plan.actions}
    for identity in ("Cat Facts/changed", "Cat Facts/retired"):
        dep = fake.deployment(*identity.split("/"))
        assert (by_name[identity].live_id, by_name[identity].live_updated) == (dep["id"], dep["updated"])


def test_first_run_without_inventory_adopts_everything_it_declares():
    fake = pf.FakePrefect()
    fake.deploy_manifest(pf.manifest("a"))
    fake.deploy_manifest(pf.manifest("b"))
    plan = pf.make_plan(fake, [pf.manifest("a")]).plan
    assert [(a.identity, a.action) for a in plan.actions] == [("Cat Facts/a", "adopt")]
    assert plan.inventory_before == frozenset()


def test_same_name_under_another_flow_is_another_deployment():
    fake = pf.FakePrefect()
    fake.deploy_manifest(pf.manifest("hourly", flow="Weather"))
    fake.set_inventory(pf.SOURCE, ["Weather/hourly"])
    plan = pf.make_plan(fake, [pf.manifest("hourly")]).plan
    assert sorted((a.identity, a.action) for a in plan.actions) == [
        ("Cat Facts/hourly", "create"), ("Weather/hourly", "delete")]


def test_an_ignored_path_leaves_the_manifests_own_values_as_they_are():
    """The server's value stands in for an ignored key only inside the comparison: the desired fields apply
    sends, and the plan's create lines, keep what the manifest says."""
    case = Case("x", manifest=dict(parameters={"url": "https://new", "kwargs": {"a": 1, "b": 2}}),
                server=dict(parameters={"url": "https://old", "kwargs": {"a": 1, "b": 9}}),
                ignore=["parameters.kwargs.b", "description"])
    _, _, plan = plan_case(case)
    [action] = plan.actions
    assert [c.field for c in action.changes] == ["parameters.url"]
    assert action.desired.fields["parameters"] == {"url": "https://new", "kwargs": {"a": 1, "b": 2}}
