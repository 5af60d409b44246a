"""Gitignore-style patterns from `.prefectignore` and `exclude`, checked before pathspec compiles them.

pathspec raises its own errors (GitIgnorePatternError, re.error) on a pattern it cannot read, and
turns each `*` into `[^/]*`: a pattern with many of them in one path segment backtracks for minutes
against a long file name.  Both are refused here, one line naming the file and line.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Optional

from ..errors import ReconcileError
from . import files

if TYPE_CHECKING:   # compiled only when there are patterns: importing it takes about 10 ms
    import pathspec

MAX_STARS = 3          # `*` runs in one path segment (a whole `**` segment does not count)
MAX_PATTERN = 4096     # characters in one pattern


def problem(pattern: str) -> Optional[str]:
    """Why pathspec cannot take this one pattern (None: it can)."""
    if len(pattern) > MAX_PATTERN:
        return f"a pattern longer than {MAX_PATTERN} characters"
    for segment in pattern.split("/"):
        if segment != "**" and len(re.findall(r"\*+", segment)) > MAX_STARS:
            return (f"more than {MAX_STARS} `*` in one path segment ({_short(segment)}) "
                    "would take minutes to match a long file name")
    import pathspec
    try:
        pathspec.GitIgnoreSpec.from_lines([pattern])
    except (ValueError, re.error) as exc:
        return f"invalid pattern {_short(pattern)}: {_oneline(exc)}"
    return None


def check(lines: Iterable[str], origin: Optional[str] = None) -> None:
    """A ReconcileError naming `origin:line` for the first pattern pathspec cannot take."""
    for number, line in enumerate(lines, 1):
        found = problem(line)
        if found is not None:
            where = f"{origin}:{number}: " if origin else ""
            raise ReconcileError(f"{where}{found}")


def spec(lines: Iterable[str], origin: Optional[str] = None) -> pathspec.PathSpec:
    """Compile patterns, checked first (see `check`)."""
    import pathspec
    lines = list(lines)
    check(lines, origin)
    return pathspec.GitIgnoreSpec.from_lines(lines)


def read(file: Path, display: str) -> list[str]:
    """The lines of an ignore file ([] when there is none); a file that cannot be read is one line."""
    if not file.is_file():   # none, or a link to nothing, a device or itself: no patterns, as before
        return []
    try:
        return files.text(file).splitlines()
    except files.Unreadable as exc:
        raise ReconcileError(f"{display}: {exc}") from None


def _short(text: str, limit: int = 60) -> str:
    shown = repr(text)
    return shown if len(shown) <= limit else shown[:limit - 4] + "...'"


def _oneline(exc: BaseException) -> str:
    flat = " ".join(str(exc).split())
    return flat if flat.isprintable() else repr(flat)[1:-1]
