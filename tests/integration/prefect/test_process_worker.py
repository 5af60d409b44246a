"""A Prefect 3.9.1 process worker runs a deployment whose code sits in a `local-file-system` block.

Everything is set up through the REST API of the real 3.9.1 server, not by reconcile: the block
document (of the block type 3.9.1 itself registers), a work pool of type `process`, the flow and a
deployment with `storage_document_id` + `path` and no pull steps. A flow run is created, a real
worker (`prefect worker start --run-once`) runs it, and the run must reach Completed having run the
stored code: the flow writes a file whose name and content come from the run's parameters.
This is the ground the 3.x adapter's own flow-run tests stand on.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from integration.helpers import Server
from integration.worker import process_pool, run_worker_once, start_flow_run, wait_for_final_state

FLOW = '''\
from pathlib import Path

from prefect import flow

from helpers.text import shout


@flow
def main(out_dir: str, name: str, word: str = "hi"):
    Path(out_dir, name).write_text(shout(word))
'''

SCHEMA = {   # as 3.x wants it: no `definitions: null`, no `required: null`
    "title": "Parameters", "type": "object",
    "properties": {
        "out_dir": {"position": 0, "title": "out_dir", "type": "string"},
        "name": {"position": 1, "title": "name", "type": "string"},
        "word": {"default": "hi", "position": 2, "title": "word", "type": "string"},
    },
    "required": ["out_dir", "name"],
}


@pytest.fixture
def server3(prefect3_api_url):
    with Server(prefect3_api_url) as srv:
        yield srv


def local_file_system_block(server: Server, name: str, basepath: Path) -> dict:
    """A block document of the `local-file-system` type as 3.9.1 registers it."""
    block_type = server.block_type("local-file-system")
    assert block_type is not None and block_type["is_protected"], block_type
    schema = server.latest_schema(block_type["id"])
    assert schema["version"].startswith("3."), schema["version"]   # not a 2.x schema registered by hand
    assert "get-directory" in schema["capabilities"]
    return server.call("POST", "block_documents/", {
        "name": name, "data": {"basepath": str(basepath)}, "block_type_id": block_type["id"],
        "block_schema_id": schema["id"], "is_anonymous": False})


def test_a_process_worker_runs_the_code_stored_in_a_local_file_system_block(server3, prefect3_api_url,
                                                                            tmp_path, unique):
    storage = tmp_path / "storage"
    (storage / "code" / "helpers").mkdir(parents=True)
    (storage / "code" / "flow.py").write_text(FLOW)
    (storage / "code" / "helpers" / "__init__.py").write_text("")
    (storage / "code" / "helpers" / "text.py").write_text(f"def shout(word):\n    return word.upper() + ' {unique}'\n")
    block = local_file_system_block(server3, f"it-worker-{unique}", storage)
    pool = process_pool(server3, f"it-worker-{unique}")
    assert pool["type"] == "process"
    flow_id = server3.ensure_flow(f"it-worker-{unique}")
    deployment = server3.call("POST", "deployments/", {
        "name": "run-me", "flow_id": flow_id, "entrypoint": "flow.py:main",
        "storage_document_id": block["id"], "path": "code", "work_pool_name": pool["name"],
        "parameters": {"word": "hello"}, "parameter_openapi_schema": SCHEMA})
    assert not deployment["pull_steps"] and deployment["storage_document_id"] == block["id"]

    out = tmp_path / "out"
    out.mkdir()
    flow_run = start_flow_run(server3, deployment["id"], {"out_dir": str(out), "name": f"ran-{unique}.txt"})
    worker = run_worker_once(prefect3_api_url, pool["name"], tmp_path / "worker")
    state = wait_for_final_state(server3, flow_run["id"], context=worker)

    assert (state["type"], state["name"]) == ("COMPLETED", "Completed"), worker
    assert (out / f"ran-{unique}.txt").read_text() == f"HELLO {unique}", worker
