"""A Prefect 2 manifest → one deployment of a Prefect 3 `prefect.yaml` (pure: no I/O, no server).

`prefect deploy` (3.x) reads each `entrypoint` relative to the directory it runs in, the prefect.yaml's; a
worker reads it relative to the directory its `pull` steps end in.  So every entrypoint is rewritten
relative to the prefect.yaml's directory, and the pull steps end in the worker's copy of that directory:
where the 2.x deployment's code root was (`path` for `storage: null`, the block root plus `path`, the
bucket plus `path`, the clone plus `path`) less the code root's place below the prefect.yaml.
"""
from __future__ import annotations

import copy
import ntpath
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ..bundles.storage import READ_ONLY
from ..bundles.storage import target as storage_target
from ..errors import ReconcileError
from ..manifests.blocks import BlockRef, masked_key
from ..manifests.configmodel import Prefect3
from ..manifests.confine import Escapes, confine
from ..manifests.coderoot import entrypoint_file
from ..manifests.manifest import Manifest
from ..prefect import v3fields, v3pull
from .desired import Desired

STEPS = v3pull.STEPS
REMOTE = frozenset({"s3-bucket", "gcs-bucket"})   # the collections' bucket blocks (s3/gcs/azure: v3fields)
AGENT_POOL = "default-agent-pool"   # the 2.x agents' pool: 3.x workers never poll a prefect-agent pool
CREDENTIALS = ("aws_access_key_id", "aws_secret_access_key", "service_account_info", "credentials",
               "gcp_credentials", "azure_storage_connection_string", "azure_storage_account_key", "access_token",
               "azure_storage_client_secret", "settings")


@dataclass
class Migrated:
    """One deployment as prefect.yaml holds it, the pool it needs (name → type) and what to tell the user."""

    identity: str
    source: str                        # the manifest it came from, relative to the prefect.yaml
    deployment: dict[str, Any]
    pool: tuple[str, str]
    notices: list[str] = field(default_factory=list)


def deployment(m: Manifest, want: Desired, home: Path, settings: Prefect3, source: str) -> Migrated:
    """The prefect.yaml deployment of one manifest; `home` is the prefect.yaml's directory (absolute,
    resolved).  Raises ManifestError (one line naming the file and line) for what 3.x cannot hold."""
    spec, fields = m.spec, want.fields
    notices: list[str] = []
    where = m.display
    below = _below(m, want, home)
    entrypoint = _entrypoint(m, below)
    if want.code_problem:
        notices.append(f"{where}: the flow file is not there yet ({want.code_problem.split(': ', 2)[-1]}); "
                       "`prefect deploy` reads it")
    infrastructure = _infrastructure(m)
    try:
        kind = v3fields.pool_type(infrastructure)
        variables = v3fields.job_variables(infrastructure, spec.overrides, notices)
    except v3fields.Unrepresentable as exc:
        raise m.error((exc.field,), str(exc)) from None
    masked = masked_key(variables)
    if masked is not None:
        raise m.error(("infrastructure",), (
            f"job variable {'.'.join(map(str, masked))} holds a value Prefect masked ('**********'); a prefect.yaml "
            "needs the real value or a `{{ prefect.blocks.secret.NAME }}` template: set it in infra_overrides"))
    pool = spec.work_pool_name
    if pool in (None, AGENT_POOL):
        if pool == AGENT_POOL:
            notices.append(f"{where}: work pool {AGENT_POOL!r} is the 2.x agents' pool, which Prefect 3 workers "
                           "do not poll; the deployment goes to a pool of its infrastructure's type instead")
        pool = settings.work_pools.get(kind) or v3fields.DEFAULT_POOLS[kind]
    schedules = []
    for entry in fields["schedules"]:
        item = dict(entry["schedule"])
        # a legacy `schedule` is active; `is_schedule_active: false` pauses the deployment instead
        item["active"] = True if spec.schedule is not None else bool(entry["active"])
        schedules.append(item)
    if spec.triggers:
        notices.append(f"{where}:{m.line_of('triggers')}: triggers are not migrated; "
                       "add them to the deployment's `triggers` in prefect.yaml by hand")
    doc: dict[str, Any] = {
        "name": spec.name,
        "entrypoint": entrypoint,
        "description": spec.description,
        "version": spec.version,
        "tags": list(dict.fromkeys(spec.tags)),
        "parameters": copy.deepcopy(spec.parameters),
        "schedules": schedules,
        "paused": not fields["is_schedule_active"],
        "enforce_parameter_schema": bool(fields["enforce_parameter_schema"]),
        "work_pool": {"name": pool, "work_queue_name": spec.work_queue_name, "job_variables": variables},
        "pull": _pull(m, want, below, settings, notices),
    }
    return Migrated(want.identity, source, doc, (pool, kind), notices)


def _below(m: Manifest, want: Desired, home: Path) -> str:
    """The code root's place below the prefect.yaml's directory (POSIX, "" for the same directory)."""
    root = Path(want.bundle_dir) if want.bundle_dir else m.path.parent.resolve()
    try:
        rel = root.relative_to(home)
    except ValueError:
        raise m.error(_entry_key(m), (
            f"the code this entrypoint is relative to ({root}) is not inside {home}, where prefect.yaml goes; "
            "Prefect 3 reads every entrypoint relative to the prefect.yaml's directory: write it higher up")) from None
    text = rel.as_posix()
    return "" if text == "." else text


def _entry_key(m: Manifest) -> tuple:
    return ("entrypoint",) if ("entrypoint",) in m.located.positions else ("flow_name",)


def _entrypoint(m: Manifest, below: str) -> str:
    entrypoint = m.spec.entrypoint
    file = entrypoint_file(entrypoint)
    if entrypoint is None or file is None:
        what = "no entrypoint (a Prefect 2.0 manifest)" if entrypoint is None else f"entrypoint {entrypoint!r}"
        raise m.error(_entry_key(m), (
            f"{what} names no flow file (`path/to/flow.py:function`), which Prefect 3 deploys from: rebuild the "
            "manifest with `reconcile build`"))
    if posixpath.isabs(file) or ntpath.isabs(file) or (len(file) > 1 and file[1] == ":"):
        raise m.error(("entrypoint",), (
            f"{entrypoint!r} is an absolute path; Prefect 3 reads it relative to the prefect.yaml's directory "
            "on your machine and to the pulled code on the worker: make it relative"))
    try:
        inside = confine(".", file)
    except Escapes:
        raise m.error(("entrypoint",), f"{entrypoint!r} climbs out of its code root ('..')") from None
    function = entrypoint.rpartition(":")[2]
    return f"{posixpath.join(below, inside) if below else inside}:{function}"


def _infrastructure(m: Manifest) -> Optional[BlockRef]:
    block = m.spec.infrastructure
    if block is None:
        return None
    # a named block's settings as the manifest recorded them (Prefect 3 has no infrastructure blocks to read)
    return BlockRef(block.slug or "process", block.document_name if block.named else None, block.data)


def _pull(m: Manifest, want: Desired, below: str, settings: Prefect3, notices: list[str]) -> list[dict[str, Any]]:
    spec, storage = m.spec, want.storage
    if storage is None:
        return [_workdir(_strip_local(m, want.fields.get("path"), below))]
    data = (spec.storage.data if spec.storage is not None else None) or {}
    slug, path = storage.slug, (spec.path or "")
    if slug in v3pull.STORAGE_AS_BLOCK and not storage.anonymous:
        sub = _within_block(m, slug, data, path)
        step = {"id": "pull-code", "block_type_slug": slug, "block_document_name": storage.name}
        return [{STEPS + "pull_with_block": step}, _workdir(_join("{{ pull-code.directory }}", _strip(m, sub, below)))]
    if slug == "local-file-system":    # an anonymous block on the worker's own disk: the code is right there
        base = str(data.get("basepath") or "")
        if not base:
            raise m.error(("storage",), "this local-file-system block has no basepath")
        return [_workdir(_strip_local(m, _join(base, path.strip("/")) if not posixpath.isabs(path) else path, below))]
    secrets = v3pull.secret_templates(settings.storage_secrets.get(storage.key, {}))
    if not secrets and any(data.get(key) for key in CREDENTIALS):
        notices.append(f"{m.display}: storage {storage.key}: its credentials are not copied into prefect.yaml; the "
                       "worker uses its own, or name Secret blocks under prefect3.storage_secrets in reconcile.yaml")
    try:
        if slug in READ_ONLY:
            sub = v3pull.subdirectory(path, in_bucket=False)
            return [v3pull.git_clone_step(data, secrets, step_id="clone"),
                    v3pull.working_directory(_join("{{ clone.directory }}", _strip(m, sub, below)))]
        if slug in v3pull.REMOTE_SCHEMES:     # the rule the 3.x adapter follows (prefect/v3fields)
            protocol, root = v3pull.remote_location(slug, data, path)
            url = f"{protocol}://{_strip(m, root, below)}"
            return [v3pull.remote_storage_step(url, secrets, step_id="pull-code"),
                    v3pull.working_directory("{{ pull-code.directory }}")]
    except v3fields.Unrepresentable as exc:
        raise m.error((exc.field,), str(exc)) from None
    if slug in REMOTE or slug == "remote-file-system":
        if slug == "remote-file-system" and data.get("settings") and not secrets:
            raise m.error(("storage",), (
                "this anonymous remote-file-system block has settings (credentials) a prefect.yaml cannot carry; "
                "save it as a named block, or name Secret blocks under prefect3.storage_secrets in reconcile.yaml"))
        try:
            found = storage_target(slug, storage.key, data, path)
        except Escapes as exc:
            raise m.error(("path",), f"{exc}") from None
        except ReconcileError as exc:
            raise m.error(("storage",), str(exc)) from None
        settings_out: dict[str, Any] = {}
        endpoint = (found.options.get("client_kwargs") or {}).get("endpoint_url")
        if endpoint:
            settings_out["client_kwargs"] = {"endpoint_url": endpoint}
        settings_out.update(secrets)
        url = f"{found.protocol}://{_strip(m, found.root, below)}"
        return [v3pull.remote_storage_step(url, settings_out, step_id="pull-code"),
                v3pull.working_directory("{{ pull-code.directory }}")]
    raise m.error(("storage",), (
        f"a {slug} storage block has no Prefect 3 pull step reconcile can write (it translates local-file-system, "
        f"remote-file-system, smb, s3, gcs, azure, github and gitlab blocks)"))


def _within_block(m: Manifest, slug: str, data: dict[str, Any], path: str) -> str:
    """The manifest's `path` inside the block's root (an absolute one only inside a local basepath)."""
    base = str(data.get("basepath") or "")
    text = path.strip()
    try:
        if posixpath.isabs(text) and slug == "local-file-system" and base:
            sub = posixpath.relpath(confine(base, text), posixpath.normpath(base))
        else:
            sub = confine(".", text.lstrip("/") or None)
    except Escapes as exc:
        raise m.error(("path",), str(exc)) from None
    return "" if sub == "." else sub


def _strip_local(m: Manifest, path: Any, below: str) -> str:
    """The worker's copy of the prefect.yaml's directory, from `path` (storage null): absolute, ends in `below`."""
    text = str(path or "").strip()
    if not (posixpath.isabs(text) or ntpath.isabs(text)):
        raise m.error(("path",), (
            f"storage is null, so the code runs from `path` on the worker, and {text!r} is not an absolute directory; "
            "Prefect 3's set_working_directory needs one (or set runtime_root in reconcile.yaml)"))
    return _strip(m, text, below)


def _strip(m: Manifest, location: str, below: str) -> str:
    """`location` (the code root on the worker) less `below` (its place under the prefect.yaml) at its end."""
    if not below:
        return location
    windows = bool(re.match(r"^[A-Za-z]:[\\/]", location)) or ("\\" in location and "/" not in location)
    parts = re.split(r"[\\/]+", location.rstrip("\\/")) if location else []
    tail = below.split("/")
    if len(parts) < len(tail) or parts[len(parts) - len(tail):] != tail:
        raise m.error(("path",), (
            f"the code is at {location or '(the root)'!r} on the worker, which does not end in {below!r}, where it "
            "sits below the prefect.yaml; one prefect.yaml reads every entrypoint relative to one directory: "
            "write prefect.yaml next to this code (--out), or move the code so the two match"))
    head = parts[: len(parts) - len(tail)]
    if not head:
        return ""
    if head == [""]:
        return "/"
    return ("\\" if windows else "/").join(head)


def _join(base: str, sub: str) -> str:
    return f"{base.rstrip('/')}/{sub}" if sub else base


def _workdir(directory: str) -> dict[str, Any]:
    return v3pull.working_directory(directory)


__all__ = ["Migrated", "deployment"]
