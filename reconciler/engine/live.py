"""Prefect API → Live: what the server holds now, read in a handful of requests.

Requests: the server version, the deployments (paged, 200 a page: for a plan, only those of the flows the
manifests and this source's inventory name), their flows and the declared flows (one filter), the block
documents the deployments point at and the named blocks the manifests name (two filters), the block types of
blocks not found (one filter, only then), and the reconciler's own documents (inventories: one filter, and this
source's by name; claim documents of earlier versions only for a deployment two inventories list).  Never one
request per deployment.  Reads that do not depend on each other go out together, a few at a time (over a
network their round trips overlap; a local server that does one thing at a time only queues them).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

from ..errors import NotFound
from ..manifests.blocks import BlockRef, content_hash
from ..prefect.api import PAGE, PrefectClient
from . import claims as claims_mod
from .desired import Desired
from .reads import (INVENTORIES_QUERY, Inventory, block_reads, blocks_query, deployments_query, flow_names_for,
                    flows_query, own_among, own_inventory_path, owned_by, owned_only, parse_inventory)

LOCK_PREFIX = "reconcile-lock-"


@dataclass(frozen=True)
class BlockDoc:
    id: str
    slug: str
    name: Optional[str]
    anonymous: bool
    data: dict[str, Any]
    block_type_id: str
    block_schema_id: str

    @property
    def key(self) -> str:
        if self.anonymous:
            return f"{self.slug}/anonymous:{content_hash(self.data)[:12]}"
        return f"{self.slug}/{self.name}"

    @classmethod
    def from_api(cls, raw: dict[str, Any]) -> "BlockDoc":
        slug = (raw.get("block_type") or {}).get("slug") or (raw.get("block_schema") or {}).get("fields", {}).get("block_type_slug") or "?"
        return cls(id=raw["id"], slug=slug, name=raw.get("name"), anonymous=bool(raw.get("is_anonymous")),
                   data=raw.get("data") or {}, block_type_id=raw.get("block_type_id", ""),
                   block_schema_id=raw.get("block_schema_id", ""))


@dataclass
class Live:
    api_url: str
    server_version: str
    deployments: dict[str, dict[str, Any]]           # identity → the API's deployment JSON
    flows: dict[str, str]                            # flow name → flow id
    blocks: dict[str, BlockDoc]                      # id → document
    named: dict[tuple[str, str], BlockDoc]           # (slug, name) → document
    inventories: dict[str, Inventory]                # source → inventory
    work_pools: frozenset[str] = frozenset()         # the declared work pools that exist
    unregistered: frozenset[str] = frozenset()       # block types the manifests use that the server does not know
    claims: dict[str, claims_mod.Claim] = field(default_factory=dict)   # earlier versions' claims, where contested

    def block_key(self, doc_id: Optional[str]) -> Optional[str]:
        if not doc_id:
            return None
        doc = self.blocks.get(doc_id)
        return doc.key if doc else f"missing:{doc_id}"

    def owner_of(self, identity: str, except_source: str) -> Optional[str]:
        """The other source that owns identity (the one whose inventory lists it: claims.owner), if any."""
        held_by = claims_mod.owner(identity, self.inventories, self.claims)
        return held_by if held_by != except_source else None


READERS = 4   # requests in flight at once while reading (one httpx client: it is thread-safe)


def read(client: PrefectClient, desired: Iterable[Desired], source: Optional[str] = None, *,
         relevant_only: bool = False, version: Optional[str] = None) -> Live:
    """What the server holds.  `relevant_only`: only the deployments of the flows the manifests and this
    source's inventory name (all a plan needs: the declared, the owned ones to prune, the same-identity ones
    to adopt or refuse), not every deployment on the server.  `version`: the server's, when the caller has read
    it already.  Independent reads go out together."""
    desired = list(desired)
    with ThreadPoolExecutor(READERS, thread_name_prefix="reconcile-read") as pool:
        try:
            return _read(client, desired, source, relevant_only, pool, version)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _read(client: PrefectClient, desired: list[Desired], source: Optional[str], relevant_only: bool,
          pool: ThreadPoolExecutor, known_version: Optional[str] = None) -> Live:
    declared = sorted({d.flow_name for d in desired})
    # the deployments of the declared flows go out first, beside the inventory (which may name more flows:
    # those of deployments this source owns that no manifest declares any more)
    declared_f = pool.submit(_deployments, client, declared) if relevant_only and declared else None
    version_f = pool.submit(lambda: known_version or client.server_version())
    inventories_f = pool.submit(_all_inventories, client)
    wanted = _named_refs(desired)
    named_f = pool.submit(_named_blocks, client, wanted) if wanted else None
    pools = sorted({d.fields.get("work_pool_name") for d in desired} - {None})
    pools_f = pool.submit(lambda: frozenset(p["name"] for p in client.paged(
        "work_pools/filter", {"work_pools": {"name": {"any_": pools}}}))) if pools else None

    version = version_f.result()   # first: a URL that is no Prefect API is reported as such
    all_raw = inventories_f.result()
    own_raw = _own_inventory(client, source, all_raw) if source is not None else None
    owned = owned_by(own_raw, source)
    flow_names = flow_names_for(set(declared), owned)
    # the flows: by name alongside the deployments (theirs are among them); else after, by name and id
    flows_f = pool.submit(_flows, client, flow_names, []) if relevant_only and flow_names else None
    if not relevant_only:
        raw_deployments = list(client.paged("deployments/filter", {"sort": "NAME_ASC"}))
        first_page = raw_deployments[:PAGE]
    else:
        others = owned_only(declared, flow_names)
        declared_raw = declared_f.result() if declared_f is not None else []
        raw_deployments = declared_raw + (_deployments(client, others) if others else [])
        first_page = declared_raw[:PAGE]
    blocks: dict[str, BlockDoc] = {}
    blocks_fs = [pool.submit(_blocks_by_id, client, ids) for ids in block_reads(first_page, raw_deployments)]

    if flows_f is not None:
        found = flows_f.result()
    elif relevant_only:
        found = []
    else:
        found = _flows(client, flow_names, sorted({d["flow_id"] for d in raw_deployments}))
    flows_by_id = {flow["id"]: flow["name"] for flow in found}
    flows = {flow["name"]: flow["id"] for flow in found}
    deployments: dict[str, dict[str, Any]] = {}
    for dep in raw_deployments:
        flow_name = flows_by_id.get(dep["flow_id"])
        if flow_name is not None:
            deployments[f"{flow_name}/{dep['name']}"] = dep

    for doc in [d for f in blocks_fs for d in f.result()] + (named_f.result() if named_f is not None else []):
        blocks[doc.id] = doc
    named: dict[tuple[str, str], BlockDoc] = {}
    for doc in blocks.values():
        if not doc.anonymous and doc.name:
            named[(doc.slug, doc.name)] = doc
    unregistered = _unregistered(client, desired, blocks, named)
    work_pools = pools_f.result() if pools_f is not None else frozenset()

    inventories = _by_source(all_raw + ([own_raw] if own_raw is not None else []))
    # claims of earlier versions decide only where two inventories list one deployment: normally no request
    legacy = claims_mod.read(client, claims_mod.contested(inventories, {d.identity for d in desired} | owned))
    return Live(api_url=client.api_url, server_version=version, deployments=deployments, flows=flows,
                blocks=blocks, named=named, inventories=inventories, work_pools=work_pools, claims=legacy,
                unregistered=unregistered)


def read_inventories(client: PrefectClient, source: Optional[str] = None) -> dict[str, Inventory]:
    """Every source's inventory (one filter), and this source's for certain (reads.own_among)."""
    raws = _all_inventories(client)
    own = _own_inventory(client, source, raws) if source is not None else None
    return _by_source(raws + ([own] if own is not None else []))


def _all_inventories(client: PrefectClient) -> list[dict[str, Any]]:
    return list(client.paged("block_documents/filter", INVENTORIES_QUERY))


def _by_source(raws: list[dict[str, Any]]) -> dict[str, Inventory]:
    inventories: dict[str, Inventory] = {}
    for raw in raws:
        inventory = parse_inventory(raw)
        if inventory is not None:
            inventories[inventory.source] = inventory
    return inventories


def _own_inventory(client: PrefectClient, source: str, inventories: list[dict[str, Any]]) -> Optional[dict[str, Any]]:
    """This source's own inventory: among every inventory when they came in one page, else read by its name."""
    certain, own = own_among(inventories, source)
    if certain:
        return own
    try:
        return client.get(own_inventory_path(source))
    except NotFound:
        return None


def _deployments(client: PrefectClient, flow_names: list[str]) -> list[dict[str, Any]]:
    return list(client.paged("deployments/filter", deployments_query(flow_names)))


def _flows(client: PrefectClient, names: list[str], ids: list[str]) -> list[dict[str, Any]]:
    """The flows with these names or ids (one filter)."""
    if not names and not ids:
        return []
    return list(client.paged("flows/filter", flows_query(names, ids)))


def _blocks_by_id(client: PrefectClient, ids: list[str]) -> list[BlockDoc]:
    return [BlockDoc.from_api(raw) for raw in client.paged("block_documents/filter", blocks_query(ids))]


def _named_blocks(client: PrefectClient, wanted: set[tuple[str, str]]) -> list[BlockDoc]:
    body = {"block_documents": {"name": {"any_": sorted({n for _, n in wanted})}},
            "block_types": {"slug": {"any_": sorted({s for s, _ in wanted})}}}
    return [BlockDoc.from_api(raw) for raw in client.paged("block_documents/filter", body)]


def _unregistered(client: PrefectClient, desired: list[Desired], blocks: dict[str, BlockDoc],
                  named: dict[tuple[str, str], BlockDoc]) -> frozenset[str]:
    """The block types a manifest uses that the server has not registered (one filter, and none when every block
    is already there): the type of each named block not found, and of each anonymous block apply would create."""
    present = {(doc.slug, content_hash(doc.data)) for doc in blocks.values() if doc.anonymous}
    slugs = set()
    for d in desired:
        for ref in (d.infrastructure, d.storage):
            if not isinstance(ref, BlockRef):
                continue
            if (ref.name is not None and (ref.slug, ref.name) not in named) or \
                    (ref.name is None and (ref.slug, content_hash(ref.data or {})) not in present):
                slugs.add(ref.slug)
    if not slugs:
        return frozenset()
    known = {t.get("slug") for t in client.paged("block_types/filter", {"block_types": {"slug": {"any_": sorted(slugs)}}})}
    return frozenset(slugs - known)


def _named_refs(desired: list[Desired]) -> set[tuple[str, str]]:
    refs: set[tuple[str, str]] = set()
    for d in desired:
        for ref in (d.infrastructure, d.storage):
            if isinstance(ref, BlockRef) and ref.name is not None:
                refs.add((ref.slug, ref.name))
    return refs
