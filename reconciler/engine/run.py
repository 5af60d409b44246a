"""The engine: manifests → desired → live → diff → plan → apply → report, joined in one place.

The CLI, the Python API and every trigger call these functions.
"""
from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator, Optional, TextIO

from ..bundles import collect as bundles_mod
from ..bundles import locations as locations_mod
from ..bundles.bundle import Bundle
from ..bundles.storage import Target
from ..errors import ManifestErrors, ReconcileError
from ..manifests import config as config_mod
from ..manifests import discover
from ..prefect.api import PrefectClient
from ..prefect.connection import resolve
from ..prefect.v2 import adapter_for
from . import claims
from . import pools as pools_mod
from . import readahead
from . import translate
from . import desired as desired_mod
from . import diff as diff_mod
from . import guards as checks
from . import live as live_mod
from .applier import Applier, Listener
from .codeplan import with_uploads
from .desired import Desired
from .lock import Lock
from .plans import Conflict, Plan
from .report import FAILED, SKIPPED, Report, Result
from .source import default_name


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


Found = Callable[[list[Path], config_mod.Config, str], None]


def prepare(path: Path, options: Options, on_found: Optional[Found] = None) -> Prepared:
    """Load and validate everything on disk (no network).  `on_found(files, config, source)` is told the
    manifest files before they are parsed (make_plan starts its readahead there)."""
    root = Path(path)
    if not root.exists():
        raise ReconcileError(f"{path}: no such file or directory")
    home = root if root.is_dir() else source_home(root)
    loaded_config = config_mod.load(home)
    cfg = loaded_config.config
    source = options.source or cfg.source or default_name(home)
    found = (lambda paths: on_found(paths, cfg, source)) if on_found is not None else None
    loaded = discover.load_all(root, cfg, strict=False, on_found=found)
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


@dataclass
class Planned:
    plan: Plan
    live: live_mod.Live
    targets: dict[str, Target]        # storage location url → where to upload
    bundles: dict[str, Bundle]        # bundle directory → Bundle


def _plan(client: PrefectClient, prepared: Prepared, options: Options) -> Planned:
    prune = options.prune and prepared.root.is_dir()    # one manifest on its own never deletes its source's others
    version = client.server_version()     # first: a URL that is no Prefect API is reported as such
    adapter = adapter_for(version, prepared.config.prefect3.work_pools, prepared.config.prefect3.storage_secrets)
    desired, translated = translate.for_server(prepared.desired, adapter)   # 3.x: before any other read
    try:
        live = live_mod.read(client, desired, prepared.source, relevant_only=True, version=version)
    finally:   # what was read ahead (readahead) is for this read only: a later plan reads afresh
        if client.ahead is not None:
            client.ahead.finish()
            client.ahead = None
    new_pools = pools_mod.missing(adapter, desired, live)     # 3.x: created by apply, before the deployments
    checks.server_objects_exist(desired, live, creatable=frozenset(name for name, _ in new_pools))
    places = locations_mod.read(client, live, desired, prepared.bundles)
    plan = diff_mod.diff(desired, live, prepared.source,
                         lambda dep: adapter.live_fields(dep, live.block_key), prepared.config.ignored, prune)
    plan = with_uploads(plan, places.found)
    plan = replace(plan, embedded=client.embedded, work_pools=new_pools,
                   notices=prepared.notices + translated + tuple(places.notices) + plan.notices + _reruns(adapter, plan),
                   leave_conflicts=options.allow_conflicts or prepared.config.allow_conflicts)
    return Planned(plan, live, places.targets, {str(b.root): b for b in prepared.bundles.values()})


def _reruns(adapter, plan: Plan) -> tuple[str, ...]:
    """On 3.x any PATCH of a deployment deletes its future auto-scheduled runs: say so for each scheduled
    deployment an update writes (apply makes them again at once, as on 2.20: applier)."""
    if adapter.major < 3:
        return ()
    return tuple(f"{a.identity}: Prefect {adapter.major} re-creates its future scheduled runs on this update "
                 "(apply schedules them again at once; they get new ids)"
                 for a in plan.actions if (a.action == "update" or (a.action == "adopt" and a.changes))
                 and a.desired is not None
                 and adapter.schedules_runs(a.desired.fields))


@contextlib.contextmanager
def _prepared(path: Path, options: Options, client: Optional[PrefectClient]) -> Iterator[tuple[Prepared, PrefectClient]]:
    """prepare(path), then a client (`client`, which a long-running trigger keeps across runs, or one opened
    here).  With a server to talk to, the plan's first reads go out while the manifests load (readahead);
    `client.ahead` is left set for _plan, which ends it."""
    with contextlib.ExitStack() as stack:
        early: list[PrefectClient] = []

        def found(paths: list[Path], cfg: config_mod.Config, source: str) -> None:
            if not paths:
                return
            try:
                opened = client
                if opened is None and resolve(options.api_url, cfg.api_url).api_url is not None:
                    opened = stack.enter_context(connect(options, cfg.api_url))
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
        return _plan(client, prepared, options).plan


def needs_apply(plan: Plan) -> bool:
    return (plan.has_changes or plan.inventory_before != plan.inventory_after or bool(plan.unclaimed)
            or bool(plan.work_pools))


def apply_path(path: Path, options: Options, client: Optional[PrefectClient] = None) -> Report:
    with _prepared(path, options, client) as (prepared, client):
        max_deletes = options.max_deletes if options.max_deletes is not None else prepared.config.max_deletes
        started = time.monotonic()
        planned = _plan(client, prepared, options)
        _safety(planned.plan, prepared, max_deletes, options)
        if not needs_apply(planned.plan):
            return Report(planned.plan, seconds=time.monotonic() - started)  # converged: not a single write
        with Lock(client, prepared.source, ttl=options.lock_ttl, timeout=options.lock_timeout, say=options.say):
            planned = _plan(client, prepared, options)  # again, under the lock: the server may have moved
            _safety(planned.plan, prepared, max_deletes, options)
            report = _execute(client, planned, options)
        report.seconds = time.monotonic() - started
        return report


def _safety(plan: Plan, prepared: Prepared, max_deletes: int, options: Options) -> None:
    checks.conflicts(plan)
    checks.empty_desired(plan, len(prepared.desired), options.allow_empty)
    checks.delete_limit(plan, max_deletes, options.allow_deletes)


def _execute(client: PrefectClient, planned: Planned, options: Options) -> Report:
    live, plan = planned.live, planned.plan
    checks.conflicts(plan)
    # ownership of new deployments is recorded first, under the ownership lock, by widening the inventory: a
    # deployment another source recorded since the plan was made is not written
    lost: dict[str, str] = {}
    if plan.unclaimed:
        lost, live.inventories[plan.source] = claims.take(
            client, plan.source, plan.unclaimed, plan.inventory_before | plan.inventory_after, live.claims,
            ttl=options.lock_ttl, timeout=options.lock_timeout + 2 * options.lock_ttl, say=options.say)
    plan = without(plan, lost)
    applier = Applier(client, live, adapter_for(live.server_version), parallelism=options.parallelism,
                      on_result=options.on_result, targets=planned.targets, bundles=planned.bundles,
                      on_bytes=options.on_bytes)
    options.on_start(plan)
    report = applier.run(plan)
    for identity, owner in sorted(lost.items()):
        result = Result(identity, "conflict", SKIPPED if plan.leave_conflicts else FAILED,
                        f"source {owner!r} took ownership first; not written")
        report.results.insert(0, result)
        options.on_result(result)
    report.notices.extend(plan.notices)
    return report


def without(plan: Plan, lost: dict[str, str]) -> Plan:
    """The plan less the deployments another source won: each becomes a conflict, and its code is not uploaded."""
    if not lost:
        return plan
    by_identity = {a.identity: a for a in plan.actions}
    conflicts = tuple(Conflict(i, by_identity[i].manifest if i in by_identity else None, owner)
                      for i, owner in sorted(lost.items()))
    uploads = tuple(replace(u, deployments=tuple(d for d in u.deployments if d not in lost)) for u in plan.uploads)
    return replace(plan, actions=tuple(a for a in plan.actions if a.identity not in lost),
                   conflicts=plan.conflicts + conflicts, uploads=tuple(u for u in uploads if u.deployments),
                   inventory_after=plan.inventory_after - set(lost), unclaimed=plan.unclaimed - set(lost))
