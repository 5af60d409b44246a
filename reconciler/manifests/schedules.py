"""Schedules: validation before any write, and one canonical shape for comparison.

Prefect 2 manifests carry three kinds of schedule (interval, cron, rrule).  The
server fills in what a manifest leaves out (an interval's ``anchor_date``, a
``timezone`` of UTC), so both sides are brought to one canonical form here.
"""
from __future__ import annotations

import datetime as dt
import functools
import json
import math
import zoneinfo
from typing import Any

from croniter import croniter
from dateutil import rrule as _rrule

from . import schedule_cost


class ScheduleInvalid(ValueError):
    """Raised with the message and the key path (relative to the schedule) at fault."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(message)


def kind(schedule: dict[str, Any]) -> str:
    for name in ("interval", "cron", "rrule"):
        if name in schedule:
            return name
    raise ScheduleInvalid("", "a schedule needs one of `interval`, `cron` or `rrule`")


_ALLOWED = {
    "interval": {"interval", "anchor_date", "timezone"},
    "cron": {"cron", "timezone", "day_or"},
    "rrule": {"rrule", "timezone"},
}


def validate(schedule: Any) -> dict[str, Any]:
    """Check one schedule mapping and return its canonical form (raises ScheduleInvalid)."""
    if not isinstance(schedule, dict):
        raise ScheduleInvalid("", f"a schedule must be a mapping, not {type(schedule).__name__}")
    which = kind(schedule)
    unknown = set(schedule) - _ALLOWED[which]
    if unknown:
        key = sorted(unknown)[0]
        raise ScheduleInvalid(key, f"unknown key for a {which} schedule (allowed: {', '.join(sorted(_ALLOWED[which]))})")
    tz = schedule.get("timezone")
    if tz is not None:
        if not isinstance(tz, str) or not _known_timezone(tz):
            raise ScheduleInvalid("timezone", f"unknown timezone {tz!r}")
    if which == "interval":
        return _interval(schedule)
    if which == "cron":
        return _cron(schedule)
    return _rrule_schedule(schedule)


def _known_timezone(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _interval(s: dict[str, Any]) -> dict[str, Any]:
    value = s["interval"]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ScheduleInvalid("interval", f"interval must be a number of seconds, not {value!r}")
    if not math.isfinite(value):
        raise ScheduleInvalid("interval", f"interval must be a finite number of seconds, not {value!r}")
    if value <= 0:
        raise ScheduleInvalid("interval", f"interval must be greater than 0 (got {value})")
    _bounded(schedule_cost.check_interval, "interval", float(value))
    out: dict[str, Any] = {"interval": float(value), "timezone": s.get("timezone") or "UTC"}
    anchor = s.get("anchor_date")
    if anchor is not None:
        out["anchor_date"] = canonical_datetime(anchor, "anchor_date")
    return out


def _cron(s: dict[str, Any]) -> dict[str, Any]:
    expr = s["cron"]
    if not isinstance(expr, str) or not _valid_cron(expr):
        raise ScheduleInvalid("cron", f"invalid cron expression {expr!r}")
    if any(part.casefold() in ("r", "h") for part in expr.split()):
        # croniter's random/hashed fields; Prefect's validate_cron_string refuses them
        raise ScheduleInvalid("cron", f"random and hashed cron expressions are not supported by Prefect: {expr!r}")
    day_or = s.get("day_or", True)
    if day_or is None:
        day_or = True
    if not isinstance(day_or, bool):
        raise ScheduleInvalid("day_or", f"day_or must be true or false, not {day_or!r}")
    _bounded(schedule_cost.check_cron, "cron", expr, day_or)
    return {"cron": expr, "timezone": s.get("timezone") or "UTC", "day_or": day_or}


@functools.lru_cache(maxsize=512)
def _valid_cron(expr: str) -> bool:
    return croniter.is_valid(expr)


def _rrule_schedule(s: dict[str, Any]) -> dict[str, Any]:
    text = s["rrule"]
    if not isinstance(text, str):
        raise ScheduleInvalid("rrule", f"rrule must be a string, not {text!r}")
    if len(text) > schedule_cost.MAX_RRULE_LENGTH:   # before parsing: a huge text is slow to parse
        _bounded(schedule_cost.check_rrule, "rrule", text)
    try:
        _rrule.rrulestr(text, cache=False)  # no dtstart: dateutil matches it to UNTIL's tz, as in Prefect
    except (ValueError, TypeError) as exc:
        raise ScheduleInvalid("rrule", f"invalid rrule {text!r}: {exc}") from None
    if "COUNT" in text.upper():
        # Prefect refuses COUNT-based rrules for deployments (they would run out).
        raise ScheduleInvalid("rrule", "rrule with COUNT is not supported by Prefect; use UNTIL")
    _bounded(schedule_cost.check_rrule, "rrule", text)
    return {"rrule": text, "timezone": s.get("timezone") or "UTC"}


def _bounded(check: Any, key: str, *args: Any) -> None:
    try:
        check(*args)
    except schedule_cost.Refused as exc:
        raise ScheduleInvalid(key, str(exc)) from None


def canonical_datetime(value: Any, key: str) -> str:
    if isinstance(value, dt.datetime):
        parsed = value
    else:
        try:
            parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise ScheduleInvalid(key, f"not an ISO 8601 date-time: {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.astimezone(dt.timezone.utc).isoformat()


def from_live(schedule: dict[str, Any]) -> dict[str, Any]:
    """Canonical form of a schedule as the server returns it (server-set values kept)."""
    which = kind(schedule)
    if which == "interval":
        out = {"interval": float(schedule["interval"]), "timezone": schedule.get("timezone") or "UTC"}
        if schedule.get("anchor_date"):
            out["anchor_date"] = canonical_datetime(schedule["anchor_date"], "anchor_date")
        return out
    if which == "cron":
        day_or = schedule.get("day_or")
        return {"cron": schedule["cron"], "timezone": schedule.get("timezone") or "UTC",
                "day_or": True if day_or is None else day_or}
    return {"rrule": schedule["rrule"], "timezone": schedule.get("timezone") or "UTC"}


def sort_key(entry: dict[str, Any]) -> str:
    return json.dumps(entry, sort_keys=True)
