"""What a schedule costs the Prefect server to expand: bounded before any write, in steps, not seconds.

Prefect 2.20's scheduler expands an rrule with python-dateutil on every pass, starting at the rule's
DTSTART or, without one, at 2020-01-01 (``DEFAULT_ANCHOR_DATE``), until it has the next 100 runs or
has looked 100 days ahead.  dateutil walks the calendar one FREQ period at a time, so FREQ=SECONDLY,
a dense FREQ=MINUTELY or a rule that never occurs (``BYMONTH=2;BYMONTHDAY=30``) keeps the server busy
for minutes.  Here the same expansion runs under a budget of dateutil steps (one step per calendar
period visited, weighted by the size of the period's set and the BYSETPOS list) and stops as soon as
the budget is spent.  Runs must also be at least 10 seconds apart (a worker polls every 10 s; Prefect
itself takes any positive interval), and a cron expression has five fields (at most once a minute).
"""
from __future__ import annotations

import datetime as dt
import functools
import sys
from typing import Any, Optional

from croniter import croniter
from croniter.croniter import CroniterBadDateError
from dateutil import rrule as _rrule
from dateutil import tz as _tz

MIN_SECONDS = 10                     # PREFECT_WORKER_QUERY_SECONDS: runs closer than a worker polls pile up
MAX_RRULE_LENGTH = 6500              # prefect._internal.schemas.validators.MAX_RRULE_LENGTH
MAX_STEPS = 100_000                  # weighted dateutil steps one scheduling pass may take
MAX_BYSETPOS = 31                    # positions in BYSETPOS
MAX_BYLIST = 366                     # values in any other BYxxx list
MAX_INTERVAL = 100 * 366 * 86400     # seconds: anchor + interval must stay a date the server can hold
SERVER_ANCHOR = dt.datetime(2020, 1, 1)   # prefect.server.schemas.schedules.DEFAULT_ANCHOR_DATE
RUNS, HORIZON = 100, dt.timedelta(days=100)   # PREFECT_API_SERVICES_SCHEDULER_MAX_RUNS / _MAX_SCHEDULED_TIME
_SET_SIZE = {"YEARLY": 366, "MONTHLY": 31, "WEEKLY": 7}

try:   # the methods dateutil calls once per calendar period it visits (one loop of rrule._iter)
    _STEP_CODES = frozenset(getattr(_rrule._iterinfo, n).__code__ for n in ("ydayset", "mdayset", "wdayset", "ddayset"))
except AttributeError:  # pragma: no cover - a dateutil without them: count every call the expansion makes
    _STEP_CODES = frozenset()


class Refused(ValueError):
    """A schedule the server must not be given; ``str()`` says why."""


class _OverBudget(Exception):
    pass


def rule_parts(text: str) -> list[dict[str, str]]:
    """KEY → value of each RRULE/EXRULE line of an rrule text (the other lines are dates)."""
    out = []
    for line in text.splitlines():
        name, sep, value = line.strip().partition(":")
        if not sep:
            name, value = "RRULE", name
        if name.split(";")[0].upper() not in ("RRULE", "EXRULE"):
            continue
        parts = {}
        for item in value.split(";"):
            key, _, val = item.partition("=")
            parts[key.strip().upper()] = val.strip()
        out.append(parts)
    return out


def check_rrule(text: str, now: Optional[dt.datetime] = None) -> None:
    """Raise Refused when expanding `text` as the server does would cost too much or fire too often."""
    if len(text) > MAX_RRULE_LENGTH:
        raise Refused(f"an rrule may be at most {MAX_RRULE_LENGTH} characters, as in Prefect (got {len(text)})")
    weight = 1
    for parts in rule_parts(text):
        freq = parts.get("FREQ", "").upper()
        if freq == "SECONDLY":
            raise Refused("FREQ=SECONDLY is refused: the server would walk every second since DTSTART "
                          "(2020-01-01 without one) on every scheduling pass; use FREQ=MINUTELY or a cron schedule")
        for key, value in parts.items():
            if not key.startswith("BY"):
                continue
            count, cap = len(value.split(",")), (MAX_BYSETPOS if key == "BYSETPOS" else MAX_BYLIST)
            if count > cap:
                raise Refused(f"{key} lists {count} values; at most {cap} are accepted")
        weight = max(weight, _SET_SIZE.get(freq, 1) * (1 + len(parts.get("BYSETPOS", "").split(",") if "BYSETPOS" in parts else ())))
    hour = (now or dt.datetime.now(dt.timezone.utc)).replace(minute=0, second=0, microsecond=0)
    _check_rrule_gaps(text, weight, hour)


@functools.lru_cache(maxsize=256)
def _check_rrule_gaps(text: str, weight: int, hour: dt.datetime) -> None:
    """The same rule expanded from the same hour is the same: checked once (a passed rule is remembered)."""
    _check_gaps(list(_expand(text, weight, hour)), "this rrule")


def _parse_like_server(text: str) -> Any:
    try:
        return _rrule.rrulestr(text, dtstart=SERVER_ANCHOR, cache=False)
    except ValueError:   # UNTIL in UTC wants an aware start
        return _rrule.rrulestr(text, dtstart=SERVER_ANCHOR.replace(tzinfo=_tz.UTC), cache=False)


@functools.lru_cache(maxsize=256)   # `watch` and `serve` plan the same rules again and again
def _expand(text: str, weight: int, now: dt.datetime) -> tuple[dt.datetime, ...]:
    """The server's next runs (at most RUNS, within HORIZON); Refused when that takes more than MAX_STEPS."""
    try:
        rule = _parse_like_server(text)
    except (ValueError, TypeError, OverflowError) as exc:
        raise Refused(f"the Prefect server could not expand this rrule: {exc}") from None
    steps = 0

    def count(frame: Any, event: str, arg: Any) -> None:
        nonlocal steps
        if not _STEP_CODES or frame.f_code in _STEP_CODES:
            steps += weight
            if steps > MAX_STEPS:
                raise _OverBudget
        return None

    dates: list[dt.datetime] = []
    previous = sys.gettrace()
    sys.settrace(count)   # counts Python calls in this thread only; the budget is steps, never time
    try:
        for start in (now.replace(tzinfo=None), now):   # naive or aware, as the rule's DTSTART is
            try:
                for when in rule.xafter(start, count=None, inc=True):
                    if when > start + HORIZON:
                        break
                    dates.append(when)
                    if len(dates) >= RUNS:
                        break
                break
            except TypeError:   # can't compare naive and aware datetimes: try the other
                dates.clear()
    except _OverBudget:
        raise Refused(
            f"expanding this rrule as the Prefect server does on every scheduling pass (from DTSTART, or "
            f"2020-01-01 without one, to its next {RUNS} runs within {HORIZON.days} days) takes more than "
            f"{MAX_STEPS:,} steps: it occurs too rarely or never, or fires too densely; add a recent DTSTART "
            f"or use a cron schedule") from None
    finally:
        sys.settrace(previous)
    return tuple(dates)


def _check_gaps(dates: list[dt.datetime], what: str) -> None:
    ordered = sorted(set(dates))
    for earlier, later in zip(ordered, ordered[1:]):
        gap = (later - earlier).total_seconds()
        if gap < MIN_SECONDS:
            raise Refused(f"{what} fires twice within {MIN_SECONDS} seconds ({earlier.isoformat()} and "
                          f"{gap:g}s later); runs must be at least {MIN_SECONDS} seconds apart")


def check_cron(expr: str, day_or: bool, now: Optional[dt.datetime] = None) -> None:
    """Refuse cron's seconds field (croniter's 6th) and expressions that never fire.

    The next runs after the start of this minute are those after now (cron fires on whole minutes), so
    an expression that passed is not checked again within the minute (10,000 manifests share a few)."""
    minute = (now or dt.datetime.now(dt.timezone.utc)).replace(tzinfo=None, second=0, microsecond=0)
    _check_cron(expr, day_or, minute)


@functools.lru_cache(maxsize=512)
def _check_cron(expr: str, day_or: bool, start: dt.datetime) -> None:
    if not expr.strip().startswith("@") and len(expr.split()) != 5:
        raise Refused(f"a cron expression has five fields (minute hour day month weekday), got "
                      f"{len(expr.split())}: {expr!r} (croniter's seconds and year fields are refused: "
                      f"a seconds field fires up to every second)")
    try:
        it = croniter(expr, start, day_or=day_or)
        dates = [it.get_next(dt.datetime) for _ in range(3)]
    except (CroniterBadDateError, ValueError, KeyError):
        raise Refused(f"cron expression {expr!r} never fires") from None
    _check_gaps(dates, f"cron expression {expr!r}")


def check_interval(seconds: float) -> None:
    """Refuse intervals under 10 seconds (Prefect takes any positive one) and beyond 100 years."""
    if seconds > MAX_INTERVAL:
        raise Refused(f"interval must be at most {MAX_INTERVAL} seconds (100 years; got {seconds:g})")
    if seconds < MIN_SECONDS:
        raise Refused(f"interval must be at least {MIN_SECONDS} seconds (got {seconds:g}): runs closer than "
                      f"a worker polls (every {MIN_SECONDS} s) only pile up (Prefect itself accepts any positive interval)")
