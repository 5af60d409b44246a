"""An embedded local Prefect server, for when no API URL is configured.

Like Prefect's own ephemeral mode it keeps its state in SQLite under
PREFECT_HOME (default ~/.prefect/prefect.db), so consecutive commands see the
same deployments.  Started for one command on a free loopback port, stopped after.
Needs Prefect installed (`pip install 'prefect-reconcile[server]'`) or
RECONCILE_PREFECT pointing at a `prefect` executable.
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

import httpx

from ..errors import ReconcileError
from .connection import prefect_home

QUIET_SERVICES = ("SCHEDULER", "LATE_RUNS", "FLOW_RUN_NOTIFICATIONS", "PAUSE_EXPIRATIONS",
                  "CANCELLATION_CLEANUP", "FOREMAN", "TELEMETRY")


def _prefect_command() -> list[str]:
    explicit = os.environ.get("RECONCILE_PREFECT")
    if explicit:
        return [explicit]
    beside = Path(sys.executable).parent / "prefect"
    if beside.exists() and importlib.util.find_spec("prefect") is not None:
        return [str(beside)]
    found = shutil.which("prefect")
    if found:
        return [found]
    raise ReconcileError(
        "no Prefect API configured (PREFECT_API_URL, --api-url, a Prefect profile) and no local Prefect "
        "to start one: pip install 'prefect-reconcile[server]' or set PREFECT_API_URL")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def embedded(say: Callable[[str], None], timeout: float = 120.0) -> Iterator[str]:
    command = _prefect_command()
    home = prefect_home()
    home.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_UI_ENABLED": "false",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "WARNING"}
    env.pop("PREFECT_API_URL", None)
    for service in QUIET_SERVICES:
        env[f"PREFECT_API_SERVICES_{service}_ENABLED"] = "false"
    say(f"starting an embedded Prefect server (SQLite under {home}) …")
    log = tempfile.TemporaryFile()
    try:
        proc = subprocess.Popen([*command, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    except OSError as exc:
        log.close()
        raise ReconcileError(f"cannot start the embedded Prefect server with {command[0]}: {exc.strerror}; "
                             "set PREFECT_API_URL, or RECONCILE_PREFECT to a `prefect` executable") from None
    try:
        _wait(url, proc, log, timeout)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _wait(url: str, proc: subprocess.Popen, log, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            tail = log.read().decode(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
            raise ReconcileError(f"the embedded Prefect server exited with status {proc.returncode}: {tail[0]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise ReconcileError(f"the embedded Prefect server did not answer at {url} within {timeout:.0f}s")
