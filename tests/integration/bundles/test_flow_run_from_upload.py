"""The uploaded tree runs: Prefect 2.20 itself pulls it from storage and the flow run completes.

reconcile uploads a small flow (a module, a helper package and a data file) to a named
local-file-system block and creates its deployment with a named `process` infrastructure block.
The repository is then deleted, a flow run is created through the API and executed with
`prefect flow-run execute` from the Prefect 2.20 venv in an empty directory: Prefect's
LocalFileSystem.get_directory copies the code from the storage location, imports the entrypoint
and runs it. The run must reach Completed and its output must come from the uploaded files.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

import prefect_server
from conftest import SERVER_VENV
from integration.helpers import Server
from integration.upload_support import Project, block_ref, make_block, upload_manifest

FLOW = '''\
import json
from pathlib import Path

from prefect import flow

from helpers.greeting import greet


@flow
def main(out: str, n: int = 1):
    config = json.loads((Path(__file__).parent / "data" / "config.json").read_text())
    Path(out).write_text(json.dumps({"greeting": greet(config["who"]), "n": n}))
    return n
'''

SCHEMA = {
    "title": "Parameters", "type": "object",
    "properties": {
        "out": {"position": 0, "title": "out", "type": "string"},
        "n": {"default": 1, "position": 1, "title": "n", "type": "integer"},
    },
    "required": ["out"], "definitions": None,
}


@pytest.fixture
def server(prefect_api_url):
    with Server(prefect_api_url) as srv:
        yield srv


@pytest.fixture(scope="module")
def prefect_bin():
    return prefect_server.ensure_server_venv(SERVER_VENV) / "bin" / "prefect"


def test_a_flow_run_of_the_uploaded_tree_completes(server, prefect_api_url, prefect_bin, tmp_path, unique):
    project = Project(prefect_api_url, tmp_path, unique, "up-run")
    project.write({
        "flow.py": FLOW,
        "helpers/__init__.py": "",
        "helpers/greeting.py": "def greet(who):\n    return f'hello, {who}'\n",
        "data/config.json": json.dumps({"who": f"uploaded {unique}"}),
    })
    basepath = tmp_path / "storage"
    storage_doc = make_block(server, "local-file-system", f"it-run-{unique}", {"basepath": str(basepath)})
    infra = {"type": "process", "env": {}, "labels": {}, "name": None, "command": None,
             "stream_output": True, "working_dir": None}
    infra_doc = make_block(server, "process", f"it-run-{unique}", infra)
    out = tmp_path / "result.json"
    project.add_manifest(upload_manifest(
        project.flow, "run-me", block_ref(storage_doc, "local-file-system", basepath=str(basepath)), "code",
        infrastructure=block_ref(infra_doc, "process", **infra), entrypoint="flow.py:main",
        parameters={"out": str(out), "n": 3}, parameter_openapi_schema=SCHEMA, schedules=[]))

    applied = project.apply()
    assert applied.returncode == 0, applied
    assert (basepath / "code" / "flow.py").is_file()
    dep = server.deployment(project.flow, "run-me")
    assert dep is not None
    assert (dep["storage_document_id"], dep["infrastructure_document_id"]) == (storage_doc["id"], infra_doc["id"])

    shutil.rmtree(project.repo)   # from here on the code exists only at the storage location
    flow_run = server.call("POST", f"deployments/{dep['id']}/create_flow_run", {})
    workdir = tmp_path / "run"
    workdir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_API_URL=prefect_api_url, PREFECT_HOME=str(tmp_path / "prefect-home"), PYTHONUNBUFFERED="1")
    proc = subprocess.run([str(prefect_bin), "flow-run", "execute", flow_run["id"]], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=240)
    log = f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"

    state = server.call("GET", f"flow_runs/{flow_run['id']}")["state"]
    assert (state["type"], state["name"]) == ("COMPLETED", "Completed"), log
    assert json.loads(out.read_text()) == {"greeting": f"hello, uploaded {unique}", "n": 3}, log
    assert (workdir / "helpers" / "greeting.py").is_file(), "the code was not pulled into the run's directory"
