"""A source's name: what owns an inventory on the server.

Default: the git remote URL (credentials stripped) plus the path inside the
repository, e.g. `github.com/acme/flows//deployments`, so that two repositories
never share an inventory by accident; outside git, the absolute path.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Optional
from urllib.parse import urlsplit


def default_name(root: Path) -> str:
    root = root.resolve()
    if root.is_file():
        root = root.parent
    repo = _repo(root)
    if repo is None:
        return str(root)
    top, remote = repo
    inside = root.relative_to(top).as_posix()
    base = normalize_remote(remote) if remote else str(top)
    return base if inside in ("", ".") else f"{base}//{inside}"


def _repo(root: Path) -> Optional[tuple[Path, Optional[str]]]:
    try:
        import git
    except ImportError:  # pragma: no cover - GitPython is a dependency
        return None
    try:
        repo = git.Repo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None
    top = Path(repo.working_tree_dir or root).resolve()
    remote = None
    try:
        remotes = {r.name: r for r in repo.remotes}
        chosen = remotes.get("origin") or next(iter(remotes.values()), None)
        remote = next(chosen.urls, None) if chosen else None
    except (git.GitCommandError, ValueError):
        remote = None
    return top, remote


def normalize_remote(url: str) -> str:
    """`git@github.com:acme/flows.git`, `https://tok@github.com/acme/flows` → `github.com/acme/flows`."""
    scp = re.match(r"^(?:[^@/]+@)?([^:/]+):(?!//)(.+)$", url)
    if scp and "://" not in url:
        host, path = scp.group(1).lower(), scp.group(2)
    else:
        parts = urlsplit(url)
        host, path = (parts.hostname or ""), parts.path
        if parts.port:
            host = f"{host}:{parts.port}"
    path = path.strip("/")
    if path.endswith(".git"):
        path = path[:-4]
    return f"{host}/{path}" if host else "/" + path


def doc_slug(source: str) -> str:
    """A block-document-safe name part for a source: readable prefix + hash (names are lowercase, dashes)."""
    readable = re.sub(r"[^a-z0-9]+", "-", source.lower()).strip("-")[-40:].strip("-")
    digest = hashlib.sha256(source.encode()).hexdigest()[:10]
    return f"{readable}-{digest}" if readable else digest
