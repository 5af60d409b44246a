"""Where each deployment's code lives, and the marker there (the storage side of `read`).

Named storage blocks are read with their secrets (needed to reach the storage;
never printed); anonymous ones come from the manifest.  Each distinct location's
marker is read once, concurrently.
"""
from __future__ import annotations

import concurrent.futures as cf
import os
from dataclasses import dataclass, field
from typing import Any, Optional

from ..engine.desired import Desired
from ..engine.live import Live
from ..errors import ManifestError, ManifestErrors, ReconcileError
from ..manifests.confine import Escapes
from ..manifests.blocks import BlockRef
from ..prefect import v3fields, v3pull
from ..prefect.api import PrefectClient
from . import storage as storage_mod
from .bundle import Bundle
from .marker import NAME, Marker
from .uploads import Location


@dataclass
class Locations:
    found: list[Location] = field(default_factory=list)
    targets: dict[str, storage_mod.Target] = field(default_factory=dict)  # url → target
    notices: list[str] = field(default_factory=list)


def read(client: PrefectClient, live: Live, desired: list[Desired], bundles: dict[str, Bundle]) -> Locations:
    """Every location the bundles go to (each confined to its block's root) and the marker found there.

    Every problem fails here, at plan time, before any write, all of them at once: one line each, naming the
    manifest's file and line (a `path` that leaves its block's root, a block that is no storage or lacks its
    basepath or bucket, a storage that cannot be read); a location several manifests share is named once.
    """
    errors: list[ReconcileError] = list(_escapes(live, desired))
    failed = {e.file for e in errors if isinstance(e, ManifestError)}
    out = Locations()
    secrets: dict[str, dict[str, Any]] = {}
    pending: list[tuple[Desired, storage_mod.Target]] = []
    for want in desired:
        bundle = bundles.get(want.identity)
        if (want.storage is None and want.pull_storage is None) or bundle is None \
                or (want.manifest or want.identity) in failed:
            continue
        try:
            target = target_of(client, live, want, secrets)
        except ManifestError as exc:
            errors.append(exc)
            continue
        except ReconcileError as exc:
            errors.append(_located(want, exc))
            continue
        if isinstance(target, storage_mod.ReadOnly):
            out.notices.append(f"{want.identity}: code comes from {target.describe()} ({want.storage.key}); nothing to upload")
            continue
        inside = _inside_its_bundle(target, bundle)
        if inside:
            errors.append(_located(want, ReconcileError(inside)))
            continue
        out.targets.setdefault(target.url, target)
        pending.append((want, target))
    markers, unreadable = _markers(list(out.targets.values()))
    for url, exc in sorted(unreadable.items()):
        users = sorted((w for w, t in pending if t.url == url), key=lambda w: (w.manifest or w.identity))
        others = len({w.manifest or w.identity for w in users}) - 1
        errors.append(_located(users[0], exc, f" (and {others} other manifest(s) with this storage)" if others else ""))
    if errors:
        raise ManifestErrors(errors)
    for want, target in pending:
        out.found.append(Location(want.identity, target.block, want.fields.get("path") or "", target.url,
                                  bundles[want.identity], markers[target.url]))
    return out


def _inside_its_bundle(target: storage_mod.Target, bundle: Bundle) -> Optional[str]:
    """Why a local storage folder that lies inside the bundle it receives cannot take it: every upload would
    copy the previous one into itself (storage/storage/…), without end.  None when it does not (or when the
    folder is left out of the bundle, e.g. by .prefectignore)."""
    if target.protocol not in ("file", "local"):
        return None
    try:
        rel = os.path.relpath(os.path.realpath(target.root), os.path.realpath(bundle.root))
    except ValueError:
        return None
    if rel == os.pardir or rel.startswith(os.pardir + os.sep):
        return None
    prefix = "" if rel == os.curdir else rel.replace(os.sep, "/") + "/"
    if not any(f.path.startswith(prefix) for f in bundle.files):
        return None
    return (f"storage {target.block} puts the code in {target.root}, inside the code it receives "
            f"({bundle.display}): every upload would copy the last one into itself; move the block's basepath "
            "out of the repository, or leave that folder out with .prefectignore")


def confined(live: Live, desired: list[Desired]) -> None:
    """Every deployment's storage `path` stays inside its block's root, with or without an upload (--skip-upload
    too): judged from the block as the server shows it (no secrets needed), one line per manifest naming
    its file and line."""
    errors = _escapes(live, desired)
    if errors:
        raise ManifestErrors(list(errors))


def _escapes(live: Live, desired: list[Desired]) -> list[ManifestError]:
    errors: list[ManifestError] = []
    for want in desired:
        ref = want.storage
        doc = live.named.get((ref.slug, ref.name)) if ref is not None and ref.name is not None else None
        if ref is None or (ref.name is not None and doc is None):
            continue   # no storage, or a missing block (reported on its own)
        try:
            _target(want, dict(doc.data) if doc is not None else dict(ref.data or {}))
        except ManifestError as exc:
            errors.append(exc)
        except ReconcileError:
            pass   # not a storage reconcile uploads to: said when an upload is planned, never written to
    return errors


def _located(want: Desired, exc: ReconcileError, more: str = "") -> ManifestError:
    """A storage error, at the line of the manifest's `storage`."""
    return ManifestError(want.manifest or want.identity, want.lines.get("storage", 1), 1, "storage", f"{exc}{more}")


def target_of(client: PrefectClient, live: Live, want: Desired, secrets: dict[str, dict[str, Any]]):
    """Where this deployment's code goes (a Target, or ReadOnly), with the block's secrets to reach it."""
    if want.pull_storage is not None:
        return pulled_target(want)
    assert want.storage is not None
    return _target(want, _block_data(client, live, want.storage, secrets))


def pulled_target(want: Desired) -> storage_mod.Target:
    """Prefect 3: the location a pull step reads (prefect/v3pull.remote_location, the step's own URL), reached
    with the credentials of this process's environment (AWS_*, GOOGLE_APPLICATION_CREDENTIALS, AZURE_*)."""
    ref = want.pull_storage
    assert ref is not None
    try:
        scheme, root = v3pull.remote_location(ref.slug, ref.data or {}, want.fields.get("path"))
    except v3fields.Unrepresentable as exc:
        raise ManifestError(want.manifest or want.identity, want.lines.get(exc.field, 1), 1, exc.field,
                            str(exc)) from None
    return storage_mod.Target(ref.key, scheme, {}, root)


def _target(want: Desired, data: dict[str, Any]):
    """A `path` leaving the block's root is a ManifestError naming the manifest's file and line."""
    ref = want.storage
    assert ref is not None
    try:
        return storage_mod.target(ref.slug, ref.key, data, want.fields.get("path"))
    except Escapes as exc:
        if exc.root == ".":   # a git repository block: the path is a directory of its checkout
            what = f"{exc.path!r} leaves the checkout of storage {ref.key}"
        else:
            what = f"{exc.path!r} leaves storage {ref.key}: {exc.how} {exc.resolved}, outside {exc.root}"
        raise ManifestError(want.manifest or want.identity, want.lines.get("path", 1), 1, "path",
                            f"{what} (use a relative path inside the block's root, without '..')") from None


def _block_data(client: PrefectClient, live: Live, ref: BlockRef, cache: dict[str, dict[str, Any]]) -> dict[str, Any]:
    if ref.name is None:
        return dict(ref.data or {})
    doc = live.named.get((ref.slug, ref.name))
    if doc is None:
        raise ReconcileError(f"storage block {ref.key} not found on the server")
    if doc.id not in cache:
        raw = client.get(f"block_documents/{doc.id}?include_secrets=true")
        cache[doc.id] = dict(raw.get("data") or {})
    return cache[doc.id]


def _markers(targets: list[storage_mod.Target]) -> tuple[dict[str, Optional[Marker]], dict[str, ReconcileError]]:
    """Each location's marker, read concurrently; and every location that could not be read (all of them)."""
    if not targets:
        return {}, {}

    def one(target: storage_mod.Target):
        try:
            return read_marker(target)
        except ReconcileError as exc:
            return exc

    with cf.ThreadPoolExecutor(min(8, len(targets))) as pool:
        results = dict(zip((t.url for t in targets), pool.map(one, targets)))
    failed = {url: r for url, r in results.items() if isinstance(r, ReconcileError)}
    return {url: r for url, r in results.items() if not isinstance(r, ReconcileError)}, failed


def read_marker(target: storage_mod.Target) -> Optional[Marker]:
    fs = target.filesystem()
    path = f"{target.root.rstrip('/')}/{NAME}"
    try:
        raw = fs.cat_file(path)
    except FileNotFoundError:
        _bucket_exists(fs, target)
        return None
    except IsADirectoryError:
        return None
    except PermissionError as exc:
        raise ReconcileError(f"storage {target.block}: permission denied reading {target.url}: {exc}") from None
    except OSError as exc:
        raise ReconcileError(f"storage {target.block}: cannot read {target.url}: {_reason(exc)}") from None
    except Exception as exc:  # noqa: BLE001 - fsspec backends raise their own types (botocore, azure, …)
        raise ReconcileError(f"storage {target.block}: cannot read {target.url}: {_reason(exc)}") from None
    return Marker.from_bytes(raw)


BUCKETED = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss"}


def _bucket_exists(fs, target: storage_mod.Target) -> None:
    """No marker is normal (nothing uploaded yet); no bucket is a mistake, said at plan time."""
    if target.protocol not in BUCKETED:
        return
    bucket = target.root.strip("/").split("/", 1)[0]
    try:
        exists = fs.exists(bucket)
    except Exception as exc:  # noqa: BLE001 - fsspec backends raise their own types
        raise ReconcileError(f"storage {target.block}: cannot read {target.url}: {_reason(exc)}") from None
    if not exists:
        raise ReconcileError(f"storage {target.block}: bucket {bucket!r} does not exist ({target.url})")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]
