"""The engine: manifests → desired → live → diff → plan → apply → report, joined in one place.

The CLI, the Python API and every trigger call these functions.
"""
from __future__ import annotations

import contextlib
import json
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator, Optional, TextIO

from . import checks, config as config_mod, desired as desired_mod, diff as diff_mod, discover
from . import live as live_mod
from . import server
from .applier import Applier, Listener
from .client.api import PrefectClient
from .client.v2 import adapter_for
from .connection import resolve
from .desired import Desired
from .errors import ManifestErrors, PlanStale, ReconcileError
from .lock import Lock
from .plans import Plan
from .report import Report
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
    lock_ttl: float = 600.0
    verbose: bool = False
    say: Callable[[str], None] = field(default=lambda line: print(line, file=sys.stderr))
    on_result: Listener = field(default=lambda result: None)


@dataclass(frozen=True)
class Prepared:
    root: Path
    config: config_mod.Config
    desired: list[Desired]
    source: str
    notices: tuple[str, ...]


def prepare(path: Path, options: Options) -> Prepared:
    """Load and validate everything on disk (no network)."""
    root = Path(path)
    if not root.exists():
        raise ReconcileError(f"{path}: no such file or directory")
    loaded_config = config_mod.load(root if root.is_dir() else root.parent)
    cfg = loaded_config.config
    loaded = discover.load_all(root, cfg, strict=False)
    try:
        wanted = desired_mod.resolve(loaded.manifests)
    except ManifestErrors as exc:  # report the files that failed to load and those that failed to resolve
        raise ManifestErrors(loaded.errors + exc.errors) from None
    if loaded.errors:
        raise ManifestErrors(loaded.errors)
    source = options.source or cfg.source or default_name(root)
    notices = tuple(loaded.notices) + tuple(w for d in wanted for w in d.warnings)
    return Prepared(root, cfg, wanted, source, notices)


@contextlib.contextmanager
def connect(options: Options, config_url: Optional[str] = None) -> Iterator[PrefectClient]:
    target = resolve(options.api_url, config_url)
    log: Optional[TextIO] = sys.stderr if options.verbose else None
    if target.api_url is None:
        with server.embedded(options.say) as url:
            with PrefectClient(url, log=log) as client:
                client.embedded = True
                yield client
        return
    with PrefectClient(target.api_url, target.api_key, log=log) as client:
        yield client


def _plan(client: PrefectClient, prepared: Prepared) -> tuple[Plan, live_mod.Live]:
    live = live_mod.read(client, prepared.desired, prepared.source)
    adapter = adapter_for(live.server_version)
    checks.blocks_exist(prepared.desired, live)
    checks.work_pools_exist(prepared.desired, live)
    plan = diff_mod.diff(prepared.desired, live, prepared.source,
                         lambda dep: adapter.live_fields(dep, live.block_key), prepared.config.ignored)
    return replace(plan, notices=prepared.notices + plan.notices, embedded=client.embedded), live


def make_plan(path: Path, options: Options) -> Plan:
    prepared = prepare(path, options)
    with connect(options, prepared.config.api_url) as client:
        return _plan(client, prepared)[0]


def needs_apply(plan: Plan) -> bool:
    return plan.has_changes or plan.inventory_before != plan.inventory_after


def apply_path(path: Path, options: Options) -> Report:
    prepared = prepare(path, options)
    max_deletes = options.max_deletes if options.max_deletes is not None else prepared.config.max_deletes
    with connect(options, prepared.config.api_url) as client:
        started = time.monotonic()
        plan, _ = _plan(client, prepared)
        _safety(plan, prepared, max_deletes, options)
        if not needs_apply(plan):
            return Report(plan, seconds=time.monotonic() - started)  # converged: not a single write
        with Lock(client, prepared.source, ttl=options.lock_ttl, timeout=options.lock_timeout, say=options.say):
            plan, live = _plan(client, prepared)  # again, under the lock: the server may have moved
            _safety(plan, prepared, max_deletes, options)
            report = _execute(client, live, plan, options)
        report.seconds = time.monotonic() - started
        return report


def apply_saved(plan_file: Path, options: Options) -> Report:
    try:
        saved = Plan.from_json(json.loads(plan_file.read_text(encoding="utf-8")), str(plan_file))
    except (OSError, ValueError) as exc:
        raise ReconcileError(f"{plan_file}: cannot read the saved plan: {exc}") from None
    return apply_plan(saved, options, origin=str(plan_file))


def apply_plan(saved: Plan, options: Options, origin: str) -> Report:
    """Apply exactly this plan; refuse if the server moved since it was made."""
    if options.source and options.source != saved.source:
        raise ReconcileError(f"{origin}: the plan is for source {saved.source!r}, not {options.source!r}")
    checks.empty_desired(saved, len(saved.inventory_after) + len(saved.conflicts), options.allow_empty)
    checks.delete_limit(saved, options.max_deletes if options.max_deletes is not None else 10, options.allow_deletes)
    if not saved.embedded:  # an embedded server gets a new port each run: connect as usual instead
        options = replace(options, api_url=options.api_url or saved.api_url)
    with connect(options) as client:
        started = time.monotonic()
        if not needs_apply(saved):
            return Report(saved, seconds=time.monotonic() - started)
        # refuse a stale plan before taking the lock (a write), then check again under it
        stale_because(saved, live_mod.read(client, [a.desired for a in saved.actions if a.desired], saved.source), origin)
        with Lock(client, saved.source, ttl=options.lock_ttl, timeout=options.lock_timeout, say=options.say):
            live = live_mod.read(client, [a.desired for a in saved.actions if a.desired], saved.source)
            stale_because(saved, live, origin)
            report = _execute(client, live, saved, options)
        report.seconds = time.monotonic() - started
        return report


def stale_because(saved: Plan, live: live_mod.Live, origin: str) -> None:
    """Refuse a saved plan when the server moved since it was made."""
    def stale(why: str) -> PlanStale:
        return PlanStale(f"{origin}: the server changed since this plan was made ({why}); run plan again")
    inventory = live.inventories.get(saved.source)
    current = inventory.deployments if inventory else frozenset()
    if current != saved.inventory_before:
        raise stale(f"the inventory of {saved.source!r} changed")
    for action in saved.actions:
        dep = live.deployments.get(action.identity)
        if action.action == "create":
            if dep is not None:
                raise stale(f"{action.identity} now exists")
        elif dep is None:
            raise stale(f"{action.identity} is gone")
        elif dep["id"] != action.live_id or dep.get("updated") != action.live_updated:
            raise stale(f"{action.identity} was updated at {dep.get('updated')}")


def _safety(plan: Plan, prepared: Prepared, max_deletes: int, options: Options) -> None:
    checks.empty_desired(plan, len(prepared.desired), options.allow_empty)
    checks.delete_limit(plan, max_deletes, options.allow_deletes)


def _execute(client: PrefectClient, live: live_mod.Live, plan: Plan, options: Options) -> Report:
    applier = Applier(client, live, adapter_for(live.server_version), parallelism=options.parallelism,
                      on_result=options.on_result)
    report = applier.run(plan)
    report.notices.extend(plan.notices)
    return report
