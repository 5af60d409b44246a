"""Where the Prefect API is: flag, environment, config, profile, or an embedded server."""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..errors import ReconcileError


@dataclass(frozen=True)
class Target:
    api_url: Optional[str]      # None: start an embedded local server
    api_key: Optional[str]
    origin: str                 # where the URL came from, for messages


def resolve(flag_url: Optional[str], config_url: Optional[str]) -> Target:
    key = os.environ.get("PREFECT_API_KEY") or None
    if flag_url:
        return Target(flag_url, key, "--api-url")
    if os.environ.get("PREFECT_API_URL"):
        return Target(os.environ["PREFECT_API_URL"], key, "PREFECT_API_URL")
    if config_url:
        return Target(config_url, key, "reconcile.yaml")
    profile = _profile()
    if profile.get("PREFECT_API_URL"):
        return Target(profile["PREFECT_API_URL"], key or profile.get("PREFECT_API_KEY"), "Prefect profile")
    return Target(None, None, "embedded server")


def prefect_home() -> Path:
    return Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()


def _profile() -> dict[str, str]:
    path = Path(os.environ.get("PREFECT_PROFILES_PATH") or prefect_home() / "profiles.toml").expanduser()
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, OSError) as exc:
        raise ReconcileError(f"{path}: cannot read Prefect profiles: {exc}") from None
    name = os.environ.get("PREFECT_PROFILE") or data.get("active") or "default"
    settings = (data.get("profiles") or {}).get(name) or {}
    return {k: str(v) for k, v in settings.items() if isinstance(v, (str, int, float))}
