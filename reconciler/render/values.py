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
    return (f"Plan: {summary['create']} to create, {summary['update']} to update, "
            f"{summary['delete']} to delete, {summary['adopt']} to adopt.")
