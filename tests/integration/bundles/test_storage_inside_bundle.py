"""A local storage folder inside the code it receives is refused, against the real server.

Uploading `flows/` into `flows/storage/` would copy the previous upload into the next one
(storage/storage/…) without end. The plan names the manifest's `storage:` line, exits 1 and writes
nothing; leaving the folder out with `.prefectignore` makes it a normal upload."""
from __future__ import annotations

import pytest

from integration.helpers import Server
from integration.upload_support import Project, block_ref, make_block, stat_snapshot, upload_manifest

SLUG = "local-file-system"


@pytest.fixture
def server(prefect_api_url):
    with Server(prefect_api_url) as srv:
        yield srv


def test_storage_inside_the_bundle_is_refused_until_prefectignore_leaves_it_out(server, prefect_api_url,
                                                                                  tmp_path, unique):
    project = Project(prefect_api_url, tmp_path, unique, "inside")
    basepath = project.root / "storage"
    basepath.mkdir()
    (basepath / "old.txt").write_text("a previous upload\n")
    block = make_block(server, SLUG, f"it-inside-{unique}", {"basepath": str(basepath)})
    project.add_manifest(upload_manifest(project.flow, "nightly", block_ref(block, SLUG, basepath=str(basepath)),
                                         None))
    before = stat_snapshot(basepath)

    refused = project.apply()
    assert refused.returncode == 1, refused
    [line] = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert "-deployment.yaml:" in line and ": storage: " in line
    assert f"puts the code in {basepath}, inside the code it receives" in line
    assert ".prefectignore" in line
    assert stat_snapshot(basepath) == before
    assert server.deployment(project.flow, "nightly") is None

    (project.root / ".prefectignore").write_text("storage/\n")
    applied = project.apply()
    assert applied.returncode == 0, applied
    assert (basepath / "flow.py").exists() or any(basepath.rglob("*.py"))
    assert not (basepath / "storage").exists()
    assert project.plan().returncode == 0
