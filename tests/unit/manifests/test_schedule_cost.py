"""Schedules that would keep the Prefect server busy, or fire too often, are refused before any write."""
from __future__ import annotations

import datetime as dt
import sys

import pytest

from reconciler.manifests import schedule_cost as cost
from reconciler.manifests import schedules

NOW = dt.datetime(2026, 11, 29, 12, tzinfo=dt.timezone.utc)
SETPOS_366 = "FREQ=SECONDLY;BYSETPOS=" + ",".join(map(str, range(1, 367)))


@pytest.mark.parametrize("rule, says", [
    (SETPOS_366, "FREQ=SECONDLY is refused"),
    ("FREQ=MINUTELY", "takes more than 100,000 steps"),
    ("FREQ=MINUTELY;INTERVAL=15", "takes more than 100,000 steps"),
    ("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", "takes more than 100,000 steps"),        # never occurs
    ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "takes more than 100,000 steps"),
    ("FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=30", "takes more than 100,000 steps"),
    ("FREQ=YEARLY;BYSETPOS=" + ",".join(map(str, range(1, 33))), "BYSETPOS lists 32 values; at most 31"),
    ("FREQ=DAILY;BYHOUR=" + ",".join(["1"] * 400), "BYHOUR lists 400 values; at most 366"),
    ("FREQ=DAILY;BYHOUR=" + ",".join(["1"] * 3300), "at most 6500 characters"),
    ("DTSTART:20261101T000000\nRRULE:FREQ=MINUTELY;BYSECOND=0,5", "fires twice within 10 seconds"),
], ids=["secondly-bysetpos", "minutely", "minutely-15", "never-daily", "never-yearly", "never-hourly",
        "bysetpos-list", "byhour-list", "too-long", "twice-in-10s"])
def test_costly_rrules_are_refused(rule, says):
    with pytest.raises(cost.Refused, match=None) as info:
        cost.check_rrule(rule, now=NOW)
    assert says in str(info.value)


@pytest.mark.parametrize("rule", [
    "FREQ=WEEKLY;BYDAY=MO,WE,FR;BYHOUR=7", "FREQ=HOURLY", "FREQ=DAILY", "FREQ=MONTHLY;BYDAY=-1FR",
    "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1", "DTSTART:20261101T000000\nRRULE:FREQ=MINUTELY;INTERVAL=30",
    "DTSTART;TZID=Europe/Amsterdam:20240101T090000\nRRULE:FREQ=DAILY", "FREQ=DAILY;UNTIL=20300101T000000Z",
    "FREQ=DAILY;UNTIL=20200301T000000Z", "RRULE:FREQ=DAILY\nRDATE:20270101T000000Z",
    "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29",
])
def test_ordinary_rrules_pass(rule):
    cost.check_rrule(rule, now=NOW)


def test_the_budget_is_counted_in_steps_and_the_previous_tracer_is_restored():
    def tracer(frame, event, arg):
        return None
    sys.settrace(tracer)
    try:
        with pytest.raises(cost.Refused):
            cost.check_rrule("FREQ=MINUTELY", now=NOW)
        assert sys.gettrace() is tracer
    finally:
        sys.settrace(None)


@pytest.mark.parametrize("expr, says", [
    ("* * * * * *", "five fields"), ("*/5 * * * * *", "five fields"), ("0 0 * * * * 2030", "five fields"),
    ("0 0 30 2 *", "never fires"), ("0 0 31 4 *", "never fires"),
])
def test_cron_with_seconds_or_never_firing_is_refused(expr, says):
    with pytest.raises(cost.Refused) as info:
        cost.check_cron(expr, True, now=NOW)
    assert says in str(info.value)


@pytest.mark.parametrize("expr", ["* * * * *", "@hourly", "0 0 29 2 *", "0 6 * * 1-5"])
def test_ordinary_crons_pass(expr):
    cost.check_cron(expr, True, now=NOW)


@pytest.mark.parametrize("schedule, says", [
    ({"interval": 0.001}, "at least 10 seconds"), ({"interval": 9}, "at least 10 seconds"),
    ({"interval": float("inf")}, "finite"), ({"interval": float("nan")}, "finite"),
    ({"interval": 1e12}, "at most"), ({"rrule": SETPOS_366}, "SECONDLY"),
    ({"cron": "* * * * * *"}, "five fields"),
])
def test_schedules_validate_names_the_key(schedule, says):
    with pytest.raises(schedules.ScheduleInvalid) as info:
        schedules.validate(schedule)
    assert says in str(info.value) and info.value.key == next(iter(schedule))


@pytest.mark.parametrize("seconds", [10, 40, 60, 86400 * 365])
def test_intervals_from_ten_seconds_pass(seconds):
    assert schedules.validate({"interval": seconds})["interval"] == float(seconds)
