"""Flow runs that really execute: a Prefect 3.9.1 process worker run once, and a flow run waited for.

Import as ``from integration.worker import ...``.

- ``process_pool(server, name)``: a work pool of type ``process`` made through the REST API, with the
  default job template the server itself reports (``GET /collections/views/aggregate-worker-metadata``).
- ``start_flow_run(server, deployment_id, parameters)``: ``POST /deployments/{id}/create_flow_run``.
- ``run_worker_once(api_url, pool, workdir)``: ``prefect worker start --pool P --type process
  --run-once`` from ``.venvs/prefect-3.9``, with ``PREFECT_API_URL`` set and the caller's other
  ``PREFECT_*`` settings scrubbed (as for the server); it picks up the pool's scheduled runs, runs
  each as a subprocess and returns when they have finished.
- ``wait_for_final_state(server, flow_run_id)``: the run's state once it is final, or an
  ``AssertionError`` naming the last state seen after ``timeout`` seconds.
"""
from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import prefect_server
from conftest import SERVER_VENV_V3
from integration.helpers import Server

FINAL_STATES = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
WORKER_TIMEOUT = 300.0


@dataclass(frozen=True)
class WorkerRun:
    """What one `--run-once` worker did: its exit status and its output, for assertion messages."""

    returncode: int
    output: str

    def __str__(self) -> str:
        return f"worker exit {self.returncode}\n--- worker output\n{self.output[-6000:]}"


def default_job_template(server: Server, pool_type: str = "process") -> dict[str, Any]:
    """The base job template the server offers for workers of `pool_type`."""
    metadata = server.call("GET", "collections/views/aggregate-worker-metadata")
    for collection in metadata.values():
        if pool_type in collection:
            return collection[pool_type]["default_base_job_configuration"]
    raise AssertionError(f"the server offers no job template for work pools of type {pool_type!r}")


def process_pool(server: Server, name: str) -> dict[str, Any]:
    """A work pool of type `process` (created if missing), as the server holds it."""
    server.call("POST", "work_pools/", {"name": name, "type": "process",
                                        "base_job_template": default_job_template(server)}, ok=(201, 409))
    return server.call("GET", f"work_pools/{name}")


def start_flow_run(server: Server, deployment_id: str, parameters: Optional[dict[str, Any]] = None) -> dict:
    """A new flow run of the deployment, scheduled to start now."""
    body = {"parameters": parameters} if parameters is not None else {}
    return server.call("POST", f"deployments/{deployment_id}/create_flow_run", body)


def worker_env(api_url: str, home: Path) -> dict[str, str]:
    """The caller's environment without its PREFECT_* settings, pointed at `api_url` with its own home."""
    env = prefect_server._clean_env()
    env.update(PREFECT_API_URL=api_url, PREFECT_HOME=str(home), PYTHONUNBUFFERED="1")
    return env


def run_worker_once(api_url: str, pool: str, workdir: Path, *, venv: Path = SERVER_VENV_V3,
                    env: Optional[dict[str, str]] = None, timeout: float = WORKER_TIMEOUT) -> WorkerRun:
    """One polling pass of a 3.9.1 process worker on `pool`, waiting for the runs it started.

    `workdir` is the worker's current directory and holds its PREFECT_HOME; the flow runs get
    their own temporary directories (the process worker's default). `env` adds variables (say
    AWS_* for a storage block on the moto server) to the worker's and so to its flow runs'."""
    prefect_bin = prefect_server.ensure_server_venv(venv) / "bin" / "prefect"
    workdir.mkdir(parents=True, exist_ok=True)
    command = [str(prefect_bin), "worker", "start", "--pool", pool, "--type", "process", "--run-once"]
    try:
        proc = subprocess.run(command, cwd=workdir, env={**worker_env(api_url, workdir / "prefect-home"), **(env or {})},
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, errors="replace", timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        output = exc.stdout if isinstance(exc.stdout, str) else (exc.stdout or b"").decode(errors="replace")
        return WorkerRun(-1, f"(killed after {timeout:.0f}s)\n{output}")
    return WorkerRun(proc.returncode, proc.stdout)


def wait_for_final_state(server: Server, flow_run_id: str, *, timeout: float = 60.0,
                         context: object = "") -> dict[str, Any]:
    """The flow run's state once it is final (Completed, Failed, Crashed, Cancelled)."""
    deadline = time.monotonic() + timeout
    state: dict[str, Any] = {}
    while True:
        state = server.call("GET", f"flow_runs/{flow_run_id}")["state"] or {}
        if state.get("type") in FINAL_STATES or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert state.get("type") in FINAL_STATES, (
        f"flow run {flow_run_id} still {state.get('name')!r} after {timeout:.0f}s\n{context}")
    return state
