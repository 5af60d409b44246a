"""(desired, live, source, ignore rules) → Plan.  A pure function: no I/O.

Desired and live are paired by identity; the action follows from which side is
missing and whether this source's inventory lists the deployment.  Both sides
are brought to one shape first, so server-set values are never drift.
"""
from __future__ import annotations

import copy
from typing import Any, Callable, Optional


from .desired import FIELDS, Desired
from .live import Live
from .plans import Action, Change, Conflict, Plan

REPLACING = ("parameter_openapi_schema",)  # fields only the full-replace upsert can change
DICT_FIELDS = ("parameters", "infra_overrides", "parameter_openapi_schema")
# Fields the server fills in when a manifest leaves them null: Prefect 2.20 puts a
# deployment without a work pool into the work queue's pool ("default-agent-pool").
SERVER_CHOOSES_WHEN_NULL = ("work_pool_name",)


def diff(
    desired: list[Desired],
    live: Live,
    source: str,
    live_fields: Callable[[dict[str, Any]], dict[str, Any]],
    ignored: Callable[[str], list[str]] = lambda identity: [],
    prune: bool = True,
) -> Plan:
    """`prune=False` (one manifest applied on its own) never deletes and keeps the inventory's other entries."""
    inventory = live.inventories.get(source)
    listed = inventory.deployments if inventory else frozenset()
    # what this source owns: what its inventory lists (where another inventory lists it too: claims.owner)
    owned = frozenset(i for i in listed if live.owner_of(i, source) is None)
    actions: list[Action] = []
    conflicts: list[Conflict] = []
    notices: list[str] = []
    declared: set[str] = set()
    for want in desired:
        declared.add(want.identity)
        owner = live.owner_of(want.identity, source) if want.identity not in owned else None
        if owner is not None:
            conflicts.append(Conflict(want.identity, want.manifest, owner))
            continue
        dep = live.deployments.get(want.identity)
        if dep is None:
            actions.append(Action("create", want.identity, want.manifest,
                                  _creation(want.fields), want, reason="declared, not on the server"))
            continue
        have = live_fields(dep)
        wanted = _effective(want.fields, have, ignored(want.identity))
        changes = tuple(changes_between(have, wanted))
        fingerprint = dict(live_id=dep["id"], live_updated=dep.get("updated"))
        if want.identity in owned:
            kind, reason = ("update", "differs from the manifest") if changes else ("noop", "in sync")
        else:
            kind, reason = "adopt", "on the server, not yet managed by this source"
        if any(c.field.split(".", 1)[0] in REPLACING for c in changes):
            notices.append(f"{want.identity}: the parameter schema changed; Prefect cannot patch it, so the "
                           "deployment is replaced in place (its schedules are re-created with new ids, and its "
                           "future runs made again)")
        actions.append(Action(kind, want.identity, want.manifest, changes, want, reason=reason, **fingerprint))
    for identity in sorted(owned - declared) if prune else ():
        dep = live.deployments.get(identity)
        if dep is None:
            notices.append(f"{identity}: listed in the inventory but already gone from the server")
            continue
        actions.append(Action("delete", identity, None, (), None, live_id=dep["id"],
                              live_updated=dep.get("updated"), reason="managed by this source, no longer declared"))
    order = {"delete": 3, "create": 0, "adopt": 1, "update": 1, "noop": 2}
    actions.sort(key=lambda a: (order[a.action], a.identity))
    after = frozenset(declared - {c.identity for c in conflicts}) | (frozenset() if prune else owned)
    return Plan(source=source, api_url=live.api_url, server_version=live.server_version,
                actions=tuple(actions), conflicts=tuple(conflicts), inventory_before=listed,
                inventory_after=after, notices=tuple(notices), unclaimed=after - owned)


def _creation(fields: dict[str, Any]) -> tuple[Change, ...]:
    return tuple(Change(key, None, fields[key]) for key in FIELDS if fields.get(key) not in (None, {}, [], ""))


def _effective(wanted: dict[str, Any], have: dict[str, Any], ignored: list[str]) -> dict[str, Any]:
    """The desired fields with every ignored path set to what the server has.  A new dict: the dicts on an
    ignored path are copied before they change, the rest is shared with `wanted` (copying all of it took a
    plan of 1,000 deployments tens of milliseconds, after its last read)."""
    out = dict(wanted)
    for key in SERVER_CHOOSES_WHEN_NULL:
        if out.get(key) is None:
            out[key] = have.get(key)
    for path in ignored:
        head, _, rest = path.partition(".")
        if head not in out:
            continue
        if not rest:
            out[head] = copy.deepcopy(have.get(head))
            continue
        _overlay(out, have, [head] + rest.split("."))
    out["schedules"] = _align_anchors(out["schedules"], have.get("schedules") or [])
    return out


def _overlay(target: dict[str, Any], source: dict[str, Any], keys: list[str]) -> None:
    for key in keys[:-1]:
        if not isinstance(target.get(key), dict):
            return
        target[key] = dict(target[key])     # a copy: the desired value it came from is left as it is
        target = target[key]
        source = source.get(key) if isinstance(source, dict) else None
        source = source if isinstance(source, dict) else {}
    last = keys[-1]
    if last in source:
        target[last] = copy.deepcopy(source[last])
    else:
        target.pop(last, None)


def _align_anchors(wanted: list[dict[str, Any]], have: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """An interval schedule without `anchor_date` takes the server's (the server sets it)."""
    out = []
    spare = [h for h in have if "interval" in h["schedule"]]
    for entry in wanted:
        sched = entry["schedule"]
        if "interval" in sched and "anchor_date" not in sched:
            for h in spare:
                hs = h["schedule"]
                if hs["interval"] == sched["interval"] and hs["timezone"] == sched["timezone"] and "anchor_date" in hs:
                    entry = {**entry, "schedule": {**sched, "anchor_date": hs["anchor_date"]}}
                    spare.remove(h)
                    break
        out.append(entry)
    from ..manifests.schedules import sort_key
    return sorted(out, key=sort_key)


def changes_between(have: dict[str, Any], wanted: dict[str, Any]) -> list[Change]:
    """Field-level changes, in FIELDS order; keys inside dict fields are listed one by one."""
    out: list[Change] = []
    for key in FIELDS:
        before, after = have.get(key), wanted.get(key)
        if before == after:
            continue
        if key in DICT_FIELDS and isinstance(before, dict) and isinstance(after, dict):
            out.extend(_leaf_changes(key, before, after))
        else:
            out.append(Change(key, before, after))
    return out


def _leaf_changes(key: str, before: dict[str, Any], after: dict[str, Any]) -> list[Change]:
    from deepdiff import DeepDiff   # here: a plan with nothing changed in a mapping never loads it

    found = DeepDiff(before, after, verbose_level=2, view="tree")
    changes: list[Change] = []
    seen: set[str] = set()
    for items in found.values():
        for item in items:
            path = item.path(output_format="list")
            # lists are compared whole: show the list, not its positions
            cut = next((i for i, p in enumerate(path) if isinstance(p, int)), len(path))
            path = path[:cut]
            dotted = ".".join([key] + [str(p) for p in path])
            if dotted in seen:
                continue
            seen.add(dotted)
            changes.append(Change(dotted, _dig(before, path), _dig(after, path)))
    return sorted(changes, key=lambda c: c.field)


def _dig(value: Any, path: list[Any]) -> Optional[Any]:
    for p in path:
        if not isinstance(value, dict) or p not in value:
            return None
        value = value[p]
    return value
