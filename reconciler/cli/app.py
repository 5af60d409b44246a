"""The Typer app, the options every command shares, and main(): the one place errors become exit codes."""
from __future__ import annotations

import enum
import io
import os
import sys
import tempfile
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from typing_extensions import Annotated

from ..errors import ManifestErrors, ReconcileError, printable

if TYPE_CHECKING:
    from ..engine.run import Options

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
ConflictsOpt = Annotated[bool, typer.Option("--allow-conflicts", help="Leave deployments another source owns "
                                            "alone instead of failing (exit 1).")]


def _colour(stream=None) -> bool:
    stream = sys.stdout if stream is None else stream
    return stream.isatty() and not os.environ.get("NO_COLOR")


def _say(line: str) -> None:
    """One line to stderr; whatever does not print (a name from a pull request, a server's answer) is escaped."""
    print(printable(line), file=sys.stderr)


def _options(**kwargs) -> Options:
    from ..engine.run import Options   # here, not above: `reconcile --help` starts without the engine
    return Options(say=_say, **kwargs)



def _crash_log(text: str) -> str:
    """Write a traceback to a new file of its own in the temporary directory; say where (or why not).

    A fixed name could be a directory, a file of someone else's, or a link planted to make us write
    elsewhere: mkstemp makes a new file with a unique name (O_CREAT|O_EXCL, which never follows a link),
    readable by this user only.  Failing to write it must not turn into a traceback of its own."""
    try:
        fd, name = tempfile.mkstemp(prefix="reconcile-error-", suffix=".log")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
    except (OSError, ValueError) as err:   # ValueError: an unusable TMPDIR value
        return f"the traceback could not be written to the temporary directory: {' '.join(str(err).split())}"
    return f"traceback in {name}"


def _rewrite(argv: list[str]) -> list[str]:
    """`reconcile --dry-run [PATH]` is `reconcile plan [PATH]`."""
    if argv and argv[0] == "--dry-run":
        return ["plan", *argv[1:]]
    return argv


def _usage_error(exc: Exception) -> Optional[int]:
    """A mistyped command or option: its usage lines and exit 2 (a prompt aborted: exit 1); else None.

    typer up to 0.23 (pyproject.toml's range, and what Prefect 2.20 pins) raises click's own exceptions;
    0.24+ would raise copies of them, which this does not know."""
    import click

    if isinstance(exc, (typer.Abort, click.exceptions.Abort)):
        return 1
    if isinstance(exc, click.exceptions.ClickException):
        shown = io.StringIO()
        exc.show(file=shown)      # a mistyped name is the user's text: escaped like every stderr line
        for line in shown.getvalue().rstrip("\n").split("\n"):
            _say(line)
        return int(getattr(exc, "exit_code", 2))
    return None


def _version(value: bool) -> None:
    if value:
        from importlib import metadata
        try:
            version = metadata.version("prefect-reconcile")
        except metadata.PackageNotFoundError:   # run from a source tree that was never installed
            version = "unknown"
        print(f"reconcile {version}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """GitOps for Prefect deployments: make the Prefect API match the manifests in a directory."""


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
        usage = _usage_error(exc)
        if usage is not None:
            return usage
        where = _crash_log(traceback.format_exc())
        summary = " ".join(f"{type(exc).__name__}: {exc}".split())
        _say(f"internal error: {summary} ({where}; please report it)")
        return 3
    return 0
