"""Where a deployment's code comes from on a Prefect 3 server (pure functions, no I/O).

Storage blocks 3.x still registers are read by its workers through `storage_document_id`.  The 2.x storage
types 3.x lacks become pull steps: `s3`/`gcs`/`azure` a `pull_from_remote_storage` of `s3://`/`gcs://`/`az://`
+ bucket path + path, `github`/`gitlab-repository` a `git_clone`; credentials only as Secret block templates,
never a value.  Used by the 3.x adapter, the upload (bundles/locations) and `reconcile migrate`.
"""
from __future__ import annotations

import copy
import re
from typing import Any, Optional

from ..manifests.blocks import BlockRef
from ..manifests.confine import Escapes, confine
from .v3fields import Unrepresentable, a_or_an

# storage blocks a 3.x worker still reads through `storage_document_id` (the type is registered there)
STORAGE_AS_BLOCK = frozenset({"local-file-system", "remote-file-system", "smb"})
# 2.x storage blocks whose code a 3.x worker pulls with a step (no block document): the URL scheme of each
REMOTE_SCHEMES = {"s3": "s3", "gcs": "gcs", "azure": "az"}
GIT_STORAGE = frozenset({"github", "gitlab-repository"})
# the settings a pull step needs, kept from a named block's manifest (none of them a secret field)
PULL_SETTINGS = {"s3": ("bucket_path",), "gcs": ("bucket_path",), "azure": ("bucket_path",),
                 "github": ("repository", "reference"), "gitlab-repository": ("repository", "reference")}
STEPS = "prefect.deployments.steps."


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
        f"{a_or_an(storage.slug)} storage block is not registered on Prefect 3 servers and has no pull step reconcile "
        f"translates it to (it translates {', '.join(sorted(STORAGE_AS_BLOCK | set(REMOTE_SCHEMES) | GIT_STORAGE))})"))


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
