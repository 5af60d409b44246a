"""Short, stable renderings of field values for plan lines."""
from __future__ import annotations

import json
from typing import Any

WIDTH = 72


def short(value: Any, width: int = WIDTH) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    else:
        text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(", ", ": "), default=str)
    if len(text) > width:
        if isinstance(value, dict):
            return f"{{…{len(value)} keys}}"
        if isinstance(value, list):
            return f"[…{len(value)} items]"
        return text[: width - 1] + "…"
    return text


def summary_line(summary: dict[str, int]) -> str:
    line = (f"Plan: {summary['create']} to create, {summary['update']} to update, "
            f"{summary['delete']} to delete, {summary['adopt']} to adopt")
    pools = summary.get("work_pool", 0)
    if pools:
        line += f"; {pools} work pool{'s' if pools != 1 else ''} to create"
    uploads = summary.get("upload", 0)
    if uploads:
        line += f"; {uploads} bundle{'s' if uploads != 1 else ''} to upload"
    return line + "."


def size(n: int) -> str:
    """12.4 kB, 980 B, 3.1 MB (decimal units, like most transfer tools)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def upload_line(upload) -> str:
    files = len(upload.write)
    parts = [f"{files} file{'s' if files != 1 else ''} changed"]
    if upload.remove:
        parts.append(f"{len(upload.remove)} removed")
    parts.append(size(upload.bytes))
    where = upload.storage + (f" path {upload.path}" if upload.path else "")
    return f"{upload.bundle} → {where} ({', '.join(parts)})"


def schedule(entry: dict[str, Any]) -> str:
    """`cron "0 * * * *" UTC`, `interval 3600s UTC`, `rrule "FREQ=…" Europe/Amsterdam (inactive)`."""
    s = entry.get("schedule", {})
    if "interval" in s:
        text = f"interval {s['interval']:g}s {s.get('timezone') or 'UTC'}"
        if s.get("anchor_date"):
            text += f" from {s['anchor_date']}"
    elif "cron" in s:
        text = f"cron {json.dumps(s['cron'])} {s.get('timezone') or 'UTC'}"
        if s.get("day_or") is False:
            text += " (day_and)"
    else:
        text = f"rrule {json.dumps(s.get('rrule'))} {s.get('timezone') or 'UTC'}"
    return text if entry.get("active", True) else text + " (inactive)"


def schedule_lines(before: Any, after: Any, indent: str) -> list[str]:
    """One line per schedule added (+) or removed (-); unchanged ones are not listed."""
    old = [schedule(e) for e in before or []]
    new = [schedule(e) for e in after or []]
    lines = [f"{indent}- {text}" for text in old if text not in new]
    lines += [f"{indent}+ {text}" for text in new if text not in old]
    return lines
