"""Block references → block document ids, at apply time.

Named blocks were read with the live state.  Anonymous blocks are found by
content among the documents the server already has (Prefect 2's own apply
creates a new anonymous block on every run; this does not), else created once.
"""
from __future__ import annotations

import threading
from typing import Optional

from ..errors import NotFound, ReconcileError
from ..manifests.blocks import BlockRef, content_hash
from ..prefect.api import PrefectClient
from .guards import how_to_register
from .live import BlockDoc, Live


class BlockIds:
    def __init__(self, client: PrefectClient, live: Live) -> None:
        self.client = client
        self.live = live
        self._anonymous: dict[str, str] = {}   # ref key → document id
        self._scanned: set[str] = set()        # slugs whose anonymous documents were read
        self._lock = threading.Lock()

    def id_for(self, ref: Optional[BlockRef]) -> Optional[str]:
        if ref is None:
            return None
        if ref.name is not None:
            doc = self.live.named.get((ref.slug, ref.name))
            if doc is None:
                raise ReconcileError(f"block {ref.slug}/{ref.name} not found on the server at {self.client.api_url}")
            return doc.id
        with self._lock:  # one find-or-create per content, even with concurrent writers
            if ref.key not in self._anonymous:
                self._anonymous[ref.key] = self._find_or_create(ref)
            return self._anonymous[ref.key]

    def _find_or_create(self, ref: BlockRef) -> str:
        wanted = content_hash(ref.data or {})
        for doc in self.live.blocks.values():
            if doc.anonymous and doc.slug == ref.slug and content_hash(doc.data) == wanted:
                return doc.id
        if ref.slug not in self._scanned:
            self._scanned.add(ref.slug)
            body = {"block_documents": {"is_anonymous": {"eq_": True}},
                    "block_types": {"slug": {"any_": [ref.slug]}}, "sort": "NAME_ASC", "include_secrets": True}
            for raw in self.client.paged("block_documents/filter", body):
                doc = BlockDoc.from_api(raw)
                self.live.blocks.setdefault(doc.id, doc)
                if content_hash(doc.data) == wanted:
                    return doc.id
        return self._create(ref)

    def _create(self, ref: BlockRef) -> str:
        try:
            block_type = self.client.get(f"block_types/slug/{ref.slug}")
        except NotFound:   # checked at plan time; here only when the server lost it since
            raise ReconcileError(f"block type {ref.slug!r} is not registered on the server at {self.client.api_url}; "
                                 f"{how_to_register(ref.slug)}") from None
        schemas = self.client.post("block_schemas/filter", {
            "block_schemas": {"block_type_id": {"any_": [block_type["id"]]}}, "limit": 50})
        if not schemas:
            raise ReconcileError(f"block type {ref.slug} has no schema on the server")
        schemas.sort(key=lambda s: s.get("created", ""), reverse=True)
        data = {k: v for k, v in (ref.data or {}).items() if not k.startswith("_") and k != "block_type_slug"}
        doc = self.client.post("block_documents/", {
            "data": data, "is_anonymous": True, "block_type_id": block_type["id"],
            "block_schema_id": schemas[0]["id"]})
        created = BlockDoc.from_api(doc)
        self.live.blocks[created.id] = created
        return created.id
