"""The serve configuration file: which repositories to follow and where to apply them.

    listen: 127.0.0.1:8080
    workdir: .reconcile-serve          # clones live here, one per source
    poll_interval: 180                 # seconds, jittered ±10%; 0 turns polling off
    self_heal: true                    # revert drift found between pushes (false: only report it)
    webhook:
      secret_env: RECONCILE_WEBHOOK_SECRET
      max_body_bytes: 5242880
    sources:
      - name: data-platform            # the ownership name on the server (like --source)
        repo: https://github.com/acme/flows.git    # a URL or a local path
        branch: main
        path: deployments              # the directory inside the repository
        api_url: http://prefect:4200/api
        api_key_env: PREFECT_API_KEY
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Optional

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from ..errors import ReconcileError
from ..manifests import files, yamlpos
from ..manifests.manifest import _first_error

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class Webhook(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    secret_env: str = "RECONCILE_WEBHOOK_SECRET"
    max_body_bytes: int = Field(5 * 1024 * 1024, ge=1024)


class SourceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    repo: str
    branch: str = "main"
    path: str = "."
    api_url: Optional[str] = None
    api_key_env: Optional[str] = None
    repository: Optional[str] = None   # "owner/name" as the git host names it, if `repo` does not show it

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError("letters, digits, '.', '_' and '-' only (it names a directory and a metric label)")
        return value

    @field_validator("api_url")
    @classmethod
    def _url(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("an http(s) URL, e.g. http://prefect:4200/api")
        return value

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if Path(value).is_absolute() or ".." in Path(value).parts:
            raise ValueError("a directory inside the repository (relative, no '..')")
        return value


class ServeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    listen: str = "127.0.0.1:8080"
    workdir: str = ".reconcile-serve"
    poll_interval: float = Field(180.0, ge=0)
    self_heal: bool = True
    git_timeout: float = Field(300.0, gt=0)     # seconds for one git command; a stalled remote is cut off
    run_timeout: float = Field(1800.0, gt=0)    # a run longer than this makes /healthz answer 503
    webhook: Webhook = Field(default_factory=Webhook)
    sources: list[SourceConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> "ServeConfig":
        seen: set[str] = set()
        for source in self.sources:
            if source.name in seen:
                raise ValueError(f"two sources are named {source.name!r}")
            seen.add(source.name)
        return self

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host or "127.0.0.1", int(port)

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("HOST:PORT, e.g. 127.0.0.1:8080")
        return value


def load(path: Path) -> ServeConfig:
    if not (path.is_file() or path.is_symlink()):
        raise ReconcileError(f"{path}: no such file")
    try:
        raw = files.read(path)
    except files.Unreadable as exc:
        raise ReconcileError(f"{path}: {exc}") from None
    located = yamlpos.load(raw, str(path))
    data: Any = located.data if located.data is not None else {}
    if not isinstance(data, dict):
        raise located.error((), "the serve configuration must be a mapping")
    try:
        config = ServeConfig.model_validate(data)
    except ValidationError as exc:
        raise _first_error(exc, located, unknown="unknown key (not a serve setting)") from None
    base = path.resolve().parent
    # a relative workdir or local repository path is relative to the file, not to where serve was started
    sources = [s.model_copy(update={"repo": str((base / os.path.expanduser(s.repo)).resolve())})
               if _is_local(s.repo) else s for s in config.sources]
    return config.model_copy(update={"sources": sources,
                                     "workdir": str(base / os.path.expanduser(config.workdir))})


def _is_local(repo: str) -> bool:
    return "://" not in repo and not re.match(r"^[\w.-]+@[\w.-]+:", repo)


def api_url(source: SourceConfig) -> str:
    url = source.api_url or os.environ.get("PREFECT_API_URL")
    if not url:
        raise ReconcileError(f"source {source.name}: no api_url (set it in the serve configuration "
                             "or set PREFECT_API_URL)")
    return url


def api_key(source: SourceConfig) -> Optional[str]:
    if source.api_key_env and not os.environ.get(source.api_key_env):
        raise ReconcileError(f"source {source.name}: api_key_env names {source.api_key_env}, which is not set")
    return os.environ.get(source.api_key_env or "PREFECT_API_KEY") or None


def workdir(config: ServeConfig) -> Path:
    """The work directory, created and known to be writable."""
    path = Path(config.workdir)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("ok", encoding="utf-8")
        probe.unlink()
    except OSError as exc:
        raise ReconcileError(f"workdir {path}: cannot write there ({exc.strerror or exc})") from None
    return path


def secret(config: ServeConfig) -> bytes:
    value = os.environ.get(config.webhook.secret_env)
    if not value:
        raise ReconcileError(f"the webhook secret is not set: export {config.webhook.secret_env} "
                             "(the same secret as in the git host's webhook settings)")
    return value.encode()
