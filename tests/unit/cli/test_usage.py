"""Through the installed `reconcile` entry point: a mistyped command or option is a usage error (exit 2), and
`--version` prints the installed version."""
from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

RECONCILE = Path(sys.executable).parent / "reconcile"


def run(*args: str) -> subprocess.CompletedProcess:
    assert RECONCILE.is_file(), "the console script is installed with the package (pip install -e .)"
    return subprocess.run([str(RECONCILE), *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("args, error", [
    (["plan", "--bogus"], "Error: No such option: --bogus"),
    (["bogus"], "Error: No such command 'bogus'."),
    (["apply", "--max-deletes", "many"], "Error: Invalid value for '--max-deletes'"),
    (["--dry-run", "--bogus"], "Error: No such option: --bogus"),
])
def test_a_mistyped_command_or_option_is_a_usage_error(args, error):
    done = run(*args)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0].startswith("Usage: reconcile")
    assert any(line.startswith(error) for line in lines), lines
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""


def test_a_mistyped_option_is_escaped():
    done = run("plan", "--bo\x1bgus")
    assert done.returncode == 2
    assert "\x1b" not in done.stderr and "--bo\\x1bgus" in done.stderr


def test_version_prints_the_installed_version():
    done = run("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"reconcile {metadata.version('prefect-reconcile')}\n"
