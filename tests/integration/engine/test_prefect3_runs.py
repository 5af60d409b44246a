"""On Prefect 3.9.1 the reconciled deployments really run: a process worker executes the code apply uploaded.

A small flow (a module, a helper package, a data file) is applied to the 3.9.1 server with its code in a
named storage block: `local-file-system` on disk, and `remote-file-system` on the moto S3 server.  The
manifest names no work pool; reconcile.yaml names the pool its process infrastructure maps to, which apply
creates with the server's default process job template.  The repository is then deleted, a flow run is
created through the API and a real `prefect worker start --type process --run-once` (3.9.1) runs it: the
run must reach Completed, and its output must come from the uploaded files.
"""
from __future__ import annotations

import json
import shutil

import pytest

from integration.bundles.test_flow_run_from_upload import FLOW, SCHEMA
from integration.helpers import Server
from integration.upload_support import Project, block_ref, make_block, upload_manifest
from integration.worker import run_worker_once, wait_for_final_state


@pytest.fixture
def server(prefect3_api_url):
    with Server(prefect3_api_url) as srv:
        yield srv


def _project(api_url: str, tmp_path, unique: str, label: str) -> tuple[Project, str]:
    project = Project(api_url, tmp_path, unique, label)
    pool = f"it-pool-{unique}"
    (project.root / "reconcile.yaml").write_text(f"prefect3:\n  work_pools:\n    process: {pool}\n", encoding="utf-8")
    project.write({
        "flow.py": FLOW,
        "helpers/__init__.py": "",
        "helpers/greeting.py": "def greet(who):\n    return f'hello, {who}'\n",
        "data/config.json": json.dumps({"who": f"uploaded {unique}"}),
    })
    return project, pool


def _run_once(server: Server, api_url: str, project: Project, pool: str, tmp_path, unique: str, out) -> None:
    applied = project.apply()
    assert applied.returncode == 0, applied
    assert f"work pool {pool}" in applied.stdout, applied
    again = project.apply("-v")
    assert again.returncode == 0 and again.writes == [], again
    dep = server.deployment(project.flow, "run-me")
    assert dep["work_pool_name"] == pool and dep["infrastructure_document_id"] is None

    shutil.rmtree(project.repo)   # from here on the code exists only at the storage location
    flow_run = server.call("POST", f"deployments/{dep['id']}/create_flow_run", {})
    worker = run_worker_once(api_url, pool, tmp_path / "worker")
    state = wait_for_final_state(server, flow_run["id"], context=worker)
    assert (state["type"], state["name"]) == ("COMPLETED", "Completed"), worker
    assert json.loads(out.read_text()) == {"greeting": f"hello, uploaded {unique}", "n": 3}, worker


def test_a_local_file_system_deployment_runs_on_a_prefect3_worker(prefect3_api_url, server, tmp_path, unique):
    project, pool = _project(prefect3_api_url, tmp_path, unique, "p3-local")
    basepath = tmp_path / "storage"
    storage_doc = make_block(server, "local-file-system", f"it-p3-{unique}", {"basepath": str(basepath)})
    out = tmp_path / "result.json"
    project.add_manifest(upload_manifest(
        project.flow, "run-me", block_ref(storage_doc, "local-file-system", basepath=str(basepath)), "code",
        entrypoint="flow.py:main", parameters={"out": str(out), "n": 3}, parameter_openapi_schema=SCHEMA,
        schedules=[]))
    _run_once(server, prefect3_api_url, project, pool, tmp_path, unique, out)
    assert (basepath / "code" / "helpers" / "greeting.py").is_file()


def test_a_remote_file_system_deployment_on_s3_runs_on_a_prefect3_worker(prefect3_api_url, server, tmp_path, unique,
                                                                          s3_endpoint):
    import boto3
    bucket = f"it-p3-{unique}"
    boto3.client("s3", endpoint_url=s3_endpoint, aws_access_key_id="test", aws_secret_access_key="test",
                 region_name="us-east-1").create_bucket(Bucket=bucket)
    project, pool = _project(prefect3_api_url, tmp_path, unique, "p3-s3")
    basepath = f"s3://{bucket}/team/flows"
    settings = {"key": "test", "secret": "test", "client_kwargs": {"endpoint_url": s3_endpoint}}
    storage_doc = make_block(server, "remote-file-system", f"it-p3-s3-{unique}",
                             {"basepath": basepath, "settings": settings})
    out = tmp_path / "result.json"
    project.add_manifest(upload_manifest(
        project.flow, "run-me", block_ref(storage_doc, "remote-file-system", basepath=basepath, settings=settings),
        "code", entrypoint="flow.py:main", parameters={"out": str(out), "n": 3}, parameter_openapi_schema=SCHEMA,
        schedules=[]))
    _run_once(server, prefect3_api_url, project, pool, tmp_path, unique, out)
