"""JSON output written as it is made: one list item at a time, never the whole document as one string.

`write(value, stream)` prints exactly what `json.dumps(value, indent=2, default=str) + "\\n"` would (the
JSON contract does not change by a byte), but a top-level key whose value is an iterator (not a list)
is encoded one item at a time, so a plan of 10,000 actions never holds its JSON text, nor every
action's JSON value, at once.
"""
from __future__ import annotations

import json
from typing import Any, Iterable, Iterator, TextIO

_ENCODE = json.JSONEncoder(indent=2, default=str).encode


def _nested(value: Any, prefix: str) -> str:
    """`value` as json.dumps(indent=2) writes it `len(prefix)` columns in (JSON text holds no raw newline)."""
    return _ENCODE(value).replace("\n", "\n" + prefix)


def chunks(value: Any) -> Iterator[str]:
    """The JSON text of `value` in pieces; iterators among a mapping's values become lists, item by item."""
    if not isinstance(value, dict) or not value:
        yield _ENCODE(value if not _lazy(value) else list(value))
        return
    yield "{"
    first = True
    for key, item in value.items():
        yield ("\n  " if first else ",\n  ") + json.dumps(key if isinstance(key, str) else str(key)) + ": "
        first = False
        if _lazy(item):
            yield from _list(item)
        else:
            yield _nested(item, "  ")
    yield "\n}"


def _lazy(value: Any) -> bool:
    return isinstance(value, Iterator)


def _list(items: Iterable[Any]) -> Iterator[str]:
    empty = True
    for item in items:
        yield ("[\n    " if empty else ",\n    ") + _nested(item, "    ")
        empty = False
    yield "[]" if empty else "\n  ]"


def write(value: Any, stream: TextIO) -> None:
    for piece in chunks(value):
        stream.write(piece)
    stream.write("\n")
