"""`reconcile --help` starts without loading the engine: only the command that runs imports what it needs."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

# what a plan needs and `--help` does not: each took tens of milliseconds at start-up (python -X importtime).
# Not pydantic: typer itself loads it to parse a command's options.
HEAVY = ("reconciler.engine", "reconciler.manifests", "reconciler.render", "reconciler.prefect", "httpx", "yaml",
         "jsonschema", "deepdiff", "rich")


def loaded_after(code: str) -> list[str]:
    probe = f"import sys\n{code}\nimport json; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize("code", [
    "import reconciler.cli",
    "from reconciler.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass",
    "from reconciler.cli import main\nmain(['plan', '--help'])",
    "from reconciler.cli import main\nmain(['migrate', '--help'])",
])
def test_help_loads_no_engine_no_http_no_yaml(code):
    modules = loaded_after(code)
    heavy = [m for m in modules if m.split(".")[0] in HEAVY or m.rsplit(".", 1)[0] in HEAVY]
    assert heavy == []


def test_every_command_is_still_listed_in_help():
    done = subprocess.run([sys.executable, "-c", "from reconciler.cli import main; main(['--help'])"],
                          capture_output=True, text=True)
    for command in ("plan", "apply", "status", "export", "build", "check", "schema", "migrate", "hook", "watch", "serve"):
        assert f" {command} " in done.stdout


def test_the_python_api_still_offers_plan_and_report():
    import reconciler
    from reconciler.engine.plans import Plan
    from reconciler.engine.report import Report
    assert reconciler.Plan is Plan and reconciler.Report is Report
