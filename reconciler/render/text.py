"""Terraform-style text: `+ create`, `~ update` with `field: old → new`, `- delete`, `= adopt`."""
from __future__ import annotations

from typing import Iterator

from ..engine.plans import Action, Plan
from ..engine.report import FAILED, Report
from . import safe
from .values import schedule_lines, short, summary_line, upload_line

SYMBOL = {"create": "+", "update": "~", "delete": "-", "adopt": "=", "noop": " "}
COLOUR = {"upload": "34", "create": "32", "update": "33", "delete": "31", "adopt": "36", "conflict": "35", "failed": "31", "bold": "1"}


class Painter:
    def __init__(self, colour: bool) -> None:
        self.colour = colour

    def __call__(self, text: str, kind: str) -> str:
        text = safe.text(text)   # what is painted never carries its own escapes
        return f"\033[{COLOUR[kind]}m{text}\033[0m" if self.colour and kind in COLOUR else text


def header(plan: Plan) -> list[str]:
    where = "embedded local server" if plan.embedded else plan.api_url
    return [safe.text(f"Source: {plan.source}"), safe.text(f"Server: {where} (Prefect {plan.server_version})"), ""]


def action_lines(action: Action, paint: Painter) -> list[str]:
    where = f"  ({safe.text(action.manifest)})" if action.manifest and action.action != "noop" else ""
    head = paint(f"  {SYMBOL[action.action]} {action.action:<7} {action.identity}", action.action) + where
    lines = [head]
    if action.action in ("create", "update", "adopt"):
        for c in action.changes:
            if c.field == "schedules":
                lines.append("      schedules:")
                lines += [safe.text(line) for line in schedule_lines(c.before, c.after, "        ")]
            elif c.hidden:   # a secret's value is never shown (engine/plans.py masks it)
                lines.append(f"      {safe.text(c.field)}: (sensitive value changed)")
            elif action.action == "create":
                lines.append(safe.text(f"      {c.field}: {short(c.after)}"))
            else:
                lines.append(safe.text(f"      {c.field}: {short(c.before)} → {short(c.after)}"))
    elif action.action == "delete":
        lines.append(safe.text(f"      ({action.reason})"))
    return lines


def render_plan(plan: Plan, colour: bool = False) -> str:
    return "".join(line + "\n" for line in plan_lines(plan, colour))


def plan_lines(plan: Plan, colour: bool = False) -> Iterator[str]:
    """The plan's text, one line at a time (the CLI prints each as it comes: a large plan is never one string)."""
    paint = Painter(colour)
    yield from header(plan)
    for notice in plan.notices:
        yield safe.text(f"note: {notice}")
    if plan.notices:
        yield ""
    changing = any(a.action != "noop" for a in plan.actions)
    for conflict in plan.conflicts:   # first: unless left alone on purpose, they fail the run
        yield (paint(f"  ! conflict {conflict.identity}", "conflict")
               + safe.text(f"  ({conflict.manifest}): {conflict.why}; {conflict_fate(plan)}"))
    for name, kind in plan.work_pools:
        yield paint("  + work pool", "create") + safe.text(f" {name} (type {kind}, its default job template)")
    for upload in plan.uploads:
        yield paint("  ↑ upload ", "upload") + " " + safe.text(upload_line(upload))
    for action in plan.actions:
        if action.action != "noop":
            yield from action_lines(action, paint)
    in_sync = plan.summary["noop"]
    if changing or plan.conflicts or plan.uploads or plan.work_pools:
        yield ""
    if not changing and not plan.uploads and not plan.work_pools:
        extra = (" (inventory will be updated)" if plan.inventory_before != plan.inventory_after
                 else " (ownership will be recorded)" if plan.unclaimed else "")
        nothing = "No other changes." if plan.conflicts else "No changes."
        yield paint(nothing, "bold") + f" {in_sync} deployment{'s' if in_sync != 1 else ''} in sync.{extra}"
    else:
        yield paint(summary_line(plan.summary), "bold") + (f" {in_sync} in sync." if in_sync else "")
    if plan.conflicts and plan.leave_conflicts:
        yield f"{len(plan.conflicts)} left alone: managed by another source."
    elif plan.conflicts:
        yield paint(f"{len(plan.conflicts)} conflict{'s' if len(plan.conflicts) != 1 else ''}: managed by "
                    "another source; apply refuses to run (--allow-conflicts leaves them alone).", "conflict")


def conflict_fate(plan: Plan) -> str:
    return "left alone" if plan.leave_conflicts else "not applied: remove it here or pass --allow-conflicts"


def render_report(report: Report, colour: bool = False) -> str:
    paint = Painter(colour)
    lines = []
    for result in report.results:
        if result.status == FAILED:
            lines.append(paint(f"  ✗ {result.action:<7} {result.identity}: {result.message}", "failed"))
        elif result.action != "noop":
            lines.append(safe.text(f"  ✓ {result.action:<7} {result.identity}: {result.message}"))
    s = report.plan.summary
    done = {k: sum(1 for r in report.results if r.action == k and r.status == "ok")
            for k in ("create", "update", "delete", "adopt", "upload")}
    if not report.results:
        lines.append(paint("No changes.", "bold") + " Nothing to apply; no writes made.")
    else:
        uploaded = f", {done['upload']} uploaded" if done["upload"] else ""
        lines.append(paint(f"Apply complete: {done['create']} created, {done['update']} updated, "
                           f"{done['delete']} deleted, {done['adopt']} adopted{uploaded}", "bold")
                     + f" ({report.writes} API writes, {report.seconds:.1f}s).")
    if report.failures:
        lines.append(paint(f"{len(report.failures)} failed; re-run apply to converge.", "failed"))
    if s.get("conflict") and report.plan.leave_conflicts:
        lines.append(f"{s['conflict']} left alone (managed by another source).")
    return "\n".join(lines) + "\n"
