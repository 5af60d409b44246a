"""Markdown for pull-request comments and step summaries."""
from __future__ import annotations

from ..engine.plans import Plan
from . import safe
from .text import Painter, action_lines, conflict_fate
from .values import summary_line, upload_line

ICON = {"create": "➕ create", "update": "✏️ update", "delete": "🗑️ delete", "adopt": "📥 adopt"}


def _cell(text: str) -> str:
    return safe.cell(text)


def render_plan(plan: Plan) -> str:
    lines = [f"### reconcile plan for {safe.code(plan.source)}", "",
             f"Server: {safe.code(plan.api_url)} (Prefect {safe.text(plan.server_version)})", ""]
    changing = [a for a in plan.actions if a.action != "noop"]
    in_sync = plan.summary["noop"]
    if not changing and not plan.conflicts and not plan.uploads and not plan.work_pools:
        lines.append(f"**No changes.** {in_sync} deployment{'s' if in_sync != 1 else ''} in sync.")
        return "\n".join(lines) + "\n"
    # the totals first: a long plan cut to fit a comment still says what it does
    lines += [f"**{summary_line(plan.summary)}**" + (f" {in_sync} in sync." if in_sync else ""), ""]
    if plan.work_pools:
        lines += [f"- ➕ work pool {_cell(name)} (type {_cell(kind)})" for name, kind in plan.work_pools] + [""]
    if plan.uploads:
        lines += [f"- ⬆️ upload {_cell(upload_line(u))}" for u in plan.uploads] + [""]
    if not changing and not plan.conflicts:
        return "\n".join(lines) + "\n"
    lines += ["| action | deployment | manifest | changes |", "|---|---|---|---|"]
    for c in plan.conflicts:   # first: unless left alone on purpose, they fail the run
        why = _cell(c.why) if c.reason else f"managed by {safe.code(c.owner)}"
        lines.append(f"| ⚠️ conflict | {safe.code(c.identity)} | {safe.code(c.manifest or '')} | {why}; {conflict_fate(plan)} |")
    for a in changing:
        fields = ", ".join(safe.code(c.field) for c in a.changes[:6]) + (" …" if len(a.changes) > 6 else "")
        lines.append(f"| {ICON[a.action]} | {safe.code(a.identity)} | {safe.code(a.manifest) if a.manifest else ''} | {fields} |")
    lines += ["", "<details><summary>Field changes</summary>", "", "```diff"]
    paint = Painter(False)
    for a in changing:
        lines += [line[2:] if line.startswith("  ") else line for line in action_lines(a, paint)]
    lines += ["```", "", "</details>"]
    if plan.notices:
        lines += [""] + [f"> {safe.text(n)}" for n in plan.notices]
    return "\n".join(lines) + "\n"
