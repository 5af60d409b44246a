"""The parse cache (manifests/parsecache): a text parsed once is not parsed again, and nothing else changes."""
from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from reconciler.errors import ManifestError
from reconciler.manifests import parsecache, yamlpos

TEXT = b"name: etl\nschedules:\n- schedule:\n    cron: 0 * * * *\n  active: true\nparameters: {n: 3}\n"


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache of this test's own, and a count of the documents actually parsed."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("RECONCILE_CACHE_DIR", str(folder))
    monkeypatch.setattr(parsecache, "_store", None)
    monkeypatch.setattr(parsecache, "_off", False)
    return folder


@pytest.fixture()
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    count = [0]
    compose = yamlpos._compose

    def counting(text, file):
        count[0] += 1
        return compose(text, file)

    monkeypatch.setattr(yamlpos, "_compose", counting)
    return count


def _load(text: bytes = TEXT) -> yamlpos.Located:
    located = yamlpos.load(text, "etl-deployment.yaml")
    parsecache.flush()
    return located


def test_a_text_loaded_again_is_not_parsed_again(cache: Path, parsed: list[int]) -> None:
    first = _load()
    again = _load()
    assert parsed[0] == 1
    assert again.data == first.data == {"name": "etl", "schedules": [{"schedule": {"cron": "0 * * * *"}, "active": True}],
                                        "parameters": {"n": 3}}
    assert again.where(("parameters",)) == first.where(("parameters",)) == (6, 1)
    # a position below the top level is found again from the text, as without the cache
    assert again.where(("schedules", 0, "schedule", "cron")) == (4, 5)


def test_another_text_is_parsed(cache: Path, parsed: list[int]) -> None:
    _load()
    changed = _load(TEXT.replace(b"n: 3", b"n: 4"))
    assert parsed[0] == 2 and changed.data["parameters"] == {"n": 4}


def test_a_text_that_failed_fails_again(cache: Path, parsed: list[int]) -> None:
    for _ in range(2):
        with pytest.raises(ManifestError, match="duplicate key"):
            _load(b"name: a\nname: b\n")
    assert parsed[0] == 2


def test_an_empty_cache_dir_turns_it_off(cache: Path, parsed: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECONCILE_CACHE_DIR", "")
    _load()
    _load()
    assert parsed[0] == 2
    assert not cache.exists()


def test_the_cache_is_the_users_alone(cache: Path) -> None:
    _load()
    (store,) = cache.glob("parsed-*.sqlite")
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    assert stat.S_IMODE(store.stat().st_mode) == 0o600


def test_a_damaged_entry_or_store_is_a_miss(cache: Path, parsed: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    _load()
    (store,) = cache.glob("parsed-*.sqlite")
    with sqlite3.connect(store) as db:
        db.execute("UPDATE parsed SET value = ?", (b"\x00not marshal",))
    assert _load().data["name"] == "etl"
    assert parsed[0] == 2
    parsecache.flush()
    monkeypatch.setattr(parsecache, "_store", None)
    store.write_bytes(b"this is not a database" * 100)
    assert _load().data["name"] == "etl"
    assert parsed[0] == 3


def test_an_unwritable_cache_is_no_error(tmp_path: Path, parsed: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache folder would be")
    monkeypatch.setenv("RECONCILE_CACHE_DIR", str(blocked / "cache"))
    monkeypatch.setattr(parsecache, "_store", None)
    monkeypatch.setattr(parsecache, "_off", False)
    assert _load().data["name"] == "etl" and _load().data["name"] == "etl"
    assert parsed[0] == 2
