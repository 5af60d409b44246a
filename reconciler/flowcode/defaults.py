"""A default value as pydantic's `encode_default` writes it into a JSON schema (by the value's own type)."""
from __future__ import annotations

import datetime as dt
import decimal
import pathlib
import uuid
from typing import Any

from ..errors import ReconcileError
from .module import Member, Unknown


def duration(td: dt.timedelta) -> str:
    """pydantic_core's ISO 8601 form of a timedelta (365-day years; the sign in front)."""
    sign, td = ("-" if td < dt.timedelta(0) else ""), abs(td)
    years, days = divmod(td.days, 365)
    hours, rest = divmod(td.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    date = (f"{years}Y" if years else "") + (f"{days}D" if days else "")
    secs = f"{seconds}.{td.microseconds:06d}".rstrip("0") if td.microseconds else (f"{seconds}" if seconds else "")
    clock = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "") + (f"{secs}S" if secs else "")
    return f"{sign}P{date}" + (f"T{clock}" if clock else "" if date else "T0S")


def encode(value: Any) -> Any:
    """A default as pydantic's `encode_default` writes it into the schema (by the value's own type)."""
    if isinstance(value, Member):
        return encode(value.value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise ReconcileError("a bytes default that is not UTF-8 (Prefect 2.20's build fails on it too)") from None
    if isinstance(value, (list, tuple, set, frozenset)):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        keys = [k.value if isinstance(k, Member) else k for k in value]
        if any(isinstance(k, bool) or not isinstance(k, (str, int, float)) for k in keys):
            raise Unknown(repr(value))
        return {str(k): encode(v) for k, v in zip(keys, value.values())}
    if isinstance(value, dt.timedelta):
        return duration(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)) and getattr(value, "tzinfo", None) is None:
        return value.isoformat()
    if isinstance(value, (decimal.Decimal, pathlib.PurePath, uuid.UUID)):
        return str(value)
    raise Unknown(repr(value))
