"""With no API configured, reconcile starts an embedded Prefect server, and later commands reuse it.

State lives in SQLite under PREFECT_HOME, so plan → apply → plan across three
separate commands converges, the way the README's demo runs it.  The server is
started by the first command, reused while it answers, and stopped by
`reconcile server stop` or after RECONCILE_SERVER_IDLE_TIMEOUT idle seconds; a
stale state file (a dead pid, a pid another program now has, a port someone
else listens on) is replaced, and two first uses at once start one server.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest

from conftest import REPO_ROOT, SERVER_VENV

import prefect_server


def _reconcile(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "reconciler", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=240)


@pytest.fixture
def embedded_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    venv = prefect_server.ensure_server_venv(SERVER_VENV)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RECONCILE_SERVER_"))}
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), RECONCILE_PREFECT=str(venv / "bin" / "prefect"),
               NO_COLOR="1")
    yield env
    _reconcile(["server", "stop"], env, tmp_path)   # the server outlives each command: not the test


def _state(env: dict[str, str]) -> dict:
    return json.loads((Path(env["PREFECT_HOME"]) / "reconcile-server" / "server.json").read_text())


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_plan_apply_plan_against_the_embedded_server(tmp_path: Path, embedded_env: dict[str, str]) -> None:
    project = tmp_path / "repo"
    shutil.copytree(REPO_ROOT / "examples" / "weather", project / "weather")
    shutil.copytree(REPO_ROOT / "examples" / "reports", project / "reports")

    first = _reconcile(["plan", "."], embedded_env, project)
    assert first.returncode == 0, first.stderr
    assert "starting an embedded Prefect server" in first.stderr
    assert "Server: embedded local server (Prefect 2." in first.stdout
    assert "Plan: 2 to create, 0 to update, 0 to delete, 0 to adopt." in first.stdout

    applied = _reconcile(["apply", "."], embedded_env, project)
    assert applied.returncode == 0, applied.stderr
    assert "Apply complete: 2 created" in applied.stdout

    again = _reconcile(["plan", ".", "--detailed-exitcode"], embedded_env, project)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "No changes. 2 deployments in sync." in again.stdout
    assert (tmp_path / "prefect-home" / "prefect.db").is_file()


def test_no_server_and_no_prefect_is_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(tmp_path / "home"), RECONCILE_PREFECT=str(tmp_path / "no-such-prefect"))
    shutil.copytree(REPO_ROOT / "examples" / "weather", tmp_path / "weather")
    result = _reconcile(["plan", "weather"], env, tmp_path)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "embedded Prefect server" in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_the_next_command_reuses_the_server_and_server_stop_stops_it(tmp_path: Path,
                                                                       embedded_env: dict[str, str]) -> None:
    shutil.copytree(REPO_ROOT / "examples" / "weather", tmp_path / "weather")
    first = _reconcile(["plan", "weather"], embedded_env, tmp_path)
    assert first.returncode == 0, first.stderr
    assert "starting an embedded Prefect server" in first.stderr
    started = _state(embedded_env)
    assert _alive(started["pid"])

    second = _reconcile(["plan", "weather"], embedded_env, tmp_path)
    assert second.returncode == 0, second.stderr
    assert "starting" not in second.stderr
    assert f"using the embedded Prefect server at {started['url']}" in second.stderr
    assert _state(embedded_env)["pid"] == started["pid"]

    status = _reconcile(["server", "status"], embedded_env, tmp_path)
    assert status.returncode == 0 and f"running at {started['url']}" in status.stdout, status

    stopped = _reconcile(["server", "stop"], embedded_env, tmp_path)
    assert stopped.returncode == 0 and f"stopped the embedded Prefect server at {started['url']}" in stopped.stdout
    assert not _alive(started["pid"])
    status = _reconcile(["server", "status"], embedded_env, tmp_path)
    assert status.returncode == 1 and "not running" in status.stdout, status


class _Impostor(BaseHTTPRequestHandler):
    """Someone else's server on the port the stale state names: answers /api/health like Prefect does."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-length", "4")
        self.end_headers()
        self.wfile.write(b"true")

    def log_message(self, *args: object) -> None:
        pass


def test_a_stale_state_file_is_replaced_and_what_it_names_is_left_alone(tmp_path: Path,
                                                                           embedded_env: dict[str, str]) -> None:
    impostor = ThreadingHTTPServer(("127.0.0.1", 0), _Impostor)
    threading.Thread(target=impostor.serve_forever, daemon=True).start()
    bystander = subprocess.Popen(["sleep", "300"])   # a live process whose pid the stale file names
    try:
        state_dir = Path(embedded_env["PREFECT_HOME"]) / "reconcile-server"
        state_dir.mkdir(parents=True)
        port = impostor.server_address[1]
        (state_dir / "server.json").write_text(json.dumps({
            "pid": bystander.pid, "url": f"http://127.0.0.1:{port}/api", "home": embedded_env["PREFECT_HOME"],
            "log": str(state_dir / "server.log"), "idle_timeout": 900, "started": 0}))
        (state_dir / "port").write_text(str(port))

        shutil.copytree(REPO_ROOT / "examples" / "weather", tmp_path / "weather")
        run = _reconcile(["plan", "weather"], embedded_env, tmp_path)
        assert run.returncode == 0, run.stderr
        assert "starting an embedded Prefect server" in run.stderr
        assert "Server: embedded local server (Prefect 2." in run.stdout
        state = _state(embedded_env)
        assert state["pid"] != bystander.pid and state["url"] != f"http://127.0.0.1:{port}/api"
        assert bystander.poll() is None, "the pid in a stale state file was signalled"
    finally:
        bystander.kill()
        bystander.wait()
        impostor.shutdown()
        impostor.server_close()


def test_two_first_uses_at_once_start_one_server(tmp_path: Path, embedded_env: dict[str, str]) -> None:
    argv = [sys.executable, "-m", "reconciler", "server", "start"]
    procs = [subprocess.Popen(argv, env=embedded_env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    urls = {out.strip() for out, _ in outputs}
    assert len(urls) == 1, outputs
    assert sum("starting an embedded Prefect server" in err for _, err in outputs) == 1, outputs
    keepers = subprocess.run(["pgrep", "-f", f"reconciler.prefect.keeper {tmp_path}"], capture_output=True, text=True)
    assert len(keepers.stdout.split()) == 1, keepers.stdout


def test_the_server_stops_by_itself_when_idle(tmp_path: Path, embedded_env: dict[str, str]) -> None:
    env = {**embedded_env, "RECONCILE_SERVER_IDLE_TIMEOUT": "2"}
    started = _reconcile(["server", "start"], env, tmp_path)
    assert started.returncode == 0, started.stderr
    pid = _state(env)["pid"]
    deadline = time.monotonic() + 90     # a bound on waiting, not a measurement
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _alive(pid)
    assert not (Path(env["PREFECT_HOME"]) / "reconcile-server" / "server.json").exists()
    status = _reconcile(["server", "status"], env, tmp_path)
    assert status.returncode == 1, status
