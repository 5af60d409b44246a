"""The process that keeps the embedded Prefect server: runs it, and stops it when idle or told to.

Started by `serverprocess.start()` in a session of its own (so it outlives the
command that started it), as `python -m reconciler.prefect.keeper STATE_DIR
IDLE_SECONDS -- PREFECT_COMMAND...`.  The server is its child, in the same process
group, so stopping the group stops both.  It exits, removing the state file that
names it, when the server exits, on SIGTERM, or after IDLE_SECONDS in which no
command used the server: no command holds the in-use lock (commands hold it
shared while they talk to the server) and none touched the last-use file.
"""
from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

STATE = "server.json"       # {"pid", "port", "url", "home", "log", "idle_timeout", "started"}
LOCK = "server.lock"        # held (exclusive) while a command starts, checks or stops the server
IN_USE = "in-use.lock"      # held (shared) by each command while it uses the server
LAST_USE = "last-use"       # its mtime: the last time a command began or ended using the server


def idle_for(state_dir: Path) -> float:
    try:
        return time.time() - (state_dir / LAST_USE).stat().st_mtime
    except OSError:
        return float("inf")


def forget(state_dir: Path, pid: int) -> None:
    """Remove the state file if it still names this keeper."""
    path = state_dir / STATE
    try:
        if json.loads(path.read_text()).get("pid") == pid:
            path.unlink()
    except (OSError, ValueError):
        pass


def _try_lock(path: Path, mode: int) -> Optional[int]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _stop(child: subprocess.Popen) -> None:
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def keep(state_dir: Path, idle_timeout: float, command: list[str]) -> int:
    child = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    stopping = False

    def on_term(signum, frame) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    tick = max(0.2, min(5.0, idle_timeout / 5))
    try:
        while not stopping and child.poll() is None:
            time.sleep(tick)
            if idle_for(state_dir) < idle_timeout:
                continue
            # idle: stop only if no command is deciding to use it (LOCK) or using it (IN_USE)
            lock = _try_lock(state_dir / LOCK, fcntl.LOCK_EX)
            if lock is None:
                continue
            try:
                in_use = _try_lock(state_dir / IN_USE, fcntl.LOCK_EX)
                if in_use is None:
                    continue
                try:
                    if idle_for(state_dir) >= idle_timeout:
                        print(f"reconcile: stopping the server after {idle_timeout:.0f}s idle", flush=True)
                        _stop(child)
                        forget(state_dir, os.getpid())
                        return 0
                finally:
                    os.close(in_use)
            finally:
                os.close(lock)
    finally:
        _stop(child)
        forget(state_dir, os.getpid())
    return child.returncode or 0


def main(argv: list[str]) -> int:
    state_dir, idle, separator, *command = argv
    assert separator == "--" and command, "usage: keeper STATE_DIR IDLE_SECONDS -- COMMAND..."
    return keep(Path(state_dir), float(idle), command)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
