"""Work pools a Prefect 3 server needs for the manifests: planned, then created before the deployments.

A pool-less manifest runs in the pool of its infrastructure type (prefect/v3fields.DEFAULT_POOLS, or
reconcile.yaml's `prefect3.work_pools`); a pool that does not exist yet is created with its type and the
default job template the server reports for that type (`GET /collections/views/aggregate-worker-metadata`).
On 2.x a missing pool stays an error (guards).
"""
from __future__ import annotations

from typing import Any

from ..errors import AlreadyExists, ReconcileError
from ..prefect.api import PrefectClient
from ..prefect.v2 import V2Adapter
from .desired import Desired
from .live import Live


def missing(adapter: V2Adapter, desired: list[Desired], live: Live) -> tuple[tuple[str, str], ...]:
    """(name, type) of each pool the translated manifests name that the server lacks (3.x only)."""
    if adapter.major < 3:
        return ()
    wanted: dict[str, str] = {}
    for want in desired:
        name = want.fields.get("work_pool_name")
        kind = want.fields.get("work_pool_type")
        if name and kind and name not in live.work_pools and name not in wanted:   # no type: it must exist
            wanted[name] = kind
    return tuple(sorted(wanted.items()))


def create(client: PrefectClient, name: str, kind: str, templates: dict[str, Any]) -> None:
    """Create one pool with the default job template of its type (one that appeared meanwhile is kept)."""
    template = templates.get(kind)
    if template is None:
        raise ReconcileError(f"work pool {name!r}: the server at {client.api_url} reports no worker type {kind!r} "
                             "(GET /collections/views/aggregate-worker-metadata); create the pool there")
    try:
        client.post("work_pools/", {"name": name, "type": kind, "base_job_template": template})
    except AlreadyExists:
        pass


def default_templates(client: PrefectClient) -> dict[str, Any]:
    """Worker type → its default base job template, as the server reports them."""
    found: dict[str, Any] = {}
    for workers in (client.get("collections/views/aggregate-worker-metadata") or {}).values():
        for kind, meta in (workers or {}).items():
            template = (meta or {}).get("default_base_job_configuration")
            if isinstance(template, dict) and kind not in found:
                found[kind] = template
    return found
