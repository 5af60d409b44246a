"""What a Prefect 2 manifest's fields become on a Prefect 3 server (pure functions, no I/O).

Prefect 3 has no infrastructure blocks: a deployment runs in a work pool, and the block's settings plus the
manifest's `infra_overrides` become the deployment's `job_variables`, nested (`{"env.FOO": "bar"}` →
`{"env": {"FOO": "bar"}}`; 3.x stores a dotted key as given and never applies it).  Code storage: v3pull.
Used by the 3.x adapter and by `reconcile migrate`.
"""
from __future__ import annotations

import copy
import hashlib
import json
from typing import Any, Optional

from ..manifests.blocks import MASK, BlockRef

# 2.x infrastructure block type → the 3.x work pool type that runs the same way
POOL_TYPES = {"process": "process", "docker-container": "docker", "kubernetes-job": "kubernetes"}
# the name of the pool a manifest without one gets, per pool type (reconcile.yaml's `prefect3.work_pools`)
DEFAULT_POOLS = {"process": "reconcile-process", "docker": "reconcile-docker", "kubernetes": "reconcile-kubernetes"}
# the block fields each pool type's default job template takes as job variables (3.9.1's templates)
JOB_VARIABLES = {
    "process": ("command", "env", "labels", "name", "stream_output", "working_dir"),
    "docker": ("auto_remove", "command", "env", "image", "image_pull_policy", "labels", "mem_limit",
               "memswap_limit", "name", "network_mode", "networks", "privileged", "stream_output", "volumes"),
    "kubernetes": ("command", "env", "finished_job_ttl", "image", "image_pull_policy", "job_watch_timeout_seconds",
                   "labels", "name", "namespace", "pod_watch_timeout_seconds", "service_account_name",
                   "stream_output"),
}
# the line 3.x adds to an rrule without a start
DEFAULT_DTSTART = "DTSTART:20200101T000000"


class Unrepresentable(ValueError):
    """A manifest value Prefect 3 cannot hold; `field` names the manifest key it came from."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def a_or_an(word: str) -> str:
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"


def no_templates(field: str, value: Any) -> None:
    """Refuse `{{ … }}` / `{% … %}` in a value that goes into job variables or pull steps: a 3.x worker resolves
    them (a Secret block, a variable) where 2.x sent the text as it is, so a manifest could pull a secret into a
    URL or an environment it prints."""
    if isinstance(value, dict):
        for item in value.values():
            no_templates(field, item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            no_templates(field, item)
    elif isinstance(value, str) and ("{{" in value or "{%" in value):
        raise Unrepresentable(field, "a value holds '{{' or '{%', which a Prefect 3 worker resolves as a template "
                                     "(a secret, a variable) where Prefect 2 kept the text; remove it")


def pool_type(infrastructure: Optional[BlockRef]) -> str:
    slug = infrastructure.slug if infrastructure is not None else "process"
    found = POOL_TYPES.get(slug)
    if found is None:
        raise Unrepresentable("infrastructure", (
            f"{a_or_an(slug)} infrastructure block has no Prefect 3 work pool type reconcile maps it to (it maps "
            f"{', '.join(sorted(POOL_TYPES))}); set work_pool_name to a pool of the right type on the server"))
    return found


def job_variables(infrastructure: Optional[BlockRef], overrides: dict[str, Any],
                  notices: Optional[list[str]] = None) -> dict[str, Any]:
    """The block's settings the pool type takes, with `infra_overrides` nested over them."""
    kind = pool_type(infrastructure)
    base: dict[str, Any] = {}
    data = (infrastructure.data if infrastructure is not None else None) or {}
    for key in JOB_VARIABLES[kind]:
        value = data.get(key)
        if value in (None, {}, [], ""):
            continue
        if key == "command" and not isinstance(value, str):
            if notices is not None:
                notices.append(f"the {infrastructure.slug} block's command {value!r} is left out: a Prefect 3 "
                               "worker takes a command as one string")
            continue
        base[key] = copy.deepcopy(value)
    merged = _merge(base, nested(overrides))
    if isinstance(merged.get("env"), dict):
        merged["env"] = {str(k): _as_text(v) for k, v in merged["env"].items()}
    return merged


def nested(flat: dict[str, Any]) -> dict[str, Any]:
    """`{"env.FOO": "bar", "image": "x"}` → `{"env": {"FOO": "bar"}, "image": "x"}`."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        parts = str(key).split(".")
        target = out
        for part in parts[:-1]:
            if not isinstance(target.get(part), dict):
                target[part] = {}
            target = target[part]
        target[parts[-1]] = copy.deepcopy(value)
    return out


def flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """The inverse of `nested`: every leaf under its dotted path (an empty mapping is a leaf)."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flat(value, path + "."))
        else:
            out[path] = value
    return out


def without_nulls(schema: Any) -> Any:
    """A parameter schema without null-valued keys (2.x writes `definitions: null`, `required: null`; 3.x
    accepts them on create and then fails every run and PATCH of the deployment with a 500)."""
    if isinstance(schema, dict):
        return {k: without_nulls(v) for k, v in schema.items() if v is not None}
    if isinstance(schema, list):
        return [without_nulls(v) for v in schema]
    return schema


def schedule_slugs(entries: list[dict[str, Any]]) -> list[str]:
    """A slug per schedule, derived from the manifest: its kind and a digest of its settings (`cron-1a2b3c4d5e`),
    with `-2`, `-3` … for a repeat.  3.x keys a deployment's schedules by slug (`prefect deploy` matches them so)."""
    out: list[str] = []
    seen: dict[str, int] = {}
    for entry in entries:
        schedule = entry.get("schedule") or {}
        kind = next((k for k in ("cron", "interval", "rrule") if k in schedule), "schedule")
        digest = hashlib.sha256(json.dumps(schedule, sort_keys=True, default=str).encode()).hexdigest()[:10]
        base = f"{kind}-{digest}"
        seen[base] = seen.get(base, 0) + 1
        out.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return out


def rrule(text: str) -> str:
    """An rrule as compared: 3.x adds `DTSTART:20200101T000000` to one without a start."""
    lines = text.split("\n")
    if len(lines) > 1 and lines[0] == DEFAULT_DTSTART:
        return "\n".join(lines[1:])
    return text


def infrastructure_settings(slug: str, data: dict[str, Any]) -> Optional[dict[str, Any]]:
    """The settings of a named 2.x infrastructure block that its 3.x pool type takes as job variables (the
    manifest records them below the marker; 3.x has no such block), masked values left out; None for none
    (or a type with no pool)."""
    kind = POOL_TYPES.get(slug)
    if kind is None:
        return None
    kept = {key: _unmasked(data[key]) for key in JOB_VARIABLES[kind] if data.get(key) not in (None, {}, [], "")}
    return {key: value for key, value in kept.items() if value not in ({}, MASK)} or None


def _unmasked(value: Any) -> Any:
    """The value without the entries Prefect masked (a secret is never carried over)."""
    if isinstance(value, dict):
        return {k: _unmasked(v) for k, v in value.items() if not (isinstance(v, str) and MASK in v)}
    return copy.deepcopy(value)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)
