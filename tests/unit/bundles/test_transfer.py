"""transfer.upload: planned files go up, removed ones go, the marker is written last.

Real fsspec filesystems (`memory://` and the local disk).  The filesystem the
upload gets is a spy subclass of the real one (Target.filesystem is patched to
return it): it records put_file / pipe_file / rm_file calls in order, and can
be told to fail one of them.
"""
from __future__ import annotations

import json
import os
import posixpath
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import pytest
from fsspec.implementations.local import LocalFileSystem
from fsspec.implementations.memory import MemoryFileSystem

from reconciler.bundles import storage
from reconciler.bundles.bundle import Bundle, HashCache, collect
from reconciler.errors import ReconcileError
from reconciler.bundles.locations import read_marker
from reconciler.bundles.marker import NAME, Marker
from reconciler.bundles.storage import Target
from reconciler.bundles.transfer import upload
from reconciler.bundles.uploads import Location, Upload, plan_uploads

IDENTITY = "catfact/daily"


@pytest.fixture(autouse=True)
def clean_memory_store():
    MemoryFileSystem.store.clear()
    MemoryFileSystem.pseudo_dirs[:] = [""]
    yield
    MemoryFileSystem.store.clear()
    MemoryFileSystem.pseudo_dirs[:] = [""]


def spying(base):
    class Spy(base):
        cachable = False  # a fresh instance per test, never fsspec's cached one

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.calls: list[tuple[str, str]] = []
            self.fail: Callable[[str, str], bool] = lambda method, path: False

        def _record(self, method: str, path: str) -> None:
            self.calls.append((method, self._strip_protocol(path)))
            if self.fail(method, path):
                raise OSError(28, "No space left on device")

        def put_file(self, lpath, rpath, *args, **kwargs):
            self._record("put_file", rpath)
            return super().put_file(lpath, rpath, *args, **kwargs)

        def pipe_file(self, path, value, *args, **kwargs):
            self._record("pipe_file", path)
            return super().pipe_file(path, value, *args, **kwargs)

        def rm_file(self, path, *args, **kwargs):
            self._record("rm_file", path)
            return super().rm_file(path, *args, **kwargs)

    return Spy


SpyMemory = spying(MemoryFileSystem)
SpyLocal = spying(LocalFileSystem)


@dataclass
class Place:
    """A storage location, the spy the upload writes through, and a plain view of what is there."""

    target: Target
    spy: object
    plain: object

    @property
    def root(self) -> str:
        return self.plain._strip_protocol(self.target.root)

    def rel(self, path: str) -> str:
        return posixpath.relpath(self.plain._strip_protocol(path), self.root)

    def calls(self) -> list[tuple[str, str]]:
        return [(method, self.rel(path)) for method, path in self.spy.calls]

    def files(self) -> set[str]:
        if not self.plain.exists(self.root):
            return set()
        return {self.rel(p) for p in self.plain.find(self.root)}

    def read(self, rel: str) -> bytes:
        return self.plain.cat_file(posixpath.join(self.root, rel))

    def write(self, rel: str, data: bytes) -> None:
        path = posixpath.join(self.root, rel)
        self.plain.makedirs(posixpath.dirname(path), exist_ok=True)
        self.plain.pipe_file(path, data)


@pytest.fixture(params=["memory", "local"])
def place(request, tmp_path, monkeypatch) -> Place:
    if request.param == "memory":
        target = storage.target("remote-file-system", "remote-file-system/code", {"basepath": "memory://code"},
                                "catfact")
        spy, plain = SpyMemory(), MemoryFileSystem()
    else:
        target = storage.target("local-file-system", "local-file-system/code", {"basepath": str(tmp_path / "store")},
                                "catfact")
        spy, plain = SpyLocal(), LocalFileSystem()
    monkeypatch.setattr(Target, "filesystem", lambda self: spy)
    return Place(target, spy, plain)


@pytest.fixture
def local_place(tmp_path, monkeypatch) -> Place:
    target = storage.target("local-file-system", "local-file-system/code", {"basepath": str(tmp_path / "store")},
                            "catfact")
    spy = SpyLocal()
    monkeypatch.setattr(Target, "filesystem", lambda self: spy)
    return Place(target, spy, LocalFileSystem())


def write(root: Path, rel: str, data: str | bytes, mode: Optional[int] = None) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    if mode is not None:
        path.chmod(mode)


def make_source(tmp_path: Path) -> Path:
    root = tmp_path / "repo" / "catfact"
    write(root, "flow.py", "print('cat fact')\n")
    write(root, "lib/util.py", "def fetch(): ...\n")
    write(root, "lib/data.json", '{"n": 1}')
    write(root, "run.sh", "#!/bin/sh\nexec python flow.py\n", mode=0o755)
    write(root, "__pycache__/flow.cpython-311.pyc", b"\x00")  # ignored: never uploaded
    return root


def bundle_of(root: Path) -> Bundle:
    return collect(root, root.parent, HashCache(None), display="catfact")


def plan_for(place: Place, bundle: Bundle) -> Optional[Upload]:
    marker = read_marker(place.target)
    uploads = plan_uploads([Location(IDENTITY, place.target.block, "catfact", place.target.url, bundle, marker)])
    assert len(uploads) <= 1
    return uploads[0] if uploads else None


def stored_marker(place: Place) -> dict:
    return json.loads(place.read(NAME))


def one_line(info: pytest.ExceptionInfo) -> str:
    message = str(info.value)
    assert "\n" not in message
    return message


# -- what gets written -----------------------------------------------------------------------------

def test_first_upload_writes_every_file_then_the_marker_last(tmp_path, place):
    source = make_source(tmp_path)
    bundle = bundle_of(source)
    planned = plan_for(place, bundle)
    assert planned is not None and planned.marker_before is None

    written = upload(place.target, bundle, planned)

    calls = place.calls()
    puts = [p for m, p in calls if m == "put_file"]
    assert sorted(puts) == ["flow.py", "lib/data.json", "lib/util.py", "run.sh"]
    assert len(puts) == len(set(puts))
    # the marker goes first as "incomplete" (listing what is being added), and last as the real one
    assert [c for c in calls if c[0] == "pipe_file"] == [("pipe_file", NAME), ("pipe_file", NAME)]
    assert calls[0] == ("pipe_file", NAME) and calls[-1] == ("pipe_file", NAME)
    assert written == bundle.size
    assert place.files() == {"flow.py", "lib/data.json", "lib/util.py", "run.sh", NAME}
    for f in bundle.files:
        assert place.read(f.path) == (source / f.path).read_bytes()
    assert stored_marker(place) == Marker.of(bundle).to_json()
    assert plan_for(place, bundle) is None  # converged


def test_second_upload_writes_only_the_changed_files_removes_the_gone_ones_marker_last(tmp_path, place):
    source = make_source(tmp_path)
    first = bundle_of(source)
    upload(place.target, first, plan_for(place, first))
    place.spy.calls.clear()

    write(source, "lib/util.py", "def fetch(): return 'new'\n")
    write(source, "lib/extra.py", "EXTRA = 1\n")
    (source / "lib/data.json").unlink()
    second = bundle_of(source)
    planned = plan_for(place, second)
    assert planned.write == ("lib/extra.py", "lib/util.py")
    assert planned.remove == ("lib/data.json",)

    written = upload(place.target, second, planned)

    calls = place.calls()
    assert sorted(p for m, p in calls if m == "put_file") == ["lib/extra.py", "lib/util.py"]
    assert [p for m, p in calls if m == "rm_file"] == ["lib/data.json"]
    assert calls[-1] == ("pipe_file", NAME)
    # the marker is written twice: first marked incomplete, before any file; last, complete
    assert calls[0] == ("pipe_file", NAME) and [m for m, _ in calls].count("pipe_file") == 2
    assert written == len("def fetch(): return 'new'\n") + len("EXTRA = 1\n")
    assert place.files() == {"flow.py", "lib/extra.py", "lib/util.py", "run.sh", NAME}
    assert place.read("lib/util.py") == b"def fetch(): return 'new'\n"
    assert stored_marker(place)["bundle"] == second.digest
    assert plan_for(place, second) is None


def test_progress_is_reported_per_file_and_adds_up_to_the_bytes(tmp_path, place):
    bundle = bundle_of(make_source(tmp_path))
    seen: list[int] = []
    written = upload(place.target, bundle, plan_for(place, bundle), progress=seen.append)
    assert sorted(seen) == sorted(f.size for f in bundle.files)
    assert sum(seen) == written == bundle.size


def test_a_removal_of_a_file_already_gone_is_not_an_error(tmp_path, place):
    source = make_source(tmp_path)
    first = bundle_of(source)
    upload(place.target, first, plan_for(place, first))
    (source / "lib/data.json").unlink()
    second = bundle_of(source)
    planned = plan_for(place, second)
    place.plain.rm_file(posixpath.join(place.root, "lib/data.json"))  # someone removed it by hand
    upload(place.target, second, planned)
    assert stored_marker(place)["bundle"] == second.digest


# -- exec bit (local storage) --------------------------------------------------------------------------

def mode(place: Place, rel: str) -> int:
    return stat.S_IMODE(os.stat(posixpath.join(place.root, rel)).st_mode)


def test_exec_bit_is_preserved_on_local_storage(tmp_path, local_place):
    source = make_source(tmp_path)
    bundle = bundle_of(source)
    upload(local_place.target, bundle, plan_for(local_place, bundle))
    assert mode(local_place, "run.sh") & stat.S_IXUSR
    assert not mode(local_place, "flow.py") & stat.S_IXUSR

    (source / "flow.py").chmod(0o755)
    (source / "run.sh").chmod(0o644)
    flipped = bundle_of(source)
    planned = plan_for(local_place, flipped)
    assert planned.write == ("flow.py", "run.sh")
    upload(local_place.target, flipped, planned)
    assert mode(local_place, "flow.py") & stat.S_IXUSR
    assert not mode(local_place, "run.sh") & stat.S_IXUSR


# -- failures -------------------------------------------------------------------------------------------

def test_failing_marker_write_keeps_the_previous_marker_so_the_upload_is_planned_again(tmp_path, place):
    source = make_source(tmp_path)
    first = bundle_of(source)
    upload(place.target, first, plan_for(place, first))
    previous = place.read(NAME)

    write(source, "flow.py", "print('a better cat fact')\n")
    second = bundle_of(source)
    planned = plan_for(place, second)
    place.spy.fail = lambda method, path: method == "pipe_file" and path.endswith(NAME)
    with pytest.raises(ReconcileError) as info:
        upload(place.target, second, planned)
    message = one_line(info)
    assert "catfact" in message and place.target.block in message
    assert "No space left on device" in message

    assert place.read(NAME) == previous
    place.spy.fail = lambda method, path: False
    again = plan_for(place, second)
    assert again is not None
    assert again.write == ("flow.py",)
    assert again.marker_before == first.digest


def test_failing_marker_write_on_the_first_upload_leaves_no_marker(tmp_path, place):
    bundle = bundle_of(make_source(tmp_path))
    place.spy.fail = lambda method, path: method == "pipe_file"
    with pytest.raises(ReconcileError) as info:
        upload(place.target, bundle, plan_for(place, bundle))
    one_line(info)
    assert NAME not in place.files()
    again = plan_for(place, bundle)
    assert again is not None and len(again.write) == len(bundle.files)


def test_failing_file_write_stops_before_the_marker(tmp_path, place):
    bundle = bundle_of(make_source(tmp_path))
    place.spy.fail = lambda method, path: method == "put_file" and path.endswith("util.py")
    with pytest.raises(ReconcileError) as info:
        upload(place.target, bundle, plan_for(place, bundle))
    assert "No space left on device" in one_line(info)
    # only the "incomplete" marker was written (before any file): it never claims the upload happened
    assert [m for m, _ in place.calls()].count("pipe_file") == 1
    left = Marker.from_bytes(place.read(NAME))
    assert left is not None and not left.complete
    again = plan_for(place, bundle)
    assert again is not None and len(again.write) == len(bundle.files)


def test_bundle_changed_since_the_plan_is_a_one_line_error_and_writes_nothing(tmp_path, place):
    source = make_source(tmp_path)
    first = bundle_of(source)
    upload(place.target, first, plan_for(place, first))
    write(source, "flow.py", "print('planned')\n")
    planned = plan_for(place, bundle_of(source))
    place.spy.calls.clear()
    before = {rel: place.read(rel) for rel in place.files()}

    write(source, "flow.py", "print('edited after the plan')\n")
    with pytest.raises(ReconcileError) as info:
        upload(place.target, bundle_of(source), planned)
    message = one_line(info)
    assert "catfact" in message and "plan" in message
    assert place.spy.calls == []
    assert {rel: place.read(rel) for rel in place.files()} == before


# -- local storage layouts seen in real Prefect 2 projects -------------------------------------------------

def test_local_storage_that_is_the_bundle_directory_itself_converges(tmp_path, monkeypatch):
    # `prefect deployment build -sb local-file-system/x` with basepath = the flow's own directory
    # (Prefect 2's LocalFileSystem.put_directory skips the copy when source and destination are the same)
    source = make_source(tmp_path)
    target = storage.target("local-file-system", "local-file-system/here", {"basepath": str(source)}, "")
    spy = SpyLocal()
    monkeypatch.setattr(Target, "filesystem", lambda self: spy)
    here = Place(target, spy, LocalFileSystem())
    contents = {p.relative_to(source).as_posix(): p.read_bytes() for p in source.rglob("*") if p.is_file()}

    bundle = bundle_of(source)
    upload(target, bundle, plan_for(here, bundle))

    for rel, data in contents.items():
        assert (source / rel).read_bytes() == data
    assert plan_for(here, bundle_of(source)) is None


@pytest.mark.parametrize("change", ["file-to-directory", "directory-to-file"])
def test_a_path_that_changes_between_file_and_directory_is_uploaded(tmp_path, place, change):
    source = make_source(tmp_path)
    if change == "file-to-directory":
        write(source, "config", "MODE = 1\n")
    else:
        write(source, "config/__init__.py", "MODE = 1\n")
    first = bundle_of(source)
    upload(place.target, first, plan_for(place, first))

    if change == "file-to-directory":
        (source / "config").unlink()
        write(source, "config/__init__.py", "MODE = 2\n")
    else:
        (source / "config/__init__.py").unlink()
        (source / "config").rmdir()
        write(source, "config", "MODE = 2\n")
    second = bundle_of(source)
    upload(place.target, second, plan_for(place, second))

    assert place.read("config/__init__.py" if change == "file-to-directory" else "config") == b"MODE = 2\n"
    assert plan_for(place, second) is None


def test_a_marker_naming_paths_outside_the_location_never_removes_them(tmp_path, local_place):
    source = make_source(tmp_path)
    bundle = bundle_of(source)
    upload(local_place.target, bundle, plan_for(local_place, bundle))
    sibling = tmp_path / "store" / "other-team.txt"
    elsewhere = tmp_path / "elsewhere" / "keep.txt"
    for victim in (sibling, elsewhere):
        write(victim.parent, victim.name, "not yours\n")
    damaged = stored_marker(local_place)
    damaged["bundle"] = "0" * 64
    damaged["files"]["../other-team.txt"] = {"sha256": "0" * 64, "size": 10, "exec": False}
    damaged["files"][str(elsewhere)] = {"sha256": "0" * 64, "size": 10, "exec": False}
    local_place.write(NAME, json.dumps(damaged).encode())

    planned = plan_for(local_place, bundle)
    if planned is not None:
        upload(local_place.target, bundle, planned)

    assert sibling.read_text() == "not yours\n"
    assert elsewhere.read_text() == "not yours\n"
