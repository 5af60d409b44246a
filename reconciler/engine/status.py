"""Per-deployment status derived from a plan: in sync, drifted, missing, unmanaged (pure).

Code is state too: a deployment whose fields match but whose bundle the plan would upload is drifted."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from ..bundles.uploads import Upload
from .plans import Plan

STATUS_OF = {"noop": "in sync", "update": "drifted", "create": "missing", "adopt": "unmanaged", "delete": "orphaned"}
ORDER = ("in sync", "drifted", "missing", "unmanaged", "orphaned", "conflict")


@dataclass(frozen=True)
class Entry:
    identity: str
    manifest: Optional[str]
    status: str
    detail: str
    code: Optional[Upload] = None     # the upload the plan makes for its code (code drift), if any

    def to_json(self) -> dict[str, Any]:
        out = {"deployment": self.identity, "manifest": self.manifest, "status": self.status, "detail": self.detail}
        if self.code is not None:
            u = self.code
            out["code"] = {"bundle": u.bundle, "storage": u.storage, "path": u.path, "uploaded": u.marker_before is not None,
                           "files_changed": len(u.write), "files_removed": len(u.remove)}
        return out


def entries(plan: Plan) -> list[Entry]:
    out = []
    uploads = {identity: u for u in plan.uploads for identity in u.deployments}
    for a in plan.actions:
        status = STATUS_OF[a.action]
        code = uploads.get(a.identity)
        if status == "in sync" and code is not None:
            status = "drifted"
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
        if code is not None and a.action != "create":
            detail = "; ".join(part for part in (detail, code_detail(code)) if part)
        out.append(Entry(a.identity, a.manifest, status, detail, code))
    for c in plan.conflicts:
        out.append(Entry(c.identity, c.manifest, "conflict", c.why))
    return sorted(out, key=lambda e: (ORDER.index(e.status), e.identity))


def code_detail(upload: Upload) -> str:
    where = upload.storage + (f" path {upload.path}" if upload.path else "")
    if upload.marker_before is None:
        return f"its code ({upload.bundle}) is not at {where} yet (apply uploads {len(upload.write)} file(s))"
    return (f"its code ({upload.bundle}) differs from {where}: {len(upload.write)} file(s) to upload, "
            f"{len(upload.remove)} to remove")


def counts(items: list[Entry]) -> dict[str, int]:
    return {status: sum(1 for e in items if e.status == status) for status in ORDER}


def to_json(plan: Plan) -> dict[str, Any]:
    items = entries(plan)
    return {"version": 1, "source": plan.source,
            "server": {"url": plan.api_url, "version": plan.server_version},
            "deployments": [e.to_json() for e in items], "summary": counts(items)}


def drifted(plan: Plan) -> bool:
    return any(e.status != "in sync" for e in entries(plan))
