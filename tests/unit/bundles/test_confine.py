"""confine: the one check every path from a manifest, reconcile.yaml or a saved plan goes through."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler.bundles import storage
from reconciler.errors import ManifestError
from reconciler.manifests import config
from reconciler.manifests.confine import Escapes, confine, inside, member


@pytest.mark.parametrize("root, path, joined", [
    ("/srv/flows", "code", "/srv/flows/code"),
    ("/srv/flows/", "a/b/", "/srv/flows/a/b"),
    ("/srv/flows", "a/../b", "/srv/flows/b"),
    ("/srv/flows", "", "/srv/flows"),
    ("/srv/flows", None, "/srv/flows"),
    ("/srv/flows", ".", "/srv/flows"),
    ("/srv/flows", "a\\b", "/srv/flows/a/b"),
    ("/srv/flows", "/srv/flows/team", "/srv/flows/team"),
    ("bucket/prefix", "a", "bucket/prefix/a"),
    ("/", "/anything", "/anything"),
    (".", "sub/dir", "sub/dir"),
], ids=["plain", "slashes", "dot-dot-inside", "empty", "none", "dot", "backslash", "absolute-inside",
        "relative-root", "filesystem-root", "dot-root"])
def test_paths_inside_their_root(root, path, joined):
    assert confine(root, path) == joined


@pytest.mark.parametrize("root, path", [
    ("/srv/flows", ".."),
    ("/srv/flows", "../x"),
    ("/srv/flows", "code/../../x"),
    ("/srv/flows", "..\\x"),
    ("/srv/flows", "/etc/passwd"),
    ("/srv/flows", "/srv/flows-other"),
    ("/srv/flows", "//srv/flows"),
    ("bucket/prefix", "../other"),
    ("bucket/prefix", "../../other-bucket/x"),
    (".", "../x"),
    (".", "/x"),
], ids=["parent", "sibling", "after-a-directory", "backslash", "absolute", "name-prefix", "double-slash",
        "bucket-folder", "other-bucket", "dot-root", "dot-root-absolute"])
def test_paths_leaving_their_root_escape(root, path):
    with pytest.raises(Escapes) as info:
        confine(root, path)
    assert "\n" not in str(info.value) and repr(path) in str(info.value)
    assert not inside(path, root, follow_links=False)


def test_following_links_a_symlink_inside_the_root_that_points_out_escapes(tmp_path):
    (tmp_path / "root").mkdir()
    (tmp_path / "outside").mkdir()
    os.symlink(tmp_path / "outside", tmp_path / "root" / "link")
    assert confine(tmp_path / "root", "link/x") == f"{tmp_path}/root/link/x"      # lexically inside
    with pytest.raises(Escapes) as info:
        confine(tmp_path / "root", "link/x", follow_links=True)
    assert info.value.through_link and info.value.resolved == f"{tmp_path}/outside/x"


def test_following_links_a_root_that_is_itself_a_link_is_fine(tmp_path):
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "alias")
    assert confine(tmp_path / "alias", "code", follow_links=True) == f"{tmp_path}/alias/code"


@pytest.mark.parametrize("rel, ok", [
    ("flow.py", True), ("pkg/mod.py", True), ("a\\b.py", True),
    ("", False), ("/etc/passwd", False), ("\\x", False), ("C:x", False), ("../x", False), ("a/../b", False),
    ("a//b", False), ("./a", False), ("a/", False), (None, False), (3, False),
])
def test_member_is_a_relative_file_path_with_no_dot_parts(rel, ok):
    assert member(rel) is ok


# -- storage locations: the block's root + the manifest's path ---------------------------------

@pytest.mark.parametrize("slug, data, path", [
    ("local-file-system", {"basepath": "/srv/flows"}, "../elsewhere"),
    ("local-file-system", {"basepath": "/srv/flows"}, "/root/.ssh"),
    ("remote-file-system", {"basepath": "s3://bucket/flows"}, "../other"),
    ("s3", {"bucket_path": "bucket/flows"}, "../../other-bucket"),
    ("s3-bucket", {"bucket_name": "bucket", "bucket_folder": "flows"}, "../x"),
    ("gcs", {"bucket_path": "bucket/flows"}, "x/../../y"),
    ("azure", {"bucket_path": "flows", "azure_storage_container": "c"}, "../../x"),
    ("smb", {"share_path": "/share/flows"}, "../x"),
    ("github", {"repository": "https://github.com/acme/flows"}, "../x"),
])
def test_a_manifest_path_leaving_the_blocks_root_escapes(slug, data, path):
    with pytest.raises(Escapes):
        storage.target(slug, f"{slug}/code", data, path)


def test_a_local_path_through_a_symlink_in_the_basepath_escapes(tmp_path):
    (tmp_path / "base").mkdir()
    os.symlink("/", tmp_path / "base" / "root")
    with pytest.raises(Escapes):
        storage.target("local-file-system", "local-file-system/code", {"basepath": str(tmp_path / "base")},
                       "root/etc")


def test_a_local_absolute_path_inside_the_basepath_is_kept():
    t = storage.target("local-file-system", "local-file-system/code", {"basepath": "/srv/flows"}, "/srv/flows/x")
    assert t.root == "/srv/flows/x"


def test_the_blocks_own_folder_is_not_the_manifests_business():
    t = storage.target("s3-bucket", "s3-bucket/code", {"bucket_name": "b", "bucket_folder": "team/flows"}, "etl")
    assert t.root == "b/team/flows/etl"


# -- reconcile.yaml's bundle_root ------------------------------------------------------------------

def _config_error(root: Path, value: str) -> str:
    (root / "reconcile.yaml").write_text(f"source: s\nbundle_root: {value!r}\n", encoding="utf-8")
    with pytest.raises(ManifestError) as info:
        config.load(root)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{root / 'reconcile.yaml'}:2:")
    return message


@pytest.fixture
def repo(tmp_path) -> Path:
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    (tmp_path / "repo" / "flows").mkdir()
    (tmp_path / "private").mkdir()
    return tmp_path / "repo"


@pytest.mark.parametrize("value", ["../..", "/etc", "../../private"])
def test_a_bundle_root_outside_the_repository_is_refused_naming_the_line(repo, value):
    message = _config_error(repo / "flows", value)
    assert "bundle_root" in message and "leaves the repository" in message and "(use " in message


def test_a_bundle_root_through_a_symlink_out_of_the_repository_is_refused(repo, tmp_path):
    os.symlink(tmp_path / "private", repo / "flows" / "leak")
    assert "through a symlink" in _config_error(repo / "flows", "leak")


@pytest.mark.parametrize("value", [".", "..", "../flows", "sub"])
def test_a_bundle_root_inside_the_repository_is_accepted(repo, value):
    (repo / "flows" / "reconcile.yaml").write_text(f"bundle_root: {value!r}\n", encoding="utf-8")
    loaded = config.load(repo / "flows")
    assert loaded.config.bundle_root == value
    assert config.bundle_directory(repo / "flows", loaded.config) == (repo / "flows" / value).resolve()
