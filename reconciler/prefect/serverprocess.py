"""The embedded server's process: started under the keeper on a loopback port, checked, and stopped by its group.

The server runs `prefect server start` (Prefect beside this Python, or
RECONCILE_PREFECT, or on PATH) under the keeper process (keeper.py), in a session
of its own; it is ours while its pid runs the keeper, and up while it answers
/health.
"""
from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import httpx

from ..errors import ReconcileError
from . import keeper
from .connection import prefect_home

QUIET_SERVICES = ("SCHEDULER", "LATE_RUNS", "FLOW_RUN_NOTIFICATIONS", "PAUSE_EXPIRATIONS",
                  "CANCELLATION_CLEANUP", "FOREMAN", "TELEMETRY")
IDLE_TIMEOUT = 900.0


@dataclass(frozen=True)
class Running:
    pid: int                 # the keeper's; the server is its child, in its process group
    url: str
    home: str
    log: str
    idle_timeout: float
    started: float


def idle_timeout() -> float:
    raw = os.environ.get("RECONCILE_SERVER_IDLE_TIMEOUT")
    try:
        return max(1.0, float(raw)) if raw else IDLE_TIMEOUT
    except ValueError:
        raise ReconcileError(f"RECONCILE_SERVER_IDLE_TIMEOUT={raw!r}: not a number of seconds") from None


def start(where: Path, say: Callable[[str], None], timeout: float) -> Running:
    command = _prefect_command()
    if not os.access(command[0], os.X_OK):
        raise ReconcileError(f"cannot start the embedded Prefect server: {command[0]} is not an executable; "
                             "set PREFECT_API_URL, or RECONCILE_PREFECT to a `prefect` executable")
    home = prefect_home()
    home.mkdir(parents=True, exist_ok=True)
    port = _port(where)
    url = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_UI_ENABLED": "false",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "WARNING"}
    env.pop("PREFECT_API_URL", None)
    for service in QUIET_SERVICES:
        env[f"PREFECT_API_SERVICES_{service}_ENABLED"] = "false"
    idle = idle_timeout()
    say(f"starting an embedded Prefect server (SQLite under {home}) at {url}; it stops after {idle:.0f}s idle "
        "or on `reconcile server stop` …")
    log_path = where / "server.log"
    argv = [sys.executable, "-m", "reconciler.prefect.keeper", str(where), str(idle), "--",
            *command, "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    try:
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=str(home), start_new_session=True)
    except OSError as exc:
        raise ReconcileError(f"cannot start the embedded Prefect server: {exc.strerror}; "
                             "set PREFECT_API_URL, or RECONCILE_PREFECT to a `prefect` executable") from None
    running = Running(proc.pid, url, str(home), str(log_path), idle, time.time())
    (where / keeper.STATE).write_text(json.dumps(running.__dict__), encoding="utf-8")
    try:
        _wait(url, proc, log_path, timeout)
    except BaseException:
        kill_group(proc.pid, 20.0)
        (where / keeper.STATE).unlink(missing_ok=True)
        raise
    return running


def _port(where: Path) -> int:
    """The port used last time, so the URL stays the same, if nothing else took it; else a free one."""
    wanted = os.environ.get("RECONCILE_SERVER_PORT")
    previous = _previous_port(where)
    for candidate in ([int(wanted)] if wanted and wanted.isdigit() else []) + ([previous] if previous else []):
        if _free(candidate):
            return candidate
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _previous_port(where: Path) -> Optional[int]:
    try:
        return int((where / "port").read_text().strip())
    except (OSError, ValueError):
        return None


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _wait(url: str, proc: subprocess.Popen, log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            lines = log_path.read_text(errors="replace").strip().splitlines()
            tail = lines[-1:] or ["(no output)"]
            raise ReconcileError(f"the embedded Prefect server exited with status {proc.returncode}: {tail[0]}")
        if answers(url):
            (log_path.parent / "port").write_text(url.rsplit(":", 1)[1].split("/")[0])
            return
        time.sleep(0.3)
    raise ReconcileError(f"the embedded Prefect server did not answer at {url} within {timeout:.0f}s")


def answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def is_keeper(pid: int) -> bool:
    """A live process running this module's keeper (a pid from a stale file may now be anything)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X") and b"reconciler.prefect.keeper" in cmdline


def kill_group(pid: int, timeout: float) -> None:
    """SIGTERM the keeper's process group (keeper and server), then SIGKILL what is left."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)     # reap it if this process started it
            try:
                os.killpg(pid, 0)
            except (ProcessLookupError, PermissionError):
                return
            time.sleep(0.1)


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
