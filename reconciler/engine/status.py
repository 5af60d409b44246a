"""Per-deployment status derived from a plan: in sync, drifted, missing, unmanaged (pure)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from .plans import Plan

STATUS_OF = {"noop": "in sync", "update": "drifted", "create": "missing", "adopt": "unmanaged", "delete": "orphaned"}
ORDER = ("in sync", "drifted", "missing", "unmanaged", "orphaned", "conflict")


@dataclass(frozen=True)
class Entry:
    identity: str
    manifest: Optional[str]
    status: str
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"deployment": self.identity, "manifest": self.manifest, "status": self.status, "detail": self.detail}


def entries(plan: Plan) -> list[Entry]:
    out = []
    for a in plan.actions:
        status = STATUS_OF[a.action]
        if a.action == "adopt" and not a.changes:
            detail = "on the server, not yet in this source's inventory (apply adopts it)"
        elif a.changes and a.action != "create":
            detail = f"{len(a.changes)} field(s) differ: " + ", ".join(c.field for c in a.changes[:5])
        elif a.action == "delete":
            detail = "managed by this source but no longer declared (apply deletes it)"
        elif a.action == "create":
            detail = "declared, not on the server"
        else:
            detail = ""
        out.append(Entry(a.identity, a.manifest, status, detail))
    for c in plan.conflicts:
        out.append(Entry(c.identity, c.manifest, "conflict", c.why))
    return sorted(out, key=lambda e: (ORDER.index(e.status), e.identity))


def counts(items: list[Entry]) -> dict[str, int]:
    return {status: sum(1 for e in items if e.status == status) for status in ORDER}


def to_json(plan: Plan) -> dict[str, Any]:
    items = entries(plan)
    return {"version": 1, "source": plan.source,
            "server": {"url": plan.api_url, "version": plan.server_version},
            "deployments": [e.to_json() for e in items], "summary": counts(items)}


def drifted(plan: Plan) -> bool:
    return any(e.status != "in sync" for e in entries(plan))
