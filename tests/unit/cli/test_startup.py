"""`reconcile --help` starts without loading the engine: only the command that runs imports what it needs."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"

# what a plan needs and `--help` does not: each took tens of milliseconds at start-up (python -X importtime).
HEAVY = ("reconciler.engine", "reconciler.manifests", "reconciler.render", "reconciler.prefect", "httpx", "yaml",
         "jsonschema", "deepdiff", "rich", "pydantic")


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


FIRST_READ = """
import json, sys
import httpx
from reconciler.engine import readahead
seen = []
started = readahead.ReadAhead.__init__
def starting(self, *args):    # the reads are handed to their thread here; the main thread goes on loading
    seen.append(sorted(m for m in sys.modules if m.split(".")[0] in ("pydantic", "yaml", "jsonschema")
                       or m.startswith("reconciler.manifests.manifest")))
    started(self, *args)
readahead.ReadAhead.__init__ = starting
sent = []
def refused(self, request):
    sent.append(request.url.path)
    raise httpx.ConnectError("refused", request=request)
httpx.HTTPTransport.handle_request = refused
from reconciler.cli import main
code = main(["plan", sys.argv[1], "--api-url", "http://127.0.0.1:9/api", "--source", "s"])
print(json.dumps({"code": code, "first": seen[0] if seen else None, "sent": len(sent)}))
"""


def test_without_reconcile_yaml_the_plans_first_read_goes_out_before_the_models_load(tmp_path):
    """The plan's fixed cost before it talks to the server (benchmarks/noop_plan.py): no settings file to
    validate, so its first request leaves before pydantic, YAML, jsonschema or the manifest models load."""
    shutil.copytree(EXAMPLES / "catfact", tmp_path / "catfact")
    done = subprocess.run([sys.executable, "-c", FIRST_READ, str(tmp_path / "catfact")], capture_output=True,
                          text=True, timeout=60)
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen["code"] == 1, done.stderr
    assert seen["first"] == [] and seen["sent"] >= 1
    assert "error: " in done.stderr and "127.0.0.1:9" in done.stderr


def test_with_reconcile_yaml_its_error_still_comes_first(tmp_path):
    shutil.copytree(EXAMPLES / "catfact", tmp_path / "catfact")
    (tmp_path / "catfact" / "reconcile.yaml").write_text("max_deletes: many\n")
    done = subprocess.run([sys.executable, "-c", FIRST_READ, str(tmp_path / "catfact")], capture_output=True,
                          text=True, timeout=60)
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen == {"code": 1, "first": None, "sent": 0}     # an invalid settings file: not a single request
    assert "reconcile.yaml:1" in done.stderr and "max_deletes" in done.stderr
