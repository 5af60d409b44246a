"""Confinement: every path from a manifest, reconcile.yaml or a saved plan stays inside its root.

One function, `confine`, decides it for every caller: storage locations (a block's root joined with a
manifest's `path`), bundle directories (inside the repository), the file lists of markers and saved
plans.  Callers turn `Escapes` into their one-line error naming the file and line the path came from.
"""
from __future__ import annotations

import os
import posixpath
from pathlib import Path
from typing import Optional, Union

PathLike = Union[str, Path]


class Escapes(ValueError):
    """A path that leaves its root; `str()` says which path, which root and where it ends up."""

    def __init__(self, path: str, root: str, resolved: str, through_link: bool = False) -> None:
        self.path, self.root, self.resolved, self.through_link = path, root, resolved, through_link
        self.how = "it resolves through a symlink to" if through_link else "it resolves to"
        super().__init__(f"{path!r} leaves {root}: {self.how} {resolved}")


def confine(root: PathLike, path: Optional[PathLike], *, follow_links: bool = False) -> str:
    """`root` joined with `path` and normalized (POSIX; `\\` counts as a separator), or Escapes.

    An absolute `path` is kept only when it already lies inside `root` (as Prefect's LocalFileSystem
    allows).  With `follow_links` (local disk only) the result must also stay inside `root` once every
    symlink on the way is resolved.
    """
    base = posixpath.normpath(str(root).replace("\\", "/")) if str(root) else "."
    sub = "" if path is None else str(path).replace("\\", "/")
    joined = posixpath.normpath(posixpath.join(base, sub)) if sub.strip() else base
    shown = str(path) if path is not None else ""
    if not _within(joined, base):
        raise Escapes(shown, base, joined)
    if follow_links:
        real_base, real = os.path.realpath(base), os.path.realpath(joined)
        if not _within(real, real_base):
            raise Escapes(shown, base, real, through_link=True)
    return joined


def inside(path: PathLike, root: PathLike, *, follow_links: bool = True) -> bool:
    """Does `path` (absolute, or relative to `root`) lie inside `root`?"""
    try:
        confine(root, path, follow_links=follow_links)
    except Escapes:
        return False
    return True


def member(rel: str) -> bool:
    """A file's path inside a root, as markers and plans list them: relative, no '', '.' or '..' part."""
    if not isinstance(rel, str) or not rel or rel.startswith(("/", "\\")) or (len(rel) > 1 and rel[1] == ":"):
        return False
    if any(part in ("", ".", "..") for part in rel.replace("\\", "/").split("/")):
        return False
    return inside(rel, ".", follow_links=False)


def _within(path: str, base: str) -> bool:
    if base == "/":
        return path.startswith("/")
    if base == ".":
        return not (path == ".." or path.startswith("../") or path.startswith("/"))
    return path == base or path.startswith(base + "/")
