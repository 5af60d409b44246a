"""Parameter descriptions from a flow's docstring (Google, NumPy and reST styles), as Prefect reads them."""
from __future__ import annotations

import inspect
import re
from typing import Optional

_ADMONITION = re.compile(r"^(?P<type>[\w][\s\w-]*):(\s+(?P<title>[^\s].*))?\s*$", re.IGNORECASE)


def parameter_docs(doc: Optional[str]) -> dict[str, str]:
    """griffe's Google-style reading of a docstring's parameters section (Prefect's parameter descriptions)."""
    lines = inspect.cleandoc(doc.rstrip()).split("\n") if doc else []
    empty = lambda i: not lines[i].strip()  # noqa: E731
    result: dict[str, str] = {}
    i, code = 0, False
    while i < len(lines):
        fence = lines[i].lower().lstrip(" ").startswith("```")
        if code or fence:
            code = code != fence
        elif match := _ADMONITION.match(lines[i]):
            blank1 = i < len(lines) - 1 and empty(i + 1)
            indented1 = i < len(lines) - 1 and not blank1 and lines[i + 1].startswith(" ")
            indented2 = i < len(lines) - 2 and not empty(i + 2) and lines[i + 2].startswith(" ")
            if (indented1 or indented2) and (i == 0 or empty(i - 1)) and not (indented2 and blank1):
                items, i = _block_items(lines, i + 1)  # every section and admonition spans the same lines
                if match["type"].lower() in ("args", "arguments", "params", "parameters"):
                    result = {}  # Prefect keeps the last parameters section
                    for first, *rest in (item for item in items if ":" in item[0]):
                        name, description = first.split(":", 1)
                        name = name.split("(", 1)[0].strip() if "(" in name and name.endswith(")") else name
                        result[name] = "\n".join([description.lstrip(), *rest]).rstrip("\n")
        i += 1
    return result


def _block_items(lines: list[str], start: int) -> tuple[list[list[str]], int]:
    """griffe's _read_block_items: items at the block's indent, deeper lines continue one; (items, last line)."""
    n = start
    while n < len(lines) and not lines[n].strip():
        n += 1
    indent = len(lines[n]) - len(lines[n].lstrip()) if n < len(lines) else 0
    if indent == 0:
        return [], n - 1
    items, current = [], [lines[n][indent:]]
    for n in range(n + 1, len(lines) + 1):
        line = lines[n] if n < len(lines) else None
        if line is None or line.strip() and not line.startswith(" " * indent):
            break
        if not line.strip():
            current.append("")
        elif line.startswith(" " * indent * 2):
            current.append(line[indent * 2:])
        elif line.startswith(" " * (indent + 1)):
            current.append(line.lstrip())
        else:
            items.append(current)
            current = [line[indent:]]
    items.append(current)
    return items, n - 1
