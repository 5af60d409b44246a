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
    (["plan", "--bogus"], "Error: No such option"),
    (["bogus"], "Error: No such command 'bogus'."),
    (["apply", "--max-deletes", "many"], "Error: Invalid value for '--max-deletes'"),
    (["--dry-run", "--bogus"], "Error: No such option"),
])
def test_a_mistyped_command_or_option_is_a_usage_error(args, error):
    done = run(*args)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0].startswith("Usage: reconcile")
    assert any(line.startswith(error) and args[-1] in line for line in lines), lines
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


SERVER_VENV = Path(__file__).resolve().parents[3] / ".venvs" / "prefect-2.20"


def test_a_mistyped_option_is_a_usage_error_with_the_typer_prefect_2_pins():
    """`pip install '.[server]'` puts Prefect 2.20 beside reconcile, and Prefect pins typer<0.24, whose
    exceptions are click's own (0.24+ raise copies). Run the CLI with the server venv's typer and click first
    on the path and the rest of reconcile's dependencies after them."""
    python = SERVER_VENV / "bin" / "python"
    if not python.exists():
        pytest.skip(f"no Prefect 2.20 venv at {SERVER_VENV} (.ci/run builds it)")
    site = subprocess.run([str(python), "-c", "import typer, os; print(os.path.dirname(os.path.dirname(typer.__file__)))"],
                          capture_output=True, text=True, timeout=60).stdout.strip()
    ours = next(p for p in sys.path if p.endswith("site-packages"))
    repo = str(Path(__file__).resolve().parents[3])
    code = ("import sys, typer; assert typer.__version__ < '0.24', typer.__version__; "
            "from reconciler.cli.app import main; sys.exit(main(['plan', '--bogus']))")
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": ":".join([repo, site, ours]), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("Usage: reconcile plan") and "No such option" in done.stderr and "--bogus" in done.stderr
    assert "internal error" not in done.stderr
