"""The bundle marker at a storage location: which bundle (and which files) is there.

Written last by an upload, so a crash part-way never leaves a marker that
claims files that were not written.  The plan compares it with the local bundle.
It names the source that uploaded it: a location holds one source's bundle.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable, Optional

from ..manifests.confine import member
from .bundle import Bundle, FileEntry

NAME = ".reconcile-bundle.json"


@dataclass(frozen=True)
class Marker:
    digest: str
    files: dict[str, dict[str, Any]]     # relative path → {"sha256", "size", "exec"}
    complete: bool = True                # False while an upload is under way (or crashed part-way)
    source: Optional[str] = None         # the source that owns the location (None: an older reconcile wrote it)

    def to_json(self) -> dict[str, Any]:
        out = {"version": 1, "bundle": self.digest, "files": self.files, "complete": self.complete}
        return {**out, "source": self.source} if self.source is not None else out

    def started(self, adding: Iterable[str] = (), source: Optional[str] = None) -> "Marker":
        """What the location says while an upload runs: its files can no longer be trusted, and the
        files being added are listed so a later upload removes them if the code drops them.  The
        uploading source owns the location from here on."""
        files = dict(self.files)
        for path in adding:
            files.setdefault(path, {"sha256": "", "size": -1, "exec": False})
        return Marker(self.digest, files, complete=False, source=source if source is not None else self.source)

    @classmethod
    def from_bytes(cls, raw: bytes) -> Optional["Marker"]:
        """None for a marker that is not ours or is damaged: the next upload rewrites it."""
        try:
            data = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(data, dict) or data.get("version") != 1 or not isinstance(data.get("files"), dict):
            return None
        if not all(member(p) for p in data["files"]):
            return None  # a path that could reach outside the location: never act on it
        source = data.get("source")
        if source is not None and not isinstance(source, str):
            return None
        return cls(str(data.get("bundle")), data["files"], complete=data.get("complete", True) is not False,
                   source=source)

    @classmethod
    def of(cls, bundle: Bundle, source: Optional[str] = None) -> "Marker":
        return cls(bundle.digest, {f.path: f.to_json() for f in bundle.files}, source=source)


@dataclass(frozen=True)
class Delta:
    """What an upload must do to turn the location's contents into the bundle."""

    write: tuple[FileEntry, ...]     # new or changed files
    remove: tuple[str, ...]          # files the marker lists that the bundle no longer has

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.write)

    @property
    def empty(self) -> bool:
        return not self.write and not self.remove


def delta(bundle: Bundle, marker: Optional[Marker]) -> Delta:
    if marker is not None and marker.complete and marker.digest == bundle.digest:
        return Delta((), ())
    known = marker.files if marker is not None else {}
    if marker is not None and not marker.complete:
        # a crashed upload: any file may hold either version, so every file is written again
        write = bundle.files
    else:
        write = tuple(f for f in bundle.files if known.get(f.path) != f.to_json())
    paths = {f.path for f in bundle.files}
    remove = tuple(sorted(p for p in known if p not in paths))
    if not write and not remove:
        # same files, different digest: only the marker itself is stale
        return Delta((), ())
    return Delta(write, remove)
