"""Carry out an upload: changed files first, removals next, the marker last.

The marker is written only after every file is in place, so a crash part-way
leaves the old marker (or none) and the next plan uploads again.
"""
from __future__ import annotations

import json
import os
import posixpath
from typing import Callable, Optional

from ..errors import ReconcileError
from ..manifests.confine import member
from .bundle import Bundle
from .marker import NAME, Marker
from .storage import Target
from .uploads import Upload

LOCAL = {"file", "local"}


def write_marker(fs, root: str, marker: Marker) -> None:
    fs.pipe_file(posixpath.join(root, NAME), json.dumps(marker.to_json(), sort_keys=True).encode())


def upload(target: Target, bundle: Bundle, plan: Upload, progress: Callable[[int], None] = lambda n: None) -> int:
    """Mark the location as changing, write the planned files, remove the planned ones, then the marker.

    A marker already there is first rewritten as incomplete, so a crash part-way never leaves a marker
    claiming files that were not written, even if the code is later reverted to what it described.
    """
    if bundle.digest != plan.digest:
        raise ReconcileError(f"{plan.bundle}: the files changed since the plan was made; run plan again")
    files = bundle.by_path
    check_paths(plan, files)   # every path, before the first write
    fs = target.filesystem()
    local = _is_local(fs)
    written = 0
    try:
        if local:
            fs.makedirs(target.root, exist_ok=True)
        before = _current_marker(fs, target.root) or Marker("", {})
        if plan.source and before.source not in (None, plan.source):   # claimed by another source since the plan
            raise ReconcileError(f"{plan.url} now holds the code of source {before.source!r}; nothing uploaded "
                                 "(run plan again: its deployments are a conflict)")
        write_marker(fs, target.root, before.started(plan.write, plan.source or None))
        # removals first: a path may turn from a file into a directory (or back)
        for rel in plan.remove:
            _remove(fs, target.root, rel)
        for rel in plan.write:
            entry = files[rel]
            remote = posixpath.join(target.root, rel)
            source = str(bundle.root / rel)
            if local:
                fs.makedirs(posixpath.dirname(remote), exist_ok=True)
                if os.path.exists(remote) and os.path.samefile(source, remote):
                    continue  # the storage is the bundle directory itself (as Prefect allows)
            fs.put_file(source, remote)
            if local:
                os.chmod(remote, 0o755 if entry.executable else 0o644)
            written += entry.size
            progress(entry.size)
        write_marker(fs, target.root, Marker.of(bundle, plan.source or None))
    except ReconcileError:
        raise
    except Exception as exc:  # noqa: BLE001 - fsspec backends raise their own types
        text = (str(exc).strip() or type(exc).__name__).splitlines()[0][:200]
        raise ReconcileError(f"upload of {plan.bundle} to {target.block} ({target.url}) failed: {text}") from None
    return written


def check_paths(plan: Upload, files: dict) -> None:
    """Every file an upload writes is one of the bundle's, and every file it removes lies inside the location."""
    for rel in plan.remove:
        if not member(rel):
            raise ReconcileError(f"{plan.bundle}: the upload would remove {rel!r}, which is not a path inside "
                                 f"{plan.url} (make the plan again)")
    for rel in plan.write:
        if rel not in files or not member(rel):
            raise ReconcileError(f"{plan.bundle}: the upload would write {rel!r}, which is not a file of the "
                                 "bundle (make the plan again)")


def _current_marker(fs, root: str) -> Optional[Marker]:
    try:
        return Marker.from_bytes(fs.cat_file(posixpath.join(root, NAME)))
    except (FileNotFoundError, IsADirectoryError):
        return None


def _remove(fs, root: str, rel: str) -> None:
    """Remove one file, then its parent directories up to the root while they are empty."""
    try:
        fs.rm_file(posixpath.join(root, rel))
    except FileNotFoundError:
        return
    parent = posixpath.dirname(rel)
    while parent:
        path = posixpath.join(root, parent)
        try:
            if not fs.isdir(path) or fs.ls(path):
                return
            fs.rmdir(path)
        except (FileNotFoundError, OSError):
            return
        parent = posixpath.dirname(parent)


def _is_local(fs) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
    return any(p in LOCAL for p in protocols)
