"""Prefect 3.9.1's own CLI for the `reconcile migrate` tests (the server: conftest; a worker: worker.py).

Import the fixture into a test module: ``from integration.migrate_support import prefect3_venv  # noqa: F401``.

- ``prefect3_venv``: ``RECONCILE_TEST_PREFECT3_VENV``, default ``<repo>/.venvs/prefect-3.9``; skipped when missing.
- ``prefect3(venv, api_url, *args, cwd)``: the real ``prefect`` CLI of that environment, with the caller's
  ``PREFECT_*`` settings scrubbed, its own ``PREFECT_HOME`` and ``PREFECT_API_URL`` set.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import prefect_server

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def prefect3_venv() -> Path:
    venv = Path(os.environ.get("RECONCILE_TEST_PREFECT3_VENV") or REPO / ".venvs" / "prefect-3.9")
    if not (venv / "bin" / "prefect").exists():
        pytest.skip(f"no Prefect 3.9.1 virtual environment at {venv} (set RECONCILE_TEST_PREFECT3_VENV)")
    return venv


def prefect_env(api_url: str, home: Path) -> dict[str, str]:
    env = prefect_server._clean_env()
    env.update(PREFECT_API_URL=api_url, PREFECT_HOME=str(home), PYTHONUNBUFFERED="1", NO_COLOR="1",
               COLUMNS="200")
    return env


def prefect3(venv: Path, api_url: str, *args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """`prefect ARGS` from the 3.9.1 environment, run in `cwd`; output merged into stdout."""
    home = cwd.parent / f".prefect-home-{cwd.name}"
    home.mkdir(exist_ok=True)
    return subprocess.run([str(venv / "bin" / "prefect"), *args], cwd=cwd, env=prefect_env(api_url, home),
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          errors="replace", timeout=timeout)
