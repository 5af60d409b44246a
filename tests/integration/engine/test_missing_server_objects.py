"""Every missing server object and every storage problem in one run, each one line naming file:line (issue 12.5).

A real server: blocks, block types and work pools are looked up there; nothing may be written.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from integration.helpers import Server, manifest, reconcile, write_manifest
from integration.upload_support import block_ref, make_block, with_flow_file, write_tree

pytestmark = pytest.mark.integration

LINE = re.compile(r"^error: (?P<file>m/[^:]+):(?P<line>\d+):1: (?P<field>\w+): (?P<message>.*)$")


@pytest.fixture
def server(prefect_api_url):
    with Server(prefect_api_url) as srv:
        yield srv


def line(path: Path, key: str) -> int:
    """The 1-based line of the top-level `key:` in a manifest."""
    return next(n for n, text in enumerate(path.read_text().splitlines(), 1) if text.startswith(f"{key}:"))


def errors(run) -> dict[str, dict[str, str]]:
    """file → field → message, from the run's `error:` lines (each must be one)."""
    found: dict[str, dict[str, str]] = {}
    for message in run.messages:
        if message.startswith("error: "):
            match = LINE.match(message)
            assert match, message
            found.setdefault(match["file"], {})[match["field"]] = f"{match['line']}: {match['message']}"
    return found


def assert_nothing_written(server: Server, run, source: str, *flows: str) -> None:
    assert run.writes == [], f"bad input led to writes:\n{run}"
    for flow in flows:
        assert server.flow(flow) is None
    assert server.inventory(source) is None and server.locks(source) == []


def test_a_missing_block_type_block_and_work_pool_are_all_reported_in_one_run(prefect_api_url, server, tmp_path,
                                                                                unique):
    source, flow = f"it-missing-{unique}", f"it-missing-{unique}"
    root = tmp_path / "m"
    storage = {"basepath": "/tmp/nowhere", "_block_document_id": "4722ac30-ee78-4ec1-a15f-be22c536711f",
               "_block_document_name": f"gone-{unique}", "_is_anonymous": False,
               "block_type_slug": "local-file-system", "_block_type_slug": "local-file-system"}
    both_doc = manifest(flow, "both", storage=storage, work_pool_name=f"no-pool-{unique}")
    with_flow_file(root, both_doc)        # the code an upload needs is there: only the server lacks things
    both = write_manifest(root, both_doc)
    odd_type = f"it-unregistered-{unique}"
    infra = {"type": odd_type, "env": {}, "block_type_slug": odd_type, "_block_type_slug": odd_type}
    typed = write_manifest(root, manifest(flow, "typed", infrastructure=infra))
    write_manifest(root, manifest(flow, "fine"))

    for command in ("plan", "apply"):
        run = reconcile(prefect_api_url, command, root, "--source", source, "-v", cwd=tmp_path)
        assert run.returncode == 1, run
        assert run.stdout == ""
        found = errors(run)
        assert set(found) == {"m/both-deployment.yaml", "m/typed-deployment.yaml"}, run
        assert found["m/both-deployment.yaml"]["storage"] == (
            f"{line(both, 'storage')}: block local-file-system/gone-{unique} not found on the server at "
            f"{prefect_api_url}; create it there or correct `_block_document_name`")
        assert found["m/both-deployment.yaml"]["work_pool_name"] == (
            f"{line(both, 'work_pool_name')}: work pool 'no-pool-{unique}' not found on the server at "
            f"{prefect_api_url}; create it there or correct the name")
        assert found["m/typed-deployment.yaml"]["infrastructure"] == (
            f"{line(typed, 'infrastructure')}: block type '{odd_type}' is not registered on the server at "
            f"{prefect_api_url}; register it with `prefect block register -m MODULE` (MODULE: the Python module "
            "of the collection that defines it), or correct the block's type")
        assert run.messages[-1] == "3 error(s); nothing was changed."
        assert_nothing_written(server, run, source, flow)


def test_storage_problems_name_the_manifest_line_and_come_together(prefect_api_url, server, tmp_path, unique):
    source, flow = f"it-storage-{unique}", f"it-storage-{unique}"
    root = tmp_path / "m"
    write_tree(root, {"flow.py": "from prefect import flow\n\n@flow\ndef main(n: int = 1, label: str = 'x'):\n"
                                 "    pass\n"})
    not_url = make_block(server, "remote-file-system", f"not-url-{unique}", {"basepath": "just/a/dir"})
    no_base = make_block(server, "local-file-system", f"no-base-{unique}", {"basepath": ""})
    first = write_manifest(root, manifest(flow, "a", storage=block_ref(not_url, "remote-file-system",
                                                                        basepath="just/a/dir"), path="x"))
    second = write_manifest(root, manifest(flow, "b", storage=block_ref(no_base, "local-file-system", basepath=""),
                                           path="y"))
    run = reconcile(prefect_api_url, "plan", root, "--source", source, cwd=tmp_path)
    assert run.returncode == 1, run
    found = errors(run)
    assert found == {
        "m/a-deployment.yaml": {"storage": f"{line(first, 'storage')}: storage remote-file-system/not-url-{unique}: "
                                           "basepath 'just/a/dir' is not a URL like s3://bucket/path"},
        "m/b-deployment.yaml": {"storage": f"{line(second, 'storage')}: storage local-file-system/no-base-{unique} "
                                           "has no basepath; set one to upload code to it"},
    }, run
    assert run.messages[-1] == "2 error(s); nothing was changed."
    assert_nothing_written(server, run, source, flow)
