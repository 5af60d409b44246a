"""`reconcile.yaml` at the root of the directory: validated like a manifest."""
from __future__ import annotations

import fnmatch
import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import ManifestError
from . import files, ignore, yamlpos
from .confine import Escapes, confine

FILENAME = "reconcile.yaml"


class IgnoreRule(BaseModel):
    """Leave a field (or a key inside one) as the server has it, e.g. set from the UI."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    field: str
    deployments: list[str] = Field(default_factory=lambda: ["*"])  # fnmatch on flow/name

    def applies_to(self, identity: str) -> bool:
        return any(fnmatch.fnmatchcase(identity, pattern) for pattern in self.deployments)


class Prefect3(BaseModel):
    """Settings for Prefect 3 servers and `reconcile migrate`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    # work pool type (process, docker, kubernetes) → the pool a manifest without a work_pool_name runs in
    work_pools: dict[str, str] = Field(default_factory=dict)
    # storage block `slug/name` → {pull step setting: Secret block name}, templated as
    # `{{ prefect.blocks.secret.NAME }}` into the step that pulls its code (e.g. {key: aws-key, secret: aws-secret})
    storage_secrets: dict[str, dict[str, str]] = Field(default_factory=dict)

    @field_validator("work_pools")
    @classmethod
    def _pools(cls, value: dict[str, str]) -> dict[str, str]:
        for kind, name in value.items():
            if kind not in ("process", "docker", "kubernetes"):
                raise ValueError(f"{kind!r} is not a work pool type reconcile maps to (process, docker, kubernetes)")
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}", name):
                raise ValueError(f"{name!r} is not a work pool name (letters, digits, space, '.', '_', '-'; "
                                 "at most 100)")
        return value

    @field_validator("storage_secrets")
    @classmethod
    def _secret_names(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for settings in value.values():
            for setting, name in settings.items():
                if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", name):
                    raise ValueError(f"{name!r} is not a Secret block name (lowercase letters, digits, dashes)")
                if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", setting):
                    raise ValueError(f"{setting!r} is not a setting name")
        return value


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Optional[str] = None
    api_url: Optional[str] = None
    include: list[str] = Field(default_factory=list)   # extra globs, relative to the root
    exclude: list[str] = Field(default_factory=list)   # gitignore-style patterns
    ignore_differences: list[IgnoreRule] = Field(default_factory=list)
    max_deletes: int = Field(10, ge=0)
    allow_conflicts: bool = False        # leave deployments another source owns alone instead of failing
    bundle_root: Optional[str] = None    # the code to upload for every manifest (default: the manifest's directory)
    runtime_root: Optional[str] = None   # for `storage: null`: path = runtime_root/<manifest dir>
    prefect3: Prefect3 = Field(default_factory=Prefect3)

    @field_validator("ignore_differences", mode="before")
    @classmethod
    def _rules(cls, value: Any) -> Any:
        # a bare string is shorthand for {field: <string>} on every deployment
        if isinstance(value, list):
            return [{"field": v} if isinstance(v, str) else v for v in value]
        return value

    def ignored(self, identity: str) -> list[str]:
        """The dotted field paths left alone for this deployment."""
        return [r.field for r in self.ignore_differences if isinstance(r, IgnoreRule) and r.applies_to(identity)]


@dataclass(frozen=True)
class LoadedConfig:
    config: Config
    file: Optional[Path]


def load(root: Path) -> LoadedConfig:
    path = root / FILENAME if root.is_dir() else None
    if path is None or not (path.is_file() or path.is_symlink()):
        return LoadedConfig(Config(), None)
    display = display_path(path)
    try:
        raw = files.read(path)
    except files.Unreadable as exc:
        raise ManifestError(display, 1, 1, None, str(exc)) from None
    located = yamlpos.load(raw, display)
    data: Any = located.data if located.data is not None else {}
    if not isinstance(data, dict):
        raise located.error((), f"{FILENAME} must be a mapping")
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        from .manifest import _first_error   # only for an error: manifest loads pydantic models and jsonschema
        raise _first_error(exc, located, unknown=f"unknown key (not a {FILENAME} setting)") from None
    for index, pattern in enumerate(config.exclude):
        found = ignore.problem(pattern)
        if found is not None:
            raise located.error(("exclude", index), found)
    if config.bundle_root is not None:
        try:
            bundle_directory(root, config)
        except Escapes as exc:
            raise located.error(("bundle_root",), (
                f"{config.bundle_root!r} leaves the repository {exc.root}: {exc.how} {exc.resolved} "
                "(use a directory inside the repository, e.g. '.')")) from None
    return LoadedConfig(config, path)


def display_path(path: Path) -> str:
    """Relative to the working directory when the file is below it, else absolute; printable on one line.

    A link that loops, or leads nowhere, is shown where it lies (resolving it raises)."""
    try:
        absolute = path.resolve()
    except (OSError, RuntimeError):
        absolute = Path(os.path.abspath(path))
    try:
        shown = absolute.relative_to(_resolved(os.getcwd())).as_posix()
    except (ValueError, OSError, RuntimeError):
        shown = str(absolute)
    return shown if shown.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in shown)


@functools.lru_cache(maxsize=16)
def _resolved(directory: str) -> Path:
    """The working directory, resolved once per run, not once per manifest."""
    return Path(directory).resolve()


def bundle_directory(root: Path, config: Config) -> Optional[Path]:
    """The directory `bundle_root` names (relative to root), confined to the repository (confine.Escapes)."""
    if config.bundle_root is None:
        return None
    from .discover import repository_root   # discover imports this module

    base = root.resolve()
    return Path(confine(repository_root(base), base / config.bundle_root, follow_links=True))
