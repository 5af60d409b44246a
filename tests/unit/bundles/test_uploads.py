"""uploads.plan_uploads: bundles + the markers at their locations → one upload per location (pure)."""
from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.bundles.bundle import HashCache, collect
from reconciler.errors import ReconcileError
from reconciler.bundles.marker import Marker
from reconciler.bundles.uploads import Location, Upload, plan_uploads


def write(root: Path, rel: str, data: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data)


def make_bundle(root: Path, files: dict[str, str]):
    for rel, data in files.items():
        write(root, rel, data)
    return collect(root, root.parent, HashCache(None), display=root.name)


def loc(identity, bundle, url="memory://code/catfact", marker=None, storage="remote-file-system/code",
        path="catfact") -> Location:
    return Location(identity, storage, path, url, bundle, marker)


@pytest.fixture
def catfact(tmp_path):
    return make_bundle(tmp_path / "catfact", {"flow.py": "print('cat')\n", "lib/util.py": "X = 1\n"})


def test_new_location_uploads_every_file(catfact):
    [up] = plan_uploads([loc("catfact/daily", catfact)])
    assert up.write == ("flow.py", "lib/util.py")
    assert up.remove == ()
    assert up.bytes == catfact.size
    assert up.digest == catfact.digest
    assert up.marker_before is None
    assert (up.bundle, up.bundle_dir) == ("catfact", str(catfact.root))
    assert (up.storage, up.path, up.url) == ("remote-file-system/code", "catfact", "memory://code/catfact")
    assert up.deployments == ("catfact/daily",)


def test_deployments_sharing_a_location_upload_once_and_are_all_listed(catfact):
    plan = plan_uploads([loc("catfact/weekly", catfact), loc("catfact/daily", catfact),
                         loc("catfact/hourly", catfact)])
    assert len(plan) == 1
    assert plan[0].deployments == ("catfact/daily", "catfact/hourly", "catfact/weekly")
    assert plan[0].write == ("flow.py", "lib/util.py")


def test_different_bundle_directories_to_one_location_is_a_one_line_error(tmp_path, catfact):
    other = make_bundle(tmp_path / "dogfact", {"flow.py": "print('dog')\n"})
    with pytest.raises(ReconcileError) as info:
        plan_uploads([loc("catfact/daily", catfact), loc("dogfact/daily", other)])
    message = str(info.value)
    assert "\n" not in message
    assert "catfact/daily" in message and "dogfact/daily" in message
    assert "memory://code/catfact" in message


def test_same_content_in_two_directories_to_one_location_is_still_an_error(tmp_path, catfact):
    twin = make_bundle(tmp_path / "twin", {"flow.py": "print('cat')\n", "lib/util.py": "X = 1\n"})
    assert twin.digest == catfact.digest
    with pytest.raises(ReconcileError):
        plan_uploads([loc("catfact/daily", catfact), loc("twin/daily", twin)])


def test_unchanged_location_needs_no_upload(catfact):
    assert plan_uploads([loc("catfact/daily", catfact, marker=Marker.of(catfact)),
                         loc("catfact/weekly", catfact, marker=Marker.of(catfact))]) == []


def test_changed_location_writes_changed_and_removes_gone_files(tmp_path):
    root = tmp_path / "catfact"
    old = make_bundle(root, {"flow.py": "v1\n", "lib/util.py": "X = 1\n", "old.py": "gone\n"})
    (root / "old.py").unlink()
    write(root, "flow.py", "version 2\n")
    new = collect(root, tmp_path, HashCache(None), display="catfact")
    [up] = plan_uploads([loc("catfact/daily", new, marker=Marker.of(old))])
    assert up.write == ("flow.py",)
    assert up.remove == ("old.py",)
    assert up.bytes == len("version 2\n")
    assert up.marker_before == old.digest
    assert up.digest == new.digest != old.digest


def test_one_upload_per_location_in_url_order(tmp_path, catfact):
    other = make_bundle(tmp_path / "dogfact", {"flow.py": "print('dog')\n"})
    plan = plan_uploads([
        loc("dogfact/daily", other, url="memory://code/dogfact", path="dogfact"),
        loc("catfact/daily", catfact, url="memory://code/catfact"),
        loc("catfact/backup", catfact, url="s3://backup/catfact", storage="s3/backup",
            marker=Marker.of(catfact)),
        loc("catfact/mirror", catfact, url="file:///mirror/catfact", storage="local-file-system/mirror"),
    ])
    assert [(u.url, u.deployments) for u in plan] == [
        ("file:///mirror/catfact", ("catfact/mirror",)),
        ("memory://code/catfact", ("catfact/daily",)),
        ("memory://code/dogfact", ("dogfact/daily",)),
    ]


def test_upload_survives_a_saved_plan_round_trip(tmp_path):
    root = tmp_path / "catfact"
    old = make_bundle(root, {"flow.py": "v1\n", "gone.py": "x\n"})
    (root / "gone.py").unlink()
    new = collect(root, tmp_path, HashCache(None), display="catfact")
    before = Marker.of(old)
    [up] = plan_uploads([loc("catfact/daily", new, marker=before), loc("catfact/b", new, marker=before)])
    raw = up.to_json()
    assert {k: raw[k] for k in ("action", "bundle", "storage", "path", "files_changed", "files_removed",
                                "bytes")} == {"action": "upload", "bundle": "catfact",
                                              "storage": "remote-file-system/code", "path": "catfact",
                                              "files_changed": 0, "files_removed": 1, "bytes": 0}
    assert Upload.from_json(raw) == up


def test_no_locations_no_uploads():
    assert plan_uploads([]) == []
