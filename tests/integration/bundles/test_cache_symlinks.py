"""Symlinks a commit puts under `.reconcile/` (issue 10, item 3), against the real server.

The hash cache lives in `.reconcile/` at the repository root, and a repository decides what is there:
a committed `.reconcile/hash-cache.tmp`, `.gitignore` or `hash-cache.json` symlink, or a `.reconcile`
symlink itself, made a plain `plan` write a file outside the repository. Every command that hashes code
(plan, apply, apply of a saved plan) must leave the files those links point at untouched, and still work.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Callable

import pytest

from integration.helpers import Server, reconcile
from integration.upload_support import Project, block_ref, make_block, many_files, shown, upload_manifest

SLUG = "local-file-system"


@pytest.fixture
def server(prefect_api_url):
    with Server(prefect_api_url) as srv:
        yield srv


class Outside:
    """Files and a directory outside the repository that the links point at."""

    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path / "outside"
        self.dir.mkdir()
        self.victim = self.dir / "victim.txt"
        self.victim.write_text("precious\n", encoding="utf-8")
        self.created = self.dir / "created-by-reconcile"     # must never come to exist
        self.empty = tmp_path / "outside-empty"
        self.empty.mkdir()

    def untouched(self) -> bool:
        return (self.victim.read_text(encoding="utf-8") == "precious\n" and not self.created.exists()
                and sorted(p.name for p in self.dir.iterdir()) == ["victim.txt"] and list(self.empty.iterdir()) == [])


def tmp_link(cache: Path, outside: Outside) -> None:
    os.symlink(outside.victim, cache / "hash-cache.tmp")


def gitignore_link(cache: Path, outside: Outside) -> None:
    os.symlink(outside.created, cache / ".gitignore")          # dangling: writing it would create the file


def cache_file_link(cache: Path, outside: Outside) -> None:
    os.symlink(outside.victim, cache / "hash-cache.json")


def every_name_a_link(cache: Path, outside: Outside) -> None:
    tmp_link(cache, outside)
    gitignore_link(cache, outside)
    cache_file_link(cache, outside)


def directory_link(cache: Path, outside: Outside) -> None:
    cache.rmdir()
    os.symlink(outside.empty, cache)


LINKS: dict[str, Callable[[Path, Outside], None]] = {
    "hash-cache.tmp": tmp_link,
    ".gitignore": gitignore_link,
    "hash-cache.json": cache_file_link,
    "all-three": every_name_a_link,
    ".reconcile-itself": directory_link,
}


@pytest.mark.parametrize("plant", list(LINKS.values()), ids=list(LINKS))
def test_committed_symlinks_under_dot_reconcile_are_never_written_through(
        server, prefect_api_url, tmp_path, unique, plant):
    outside = Outside(tmp_path)
    project = Project(prefect_api_url, tmp_path, unique, "cache-links")
    basepath = tmp_path / "storage"
    block = make_block(server, SLUG, f"it-cache-links-{unique}", {"basepath": str(basepath)})
    project.write(many_files(5))
    project.add_manifest(upload_manifest(project.flow, "main", block_ref(block, SLUG, basepath=str(basepath)), "code"))
    cache = project.repo / ".reconcile"
    cache.mkdir()
    plant(cache, outside)
    planted = [name for name in ("hash-cache.tmp", ".gitignore") if os.path.islink(cache / name)]
    subprocess.run(["git", "-C", str(project.repo), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(project.repo), "-c", "user.name=it", "-c", "user.email=it@example.com",
                    "commit", "-q", "-m", "links"], check=True)

    planned = project.plan()
    assert planned.returncode == 0, planned
    assert outside.untouched(), f"plan wrote through a link under .reconcile/:\n{planned}"

    saved = tmp_path / "plan.json"
    assert project.plan("--out", saved).returncode == 0
    applied_saved = shown(reconcile(prefect_api_url, "apply", saved, cwd=project.repo))
    assert applied_saved.returncode == 0, applied_saved
    assert outside.untouched(), f"apply PLAN.json wrote through a link under .reconcile/:\n{applied_saved}"

    (project.root / "pkg" / "new.py").write_text("NEW = 1\n", encoding="utf-8")
    applied = project.apply()
    assert applied.returncode == 0, applied
    assert outside.untouched(), f"apply wrote through a link under .reconcile/:\n{applied}"
    assert (basepath / "code" / "pkg" / "new.py").is_file()
    # the links are still links (only the cache file itself is replaced: a rename replaces a link, never its target)
    assert all(os.path.islink(cache / name) for name in planted), planted


def test_the_cache_still_works_in_a_plain_repository(server, prefect_api_url, tmp_path, unique):
    project = Project(prefect_api_url, tmp_path, unique, "cache-plain")
    basepath = tmp_path / "storage"
    block = make_block(server, SLUG, f"it-cache-plain-{unique}", {"basepath": str(basepath)})
    project.write(many_files(5))
    project.add_manifest(upload_manifest(project.flow, "main", block_ref(block, SLUG, basepath=str(basepath)), "code"))
    assert project.plan().returncode == 0
    cache = project.repo / ".reconcile"
    assert (cache / "hash-cache.json").is_file() and not (cache / "hash-cache.json").is_symlink()
    assert (cache / ".gitignore").read_text(encoding="utf-8").endswith("*\n")
    assert [p.name for p in cache.iterdir() if p.name.endswith(".tmp")] == []
