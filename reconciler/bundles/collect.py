"""The code bundles of a set of deployments (local files only; the `load` side of uploads)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Optional

from ..engine.desired import Desired
from ..errors import ManifestErrors, ReconcileError
from ..manifests.configmodel import Config
from ..manifests.confine import Escapes, confine
from ..manifests.discover import repository_root
from .bundle import Bundle, HashCache, collect
from .storage import READ_ONLY

CACHE = Path(".reconcile") / "hash-cache.json"


def collect_all(root: Path, config: Config, desired: Iterable[Desired],
                cache: Optional[HashCache] = None) -> dict[str, Bundle]:
    """identity → Bundle, for every deployment whose storage takes uploads.

    Each bundle is its deployment's code root (`bundle_dir`: the directory its entrypoint is relative to,
    or reconcile.yaml's `bundle_root`); one whose entrypoint is in none is an error, raised for all of them
    before any file is read."""
    repo = repository_root(root)
    uploading = [want for want in desired
                 if want.storage is not None and want.storage.slug not in READ_ONLY and want.bundle_dir is not None]
    missing = [ReconcileError(want.code_problem) for want in uploading if want.code_problem]
    if missing:
        raise ManifestErrors(missing)
    cache = cache or HashCache(repo / CACHE)
    by_dir: dict[str, Bundle] = {}
    out: dict[str, Bundle] = {}
    for want in uploading:
        assert want.bundle_dir is not None
        directory = in_repository(want.bundle_dir, repo, want.manifest or want.identity)
        if directory not in by_dir:
            by_dir[directory] = collect(Path(directory), repo, cache, display=_display(Path(directory)))
        out[want.identity] = by_dir[directory]
    cache.save()
    return out


def collect_dirs(directories: Iterable[str], repo: Path, origin: str) -> dict[str, Bundle]:
    """Bundles by directory (applying a saved plan re-reads exactly the planned directories), each of
    which must lie inside `repo` (checked for all before any is read)."""
    wanted = {directory: in_repository(directory, repo, origin) for directory in directories}
    cache = HashCache(repo / CACHE)
    out = {directory: collect(Path(checked), repo, cache, display=_display(Path(checked)))
           for directory, checked in wanted.items()}
    cache.save()
    return out


def in_repository(directory: str, repo: Path, origin: str) -> str:
    """A bundle directory, confined to the repository: its code is what gets uploaded."""
    try:
        confine(repo, directory, follow_links=True)
    except Escapes as exc:
        link = f" (through a symlink, to {exc.resolved})" if exc.through_link else ""
        raise ReconcileError(f"{origin}: bundle directory {directory} leaves the repository {repo}{link} "
                             "(a bundle is a directory inside the repository)") from None
    return directory


def _display(directory: Path) -> str:
    try:
        return directory.resolve().relative_to(Path.cwd().resolve()).as_posix() or "."
    except ValueError:
        return str(directory)


def runtime_path(want: Desired, root: Path, runtime_root: str) -> str:
    """For `storage: null`: where the code lives on the machine that runs it (its code root, mapped from
    the source's directory to runtime_root; a code root above the source's directory maps to runtime_root)."""
    base = (root if root.is_dir() else root.parent).resolve()
    rel = os.path.relpath(want.bundle_dir or base, base)
    if rel == ".." or rel.startswith("../"):
        rel = "."
    return runtime_root.rstrip("/") + ("" if rel == "." else "/" + Path(rel).as_posix())
