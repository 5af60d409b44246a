"""The Plan: ordered actions with field-level changes, and its JSON form.

The JSON form is a contract (documented in the README): `version`, `source`,
`server`, `actions[]` with `action`, `deployment`, `manifest`, `changes[]`, and
`summary`.  Keys may be added; these stay.  A saved plan also carries what apply
needs (the desired values, the live fingerprints) so it can be applied later
exactly as shown.
"""
from __future__ import annotations

import datetime as dt
import itertools
import json
from dataclasses import dataclass, field
from typing import Any, Optional

from ..bundles.uploads import Upload
from ..errors import ReconcileError
from ..manifests import secrets
from .desired import Desired

KINDS = ("create", "update", "delete", "adopt", "noop")
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Change:
    """One field's change.  Secret values never enter it: they are masked as `(sensitive)` on the way in."""

    field: str
    before: Any
    after: Any
    sensitive: bool = False

    def __post_init__(self) -> None:
        before, after, sensitive = secrets.redact_change(self.field, self.before, self.after)
        object.__setattr__(self, "before", before)
        object.__setattr__(self, "after", after)
        object.__setattr__(self, "sensitive", self.sensitive or sensitive)

    @property
    def hidden(self) -> bool:
        """The value itself is a secret (not a mapping holding some): shown as `(sensitive value changed)`."""
        return self.sensitive and secrets.SENSITIVE in (self.before, self.after)

    def to_json(self) -> dict[str, Any]:
        out = {"field": self.field, "before": self.before, "after": self.after}
        return {**out, "sensitive": True} if self.sensitive else out


@dataclass(frozen=True)
class Action:
    action: str                       # one of KINDS
    identity: str                     # flow_name/name
    manifest: Optional[str]
    changes: tuple[Change, ...] = ()
    desired: Optional[Desired] = None
    live_id: Optional[str] = None
    live_updated: Optional[str] = None  # the live deployment's `updated`, to detect a moved server
    reason: str = ""
    sealed: tuple[tuple[str, str], ...] = ()   # a saved plan's secrets: (path key, digest), values in the manifest

    @property
    def changed_fields(self) -> set[str]:
        return {c.field.split(".", 1)[0] for c in self.changes}

    @property
    def writes(self) -> bool:
        return self.action in ("create", "delete") or bool(self.changes)

    def to_json(self) -> dict[str, Any]:
        out = {
            "action": self.action, "deployment": self.identity, "manifest": self.manifest,
            "changes": [c.to_json() for c in self.changes], "reason": self.reason,
            "live": {"id": self.live_id, "updated": self.live_updated},
            "desired": None,
        }
        if self.desired is not None:
            out["desired"], found = secrets.seal(self.desired.to_json(reveal=True))
            sealed = dict(self.sealed)   # a plan read back from a file keeps the digests it was saved with
            sealed.update({secrets.path_key(p): secrets.digest(self.identity, p, v) for p, v in found.items()
                           if v != secrets.SENSITIVE})
            if sealed:
                out["secrets"] = dict(sorted(sealed.items()))
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> "Action":
        live = raw.get("live") or {}
        return cls(
            action=raw["action"], identity=raw["deployment"], manifest=raw.get("manifest"),
            changes=tuple(Change(c["field"], c["before"], c["after"], bool(c.get("sensitive")))
                          for c in raw.get("changes", [])),
            desired=Desired.from_json(raw["desired"]) if raw.get("desired") else None,
            live_id=live.get("id"), live_updated=live.get("updated"), reason=raw.get("reason", ""),
            sealed=tuple(sorted((str(k), str(v)) for k, v in (raw.get("secrets") or {}).items())),
        )


@dataclass(frozen=True)
class Conflict:
    identity: str
    manifest: Optional[str]
    owner: str
    reason: str = ""                  # empty: another source's inventory lists the deployment

    @property
    def why(self) -> str:
        return self.reason or f"managed by source {self.owner!r}"

    def to_json(self) -> dict[str, Any]:
        out = {"deployment": self.identity, "manifest": self.manifest, "owner": self.owner}
        return {**out, "reason": self.reason} if self.reason else out


@dataclass(frozen=True)
class Plan:
    source: str
    api_url: str
    server_version: str
    actions: tuple[Action, ...]
    conflicts: tuple[Conflict, ...] = ()
    inventory_before: frozenset[str] = frozenset()
    inventory_after: frozenset[str] = frozenset()
    notices: tuple[str, ...] = ()
    uploads: tuple[Upload, ...] = ()
    embedded: bool = False            # made against an embedded local server (its URL is per-run)
    unclaimed: frozenset[str] = frozenset()   # deployments this source will own but has no claim on yet
    leave_conflicts: bool = False     # the user opted in: a conflict is left alone instead of failing the run
    work_pools: tuple[tuple[str, str], ...] = ()   # (name, type) of the pools apply creates first (Prefect 3)
    created: str = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc).isoformat())

    @property
    def summary(self) -> dict[str, int]:
        counts = {kind: 0 for kind in KINDS}
        for action in self.actions:
            counts[action.action] += 1
        counts["conflict"] = len(self.conflicts)
        counts["upload"] = len(self.uploads)
        if self.work_pools:
            counts["work_pool"] = len(self.work_pools)
        return counts

    @property
    def has_changes(self) -> bool:
        return bool(self.uploads) or bool(self.work_pools) or any(a.action != "noop" for a in self.actions)

    @property
    def deletes(self) -> list[Action]:
        return [a for a in self.actions if a.action == "delete"]

    def to_json(self, lazy: bool = False) -> dict[str, Any]:
        """The JSON value; `lazy`: `actions` is an iterator that makes each action's value when asked (for
        render.jsonout, which writes them one at a time: a plan of 10,000 never holds them all at once)."""
        actions = itertools.chain((u.to_json() for u in self.uploads), (a.to_json() for a in self.actions))
        return {
            "version": FORMAT_VERSION,
            "source": self.source,
            "server": {"url": self.api_url, "version": self.server_version, "embedded": self.embedded},
            "actions": actions if lazy else list(actions),
            "summary": self.summary,
            "conflicts": [c.to_json() for c in self.conflicts],
            "inventory": {"before": sorted(self.inventory_before), "after": sorted(self.inventory_after),
                          "unclaimed": sorted(self.unclaimed)},
            "leave_conflicts": self.leave_conflicts,
            "work_pools": [{"name": name, "type": kind} for name, kind in self.work_pools],
            "notices": list(self.notices),
            "created": self.created,
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=False, default=str) + "\n"

    @classmethod
    def from_json(cls, raw: Any, origin: str = "plan") -> "Plan":
        if not isinstance(raw, dict) or raw.get("version") != FORMAT_VERSION or "actions" not in raw:
            raise ReconcileError(f"{origin}: not a saved reconcile plan (format version {FORMAT_VERSION})")
        try:
            return cls(
                source=raw["source"], api_url=raw["server"]["url"], server_version=raw["server"]["version"],
                actions=tuple(Action.from_json(a) for a in raw["actions"] if a.get("action") != "upload"),
                uploads=tuple(Upload.from_json(a) for a in raw["actions"] if a.get("action") == "upload"),
                conflicts=tuple(Conflict(c["deployment"], c.get("manifest"), c["owner"], str(c.get("reason") or ""))
                                for c in raw.get("conflicts", [])),
                inventory_before=frozenset(raw.get("inventory", {}).get("before", [])),
                inventory_after=frozenset(raw.get("inventory", {}).get("after", [])),
                unclaimed=frozenset(raw.get("inventory", {}).get("unclaimed", [])),
                leave_conflicts=bool(raw.get("leave_conflicts", False)),
                work_pools=tuple((str(p["name"]), str(p["type"])) for p in raw.get("work_pools", [])),
                notices=tuple(raw.get("notices", [])), created=raw.get("created", ""),
                embedded=bool(raw["server"].get("embedded", False)),
            )
        except (KeyError, TypeError) as exc:
            raise ReconcileError(f"{origin}: saved plan is incomplete ({exc})") from None

