"""HashCache under `.reconcile/`: never read or written through a symlink the repository contains."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from reconciler.bundles import collect as collect_mod
from reconciler.bundles.bundle import HashCache, collect


@pytest.fixture
def repo(tmp_path) -> Path:
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    (root / "flows").mkdir()
    (root / "flows" / "flow.py").write_text("X = 1\n", encoding="utf-8")
    return root


@pytest.fixture
def outside(tmp_path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "victim").write_text("precious\n", encoding="utf-8")
    return folder


def _hash(repo: Path) -> HashCache:
    cache = HashCache(repo / collect_mod.CACHE)
    collect(repo / "flows", repo, cache)
    cache.save()
    return cache


def _untouched(outside: Path) -> bool:
    return sorted(p.name for p in outside.iterdir()) == ["victim"] and (outside / "victim").read_text() == "precious\n"


@pytest.mark.parametrize("name", ["hash-cache.tmp", "hash-cache.json", ".gitignore"])
def test_a_link_named_like_a_cache_file_is_not_written_through(repo, outside, name):
    (repo / ".reconcile").mkdir()
    os.symlink(outside / "victim", repo / ".reconcile" / name)
    _hash(repo)
    assert _untouched(outside)


def test_a_dangling_gitignore_link_does_not_create_its_target(repo, outside):
    (repo / ".reconcile").mkdir()
    os.symlink(outside / "created", repo / ".reconcile" / ".gitignore")
    _hash(repo)
    assert _untouched(outside)
    assert os.path.islink(repo / ".reconcile" / ".gitignore")


def test_a_dot_reconcile_link_gets_no_cache_at_all(repo, outside):
    os.symlink(outside, repo / ".reconcile")
    cache = _hash(repo)
    assert _untouched(outside)
    assert cache.dirty, "the cache could not be saved, and says so by staying dirty"


def test_a_cache_file_that_is_a_link_is_not_read(repo, outside):
    real = {"version": 1, "files": {str(repo / "flows" / "flow.py"): [6, 0, "0" * 64]}}
    (outside / "victim").write_text(json.dumps(real), encoding="utf-8")
    (repo / ".reconcile").mkdir()
    os.symlink(outside / "victim", repo / ".reconcile" / "hash-cache.json")
    assert HashCache(repo / collect_mod.CACHE).entries == {}


def test_the_cache_file_replaces_a_link_not_its_target(repo, outside):
    (repo / ".reconcile").mkdir()
    os.symlink(outside / "victim", repo / ".reconcile" / "hash-cache.json")
    _hash(repo)
    written = repo / ".reconcile" / "hash-cache.json"
    assert not written.is_symlink() and json.loads(written.read_text())["version"] == 1
    assert _untouched(outside)


def test_a_plain_cache_round_trips_and_leaves_no_temporary_file(repo):
    first = _hash(repo)
    assert first.reads == 1
    second = HashCache(repo / collect_mod.CACHE)
    collect(repo / "flows", repo, second)
    assert second.reads == 0
    assert sorted(p.name for p in (repo / ".reconcile").iterdir()) == [".gitignore", "hash-cache.json"]
