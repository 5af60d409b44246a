"""What a Prefect 2 manifest's fields become on a Prefect 3 server (pure functions, no I/O).

Prefect 3 has no infrastructure blocks: a deployment runs in a work pool, and the block's settings plus the
manifest's `infra_overrides` become the deployment's `job_variables`, nested (`{"env.FOO": "bar"}` →
`{"env": {"FOO": "bar"}}`; 3.x stores a dotted key as given and never applies it).  The 2.x storage types 3.x
lacks become pull steps: `s3`/`gcs`/`azure` a `pull_from_remote_storage` of `s3://`/`gcs://`/`az://` + bucket path
+ path, `github`/`gitlab-repository` a `git_clone`; credentials only as Secret block templates, never a value.
Used by the 3.x adapter and by `reconcile migrate`.
"""
from __future__ import annotations

import copy
import hashlib
import json
import re
from typing import Any, Optional

from ..manifests.blocks import MASK, BlockRef
from ..manifests.confine import Escapes, confine

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
# storage blocks a 3.x worker still reads through `storage_document_id` (the type is registered there)
STORAGE_AS_BLOCK = frozenset({"local-file-system", "remote-file-system", "smb"})
# 2.x storage blocks whose code a 3.x worker pulls with a step (no block document): the URL scheme of each
REMOTE_SCHEMES = {"s3": "s3", "gcs": "gcs", "azure": "az"}
GIT_STORAGE = frozenset({"github", "gitlab-repository"})
# the settings a pull step needs, kept from a named block's manifest (none of them a secret field)
PULL_SETTINGS = {"s3": ("bucket_path",), "gcs": ("bucket_path",), "azure": ("bucket_path",),
                 "github": ("repository", "reference"), "gitlab-repository": ("repository", "reference")}
STEPS = "prefect.deployments.steps."
# the line 3.x adds to an rrule without a start
DEFAULT_DTSTART = "DTSTART:20200101T000000"


class Unrepresentable(ValueError):
    """A manifest value Prefect 3 cannot hold; `field` names the manifest key it came from."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _a(word: str) -> str:
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
            f"{_a(slug)} infrastructure block has no Prefect 3 work pool type reconcile maps it to (it maps "
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


def storage_kind(storage: Optional[BlockRef]) -> Optional[str]:
    """None (no storage), "block" (the 3.x worker reads the block), "remote" (a pull_from_remote_storage step),
    "git" (a git_clone step), else an error naming what 3.x cannot do with the block."""
    if storage is None:
        return None
    if storage.slug in STORAGE_AS_BLOCK:
        return "block"
    if storage.slug in REMOTE_SCHEMES:
        return "remote"
    if storage.slug in GIT_STORAGE:
        return "git"
    raise Unrepresentable("storage", (
        f"{_a(storage.slug)} storage block is not registered on Prefect 3 servers and has no pull step reconcile "
        f"translates it to (it translates {', '.join(sorted(STORAGE_AS_BLOCK | set(REMOTE_SCHEMES) | GIT_STORAGE))})"))


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


def pull_settings(slug: str, data: dict[str, Any]) -> Optional[dict[str, Any]]:
    """The settings of a 2.x storage block that a pull step needs and that are no secret (PULL_SETTINGS), or
    None for a block type without pull step.  An azure block's container is a secret field: only whether it
    is set is kept (`has_container`), to refuse it."""
    keys = PULL_SETTINGS.get(slug)
    if keys is None:
        return None
    kept = {key: copy.deepcopy(data[key]) for key in keys if data.get(key) not in (None, "")}
    if slug == "azure" and (data.get("azure_storage_container") or data.get("has_container")):
        kept["has_container"] = True
    return kept


def pull_steps(storage: BlockRef, path: Optional[str], secrets: Optional[dict[str, str]] = None) -> list[dict[str, Any]]:
    """The pull steps a 3.x worker runs for a 2.x `s3`/`gcs`/`azure`/`github`/`gitlab-repository` block and the
    manifest's `path`: they end in the directory the entrypoint is relative to (3.x changes into the last
    step's `directory`).  `secrets`: setting → Secret block name (reconcile.yaml's prefect3.storage_secrets)."""
    templates = secret_templates(secrets or {})
    data = pull_settings(storage.slug, storage.data or {}) or {}
    if storage.slug in GIT_STORAGE:
        sub = subdirectory(path, in_bucket=False)
        steps = [git_clone_step(data, templates, step_id="clone" if sub else None)]
        return steps + ([working_directory("{{ clone.directory }}/" + sub)] if sub else [])
    scheme, root = remote_location(storage.slug, data, path)
    # pull_from_remote_storage copies the location into ./<bucket>/<path> and returns that directory
    return [remote_storage_step(f"{scheme}://{root}", templates)]


def remote_location(slug: str, data: dict[str, Any], path: Optional[str]) -> tuple[str, str]:
    """(scheme, bucket path joined with the manifest's `path`) of a 2.x `s3`/`gcs`/`azure` block: where the
    2.x block kept the code, the upload target and the URL of the pull step."""
    if data.get("has_container") or data.get("azure_storage_container"):
        raise Unrepresentable("storage", (
            "this azure block names its container in azure_storage_container, a secret field reconcile does not "
            "read; put the container first in bucket_path (container/folder) and leave azure_storage_container "
            "unset"))
    bucket = str(data.get("bucket_path") or "").strip().strip("/")
    if not bucket:
        raise Unrepresentable("storage", f"this {slug} storage block has no bucket_path")
    sub = subdirectory(path)
    return REMOTE_SCHEMES[slug], f"{bucket}/{sub}" if sub else bucket


def subdirectory(path: Optional[str], in_bucket: bool = True) -> str:
    """The manifest's `path` as a directory inside the code's location ("" for its root), or Unrepresentable.
    In a bucket a leading `/` is the bucket path's root (as 2.x read it); in a git checkout it is refused."""
    text = (path or "").strip()
    text = text.lstrip("/") if in_bucket else text
    try:
        inside = confine(".", text or None)
    except Escapes as exc:
        raise Unrepresentable("path", f"{exc.path!r} leaves its storage location (no '..')") from None
    return "" if inside == "." else inside


def secret_templates(secrets: dict[str, str]) -> dict[str, str]:
    """Setting → `{{ prefect.blocks.secret.NAME }}`: the worker resolves each Secret block when it pulls."""
    return {key: "{{ prefect.blocks.secret." + name + " }}" for key, name in sorted(secrets.items())}


def remote_storage_step(url: str, settings: dict[str, Any], step_id: Optional[str] = None) -> dict[str, Any]:
    step: dict[str, Any] = {"id": step_id} if step_id else {}
    step["url"] = url
    step.update(settings)
    return {STEPS + "pull_from_remote_storage": step}


def git_clone_step(data: dict[str, Any], templates: dict[str, str], step_id: Optional[str] = None) -> dict[str, Any]:
    """`git_clone` of a 2.x github / gitlab-repository block: `repository`, `branch` = its `reference`; a token
    only as a Secret block template (`access_token` in storage_secrets), never from a URL."""
    repository = data.get("repository") or data.get("repository_url") or data.get("url")
    if not isinstance(repository, str) or not repository.strip():
        raise Unrepresentable("storage", "this git storage block names no repository")
    userinfo = re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://([^/@]+)@", repository)
    if userinfo and userinfo.group(1) != "git":     # a token in the URL: never copied, never shown
        raise Unrepresentable("storage", "the repository URL holds credentials; name a Secret block for the token "
                                         "under prefect3.storage_secrets (access_token) in reconcile.yaml")
    step: dict[str, Any] = {"id": step_id} if step_id else {}
    step["repository"] = repository
    branch = data.get("reference") or data.get("branch")
    if branch:
        step["branch"] = str(branch)
    if "access_token" in templates:
        step["access_token"] = templates["access_token"]
    return {STEPS + "git_clone": step}


def working_directory(directory: str) -> dict[str, Any]:
    return {STEPS + "set_working_directory": {"directory": directory}}


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
