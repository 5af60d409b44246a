"""`reconcile build`: write a manifest from a flow file, as `prefect deployment build` does, without importing it.

The flow's name, version and parameter schema come from reading its syntax tree
(reconciler.flowcode.scan).  Named blocks (`--infra-block`, `--storage-block`) are
read from the Prefect API by type slug and name.  The manifest is validated with
the same loader `plan` uses before it is written; an existing manifest keeps its
user part (everything above the marker), byte for byte.
"""
from __future__ import annotations

import datetime as dt
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from ..errors import ReconcileError
from ..manifests import writer
from ..manifests.manifest import Manifest, parse
from . import scan as flowscan

PREFECT_VERSION = "2.20.27"
_IMAGE = f"prefecthq/prefect:{PREFECT_VERSION}-python{sys.version_info.major}.{sys.version_info.minor}"
ANONYMOUS_INFRA: dict[str, dict[str, Any]] = {
    "process": {"type": "process", "env": {}, "labels": {}, "name": None, "command": None, "stream_output": True,
                "working_dir": None},
    "docker-container": {"type": "docker-container", "env": {}, "labels": {}, "name": None, "command": None,
                         "image": _IMAGE, "image_pull_policy": None, "image_registry": None, "networks": [],
                         "network_mode": None, "auto_remove": False, "volumes": [], "stream_output": True,
                         "memswap_limit": None, "mem_limit": None, "privileged": False},
    "kubernetes-job": {"type": "kubernetes-job", "env": {}, "labels": {}, "name": None, "command": None,
                       "image": _IMAGE, "namespace": "default", "service_account_name": None,
                       "image_pull_policy": None, "cluster_config": None,
                       "job": {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"labels": {}},
                               "spec": {"template": {"spec": {"parallelism": 1, "completions": 1,
                                                              "restartPolicy": "Never",
                                                              "containers": [{"name": "prefect-job", "env": []}]}}}},
                       "customizations": [], "job_watch_timeout_seconds": None, "pod_watch_timeout_seconds": 60,
                       "stream_output": True, "finished_job_ttl": None},
}


@dataclass
class BuildOptions:
    entrypoint: str                       # path/to/flow.py:function
    name: str
    output: Optional[Path] = None
    description: Optional[str] = None
    version: Optional[str] = None
    tags: list[str] = field(default_factory=list)
    work_queue: Optional[str] = None
    pool: Optional[str] = None
    cron: Optional[str] = None
    interval: Optional[float] = None
    rrule: Optional[str] = None
    timezone: Optional[str] = None
    params: list[str] = field(default_factory=list)     # k=JSON
    params_json: Optional[str] = None
    infra: Optional[str] = None           # process | docker-container | kubernetes-job
    infra_block: Optional[str] = None     # type/name
    storage_block: Optional[str] = None   # type/name[/path]
    path: Optional[str] = None
    overrides: list[str] = field(default_factory=list)  # k=v (dotted keys kept flat)


BlockReader = Callable[[str, str], dict[str, Any]]   # (slug, name) → block document JSON


def split_entrypoint(entrypoint: str) -> tuple[Path, str]:
    file, sep, function = entrypoint.rpartition(":")
    if not sep or not file or not function:
        raise ReconcileError(f"{entrypoint}: the entrypoint must be path/to/flow.py:function")
    path = Path(file)
    if not path.is_file():
        raise ReconcileError(f"{file}: no such flow file")
    return path, function


def parameters(opts: BuildOptions) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if opts.params_json is not None:
        try:
            out = json.loads(opts.params_json)
        except ValueError as exc:
            raise ReconcileError(f"--params: not JSON: {exc}") from None
        if not isinstance(out, dict):
            raise ReconcileError("--params: must be a JSON object of parameter names to values")
    for item in opts.params:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ReconcileError(f"--param {item!r}: expected NAME=VALUE")
        try:
            out[key] = json.loads(raw)
        except ValueError as exc:
            if raw[:1] in "{[\"" or raw in ("true", "false", "null"):
                raise ReconcileError(f"--param {key}: not valid JSON ({exc}): {raw}") from None
            out[key] = raw  # a bare word is a string, as Prefect's own build reads it
    return out


def schedule(opts: BuildOptions, now: dt.datetime) -> list[dict[str, Any]]:
    given = [x for x in (opts.cron, opts.interval, opts.rrule) if x is not None]
    if len(given) > 1:
        raise ReconcileError("give only one of --cron, --interval and --rrule")
    if opts.cron is not None:
        sched: dict[str, Any] = {"cron": opts.cron, "timezone": opts.timezone, "day_or": True}
    elif opts.interval is not None:
        sched = {"interval": float(opts.interval), "anchor_date": now.isoformat(), "timezone": opts.timezone or "UTC"}
    elif opts.rrule is not None:
        sched = {"rrule": opts.rrule, "timezone": opts.timezone}
    else:
        return []
    return [{"schedule": sched, "active": True}]


def block_section(slug: str, name: str, read_block: BlockReader) -> dict[str, Any]:
    doc = read_block(slug, name)
    data = dict(doc.get("data") or {})
    return {**data, "_block_document_id": doc["id"], "_block_document_name": name, "_is_anonymous": False,
            "block_type_slug": slug, "_block_type_slug": slug}


def document(opts: BuildOptions, read_block: BlockReader, cwd: Path,
             now: Optional[dt.datetime] = None) -> tuple[dict[str, Any], flowscan.FlowInfo]:
    """The manifest as a dict, in Prefect 2.20's key order, and what the code analysis found."""
    now = now or dt.datetime.now(dt.timezone.utc)
    file, function = split_entrypoint(opts.entrypoint)
    info = flowscan.scan(file, function)
    if opts.infra and opts.infra_block:
        raise ReconcileError("give either --infra or --infra-block, not both")
    if opts.infra_block:
        slug, _, name = opts.infra_block.partition("/")
        infrastructure = block_section(slug, name, read_block)
    else:
        kind = opts.infra or "process"
        if kind not in ANONYMOUS_INFRA:
            raise ReconcileError(f"--infra {kind}: expected one of {', '.join(ANONYMOUS_INFRA)}")
        infrastructure = {**ANONYMOUS_INFRA[kind], "block_type_slug": kind, "_block_type_slug": kind}
    storage = None
    path = opts.path
    if opts.storage_block:
        slug, _, rest = opts.storage_block.partition("/")
        name, _, sub = rest.partition("/")
        if sub and path:
            raise ReconcileError("give the path either in --storage-block type/name/path or in --path, not both")
        storage = block_section(slug, name, read_block)
        path = path or sub
    elif path is None:
        path = str(cwd.resolve())   # Prefect 2 runs code without storage from the build directory
    try:
        entry = f"{file.resolve().relative_to(cwd.resolve()).as_posix()}:{function}"
    except ValueError:
        raise ReconcileError(f"{file}: the flow file must be inside the current directory ({cwd})") from None
    overrides = {}
    for item in opts.overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ReconcileError(f"--override {item!r}: expected KEY=VALUE")
        overrides[key] = value
    return {
        "name": opts.name, "description": opts.description, "version": opts.version or info.version,
        "work_queue_name": opts.work_queue or "default", "work_pool_name": opts.pool, "tags": list(opts.tags),
        "parameters": parameters(opts), "schedule": None, "schedules": schedule(opts, now),
        "is_schedule_active": None, "infra_overrides": overrides,
        "flow_name": info.flow_name, "manifest_path": None, "infrastructure": infrastructure, "storage": storage,
        "path": path, "entrypoint": entry, "parameter_openapi_schema": flowscan.manifest_schema(info.parameter_openapi_schema),
        "timestamp": now.isoformat(), "triggers": [], "enforce_parameter_schema": None,
    }, info


def write(opts: BuildOptions, read_block: BlockReader, cwd: Path,
          validate: Callable[[Manifest], None]) -> tuple[Path, list[str]]:
    """Render, validate (the caller's check: plan's own), keep an existing user part, write. Returns the path and warnings."""
    doc, info = document(opts, read_block, cwd)
    out = opts.output or cwd / f"{opts.name}-deployment.yaml"
    text = writer.render(doc)
    if out.is_file():
        from ..manifests.refresh import keep_user_part
        text = keep_user_part(out.read_text(encoding="utf-8"), text, str(out), version=doc["version"],
                              force_version=opts.version is not None)
    manifest = parse(text.encode(), out, str(out))
    validate(manifest)  # the same validation plan does: schedules, parameters, …
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out, list(info.warnings)
