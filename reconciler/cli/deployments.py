"""plan, apply, status, export: the commands that read or change the server.  No logic of their own.

The engine and the renderers are imported inside each command, so `reconcile --help` (and every other
command) starts without loading them.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from typing_extensions import Annotated

from .app import (
    ConflictsOpt,
    ExitOpt,
    Format,
    FormatOpt,
    PathArg,
    SkipUploadOpt,
    SourceOpt,
    UrlOpt,
    VerboseOpt,
    _colour,
    _options,
    _say,
    app,
)

if TYPE_CHECKING:
    from ..engine.plans import Plan


def _print_plan(plan: Plan, fmt: Format) -> None:
    if fmt is Format.json:
        from ..render import jsonout
        jsonout.write(plan.to_json(lazy=True), sys.stdout)
    elif fmt is Format.markdown:
        from ..render import markdown
        sys.stdout.write(markdown.render_plan(plan))
    else:
        from ..render import text
        lines = text.plan_lines(plan, _colour())
        while True:   # printed as made, a thousand lines at a time: a plan of 10,000 is never one string
            chunk = [line + "\n" for _, line in zip(range(1000), lines)]
            if not chunk:
                break
            sys.stdout.write("".join(chunk))


@app.command("plan")
def plan_cmd(
    path: PathArg = Path("."),
    fmt: FormatOpt = Format.text,
    detailed_exitcode: ExitOpt = False,
    out: Annotated[Optional[Path], typer.Option("--out", help="Save the plan as JSON, to apply later.")] = None,
    source: SourceOpt = None,
    api_url: UrlOpt = None,
    verbose: VerboseOpt = False,
    skip_upload: SkipUploadOpt = False,
    allow_conflicts: ConflictsOpt = False,
) -> None:
    """Show what apply would change (Terraform-style). Alias: reconcile --dry-run."""
    from ..engine import run as engine   # the rest of the engine loads while the plan's first reads run
    from ..errors import ReconcileError
    plan = engine.make_plan(path, _options(api_url=api_url, source=source, verbose=verbose, skip_upload=skip_upload,
                                           allow_conflicts=allow_conflicts))
    if out is not None:
        from ..render import jsonout
        with out.open("w", encoding="utf-8") as saved_plan:   # what plan.dumps() says, written as it is made
            jsonout.write(plan.to_json(lazy=True), saved_plan)
        _say(f"plan saved to {out}; apply it with: reconcile apply {out}")
    _print_plan(plan, fmt)
    if plan.conflicts and not plan.leave_conflicts:
        from ..engine import guards
        raise ReconcileError(guards.conflict_message(plan))
    if detailed_exitcode and engine.needs_apply(plan):
        raise typer.Exit(2)


@app.command("apply")
def apply_cmd(
    path: Annotated[Path, typer.Argument(help="Directory of manifests, or a plan saved with plan --out.")] = Path("."),
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show the plan (same as reconcile plan).")] = False,
    fmt: FormatOpt = Format.text,
    detailed_exitcode: ExitOpt = False,
    source: SourceOpt = None,
    api_url: UrlOpt = None,
    allow_deletes: Annotated[bool, typer.Option("--allow-deletes", help="Allow more deletes than --max-deletes.")] = False,
    max_deletes: Annotated[Optional[int], typer.Option("--max-deletes", min=0, help="Refuse more deletes than this (default 10).")] = None,
    allow_empty: Annotated[bool, typer.Option("--allow-empty", help="Allow an empty directory to delete everything this source manages.")] = False,
    lock_timeout: Annotated[float, typer.Option("--lock-timeout", min=0, help="Seconds to wait for another apply's lock.")] = 0.0,
    parallelism: Annotated[int, typer.Option("--parallelism", min=1, max=32, help="Concurrent writes.")] = 4,
    verbose: VerboseOpt = False,
    skip_upload: SkipUploadOpt = False,
    allow_conflicts: ConflictsOpt = False,
) -> None:
    """Make the server match the manifests (or apply a saved plan exactly). Does not prompt."""
    from ..engine import run as engine   # the rest of the engine loads while the plan's first reads run
    from .progress import progress
    if dry_run:
        plan_cmd(path, fmt, detailed_exitcode, None, source, api_url, verbose, skip_upload, allow_conflicts)
        return
    options = _options(api_url=api_url, source=source, allow_deletes=allow_deletes, max_deletes=max_deletes,
                       allow_empty=allow_empty, lock_timeout=lock_timeout, parallelism=parallelism, verbose=verbose,
                       skip_upload=skip_upload, allow_conflicts=allow_conflicts)
    with progress(options, enabled=fmt is Format.text) as options:
        if path.is_file() and path.suffix == ".json":
            from ..engine import saved
            report = saved.apply_saved(path, options)
        else:
            report = engine.apply_path(path, options)
    from ..render import jsonout, text
    if fmt is Format.json:
        jsonout.write(report.to_json(), sys.stdout)
    else:
        if report.results:
            sys.stdout.write(text.render_plan(report.plan, _colour()))
        for notice in report.notices if not report.results else []:
            _say(f"note: {notice}")
        sys.stdout.write(text.render_report(report, _colour()))
    if report.exit_code:
        raise typer.Exit(1)
    if detailed_exitcode and report.results:
        raise typer.Exit(2)


@app.command("status")
def status_cmd(
    path: PathArg = Path("."),
    fmt: FormatOpt = Format.text,
    detailed_exitcode: ExitOpt = False,
    source: SourceOpt = None,
    api_url: UrlOpt = None,
    verbose: VerboseOpt = False,
    skip_upload: SkipUploadOpt = False,
) -> None:
    """Per deployment: in sync, drifted, missing, unmanaged (or orphaned, conflict)."""
    import json

    from ..engine import run as engine
    from ..engine import status as status_mod
    from ..render import status as status_text
    plan = engine.make_plan(path, _options(api_url=api_url, source=source, verbose=verbose, skip_upload=skip_upload))
    if fmt is Format.json:
        sys.stdout.write(json.dumps(status_mod.to_json(plan), indent=2) + "\n")
    elif fmt is Format.markdown:
        sys.stdout.write(status_text.render_markdown(plan))
    else:
        sys.stdout.write(status_text.render_text(plan, _colour()))
    if detailed_exitcode and status_mod.drifted(plan):
        raise typer.Exit(2)


@app.command("export")
def export_cmd(
    outdir: Annotated[Path, typer.Argument(help="Directory to write <flow>/<name>-deployment.yaml files into.")],
    source: Annotated[Optional[str], typer.Option("--source", help="Only the deployments this source manages.")] = None,
    flow: Annotated[Optional[list[str]], typer.Option("--flow", help="Only this flow's deployments (repeatable).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite manifests that already exist.")] = False,
    api_url: UrlOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Write a manifest for each deployment on the server (adopt an existing server into git)."""
    from ..engine import export as export_mod
    from ..engine import run as engine
    with engine.connect(_options(api_url=api_url, verbose=verbose)) as client:
        outcome = export_mod.export(client, outdir, source=source, flows=flow or (), force=force)
    for target, item in outcome.written:
        print(f"wrote {target}  ({item.identity})")
    for target, item in outcome.skipped:
        _say(f"skipped {target}: it exists (--force overwrites it)")
    for warning in outcome.warnings:
        _say(f"warning: {warning}")
    total = len(outcome.written) + len(outcome.skipped)
    print(f"Exported {total} deployment{'s' if total != 1 else ''} to {outdir}: {len(outcome.written)} written, "
          f"{len(outcome.skipped)} skipped (already there).")
