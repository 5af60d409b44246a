"""Plain Python values from a composed YAML node tree, counting the work as it goes.

Every file here is written by whoever opened the pull request, so the work one
document may cause is bounded: its size, nesting depth, the nodes built and how
far aliases may multiply them ("billion laughs"), no alias inside itself, and
only the plain tags a JSON-like value needs (Prefect's safe loader refuses the
rest).  Anything beyond is one ManifestError line.
"""
from __future__ import annotations

import datetime as _dt
import math
import sys
from typing import Any

import yaml

from ..errors import ManifestError

Path = tuple  # a key path into the document: ("schedules", 0, "schedule", "cron")

MAX_NODES = 100_000        # values built, aliases expanded
MAX_DEPTH = 100            # nested mappings and sequences
ALIAS_FLOOR = 10_000       # aliases may always expand this far ...
ALIAS_FACTOR = 10          # ... or this many times the nodes written in the file

COLS = 1 << 20    # a top-level key's (line, col) is kept as line * COLS + col: one int, not a tuple of two

_YAML = "tag:yaml.org,2002:"
_MAP, _SEQ, _MERGE, _STR = _YAML + "map", _YAML + "seq", _YAML + "merge", _YAML + "str"
_SCALARS = frozenset(_YAML + t for t in ("str", "int", "float", "bool", "null", "timestamp"))


def node_position(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


class Builder:
    """Plain values from a composed node tree, counting the work as it goes.

    `positions` receives each top-level key's line * COLS + col, or with `deep` every key path's (line, col)."""

    def __init__(self, file: str, loader: Any, positions: dict, deep: bool = False) -> None:
        self.file, self.loader, self.positions, self.deep = file, loader, positions, deep
        self.built = 0       # every value built, alias expansions included
        self.written = 0     # values built from where they are written (not through an alias)
        self.seen: set[int] = set()     # collections built once already: meeting one again is an alias
        self.open: set[int] = set()     # collections being built right now: meeting one is a cycle

    def fail(self, node: yaml.Node, path: Path, message: str) -> ManifestError:
        line, col = node_position(node)
        return ManifestError(self.file, line, col, dotted(path), message)

    def count(self, node: yaml.Node, path: Path, fresh: bool) -> None:
        self.built += 1
        if fresh:
            self.written += 1
            if self.built > MAX_NODES:
                raise self.fail(node, (), f"the document has more than {MAX_NODES} YAML values; refusing to load it")
        else:
            limit = min(MAX_NODES - self.written, max(ALIAS_FLOOR, ALIAS_FACTOR * self.written))
            if self.built - self.written > limit:
                raise self.fail(node, (), (
                    f"YAML aliases expand past {limit} values ({self.written} written in the file; "
                    "a document this small cannot need that); refusing to load it"))

    def build(self, node: yaml.Node, path: Path, depth: int, fresh: bool, noted: bool = True) -> Any:
        """`noted`: this value's path goes into `positions` (not a merged mapping's, nor a key's own)."""
        if fresh and self.built < MAX_NODES:   # the common case, inline: a value as written
            self.built += 1
            self.written += 1
        else:
            self.count(node, path, fresh)
        if node.tag == _STR and isinstance(node, yaml.ScalarNode):
            if "\x00" in node.value:   # no file name, URL or database text may hold one; os calls raise on it
                raise self.fail(node, path, "invalid value: a NUL character (\\0) is not allowed")
            value = node.value   # what SafeConstructor makes of a string, without its bookkeeping
            # keys and short values repeat in every manifest: one shared copy of each (10,000 manifests hold
            # the same few hundred), not one per file
            return sys.intern(value) if len(value) <= 48 else value
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, path)
        key = id(node)
        if key in self.open:
            raise self.fail(node, path, "a YAML alias refers to a value that contains it; refusing to load it")
        if depth >= MAX_DEPTH:
            raise self.fail(node, path, f"values nested deeper than {MAX_DEPTH} levels; refusing to load it")
        fresh = fresh and key not in self.seen
        self.seen.add(key)
        self.open.add(key)
        try:
            if isinstance(node, yaml.MappingNode):
                if node.tag != _MAP:
                    raise self.fail(node, path, _tag_message(node.tag))
                return self.mapping(node, path, depth, fresh, noted)
            if node.tag != _SEQ:
                raise self.fail(node, path, _tag_message(node.tag))
            items = []
            note = noted and self.deep
            for index, item in enumerate(node.value):
                child = path + (index,)
                if note:
                    self.positions[child] = node_position(item)
                items.append(self.build(item, child, depth + 1, fresh, noted))
            return items
        finally:
            self.open.discard(key)

    def mapping(self, node: yaml.MappingNode, path: Path, depth: int, fresh: bool, noted: bool) -> dict:
        out: dict[Any, Any] = {}
        explicit: dict[Any, yaml.Node] = {}    # keys written in this mapping (merged ones may be overridden)
        note = noted and (self.deep or not path)
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE and isinstance(key_node, yaml.ScalarNode):
                # `<<: *base` or `<<: [*a, *b]`: defaults the mapping's own keys override (YAML merge)
                sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                for source in sources:
                    merged = self.build(source, path, depth, fresh, False)
                    if not isinstance(merged, dict):
                        raise self.fail(source, path, "`<<` must merge a mapping")
                    for k, v in merged.items():
                        if k not in out:
                            out[k] = v
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.count(key_node, path, fresh)
                raise self.fail(key_node, path, "a mapping key must be a plain value")
            key = _json_key(self.build(key_node, path, depth, fresh, False))
            child = path + (key,)
            first = explicit.get(key)
            if first is not None:
                raise self.fail(key_node, child, f"duplicate key (first set on line {first.start_mark.line + 1})")
            explicit[key] = key_node
            if note:
                mark = key_node.start_mark
                if self.deep:
                    self.positions[child] = (mark.line + 1, mark.column + 1)
                else:
                    self.positions[key] = (mark.line + 1) * COLS + mark.column + 1
            out[key] = self.build(value_node, child, depth + 1, fresh, noted)
        return out

    def scalar(self, node: yaml.ScalarNode, path: Path) -> Any:
        known = _SCALAR_VALUES.get((node.tag, node.value), _UNKNOWN)
        if known is not _UNKNOWN:   # `null`, `true`, `0`, `3600` ... are in every manifest: made once
            return known
        value = self.make_scalar(node, path)
        if len(node.value) <= 32 and len(_SCALAR_VALUES) < 4096:
            _SCALAR_VALUES[(node.tag, node.value)] = value
        return value

    def make_scalar(self, node: yaml.ScalarNode, path: Path) -> Any:
        if node.tag not in _SCALARS:
            if node.tag != _YAML + "value" and node.tag != _MERGE:
                raise self.fail(node, path, _tag_message(node.tag))
        try:
            value = self.loader.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            raise self.fail(node, path, f"invalid value: {oneline(exc.problem)}") from None
        except (ValueError, OverflowError) as exc:   # 2001-13-45, an int of 5000 digits
            raise self.fail(node, path, f"invalid value: {oneline(exc)}") from None
        if isinstance(value, (_dt.datetime, _dt.date)):
            return value.isoformat()  # keep timestamps JSON-friendly, as Prefect's own loader sees them
        if isinstance(value, float) and not math.isfinite(value):
            raise self.fail(node, path, f"invalid value: {node.value!r} is not a JSON number")
        return value


_UNKNOWN = object()
_SCALAR_VALUES: dict[tuple[str, str], Any] = {}   # (tag, text) → the value a scalar that passed makes (immutable)


def _json_key(key: Any) -> Any:
    """Keys as JSON (and the Prefect API) sees them: `1:` is the string "1", `true:` is "true"."""
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, bool):
        return "null" if key is None else ("true" if key else "false")
    return str(key)


def _tag_message(tag: str) -> str:
    shown = "!!" + tag[len(_YAML):] if tag.startswith(_YAML) else tag
    return (f"YAML tag {_short(shown)} is not allowed (only plain YAML values load, "
            "as with Prefect's safe loader); refusing to load it")


def _short(text: str, limit: int = 60) -> str:
    shown = repr(text)
    return shown if len(shown) <= limit else shown[:limit - 4] + "...'"


def oneline(text: Any) -> str:
    """A library's message on one printable line."""
    flat = " ".join(str(text).split())
    return flat if flat.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in flat)


def dotted(path: Path) -> str | None:
    if not path:
        return None
    return ".".join(p if isinstance(p, str) and p.isprintable() else
                    (repr(p) if isinstance(p, str) else str(p)) for p in path)
