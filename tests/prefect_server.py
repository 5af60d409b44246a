"""Start and stop a throwaway Prefect server (2.20 or 3.9) for the integration tests.

Prefect pins its own dependency ranges (pydantic, httpx, ...), so the server
runs from a separate virtual environment and never shares packages with the
environment the reconciler and its tests run in.

Only the standard library is used here, so this file works both as a module
imported by ``tests/conftest.py`` and as a script called by ``.ci/run``::

    python tests/prefect_server.py ensure-venv --venv .venvs/prefect-2.20
    python tests/prefect_server.py ensure-venv --venv .venvs/prefect-3.9 --prefect 3.9.1
    python tests/prefect_server.py start --venv .venvs/prefect-2.20 \\
        --home /tmp/prefect-home --pidfile /tmp/prefect.json   # prints the API URL
    python tests/prefect_server.py stop --pidfile /tmp/prefect.json

``start`` runs whichever Prefect the venv holds (a venv named ``prefect-3.9`` that does
not exist yet is built with 3.9.1): the settings names differ between the two lines.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

PREFECT_VERSION = "2.20.27"   # the default: the line the reconciler has always targeted
# The servers the tests run, by the suffix of their venv's name (.venvs/prefect-<line>).
PREFECT_VERSIONS = {"2.20": "2.20.27", "3.9": "3.9.1"}
HOST = "127.0.0.1"
LOG_NAME = "server.log"
DEFAULT_START_TIMEOUT = 120.0
DEFAULT_STOP_TIMEOUT = 20.0

# Variables that must not leak from the caller's environment into the server
# process: any PREFECT_* setting (a user profile, an API URL pointing at some
# other server, a database URL, ...) and anything that changes which Python
# packages the server venv imports.
_SCRUBBED_PREFIXES = ("PREFECT_",)
_SCRUBBED_NAMES = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV")


class ServerError(RuntimeError):
    """The Prefect server venv could not be built or the server did not start."""


@dataclass
class ServerHandle:
    """A running server. ``process`` is only set in the process that started it."""

    pid: int
    port: int
    url: str  # base API URL, e.g. http://127.0.0.1:4200/api
    home: Path
    log_path: Path
    process: Optional[subprocess.Popen] = None
    startup_seconds: float = 0.0
    version: str = ""  # the venv's Prefect version

    def to_json(self) -> str:
        return json.dumps(
            {
                "pid": self.pid,
                "port": self.port,
                "url": self.url,
                "home": str(self.home),
                "log_path": str(self.log_path),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> "ServerHandle":
        data = json.loads(text)
        return cls(
            pid=int(data["pid"]),
            port=int(data["port"]),
            url=data["url"],
            home=Path(data["home"]),
            log_path=Path(data["log_path"]),
        )


def _say(message: str) -> None:
    # stdout is reserved for the URL printed by the ``start`` command.
    print(f"[prefect-server] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- venv


def _installed_prefect_version(venv: Path) -> Optional[str]:
    """Version of prefect in ``venv`` judged from its dist-info (no import needed)."""
    for dist_info in venv.glob("lib/python*/site-packages/prefect-*.dist-info"):
        version = dist_info.name[len("prefect-") : -len(".dist-info")]
        if (dist_info / "METADATA").is_file():
            return version
    return None


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Serialise venv creation between concurrent test runs (POSIX only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            yield
            return
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def version_for(path: os.PathLike | str) -> str:
    """The Prefect version a server venv is meant to hold.

    The line its name ends with (``prefect-3.9`` → 3.9.1), else what it holds already,
    else ``PREFECT_VERSION``."""
    venv = Path(path)
    for line, version in PREFECT_VERSIONS.items():
        if venv.name == f"prefect-{line}":
            return version
    return _installed_prefect_version(venv) or PREFECT_VERSION


def _has(venv: Path, distribution: str) -> bool:
    return bool(list((venv / "lib").glob(f"python*/site-packages/{distribution}-*.dist-info")))


def major(version: str) -> int:
    return int(version.split(".", 1)[0])


def ensure_server_venv(
    path: os.PathLike | str, python: Optional[str] = None, version: Optional[str] = None
) -> Path:
    """Make sure ``path`` is a venv with ``prefect==version`` (default: ``version_for(path)``); return it.

    Nothing is done when ``bin/prefect`` exists and the right version is
    installed, so repeated runs cost nothing.
    """
    venv = Path(path).resolve()
    prefect_bin = venv / "bin" / "prefect"
    wanted = version or version_for(path)

    def ready() -> bool:
        return (prefect_bin.exists() and _installed_prefect_version(venv) == wanted
                and (major(wanted) < 3 or (venv / "bin" / "python").exists() and _has(venv, "s3fs")))

    if ready():
        return venv
    with _file_lock(venv.parent / f".{venv.name}.lock"):
        if ready():  # somebody else built it while we waited for the lock
            return venv
        venv_python = venv / "bin" / "python"
        if not venv_python.exists():
            _say(f"creating virtual environment {venv}")
            subprocess.run(
                [python or sys.executable, "-m", "venv", str(venv)],
                check=True,
                stdout=sys.stderr,
            )
        _say(f"installing prefect=={wanted} into {venv} (takes a minute)")
        started = time.monotonic()
        result = subprocess.run(
            [
                str(venv_python),
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--progress-bar",
                "off",
                f"prefect=={wanted}",
                # a 3.x worker pulls code from a remote-file-system block on S3 through s3fs
                *(["s3fs"] if major(wanted) >= 3 else []),
            ],
            stdout=sys.stderr,
            env=_clean_env(),
        )
        if result.returncode != 0 or not ready():
            raise ServerError(
                f"could not install prefect=={wanted} into {venv} "
                f"(pip exit status {result.returncode})"
            )
        _say(f"prefect installed in {time.monotonic() - started:.0f}s")
    return venv


# ------------------------------------------------------------------------- server


def free_port(host: str = HOST) -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _port_is_free(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def _clean_env() -> dict:
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(_SCRUBBED_PREFIXES) and key not in _SCRUBBED_NAMES
    }


def server_env(home: Path, database_url: Optional[str] = None, version: str = PREFECT_VERSION) -> dict:
    """Environment for ``prefect server start``: private home and SQLite database (or ``database_url``).

    The settings are named as ``version``'s line names them (3.x still reads the 2.x
    names as aliases, but its own are the ones its docs and errors use)."""
    env = _clean_env()
    database = database_url or f"sqlite+aiosqlite:///{home / 'prefect.db'}"
    # In both lines this one flag also disables the telemetry heartbeat service;
    # there is no separate telemetry setting for the server.
    env.update({"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PYTHONUNBUFFERED": "1"})
    if major(version) >= 3:
        env.update({"PREFECT_SERVER_DATABASE_CONNECTION_URL": database, "PREFECT_SERVER_UI_ENABLED": "false"})
    else:
        env.update({"PREFECT_API_DATABASE_CONNECTION_URL": database, "PREFECT_UI_ENABLED": "false"})
    return env


def health_ok(url: str, timeout: float = 2.0) -> bool:
    """True when ``GET {url}/health`` answers 200."""
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def log_tail(log_path: Path, lines: int = 60) -> str:
    try:
        text = Path(log_path).read_text(errors="replace")
    except OSError as exc:
        return f"(no server log at {log_path}: {exc})"
    return "\n".join(text.splitlines()[-lines:]) or "(server log is empty)"


def start_server(
    venv: os.PathLike | str,
    home: os.PathLike | str,
    port: int,
    timeout: float = DEFAULT_START_TIMEOUT,
    database_url: Optional[str] = None,
    settings: Optional[dict] = None,
) -> ServerHandle:
    """Start ``prefect server start`` from ``venv`` and wait until it is healthy.

    The server runs in its own session (process group) so that it outlives the
    calling process when used from the command line and so that ``stop_server``
    can take down its uvicorn child as well. Its output goes to
    ``<home>/server.log``. ``settings`` are more environment variables for it
    (e.g. a benchmark's ``PREFECT_API_SERVICES_SCHEDULER_ENABLED``). Raises ``ServerError`` (with the log tail) when the
    server exits or is not healthy within ``timeout`` seconds.
    """
    venv = Path(venv).resolve()
    home = Path(home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / LOG_NAME
    url = f"http://{HOST}:{port}/api"
    version = _installed_prefect_version(venv) or PREFECT_VERSION
    # Otherwise the health check below could be answered by whatever server
    # already listens there while ours exits with "port already in use".
    if not _port_is_free(port):
        raise ServerError(f"port {port} on {HOST} is already in use")
    command = [
        str(venv / "bin" / "prefect"),
        "server",
        "start",
        "--host",
        HOST,
        "--port",
        str(port),
    ]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**server_env(home, database_url, version), **(settings or {})},
            cwd=str(home),
            start_new_session=True,
        )
    handle = ServerHandle(
        pid=process.pid, port=port, url=url, home=home, log_path=log_path, process=process,
        version=version,
    )
    started = time.monotonic()
    deadline = started + timeout
    while True:
        if process.poll() is None and health_ok(url) and process.poll() is None:
            handle.startup_seconds = time.monotonic() - started
            return handle
        if process.poll() is not None:
            stop_server(handle)
            raise ServerError(
                f"Prefect server exited with status {process.returncode} before it "
                f"became healthy; last lines of {log_path}:\n{log_tail(log_path)}"
            )
        if time.monotonic() > deadline:
            stop_server(handle)
            raise ServerError(
                f"Prefect server at {url} not healthy after {timeout:.0f}s; "
                f"last lines of {log_path}:\n{log_tail(log_path)}"
            )
        time.sleep(0.25)


def start_server_on_free_port(
    venv: os.PathLike | str,
    home: os.PathLike | str,
    timeout: float = DEFAULT_START_TIMEOUT,
    attempts: int = 3,
    settings: Optional[dict] = None,
) -> ServerHandle:
    """``start_server`` on a fresh free port, retrying if the port got taken meanwhile."""
    last_error: Optional[ServerError] = None
    for _ in range(attempts):
        try:
            return start_server(venv, home, free_port(), timeout=timeout, settings=settings)
        except ServerError as exc:
            if "already in use" not in str(exc):
                raise
            last_error = exc
    assert last_error is not None
    raise last_error


def _is_alive(pid: int) -> bool:
    if Path("/proc/self/stat").exists():  # Linux: a zombie counts as dead
        try:
            stat = Path(f"/proc/{pid}/stat")
            # state is the first field after the parenthesised command name
            state = stat.read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        return state not in ("Z", "X")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _looks_like_prefect(pid: int) -> bool:
    """Guard against a recycled pid in a stale pidfile (best effort, Linux)."""
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.exists():
        return _is_alive(pid)
    try:
        return b"prefect" in cmdline.read_bytes()
    except OSError:
        return False


def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def stop_server(handle: ServerHandle, timeout: float = DEFAULT_STOP_TIMEOUT) -> None:
    """Stop the server: SIGTERM (forwarded to uvicorn by the Prefect CLI), then SIGKILL.

    Only the process group created by ``start_server`` is signalled.
    """
    pid = handle.pid
    process = handle.process
    if process is not None:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
    elif _is_alive(pid) and _looks_like_prefect(pid):
        os.kill(pid, signal.SIGTERM)
        _wait(lambda: not _is_alive(pid), timeout)
    # The session we created has pgid == pid. Give uvicorn a moment to finish
    # its own graceful shutdown, then kill whatever is left of the group.
    if _group_alive(pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
        if not _wait(lambda: not _group_alive(pid), 5.0):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
    if process is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)


# ---------------------------------------------------------------------------- CLI


def _cmd_ensure_venv(args: argparse.Namespace) -> int:
    venv = ensure_server_venv(args.venv, version=args.prefect)
    print(venv / "bin" / "prefect")
    return 0


def _cmd_start(args: argparse.Namespace) -> int:
    venv = ensure_server_venv(args.venv, version=args.prefect)
    pidfile = Path(args.pidfile)
    if args.port:
        handle = start_server(venv, args.home, args.port, timeout=args.timeout)
    else:
        handle = start_server_on_free_port(venv, args.home, timeout=args.timeout)
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    pidfile.write_text(handle.to_json())
    _say(
        f"Prefect {handle.version} server pid {handle.pid} healthy at {handle.url} "
        f"after {handle.startup_seconds:.1f}s (log: {handle.log_path})"
    )
    print(handle.url, flush=True)
    return 0


def _cmd_stop(args: argparse.Namespace) -> int:
    pidfile = Path(args.pidfile)
    if not pidfile.exists():
        _say(f"no pidfile at {pidfile}; nothing to stop")
        return 0
    handle = ServerHandle.from_json(pidfile.read_text())
    stop_server(handle, timeout=args.timeout)
    pidfile.unlink()
    _say(f"stopped Prefect server pid {handle.pid}")
    return 0


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ensure-venv", help="build the server venv if needed, print bin/prefect")
    p.add_argument("--venv", required=True)
    p.add_argument("--prefect", default=None, metavar="VERSION",
                   help="default: what the venv holds, else by its name (prefect-3.9: 3.9.1), else 2.20.27")
    p.set_defaults(func=_cmd_ensure_venv)

    p = sub.add_parser("start", help="start a server in the background, print its API URL")
    p.add_argument("--venv", required=True)
    p.add_argument("--prefect", default=None, metavar="VERSION", help="as for ensure-venv")
    p.add_argument("--home", required=True, help="fresh PREFECT_HOME; holds the DB and log")
    p.add_argument("--pidfile", required=True)
    p.add_argument("--port", type=int, default=0, help="default: a free port")
    p.add_argument("--timeout", type=float, default=DEFAULT_START_TIMEOUT)
    p.set_defaults(func=_cmd_start)

    p = sub.add_parser("stop", help="stop the server recorded in --pidfile")
    p.add_argument("--pidfile", required=True)
    p.add_argument("--timeout", type=float, default=DEFAULT_STOP_TIMEOUT)
    p.set_defaults(func=_cmd_stop)

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ServerError, subprocess.CalledProcessError) as exc:
        _say(f"error: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
