"""YAML loading that remembers where every value came from, within bounded work.

PyYAML's C loader composes the node tree (fast); we build plain Python values
from it ourselves so that duplicate keys are caught (PyYAML silently keeps the
last one) and each value's ``line:col`` can be named in an error message.  Only
the top-level keys' positions are kept as the values are built (the plan names
their lines); the position of anything deeper is found again, from the same
text, when an error asks for it — most documents never need one, and a map of
every key path cost more memory than the document itself.

The limits on the work one document may cause are kept as its values are built
(yamlvalues); the file's size is checked here, before parsing.
"""
from __future__ import annotations

import array
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Optional

import yaml

from ..errors import ManifestError
from . import parsecache
from .files import MAX_BYTES
from .yamlvalues import COLS, MAX_DEPTH, Builder, Path, dotted, node_position, oneline

try:  # the C loader is an order of magnitude faster; fall back when libyaml is absent
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]



class _Loader(_BaseLoader):  # type: ignore[misc,valid-type]
    """The C loader, with each plain scalar's tag remembered (keys and small values repeat in every file)."""

    _tags: dict[tuple[str, bool], str] = {}

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is yaml.ScalarNode and implicit[0] and len(value) <= 64:
            key = (value, implicit[1])
            tag = self._tags.get(key)
            if tag is None:
                tag = super().resolve(kind, value, implicit)
                if len(self._tags) < 4096:
                    self._tags[key] = tag
            return tag
        return super().resolve(kind, value, implicit)


class Positions(Mapping):
    """Key path → (line, col): the root's and top-level keys' as loaded (kept compact: a plan holds
    thousands), every other path found again when first asked for."""

    def __init__(self, root: tuple[int, int], top: dict[str, int],
                 find_all: Callable[[], dict[Path, tuple[int, int]]]) -> None:
        self._root, self._find_all = root, find_all
        self._keys, self._marks = tuple(top), array.array("Q", top.values())   # a few bytes a key, not a dict
        self._all: Optional[dict[Path, tuple[int, int]]] = None

    def _every(self) -> dict[Path, tuple[int, int]]:
        if self._all is None:
            self._all = self._find_all()
        return self._all

    def __getitem__(self, path: Path) -> tuple[int, int]:
        if len(path) == 1:      # every top-level key written in the file is in `top`
            if path[0] not in self._keys:
                raise KeyError(path)
            return divmod(self._marks[self._keys.index(path[0])], COLS)
        return self._root if path == () else self._every()[path]

    def __contains__(self, path: object) -> bool:
        if isinstance(path, tuple) and len(path) <= 1:
            return not path or path[0] in self._keys
        return path in self._every()

    def __iter__(self) -> Iterator[Path]:
        return iter(self._every())

    def __len__(self) -> int:
        return len(self._every())


@dataclass(frozen=True)
class Located:
    """A parsed document and the 1-based (line, col) of every key path in it."""

    file: str
    data: Any
    positions: Mapping[Path, tuple[int, int]] = field(default_factory=dict)

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
        return ManifestError(self.file, line, col, dotted(tuple(path)), message)


def load(text: str | bytes, file: str) -> Located:
    """Parse one YAML document; raise ManifestError with the position on any problem."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    size = len(raw)
    if size > MAX_BYTES:
        raise ManifestError(file, 1, 1, None, f"the file is {size} bytes, over the {MAX_BYTES} bytes "
                            "(1 MiB) a manifest may have; refusing to load it")
    kind = b"s" if isinstance(text, str) else b"b"   # a str is read as it is, bytes have their encoding detected
    cached = parsecache.get(kind + raw)
    if cached is not None:
        data, root_at, top = cached
    else:
        loader, root = _compose(text, file)
        if root is None:
            return Located(file, None, {})
        top = {}
        data = Builder(file, loader, top).build(root, (), 0, True)
        root_at = node_position(root)
        parsecache.put(kind + raw, data, root_at, top)

    def find_all() -> dict[Path, tuple[int, int]]:   # the same text, built again noting every path
        again, node = _compose(text, file)
        every: dict[Path, tuple[int, int]] = {(): node_position(node)}
        Builder(file, again, every, deep=True).build(node, (), 0, True)
        return every

    return Located(file, data, Positions(root_at, top, find_all))


def _compose(text: str | bytes, file: str) -> tuple[Any, Optional[yaml.Node]]:
    loader = _Loader(text)
    try:
        return loader, loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        opened = ""
        if (exc.context and "flow" in exc.context and exc.context_mark is not None
                and exc.problem_mark is not None and exc.context_mark.line != exc.problem_mark.line):
            opened = f" ({exc.context} opened on line {exc.context_mark.line + 1})"  # an unclosed [ or {
        raise ManifestError(file, line, col, None, f"invalid YAML: {oneline(exc.problem or exc.context)}{opened}") from None
    except (yaml.YAMLError, ValueError) as exc:   # ValueError: bytes that are not UTF-8/16 text
        raise ManifestError(file, 1, 1, None, f"invalid YAML: {oneline(exc)}") from None
    except RecursionError:  # only the pure-Python composer recurses (libyaml stops at its own depth)
        raise ManifestError(file, 1, 1, None, f"YAML nested deeper than {MAX_DEPTH} levels; refusing to load it") from None
    finally:
        loader.dispose()

