"""Where a manifest's code is: the directory its entrypoint is relative to (its bundle root).

`prefect deployment build flows/etl.py:etl -o deployments/etl-deployment.yaml`, run at the repository's
root, writes `entrypoint: flows/etl.py:etl`, relative to the directory it ran in, and uploads that
directory; the agent downloads it and finds the entrypoint inside.  So the code root is the nearest
directory, from the manifest's own up to the repository's root, in which the entrypoint's file exists.
One rule for plan, apply, status, watch, check and the Action.
"""
from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .confine import Escapes, confine
from .discover import repository_root
from .manifest import Manifest


@dataclass(frozen=True)
class CodeRoot:
    directory: Path                 # absolute, resolved: what is uploaded for the manifest
    flow_file: Optional[Path]       # the entrypoint's file inside it; None when found nowhere
    why: Optional[str] = None       # why not: "there is no file …", "it leaves the repository …"
    problem: Optional[str] = None   # the same as the one-line error naming file:line of `entrypoint:`

    @property
    def found(self) -> bool:
        return self.flow_file is not None


def entrypoint_file(entrypoint: Optional[str]) -> Optional[str]:
    """The file part of `path/to/flow.py:function` (POSIX separators), or None when there is none."""
    if not entrypoint or ":" not in entrypoint:
        return None
    file = entrypoint.rpartition(":")[0].replace("\\", "/")
    return file or None


def locate(manifest: Manifest, override: Optional[Path] = None, seen: Optional[dict] = None) -> CodeRoot:
    """The manifest's code root: `override` (reconcile.yaml's `bundle_root`) when given, else the nearest
    directory from the manifest's up to the repository root holding the entrypoint's file.

    An entrypoint that names no file (none at all, as Prefect 2.0 wrote them, or `package.module.function`)
    keeps the manifest's own directory, as before.  When there is no such file, or it leaves the repository
    (`..`, an absolute path, a symlink out of it), the directory is the manifest's own too and `problem` is
    the one-line error: whoever needs the code (an upload, `check`) reports it; a deployment whose code lives
    elsewhere (`storage: null`, a git repository block) does not care.

    `seen`: a dict the caller keeps for one pass over many manifests, so that the manifests of one folder
    naming one entrypoint file look for it once.
    """
    file = entrypoint_file(manifest.spec.entrypoint)
    key = (manifest.path.parent, file, override)
    found = seen.get(key) if seen is not None else None
    if found is None:
        found = _search(manifest.path.parent, file, override)
        if seen is not None:
            seen[key] = found
    directory, flow_file, why = found
    if why is not None:
        return _missing(manifest, directory, why)
    return CodeRoot(directory, flow_file)


def _search(folder: Path, file: Optional[str], override: Optional[Path]) -> tuple[Path, Optional[Path], Optional[str]]:
    """(the code root, the entrypoint's file in it or None, why it is missing or None)."""
    own = folder.resolve()
    base = override.resolve() if override is not None else own
    if file is None:   # a Prefect 2.0 manifest (manifest_path, no entrypoint) or a module path: nothing to find
        return base, None, None
    if posixpath.isabs(file) or (len(file) > 1 and file[1] == ":"):
        return base, None, ("it is an absolute path; Prefect resolves it relative to the code it downloads "
                            "(build from the directory to upload, with a relative path)")
    repo = repository_root(own)
    for directory in [base] if override is not None else _upwards(own, repo):
        try:
            candidate = Path(confine(directory, file))
        except Escapes:
            return base, None, "it climbs out of the directory it is relative to ('..'); the code uploaded must hold it"
        try:
            if not candidate.is_file():
                continue
        except (OSError, ValueError):     # a name too long for the file system, a NUL: no such file
            continue
        try:
            confine(repo, candidate, follow_links=True)
        except Escapes as exc:
            return base, None, (f"it leaves the repository {repo}: {exc.how} {exc.resolved} "
                                "(the flow file must be inside the repository)")
        return directory, candidate, None
    where = f"in {_shown(base)} (bundle_root)" if override is not None else (
        f"in {_shown(own)} or a directory above it up to the repository root {_shown(repo)}")
    return base, None, (f"there is no file {file} {where}; the code uploaded must hold the "
                        "entrypoint, relative to the directory `prefect deployment build` ran in")


def _upwards(start: Path, top: Path) -> list[Path]:
    """start, then each parent up to and including top (start alone when top is not above it)."""
    if top not in start.parents:
        return [start]
    return [start, *list(start.parents)[: list(start.parents).index(top) + 1]]


def _missing(manifest: Manifest, directory: Path, why: str) -> CodeRoot:
    key = ("entrypoint",) if ("entrypoint",) in manifest.located.positions else ("flow_name",)
    return CodeRoot(directory, None, why, str(manifest.error(key, f"{manifest.spec.entrypoint!r}: {why}")))


def _shown(directory: Optional[Path]) -> str:
    assert directory is not None
    try:
        rel = os.path.relpath(directory, Path.cwd())
    except ValueError:
        return str(directory)
    return str(directory) if rel.startswith("..") else (Path(rel).as_posix() + "/" if rel != "." else "./")
