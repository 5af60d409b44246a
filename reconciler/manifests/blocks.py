"""Block references: named blocks by type slug + name, anonymous blocks by content."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Optional

MASK = "**********"  # what Prefect writes in place of a secret value (the API itself answers with 8 stars)


def is_mask(value: Any) -> bool:
    return isinstance(value, str) and len(value) >= 8 and set(value) == {"*"}


@dataclass(frozen=True)
class BlockRef:
    slug: str
    name: Optional[str] = None            # a named (saved) block document
    data: Optional[dict[str, Any]] = None  # an anonymous block's content

    @property
    def anonymous(self) -> bool:
        return self.name is None

    @property
    def key(self) -> str:
        """How the block shows in plans and is compared: `slug/name` or `slug/anonymous:<hash>`."""
        if self.name is not None:
            return f"{self.slug}/{self.name}"
        return f"{self.slug}/anonymous:{content_hash(self.data or {})[:12]}"

    def to_json(self) -> dict[str, Any]:
        return {"slug": self.slug, "name": self.name, "data": self.data}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> "BlockRef":
        return cls(slug=raw["slug"], name=raw.get("name"), data=raw.get("data"))


def canonical_content(data: dict[str, Any]) -> dict[str, Any]:
    """Block data without the bookkeeping keys and without empty values.

    Prefect fills every field of a block with its default when it saves one, so
    `{}`/`null`/`[]` and a missing key mean the same thing here.
    """
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key.startswith("_") or key == "block_type_slug":
            continue
        if isinstance(value, dict) and any(k in value for k in ("_block_document_id", "_block_type_slug", "block_type_slug")):
            value = canonical_content(value)
        if value in (None, {}, []):
            continue
        out[key] = value
    return out


def content_hash(data: dict[str, Any]) -> str:
    blob = json.dumps(canonical_content(data), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def masked_key(data: Any, path: tuple = ()) -> Optional[tuple]:
    """The path of the first value Prefect masked, if any."""
    if isinstance(data, dict):
        for key, value in data.items():
            found = masked_key(value, path + (key,))
            if found is not None:
                return found
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found = masked_key(value, path + (index,))
            if found is not None:
                return found
    elif is_mask(data):
        return path
    return None
