"""The engine: manifests → desired → live → diff → plan → apply → report, joined in one place.

The CLI, the Python API and every trigger call these functions.
"""
from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Optional, TextIO

from ..errors import ManifestErrors, ReconcileError
from ..manifests import config as config_mod
from ..manifests import discover
from ..prefect.api import PrefectClient
from ..prefect.connection import resolve
from . import readahead
from .source import default_name

if TYPE_CHECKING:   # the rest of the engine is imported once the manifests are found (readahead starts first)
    from ..bundles.bundle import Bundle
    from .applier import Listener
    from .desired import Desired
    from .plans import Plan
    from .report import Report


@dataclass
class Options:
    api_url: Optional[str] = None
    source: Optional[str] = None
    allow_deletes: bool = False
    max_deletes: Optional[int] = None
    allow_empty: bool = False
    parallelism: int = 4
    lock_timeout: float = 0.0
    lock_ttl: float = 60.0
    verbose: bool = False
    prune: bool = True            # False: apply some manifests without deleting the source's others
    allow_conflicts: bool = False  # a deployment another source owns is left alone instead of failing the run
    skip_upload: bool = False     # plan and apply deployments only: never read or write code storage
    say: Callable[[str], None] = field(default=lambda line: print(line, file=sys.stderr))
    on_result: Listener = field(default=lambda result: None)
    on_bytes: Callable[[int], None] = field(default=lambda n: None)
    on_start: Callable[[Plan], None] = field(default=lambda plan: None)   # the plan about to be applied


@dataclass(frozen=True)
class Prepared:
    root: Path
    config: config_mod.Config
    desired: list[Desired]
    source: str
    notices: tuple[str, ...]
    bundles: dict[str, Bundle]      # identity → the code bundle to upload


Found = Callable[[list[Path], Optional[str], str], None]    # the files, reconcile.yaml's api_url, the source


def prepare(path: Path, options: Options, on_found: Optional[Found] = None) -> Prepared:
    """Load and validate everything on disk (no network).  `on_found(files, api_url, source)` is told the
    manifest files before they are parsed (make_plan starts its readahead there): without a reconcile.yaml,
    even before the settings' models are built (config.NO_SETTINGS)."""
    root = Path(path)
    if not root.exists():
        raise ReconcileError(f"{path}: no such file or directory")
    home = root if root.is_dir() else source_home(root)
    paths: Optional[list[Path]] = None
    source: Optional[str] = None
    if on_found is not None and config_mod.settings_file(home) is None:
        paths = discover.find(root, config_mod.NO_SETTINGS)
        source = options.source or default_name(home)
        on_found(paths, None, source)
    loaded_config = config_mod.load(home)
    if paths is not None and loaded_config.file is not None:   # what the reads went out on no longer holds
        raise ReconcileError(f"{config_mod.display_path(loaded_config.file)}: appeared while the run started; "
                             "run it again")
    cfg = loaded_config.config
    source = source or options.source or cfg.source or default_name(home)
    found = (lambda found_paths: on_found(found_paths, cfg.api_url, source)) \
        if on_found is not None and paths is None else None
    loaded = discover.load_all(root, cfg, strict=False, on_found=found, paths=paths)
    from ..bundles import collect as bundles_mod
    from . import desired as desired_mod
    try:
        wanted = desired_mod.resolve(_handed_over(loaded.manifests), config_mod.bundle_directory(home, cfg))
    except ManifestErrors as exc:  # report the files that failed to load and those that failed to resolve
        raise ManifestErrors(loaded.errors + exc.errors) from None
    if loaded.errors:
        raise ManifestErrors(loaded.errors)
    if cfg.runtime_root:
        wanted = [replace(d, fields={**d.fields, "path": bundles_mod.runtime_path(d, root, cfg.runtime_root)})
                  if d.storage is None else d for d in wanted]
    notices = tuple(loaded.notices) + tuple(w for d in wanted for w in d.warnings)
    code = {} if options.skip_upload else bundles_mod.collect_all(root, cfg, wanted)
    notices += tuple(f"{b.display}: skipped {s}" for b in {id(b): b for b in code.values()}.values() for s in b.skipped)
    return Prepared(root, cfg, wanted, source, notices, code)


def code_roots(path: Path) -> list[Path]:
    """The directories holding the code of the deployments under path (each one's code root), for a
    trigger that watches files; [] when the manifests do not load (the run reports why)."""
    try:
        prepared = prepare(path, Options(skip_upload=True, say=lambda line: None))
    except ReconcileError:
        return []
    return sorted({Path(d.bundle_dir) for d in prepared.desired if d.bundle_dir and not d.code_problem})


def _handed_over(items: list) -> Iterator:
    """The list's items in order, each removed from it as it is handed over: a manifest is let go as
    soon as its Desired is made, so 10,000 of them and their Desired values are never all held at once."""
    items.reverse()
    while items:
        yield items.pop()


def source_home(manifest: Path) -> Path:
    """The directory a lone manifest belongs to: the nearest one up to the repository's root that holds a
    reconcile.yaml, else the manifest's own directory (what `reconcile apply DIR` makes the source)."""
    start = manifest.resolve().parent
    top = discover.repository_root(start)
    for candidate in (start, *start.parents):
        if (candidate / config_mod.FILENAME).is_file():
            return candidate
        if candidate == top:
            break
    return start


@contextlib.contextmanager
def connect(options: Options, config_url: Optional[str] = None) -> Iterator[PrefectClient]:
    target = resolve(options.api_url, config_url)
    log: Optional[TextIO] = sys.stderr if options.verbose else None
    if target.api_url is None:
        from ..prefect import embedded as server   # only without a server to talk to
        with server.embedded(options.say) as url:
            with PrefectClient(url, log=log) as client:
                client.embedded = True
                yield client
        return
    with PrefectClient(target.api_url, target.api_key, log=log) as client:
        yield client


@contextlib.contextmanager
def _prepared(path: Path, options: Options, client: Optional[PrefectClient]) -> Iterator[tuple[Prepared, PrefectClient]]:
    """prepare(path), then a client (`client`, which a long-running trigger keeps across runs, or one opened
    here).  With a server to talk to, the plan's first reads go out while the manifests load (readahead);
    `client.ahead` is left set for planning.plan, which ends it."""
    with contextlib.ExitStack() as stack:
        early: list[PrefectClient] = []

        def found(paths: list[Path], config_url: Optional[str], source: str) -> None:
            if not paths:
                return
            try:
                opened = client
                if opened is None and resolve(options.api_url, config_url).api_url is not None:
                    opened = stack.enter_context(connect(options, config_url))
            except ReconcileError:
                return    # said again once the manifests are checked (their errors come first)
            if opened is not None:
                early.append(opened)
                stack.callback(readahead.ReadAhead(opened, source, paths).stop)

        prepared = prepare(path, options, on_found=found)
        if early:
            yield prepared, early[0]
        elif client is not None:
            yield prepared, client
        else:
            with connect(options, prepared.config.api_url) as opened:
                yield prepared, opened


def make_plan(path: Path, options: Options, client: Optional[PrefectClient] = None) -> Plan:
    with _prepared(path, options, client) as (prepared, client):
        from . import planning
        return planning.plan(client, prepared, options).plan


def needs_apply(plan: Plan) -> bool:
    return (plan.has_changes or plan.inventory_before != plan.inventory_after or bool(plan.unclaimed)
            or bool(plan.work_pools))


def apply_path(path: Path, options: Options, client: Optional[PrefectClient] = None) -> Report:
    with _prepared(path, options, client) as (prepared, client):
        from . import planning
        from .lock import Lock
        from .report import Report
        max_deletes = options.max_deletes if options.max_deletes is not None else prepared.config.max_deletes
        started = time.monotonic()
        planned = planning.plan(client, prepared, options)
        _safety(planned.plan, prepared, max_deletes, options)
        if not needs_apply(planned.plan):
            return Report(planned.plan, seconds=time.monotonic() - started)  # converged: not a single write
        with Lock(client, prepared.source, ttl=options.lock_ttl, timeout=options.lock_timeout, say=options.say):
            planned = planning.plan(client, prepared, options)  # again, under the lock: the server may have moved
            _safety(planned.plan, prepared, max_deletes, options)
            report = planning.execute(client, planned, options)
        report.seconds = time.monotonic() - started
        return report


def _safety(plan: Plan, prepared: Prepared, max_deletes: int, options: Options) -> None:
    from . import guards as checks
    checks.conflicts(plan)
    checks.empty_desired(plan, len(prepared.desired), options.allow_empty)
    checks.delete_limit(plan, max_deletes, options.allow_deletes)


