"""The command line: parses options, calls the engine, prints.  No logic of its own."""
from __future__ import annotations

import enum
import json
import os
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Optional

import typer
from typing_extensions import Annotated

from . import engine, saved, status as status_mod
from .errors import ManifestErrors, ReconcileError
from .plans import Plan
from .render import markdown, text
from .report import Result

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="GitOps for Prefect deployments: make the Prefect API match the manifests in a directory.")


class Format(str, enum.Enum):
    text = "text"
    json = "json"
    markdown = "markdown"


PathArg = Annotated[Path, typer.Argument(help="Directory of *-deployment.yaml manifests (or one manifest).")]
FormatOpt = Annotated[Format, typer.Option("--format", help="text, json (a stable contract) or markdown.")]
SourceOpt = Annotated[Optional[str], typer.Option("--source", help="Ownership name (default: git remote + path).")]
UrlOpt = Annotated[Optional[str], typer.Option("--api-url", help="Prefect API URL (default: PREFECT_API_URL, "
                                               "reconcile.yaml, the Prefect profile, else an embedded server).")]
VerboseOpt = Annotated[bool, typer.Option("-v", "--verbose", help="Log every HTTP request to stderr.")]
ExitOpt = Annotated[bool, typer.Option("--detailed-exitcode", help="Exit 0 for no changes, 2 for changes, 1 for errors.")]
SkipUploadOpt = Annotated[bool, typer.Option("--skip-upload", help="Deployments only: do not read or upload code "
                                             "to storage (e.g. a PR check without storage credentials).")]


def _colour(stream=None) -> bool:
    stream = sys.stdout if stream is None else stream
    return stream.isatty() and not os.environ.get("NO_COLOR")


def _say(line: str) -> None:
    print(line, file=sys.stderr)


def _options(**kwargs) -> engine.Options:
    return engine.Options(say=_say, **kwargs)


def _print_plan(plan: Plan, fmt: Format) -> None:
    if fmt is Format.json:
        sys.stdout.write(json.dumps(plan.to_json(), indent=2, default=str) + "\n")
    elif fmt is Format.markdown:
        sys.stdout.write(markdown.render_plan(plan))
    else:
        sys.stdout.write(text.render_plan(plan, _colour()))


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
) -> None:
    """Show what apply would change (Terraform-style). Alias: reconcile --dry-run."""
    plan = engine.make_plan(path, _options(api_url=api_url, source=source, verbose=verbose, skip_upload=skip_upload))
    if out is not None:
        out.write_text(plan.dumps(), encoding="utf-8")
        _say(f"plan saved to {out}; apply it with: reconcile apply {out}")
    _print_plan(plan, fmt)
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
) -> None:
    """Make the server match the manifests (or apply a saved plan exactly). Does not prompt."""
    if dry_run:
        plan_cmd(path, fmt, detailed_exitcode, None, source, api_url, verbose, skip_upload)
        return
    options = _options(api_url=api_url, source=source, allow_deletes=allow_deletes, max_deletes=max_deletes,
                       allow_empty=allow_empty, lock_timeout=lock_timeout, parallelism=parallelism, verbose=verbose,
                       skip_upload=skip_upload)
    with _progress(options, enabled=fmt is Format.text) as options:
        if path.is_file() and path.suffix == ".json":
            report = saved.apply_saved(path, options)
        else:
            report = engine.apply_path(path, options)
    if fmt is Format.json:
        sys.stdout.write(json.dumps(report.to_json(), indent=2, default=str) + "\n")
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
    plan = engine.make_plan(path, _options(api_url=api_url, source=source, verbose=verbose, skip_upload=skip_upload))
    if fmt is Format.json:
        sys.stdout.write(json.dumps(status_mod.to_json(plan), indent=2) + "\n")
    elif fmt is Format.markdown:
        sys.stdout.write(status_mod.render_markdown(plan))
    else:
        sys.stdout.write(status_mod.render_text(plan, _colour()))
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
    from . import export as export_mod
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


class _progress:
    """A rich progress bar on stderr while applying, when stderr is a terminal."""

    def __init__(self, options: engine.Options, enabled: bool) -> None:
        self.options = options
        self.enabled = enabled and sys.stderr.isatty()
        self.bar = None

    def __enter__(self) -> engine.Options:
        if not self.enabled:
            return self.options
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn

        from .render.values import size

        # one live display (rich allows one at a time): a task for the actions, one for upload bytes
        self.bar = Progress(TextColumn("{task.fields[what]:<10}"), BarColumn(), TextColumn("{task.fields[done]}"),
                            TextColumn("{task.description}"), console=Console(stderr=True), transient=True)
        self.bar.start()
        task = self.bar.add_task("", total=None, what="applying", done="")
        upload_task = None

        def start(plan) -> None:
            nonlocal upload_task
            steps = len(plan.uploads) + sum(1 for a in plan.actions if a.action != "noop")
            self.bar.update(task, total=steps, done=f"0/{steps}")
            total = sum(u.bytes for u in plan.uploads)
            if total:
                upload_task = self.bar.add_task("", total=total, what="uploading", done=f"0 B/{size(total)}")

        def advance(result: Result) -> None:
            self.bar.advance(task)
            t = self.bar.tasks[task]
            self.bar.update(task, description=result.identity, done=f"{int(t.completed)}/{int(t.total or 0)}")

        def sent(n: int) -> None:
            if upload_task is not None:
                self.bar.advance(upload_task, n)
                t = self.bar.tasks[upload_task]
                self.bar.update(upload_task, done=f"{size(int(t.completed))}/{size(int(t.total or 0))}")

        self.options.on_start, self.options.on_result, self.options.on_bytes = start, advance, sent
        return self.options

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def _rewrite(argv: list[str]) -> list[str]:
    """`reconcile --dry-run [PATH]` is `reconcile plan [PATH]`."""
    if argv and argv[0] == "--dry-run":
        return ["plan", *argv[1:]]
    return argv


def main(argv: Optional[list[str]] = None) -> int:
    args = _rewrite(list(sys.argv[1:] if argv is None else argv))
    try:
        code = app(args=args, prog_name="reconcile", standalone_mode=False)
        if isinstance(code, int):  # typer returns (not raises) Exit codes in non-standalone mode
            return code
    except ManifestErrors as exc:
        for error in exc.errors:
            _say(f"error: {error}")
        _say(f"{len(exc.errors)} error(s); nothing was changed.")
        return 1
    except ReconcileError as exc:
        _say(f"error: {exc}")
        return 1
    except typer.Exit as exc:
        return exc.exit_code
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place a bug becomes exit 3 plus a log
        import click
        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            return exc.exit_code
        if isinstance(exc, click.exceptions.Abort):
            return 1
        log = Path(tempfile.gettempdir()) / "reconcile-error.log"
        log.write_text(traceback.format_exc(), encoding="utf-8")
        _say(f"internal error: {type(exc).__name__}: {exc} (traceback in {log}; please report it)")
        return 3
    return 0

from . import cli_code  # noqa: E402,F401 - registers build, check and schema on the app
from . import cli_triggers  # noqa: E402,F401 - registers serve, hook and watch on the app
from . import cli_serve  # noqa: E402,F401 - registers serve on the app
