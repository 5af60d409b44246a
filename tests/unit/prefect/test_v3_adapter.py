"""The Prefect 3 adapter: schedule slugs, what 3.x rewrites, templates refused, infrastructure without a pool type."""
from __future__ import annotations

from reconciler.prefect.v3 import V3Adapter
from reconciler.prefect.v3fields import schedule_slugs

CRON = {"schedule": {"cron": "0 * * * *", "timezone": "UTC", "day_or": True}, "active": True}
RRULE = {"schedule": {"rrule": "FREQ=WEEKLY;BYDAY=MO", "timezone": "UTC"}, "active": False}


def test_a_schedules_slug_follows_its_settings_not_its_place_or_its_active_flag():
    first = schedule_slugs([CRON, RRULE])
    assert first[0].startswith("cron-") and first[1].startswith("rrule-")
    assert schedule_slugs([RRULE, CRON]) == [first[1], first[0]]
    assert schedule_slugs([{**CRON, "active": False}])[0] == first[0]
    assert schedule_slugs([{"schedule": {**CRON["schedule"], "cron": "5 * * * *"}, "active": True}])[0] != first[0]


def test_a_repeated_schedule_gets_its_own_slug():
    slugs = schedule_slugs([CRON, CRON, CRON])
    assert len(set(slugs)) == 3 and slugs[1] == slugs[0] + "-2" and slugs[2] == slugs[0] + "-3"


def test_create_and_schedule_writes_carry_the_slugs_and_live_schedules_read_as_the_manifest_wrote_them():
    adapter = V3Adapter()
    wanted = [CRON, RRULE]
    slugs = schedule_slugs(wanted)
    assert [b["slug"] for b in adapter.schedule_bodies(wanted, wanted)] == slugs
    assert adapter.schedule_bodies(wanted, [RRULE]) == [{**RRULE, "slug": slugs[1]}]
    stored = {"rrule": "DTSTART:20200101T000000\nFREQ=WEEKLY;BYDAY=MO", "timezone": "UTC"}
    assert adapter.live_schedule(stored) == RRULE["schedule"]


def test_a_template_in_what_becomes_job_variables_or_pull_steps_is_refused_on_prefect3():
    import pytest

    from reconciler.manifests.blocks import BlockRef
    from reconciler.prefect.v3fields import Unrepresentable
    adapter = V3Adapter()
    base = {"schedules": [], "infra_overrides": {}, "path": "code", "work_pool_name": None, "work_queue_name": None,
            "parameter_openapi_schema": {}, "enforce_parameter_schema": None}
    cases = [
        ("infra_overrides", {**base, "infra_overrides": {"env.TOKEN": "{{ prefect.blocks.secret.prod }}"}}, None, None),
        ("infrastructure", base, BlockRef("process", None, {"env": {"A": "{% raw %}"}}), None),
        ("storage", base, None, BlockRef("s3", "code", {"bucket_path": "b/{{ prefect.blocks.secret.prod }}"})),
        ("path", {**base, "path": "{{ prefect.variables.x }}"}, None, BlockRef("s3", "code", {"bucket_path": "b"})),
    ]
    for field, fields, infrastructure, storage in cases:
        with pytest.raises(Unrepresentable) as caught:
            adapter.desired_fields(fields, infrastructure, storage, [])
        assert caught.value.field == field


def test_an_infrastructure_type_without_a_pool_type_runs_in_the_pool_the_manifest_names():
    import pytest

    from reconciler.manifests.blocks import BlockRef
    from reconciler.prefect.v3fields import Unrepresentable
    adapter = V3Adapter()
    fields = {"schedules": [], "infra_overrides": {"env.A": "1"}, "path": None, "work_pool_name": "gpu",
              "work_queue_name": None, "parameter_openapi_schema": {}, "enforce_parameter_schema": None}
    cloud_run = BlockRef("cloud-run-job", None, {"image": "x", "region": "eu"})
    notes: list[str] = []
    out = adapter.desired_fields(fields, cloud_run, None, notes)
    assert (out["work_pool_name"], out["work_pool_type"], out["infra_overrides"]) == ("gpu", None, {"env.A": "1"})
    assert len(notes) == 1 and "cloud-run-job" in notes[0] and "gpu" in notes[0]
    with pytest.raises(Unrepresentable, match="^a cloud-run-job infrastructure block"):
        adapter.desired_fields({**fields, "work_pool_name": None}, cloud_run, None, [])
    with pytest.raises(Unrepresentable, match="^an azure-container-instance-job"):
        adapter.desired_fields({**fields, "work_pool_name": None}, BlockRef("azure-container-instance-job"), None, [])


def test_prefect2s_agent_pool_becomes_the_pool_of_the_infrastructure_type():
    fields = {"schedules": [], "infra_overrides": {}, "path": None, "work_pool_name": "default-agent-pool",
              "work_queue_name": "q", "parameter_openapi_schema": {}, "enforce_parameter_schema": None}
    notes: list[str] = []
    out = V3Adapter({"process": "team-process"}).desired_fields(fields, None, None, notes)
    assert (out["work_pool_name"], out["work_pool_type"], out["work_queue_name"]) == ("team-process", "process", "q")
    assert len(notes) == 1 and "agent pool" in notes[0]
