"""Desired → the same deployments as the server's line holds them (prefect/v2, prefect/v3 adapters).

On 2.x nothing changes.  On 3.x each manifest's fields are translated (prefect/v3fields): its infrastructure
block becomes the work pool's job variables, so it has no block of its own to find or create; a storage block
of a type 3.x lacks (s3, gcs, azure, github, gitlab-repository) becomes pull steps, so it has none either: an
s3/gcs/azure deployment keeps the block's settings as `pull_storage`, where its code is uploaded.  What 3.x
cannot hold is one error per manifest naming its file and line, all before anything is read or written.
"""
from __future__ import annotations

from dataclasses import replace

from ..errors import ManifestError, ManifestErrors
from ..manifests.blocks import BlockRef
from ..prefect import v3pull
from ..prefect.v2 import V2Adapter
from ..prefect.v3fields import Unrepresentable
from .desired import Desired


def for_server(desired: list[Desired], adapter: V2Adapter) -> tuple[list[Desired], tuple[str, ...]]:
    """The desired deployments in the adapter's terms, and the notices the translation gave."""
    if adapter.major == 2:
        return desired, ()
    out: list[Desired] = []
    errors: list[ManifestError] = []
    notices: list[str] = []
    for want in desired:
        said: list[str] = []
        try:
            fields = adapter.desired_fields(want.fields, want.infrastructure, want.storage, said)
        except Unrepresentable as exc:
            errors.append(ManifestError(want.manifest or want.identity, want.lines.get(exc.field, 1), 1, exc.field,
                                        f"{exc} (Prefect {adapter.major} server)"))
            continue
        notices.extend(f"{want.manifest or want.identity}: {note}" for note in said)
        if fields.get("pull_steps"):
            pulled = want.storage if v3pull.storage_kind(want.storage) == "remote" else None
            if pulled is not None:    # only the settings that are no secret: the upload uses the environment's
                pulled = BlockRef(pulled.slug, pulled.name, v3pull.pull_settings(pulled.slug, pulled.data or {}))
            lines = {**want.lines, "pull_steps": want.lines.get("storage", 1)}
            out.append(replace(want, fields=fields, infrastructure=None, storage=None, pull_storage=pulled,
                               lines=lines))
            continue
        out.append(replace(want, fields=fields, infrastructure=None))
    if errors:
        raise ManifestErrors(sorted(errors, key=lambda e: (e.file, e.line)))
    return out, tuple(notices)
