"""Storage that cannot take the code, and code that cannot be read: one line naming it, exit 1, no deployment.

Each case builds a project whose one deployment uploads to a broken storage location (or whose
bundle has an unreadable file), then runs `reconcile apply -v` and `reconcile plan` as real
processes. Checked: exit status 1, exactly one error line and it names the block (or the file),
no traceback, and no deployment (nor flow) was written for the affected bundle.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import boto3
import pytest

from integration.helpers import Server, write_manifest
from integration.upload_support import Project, block_ref, deployment_writes, make_block, many_files, upload_manifest, with_flow_file


@pytest.fixture
def server(prefect_api_url):
    with Server(prefect_api_url) as srv:
        yield srv


@dataclass
class Ctx:
    server: Server
    project: Project
    tmp: Path
    unique: str
    s3_endpoint: Callable[[], str]


@dataclass(frozen=True)
class Case:
    """`make(ctx)` writes the broken part and returns (the storage the manifest names, the text the error must name)."""

    make: Callable[[Ctx], tuple[dict, str]]
    plan_fails: bool = True     # False: only apply is checked (s3fs reads a missing bucket as "no marker yet")


def _local(ctx: Ctx, basepath: Path, name: str = "") -> tuple[dict, dict]:
    block = make_block(ctx.server, "local-file-system", name or f"it-bad-local-{ctx.unique}", {"basepath": str(basepath)})
    return block, block_ref(block, "local-file-system", basepath=str(basepath))


def missing_block(ctx: Ctx) -> tuple[dict, str]:
    name = f"it-missing-{ctx.unique}"
    storage = {"basepath": str(ctx.tmp / "nowhere"), "_block_document_id": "00000000-0000-0000-0000-000000000000",
               "_block_document_name": name, "_is_anonymous": False,
               "block_type_slug": "local-file-system", "_block_type_slug": "local-file-system"}
    return storage, f"local-file-system/{name}"


def json_block(ctx: Ctx) -> tuple[dict, str]:
    name = f"it-json-{ctx.unique}"
    doc = ctx.server.create_json_document(name, {"not": "storage"})
    return block_ref(doc, "json", value={"not": "storage"}), f"json/{name}"


def registered_block_type(ctx: Ctx) -> tuple[dict, str]:
    slug, name = f"it-store-{ctx.unique}", f"it-custom-{ctx.unique}"
    doc = make_block(ctx.server, slug, name, {})
    return block_ref(doc, slug), f"{slug}/{name}"


def missing_bucket(ctx: Ctx) -> tuple[dict, str]:
    endpoint = ctx.s3_endpoint()
    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test",
                      region_name="us-east-1")
    bucket = f"it-no-such-bucket-{ctx.unique}"
    assert bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}
    basepath = f"s3://{bucket}/flows"
    settings = {"key": "test", "secret": "test", "client_kwargs": {"endpoint_url": endpoint}}
    name = f"it-nobucket-{ctx.unique}"
    doc = make_block(ctx.server, "remote-file-system", name, {"basepath": basepath, "settings": settings})
    return block_ref(doc, "remote-file-system", basepath=basepath), f"remote-file-system/{name}"


def basepath_below_a_file(ctx: Ctx) -> tuple[dict, str]:
    # the tests run as root, so permissions stop nothing: a path through a regular file does
    (ctx.tmp / "afile").write_text("a file, not a directory\n", encoding="utf-8")
    block, storage = _local(ctx, ctx.tmp / "afile" / "x", f"it-unwritable-{ctx.unique}")
    return storage, f"local-file-system/{block['name']}"


def dangling_symlink(ctx: Ctx) -> tuple[dict, str]:
    os.symlink("gone.py", ctx.project.root / "pkg" / "broken.py")   # points inside the repository, at nothing
    _, storage = _local(ctx, ctx.tmp / "storage")
    return storage, "broken.py"


def two_bundles_one_location(ctx: Ctx) -> tuple[dict, str]:
    # a second directory of manifests and code, uploading to the very same place
    block, storage = _local(ctx, ctx.tmp / "storage")
    other = ctx.project.root / "other"
    (other / "job.py").parent.mkdir(parents=True)
    (other / "job.py").write_text("X = 1\n", encoding="utf-8")
    doc = upload_manifest(ctx.project.flow, "other", storage, "code")
    with_flow_file(other, doc)
    write_manifest(other, doc)
    return storage, str(ctx.tmp / "storage" / "code")


CASES = {
    "missing-storage-block": Case(missing_block),
    "json-block-as-storage": Case(json_block),
    "registered-non-storage-block-type": Case(registered_block_type),
    "s3-bucket-missing": Case(missing_bucket),
    "basepath-below-a-regular-file": Case(basepath_below_a_file),
    "bundle-file-is-a-dangling-symlink": Case(dangling_symlink),
    "two-bundle-directories-one-location": Case(two_bundles_one_location),
}


def _error_lines(run) -> list[str]:
    """What reports a failure: `error: …` on stderr, `✗ …` result lines on stdout."""
    return ([m for m in run.messages if m.startswith("error: ")]
            + [line.strip() for line in run.stdout.splitlines() if line.lstrip().startswith("✗")])


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_bad_storage_or_bundle_is_one_line_naming_it_and_no_deployment_is_written(
        request, server, prefect_api_url, tmp_path, unique, case):
    project = Project(prefect_api_url, tmp_path, unique, "up-bad")
    project.write(many_files(3))
    ctx = Ctx(server, project, tmp_path, unique, lambda: request.getfixturevalue("s3_endpoint"))
    storage, named = case.make(ctx)
    project.add_manifest(upload_manifest(project.flow, "main", storage, "code"))

    commands = ("plan", "apply") if case.plan_fails else ("apply",)
    for command in commands:
        run = project.run(command, "-v")
        assert run.returncode == 1, run
        assert "Traceback" not in run.stderr, run
        naming = [line for line in _error_lines(run) if named in line]
        assert len(naming) == 1, f"expected one error line naming {named!r}:\n{run}"
        assert deployment_writes(run) == [], run
        assert server.deployments(project.flow) == {}, f"a deployment was written for the bad bundle:\n{run}"
