"""storage.target: a storage block's data (as the API returns it with secrets) → where code is uploaded."""
from __future__ import annotations

import importlib.util
import json
import tomllib
from pathlib import Path

import fsspec
import pytest
from fsspec.implementations.memory import MemoryFileSystem

from reconciler.bundles import storage
from reconciler.errors import ReconcileError
from reconciler.bundles.storage import ReadOnly, Target

PYPROJECT = Path(__file__).resolve().parents[3] / "pyproject.toml"


@pytest.fixture(autouse=True)
def clean_memory_store():
    MemoryFileSystem.store.clear()
    MemoryFileSystem.pseudo_dirs[:] = [""]
    yield
    MemoryFileSystem.store.clear()
    MemoryFileSystem.pseudo_dirs[:] = [""]


def one_line_error(slug, data, path=None, block=None) -> str:
    with pytest.raises(ReconcileError) as info:
        t = storage.target(slug, block or f"{slug}/code", data, path)
        if isinstance(t, Target):
            t.filesystem()
    message = str(info.value)
    assert "\n" not in message
    return message


# -- local-file-system -------------------------------------------------------------------------

@pytest.mark.parametrize("basepath, path, root", [
    ("/srv/flows", "catfact", "/srv/flows/catfact"),
    ("/srv/flows/", "catfact", "/srv/flows/catfact"),
    ("/srv/flows", "", "/srv/flows"),
    ("/srv/flows", None, "/srv/flows"),
    ("/srv/flows", "team/etl", "/srv/flows/team/etl"),
    ("/srv/flows", "team\\etl", "/srv/flows/team/etl"),
    ("/srv/flows", "./catfact/", "/srv/flows/catfact"),
], ids=["plain", "trailing-slash", "empty-path", "no-path", "nested", "windows-separators", "dot-and-slash"])
def test_local_file_system_root_is_basepath_plus_path(basepath, path, root):
    t = storage.target("local-file-system", "local-file-system/code", {"basepath": basepath}, path)
    assert t == Target("local-file-system/code", "file", {}, root)
    assert t.url == root


def test_local_file_system_expands_home(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    t = storage.target("local-file-system", "local-file-system/code", {"basepath": "~/storage"}, "catfact")
    assert t.root == f"{tmp_path}/storage/catfact"


def test_local_file_system_target_writes_where_it_says(tmp_path):
    t = storage.target("local-file-system", "local-file-system/code", {"basepath": str(tmp_path)}, "sub")
    fs = t.filesystem()
    fs.makedirs(t.root, exist_ok=True)
    fs.pipe_file(f"{t.root}/hello.txt", b"hi")
    assert (tmp_path / "sub" / "hello.txt").read_bytes() == b"hi"


@pytest.mark.parametrize("data", [{}, {"basepath": None}, {"basepath": ""}], ids=["absent", "null", "empty"])
def test_local_file_system_without_basepath_is_a_one_line_error(data):
    message = one_line_error("local-file-system", data)
    assert "local-file-system/code" in message and "basepath" in message


# -- remote-file-system ----------------------------------------------------------------------------

def test_remote_file_system_s3_url_and_settings():
    settings = {"key": "AKIA", "secret": "s3cr3t", "client_kwargs": {"endpoint_url": "http://127.0.0.1:9000"}}
    t = storage.target("remote-file-system", "remote-file-system/minio",
                       {"basepath": "s3://bucket/prefix", "settings": settings}, "catfact")
    assert (t.protocol, t.options, t.root) == ("s3", settings, "bucket/prefix/catfact")
    assert t.url == "s3://bucket/prefix/catfact"
    assert "s3cr3t" not in t.url


@pytest.mark.parametrize("basepath, path, root", [
    ("memory://x", None, "x"),
    ("memory://x/", "catfact", "x/catfact"),
    ("s3://bucket", "", "bucket"),
    ("s3://bucket/prefix/", "a/b", "bucket/prefix/a/b"),
])
def test_remote_file_system_root(basepath, path, root):
    t = storage.target("remote-file-system", "remote-file-system/code", {"basepath": basepath}, path)
    assert t.root == root
    assert t.options == {}


def test_remote_file_system_path_with_a_leading_slash_stays_under_the_basepath():
    # Prefect 2's RemoteFileSystem._resolve_path: f"{basepath.rstrip('/')}/{path.lstrip('/')}"
    t = storage.target("remote-file-system", "remote-file-system/code", {"basepath": "s3://bucket/prefix"}, "/flows")
    assert t.url == "s3://bucket/prefix/flows"


def test_memory_target_is_a_working_filesystem():
    t = storage.target("remote-file-system", "remote-file-system/mem", {"basepath": "memory://x"}, "catfact")
    assert (t.protocol, t.url) == ("memory", "memory://x/catfact")
    fs = t.filesystem()
    fs.pipe_file(f"{t.root}/flow.py", b"print(1)")
    assert fsspec.filesystem("memory").cat_file("/x/catfact/flow.py") == b"print(1)"


@pytest.mark.parametrize("basepath", ["", "/srv/flows", "bucket/prefix"], ids=["empty", "local-path", "no-scheme"])
def test_remote_file_system_needs_a_url(basepath):
    message = one_line_error("remote-file-system", {"basepath": basepath})
    assert "remote-file-system/code" in message


def test_unknown_protocol_is_a_one_line_error():
    message = one_line_error("remote-file-system", {"basepath": "nosuchproto://bucket/x"})
    assert "remote-file-system/code" in message


# -- s3 / gcs / azure / smb blocks -----------------------------------------------------------------------

BLOCKS = {
    "s3-with-keys": ("s3", {"bucket_path": "my-bucket/flows", "aws_access_key_id": "AKIA",
                            "aws_secret_access_key": "s3cr3t"},
                     "s3", {"key": "AKIA", "secret": "s3cr3t"}, "my-bucket/flows/catfact"),
    "s3-from-environment": ("s3", {"bucket_path": "my-bucket", "aws_access_key_id": None,
                                   "aws_secret_access_key": None},
                            "s3", {}, "my-bucket/catfact"),
    "gcs": ("gcs", {"bucket_path": "gbucket/dir", "project": "proj",
                    "service_account_info": json.dumps({"type": "service_account", "project_id": "proj"})},
            "gcs", {"project": "proj", "token": {"type": "service_account", "project_id": "proj"}},
            "gbucket/dir/catfact"),
    "gcs-from-environment": ("gcs", {"bucket_path": "gbucket", "project": None, "service_account_info": None},
                             "gcs", {}, "gbucket/catfact"),
    "azure": ("azure", {"bucket_path": "container/dir", "azure_storage_connection_string": "cs",
                        "azure_storage_account_name": "acct", "azure_storage_account_key": "k",
                        "azure_storage_tenant_id": None, "azure_storage_client_id": "",
                        "azure_storage_client_secret": None},
              "az", {"connection_string": "cs", "account_name": "acct", "account_key": "k"},
              "container/dir/catfact"),
    "smb": ("smb", {"share_path": "/SHARE/dir", "smb_host": "fileserver", "smb_username": "u",
                    "smb_password": "p", "smb_port": 1445},
            "smb", {"host": "fileserver", "username": "u", "password": "p", "port": 1445}, "/SHARE/dir/catfact"),
}


@pytest.mark.parametrize("slug, data, protocol, options, root", BLOCKS.values(), ids=BLOCKS.keys())
def test_storage_block_data_gives_protocol_options_and_root(slug, data, protocol, options, root):
    t = storage.target(slug, f"{slug}/code", data, "catfact")
    assert isinstance(t, Target)
    assert (t.protocol, t.options, t.root) == (protocol, options, root)
    assert t.block == f"{slug}/code"


@pytest.mark.parametrize("slug", ["s3", "gcs", "azure"])
def test_bucket_block_without_bucket_path_is_a_one_line_error(slug):
    message = one_line_error(slug, {"bucket_path": None})
    assert f"{slug}/code" in message and "bucket_path" in message


def test_azure_block_with_a_container_uploads_into_that_container():
    # Prefect 2's Azure block: basepath az://<container>@<account>.dfs.core.windows.net/<bucket_path>
    data = {"bucket_path": "dir", "azure_storage_container": "flows", "azure_storage_account_name": "acct",
            "azure_storage_account_key": "k"}
    t = storage.target("azure", "azure/code", data, "catfact")
    container = t.root.split("/", 1)[0].split("@", 1)[0]
    assert container == "flows"
    assert t.root.endswith("dir/catfact")


# -- read-only repository blocks --------------------------------------------------------------------------

@pytest.mark.parametrize("slug, data, described", [
    ("github", {"repository": "https://github.com/acme/flows.git", "reference": "v1.2", "access_token": "ghp_x"},
     "https://github.com/acme/flows.git@v1.2"),
    ("github", {"repository": "https://github.com/acme/flows.git", "reference": None},
     "https://github.com/acme/flows.git@default branch"),
    ("gitlab-repository", {"repository": "https://gitlab.com/acme/flows.git", "reference": "main"},
     "https://gitlab.com/acme/flows.git@main"),
], ids=["github-ref", "github-default-branch", "gitlab"])
def test_repository_blocks_are_read_only(slug, data, described):
    t = storage.target(slug, f"{slug}/code", data, "catfact")
    assert isinstance(t, ReadOnly)
    assert t.describe() == described
    assert "ghp_x" not in t.describe()


@pytest.mark.parametrize("slug", ["docker-container", "azure-blob-storage-container", "process", "json"])
def test_unknown_block_type_is_a_one_line_error(slug):
    message = one_line_error(slug, {"bucket_path": "b"}, block=f"{slug}/code")
    assert repr(slug) in message and f"{slug}/code" in message


# -- a protocol whose library is missing -------------------------------------------------------------------

def declared_extras() -> set[str]:
    return set(tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["optional-dependencies"])


@pytest.mark.skipif(importlib.util.find_spec("gcsfs") is not None, reason="gcsfs is installed")
def test_gcs_without_gcsfs_names_the_gcs_extra():
    t = storage.target("remote-file-system", "remote-file-system/g", {"basepath": "gcs://bucket/dir"}, None)
    with pytest.raises(ReconcileError) as info:
        t.filesystem()
    message = str(info.value)
    assert "\n" not in message
    assert "prefect-reconcile[gcs]" in message and "gcsfs" in message
    assert "remote-file-system/g" in message


@pytest.mark.parametrize("slug, data, extra", [
    ("s3", {"bucket_path": "b"}, "s3"),
    ("gcs", {"bucket_path": "b"}, "gcs"),
    ("azure", {"bucket_path": "b"}, "azure"),
    ("remote-file-system", {"basepath": "gs://b"}, "gcs"),
    ("remote-file-system", {"basepath": "abfs://b"}, "azure"),
    ("smb", {"share_path": "/SHARE", "smb_host": "h"}, None),
    ("remote-file-system", {"basepath": "sftp://host/dir"}, None),
], ids=["s3", "gcs", "azure", "gs-url", "abfs-url", "smb", "sftp-url"])
def test_missing_protocol_library_names_an_extra_that_exists(monkeypatch, slug, data, extra):
    def no_library(protocol, **options):
        raise ImportError(f"Install the library for {protocol}")

    monkeypatch.setattr(fsspec, "filesystem", no_library)
    t = storage.target(slug, f"{slug}/code", data, None)
    with pytest.raises(ReconcileError) as info:
        t.filesystem()
    message = str(info.value)
    assert "\n" not in message
    assert f"{slug}/code" in message
    named = message.split("prefect-reconcile[", 1)[1].split("]", 1)[0]
    if extra is not None:
        assert named == extra
    assert named in declared_extras(), f"`pip install 'prefect-reconcile[{named}]'` installs nothing"


def test_s3_target_filesystem_gets_the_block_credentials():
    if importlib.util.find_spec("s3fs") is None:
        pytest.skip("s3fs is not installed")
    t = storage.target("s3", "s3/code", {"bucket_path": "b/dir", "aws_access_key_id": "AKIA",
                                         "aws_secret_access_key": "s3cr3t"}, None)
    fs = t.filesystem()
    assert (fs.key, fs.secret) == ("AKIA", "s3cr3t")


def test_prefect_collection_buckets_map_to_their_filesystems():
    """prefect-aws's S3Bucket and prefect-gcp's GcsBucket, with their nested credential blocks."""
    from reconciler.bundles.storage import target
    s3 = target("s3-bucket", "s3-bucket/flows", {
        "bucket_name": "acme", "bucket_folder": "prod/",
        "credentials": {"aws_access_key_id": "AK", "aws_secret_access_key": "SK",
                        "aws_client_parameters": {"endpoint_url": "http://127.0.0.1:9000"}}}, "etl")
    assert (s3.protocol, s3.root) == ("s3", "acme/prod/etl")
    assert s3.options == {"key": "AK", "secret": "SK", "client_kwargs": {"endpoint_url": "http://127.0.0.1:9000"}}
    gcs = target("gcs-bucket", "gcs-bucket/flows", {"bucket": "acme", "bucket_folder": "",
                                                    "gcp_credentials": {"project": "p1"}}, "/etl")
    assert (gcs.protocol, gcs.root, gcs.options) == ("gcs", "acme/etl", {"project": "p1"})
