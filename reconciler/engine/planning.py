"""A plan against the server, and carrying one out: the stages after the manifests are loaded.

live → diff → plan (`plan`), then apply (`execute`): ownership first, then the applier.  engine/run joins
these to the loading stage; it imports this module only once the manifests are found, so the reads a plan
sends early (readahead) start before the rest of the engine is loaded.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ..bundles import locations as locations_mod
from ..bundles.bundle import Bundle
from ..bundles.storage import Target
from ..prefect.api import PrefectClient
from ..prefect.v2 import adapter_for
from . import claims
from . import diff as diff_mod
from . import guards as checks
from . import live as live_mod
from . import pools as pools_mod
from . import translate
from .applier import Applier
from .codeplan import with_uploads
from .plans import Conflict, Plan
from .report import FAILED, SKIPPED, Report, Result

if TYPE_CHECKING:
    from .run import Options, Prepared


@dataclass
class Planned:
    plan: Plan
    live: live_mod.Live
    targets: dict[str, Target]        # storage location url → where to upload
    bundles: dict[str, Bundle]        # bundle directory → Bundle


def plan(client: PrefectClient, prepared: Prepared, options: Options) -> Planned:
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


def execute(client: PrefectClient, planned: Planned, options: Options) -> Report:
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
