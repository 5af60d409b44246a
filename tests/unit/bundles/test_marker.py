"""marker: the `.reconcile-bundle.json` at a storage location, and the delta an upload must carry out."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.bundles import marker
from reconciler.bundles.bundle import HashCache, collect
from reconciler.bundles.marker import Marker, delta


def write(root: Path, rel: str, data: str = "x", mode: int | None = None) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data)
    if mode is not None:
        path.chmod(mode)


def bundle_of(root: Path):
    return collect(root, root, HashCache(None))


@pytest.fixture
def many(tmp_path):
    """A bundle of 30 files in a few directories."""
    root = tmp_path / "flows"
    for i in range(30):
        write(root, f"pkg{i % 3}/mod{i}.py", f"VALUE = {i}\n")
    write(root, "run.sh", "#!/bin/sh\n", mode=0o755)
    return root


def test_marker_name_is_the_documented_one():
    assert marker.NAME == ".reconcile-bundle.json"


def test_round_trip_through_bytes(many):
    b = bundle_of(many)
    m = Marker.of(b)
    raw = json.dumps(m.to_json(), sort_keys=True).encode()
    back = Marker.from_bytes(raw)
    assert back == m
    data = json.loads(raw)
    assert data["version"] == 1
    assert data["bundle"] == b.digest
    assert data["files"]["run.sh"] == {"sha256": b.by_path["run.sh"].sha256, "size": len("#!/bin/sh\n"),
                                       "exec": True}
    assert set(data["files"]) == {f.path for f in b.files}
    assert delta(b, back).empty


@pytest.mark.parametrize("raw", [
    b"",
    b"{",
    b"not json at all",
    b"\xff\xfe\x00garbage",
    b"null",
    b"42",
    b'"a string"',
    b"[]",
    b'{"bundle": "abc", "files": {}}',
    b'{"version": 2, "bundle": "abc", "files": {}}',
    b'{"version": "1", "bundle": "abc", "files": {}}',
    b'{"version": 1, "bundle": "abc", "files": []}',
    b'{"version": 1, "bundle": "abc"}',
    b'{"kind": "something-else", "files": {"a": 1}}',
], ids=["empty", "truncated", "text", "binary", "null", "number", "string", "list", "no-version",
        "version-2", "version-as-string", "files-list", "no-files", "foreign"])
def test_damaged_or_foreign_marker_reads_as_none(raw):
    assert Marker.from_bytes(raw) is None


def test_same_digest_needs_nothing(many):
    b = bundle_of(many)
    d = delta(b, Marker.of(b))
    assert d.empty and d.write == () and d.remove == () and d.bytes == 0


def test_one_changed_file_among_many_is_exactly_that_file(many):
    before = Marker.of(bundle_of(many))
    write(many, "pkg1/mod7.py", "VALUE = 'seven'\n")
    b = bundle_of(many)
    d = delta(b, before)
    assert [f.path for f in d.write] == ["pkg1/mod7.py"]
    assert d.remove == ()
    assert d.bytes == len("VALUE = 'seven'\n")


def test_exec_bit_change_alone_is_that_file(many):
    before = Marker.of(bundle_of(many))
    (many / "pkg0/mod0.py").chmod(0o755)
    d = delta(bundle_of(many), before)
    assert [f.path for f in d.write] == ["pkg0/mod0.py"]


def test_added_file_is_written(many):
    before = Marker.of(bundle_of(many))
    write(many, "pkg9/new.py", "NEW = True\n")
    d = delta(bundle_of(many), before)
    assert [f.path for f in d.write] == ["pkg9/new.py"]
    assert d.remove == ()


def test_removed_files_are_listed_for_removal_and_not_written(many):
    before = Marker.of(bundle_of(many))
    (many / "pkg2/mod5.py").unlink()
    (many / "pkg0/mod3.py").unlink()
    d = delta(bundle_of(many), before)
    assert d.write == ()
    assert d.remove == ("pkg0/mod3.py", "pkg2/mod5.py")
    assert not d.empty


def test_renamed_file_is_one_write_and_one_removal(many):
    before = Marker.of(bundle_of(many))
    (many / "pkg1/mod1.py").rename(many / "pkg1/renamed.py")
    d = delta(bundle_of(many), before)
    assert [f.path for f in d.write] == ["pkg1/renamed.py"]
    assert d.remove == ("pkg1/mod1.py",)


def test_no_marker_means_every_file(many):
    b = bundle_of(many)
    d = delta(b, None)
    assert d.write == b.files
    assert d.remove == ()
    assert d.bytes == b.size


def test_damaged_marker_means_every_file(many):
    b = bundle_of(many)
    d = delta(b, Marker.from_bytes(b'{"version": 1, "files": '))
    assert d.write == b.files


def test_marker_with_a_damaged_file_entry_rewrites_only_that_file(many):
    b = bundle_of(many)
    m = Marker.of(b).to_json()
    m["bundle"] = "0" * 64
    m["files"]["pkg2/mod2.py"] = "garbage"
    d = delta(b, Marker.from_bytes(json.dumps(m).encode()))
    assert [f.path for f in d.write] == ["pkg2/mod2.py"]


def test_an_incomplete_marker_makes_every_file_upload_again(tmp_path):
    """A crash between the files and the final marker: even code reverted to the old marker's state uploads."""
    root = tmp_path / "b"
    root.mkdir()
    (root / "a.py").write_text("A = 1\n")
    (root / "b.py").write_text("B = 1\n")
    bundle = bundle_of(root)
    old = Marker.of(bundle)
    assert delta(bundle, old).empty
    crashed = Marker.from_bytes(json.dumps(old.started().to_json()).encode())
    assert crashed is not None and not crashed.complete and crashed.digest == old.digest
    change = delta(bundle, crashed)
    assert [f.path for f in change.write] == ["a.py", "b.py"] and change.remove == ()


def test_a_marker_without_the_complete_key_is_complete():
    raw = json.dumps({"version": 1, "bundle": "x", "files": {}}).encode()
    assert Marker.from_bytes(raw).complete
