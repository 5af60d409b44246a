"""A manifest's `parameter_openapi_schema`, checked as a JSON Schema before anything validates against it.

The schema comes from the pull request, and jsonschema trusts the schemas it is
given: a malformed one (`"type": 123`) raises TypeError deep inside it, a `$ref`
that leads back to itself recurses for ever, and a `pattern` with nested
repetition (`(a+)+`) backtracks for minutes.  `problem` finds each of these
first, so the later stages only meet well-formed, local, finite schemas.
"""
from __future__ import annotations

import json
from typing import Any, Iterator, Optional
from urllib.parse import unquote

import jsonschema

try:  # the parser `re` itself uses; private, so its absence only skips the backtracking check
    from re import _parser as _sre  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python < 3.11
    _sre = None  # type: ignore[assignment]

_META = jsonschema.Draft7Validator(jsonschema.Draft7Validator.META_SCHEMA,
                                   format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
Problem = tuple[tuple, str]      # (path inside the schema, message)

_SCHEMA_MAPS = ("properties", "patternProperties", "definitions", "$defs", "dependencies")
_SCHEMA_ONE = ("additionalProperties", "additionalItems", "items", "contains", "propertyNames",
               "not", "if", "then", "else")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "items")
_SAME_VALUE = ("not", "if", "then", "else")      # applied to the same value, not to a part of it
_SAME_VALUE_LISTS = ("allOf", "anyOf", "oneOf")


_SEEN: dict[str, Optional[Problem]] = {}   # the schema's JSON text → what problem() found in it
_SEEN_MAX = 256     # schemas remembered: the deployments of one flow share one schema
_SEEN_TEXT = 1 << 16   # ... when their text is at most this long


def problem(schema: dict[str, Any]) -> Optional[Problem]:
    """The first thing wrong with the schema (as Prefect compares it: top-level nulls left out), or None.

    The answer for a schema already checked is remembered: a repository's deployments of one flow all
    carry the same schema, and checking it against the meta-schema is the slowest step of loading one."""
    try:
        key = json.dumps(schema, allow_nan=False)   # key order kept: the same text is the same schema
    except (TypeError, ValueError):   # not JSON (a value yamlpos would not make): not remembered
        return _problem(schema)
    if len(key) > _SEEN_TEXT:
        return _problem(schema)
    if key not in _SEEN:
        if len(_SEEN) >= _SEEN_MAX:
            _SEEN.clear()
        _SEEN[key] = _problem(schema)
    return _SEEN[key]


def _problem(schema: dict[str, Any]) -> Optional[Problem]:
    schema = {k: v for k, v in schema.items() if v is not None}
    exc = jsonschema.exceptions.best_match(_META.iter_errors(schema))   # what check_schema raises, kept once
    if exc is not None:
        return tuple(exc.absolute_path), f"not a valid JSON Schema: {exc.message}"
    subschemas = list(_walk(schema, ()))
    for path, sub in subschemas:
        if "$id" in sub:
            return path + ("$id",), "`$id` is not supported in a parameter schema"
        for key in ("pattern",):
            if isinstance(sub.get(key), str) and _backtracks(sub[key]):
                return path + (key,), _BACKTRACKS
        for regex in sub.get("patternProperties") or {}:
            if _backtracks(regex):
                return path + ("patternProperties", regex), _BACKTRACKS
        ref = sub.get("$ref")
        if isinstance(ref, str):
            if not ref.startswith("#"):
                return path + ("$ref",), f"{ref!r}: only references inside the schema (#/definitions/...) are allowed"
            if _resolve(schema, ref) is None:
                return path + ("$ref",), f"{ref!r} names nothing in the schema"
    cycle = _cycle(schema, subschemas)
    if cycle is not None:
        return cycle, "this `$ref` leads back to itself without descending into the value; it would never end"
    return None


_BACKTRACKS = "a repetition inside a repetition (like `(a+)+`) can take minutes to match; write it without nesting"


def _walk(schema: Any, path: tuple) -> Iterator[tuple[tuple, dict]]:
    """Every subschema (a mapping) with its path, keyword-aware: property names are not keywords."""
    if not isinstance(schema, dict):
        return
    yield path, schema
    for key in _SCHEMA_MAPS:
        value = schema.get(key)
        if isinstance(value, dict):
            for name, sub in value.items():
                yield from _walk(sub, path + (key, name))
    for key in _SCHEMA_ONE:
        yield from _walk(schema.get(key), path + (key,))
    for key in _SCHEMA_LISTS:
        value = schema.get(key)
        if isinstance(value, list):
            for index, sub in enumerate(value):
                yield from _walk(sub, path + (key, index))


def _resolve(root: dict, ref: str) -> Any:
    """What a local `$ref` points at (a JSON pointer after '#'), or None."""
    node: Any = root
    pointer = unquote(ref[1:])
    if not pointer:
        return root
    if not pointer.startswith("/"):
        return None
    for part in pointer[1:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node if isinstance(node, (dict, bool)) else None


def _cycle(root: dict, subschemas: list[tuple[tuple, dict]]) -> Optional[tuple]:
    """The path of a `$ref` from which the same value could be validated by the same subschema again."""
    where = {id(sub): path for path, sub in subschemas}

    def same_value(sub: dict) -> Iterator[dict]:
        found: list[Any] = [sub.get(key) for key in _SAME_VALUE]
        for key in _SAME_VALUE_LISTS:
            found += sub.get(key) or ()
        found += (sub.get("dependencies") or {}).values()
        if isinstance(sub.get("$ref"), str):
            found.append(_resolve(root, sub["$ref"]))
        return iter([f for f in found if isinstance(f, dict)])

    done: set[int] = set()
    for _, start in subschemas:
        stack, open_ = [(start, iter(same_value(start)))], {id(start)}
        while stack:
            sub, edges = stack[-1]
            nxt = next(edges, None)
            if nxt is None:
                stack.pop()
                open_.discard(id(sub))
                done.add(id(sub))
                continue
            if id(nxt) in open_:
                return where.get(id(sub), ()) + ("$ref",)
            if id(nxt) not in done:
                stack.append((nxt, iter(same_value(nxt))))
                open_.add(id(nxt))
    return None


def _backtracks(regex: str) -> bool:
    """True when an unbounded repetition contains another (the shape that backtracks exponentially)."""
    if _sre is None:
        return False
    try:
        parsed = _sre.parse(regex)
    except Exception:  # noqa: BLE001 - check_schema already refused what `re` cannot compile
        return False
    return _nested(parsed, False)


def _nested(items: Any, inside: bool) -> bool:
    for op, arg in items:
        name = str(op)
        if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, high, body = arg
            unbounded = high == _sre.MAXREPEAT or high > 100
            if unbounded and inside:
                return True
            if _nested(body, inside or unbounded):
                return True
        elif name == "SUBPATTERN":
            if _nested(arg[-1], inside):
                return True
        elif name == "BRANCH":
            if any(_nested(branch, inside) for branch in arg[1]):
                return True
        elif name in ("ASSERT", "ASSERT_NOT"):
            if _nested(arg[1], inside):
                return True
    return False
