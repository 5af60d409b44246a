"""Live deployments' JSON → manifests: the pure half of `reconcile export` (export.py reads and writes).

`manifests()` takes the API's JSON of deployments, their flows and their block
documents, and gives one manifest per deployment (a dict for `writer.render`, the
relative file path, and warnings).  No I/O.

Block documents are read WITHOUT secrets: the server masks them (`********`), and
credential-like `settings` keys (which it keeps in plain text) are masked here; both
are written the way Prefect 2 writes a masked secret (`'**********'`).  A
named block is referenced by name on apply, so its masked data is harmless; an
anonymous block with masked secrets cannot be recreated (a warning says so).
"""
from __future__ import annotations

import copy
import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Optional, Sequence

from ..bundles.storage import READ_ONLY
from ..errors import ReconcileError
from ..manifests import manifest as manifest_mod
from ..manifests import secrets
from ..manifests import writer
from ..manifests.blocks import MASK, masked_key
from . import desired as desired_mod

SERVER_MASK = "********"   # what the Prefect 2 server returns for a secret read without include_secrets
SUFFIX = "-deployment.yaml"
# The keys each kind of schedule has in the manifest format (the API adds none today; keep it that way).
SCHEDULE_KEYS = {"interval": ("interval", "anchor_date", "timezone"),
                 "cron": ("cron", "timezone", "day_or"),
                 "rrule": ("rrule", "timezone")}
# What `prefect deployment build` writes when a deployment names no infrastructure.
DEFAULT_INFRASTRUCTURE = {"type": "process", "env": {}, "labels": {}, "name": None, "command": None,
                          "stream_output": True, "working_dir": None}


@dataclass(frozen=True)
class Exported:
    """One deployment as a manifest: where it goes (relative to OUTDIR) and what it says."""

    identity: str                  # flow_name/name
    path: PurePosixPath            # <flow-slug>/<name-slug>-deployment.yaml
    doc: dict[str, Any]            # every manifest key, for writer.render
    warnings: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return writer.render(self.doc)


def manifests(deployments: Iterable[dict[str, Any]], flows: Iterable[dict[str, Any]],
              block_documents: Iterable[dict[str, Any]], timestamp: str) -> list[Exported]:
    """The API's deployments (with their flows and block documents) as manifests, sorted by identity."""
    flow_names = {f["id"]: f["name"] for f in flows}
    blocks = {b["id"]: b for b in block_documents}
    drafts: list[tuple[str, str, str, dict[str, Any], list[str]]] = []
    for dep in deployments:
        flow_name = flow_names.get(dep["flow_id"])
        if flow_name is None:
            continue  # the flow is gone (the server deletes its deployments with it)
        doc, warnings = manifest_doc(dep, flow_name, blocks, timestamp)
        drafts.append((f"{flow_name}/{dep['name']}", flow_name, dep["name"], doc, warnings))
    drafts.sort(key=lambda d: d[0])
    paths = file_paths([(flow, name) for _, flow, name, _, _ in drafts])
    return [Exported(identity, path, doc, tuple(warnings))
            for (identity, _, _, doc, warnings), path in zip(drafts, paths)]


def manifest_doc(dep: dict[str, Any], flow_name: str, blocks: dict[str, dict[str, Any]],
                 timestamp: str) -> tuple[dict[str, Any], list[str]]:
    """One deployment's manifest keys (Prefect 2.20's file format) and the warnings about it."""
    identity = f"{flow_name}/{dep['name']}"
    warnings: list[str] = []
    infrastructure, masked_infra = _block(dep.get("infrastructure_document_id"), blocks, "infrastructure",
                                          identity, warnings)
    if infrastructure is None:
        if not dep.get("infrastructure_document_id"):
            warnings.append(f"{identity}: has no infrastructure block on the server; the manifest declares "
                            "Prefect's default (an anonymous process), which applying it sets")
        infrastructure = {**copy.deepcopy(DEFAULT_INFRASTRUCTURE), "block_type_slug": "process",
                          "_block_type_slug": "process"}
    storage, masked_storage = _block(dep.get("storage_document_id"), blocks, "storage", identity, warnings)
    if storage is not None and storage["_block_type_slug"] not in READ_ONLY:
        where = (f"storage {storage['_block_type_slug']}/{storage['_block_document_name']}"
                 if "_block_document_id" in storage else f"an anonymous {storage['_block_type_slug']} storage block")
        warnings.append(f"{identity}: its code is in {where} (path {dep.get('path')!r}) and is not "
                        "exported; copy the code into the repository where its entrypoint names it before "
                        "`reconcile apply`; until then apply refuses to upload")
    if dep.get("pull_steps"):
        warnings.append(f"{identity}: has pull steps (made by `prefect deploy`); the manifest format cannot "
                        "express them, so they are not exported")
    doc: dict[str, Any] = {
        "name": dep["name"],
        "description": dep.get("description"),
        "version": dep.get("version"),
        "work_queue_name": dep.get("work_queue_name"),
        "work_pool_name": dep.get("work_pool_name"),
        "tags": list(dep.get("tags") or []),
        "parameters": copy.deepcopy(dep.get("parameters") or {}),
        "schedule": None,
        "schedules": _schedules(dep.get("schedules") or []),
        "is_schedule_active": False if dep.get("paused") else None,
        "infra_overrides": copy.deepcopy(dep.get("infra_overrides") or dep.get("job_variables") or {}),
        "infrastructure": infrastructure,
        "flow_name": flow_name,
        "manifest_path": dep.get("manifest_path"),
        "storage": storage,
        "path": dep.get("path"),
        "entrypoint": dep.get("entrypoint"),
        "parameter_openapi_schema": copy.deepcopy(dep.get("parameter_openapi_schema")),
        "timestamp": timestamp,
        "triggers": [],
        "enforce_parameter_schema": bool(dep.get("enforce_parameter_schema")),
    }
    if not (masked_infra or masked_storage):
        problem = check(doc)
        if problem is not None:
            warnings.append(f"{identity}: the exported manifest does not pass reconcile's checks: {problem}")
    return doc, warnings


def _block(doc_id: Optional[str], blocks: dict[str, dict[str, Any]], key: str, identity: str,
           warnings: list[str]) -> tuple[Optional[dict[str, Any]], bool]:
    """A block as a manifest embeds it, and whether it is anonymous with masked secrets."""
    if not doc_id:
        return None, False
    raw = blocks.get(doc_id)
    if raw is None:
        warnings.append(f"{identity}: its {key} block document {doc_id} is not on the server")
        return None, False
    slug = _slug_of(raw)
    data = secrets.redact(_masked(raw.get("data") or {}), secrets.settings_rule, mask=MASK)  # kept in plain text
    data = _with_references(data, raw.get("block_document_references") or {})
    out = {k: v for k, v in data.items() if not k.startswith("_") and k != "block_type_slug"}
    if raw.get("is_anonymous"):
        # the layout `deployment build` gives a block it has not saved: above the marker for infrastructure
        out.update(block_type_slug=slug, _block_type_slug=slug)
        masked = masked_key(out) is not None
        if masked:
            warnings.append(f"{identity}: its anonymous {slug} {key} block has secrets the server does not "
                            "reveal (written as '**********'); it cannot be recreated from this manifest — "
                            "save it as a named block and reference it by `_block_document_name`")
        return out, masked
    out.update(_block_document_id=raw["id"], _block_document_name=raw.get("name"), _is_anonymous=False,
               block_type_slug=slug, _block_type_slug=slug)
    return out, False


def _slug_of(raw: dict[str, Any]) -> str:
    return ((raw.get("block_type") or {}).get("slug")
            or ((raw.get("block_schema") or {}).get("fields") or {}).get("block_type_slug") or "?")


def _masked(value: Any) -> Any:
    """The server's `********` written as Prefect 2 writes a masked secret (so reconcile recognises it)."""
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return MASK if value == SERVER_MASK else copy.deepcopy(value)


def _with_references(data: dict[str, Any], references: dict[str, Any]) -> dict[str, Any]:
    """Nested block documents get the keys Prefect 2 writes for them (id, name, anonymous, type slug)."""
    out = dict(data)
    for key, ref in references.items():
        nested = (ref or {}).get("block_document") or {}
        if not isinstance(out.get(key), dict) or not nested:
            continue
        inner = _with_references(out[key], nested.get("block_document_references") or {})
        inner = {k: v for k, v in inner.items() if not k.startswith("_") and k != "block_type_slug"}
        inner.update(_block_document_id=nested.get("id"), _block_document_name=nested.get("name"),
                     _is_anonymous=bool(nested.get("is_anonymous")),
                     block_type_slug=(nested.get("block_type") or {}).get("slug"))
        out[key] = inner
    return out


def _schedules(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for item in raw:
        sched = item.get("schedule") or {}
        kind = next((k for k in SCHEDULE_KEYS if k in sched), None)
        if kind is None:
            continue
        kept = {k: copy.deepcopy(sched[k]) for k in SCHEDULE_KEYS[kind] if k in sched}
        out.append({"schedule": kept, "active": bool(item.get("active", True))})
    return sorted(out, key=lambda e: json.dumps(e, sort_keys=True, default=str))


def check(doc: dict[str, Any]) -> Optional[str]:
    """reconcile's own verdict on a manifest (parse + resolve), or None when it passes."""
    text = writer.render(doc).encode()
    try:
        parsed = manifest_mod.parse(text, Path("exported" + SUFFIX), "exported")
        desired_mod.resolve([parsed])
    except ReconcileError as exc:
        message = str(exc)
        return message.split(": ", 1)[1] if message.startswith("exported:") else message
    return None


def slug(text: str) -> str:
    """A lowercase, filesystem-safe name part: letters, digits, `_` and `-` (empty if nothing is left)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9_]+", "-", ascii_text.lower()).strip("-_")[:80].strip("-_")


def file_paths(identities: Sequence[tuple[str, str]]) -> list[PurePosixPath]:
    """`<flow-slug>/<name-slug>-deployment.yaml` for each (flow, name); names that would share a
    path (or slug to nothing) get a short hash of their identity, so no file is written twice."""
    def plain(flow: str, name: str) -> tuple[str, str]:
        return slug(flow) or "flow", slug(name)

    counts: dict[tuple[str, str], int] = {}
    for flow, name in identities:
        key = plain(flow, name)
        counts[key] = counts.get(key, 0) + 1
    out = []
    for flow, name in identities:
        directory, stem = plain(flow, name)
        if not stem or counts[(directory, stem)] > 1:
            digest = hashlib.sha256(f"{flow}/{name}".encode()).hexdigest()[:8]
            stem = f"{stem}-{digest}" if stem else digest
        out.append(PurePosixPath(directory, stem + SUFFIX))
    return out
