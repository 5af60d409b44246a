"""`reconcile check`: does each manifest's generated part still match its flow code?

Compared in meaning (flow name, entrypoint, parameter names, required set,
types, defaults), not in the schema dialect of the Prefect and pydantic
versions that wrote the file; `--strict` compares the schema exactly.  The code
is read, never imported.
"""
from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ..errors import ReconcileError
from ..manifests import coderoot
from ..manifests.confine import inside
from ..manifests.manifest import Manifest
from . import scan as flowscan


@dataclass(frozen=True)
class Finding:
    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.message}"


def flow_file(manifest: Manifest, bundle_root: Optional[Path] = None) -> tuple[Optional[Path], str]:
    """The flow file an entrypoint names, where Prefect finds it (manifests/coderoot.py: the nearest directory
    from the manifest's up to the repository root that holds it, or inside reconcile.yaml's `bundle_root`),
    and why not when it is found nowhere."""
    code = coderoot.locate(manifest, bundle_root)
    return code.flow_file, code.why or ""


def check_one(manifest: Manifest, root: Path, strict: bool = False,
              bundle_root: Optional[Path] = None) -> tuple[list[Finding], Optional[dict[str, Any]]]:
    """Findings for one manifest, and what the code says (None when the code could not be read).

    The flow file is found as Prefect finds it, from the manifest alone (`root` is no longer needed)."""
    spec = manifest.spec
    where = lambda key: manifest.line_of(key)  # noqa: E731 - a short lookup
    found: list[Finding] = []
    relative = spec.path and not posixpath.isabs(spec.path.replace("\\", "/"))
    if relative and not inside(spec.path, ".", follow_links=False):
        found.append(Finding(manifest.display, where("path"), "path", f"{spec.path!r} leaves the repository"))
    if not spec.entrypoint:
        found.append(Finding(manifest.display, where("flow_name"), "entrypoint",
                             "missing: the manifest names no flow code to check (a Prefect 2.0 manifest_path file?)"))
        return found, None
    if ":" not in spec.entrypoint:
        found.append(Finding(manifest.display, where("entrypoint"), "entrypoint",
                             f"{spec.entrypoint!r} is not path/to/flow.py:function"))
        return found, None
    file, why_not = flow_file(manifest, bundle_root)
    if file is None:
        found.append(Finding(manifest.display, where("entrypoint"), "entrypoint",
                             f"the file says {spec.entrypoint!r}, but {why_not}"))
        return found, None
    function = spec.entrypoint.rpartition(":")[2]
    try:
        info = flowscan.scan(file, function)
    except ReconcileError as exc:
        found.append(Finding(manifest.display, where("entrypoint"), "entrypoint", str(exc)))
        return found, None
    written = flowscan.manifest_schema(info.parameter_openapi_schema)   # as a manifest holds it
    code = {"flow_name": info.flow_name, "parameter_openapi_schema": written, "version": info.version}
    if spec.flow_name != info.flow_name:
        found.append(Finding(manifest.display, where("flow_name"), "flow_name",
                             f"the file says {spec.flow_name!r}, the code says {info.flow_name!r}"))
    schema = spec.parameter_openapi_schema or {}
    if strict:
        if schema != written:
            found.append(Finding(manifest.display, where("parameter_openapi_schema"), "parameter_openapi_schema",
                                 f"the file says {_short(schema)}, the code says {_short(written)}"))
    else:
        for difference in flowscan.schema_equivalent(schema, info.parameter_openapi_schema):
            found.append(Finding(manifest.display, where("parameter_openapi_schema"), "parameter_openapi_schema",
                                 difference))
    return found, code


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 100 else text[:97] + "..."
