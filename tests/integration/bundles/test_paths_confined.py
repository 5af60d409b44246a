"""Storage paths and bundle roots that leave their root (issue 10, item 1), against the real server.

A manifest's `path` under a local-file-system block must resolve inside the block's basepath, and
`bundle_root` in reconcile.yaml inside the repository. Anything else is one line naming the file and
line, exit 1, at plan time, for every command (plan, apply, with or without --skip-upload, and a pushed
commit through the git hook), and nothing is written: not to the server, not to the storage, not outside it.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from integration.helpers import Server, cli_env, reconcile, write_manifest
from integration.upload_support import (Project, block_ref, make_block, many_files, stored_files, upload_manifest,
                                        with_flow_file)

SLUG = "local-file-system"


@pytest.fixture
def server(prefect_api_url):
    with Server(prefect_api_url) as srv:
        yield srv


class Confined(Project):
    """A project uploading to a local-file-system block whose basepath is tmp/storage/base."""

    def __init__(self, server: Server, api_url: str, tmp_path: Path, unique: str) -> None:
        super().__init__(api_url, tmp_path, unique, "confine")
        self.basepath = tmp_path / "storage" / "base"
        self.block = make_block(server, SLUG, f"it-confine-{unique}", {"basepath": str(self.basepath)})
        self.write(many_files(3))

    def deployment(self, path: str, name: str = "main") -> Path:
        storage = block_ref(self.block, SLUG, basepath=str(self.basepath))
        return self.add_manifest(upload_manifest(self.flow, name, storage, path))


def _top_line(text: str, key: str) -> int:
    """The line of a top-level key (`path:`, not the block's `basepath:`)."""
    return next(n for n, line in enumerate(text.splitlines(), start=1) if line.startswith(f"{key}:"))


def _errors(run) -> list[str]:
    return [m for m in run.messages if m.startswith("error: ")]


def _nothing_written(project: Confined, server: Server, run) -> None:
    assert run.writes == [], f"a write reached the server:\n{run}"
    assert server.deployments(project.flow) == {}, run
    assert stored_files(project.tmp / "storage") == {}, "something was written near the storage"


def _outside(tmp_path: Path) -> Path:
    return tmp_path / "storage" / "elsewhere"


PATHS = {
    "dot-dot": lambda tmp: "../elsewhere",
    "dot-dot-after-a-directory": lambda tmp: "code/../../elsewhere",
    "windows-separators": lambda tmp: "..\\elsewhere",
    "absolute-outside-the-basepath": lambda tmp: str(_outside(tmp)),
    "through-a-symlink-in-the-basepath": lambda tmp: "link/code",
}


@pytest.mark.parametrize("make", list(PATHS.values()), ids=list(PATHS))
def test_a_storage_path_leaving_the_blocks_basepath_is_one_line_and_nothing_is_written(
        server, prefect_api_url, tmp_path, unique, make):
    project = Confined(server, prefect_api_url, tmp_path, unique)
    path = make(tmp_path)
    if path.startswith("link/"):
        project.basepath.mkdir(parents=True)
        os.symlink(_outside(tmp_path), project.basepath / "link")
    file = project.deployment(path)
    line = _top_line(file.read_text(encoding="utf-8"), "path")

    for command, *flags in (("plan",), ("apply",), ("plan", "--skip-upload"), ("apply", "--skip-upload")):
        run = project.run(command, "-v", *flags)
        assert run.returncode == 1, run
        assert "Traceback" not in run.stderr, run
        [error] = _errors(run)
        assert error.startswith(f"error: {file.relative_to(tmp_path)}:{line}:1: path: "), error
        assert f"leaves storage {SLUG}/{project.block['name']}" in error and "(use " in error, error
        assert run.writes == [] and server.deployments(project.flow) == {}, run
        assert not _outside(tmp_path).exists() or list(_outside(tmp_path).iterdir()) == [], "written outside"
        assert not (project.basepath / "code").exists()


def test_an_absolute_path_inside_the_basepath_is_allowed_as_prefect_allows_it(server, prefect_api_url, tmp_path,
                                                                               unique):
    project = Confined(server, prefect_api_url, tmp_path, unique)
    project.deployment(str(project.basepath / "team" / "code"))
    run = project.apply()
    assert run.returncode == 0, run
    assert (project.basepath / "team" / "code" / ".reconcile-bundle.json").is_file()


BUNDLE_ROOTS = {
    "parent-of-the-repository": lambda tmp: "../..",
    "absolute-outside": lambda tmp: str(tmp / "private"),
    "symlink-leaving-the-repository": lambda tmp: "leak",
}


@pytest.mark.parametrize("make", list(BUNDLE_ROOTS.values()), ids=list(BUNDLE_ROOTS))
def test_a_bundle_root_outside_the_repository_is_one_line_and_nothing_is_uploaded(
        server, prefect_api_url, tmp_path, unique, make):
    project = Confined(server, prefect_api_url, tmp_path, unique)
    (tmp_path / "private").mkdir()
    (tmp_path / "private" / "id_rsa").write_text("PRIVATE KEY\n", encoding="utf-8")
    os.symlink(tmp_path / "private", project.root / "leak")
    value = make(tmp_path)
    config = project.root / "reconcile.yaml"
    config.write_text(f"max_deletes: 3\nbundle_root: {value!r}\n", encoding="utf-8")
    project.deployment("code")

    for command in ("plan", "apply"):
        run = project.run(command, "-v")
        assert run.returncode == 1, run
        [error] = _errors(run)
        assert error.startswith(f"error: {config.relative_to(tmp_path)}:2:"), error
        assert "bundle_root" in error and "leaves the repository" in error, error
        _nothing_written(project, server, run)


def test_a_pushed_commit_cannot_write_outside_the_storage_through_the_git_hook(server, prefect_api_url, tmp_path,
                                                                               unique):
    """The attack of the issue: a commit whose `path` climbs to another directory of the receiving host."""
    env = cli_env(None)
    bare, work = tmp_path / "srv" / "flows.git", tmp_path / "work"
    home = tmp_path / "home" / ".ssh"
    basepath = tmp_path / "storage"

    def git(*args: str, cwd: Path = work) -> str:
        done = subprocess.run(["git", "-c", "user.name=it", "-c", "user.email=it@example.com", *args], cwd=cwd,
                              env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stderr

    bare.parent.mkdir()
    git("init", "-q", "--bare", "-b", "main", str(bare), cwd=tmp_path)
    git("clone", "-q", str(bare), str(work), cwd=tmp_path)
    git("checkout", "-q", "-b", "main")
    source, flow = f"it/hook-confine-{unique}", f"it-hook-confine-{unique}"
    installed = reconcile(None, "hook", "install", "--repo", bare, "--branch", "main", "--path", "deployments",
                          "--source", source, "--api-url", prefect_api_url)
    assert installed.returncode == 0, installed

    block = make_block(server, SLUG, f"it-hook-confine-{unique}", {"basepath": str(basepath)})
    storage = block_ref(block, SLUG, basepath=str(basepath))
    (work / "deployments").mkdir()
    (work / "deployments" / "authorized_keys").write_text("ssh-ed25519 AAAA attacker\n", encoding="utf-8")
    climb = os.path.relpath(home, basepath)        # ../home/.ssh
    doc = upload_manifest(flow, "keys", storage, climb)
    with_flow_file(work / "deployments", doc)
    file = write_manifest(work / "deployments", doc)
    git("add", "-A")
    git("commit", "-q", "-m", "keys")
    out = git("push", "origin", "HEAD:refs/heads/main")

    lines = [x[len("remote: "):].rstrip() for x in out.splitlines() if x.startswith("remote: ")]
    errors = [x for x in lines if x.startswith("error: ")]
    line = _top_line(file.read_text(encoding="utf-8"), "path")
    assert len(errors) == 1 and errors[0].startswith(f"error: deployments/{file.name}:{line}:1: path: "), out
    assert not home.exists(), "the pushed commit wrote outside the storage"
    assert not basepath.exists() or stored_files(basepath) == {}
    assert server.deployments(flow) == {}
