"""`reconcile build`, `check` and `build --refresh` on real flow files, with a real Prefect 2.20 server.

The flow code is read, never imported: a flow file with side effects at import is
analysed without them happening.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess

import pytest
import yaml

from conftest import SERVER_VENV
from fixture_paths import FIXTURES
from integration.helpers import EXAMPLES, Server, reconcile

import prefect_server

PREFECT_FIXTURE = FIXTURES / "prefect-2.20.27"


@pytest.fixture
def server(prefect_api_url):
    with Server(prefect_api_url) as s:
        yield s


def _normalise(text: str, names: dict[str, str]) -> str:
    text = re.sub(r"_block_document_id: [0-9a-f-]{36}", "_block_document_id: ID", text)
    text = re.sub(r"timestamp: '[^']+'", "timestamp: TS", text)
    for ours, theirs in names.items():
        text = text.replace(f"_block_document_name: {ours}", f"_block_document_name: {theirs}")
    return text


def test_build_writes_what_prefect_writes(prefect_api_url, server, tmp_path, unique):
    """The fixture's own command, run by reconcile: the same bytes (block ids and timestamp aside)."""
    shutil.copy(PREFECT_FIXTURE / "catfact.py", tmp_path / "catfact.py")
    name = f"dev-{unique}"
    server.ensure_block_document("local-file-system", name, {"basepath": "/srv/prefect-storage"})
    server.ensure_block_document("process", name, {"type": "process", "env": {}, "labels": {}, "name": None,
                                                   "command": None, "stream_output": True, "working_dir": None})
    run = reconcile(prefect_api_url, "build", "catfact.py:catfacts_flow", "-n", "catfact", "-q", "test",
                    "-sb", f"local-file-system/{name}", "-ib", f"process/{name}", "--cron", "0 * * * *",
                    "--param", "url=https://x", "--tag", "a", "--override", "env.FOO=bar", "--skip-upload",
                    cwd=tmp_path)
    assert run.returncode == 0, run
    ours = (tmp_path / "catfact-deployment.yaml").read_text()
    theirs = (PREFECT_FIXTURE / "catfact-deployment.yaml").read_text()
    assert _normalise(ours, {name: "dev"}) == _normalise(theirs, {})


def test_prefect_itself_applies_what_build_wrote(prefect_api_url, server, tmp_path, unique):
    flow_file = tmp_path / "etl.py"
    flow_file.write_text(
        "from prefect import flow\n\n\n"
        f"@flow(name='etl-{unique}')\n"
        "def etl(table: str, limit: int = 10, dry_run: bool = False):\n    return table\n")
    run = reconcile(prefect_api_url, "build", "etl.py:etl", "-n", "nightly", "--cron", "0 3 * * *",
                    "--param", "table=orders", "-t", "etl", cwd=tmp_path)
    assert run.returncode == 0, run
    venv = prefect_server.ensure_server_venv(SERVER_VENV)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_API_URL=prefect_api_url, PREFECT_HOME=str(tmp_path / "home"))
    applied = subprocess.run([str(venv / "bin" / "prefect"), "deployment", "apply", "nightly-deployment.yaml"],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    dep = server.deployment(f"etl-{unique}", "nightly")
    assert dep is not None and dep["parameters"] == {"table": "orders"}
    assert dep["parameter_openapi_schema"]["required"] == ["table"]


def test_check_passes_on_manifests_real_prefect_wrote(tmp_path):
    shutil.copytree(PREFECT_FIXTURE, tmp_path / "fixture")
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    for where in ("fixture", "examples"):
        run = reconcile(None, "check", where, cwd=tmp_path)
        assert run.returncode == 0, run
        assert "match their flow code" in run.stdout


def test_a_changed_signature_fails_check_and_refresh_fixes_only_the_generated_part(tmp_path):
    shutil.copytree(EXAMPLES / "weather", tmp_path / "weather")
    manifest = tmp_path / "weather" / "weather-deployment.yaml"
    before = manifest.read_bytes()
    flow = tmp_path / "weather" / "weather.py"
    flow.write_text(flow.read_text().replace("wet_day_mm: float = 1.0", "wet_day_mm: float = 1.0, units: str = 'metric'"))

    failed = reconcile(None, "check", "weather", cwd=tmp_path)
    assert failed.returncode == 1, failed
    errors = [line for line in failed.stderr.splitlines() if line.startswith("error: ")]
    assert errors and all(line.startswith("error: weather/weather-deployment.yaml:") for line in errors)
    assert any("units" in line and "parameter_openapi_schema" in line for line in errors), failed

    refreshed = reconcile(None, "build", "--refresh", "weather", cwd=tmp_path)
    assert refreshed.returncode == 0, refreshed
    after = manifest.read_bytes()
    marker = b"### DO NOT EDIT BELOW THIS LINE"
    top = before[: before.index(marker)]
    generated = re.search(rb"(?m)^version: ([0-9a-f]{32})$", top).group(1)    # the md5 `deployment build` wrote
    fresh = hashlib.md5(flow.read_bytes()).hexdigest().encode()
    assert after[: after.index(marker)] == top.replace(generated, fresh)   # the user's part, byte for byte, but
                                                                          # the generated version follows the code
    assert yaml.safe_load(after)["parameter_openapi_schema"]["properties"]["units"]["default"] == "metric"
    assert reconcile(None, "check", "weather", cwd=tmp_path).returncode == 0
    again = reconcile(None, "build", "--refresh", "weather", cwd=tmp_path)
    assert again.returncode == 0 and manifest.read_bytes() == after   # idempotent


def test_build_never_imports_the_flow_file(tmp_path):
    side_effect = tmp_path / "IMPORTED"
    (tmp_path / "risky.py").write_text(
        "import pathlib\n"
        f"pathlib.Path({str(side_effect)!r}).write_text('imported!')\n"
        "import module_that_does_not_exist\n"
        "from prefect import flow\n\n"
        "@flow(name='risky')\n"
        "def go(n: int = 1):\n    pass\n"
        "raise SystemExit('this file must never run')\n")
    run = reconcile(None, "build", "risky.py:go", "-n", "safe", cwd=tmp_path)
    assert run.returncode == 0, run
    assert not side_effect.exists()
    doc = yaml.safe_load((tmp_path / "safe-deployment.yaml").read_text())
    assert doc["flow_name"] == "risky" and doc["parameter_openapi_schema"]["properties"]["n"]["default"] == 1
    check = reconcile(None, "check", ".", cwd=tmp_path)
    assert check.returncode == 0, check
    assert not side_effect.exists()


FLOW = "from prefect import flow\n\n@flow\ndef main(x: int = 1):\n    pass\n\ndef helper():\n    pass\n"


@pytest.mark.parametrize("source, args, needle", [
    ("from prefect import flow\n\n@flow\ndef main(:\n", ["flow.py:main"], "flow.py:4:"),
    (FLOW, ["flow.py:nope"], "nope"),
    (FLOW, ["flow.py:helper"], "not a flow"),
    (FLOW, ["flow.py:main", "--param", "x={bad"], "--param x"),
    (FLOW, ["flow.py:main", "--param", "y=1"], "parameters.y"),
    (FLOW, ["flow.py:main", "--cron", "61 * * * *"], "cron"),
    (FLOW, ["flow.py:main", "--rrule", "FREQ=SOMETIMES"], "rrule"),
], ids=["syntax-error", "missing-function", "not-a-flow", "param-not-json", "unknown-param", "bad-cron", "bad-rrule"])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, source, args, needle):
    (tmp_path / "flow.py").write_text(source)
    run = reconcile(None, "build", *args, "-n", "x", cwd=tmp_path)
    assert run.returncode == 1, run
    errors = [line for line in run.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and needle in errors[0], run
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "x-deployment.yaml").exists()


def test_build_apply_reconciles_that_one_manifest_only(prefect_api_url, server, tmp_path, unique):
    flow_name = f"apply-one-{unique}"
    (tmp_path / "f.py").write_text(f"from prefect import flow\n\n@flow(name={flow_name!r})\ndef f():\n    pass\n")
    first = reconcile(prefect_api_url, "build", "f.py:f", "-n", "first", "--apply", cwd=tmp_path)
    assert first.returncode == 0, first
    second = reconcile(prefect_api_url, "build", "f.py:f", "-n", "second", "-a", cwd=tmp_path)
    assert second.returncode == 0, second
    assert set(server.deployments(flow_name)) == {"first", "second"}   # the first was not pruned
