"""The requests of a plan's live read (engine/live) that the readahead (engine/readahead) also sends early,
and how the answers they depend on (a source's inventory) are read.

Built in one place so that both send the very same request: prefect/ahead hands an answer read ahead only
to an identical request.  Light on imports: the readahead starts before the rest of the engine is loaded.
Where an answer decides the next request (a first page, whether a read took one page), both decide by the
same function here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from ..prefect.api import PAGE
from .source import doc_slug

INVENTORY_PREFIX = "reconcile-inventory-"


# Inventories only, in name order (locks come and go, and offset paging over a changing set can skip entries;
# an inventory is created only under the ownership lock and never deleted, so under that lock the pages are stable)
INVENTORIES_QUERY = {"block_documents": {"name": {"like_": INVENTORY_PREFIX + "%"}},
                     "block_types": {"slug": {"any_": ["json"]}}, "sort": "NAME_ASC"}


def own_inventory_path(source: str) -> str:
    return f"block_types/slug/json/block_documents/name/{own_inventory_name(source)}"


def own_inventory_name(source: str) -> str:
    return f"{INVENTORY_PREFIX}{doc_slug(source)}"


def own_among(inventories: list[dict[str, Any]], source: str) -> tuple[bool, Optional[dict[str, Any]]]:
    """This source's inventory, from the filter of every inventory when that answered in one page (one answer:
    nothing can be skipped), as (True, it or None); else (False, None): read it by its exact name, since offset
    paging over a set that changes between pages can skip one."""
    if len(inventories) >= PAGE:
        return False, None
    name = own_inventory_name(source)
    return True, next((raw for raw in inventories if raw.get("name") == name), None)


def deployments_query(flow_names: list[str]) -> dict[str, Any]:
    return {"sort": "NAME_ASC", "flows": {"name": {"any_": flow_names}}}


def flows_query(names: list[str], ids: list[str]) -> dict[str, Any]:
    query: dict[str, Any] = {"operator": "or_"}
    if ids:
        query["id"] = {"any_": ids}
    if names:
        query["name"] = {"any_": names}
    return {"flows": query}


def block_ids(raw_deployments: list[dict[str, Any]]) -> list[str]:
    """The block documents the deployments point at."""
    return sorted({i for d in raw_deployments for i in (d.get("infrastructure_document_id"),
                                                          d.get("storage_document_id")) if i})


def block_reads(first_page: list[dict[str, Any]], deployments: list[dict[str, Any]]) -> list[list[str]]:
    """The block documents to read, as the ids of each read: those the first page of deployments points at
    (usually all of them: they go out while the other pages come), then any the rest add."""
    first = block_ids(first_page)
    seen = set(first)
    rest = [i for i in block_ids(deployments) if i not in seen]
    return [ids for ids in (first, rest) if ids]


def blocks_query(ids: list[str]) -> dict[str, Any]:
    # with secrets: an anonymous block is matched by its whole content (the data is never printed or saved)
    return {"block_documents": {"id": {"any_": ids}, "is_anonymous": None}, "include_secrets": True}


@dataclass(frozen=True)
class Inventory:
    """The identities one source manages, stored as a JSON block document."""

    source: str
    deployments: frozenset[str]
    doc_id: Optional[str] = None
    doc_name: Optional[str] = None


def parse_inventory(raw: dict[str, Any]) -> Optional[Inventory]:
    value = (raw.get("data") or {}).get("value") or {}
    if isinstance(value, dict) and isinstance(value.get("source"), str):
        return Inventory(source=value["source"], deployments=frozenset(value.get("deployments") or ()),
                         doc_id=raw["id"], doc_name=raw["name"])
    return None


def owned_by(own_raw: Optional[dict[str, Any]], source: Optional[str]) -> frozenset[str]:
    """The identities this source's inventory (as read) lists."""
    own = parse_inventory(own_raw) if own_raw is not None else None
    return own.deployments if own is not None and own.source == source else frozenset()


def flow_names_for(declared: set[str], owned: frozenset[str]) -> list[str]:
    """The flows whose deployments a plan reads: those the manifests declare and those its inventory names."""
    return sorted(declared | {f for i in owned for f in _flow_names_of(i)})


def owned_only(declared: list[str], flow_names: list[str]) -> list[str]:
    """The flows a plan reads that no manifest declares (its inventory's): read after the declared ones."""
    seen = set(declared)
    return [name for name in flow_names if name not in seen]


def _flow_names_of(identity: str) -> list[str]:
    """The flow names an identity `flow/deployment` can have (Prefect bans `/` in names; every split, in case)."""
    parts = identity.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]
