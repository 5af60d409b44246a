"""Plan + storage locations → the plan with its uploads: only deployments this apply writes may upload.

A deployment left alone (a conflict) uploads nothing, and a location whose marker names another source
makes every deployment using it a conflict: the location holds that source's code, so neither the code
nor a deployment pointing at it is written.
"""
from __future__ import annotations

from dataclasses import replace

from ..bundles.uploads import Location, plan_code
from .plans import Conflict, Plan


def with_uploads(plan: Plan, locations: list[Location]) -> Plan:
    writes = {a.identity for a in plan.actions if a.action != "delete"}
    code = plan_code([loc for loc in locations if loc.identity in writes], plan.source)
    taken = {identity: place for place in code.taken for identity in place.deployments}
    if not taken:
        return replace(plan, uploads=tuple(code.uploads), notices=plan.notices + tuple(code.notices))
    manifests = {a.identity: a.manifest for a in plan.actions}
    conflicts = tuple(
        Conflict(identity, manifests.get(identity), place.owner,
                 f"its storage location {place.url} holds the code of source {place.owner!r}")
        for identity, place in sorted(taken.items()))
    # a deployment this source owns stays in its inventory: only its code location is disputed
    adopted = frozenset(taken) - plan.inventory_before
    return replace(plan, actions=tuple(a for a in plan.actions if a.identity not in taken),
                   conflicts=plan.conflicts + conflicts, uploads=tuple(code.uploads),
                   inventory_after=plan.inventory_after - adopted, unclaimed=plan.unclaimed - adopted,
                   notices=plan.notices + tuple(code.notices))
