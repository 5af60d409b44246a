"""source: the default source name (git remote + path inside the repo) and its block-safe slug."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from reconciler.engine import source

# Prefect 2.20's rule for block document names (prefect/_internal/schemas/validators.py)
BLOCK_NAME = re.compile(r"^[a-z0-9-]*$")


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    top = tmp_path / "flows"
    (top / "sub" / "dir").mkdir(parents=True)
    git("init", "-q", str(top), cwd=tmp_path)
    git("remote", "add", "origin", "git@github.com:acme/flows.git", cwd=top)
    return top


def test_directory_inside_a_repo(repo):
    assert source.default_name(repo / "sub" / "dir") == "github.com/acme/flows//sub/dir"


def test_repository_top(repo):
    assert source.default_name(repo) == "github.com/acme/flows"


def test_a_file_counts_as_its_directory(repo):
    manifest = repo / "sub" / "dir" / "etl-deployment.yaml"
    manifest.write_text("name: n\nflow_name: f\n")
    assert source.default_name(manifest) == "github.com/acme/flows//sub/dir"


def test_relative_path_is_resolved(repo, monkeypatch):
    monkeypatch.chdir(repo / "sub")
    assert source.default_name(Path("dir")) == "github.com/acme/flows//sub/dir"
    assert source.default_name(Path(".")) == "github.com/acme/flows//sub"


@pytest.mark.parametrize(
    "url",
    [
        "https://x-access-token:ghp_secret123@github.com/acme/flows.git",
        "https://ghp_secret123@github.com/acme/flows",
        "ssh://git@github.com/acme/flows.git",
        "https://github.com/acme/flows/",
    ],
)
def test_https_and_ssh_remotes_give_the_same_name_without_credentials(repo, url):
    git("remote", "set-url", "origin", url, cwd=repo)
    name = source.default_name(repo / "sub" / "dir")
    assert name == "github.com/acme/flows//sub/dir"
    assert "secret" not in name and "@" not in name


def test_remote_with_port_keeps_the_port(repo):
    git("remote", "set-url", "origin", "https://user:pw@git.example.com:8443/grp/flows.git", cwd=repo)
    assert source.default_name(repo / "sub") == "git.example.com:8443/grp/flows//sub"


def test_origin_is_preferred_over_other_remotes(repo):
    git("remote", "add", "aaa-fork", "git@github.com:someone/fork.git", cwd=repo)
    assert source.default_name(repo) == "github.com/acme/flows"


def test_another_remote_is_used_when_there_is_no_origin(repo):
    git("remote", "rename", "origin", "upstream", cwd=repo)
    assert source.default_name(repo / "sub") == "github.com/acme/flows//sub"


def test_repo_without_remote_uses_its_path(tmp_path):
    top = tmp_path / "local"
    (top / "deploy").mkdir(parents=True)
    git("init", "-q", str(top), cwd=tmp_path)
    assert source.default_name(top / "deploy") == f"{top.resolve()}//deploy"


def test_outside_git_is_the_absolute_path(tmp_path, monkeypatch):
    plain = tmp_path / "plain" / "dir"
    plain.mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "plain")
    name = source.default_name(Path("dir"))
    assert name == str(plain.resolve())
    assert Path(name).is_absolute()


@pytest.mark.parametrize(
    "url, expected",
    [
        ("git@github.com:acme/flows.git", "github.com/acme/flows"),
        ("github.com:acme/flows", "github.com/acme/flows"),
        ("ssh://git@host:2222/acme/flows.git", "host:2222/acme/flows"),
        ("https://tok@gitlab.com/grp/sub/flows.git", "gitlab.com/grp/sub/flows"),
        ("file:///srv/git/flows.git", "/srv/git/flows"),
        ("/srv/git/flows.git", "/srv/git/flows"),
    ],
)
def test_normalize_remote(url, expected):
    assert source.normalize_remote(url) == expected


def test_host_case_does_not_split_a_repository():
    # BUG: the https branch lowercases the host (urlsplit().hostname), the scp-style branch does not,
    # so two clones of one repository get two different source names (and inventories).
    assert source.normalize_remote("git@GitHub.com:acme/flows.git") == \
        source.normalize_remote("https://GitHub.com/acme/flows.git")


def test_doc_slug_is_stable():
    # The slug names the inventory block on the server: changing it orphans every existing inventory.
    assert source.doc_slug("github.com/acme/flows//sub/dir") == "github-com-acme-flows-sub-dir-987373d959"
    assert source.doc_slug("github.com/acme/flows//sub/dir") == source.doc_slug("github.com/acme/flows//sub/dir")


@pytest.mark.parametrize(
    "name",
    [
        "github.com/acme/flows//sub/dir",
        "/tmp/some dir/With Caps_and_underscores",
        "C:\\Users\\me\\flows",
        "x" * 300,
        "!!!",
        "",
        "émoji ✓ flows",
    ],
)
def test_doc_slug_is_a_valid_block_document_name(name):
    slug = source.doc_slug(name)
    assert BLOCK_NAME.match(slug), slug
    assert slug and not slug.startswith("-") and not slug.endswith("-")
    assert len(slug) <= 51


def test_doc_slug_tells_similar_sources_apart():
    names = ["github.com/acme/flows//a", "github.com/acme/flows//A", "github.com/acme/flows/a",
             "github.com/acme/flows//a/"]
    assert len({source.doc_slug(n) for n in names}) == len(names)
