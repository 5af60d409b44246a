"""Comparing two parameter schemas in meaning, not in dialect.

Prefect 2.0–2.20 wrote schemas with pydantic 1 or 2 (`definitions` or `$defs`, `allOf: [$ref]` or
`$ref`, `prefixItems` or `items: [...]`, key order, title casing…).  `schema_equivalent` normalises
both sides and reports differences in parameter names, the required set, types, defaults and
positions, in words a user reads.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from .typeschemas import DECIMAL

_MISSING = object()
_ANNOTATIONS = {"title", "description", "default", "position", "examples", "writeOnly", "readOnly", "nullable",
                "$defs", "definitions", "$schema"}


def schema_equivalent(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """How parameter schema `b` differs in meaning from `a` (e.g. a manifest's and the code's); [] when equivalent.

    Compared: parameter names, the required set, types (normalised), defaults and positions (when both have
    them).  Ignored: the dialect of the Prefect/pydantic version that wrote each (definitions/$defs,
    allOf-wrapped refs, prefixItems/items lists, nullability, titles, key order, pydantic 1 leaving out
    `default: null`, the string form pydantic 2 adds to Decimal, ...).
    """
    pa, pb = _params(a), _params(b)
    removed = [n for n in pa if n not in pb]
    added = [n for n in pb if n not in pa]
    renamed: dict[str, str] = {}
    for old in removed:
        same_place = [n for n in added if pa[old][3] is not None and pb[n][3] == pa[old][3]]
        if same_place and same_place[0] not in renamed.values():
            renamed[old] = same_place[0]
    out = []
    for old in removed:
        out.append(f"parameter {old!r} was renamed to {renamed[old]!r}" if old in renamed
                   else f"parameter {old!r} was removed")
    for new in added:
        if new not in renamed.values():
            out.append(f"parameter {new!r} was added" + (" (required)" if pb[new][1] else ""))
    pairs = [(n, n) for n in pa if n in pb] + list(renamed.items())
    for old, new in pairs:
        (ta, ra, da, xa), (tb, rb, db, xb) = pa[old], pb[new]
        label = f"parameter {new!r}"
        if ra != rb:
            out.append(f"{label} is now required" if rb else f"{label} is no longer required")
        if _key(ta) != _key(tb):
            sa, sb = _describe(ta), _describe(tb)
            if sa == sb:
                sa, sb = _key(ta), _key(tb)
            out.append(f"{label}: type changed from {sa} to {sb}")
        if da is not _MISSING and db is not _MISSING and not _same(_coerce(da, ta), _coerce(db, tb)):
            out.append(f"{label}: default changed from {_show(da)} to {_show(db)}")
        if xa is not None and xb is not None and xa != xb and old == new:
            out.append(f"{label}: position changed from {xa} to {xb}")
    return out


def _params(schema: Any) -> dict[str, tuple[Any, bool, Any, Any]]:
    schema = schema if isinstance(schema, dict) else {}
    props = schema.get("properties") or {}
    defs = {**(schema.get("$defs") or {}), **(schema.get("definitions") or {})}
    required = set(schema.get("required") or [])
    out = {}
    for name, prop in props.items():
        prop = prop if isinstance(prop, dict) else {}
        # pydantic 1 leaves out `default: null`: an optional parameter without a default defaults to None
        default = prop["default"] if "default" in prop else (_MISSING if name in required else None)
        out[name] = (_norm(prop, defs), name in required, default, prop.get("position"))
    return out


def _norm(s: Any, defs: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """A schema reduced to its meaning: refs inlined, null and annotations dropped, one spelling per construct."""
    if not isinstance(s, dict) or len(seen) > 50:
        return {}
    if "$ref" in s:
        name = str(s["$ref"]).rsplit("/", 1)[-1]
        target = defs.get(name)
        return _norm(target, defs, (*seen, name)) if isinstance(target, dict) and name not in seen else {"ref": name}
    if isinstance(s.get("allOf"), list) and len(s["allOf"]) == 1:
        return _norm(s["allOf"][0], defs, seen)
    for key in ("anyOf", "oneOf"):
        if isinstance(s.get(key), list):
            members: list[Any] = []
            for m in s[key]:
                if isinstance(m, dict) and m.get("type") in ("null", ["null"]) and len(m) == 1:
                    continue  # nullability: pydantic 1 never wrote it
                n = _norm(m, defs, seen)
                if not n:
                    return {}  # anything, or ...: anything
                members.extend(n["anyOf"] if set(n) == {"anyOf"} else [n])
            enums = [v for m in members if set(m) == {"enum"} for v in m["enum"]]
            members = [m for m in members if set(m) != {"enum"}] + ([{"enum": _values(enums)}] if enums else [])
            if {"type": "number"} in members:  # pydantic 2 writes Decimal as number-or-numeric-string
                members = [m for m in members if m != DECIMAL["anyOf"][1]]
            unique = sorted({_key(m): m for m in members}.values(), key=_key)
            return unique[0] if len(unique) == 1 else {"anyOf": unique} if unique else {}
    out: dict[str, Any] = {}
    for k, v in s.items():
        if k in _ANNOTATIONS:
            continue
        if k == "type":
            kinds = [t for t in (v if isinstance(v, list) else [v]) if t != "null"]
            if kinds:
                out[k] = kinds[0] if len(kinds) == 1 else sorted(kinds)
        elif k in ("enum", "const"):
            out["enum"] = _values(v if k == "enum" and isinstance(v, list) else [v])
        elif k in ("items", "prefixItems"):
            n = [_norm(x, defs, seen) for x in v] if isinstance(v, list) else _norm(v, defs, seen)
            if n:
                out["items"] = n
        elif k == "additionalProperties":
            n = _norm(v, defs, seen) if isinstance(v, dict) else (False if v is False else {})
            if n or n is False:
                out[k] = n
        elif k == "properties" and isinstance(v, dict):
            out[k] = {p: _norm(x, defs, seen) for p, x in v.items()}
        elif k == "required":
            out[k] = sorted(v or [])
        elif k == "format":
            out[k] = "duration" if v == "time-delta" else v
        else:
            out[k] = v
    if "enum" in out or out.get("format") == "duration":  # enum values carry their type; v1 wrote durations as numbers
        out.pop("type", None)
    if out.get("format") == "uri":  # pydantic 1 and 2 differ in the URL length limits they write
        out.pop("maxLength", None), out.pop("minLength", None)
    return out


def _values(values: list[Any]) -> list[Any]:
    return sorted({_key(v): v for v in values if v is not None}.values(), key=_key)


_ISO_DURATION = re.compile(r"^(-)?P(?:(\d+)Y)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


def _coerce(value: Any, norm: Any) -> Any:
    """Defaults pydantic 1 and 2 write differently: durations (seconds vs ISO 8601), Decimals (number vs string)."""
    if isinstance(value, str) and isinstance(norm, dict):
        match = _ISO_DURATION.match(value) if norm.get("format") == "duration" else None
        if match:
            y, d, h, m, sec = (float(g or 0) for g in match.groups()[1:])
            return (-1 if match[1] else 1) * ((y * 365 + d) * 86400 + h * 3600 + m * 60 + sec)
        if norm.get("type") == "number":
            try:
                return float(value)
            except ValueError:
                pass
    return value


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _same(x: Any, y: Any) -> bool:
    x, y = (v.isoformat() if isinstance(v, (dt.date, dt.time)) else v for v in (x, y))
    if isinstance(x, bool) or isinstance(y, bool):
        return type(x) is type(y) and x == y
    if isinstance(x, (int, float)) and isinstance(y, (int, float)):
        return x == y or (x != x and y != y)
    if isinstance(x, (list, tuple)) and isinstance(y, (list, tuple)):
        return len(x) == len(y) and all(_same(p, q) for p, q in zip(x, y))
    if isinstance(x, dict) and isinstance(y, dict):
        return x.keys() == y.keys() and all(_same(x[k], y[k]) for k in x)
    return x == y


def _show(value: Any) -> str:
    shown = json.dumps(value, default=str)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _describe(n: Any) -> str:
    if not n:
        return "any"
    if "anyOf" in n:
        return " or ".join(_describe(m) for m in n["anyOf"])
    if "enum" in n:
        return "one of " + ", ".join(json.dumps(v) for v in n["enum"])
    if "ref" in n:
        return str(n["ref"])
    kind = n.get("type", "any")
    kind = " or ".join(kind) if isinstance(kind, list) else kind
    items, extra = n.get("items"), n.get("additionalProperties")
    if kind == "array" and isinstance(items, list):
        kind = "tuple of (" + ", ".join(_describe(i) for i in items) + ")"
    elif kind == "array" and items:
        kind = f"array of {_describe(items)}"
    elif kind in ("object", "any") and isinstance(n.get("properties"), dict):
        kind = "object with " + ", ".join(sorted(n["properties"])) if n["properties"] else "object"
    elif kind == "object" and isinstance(extra, dict):
        kind = f"object of {_describe(extra)}"
    if "format" in n:
        kind = n["format"] if kind == "any" else f"{kind} ({n['format']})"
    shown = ("type", "items", "properties", "additionalProperties", "format", "required")
    rest = sorted(k for k in n if k not in shown)
    return kind + (" with " + ", ".join(f"{k}={json.dumps(n[k])}" for k in rest) if rest else "")
