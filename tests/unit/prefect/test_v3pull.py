"""prefect/v3fields: what a 2.x storage block 3.x lacks becomes (pull steps), as pure rules.

s3/gcs/azure → `pull_from_remote_storage` on `s3://`/`gcs://`/`az://` + bucket path + path (the same place the
2.x block kept the code, and where bundles/ uploads it); github/gitlab-repository → `git_clone`.  Credentials
only as Secret block templates: never a value from the manifest.
"""
from __future__ import annotations

import json

import pytest

from reconciler.bundles.storage import target
from reconciler.manifests.blocks import BlockRef
from reconciler.prefect import v3pull
from reconciler.prefect.v3fields import Unrepresentable

PULL = v3pull.STEPS + "pull_from_remote_storage"
CLONE = v3pull.STEPS + "git_clone"
WORKDIR = v3pull.STEPS + "set_working_directory"


@pytest.mark.parametrize("slug, kind", [
    (None, None), ("local-file-system", "block"), ("remote-file-system", "block"), ("smb", "block"),
    ("s3", "remote"), ("gcs", "remote"), ("azure", "remote"), ("github", "git"), ("gitlab-repository", "git"),
])
def test_each_storage_type_has_one_way_onto_prefect3(slug, kind):
    assert v3pull.storage_kind(BlockRef(slug, "x") if slug else None) == kind


def test_a_storage_type_without_a_way_names_the_storage_field():
    with pytest.raises(Unrepresentable) as info:
        v3pull.storage_kind(BlockRef("s3-bucket", "x"))
    assert info.value.field == "storage" and "s3-bucket" in str(info.value)


@pytest.mark.parametrize("slug, bucket, path, url", [
    ("s3", "flows-bucket/team", "code", "s3://flows-bucket/team/code"),
    ("s3", "flows-bucket/team/", "/code/", "s3://flows-bucket/team/code"),
    ("s3", "flows-bucket", None, "s3://flows-bucket"),
    ("gcs", "gbucket/x", "etl/a", "gcs://gbucket/x/etl/a"),
    ("azure", "container/folder", "etl", "az://container/folder/etl"),
])
def test_a_bucket_block_is_one_pull_from_remote_storage_step_on_its_location(slug, bucket, path, url):
    steps = v3pull.pull_steps(BlockRef(slug, "named", {"bucket_path": bucket}), path)
    assert steps == [{PULL: {"url": url}}]
    # the upload goes where the step reads: the 2.x block's own location (bundles/storage.target)
    assert target(slug, f"{slug}/named", {"bucket_path": bucket}, path).url == url


def test_credentials_in_the_manifest_never_reach_the_step_only_secret_block_templates_do():
    data = {"bucket_path": "b/p", "aws_access_key_id": "AKIAREAL", "aws_secret_access_key": "real-secret"}
    assert v3pull.pull_settings("s3", data) == {"bucket_path": "b/p"}
    plain = v3pull.pull_steps(BlockRef("s3", None, data), "code")
    templated = v3pull.pull_steps(BlockRef("s3", None, data), "code", {"secret": "aws-secret", "key": "aws-key"})
    assert "real-secret" not in json.dumps(plain + templated) and "AKIAREAL" not in json.dumps(plain + templated)
    assert templated == [{PULL: {"url": "s3://b/p/code", "key": "{{ prefect.blocks.secret.aws-key }}",
                                 "secret": "{{ prefect.blocks.secret.aws-secret }}"}}]


@pytest.mark.parametrize("slug, data, path, field", [
    ("s3", {"bucket_path": "b"}, "../other", "path"),
    ("s3", {"bucket_path": "b"}, "a/../../other", "path"),
    ("s3", {}, "code", "storage"),
    ("gcs", {"bucket_path": "  "}, "code", "storage"),
    ("azure", {"bucket_path": "b", "azure_storage_container": "c"}, "code", "storage"),
    ("azure", {"bucket_path": "b", "has_container": True}, "code", "storage"),   # a named block's, masked
    ("github", {}, None, "storage"),
    ("github", {"repository": "https://github.com/a/b"}, "../up", "path"),
    ("github", {"repository": "https://github.com/a/b"}, "/etc", "path"),
])
def test_what_a_pull_step_cannot_say_names_the_manifest_field(slug, data, path, field):
    with pytest.raises(Unrepresentable) as info:
        v3pull.pull_steps(BlockRef(slug, None, data), path)
    assert info.value.field == field
    assert "\n" not in str(info.value)


def test_a_named_azure_block_keeps_only_that_its_container_is_set():
    kept = v3pull.pull_settings("azure", {"bucket_path": "b", "azure_storage_container": "**********",
                                            "azure_storage_account_key": "**********"})
    assert kept == {"bucket_path": "b", "has_container": True}


def test_a_git_block_is_a_git_clone_of_its_repository_and_reference():
    data = {"repository": "https://github.com/acme/flows", "reference": "v2", "access_token": "ghp_real"}
    assert v3pull.pull_steps(BlockRef("github", None, data), None) == [
        {CLONE: {"repository": "https://github.com/acme/flows", "branch": "v2"}}]
    # a `path` is a directory of the checkout: the run starts there
    assert v3pull.pull_steps(BlockRef("gitlab-repository", "x", {"repository": "git@gitlab.com:a/b.git"}),
                               "etl/daily", {"access_token": "gl-token"}) == [
        {CLONE: {"id": "clone", "repository": "git@gitlab.com:a/b.git",
                 "access_token": "{{ prefect.blocks.secret.gl-token }}"}},
        {WORKDIR: {"directory": "{{ clone.directory }}/etl/daily"}}]
    assert v3pull.pull_settings("github", data) == {"repository": "https://github.com/acme/flows",
                                                      "reference": "v2"}


@pytest.mark.parametrize("url", ["https://ghp_abc123@github.com/a/b", "https://user:pw@gitlab.com/a/b.git"])
def test_a_token_in_a_repository_url_is_refused_without_showing_it(url):
    with pytest.raises(Unrepresentable) as info:
        v3pull.pull_steps(BlockRef("github", None, {"repository": url}), None)
    assert info.value.field == "storage" and "credentials" in str(info.value)
    assert "ghp_abc123" not in str(info.value) and "user:pw" not in str(info.value)


def test_ssh_urls_with_the_git_user_are_no_credentials():
    [step] = v3pull.pull_steps(BlockRef("github", None, {"repository": "ssh://git@github.com/a/b.git"}), "")
    assert step[CLONE]["repository"] == "ssh://git@github.com/a/b.git"
