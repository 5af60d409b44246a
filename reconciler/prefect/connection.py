"""Where the Prefect API is (flag, environment, config, profile, or an embedded server), and how to trust its TLS."""
from __future__ import annotations

import os
import ssl
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

from ..errors import ReconcileError


@dataclass(frozen=True)
class Target:
    api_url: Optional[str]      # None: start an embedded local server
    api_key: Optional[str] = field(repr=False)   # a secret: never in a repr, a log or a traceback's message
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


TRUE = {"1", "true", "t", "yes", "y", "on"}
FALSE = {"0", "false", "f", "no", "n", "off", ""}


def tls_verify() -> Union[ssl.SSLContext, bool]:
    """What httpx verifies the API's certificate with, as Prefect 2's own client decides.

    `PREFECT_API_TLS_INSECURE_SKIP_VERIFY` true: nothing is verified (False).  Else the CA file
    `PREFECT_API_SSL_CERT_FILE` (default: `SSL_CERT_FILE`, then certifi's bundle).  Each setting is read
    from the environment first, then the active Prefect profile, as `PREFECT_API_URL` is."""
    skip, origin = _setting("PREFECT_API_TLS_INSECURE_SKIP_VERIFY")
    if skip is not None:
        word = skip.strip().lower()
        if word not in TRUE | FALSE:
            raise ReconcileError(f"PREFECT_API_TLS_INSECURE_SKIP_VERIFY={skip!r} ({origin}): expected true or false")
        if word in TRUE:
            return False
    cert, origin = _setting("PREFECT_API_SSL_CERT_FILE")
    if not cert and os.environ.get("SSL_CERT_FILE"):
        cert, origin = os.environ["SSL_CERT_FILE"], "SSL_CERT_FILE in the environment"
    if not cert:
        import certifi
        return ssl.create_default_context(cafile=certifi.where())
    path = Path(cert).expanduser()
    name = "SSL_CERT_FILE" if origin.startswith("SSL_CERT_FILE") else "PREFECT_API_SSL_CERT_FILE"
    if not path.is_file():
        raise ReconcileError(f"{name}={cert} ({origin}): no such file; set it to a PEM file of the CA "
                             "certificates that sign the API's certificate")
    try:
        return ssl.create_default_context(cafile=str(path))
    except (ssl.SSLError, OSError, ValueError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ReconcileError(f"{name}={cert} ({origin}): not a PEM file of CA certificates: {reason}") from None


def _setting(name: str) -> tuple[Optional[str], str]:
    """A Prefect setting's value and where it came from: the environment, else the active profile."""
    if os.environ.get(name) is not None:
        return os.environ[name], "from the environment"
    value = _profile().get(name)
    return (value, "from the Prefect profile") if value is not None else (None, "")


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
