"""Prefect 3 schedules: slugs derived from the manifest, and 3.x's own rewrites never read as drift."""
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
