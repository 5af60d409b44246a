"""One owner per deployment across sources: a claim document per deployment, created if absent.

The server's 409 on a duplicate block-document name makes taking ownership atomic: of two sources
that declare the same deployment at the same moment, exactly one creates its claim; the other reads
the claim back and leaves the deployment alone (a conflict).  A claim is released after its
deployment is deleted, and never by a source that does not hold it.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Iterable

from ..errors import AlreadyExists, NotFound
from ..prefect.api import PrefectClient

CLAIM_PREFIX = "reconcile-owner-"


@dataclass(frozen=True)
class Claim:
    identity: str
    source: str
    doc_id: str


def claim_name(identity: str) -> str:
    """A block-document-safe name (lowercase hex) for one deployment identity."""
    return CLAIM_PREFIX + hashlib.sha256(identity.encode("utf-8")).hexdigest()[:40]


def _parse(raw: dict[str, Any]) -> Claim | None:
    value = (raw.get("data") or {}).get("value") or {}
    if not isinstance(value, dict) or not isinstance(value.get("deployment"), str) \
            or not isinstance(value.get("source"), str) or raw.get("name") != claim_name(value["deployment"]):
        return None
    return Claim(value["deployment"], value["source"], raw["id"])


def read(client: PrefectClient, identities: Iterable[str]) -> dict[str, Claim]:
    """identity → Claim, for those of the given identities that are claimed (one paged filter)."""
    names = sorted({claim_name(i) for i in identities})
    if not names:
        return {}
    body = {"block_documents": {"name": {"any_": names}}, "block_types": {"slug": {"any_": ["json"]}}}
    found = (_parse(raw) for raw in client.paged("block_documents/filter", body))
    return {c.identity: c for c in found if c is not None}


def take(client: PrefectClient, source: str, identities: Iterable[str], have: dict[str, Claim]) -> dict[str, str]:
    """Claim every identity this source does not hold yet.  Returns identity → owner for those another holds.

    `have` gains the claims taken.  Safe to retry: a create whose answer was lost reads the claim back and
    finds this source in it.
    """
    from .inventory import JsonDocs   # here, not at the top: live imports this module, inventory imports live
    docs = JsonDocs(client)
    lost: dict[str, str] = {}
    for identity in sorted(identities):
        existing = have.get(identity)
        if existing is not None:
            if existing.source != source:
                lost[identity] = existing.source
            continue
        try:
            created = docs.create(claim_name(identity), {"deployment": identity, "source": source})
            have[identity] = Claim(identity, source, created["id"])
        except AlreadyExists:
            try:
                claim = _parse(docs.read(claim_name(identity)))
            except NotFound:      # released between our create and our read: try once more on the next run
                lost[identity] = "(another source, just now)"
                continue
            if claim is None or claim.source != source:
                lost[identity] = claim.source if claim else "(unreadable claim)"
            else:
                have[identity] = claim
    return lost


def release(client: PrefectClient, source: str, identities: Iterable[str], have: dict[str, Claim]) -> None:
    """Delete this source's claims on these identities (a claim another source holds is never touched)."""
    from .inventory import JsonDocs
    docs = JsonDocs(client)
    for identity in sorted(identities):
        claim = have.get(identity)
        if claim is not None and claim.source == source:
            try:
                docs.delete(claim.doc_id)
            except NotFound:
                pass
