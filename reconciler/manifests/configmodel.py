"""`reconcile.yaml`'s settings as pydantic models: what manifests/config validates the file against.

Built only when a reconcile.yaml is loaded (or a command asks for its defaults): a plan's first reads go out
before these models are, see config.NO_SETTINGS.
"""
from __future__ import annotations

import fnmatch
import re
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator


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
