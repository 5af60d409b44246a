"""One owner per deployment across sources: a source owns what its inventory lists.

Taking ownership is atomic because every inventory grows only under one lock shared by all sources, the
ownership lock (a lease lock like a source's, `reconcile-lock-ownership`): holding it, apply reads every
inventory afresh, gives up each new deployment another inventory already lists (a conflict, never written),
and widens its own inventory with the rest.  Of two sources that declare the same deployment at the same
moment, the first to hold the lock records it; the second finds it listed and leaves it alone.  The lock is
taken only when a source has deployments it does not own yet, for one read and one write; narrowing an
inventory (after a prune) needs no lock, because it can only give ownership up.

Earlier versions kept a claim document per deployment (`reconcile-owner-<hash>`).  Those are read only for
a deployment that two inventories list (an apply of such a version killed between its two inventory writes),
and there the claim decides; otherwise the first of the sources in name order does, so every source agrees.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional

from ..prefect.api import PrefectClient

CLAIM_PREFIX = "reconcile-owner-"     # the claim documents of earlier versions
OWNERSHIP_LOCK = "ownership"          # no source's lock is named so (theirs end in a hash: source.doc_slug)


@dataclass(frozen=True)
class Claim:
    identity: str
    source: str
    doc_id: str


def claim_name(identity: str) -> str:
    return CLAIM_PREFIX + hashlib.sha256(identity.encode("utf-8")).hexdigest()[:40]


def _parse(raw: dict[str, Any]) -> Optional[Claim]:
    value = (raw.get("data") or {}).get("value") or {}
    if not isinstance(value, dict) or not isinstance(value.get("deployment"), str) \
            or not isinstance(value.get("source"), str) or raw.get("name") != claim_name(value["deployment"]):
        return None
    return Claim(value["deployment"], value["source"], raw["id"])


def read(client: PrefectClient, identities: Iterable[str]) -> dict[str, Claim]:
    """identity → the claim an earlier version wrote, for those of these identities that have one (one filter)."""
    names = sorted({claim_name(i) for i in identities})
    if not names:
        return {}
    body = {"block_documents": {"name": {"any_": names}}, "block_types": {"slug": {"any_": ["json"]}}}
    found = (_parse(raw) for raw in client.paged("block_documents/filter", body))
    return {c.identity: c for c in found if c is not None}


def contested(inventories: dict[str, Any], identities: Iterable[str]) -> frozenset[str]:
    """Those of these identities that more than one inventory lists."""
    seen: dict[str, int] = {}
    wanted = set(identities)
    for inventory in inventories.values():
        for identity in wanted & inventory.deployments:
            seen[identity] = seen.get(identity, 0) + 1
    return frozenset(i for i, n in seen.items() if n > 1)


def owner(identity: str, inventories: dict[str, Any], legacy: dict[str, Claim]) -> Optional[str]:
    """The source that owns identity: the one inventory that lists it; of several, the claim, else the first."""
    listing = sorted(s for s, inventory in inventories.items() if identity in inventory.deployments)
    if not listing:
        return None
    claim = legacy.get(identity)
    if len(listing) > 1 and claim is not None and claim.source in listing:
        return claim.source
    return listing[0]


def take(client: PrefectClient, source: str, identities: Iterable[str], widen_to: Iterable[str],
         legacy: dict[str, Claim], *, ttl: float, timeout: float,
         say: Callable[[str], None] = lambda line: None):
    """Record this source's ownership of `identities` under the ownership lock, and widen its inventory to
    `widen_to` less what it lost.  Returns (identity → owner, for those another source owns; the inventory)."""
    from .inventory import write
    from .live import read_inventories
    from .lock import Lock
    with Lock(client, OWNERSHIP_LOCK, ttl=ttl, timeout=timeout, say=say, doc=OWNERSHIP_LOCK,
              what="the ownership of deployments"):
        inventories = read_inventories(client, source)   # afresh: only a holder of this lock adds to them
        others = {s: inv for s, inv in inventories.items() if s != source}
        lost: dict[str, str] = {}
        for identity in sorted(set(identities)):
            listing = sorted(s for s, inv in others.items() if identity in inv.deployments)
            claim = legacy.get(identity)
            if listing and (claim is None or claim.source != source):
                lost[identity] = claim.source if claim is not None and claim.source in listing else listing[0]
        inventory = write(client, source, inventories.get(source), frozenset(widen_to) - set(lost))
    return lost, inventory

