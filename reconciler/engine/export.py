"""Live deployments → manifests: `reconcile export`, the inverse of apply (adopt a server into git).

`export()` reads the API's JSON of the selected deployments, their flows and their
block documents through `PrefectClient` (a handful of filter requests), turns it into
manifests with `exported.manifests()` (pure; block secrets stay masked), and writes
the files.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from ..errors import NotFound, ReconcileError
from ..prefect.api import PrefectClient
from .exported import Exported, manifests
from .inventory import doc_name


@dataclass(frozen=True)
class ServerState:
    deployments: list[dict[str, Any]]
    flows: list[dict[str, Any]]
    block_documents: list[dict[str, Any]]
    notices: tuple[str, ...] = ()


@dataclass
class Outcome:
    outdir: Path
    written: list[tuple[Path, Exported]] = field(default_factory=list)
    skipped: list[tuple[Path, Exported]] = field(default_factory=list)   # existing files, not overwritten
    warnings: list[str] = field(default_factory=list)


def read_server(client: PrefectClient, source: Optional[str] = None, flows: Sequence[str] = ()) -> ServerState:
    """The selected deployments, their flows and block documents (secrets masked), in a few requests."""
    notices: list[str] = []
    body: dict[str, Any] = {"sort": "NAME_ASC"}
    if flows:
        body["flows"] = {"name": {"any_": sorted(set(flows))}}
    deployments = list(client.paged("deployments/filter", body))
    flow_ids = sorted({d["flow_id"] for d in deployments})
    flow_list = list(client.paged("flows/filter", {"flows": {"id": {"any_": flow_ids}}})) if flow_ids else []
    names = {f["id"]: f["name"] for f in flow_list}
    if flows:
        deployments = [d for d in deployments if names.get(d["flow_id"]) in flows]
        missing = sorted(set(flows) - {names.get(d["flow_id"]) for d in deployments})
        if missing:
            raise ReconcileError(f"no deployments of flow {missing[0]!r} on the server at {client.api_url}")
    if source is not None:
        managed = _inventory(client, source)
        deployments = [d for d in deployments if f"{names.get(d['flow_id'])}/{d['name']}" in managed]
        present = {f"{names.get(d['flow_id'])}/{d['name']}" for d in deployments}
        flow_filter = set(flows)
        for identity in sorted(managed - present):
            if not flow_filter or identity.split("/", 1)[0] in flow_filter:
                notices.append(f"{identity}: listed in the inventory of source {source!r} but not on the server")
    ids = sorted({i for d in deployments for i in (d.get("infrastructure_document_id"), d.get("storage_document_id")) if i})
    block_documents = list(client.paged("block_documents/filter", {
        "block_documents": {"id": {"any_": ids}, "is_anonymous": None}})) if ids else []
    return ServerState(deployments, flow_list, block_documents, tuple(notices))


def _inventory(client: PrefectClient, source: str) -> frozenset[str]:
    try:
        raw = client.get(f"block_types/slug/json/block_documents/name/{doc_name(source)}")
    except NotFound:
        raise ReconcileError(f"source {source!r} has no inventory on the server at {client.api_url} "
                             "(nothing was applied with that source)") from None
    value = (raw.get("data") or {}).get("value") or {}
    if not isinstance(value, dict) or value.get("source") != source:
        raise ReconcileError(f"the inventory document {raw.get('name')!r} does not belong to source {source!r}")
    return frozenset(value.get("deployments") or ())


def export(client: PrefectClient, outdir: Path, *, source: Optional[str] = None, flows: Sequence[str] = (),
           force: bool = False, now: Optional[dt.datetime] = None) -> Outcome:
    """Write one manifest per selected deployment under outdir; existing files stay unless force."""
    if outdir.exists() and not outdir.is_dir():
        raise ReconcileError(f"{outdir}: not a directory")
    state = read_server(client, source, flows)
    stamp = (now or dt.datetime.now(dt.timezone.utc)).isoformat()
    exported = manifests(state.deployments, state.flows, state.block_documents, stamp)
    outcome = Outcome(outdir, warnings=list(state.notices))
    for item in exported:
        target = outdir.joinpath(*item.path.parts)
        outcome.warnings.extend(item.warnings)
        if target.exists() and not force:
            outcome.skipped.append((target, item))
            continue
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(item.text, encoding="utf-8")
        except OSError as exc:
            raise ReconcileError(f"{target}: cannot write: {exc.strerror or exc}") from None
        outcome.written.append((target, item))
    return outcome
