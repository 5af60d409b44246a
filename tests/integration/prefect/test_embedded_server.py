"""With no API configured, reconcile starts an embedded Prefect server for the command.

State lives in SQLite under PREFECT_HOME, so plan → apply → plan across three
separate commands converges, the way the README's demo runs it.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT, SERVER_VENV

import prefect_server


def _reconcile(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "reconciler", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=240)


@pytest.fixture
def embedded_env(tmp_path: Path) -> dict[str, str]:
    venv = prefect_server.ensure_server_venv(SERVER_VENV)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), RECONCILE_PREFECT=str(venv / "bin" / "prefect"),
               NO_COLOR="1")
    return env


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
