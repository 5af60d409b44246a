"""Prefect 3.9.1 for the `reconcile migrate` tests: its server, its virtual environment, its CLI and a worker.

Stand-ins until the shared 3.9.1 fixtures land (branch h8-p3-infra: `prefect3_api_url` in conftest and
`integration/worker.py`); the lead swaps these for those at merge.  Import the fixtures into a test module:
``from integration.migrate_support import prefect3_api_url, prefect3_venv  # noqa: F401``.

- ``prefect3_api_url``: ``RECONCILE_TEST_API_URL_V3`` (a running 3.9.1 server), else the test is skipped.
- ``prefect3_venv``: ``RECONCILE_TEST_PREFECT3_VENV``, default ``<repo>/.venvs/prefect-3.9``; skipped when missing.
- ``prefect3(venv, api_url, *args, cwd)``: the real ``prefect`` CLI of that environment, with the caller's
  ``PREFECT_*`` settings scrubbed, its own ``PREFECT_HOME`` and ``PREFECT_API_URL`` set.
- ``run_worker_once`` / ``wait_for_final_state``: a process worker's one polling pass, and a flow run waited for.
"""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

import prefect_server
from integration.helpers import Server

REPO = Path(__file__).resolve().parents[2]
FINAL_STATES = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


@pytest.fixture(scope="session")
def prefect3_api_url() -> str:
    given = os.environ.get("RECONCILE_TEST_API_URL_V3", "").strip().rstrip("/")
    if not given:
        pytest.skip("no Prefect 3.9.1 server: set RECONCILE_TEST_API_URL_V3")
    if not prefect_server.health_ok(given, timeout=10):
        pytest.fail(f"RECONCILE_TEST_API_URL_V3={given!r} but GET {given}/health does not answer 200", pytrace=False)
    return given


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


def run_worker_once(venv: Path, api_url: str, pool: str, workdir: Path) -> subprocess.CompletedProcess:
    """One polling pass of a process worker on `pool`; returns once the runs it started have finished."""
    workdir.mkdir(parents=True, exist_ok=True)
    return prefect3(venv, api_url, "worker", "start", "--pool", pool, "--type", "process", "--run-once", cwd=workdir)


def wait_for_final_state(server: Server, flow_run_id: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        state = server.call("GET", f"flow_runs/{flow_run_id}")["state"] or {}
        if state.get("type") in FINAL_STATES or time.monotonic() > deadline:
            return state
        time.sleep(0.5)
