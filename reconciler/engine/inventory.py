"""Writing a source's inventory: a JSON block document named after the source, listing what it owns.

Widened to old ∪ new before the first write (under the ownership lock: claims.take), narrowed to the
desired set after a successful apply, so a crash in between leaves the union and the next run still
prunes correctly.
"""
from __future__ import annotations

from typing import Iterable, Optional

from ..errors import AlreadyExists, NotFound
from ..prefect.api import PrefectClient
from .reads import INVENTORY_PREFIX, Inventory
from .source import doc_slug


# the fields of Prefect 2's JSON block, as its schema has them
JSON_FIELDS = {
    "title": "JSON", "description": "A block that represents JSON", "type": "object",
    "properties": {"value": {"title": "Value", "description": "A JSON-compatible value."}},
    "required": ["value"], "block_type_slug": "json", "secret_fields": [], "block_schema_references": {},
}


def doc_name(source: str) -> str:
    return INVENTORY_PREFIX + doc_slug(source)


class JsonDocs:
    """Create/update/delete documents of Prefect's `json` block type."""

    def __init__(self, client: PrefectClient) -> None:
        self.client = client
        self._ids: Optional[tuple[str, str]] = None

    def ids(self) -> tuple[str, str]:
        if self._ids is None:
            try:
                block_type = self.client.get("block_types/slug/json")
            except NotFound:       # Prefect 3 no longer registers it: register Prefect 2's JSON block
                block_type = self._register()
            schemas = self.client.post("block_schemas/filter", {
                "block_schemas": {"block_type_id": {"any_": [block_type["id"]]}}, "limit": 50})
            if not schemas:
                schemas = [self._schema(block_type["id"])]
            schemas.sort(key=lambda s: s.get("created", ""), reverse=True)
            self._ids = (block_type["id"], schemas[0]["id"])
        return self._ids

    def _register(self) -> dict:
        try:
            return self.client.post("block_types/", {
                "name": "JSON", "slug": "json",
                "description": "A JSON value (registered by reconcile for its inventories and locks)."})
        except AlreadyExists:
            return self.client.get("block_types/slug/json")

    def _schema(self, type_id: str) -> dict:
        try:
            return self.client.post("block_schemas/", {"block_type_id": type_id, "capabilities": [], "fields": JSON_FIELDS})
        except AlreadyExists:
            return self.client.post("block_schemas/filter", {"block_schemas": {"block_type_id": {"any_": [type_id]}}})[0]

    def create(self, name: str, value: object) -> dict:
        type_id, schema_id = self.ids()
        return self.client.post("block_documents/", {
            "name": name, "data": {"value": value}, "block_type_id": type_id,
            "block_schema_id": schema_id, "is_anonymous": False})

    def update(self, doc_id: str, value: object) -> None:
        _, schema_id = self.ids()
        self.client.patch(f"block_documents/{doc_id}", {
            "data": {"value": value}, "block_schema_id": schema_id, "merge_existing_data": False})

    def read(self, name: str) -> dict:
        return self.client.get(f"block_types/slug/json/block_documents/name/{name}")

    def delete(self, doc_id: str) -> None:
        self.client.delete(f"block_documents/{doc_id}")


def write(client: PrefectClient, source: str, current: Optional[Inventory], identities: Iterable[str]) -> Inventory:
    """Store the inventory (no write when it already says exactly this)."""
    wanted = frozenset(identities)
    if current is not None and current.deployments == wanted and current.doc_id:
        return current
    if not wanted and (current is None or not current.doc_id):
        return Inventory(source, wanted)   # created only with something to own (under the ownership lock)
    docs = JsonDocs(client)
    value = {"source": source, "deployments": sorted(wanted)}
    name = doc_name(source)
    if current is not None and current.doc_id:
        docs.update(current.doc_id, value)
        return Inventory(source, wanted, current.doc_id, current.doc_name)
    try:
        created = docs.create(name, value)
    except AlreadyExists:  # written by a concurrent first run; take it over
        existing = docs.read(name)
        docs.update(existing["id"], value)
        return Inventory(source, wanted, existing["id"], name)
    return Inventory(source, wanted, created["id"], name)
