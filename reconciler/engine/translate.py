"""Desired → the same deployments as the server's line holds them (prefect/v2, prefect/v3 adapters).

On 2.x nothing changes.  On 3.x each manifest's fields are translated (prefect/v3fields): its infrastructure
block becomes the work pool's job variables, so it has no block of its own to find or create; what 3.x
cannot hold is one error per manifest naming its file and line, all before anything is read or written.
"""
from __future__ import annotations

from dataclasses import replace

from ..errors import ManifestError, ManifestErrors
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
        out.append(replace(want, fields=fields, infrastructure=None))
    if errors:
        raise ManifestErrors(sorted(errors, key=lambda e: (e.file, e.line)))
    return out, tuple(notices)
