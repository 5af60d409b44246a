"""`reconcile status` as text or markdown: one line (or row) per deployment, then the counts."""
from __future__ import annotations

from ..engine import status
from ..engine.plans import Plan
from . import safe
from .text import Painter, header


def render_text(plan: Plan, colour: bool = False) -> str:
    paint = Painter(colour)
    kind = {"in sync": "create", "drifted": "update", "missing": "delete", "unmanaged": "adopt",
            "orphaned": "delete", "conflict": "conflict"}
    items = status.entries(plan)
    lines = header(plan)
    width = max((len(safe.text(e.identity)) for e in items), default=10)
    for e in items:
        lines.append(paint(f"  {e.status:<10}", kind[e.status]) + f" {safe.text(e.identity):<{width}}  {safe.text(e.detail)}".rstrip())
    c = status.counts(items)
    lines += ["", ", ".join(f"{n} {s}" for s, n in c.items() if n or s == "in sync") + "."]
    return "\n".join(lines) + "\n"


def render_markdown(plan: Plan) -> str:
    items = status.entries(plan)
    lines = [f"### reconcile status for {safe.code(plan.source)}", "", "| status | deployment | detail |", "|---|---|---|"]
    lines += [f"| {e.status} | {safe.code(e.identity)} | {safe.cell(e.detail)} |" for e in items]
    return "\n".join(lines) + "\n"
