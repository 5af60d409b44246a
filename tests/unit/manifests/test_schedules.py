"""schedules: validation, the canonical form of a manifest's schedule, and of the server's."""
from __future__ import annotations

import pytest

from reconciler.manifests import schedules
from reconciler.manifests.schedules import ScheduleInvalid


@pytest.mark.parametrize(
    "raw, canonical",
    [
        pytest.param({"cron": "0 * * * *"}, {"cron": "0 * * * *", "timezone": "UTC", "day_or": True},
                     id="cron-defaults"),
        pytest.param({"cron": "0 * * * *", "timezone": None, "day_or": None},
                     {"cron": "0 * * * *", "timezone": "UTC", "day_or": True}, id="cron-nulls"),
        pytest.param({"cron": "0 6 * * 1", "timezone": "Europe/Amsterdam", "day_or": False},
                     {"cron": "0 6 * * 1", "timezone": "Europe/Amsterdam", "day_or": False}, id="cron-explicit"),
        pytest.param({"cron": "@hourly"}, {"cron": "@hourly", "timezone": "UTC", "day_or": True}, id="cron-alias"),
        pytest.param({"interval": 600}, {"interval": 600.0, "timezone": "UTC"}, id="interval-int"),
        pytest.param({"interval": 40.0, "timezone": None}, {"interval": 40.0, "timezone": "UTC"},
                     id="interval-float"),
        pytest.param({"interval": 600, "timezone": "America/Chicago"},
                     {"interval": 600.0, "timezone": "America/Chicago"}, id="interval-timezone"),
        pytest.param({"interval": 3600, "anchor_date": "2022-10-13T20:21:48.191413+00:00", "timezone": "UTC"},
                     {"interval": 3600.0, "timezone": "UTC", "anchor_date": "2022-10-13T20:21:48.191413+00:00"},
                     id="interval-anchor"),
        pytest.param({"interval": 60, "anchor_date": "2024-01-01T01:00:00+01:00"},
                     {"interval": 60.0, "timezone": "UTC", "anchor_date": "2024-01-01T00:00:00+00:00"},
                     id="interval-anchor-offset-to-utc"),
        pytest.param({"interval": 60, "anchor_date": "2024-01-01T00:00:00Z"},
                     {"interval": 60.0, "timezone": "UTC", "anchor_date": "2024-01-01T00:00:00+00:00"},
                     id="interval-anchor-z"),
        pytest.param({"interval": 60, "anchor_date": "2024-01-01"},
                     {"interval": 60.0, "timezone": "UTC", "anchor_date": "2024-01-01T00:00:00+00:00"},
                     id="interval-anchor-naive-is-utc"),
        pytest.param({"rrule": "FREQ=WEEKLY;BYDAY=MO,WE,FR;BYHOUR=7", "timezone": "Europe/Amsterdam"},
                     {"rrule": "FREQ=WEEKLY;BYDAY=MO,WE,FR;BYHOUR=7", "timezone": "Europe/Amsterdam"}, id="rrule"),
        pytest.param({"rrule": "FREQ=DAILY;UNTIL=20300101T000000"},
                     {"rrule": "FREQ=DAILY;UNTIL=20300101T000000", "timezone": "UTC"}, id="rrule-until"),
        pytest.param({"rrule": "DTSTART;TZID=Europe/Amsterdam:20240101T070000\nRRULE:FREQ=DAILY"},
                     {"rrule": "DTSTART;TZID=Europe/Amsterdam:20240101T070000\nRRULE:FREQ=DAILY", "timezone": "UTC"},
                     id="rrule-dtstart"),
    ],
)
def test_validate_gives_canonical_form(raw, canonical):
    assert schedules.validate(raw) == canonical


def test_interval_is_always_a_float():
    out = schedules.validate({"interval": 600})
    assert isinstance(out["interval"], float)


@pytest.mark.parametrize(
    "raw, key, message",
    [
        pytest.param({"cron": "61 * * * *"}, "cron", "invalid cron expression '61 * * * *'", id="cron-minute"),
        pytest.param({"cron": "0 * * *"}, "cron", "invalid cron expression '0 * * *'", id="cron-4-fields"),
        pytest.param({"cron": 5}, "cron", "invalid cron expression 5", id="cron-int"),
        pytest.param({"cron": "0 * * * *", "day_or": "yes"}, "day_or", "day_or must be true or false, not 'yes'",
                     id="day_or"),
        pytest.param({"rrule": "FREQ=SOMETIMES"}, "rrule", "invalid rrule 'FREQ=SOMETIMES': invalid 'FREQ': SOMETIMES",
                     id="rrule-freq"),
        pytest.param({"rrule": "FREQ=DAILY;COUNT=3"}, "rrule",
                     "rrule with COUNT is not supported by Prefect; use UNTIL", id="rrule-count"),
        pytest.param({"rrule": "freq=daily;count=3"}, "rrule",
                     "rrule with COUNT is not supported by Prefect; use UNTIL", id="rrule-count-lowercase"),
        pytest.param({"rrule": 7}, "rrule", "rrule must be a string, not 7", id="rrule-int"),
        pytest.param({"cron": "0 * * * *", "timezone": "Mars/Olympus"}, "timezone", "unknown timezone 'Mars/Olympus'",
                     id="timezone"),
        pytest.param({"interval": 60, "timezone": 5}, "timezone", "unknown timezone 5", id="timezone-int"),
        pytest.param({"interval": 0}, "interval", "interval must be greater than 0 (got 0)", id="interval-0"),
        pytest.param({"interval": -5}, "interval", "interval must be greater than 0 (got -5)", id="interval-neg"),
        pytest.param({"interval": "60"}, "interval", "interval must be a number of seconds, not '60'",
                     id="interval-string"),
        pytest.param({"interval": True}, "interval", "interval must be a number of seconds, not True",
                     id="interval-bool"),
        pytest.param({"interval": 60, "anchor_date": "yesterday"}, "anchor_date",
                     "not an ISO 8601 date-time: 'yesterday'", id="anchor"),
        pytest.param({"cron": "0 * * * *", "tz": "UTC"}, "tz",
                     "unknown key for a cron schedule (allowed: cron, day_or, timezone)", id="unknown-key"),
        pytest.param({"interval": 60, "day_or": True}, "day_or",
                     "unknown key for a interval schedule (allowed: anchor_date, interval, timezone)",
                     id="cron-key-on-interval"),
        pytest.param({"every": 5}, "", "a schedule needs one of `interval`, `cron` or `rrule`", id="no-kind"),
        pytest.param("0 * * * *", "", "a schedule must be a mapping, not str", id="not-mapping"),
    ],
)
def test_invalid_schedules(raw, key, message):
    with pytest.raises(ScheduleInvalid) as info:
        schedules.validate(raw)
    assert info.value.key == key
    assert str(info.value) == message


def test_rrule_with_a_utc_until_is_accepted_like_prefect_does():
    # BUG: validate() parses with a naive dtstart, so dateutil refuses a UTC (`Z`) UNTIL
    # ("RRULE UNTIL values must be specified in UTC when DTSTART is timezone-aware"),
    # although Prefect 2.20 accepts it and the COUNT error itself says "use UNTIL".
    rule = "FREQ=DAILY;UNTIL=20300101T000000Z"
    assert schedules.validate({"rrule": rule}) == {"rrule": rule, "timezone": "UTC"}


def test_random_cron_expressions_are_rejected_like_prefect_does():
    # BUG: croniter accepts `R` (random) fields, Prefect 2.20's validate_cron_string refuses them
    # ("Random and Hashed expressions are unsupported"), so the server would answer 422 mid-apply.
    with pytest.raises(ScheduleInvalid) as info:
        schedules.validate({"cron": "R * * * *"})
    assert info.value.key == "cron"


@pytest.mark.parametrize(
    "live, canonical",
    [
        pytest.param({"cron": "0 * * * *", "timezone": None, "day_or": None},
                     {"cron": "0 * * * *", "timezone": "UTC", "day_or": True}, id="cron-nulls"),
        pytest.param({"cron": "0 * * * *", "timezone": "Europe/Brussels", "day_or": False},
                     {"cron": "0 * * * *", "timezone": "Europe/Brussels", "day_or": False}, id="cron"),
        pytest.param({"interval": 3600, "anchor_date": "2026-11-25T16:32:29.911452+00:00", "timezone": "UTC"},
                     {"interval": 3600.0, "timezone": "UTC", "anchor_date": "2026-11-25T16:32:29.911452+00:00"},
                     id="interval"),
        pytest.param({"interval": 60.0, "anchor_date": None, "timezone": None},
                     {"interval": 60.0, "timezone": "UTC"}, id="interval-no-anchor"),
        pytest.param({"rrule": "FREQ=DAILY", "timezone": None}, {"rrule": "FREQ=DAILY", "timezone": "UTC"},
                     id="rrule"),
    ],
)
def test_from_live_canonical_form(live, canonical):
    assert schedules.from_live(live) == canonical


@pytest.mark.parametrize(
    "manifest_side, server_side",
    [
        pytest.param({"cron": "0 * * * *", "timezone": None, "day_or": True},
                     {"cron": "0 * * * *", "timezone": "UTC", "day_or": True}, id="cron"),
        pytest.param({"interval": 600, "anchor_date": "2024-01-01T00:00:00Z"},
                     {"interval": 600.0, "anchor_date": "2024-01-01T00:00:00+00:00", "timezone": "UTC"},
                     id="interval"),
        pytest.param({"rrule": "FREQ=WEEKLY;BYDAY=MO", "timezone": "Europe/Amsterdam"},
                     {"rrule": "FREQ=WEEKLY;BYDAY=MO", "timezone": "Europe/Amsterdam"}, id="rrule"),
    ],
)
def test_manifest_and_server_shapes_meet(manifest_side, server_side):
    """What a manifest says and what the server returns for it compare equal (no phantom diff)."""
    assert schedules.validate(manifest_side) == schedules.from_live(server_side)


def test_sort_key_orders_independently_of_key_order():
    a = {"schedule": {"cron": "0 * * * *", "timezone": "UTC", "day_or": True}, "active": True}
    b = {"active": True, "schedule": {"day_or": True, "timezone": "UTC", "cron": "0 * * * *"}}
    assert schedules.sort_key(a) == schedules.sort_key(b)
