"""Text from manifests and the server made safe to print: nothing that does not print reaches a plan line."""
from __future__ import annotations

import re


def text(value: object) -> str:
    """`value` as one printable line: control bytes, line breaks, bidi overrides and other characters
    that do not print are written as escapes (`\\x1b`, `\\n`, `\\u202e`), so a name can neither recolour,
    hide, split nor reorder a line of a terminal, log or comment."""
    s = value if isinstance(value, str) else str(value)
    if s.isprintable():
        return s
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in s)


def cell(value: object) -> str:
    """`text` for a Markdown table cell: `|` escaped."""
    return text(value).replace("|", "\\|")


def code(value: object) -> str:
    """A Markdown code span holding `value` whatever backticks it contains (in a table: pipes escaped)."""
    s = cell(value)
    longest = max((len(run) for run in re.findall(r"`+", s)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return f"{fence}{pad}{s}{pad}{fence}"
