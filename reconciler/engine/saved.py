"""Applying a saved plan exactly as shown, or refusing when the server moved since."""
from __future__ import annotations

import copy
import json
import time
from dataclasses import replace
from pathlib import Path

from ..bundles import collect as bundles_mod
from ..bundles import locations as locations_mod
from ..bundles.uploads import Upload, plan_code
from ..errors import ManifestErrors, PlanStale, ReconcileError
from ..manifests import manifest as manifest_mod
from ..manifests import secrets
from ..manifests.confine import member
from ..manifests.discover import repository_root
from ..prefect.api import PrefectClient
from . import desired as desired_mod
from . import guards as checks
from . import live as live_mod
from .lock import Lock
from .desired import Desired
from .plans import Action, Plan
from .report import Report
from .planning import Planned, execute
from .run import Options, connect, needs_apply


def apply_saved(plan_file: Path, options: Options) -> Report:
    try:
        saved = Plan.from_json(json.loads(plan_file.read_text(encoding="utf-8")), str(plan_file))
    except (OSError, ValueError) as exc:
        raise ReconcileError(f"{plan_file}: cannot read the saved plan: {exc}") from None
    return apply_plan(saved, options, origin=str(plan_file))


def apply_plan(saved: Plan, options: Options, origin: str) -> Report:
    """Apply exactly this plan; refuse if the server (or the code) moved since it was made."""
    if options.source and options.source != saved.source:
        raise ReconcileError(f"{origin}: the plan is for source {saved.source!r}, not {options.source!r}")
    saved = replace(saved, leave_conflicts=saved.leave_conflicts or options.allow_conflicts)
    saved = unseal(saved, origin)
    checks.conflicts(saved)
    checks.empty_desired(saved, len(saved.inventory_after) + len(saved.conflicts), options.allow_empty)
    checks.delete_limit(saved, options.max_deletes if options.max_deletes is not None else 10, options.allow_deletes)
    _files_inside(saved, origin, repository_root(Path.cwd()))
    if not saved.embedded:  # an embedded server gets a new port each run: connect as usual instead
        options = replace(options, api_url=options.api_url or saved.api_url)
    with connect(options) as client:
        started = time.monotonic()
        if not needs_apply(saved):
            return Report(saved, seconds=time.monotonic() - started)
        # refuse a stale plan before taking the lock (a write), then check again under it
        _current(client, saved, origin)
        with Lock(client, saved.source, ttl=options.lock_ttl, timeout=options.lock_timeout, say=options.say):
            report = execute(client, _current(client, saved, origin), options)
        report.seconds = time.monotonic() - started
        return report


def _current(client: PrefectClient, saved: Plan, origin: str) -> Planned:
    """The saved plan checked against the server and the code now: every path in it is validated as a fresh
    plan validates it (bundle directories inside this repository, storage paths inside their block's root,
    file lists inside the location), and each upload must be the one the code and storage call for."""
    repo = repository_root(Path.cwd())
    code = bundles_mod.collect_dirs({u.bundle_dir for u in saved.uploads}, repo, origin)
    desired = [a.desired for a in saved.actions if a.desired]
    live = live_mod.read(client, desired, saved.source)
    stale_because(saved, live, origin)
    by_identity = {identity: code[u.bundle_dir] for u in saved.uploads for identity in u.deployments}
    try:
        locations_mod.confined(live, desired)
        places = locations_mod.read(client, live, [d for d in desired if d.identity in by_identity], by_identity)
    except ManifestErrors as exc:
        raise ManifestErrors([ReconcileError(f"{origin}: {e}") for e in exc.errors]) from None
    markers = {loc.url: loc.marker for loc in places.found}
    for upload in saved.uploads:
        if code[upload.bundle_dir].digest != upload.digest:
            raise _stale(origin, f"the files in {upload.bundle} changed")
        marker = markers.get(upload.url)
        if (marker.digest if marker else None) != upload.marker_before:
            raise _stale(origin, f"the code at {upload.url} changed")
    fresh = plan_code(places.found, saved.source)
    expected = {_shape(u): u for u in fresh.uploads}
    for upload in saved.uploads:
        if _shape(upload) not in expected:
            raise ReconcileError(f"{origin}: the upload of {upload.bundle} to {upload.url} is not the one its code and "
                                 "storage call for (its files, location or deployments differ, or another source "
                                 "owns the location); run plan again")
    uploads = tuple(replace(u, source=saved.source) for u in saved.uploads)
    return Planned(replace(saved, uploads=uploads), live, places.targets, code)


def _files_inside(saved: Plan, origin: str, repo: Path) -> None:
    """Before connecting: each upload's bundle directory lies in this repository and its file lists inside
    the storage location (relative, no '..')."""
    for upload in saved.uploads:
        bundles_mod.in_repository(upload.bundle_dir, repo, origin)
        for kind, paths in (("write", upload.write), ("remove", upload.remove)):
            for rel in paths:
                if not member(rel):
                    raise ReconcileError(f"{origin}: the upload to {upload.url} would {kind} {rel!r}, which is not a "
                                         "path inside the storage location (make the plan again with plan --out)")


def _shape(upload: Upload) -> tuple:
    """What an upload does (not how it is displayed)."""
    return (upload.url, upload.bundle_dir, upload.storage, upload.digest, upload.marker_before,
            tuple(sorted(upload.write)), tuple(sorted(upload.remove)), tuple(sorted(upload.deployments)))


def _stale(origin: str, why: str) -> PlanStale:
    return PlanStale(f"{origin}: the server changed since this plan was made ({why}); run plan again")


def stale_because(saved: Plan, live: live_mod.Live, origin: str) -> None:
    """Refuse a saved plan when the server moved since it was made."""
    inventory = live.inventories.get(saved.source)
    current = inventory.deployments if inventory else frozenset()
    if current != saved.inventory_before:
        raise _stale(origin, f"the inventory of {saved.source!r} changed")
    for action in saved.actions:
        dep = live.deployments.get(action.identity)
        if action.action == "create":
            if dep is not None:
                raise _stale(origin, f"{action.identity} now exists")
        elif dep is None:
            raise _stale(origin, f"{action.identity} is gone")
        elif dep["id"] != action.live_id or dep.get("updated") != action.live_updated:
            raise _stale(origin, f"{action.identity} was updated at {dep.get('updated')}")


def unseal(saved: Plan, origin: str) -> Plan:
    """A saved plan holds no secret, only digests: each value is read again from its manifest, and must be the
    one the plan was made with (before connecting, so nothing is written when one changed)."""
    if not any(a.sealed and a.desired for a in saved.actions):
        return saved
    return replace(saved, actions=tuple(replace(a, desired=_with_secrets(a, origin)) if a.sealed and a.desired
                                        else a for a in saved.actions))


def _with_secrets(action: Action, origin: str) -> Desired:
    kept = action.desired
    assert kept is not None and kept.manifest is not None
    where = Path(kept.manifest)
    try:
        raw = where.read_bytes()
    except OSError as exc:
        raise ReconcileError(f"{kept.manifest}: cannot read it for the secret values of {action.identity} "
                             f"(the plan {origin} keeps none; apply it from the directory it was made in): "
                             f"{exc.strerror or exc}") from None
    fresh = next((d for d in desired_mod.resolve([manifest_mod.parse(raw, where, kept.manifest)])
                  if d.identity == action.identity), None)
    if fresh is None:
        raise PlanStale(f"{kept.manifest}:1: no longer declares {action.identity}, which the plan {origin} "
                        "applies; run plan again")
    _, found = secrets.seal(fresh.to_json(reveal=True))
    out = copy.deepcopy(kept.to_json(reveal=True))
    for key, digest in action.sealed:
        path = secrets.path_of(key)
        value = found.get(path)
        if value is None or secrets.digest(action.identity, path, value) != digest or not secrets.put(out, path, value):
            field = path[1] if path[0] == "fields" else path[0]
            line = fresh.lines.get(str(field)) or kept.lines.get(str(field)) or 1
            name = secrets.dotted(path[1:] if path[0] == "fields" else (path[0],) + path[2:])
            raise PlanStale(f"{kept.manifest}:{line}: {name}: this secret changed since the plan {origin} was made "
                            "(its digest differs; nothing was applied); run plan again")
    return Desired.from_json(out)
