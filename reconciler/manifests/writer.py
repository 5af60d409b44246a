"""Writing a manifest in exactly the layout Prefect 2.20's `deployment build` writes.

Header comment, the user's keys (with the work queue comment), the `###` marker
block, then the generated keys, each dumped by PyYAML with the same settings
Prefect uses (`sort_keys=False`, block style), so our files and Prefect's are
byte-for-byte alike.
"""
from __future__ import annotations

import io
from typing import Any

import yaml

# Prefect 2.20's Deployment._editable_fields, in order (infrastructure joins them when anonymous).
EDITABLE = ("name", "description", "version", "work_queue_name", "work_pool_name", "tags", "parameters",
            "schedule", "schedules", "is_schedule_active", "infra_overrides")
# The rest of Deployment's fields, in the model's order (job_variables is written as infra_overrides).
GENERATED = ("flow_name", "manifest_path", "infrastructure", "storage", "path", "entrypoint",
             "parameter_openapi_schema", "timestamp", "triggers", "enforce_parameter_schema")
COMMENTS = {"work_queue_name": "The work queue that will handle this deployment's runs"}
MARKER_BLOCK = "\n###\n### DO NOT EDIT BELOW THIS LINE\n###\n"


def _dump(value: dict[str, Any]) -> str:
    return yaml.dump(value, sort_keys=False, Dumper=yaml.Dumper)


def header(flow_name: str) -> str:
    return f"###\n### A complete description of a Prefect Deployment for flow {flow_name!r}\n###\n"


def user_part(doc: dict[str, Any], infrastructure_above: bool) -> str:
    out = io.StringIO()
    keys = EDITABLE + (("infrastructure",) if infrastructure_above else ())
    for key in keys:
        if key not in doc:
            continue
        if key in COMMENTS:
            out.write(f"# {COMMENTS[key]}\n")
        out.write(_dump({key: doc[key]}))
    return out.getvalue()


def generated_part(doc: dict[str, Any], infrastructure_above: bool) -> str:
    keys = [k for k in GENERATED if k in doc and not (k == "infrastructure" and infrastructure_above)]
    return _dump({k: doc[k] for k in keys})


def render(doc: dict[str, Any]) -> str:
    """A whole manifest: `doc` holds every key; anonymous infrastructure goes above the marker."""
    infra = doc.get("infrastructure") or {}
    above = not infra.get("_block_document_id")
    return header(doc["flow_name"]) + user_part(doc, above) + MARKER_BLOCK + generated_part(doc, above)
