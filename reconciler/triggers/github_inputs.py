"""The GitHub Action's inputs: read from the INPUT_* variables action.yml sets, checked, and passed on to reconcile.

action.yml maps each input explicitly, never into the shell text.  The API key reaches the reconcile subprocesses
by environment only (never on a command line), and the tokens of this run not at all.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional

# input name (action.yml) → the variable action.yml sets for this script
INPUTS = {
    "path": "INPUT_PATH", "mode": "INPUT_MODE", "api-url": "INPUT_API_URL", "api-key": "INPUT_API_KEY",
    "source": "INPUT_SOURCE", "comment": "INPUT_COMMENT", "fail-on-changes": "INPUT_FAIL_ON_CHANGES",
    "github-token": "INPUT_GITHUB_TOKEN", "check": "INPUT_CHECK", "skip-upload": "INPUT_SKIP_UPLOAD",
}
# variables the reconcile subprocesses never see (tokens of this run, our inputs with the key in them)
_SECRET_VARS = ("GITHUB_TOKEN", "GH_TOKEN", "ACTIONS_RUNTIME_TOKEN", "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
                "ACTIONS_ID_TOKEN_REQUEST_URL")


class ActionError(Exception):
    """Bad inputs or environment: one line, the step fails."""


@dataclass(frozen=True)
class Inputs:
    path: str
    mode: str
    api_url: Optional[str]
    api_key: Optional[str]
    source: Optional[str]
    comment: bool
    fail_on_changes: bool
    token: Optional[str]
    check: bool
    skip_upload: bool


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = env.get(INPUTS[name], "").strip().lower()
    if not value:
        return default
    if value not in ("true", "false"):
        raise ActionError(f"input {name} must be true or false, not {value!r}")
    return value == "true"


def read_inputs(env: Mapping[str, str]) -> Inputs:
    def get(name: str) -> Optional[str]:
        return env.get(INPUTS[name], "").strip() or None

    mode = (get("mode") or "plan").lower()
    if mode not in ("plan", "apply"):
        raise ActionError(f"input mode must be plan or apply, not {mode!r}")
    api_key = get("api-key") or env.get("PREFECT_API_KEY", "").strip() or None
    api_url = get("api-url") or env.get("PREFECT_API_URL", "").strip() or None
    if api_key and not api_url:
        raise ActionError("api-key is set but api-url is not: set the api-url input (or PREFECT_API_URL); with a key "
                          "the URL is never read from reconcile.yaml, which a pull request can change")
    return Inputs(path=get("path") or ".", mode=mode, api_url=api_url, api_key=api_key, source=get("source"),
                  comment=_flag(env, "comment", True), fail_on_changes=_flag(env, "fail-on-changes", False),
                  token=get("github-token"), check=_flag(env, "check", True),
                  skip_upload=_flag(env, "skip-upload", False))


def child_env(env: Mapping[str, str], inputs: Inputs) -> dict[str, str]:
    out = {k: v for k, v in env.items() if not k.startswith("INPUT_") and k not in _SECRET_VARS}
    out.pop("PREFECT_API_KEY", None)
    if inputs.api_key:
        out["PREFECT_API_KEY"] = inputs.api_key  # by environment: never on a command line
    out["NO_COLOR"] = "1"
    out["PYTHONIOENCODING"] = "utf-8"  # read back as UTF-8 below, whatever the runner's locale
    return out


def common_args(inputs: Inputs) -> list[str]:
    out = ["--api-url", inputs.api_url] if inputs.api_url else []
    out += ["--source", inputs.source] if inputs.source else []
    return out + (["--skip-upload"] if inputs.skip_upload else [])
