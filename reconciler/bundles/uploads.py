"""Bundles + storage markers → upload actions (pure: no I/O here).

One upload per storage location, however many deployments share it; only the
files whose hash differs from the marker's are written, files the marker lists
that the bundle no longer has are removed.  A location whose marker names
another source is taken: nothing goes there, and its deployments are left alone.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from ..errors import ReconcileError
from .bundle import Bundle
from .marker import Marker, delta


@dataclass(frozen=True)
class Upload:
    bundle: str                   # the bundle directory, as displayed
    bundle_dir: str               # its absolute path (to re-read it when a saved plan is applied)
    storage: str                  # the storage block, `slug/name`
    path: str                     # the manifest's `path`
    url: str                      # the location (no credentials)
    digest: str                   # the bundle hash to be uploaded
    marker_before: Optional[str]  # the hash the location's marker had (None: no marker)
    write: tuple[str, ...]        # files to write (new or changed)
    remove: tuple[str, ...]       # files to remove
    bytes: int
    deployments: tuple[str, ...]  # the deployments that use this location
    source: str = ""              # the source uploading (the marker will name it)

    def to_json(self) -> dict[str, Any]:
        return {"action": "upload", "bundle": self.bundle, "storage": self.storage, "path": self.path,
                "files_changed": len(self.write), "files_removed": len(self.remove), "bytes": self.bytes,
                "url": self.url, "digest": self.digest, "marker_before": self.marker_before,
                "write": list(self.write), "remove": list(self.remove), "deployments": list(self.deployments),
                "bundle_dir": self.bundle_dir, "source": self.source}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> "Upload":
        return cls(bundle=raw["bundle"], bundle_dir=raw["bundle_dir"], storage=raw["storage"], path=raw["path"],
                   url=raw["url"], digest=raw["digest"], marker_before=raw.get("marker_before"),
                   write=tuple(raw["write"]), remove=tuple(raw["remove"]), bytes=raw["bytes"],
                   deployments=tuple(raw["deployments"]), source=str(raw.get("source") or ""))


@dataclass(frozen=True)
class Location:
    """Where one deployment's code goes, and what is there now."""

    identity: str
    storage: str          # block key
    path: str
    url: str
    bundle: Bundle
    marker: Optional[Marker]


@dataclass(frozen=True)
class Taken:
    """A location whose marker names another source: never uploaded to by this one."""

    url: str
    owner: str
    deployments: tuple[str, ...]


@dataclass
class CodePlan:
    uploads: list[Upload] = field(default_factory=list)
    taken: list[Taken] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)


def plan_uploads(locations: list[Location], source: Optional[str] = None) -> list[Upload]:
    return plan_code(locations, source).uploads


def plan_code(locations: list[Location], source: Optional[str] = None) -> CodePlan:
    """The uploads these locations need.  With a `source`, a location whose marker names another source is
    Taken (whether or not its code differs); a marker naming no source (an older reconcile's) is claimed
    by this source's upload, with a notice."""
    by_url: dict[str, list[Location]] = {}
    for loc in locations:
        by_url.setdefault(loc.url, []).append(loc)
    out = CodePlan()
    for url, group in sorted(by_url.items()):
        roots = {str(loc.bundle.root) for loc in group}
        if len(roots) > 1:
            names = ", ".join(sorted(loc.identity for loc in group))
            raise ReconcileError(f"{names} upload different directories ({', '.join(sorted(roots))}) to the same "
                                 f"storage location {url}; give them different `path`s")
        first = group[0]
        users = tuple(sorted(loc.identity for loc in group))
        owner = first.marker.source if first.marker else None
        if source is not None and owner is not None and owner != source:
            out.taken.append(Taken(url, owner, users))
            continue
        change = delta(first.bundle, first.marker)
        if change.empty:
            continue
        if source is not None and first.marker is not None and owner is None:
            out.notices.append(f"{url}: its marker names no source (an older reconcile wrote it); "
                               f"this upload makes the location {source!r}'s")
        out.uploads.append(Upload(
            bundle=first.bundle.display, bundle_dir=str(first.bundle.root), storage=first.storage,
            path=first.path, url=url, digest=first.bundle.digest,
            marker_before=first.marker.digest if first.marker else None,
            write=tuple(f.path for f in change.write), remove=change.remove, bytes=change.bytes,
            deployments=users, source=source or ""))
    return out
