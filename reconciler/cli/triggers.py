"""CLI wiring for the triggers: serve, hook, watch.  Each command only parses options and calls a module."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from typing_extensions import Annotated

from .app import (
    PathArg,
    SkipUploadOpt,
    SourceOpt,
    UrlOpt,
    VerboseOpt,
    _colour,
    _options,
    app,
)

hook_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                       help="A git post-receive hook that applies every push to a branch.")
app.add_typer(hook_app, name="hook")


@hook_app.command("install")
def hook_install_cmd(
    repo: Annotated[Path, typer.Option("--repo", help="The (bare) repository that receives the pushes.")],
    branch: Annotated[str, typer.Option("--branch", help="Apply pushes to this branch only.")] = "main",
    path: Annotated[Optional[str], typer.Option("--path", help="The manifests' directory inside the repository.")] = None,
    source: Annotated[Optional[str], typer.Option("--source", help="Ownership name (default: reconcile.yaml's, "
                                                  "else the repository path + --path).")] = None,
    api_url: Annotated[Optional[str], typer.Option("--api-url", help="Prefect API URL (default: the hook's "
                                                   "environment, reconcile.yaml, the Prefect profile).")] = None,
    api_key_file: Annotated[Optional[Path], typer.Option("--api-key-file", help="A file holding the API key "
                                                         "(never written into the hook).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a post-receive hook reconcile did not write.")] = False,
) -> None:
    """Write the post-receive hook (again: update its settings)."""
    from ..triggers import hook
    done = hook.install(repo, branch, path or "", source, api_url, api_key_file, force)
    s = done.settings
    if done.backup is not None:
        print(f"moved the existing hook to {done.backup}")
    print(f"{'updated' if done.updated else 'installed'} {done.hook}")
    print(f"  applies pushes to {s.ref}, directory {s.path or '.'}")
    print(f"  source: {s.source or f'{s.default_source} (unless reconcile.yaml names one)'}")
    print(f"  server: {s.api_url or 'PREFECT_API_URL of the git server, else reconcile.yaml or the Prefect profile'}")
    print(f"  python: {sys.executable}")


@hook_app.command("run")
def hook_run_cmd(
    repo: Annotated[Path, typer.Option("--repo")],
    branch: Annotated[str, typer.Option("--branch")],
    path: Annotated[Optional[str], typer.Option("--path")] = None,
    source: Annotated[Optional[str], typer.Option("--source")] = None,
    default_source: Annotated[Optional[str], typer.Option("--default-source")] = None,
    api_url: Annotated[Optional[str], typer.Option("--api-url")] = None,
    api_key_file: Annotated[Optional[Path], typer.Option("--api-key-file")] = None,
    verbose: VerboseOpt = False,
) -> None:
    """What the hook runs: reads `old new ref` lines on stdin and applies the commit pushed to --branch."""
    from ..triggers import hook
    settings = hook.Settings(repo.resolve(), hook.check_branch(branch), hook.clean_path(path), source,
                             default_source, api_url, api_key_file)
    raise typer.Exit(hook.run(settings, sys.stdin, _options(verbose=verbose)))


@app.command("watch")
def watch_cmd(
    path: PathArg = Path("."),
    apply: Annotated[bool, typer.Option("--apply", help="Apply on every change (default: only plan).")] = False,
    source: SourceOpt = None,
    api_url: UrlOpt = None,
    debounce: Annotated[int, typer.Option("--debounce", min=10, help="Milliseconds of quiet after a change "
                                          "before planning.")] = 300,
    verbose: VerboseOpt = False,
    skip_upload: SkipUploadOpt = False,
) -> None:
    """Plan at start and after every change under PATH (manifests, reconcile.yaml, code); --apply applies."""
    from ..triggers import watch
    options = _options(api_url=api_url, source=source, verbose=verbose, skip_upload=skip_upload)
    raise typer.Exit(watch.watch(path, options, apply=apply, debounce_ms=debounce, colour=_colour()))
