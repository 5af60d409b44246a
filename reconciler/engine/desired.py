"""Manifests → Desired: each deployment as the API should hold it (no I/O but finding the code root).

Validation that needs no server happens here, for every manifest, before any
write: duplicate identities, schedules, parameters against the flow's schema,
blocks that cannot be recreated.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

import jsonschema

from ..errors import ManifestError, ManifestErrors, ReconcileError
from ..manifests import coderoot, names, schedules
from ..manifests.blocks import BlockRef, masked_key
from ..manifests.manifest import BlockSpec, Manifest
from ..prefect.v3fields import infrastructure_settings
from ..prefect.v3pull import pull_settings

# The fields compared between desired and live, in the order plans show them (`pull_steps` only on Prefect 3:
# what a storage block 3.x lacks becomes, prefect/v3fields).
FIELDS = (
    "description", "version", "work_queue_name", "work_pool_name", "tags", "parameters",
    "schedules", "is_schedule_active", "infra_overrides", "infrastructure", "storage", "pull_steps",
    "path", "entrypoint", "manifest_path", "parameter_openapi_schema", "enforce_parameter_schema",
)


@dataclass(frozen=True)
class Desired:
    identity: str                      # flow_name/name
    flow_name: str
    name: str
    manifest: Optional[str]            # the file it came from, as displayed
    fields: dict[str, Any]             # comparable values, keyed by FIELDS
    infrastructure: Optional[BlockRef]
    storage: Optional[BlockRef]
    lines: dict[str, int] = field(default_factory=dict)   # field → line in the manifest
    warnings: tuple[str, ...] = ()
    bundle_dir: Optional[str] = field(default=None, compare=False)  # its code root (manifests/coderoot.py)
    code_problem: Optional[str] = field(default=None, compare=False)  # why the entrypoint is not in bundle_dir
    # Prefect 3: the storage a pull step reads the code from, with no block document (the 2.x block's settings
    # that are no secret): the code is uploaded there with the credentials of the process running reconcile
    pull_storage: Optional[BlockRef] = None

    def to_json(self, reveal: bool = False) -> dict[str, Any]:
        """Secrets masked as `(sensitive)` (manifests/secrets.py) unless reveal; a saved plan keeps their digests."""
        from ..manifests.secrets import seal
        raw = {
            "identity": self.identity, "flow_name": self.flow_name, "name": self.name,
            "manifest": self.manifest, "fields": self.fields, "lines": self.lines,
            "infrastructure": self.infrastructure.to_json() if self.infrastructure else None,
            "storage": self.storage.to_json() if self.storage else None,
            "warnings": list(self.warnings),
            # the code directory matters only where code is uploaded (and is a machine path)
            **({"bundle_dir": self.bundle_dir} if self.storage is not None or self.pull_storage is not None else {}),
            **({"pull_storage": self.pull_storage.to_json()} if self.pull_storage is not None else {}),
        }
        return raw if reveal else seal(raw)[0]

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> "Desired":
        return cls(
            identity=raw["identity"], flow_name=raw["flow_name"], name=raw["name"],
            manifest=raw.get("manifest"), fields=raw["fields"], lines=raw.get("lines", {}),
            infrastructure=BlockRef.from_json(raw["infrastructure"]) if raw.get("infrastructure") else None,
            storage=BlockRef.from_json(raw["storage"]) if raw.get("storage") else None,
            warnings=tuple(raw.get("warnings", ())), bundle_dir=raw.get("bundle_dir"),
            pull_storage=BlockRef.from_json(raw["pull_storage"]) if raw.get("pull_storage") else None,
        )


def resolve(manifests: Iterable[Manifest], bundle_root: Optional[Path] = None) -> list[Desired]:
    """Turn loaded manifests into Desired values; raise ManifestErrors listing every problem.

    Each one's code is the directory its entrypoint is relative to (coderoot.locate), or `bundle_root`
    (reconcile.yaml's) for all of them. Each manifest is let go once resolved (the caller may hand them
    over one at a time)."""
    errors: list[ReconcileError] = []
    out: list[Desired] = []
    seen: dict[str, str] = {}    # identity → where it was first declared (file:line)
    looked: dict = {}            # code roots found (coderoot.locate): once per folder and entrypoint file
    for manifest in manifests:
        first = seen.get(manifest.identity)
        if first is not None:
            errors.append(manifest.error(("name",), (
                f"deployment {manifest.identity!r} is also declared in "
                f"{first}; an identity (flow_name/name) may appear once")))
            continue
        seen[manifest.identity] = f"{manifest.display}:{manifest.line_of('name')}"
        try:
            out.append(_one(manifest, bundle_root, looked))
        except ManifestError as exc:
            errors.append(exc)
    if errors:
        raise ManifestErrors(errors)
    return out


def _one(m: Manifest, bundle_root: Optional[Path] = None, looked: Optional[dict] = None) -> Desired:
    spec = m.spec
    for path, why in names.problems(spec):   # Prefect's name rules, and no text that would garble a plan
        raise m.error(path, why)
    warnings: list[str] = []
    infrastructure = _block(m, "infrastructure", spec.infrastructure)
    storage = _block(m, "storage", spec.storage)
    if infrastructure is None:
        # Prefect 2 uses an anonymous Process when a manifest names no infrastructure.
        infrastructure = BlockRef("process", None, {"type": "process", "stream_output": True})
    schema = _parameter_schema(m)
    _check_parameters(m, spec.parameters, schema)
    if spec.triggers:
        warnings.append(f"{m.display}:{m.line_of('triggers')}: triggers are not reconciled; "
                        "manage automations separately")
    paused = spec.is_schedule_active is False
    fields: dict[str, Any] = {
        "description": spec.description,
        "version": spec.version,
        "work_queue_name": spec.work_queue_name,
        "work_pool_name": spec.work_pool_name,
        "tags": sorted(set(spec.tags)),
        "parameters": copy.deepcopy(spec.parameters),
        "schedules": _schedules(m),
        "is_schedule_active": not paused,
        "infra_overrides": spec.overrides,
        "infrastructure": infrastructure.key,
        "storage": storage.key if storage else None,
        "path": spec.path,
        "entrypoint": spec.entrypoint,
        "manifest_path": spec.manifest_path,
        "parameter_openapi_schema": schema,
        "enforce_parameter_schema": bool(spec.enforce_parameter_schema),
    }
    lines = {key: m.line_of(key) for key in FIELDS if (key,) in m.located.positions}
    for alias, key in (("schedule", "schedules"), ("job_variables", "infra_overrides")):
        if (alias,) in m.located.positions and key not in lines:
            lines[key] = m.line_of(alias)
    code = coderoot.locate(m, bundle_root, looked)
    return Desired(
        identity=m.identity, flow_name=spec.flow_name, name=spec.name, manifest=m.display,
        fields=fields, infrastructure=infrastructure, storage=storage, lines=lines,
        warnings=tuple(warnings), bundle_dir=str(code.directory), code_problem=code.problem,
    )


def _block(m: Manifest, key: str, block: Optional[BlockSpec]) -> Optional[BlockRef]:
    if block is None:
        return None
    slug = block.slug
    assert slug is not None  # manifest.parse guarantees it
    if block.named:
        # what a Prefect 3 pull step needs of the block's settings, none of them a secret (the server has them)
        # and what a Prefect 3 work pool takes of an infrastructure block's (the pool's job variables)
        return BlockRef(slug, block.document_name, pull_settings(slug, block.data) if key == "storage"
                        else infrastructure_settings(slug, block.data))
    data = block.data
    masked = masked_key(data)
    if masked is not None:
        raise m.error((key,) + masked, (
            f"this inline (anonymous) {slug} block has secrets masked by Prefect ('**********') "
            f"and cannot be recreated; save it as a named block and reference it by `_block_document_name`"))
    return BlockRef(slug, None, data)


def _schedules(m: Manifest) -> list[dict[str, Any]]:
    spec = m.spec
    entries: list[tuple[tuple, dict[str, Any], Optional[bool]]] = []
    if spec.schedules:
        entries = [(("schedules", i, "schedule"), e.schedule, e.active) for i, e in enumerate(spec.schedules)]
    elif spec.schedule is not None:
        entries = [(("schedule",), spec.schedule, spec.is_schedule_active)]
    out = []
    for path, raw, active in entries:
        try:
            canonical = schedules.validate(raw)
        except schedules.ScheduleInvalid as exc:
            raise m.error(path + ((exc.key,) if exc.key else ()), str(exc)) from None
        out.append({"schedule": canonical, "active": True if active is None else active})
    return sorted(out, key=schedules.sort_key)


def _parameter_schema(m: Manifest) -> Optional[dict[str, Any]]:
    schema = m.spec.parameter_openapi_schema
    if schema is None:
        return None
    return without_nulls(copy.deepcopy(schema))


def without_nulls(schema: dict[str, Any]) -> dict[str, Any]:
    """`required: null` / `definitions: null` as Prefect writes them mean "none"; the API refuses a null
    `required` when it enforces the schema, so both sides are compared and sent without them."""
    return {k: v for k, v in schema.items() if v is not None}


def _check_parameters(m: Manifest, parameters: dict[str, Any], schema: Optional[dict[str, Any]]) -> None:
    if not schema or not parameters:
        return
    props = schema.get("properties") or {}
    for key in parameters:
        if "properties" in schema and key not in props:
            raise m.error(("parameters", key), (
                f"not a parameter of flow {m.spec.flow_name!r} (its parameters: {', '.join(props) or 'none'})"))
    check = {k: v for k, v in schema.items() if k not in ("required",) and v is not None}
    try:
        validator = jsonschema.Draft7Validator(check)
        error = next(iter(sorted(validator.iter_errors(parameters), key=lambda e: list(e.path))), None)
    except (jsonschema.SchemaError, jsonschema.exceptions.RefResolutionError) as exc:
        raise m.error(("parameter_openapi_schema",), f"not a valid JSON Schema: {exc.message if hasattr(exc, 'message') else exc}") from None
    if error is not None:
        raise m.error(("parameters",) + tuple(error.path), f"does not match the flow's parameter schema: {error.message}")
