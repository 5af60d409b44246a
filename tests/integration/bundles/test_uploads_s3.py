"""Code uploads to `s3://bucket/prefix` through a remote-file-system block, against moto's S3 server.

The bucket is versioned, so every PUT the upload makes leaves a version behind, even one that
rewrites an object with identical content (its ETag alone would not show that): the tests compare
each object's ETag, LastModified and version history before and after.
"""
from __future__ import annotations

import hashlib
import json

import boto3
import pytest

from integration.helpers import Server
from integration.upload_support import (
    MARKER_NAME, Project, block_ref, bundle_files, deployment_writes, human_size, make_block, many_files,
    parse_upload_line, upload_actions, upload_lines, upload_manifest,
)

SLUG = "remote-file-system"


@pytest.fixture
def server(prefect_api_url):
    with Server(prefect_api_url) as srv:
        yield srv


@pytest.fixture
def s3(s3_endpoint):
    return boto3.client("s3", endpoint_url=s3_endpoint, aws_access_key_id="test", aws_secret_access_key="test",
                        region_name="us-east-1")


class S3Project(Project):
    def __init__(self, server, api_url, tmp_path, unique, s3, endpoint) -> None:
        super().__init__(api_url, tmp_path, unique, "up-s3")
        self.s3 = s3
        self.bucket = f"it-up-{unique}"
        s3.create_bucket(Bucket=self.bucket)
        s3.put_bucket_versioning(Bucket=self.bucket, VersioningConfiguration={"Status": "Enabled"})
        self.basepath = f"s3://{self.bucket}/team/flows"
        self.path = "code"
        self.prefix = "team/flows/code/"
        settings = {"key": "test", "secret": "test", "client_kwargs": {"endpoint_url": endpoint}}
        self.block = make_block(server, SLUG, f"it-s3-{unique}", {"basepath": self.basepath, "settings": settings})

    @property
    def storage_key(self) -> str:
        return f"{SLUG}/{self.block['name']}"

    def deployment(self, name: str) -> None:
        storage = block_ref(self.block, SLUG, basepath=self.basepath)
        self.add_manifest(upload_manifest(self.flow, name, storage, self.path))

    def objects(self) -> dict[str, tuple[str, str, str, int]]:
        """key (below the location) → (ETag, LastModified, VersionId of the latest version, number of versions)."""
        versions: dict[str, list[dict]] = {}
        for page in self.s3.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=self.prefix):
            for v in page.get("Versions", []):
                versions.setdefault(v["Key"], []).append(v)
            for marker in page.get("DeleteMarkers", []):
                versions.setdefault(marker["Key"], []).append({**marker, "ETag": None})
        out = {}
        for key, items in versions.items():
            latest = next(v for v in items if v["IsLatest"])
            if latest["ETag"] is None:  # deleted
                continue
            out[key[len(self.prefix):]] = (latest["ETag"], str(latest["LastModified"]), latest["VersionId"], len(items))
        return out

    def content(self, rel: str) -> bytes:
        return self.s3.get_object(Bucket=self.bucket, Key=self.prefix + rel)["Body"].read()


@pytest.fixture
def project(server, prefect_api_url, tmp_path, unique, s3, s3_endpoint) -> S3Project:
    return S3Project(server, prefect_api_url, tmp_path, unique, s3, s3_endpoint)


def test_upload_to_s3_then_a_converged_plan_and_apply_write_nothing(project, server):
    project.write(many_files(25))
    project.deployment("main")
    local = bundle_files(project.root)

    plan = project.plan()
    assert plan.returncode == 0, plan
    [line] = upload_lines(plan.stdout)
    shown = parse_upload_line(line)
    assert shown["storage"] == project.storage_key
    assert shown["details"] == f"{len(local)} files changed, {human_size(sum(local.values()))}", plan
    assert project.objects() == {}, "plan wrote to the bucket"

    applied = project.apply()
    assert applied.returncode == 0, applied
    stored = project.objects()
    assert set(stored) == set(local) | {MARKER_NAME}
    for rel in local:
        assert project.content(rel) == (project.root / rel).read_bytes(), rel
    marker = json.loads(project.content(MARKER_NAME))
    assert {rel: e["sha256"] for rel, e in marker["files"].items()} == {
        rel: hashlib.sha256((project.root / rel).read_bytes()).hexdigest() for rel in local}
    dep = server.deployment(project.flow, "main")
    assert dep is not None and dep["storage_document_id"] == project.block["id"]

    again = project.plan("--detailed-exitcode")
    assert again.returncode == 0, again
    assert upload_lines(again.stdout) == [], again
    assert "No changes." in again.stdout

    second = project.apply("-v")
    assert second.returncode == 0, second
    assert second.writes == [], second
    assert project.objects() == stored, "a converged apply wrote to the bucket"


def test_one_changed_file_writes_one_object_plus_the_marker(project):
    project.write(many_files(12))
    project.deployment("main")
    first = project.apply()
    assert first.returncode == 0, first
    before = project.objects()
    assert len(before) == len(bundle_files(project.root)) + 1

    changed = "pkg/part2/mod_002.py"
    (project.root / changed).write_text("CHANGED = 2\n", encoding="utf-8")
    [action] = upload_actions(project.plan_json())
    assert (action["write"], action["remove"]) == ([changed], [])

    applied = project.apply("-v")
    assert applied.returncode == 0, applied
    assert deployment_writes(applied) == [], applied
    after = project.objects()
    assert set(after) == set(before)
    rewritten = {key for key in after if after[key] != before[key]}
    assert rewritten == {changed, MARKER_NAME}, f"objects written: {sorted(rewritten)}"
    assert after[changed][3] == before[changed][3] + 1          # exactly one PUT of that object
    assert after[changed][0] != before[changed][0]              # with the new content
    assert project.content(changed) == b"CHANGED = 2\n"

    settled = project.plan("--detailed-exitcode")
    assert settled.returncode == 0, settled
