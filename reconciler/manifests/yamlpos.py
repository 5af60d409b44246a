"""YAML loading that remembers where every value came from.

PyYAML's C loader composes the node tree (fast); we build plain Python values
from it ourselves so that each value's ``line:col`` is kept for error messages
and duplicate keys are caught (PyYAML silently keeps the last one).
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..errors import ManifestError

try:  # the C loader is an order of magnitude faster; fall back when libyaml is absent
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

Path = tuple  # a key path into the document: ("schedules", 0, "schedule", "cron")


@dataclass(frozen=True)
class Located:
    """A parsed document and the 1-based (line, col) of every key path in it."""

    file: str
    data: Any
    positions: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def where(self, path: Path) -> tuple[int, int]:
        """The position of ``path``, or of its nearest ancestor that has one."""
        path = tuple(path)
        while path:
            if path in self.positions:
                return self.positions[path]
            path = path[:-1]
        return self.positions.get((), (1, 1))

    def error(self, path: Path, message: str) -> ManifestError:
        line, col = self.where(path)
        dotted = ".".join(str(p) for p in path) or None
        return ManifestError(self.file, line, col, dotted, message)


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def load(text: str | bytes, file: str) -> Located:
    """Parse one YAML document; raise ManifestError with the position on any problem."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        opened = ""
        if (exc.context and "flow" in exc.context and exc.context_mark is not None
                and exc.problem_mark is not None and exc.context_mark.line != exc.problem_mark.line):
            opened = f" ({exc.context} opened on line {exc.context_mark.line + 1})"  # an unclosed [ or {
        raise ManifestError(file, line, col, None, f"invalid YAML: {exc.problem or exc.context}{opened}") from None
    except yaml.YAMLError as exc:
        raise ManifestError(file, 1, 1, None, f"invalid YAML: {exc}") from None
    finally:
        loader.dispose()
    positions: dict[Path, tuple[int, int]] = {}
    if root is None:
        return Located(file, None, positions)
    positions[()] = _mark(root)
    data = _build(root, (), positions, file, loader)
    return Located(file, data, positions)


def _build(node: yaml.Node, path: Path, positions: dict, file: str, loader: Any) -> Any:
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                # `<<: *base` or `<<: [*a, *b]`: defaults the mapping's own keys override (YAML merge)
                sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                for source in sources:
                    merged = _build(source, path, {}, file, loader)
                    if not isinstance(merged, dict):
                        line, col = _mark(source)
                        raise ManifestError(file, line, col, _dotted(path), "`<<` must merge a mapping")
                    for k, v in merged.items():
                        if k not in out:
                            out[k] = v
                continue
            key = _build(key_node, path, {}, file, loader)
            if isinstance(key, (dict, list)):
                line, col = _mark(key_node)
                raise ManifestError(file, line, col, _dotted(path), "a mapping key must be a plain value")
            child = path + (key,)
            if child in positions:  # set explicitly before (merged keys may be overridden)
                line, col = _mark(key_node)
                first = positions.get(child, (0, 0))[0]
                raise ManifestError(file, line, col, _dotted(child), f"duplicate key (first set on line {first})")
            positions[child] = _mark(key_node)
            out[key] = _build(value_node, child, positions, file, loader)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            positions[path + (index,)] = _mark(item)
            items.append(_build(item, path + (index,), positions, file, loader))
        return items
    try:
        value = loader.construct_object(node, deep=True)
    except yaml.constructor.ConstructorError as exc:
        line, col = _mark(node)
        raise ManifestError(file, line, col, _dotted(path), f"invalid value: {exc.problem}") from None
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()  # keep timestamps JSON-friendly, as Prefect's own loader sees them
    return value


def _dotted(path: Path) -> str | None:
    return ".".join(str(p) for p in path) or None
