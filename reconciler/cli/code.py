"""Commands that read flow code (never import it): build, check, and the manifest JSON Schema.

What a command needs is imported inside it, so `reconcile --help` starts without the engine.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from typing_extensions import Annotated

from .app import _options, _say, app

if TYPE_CHECKING:
    from ..prefect.api import PrefectClient


@app.command("build")
def build_cmd(
    entrypoint: Annotated[Optional[str], typer.Argument(help="path/to/flow.py:function (with --refresh: a directory of manifests).")] = None,
    name: Annotated[Optional[str], typer.Option("--name", "-n", help="The deployment's name.")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Manifest file (default NAME-deployment.yaml).")] = None,
    description: Annotated[Optional[str], typer.Option("--description", "-d")] = None,
    version: Annotated[Optional[str], typer.Option("--version", "-v", help="Default: md5 of the flow file, as Prefect 2.")] = None,
    tags: Annotated[Optional[list[str]], typer.Option("--tag", "-t")] = None,
    work_queue: Annotated[Optional[str], typer.Option("--work-queue", "-q")] = None,
    pool: Annotated[Optional[str], typer.Option("--pool", "-p")] = None,
    cron: Annotated[Optional[str], typer.Option("--cron")] = None,
    interval: Annotated[Optional[float], typer.Option("--interval", help="Seconds.")] = None,
    rrule: Annotated[Optional[str], typer.Option("--rrule")] = None,
    timezone: Annotated[Optional[str], typer.Option("--timezone")] = None,
    params: Annotated[Optional[list[str]], typer.Option("--param", help="NAME=JSON (a bare word is a string).")] = None,
    params_json: Annotated[Optional[str], typer.Option("--params", help="A JSON object of parameters.")] = None,
    infra: Annotated[Optional[str], typer.Option("--infra", "-i", help="process, docker-container or kubernetes-job.")] = None,
    infra_block: Annotated[Optional[str], typer.Option("--infra-block", "-ib", help="type/name of a saved block.")] = None,
    storage_block: Annotated[Optional[str], typer.Option("--storage-block", "-sb", help="type/name[/path].")] = None,
    path: Annotated[Optional[str], typer.Option("--path")] = None,
    overrides: Annotated[Optional[list[str]], typer.Option("--override", help="KEY=VALUE; dotted keys stay flat.")] = None,
    skip_upload: Annotated[bool, typer.Option("--skip-upload", help="With --apply: do not upload the code.")] = False,
    apply: Annotated[bool, typer.Option("--apply", "-a", help="Reconcile this one manifest right away.")] = False,
    refresh_: Annotated[bool, typer.Option("--refresh", help="Rewrite only the generated part of existing manifests.")] = False,
    api_url: Annotated[Optional[str], typer.Option("--api-url")] = None,
) -> None:
    """Write a manifest from a flow file, as `prefect deployment build` does, without importing the code."""
    from ..engine import run as engine
    from ..errors import ReconcileError
    from ..flowcode import build as build_mod
    if refresh_:
        raise typer.Exit(_refresh(Path(entrypoint or ".")))
    if not entrypoint or not name:
        raise ReconcileError("build needs ENTRYPOINT (path/to/flow.py:function) and --name")
    opts = build_mod.BuildOptions(
        entrypoint=entrypoint, name=name, output=output, description=description, version=version,
        tags=tags or [], work_queue=work_queue, pool=pool, cron=cron, interval=interval, rrule=rrule,
        timezone=timezone, params=params or [], params_json=params_json, infra=infra, infra_block=infra_block,
        storage_block=storage_block, path=path, overrides=overrides or [])
    needs_api = bool(infra_block or storage_block or apply)
    options = _options(api_url=api_url, prune=False)
    if not needs_api:
        out, warnings = build_mod.write(opts, _no_api, Path.cwd(), _validate)
    else:
        with engine.connect(options) as client:
            out, warnings = build_mod.write(opts, _reader(client), Path.cwd(), _validate)
    for warning in warnings:
        _say(f"warning: {warning}")
    print(f"wrote {out}")
    if apply:
        if skip_upload:
            _say("note: --skip-upload: the code is uploaded on the next apply that sees it changed")
        from ..render import text
        report = engine.apply_path(out, options)
        sys.stdout.write(text.render_report(report, False))
        raise typer.Exit(report.exit_code)


def _validate(manifest) -> None:
    from ..engine import desired as desired_mod
    desired_mod.resolve([manifest])


def _no_api(slug: str, name: str) -> dict:
    from ..errors import ReconcileError
    raise ReconcileError("internal: no API for a block lookup")  # pragma: no cover - guarded by needs_api


def _reader(client: PrefectClient):
    def read(slug: str, name: str) -> dict:
        from ..errors import NotFound, ReconcileError
        try:
            return client.get(f"block_types/slug/{slug}/block_documents/name/{name}")
        except NotFound:
            raise ReconcileError(f"block {slug}/{name} not found on the server at {client.api_url}") from None
    return read


def _load(path: Path):
    """The manifests under path, and reconcile.yaml's `bundle_root` (None: each entrypoint's own code root)."""
    from ..manifests import config as config_mod
    from ..manifests import discover
    root = Path(path)
    home = root if root.is_dir() else root.parent
    cfg = config_mod.load(home).config
    return root, discover.load_all(root, cfg), config_mod.bundle_directory(home, cfg)


def _refresh(path: Path) -> int:
    from ..flowcode.check import check_one
    from ..manifests import refresh
    root, loaded, bundle_root = _load(path)
    changed = 0
    for manifest in loaded.manifests:
        findings, code = check_one(manifest, root if root.is_dir() else root.parent, bundle_root=bundle_root)
        if code is None:
            for finding in findings:
                _say(f"error: {finding}")
            return 1
        if refresh.refresh_file(manifest.path, code, manifest.display):
            changed += 1
            print(f"refreshed {manifest.display}")
    print(f"{changed} manifest(s) refreshed, {len(loaded.manifests) - changed} already up to date.")
    return 0


@app.command("check")
def check_cmd(
    path: Annotated[Path, typer.Argument(help="Directory of manifests (or one manifest).")] = Path("."),
    strict: Annotated[bool, typer.Option("--strict", help="Compare the parameter schema exactly.")] = False,
) -> None:
    """Fail when a manifest's generated part no longer matches its flow code (read, never imported)."""
    from ..flowcode.check import check_one
    root, loaded, bundle_root = _load(path)
    base = root if root.is_dir() else root.parent
    problems = 0
    for manifest in loaded.manifests:
        findings, _ = check_one(manifest, base, strict, bundle_root)
        for finding in findings:
            _say(f"error: {finding}")
        problems += len(findings)
    if problems:
        _say(f"{problems} problem(s) in {len(loaded.manifests)} manifest(s); `reconcile build --refresh` rewrites "
             "the generated parts from the code (a missing flow file or function is yours to fix)")
        raise typer.Exit(1)
    print(f"{len(loaded.manifests)} manifest(s) match their flow code.")


@app.command("schema")
def schema_cmd(
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write to this file instead of stdout.")] = None,
) -> None:
    """Print the JSON Schema of a deployment manifest (for editors and CI)."""
    from ..manifests import schema as manifest_schema
    if output is None:
        sys.stdout.write(manifest_schema.text())
    else:
        output.write_text(manifest_schema.text(), encoding="utf-8")
        print(f"wrote {output}")


__all__ = ["build_cmd", "check_cmd", "schema_cmd"]
