"""The requests of a plan's live read (engine/live) that the readahead (engine/readahead) also sends, early.

Built in one place so that both send the very same request: prefect/ahead hands an answer read ahead only
to an identical request.
"""
from __future__ import annotations

from typing import Any

from .source import doc_slug

INVENTORY_PREFIX = "reconcile-inventory-"


# Inventories only, in name order (locks come and go, and offset paging over a changing set can skip entries;
# an inventory is created only under the ownership lock and never deleted, so under that lock the pages are stable)
INVENTORIES_QUERY = {"block_documents": {"name": {"like_": INVENTORY_PREFIX + "%"}},
                     "block_types": {"slug": {"any_": ["json"]}}, "sort": "NAME_ASC"}


def own_inventory_path(source: str) -> str:
    return f"block_types/slug/json/block_documents/name/{INVENTORY_PREFIX}{doc_slug(source)}"


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


def blocks_query(ids: list[str]) -> dict[str, Any]:
    # with secrets: an anonymous block is matched by its whole content (the data is never printed or saved)
    return {"block_documents": {"id": {"any_": ids}, "is_anonymous": None}, "include_secrets": True}
