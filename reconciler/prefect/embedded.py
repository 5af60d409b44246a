"""An embedded local Prefect server, for when no API URL is configured: started once, reused, stopped when idle.

Like Prefect's own ephemeral mode it keeps its state in SQLite under
PREFECT_HOME (default ~/.prefect/prefect.db), so consecutive commands see the
same deployments.  The first command that needs it starts `prefect server start`
on a loopback port (the last one it used if free, else any free one) under a
keeper process (keeper.py); later commands reuse it while it answers /health.
It stops after RECONCILE_SERVER_IDLE_TIMEOUT seconds (default 900) in which no
command used it, or on `reconcile server stop`.  Its state is in
PREFECT_HOME/reconcile-server/ (server.json, server.log); a file lock there makes
concurrent first uses start one server, not two.  Needs Prefect installed
(`pip install 'prefect-reconcile[server]'`) or RECONCILE_PREFECT pointing at a
`prefect` executable.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from pathlib import Path
from typing import Callable, Iterator, Optional

from . import keeper
from .connection import prefect_home
from .serverprocess import Running, answers, is_keeper, kill_group, start


def state_dir() -> Path:
    return prefect_home() / "reconcile-server"


@contextlib.contextmanager
def embedded(say: Callable[[str], None], timeout: float = 120.0) -> Iterator[str]:
    """The embedded server's API URL, started if none runs; the server is not stopped while this is held."""
    where = state_dir()
    with _locked(where / keeper.LOCK):
        running = _healthy(where, timeout)
        if running is None:
            running = start(where, say, timeout)
        else:
            say(f"using the embedded Prefect server at {running.url} (`reconcile server stop` stops it)")
        in_use = os.open(where / keeper.IN_USE, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(in_use, fcntl.LOCK_SH)
        _touch(where)
    try:
        yield running.url
    finally:
        _touch(where)
        os.close(in_use)


def ensure(say: Callable[[str], None], timeout: float = 120.0) -> Running:
    """Start the embedded server unless it runs; leave it running."""
    where = state_dir()
    with _locked(where / keeper.LOCK):
        running = _healthy(where, timeout) or start(where, say, timeout)
        _touch(where)
        return running


def idle_for_seconds() -> float:
    """Seconds since a command last used the embedded server (0 while one uses it)."""
    where = state_dir()
    fd = os.open(where / keeper.IN_USE, os.O_RDWR | os.O_CREAT, 0o600) if where.is_dir() else None
    if fd is None:
        return float("inf")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return 0.0
    finally:
        os.close(fd)
    return keeper.idle_for(where)


def status() -> Optional[Running]:
    where = state_dir()
    with _locked(where / keeper.LOCK):
        running = _read(where)
        if running is None or not is_keeper(running.pid):
            return None
        return running if answers(running.url) else None


def stop(timeout: float = 20.0) -> Optional[Running]:
    """Stop the embedded server if one runs (the one this PREFECT_HOME's state names); return what was stopped."""
    where = state_dir()
    with _locked(where / keeper.LOCK):
        running = _read(where)
        if running is None:
            return None
        stopped = running if is_keeper(running.pid) else None
        if stopped is not None:
            kill_group(running.pid, timeout)
        (where / keeper.STATE).unlink(missing_ok=True)
        return stopped


# -- the state, under the lock --------------------------------------------------------------------

@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _touch(where: Path) -> None:
    (where / keeper.LAST_USE).touch()


def _read(where: Path) -> Optional[Running]:
    try:
        raw = json.loads((where / keeper.STATE).read_text(encoding="utf-8"))
        return Running(int(raw["pid"]), str(raw["url"]), str(raw["home"]), str(raw["log"]),
                       float(raw["idle_timeout"]), float(raw["started"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _healthy(where: Path, timeout: float) -> Optional[Running]:
    """The server the state names, if it is ours and answers; else None, with a stale one cleared away."""
    running = _read(where)
    if running is None:
        return None
    if not is_keeper(running.pid):   # a dead pid, or one reused by some other program: never signalled
        (where / keeper.STATE).unlink(missing_ok=True)
        return None
    deadline = time.monotonic() + timeout    # a keeper whose starter died may still be booting the server
    while time.monotonic() < deadline and is_keeper(running.pid):
        if answers(running.url):
            return running
        time.sleep(0.3)
    kill_group(running.pid, 20.0)    # ours, but not answering: replace it
    (where / keeper.STATE).unlink(missing_ok=True)
    return None
