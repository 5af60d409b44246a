"""One `*-deployment.yaml`, parsed and validated: the `Manifest` stage.

The models follow the file format of `prefect deployment build` (Prefect 2.0 to
2.20), both the old shape (`schedule` + `is_schedule_active`) and 2.19+'s
(`schedules` list, `timestamp`, `triggers`, `enforce_parameter_schema`).  Keys
the format does not have are rejected, so a typo never passes silently.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import ManifestError
from . import paramschema, yamlpos

MARKER = "### DO NOT EDIT BELOW THIS LINE"


class BlockSpec(BaseModel):
    """A block as a manifest embeds it: bookkeeping keys plus the block's own data."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)

    document_id: Optional[str] = Field(None, alias="_block_document_id")
    document_name: Optional[str] = Field(None, alias="_block_document_name")
    is_anonymous: Optional[bool] = Field(None, alias="_is_anonymous")
    type_slug: Optional[str] = Field(None, alias="_block_type_slug")
    block_type_slug: Optional[str] = None

    @property
    def slug(self) -> Optional[str]:
        return self.type_slug or self.block_type_slug or _infra_slug(self.data.get("type"))

    @property
    def data(self) -> dict[str, Any]:
        """The block's own fields (what the server stores in the block document)."""
        return dict(self.model_extra or {})

    @property
    def named(self) -> bool:
        return bool(self.document_name) and not self.is_anonymous


def _infra_slug(value: Any) -> Optional[str]:
    # Prefect 2.1 wrote some infrastructure with only `type:`; the slug equals it.
    return value if isinstance(value, str) and value else None


class ScheduleEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    schedule: dict[str, Any]
    active: Optional[bool] = True


class DeploymentFile(BaseModel):
    """Every key of the manifest format, above and below the marker."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # the user's part (above the marker)
    name: str
    description: Optional[str] = None
    version: Optional[str] = None
    work_queue_name: Optional[str] = "default"
    work_pool_name: Optional[str] = None
    tags: list[str] = Field(default_factory=list)
    parameters: dict[str, Any] = Field(default_factory=dict)
    schedule: Optional[dict[str, Any]] = None
    schedules: Optional[list[ScheduleEntry]] = None
    is_schedule_active: Optional[bool] = None
    infra_overrides: Optional[dict[str, Any]] = None
    job_variables: Optional[dict[str, Any]] = None  # the newer name Prefect 2.20 also reads
    infrastructure: Optional[BlockSpec] = None
    # the generated part (below the marker)
    flow_name: str
    manifest_path: Optional[str] = None
    storage: Optional[BlockSpec] = None
    path: Optional[str] = None
    entrypoint: Optional[str] = None
    parameter_openapi_schema: Optional[dict[str, Any]] = None
    timestamp: Optional[str] = None
    triggers: list[dict[str, Any]] = Field(default_factory=list)
    enforce_parameter_schema: Optional[bool] = None

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> Any:
        # `version: 1` and `version: 0.1` are common hand edits; Prefect stores text.
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        return value

    @property
    def identity(self) -> str:
        return f"{self.flow_name}/{self.name}"

    @property
    def overrides(self) -> dict[str, Any]:
        return dict(self.infra_overrides or self.job_variables or {})


@dataclass(frozen=True)
class Manifest:
    """A loaded manifest: where it is, what it says, and where each value sits."""

    path: Path            # the file on disk
    display: str          # the path as printed (relative to the working directory when below it)
    spec: DeploymentFile
    located: yamlpos.Located     # where each value sits (its `data` is None: the values are in `spec`)
    marker_line: Optional[int]   # 1-based line of `### DO NOT EDIT BELOW THIS LINE`, if present

    @property
    def identity(self) -> str:
        return self.spec.identity

    def error(self, path: tuple, message: str) -> ManifestError:
        return self.located.error(path, message)

    def line_of(self, key: str) -> int:
        return self.located.where((key,))[0]

    def above_marker(self, key: str) -> bool:
        return self.marker_line is None or self.line_of(key) < self.marker_line


_MARKER_RE = re.compile(rb"^###\s*DO NOT EDIT BELOW THIS LINE\s*$", re.MULTILINE)


def find_marker(raw: bytes) -> Optional[int]:
    match = _MARKER_RE.search(raw)
    if match is None:
        return None
    return raw.count(b"\n", 0, match.start()) + 1


def parse(raw: bytes, path: Path, display: str) -> Manifest:
    """Parse and validate one manifest's bytes; raise ManifestError at the first problem."""
    located = yamlpos.load(raw, display)
    data = located.data
    if not isinstance(data, dict):
        raise located.error((), "a deployment manifest must be a mapping of keys to values")
    for key in ("parameters", "tags", "triggers"):
        if key in data and data[key] is None:
            data[key] = {} if key == "parameters" else []
    try:
        spec = DeploymentFile.model_validate(data)
    except ValidationError as exc:
        raise _first_error(exc, located) from None
    # the spec holds the values: the Manifest keeps the positions, not a second copy of the document
    located = dataclasses.replace(located, data=None)
    _share_fields_sets(spec)
    manifest = Manifest(path=path, display=display, spec=spec, located=located, marker_line=find_marker(raw))
    if spec.schedule is not None and spec.schedules:
        raise manifest.error(("schedule",), "set either `schedule` (Prefect < 2.19) or `schedules`, not both")
    if spec.infra_overrides is not None and spec.job_variables is not None:
        raise manifest.error(("job_variables",), "set either infra_overrides or job_variables, not both")
    for key in ("infrastructure", "storage"):
        block = getattr(spec, key)
        if block is not None and not block.slug:
            raise manifest.error((key,), "block has no type: add `_block_type_slug` (e.g. `process`)")
    if spec.parameter_openapi_schema is not None:
        found = paramschema.problem(spec.parameter_openapi_schema)
        if found is not None:
            raise manifest.error(("parameter_openapi_schema",) + found[0], found[1])
    return manifest


_FIELDS_SETS: dict[frozenset, set] = {}


def _share_fields_sets(model: BaseModel) -> None:
    """Manifests of one shape share one set of the keys they set.

    pydantic keeps a new set of the fields set on every model (about 1 KB for a manifest, a quarter of
    what its spec costs); 10,000 manifests have a handful of shapes.  The models are frozen, so the set
    is never changed in place (model_copy copies it before updating it)."""
    for value in (model.infrastructure, model.storage, *(model.schedules or ())) if isinstance(model, DeploymentFile) else ():
        if value is not None:
            _share_fields_sets(value)
    key = frozenset(model.__pydantic_fields_set__)
    shared = _FIELDS_SETS.get(key)
    if shared is None:
        if len(_FIELDS_SETS) >= 1024:
            return
        shared = _FIELDS_SETS[key] = set(key)
    object.__setattr__(model, "__pydantic_fields_set__", shared)


def _first_error(exc: ValidationError, located: yamlpos.Located,
                 unknown: str = "unknown key (not part of the Prefect 2 deployment format)") -> ManifestError:
    err = exc.errors()[0]
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith(("function-", "union["))))
    kind = err["type"]
    if kind == "extra_forbidden":
        message = unknown
    elif kind == "missing":
        message = "required key is missing"
    else:
        message = f"{err['msg']} (got {_short(err.get('input'))})"
    return located.error(loc, message)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
