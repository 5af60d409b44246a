"""A storage location holds one source's bundle: the marker names it, another source's upload is a conflict.

Markers (their `source`), uploads.plan_code (Taken locations, the notice for a marker that names no
source), engine.codeplan.with_uploads (only deployments the apply writes may upload; a taken location's
deployments become conflicts) and transfer.upload (the marker it writes names the uploading source).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from fsspec.implementations.memory import MemoryFileSystem

from reconciler.bundles import storage
from reconciler.bundles.bundle import HashCache, collect
from reconciler.bundles.marker import NAME, Marker
from reconciler.bundles.transfer import upload
from reconciler.bundles.uploads import Location, Upload, plan_code, plan_uploads
from reconciler.engine.codeplan import with_uploads
from reconciler.engine.plans import Action, Conflict, Plan
from reconciler.errors import ReconcileError

URL = "memory://code/etl"


@pytest.fixture(autouse=True)
def clean_memory_store():
    MemoryFileSystem.store.clear()
    MemoryFileSystem.pseudo_dirs[:] = [""]
    yield
    MemoryFileSystem.store.clear()


@pytest.fixture
def bundle(tmp_path):
    root = tmp_path / "etl"
    root.mkdir()
    (root / "flow.py").write_text("print('etl')\n")
    return collect(root, tmp_path, HashCache(None), display="etl")


def loc(identity, bundle, marker=None, url=URL) -> Location:
    return Location(identity, "remote-file-system/code", "etl", url, bundle, marker)


def owned_by(source, bundle=None, digest="old") -> Marker:
    files = {"flow.py": {"sha256": "0" * 64, "size": 1, "exec": False}}
    return Marker(bundle.digest if bundle else digest, files, source=source)


# -- the marker ------------------------------------------------------------------------------------

def test_the_marker_names_its_source_and_reads_it_back(bundle):
    marker = Marker.of(bundle, "acme/flows")
    raw = json.dumps(marker.to_json()).encode()
    assert Marker.from_bytes(raw) == marker
    assert json.loads(raw)["source"] == "acme/flows"


def test_a_marker_of_an_older_reconcile_has_no_source(bundle):
    raw = {"version": 1, "bundle": bundle.digest, "files": {}, "complete": True}
    assert Marker.from_bytes(json.dumps(raw).encode()).source is None
    assert "source" not in Marker.of(bundle).to_json()


def test_a_marker_whose_source_is_not_a_string_is_not_ours(bundle):
    raw = {"version": 1, "bundle": bundle.digest, "files": {}, "source": ["a"]}
    assert Marker.from_bytes(json.dumps(raw).encode()) is None


def test_an_upload_under_way_already_names_the_uploading_source():
    assert Marker("d", {}, source="old").started((), "new").source == "new"
    assert Marker("d", {}, source="old").started().source == "old"


# -- plan_code -------------------------------------------------------------------------------------

def test_a_location_another_source_owns_is_taken_whatever_the_code(bundle):
    for marker in (owned_by("a"), owned_by("a", bundle)):   # differing code, and the very same code
        code = plan_code([loc("f/etl", bundle, marker), loc("f/etl-2", bundle, marker)], "b")
        assert code.uploads == [] and [(t.url, t.owner, t.deployments) for t in code.taken] == [
            (URL, "a", ("f/etl", "f/etl-2"))]


def test_a_location_this_source_owns_uploads_and_the_upload_names_the_source(bundle):
    code = plan_code([loc("f/etl", bundle, owned_by("b"))], "b")
    [up] = code.uploads
    assert (up.source, code.taken, code.notices) == ("b", [], [])
    assert Upload.from_json(json.loads(json.dumps(up.to_json()))) == up


def test_a_marker_without_a_source_is_claimed_by_the_next_upload_with_a_notice(bundle):
    code = plan_code([loc("f/etl", bundle, owned_by(None))], "b")
    assert [u.source for u in code.uploads] == ["b"] and code.taken == []
    assert code.notices == [f"{URL}: its marker names no source (an older reconcile wrote it); "
                            "this upload makes the location 'b''s"]


def test_without_a_source_nothing_is_taken(bundle):
    assert len(plan_uploads([loc("f/etl", bundle, owned_by("a"))])) == 1


# -- with_uploads: the plan ------------------------------------------------------------------------

def plan_of(*actions: Action, conflicts=(), before=frozenset(), after=frozenset()) -> Plan:
    return Plan(source="b", api_url="http://x/api", server_version="2.20.0", actions=tuple(actions),
                conflicts=tuple(conflicts), inventory_before=frozenset(before), inventory_after=frozenset(after))


def test_a_deployment_left_alone_uploads_nothing(bundle):
    plan = plan_of(conflicts=[Conflict("f/etl", "etl-deployment.yaml", "a")])
    out = with_uploads(plan, [loc("f/etl", bundle)])
    assert out.uploads == () and out.conflicts == plan.conflicts


def test_an_unchanged_deployment_still_uploads_its_changed_code(bundle):
    out = with_uploads(plan_of(Action("noop", "f/etl", "m.yaml")), [loc("f/etl", bundle)])
    assert [u.deployments for u in out.uploads] == [("f/etl",)]


def test_the_deployments_of_a_taken_location_become_conflicts_and_are_not_written(bundle):
    plan = plan_of(Action("create", "f/new", "new.yaml"), Action("update", "f/mine", "mine.yaml"),
                   Action("noop", "f/other", "other.yaml"),
                   before={"f/mine", "f/other"}, after={"f/new", "f/mine", "f/other"})
    out = with_uploads(plan, [loc("f/new", bundle, owned_by("a")), loc("f/mine", bundle, owned_by("a")),
                              loc("f/other", bundle, url="memory://code/other")])
    assert [a.identity for a in out.actions] == ["f/other"]
    why = f"its storage location {URL} holds the code of source 'a'"
    assert out.conflicts == (Conflict("f/mine", "mine.yaml", "a", why), Conflict("f/new", "new.yaml", "a", why))
    assert [u.url for u in out.uploads] == ["memory://code/other"]
    # a deployment this source owns stays in its inventory; one it was about to create does not enter it
    assert out.inventory_after == {"f/mine", "f/other"}
    assert Plan.from_json(json.loads(out.dumps())).conflicts == out.conflicts
    assert out.to_json()["conflicts"][0]["reason"] == why


# -- transfer: the marker written --------------------------------------------------------------------

def test_an_upload_writes_a_marker_naming_its_source(bundle):
    target = storage.target("remote-file-system", "remote-file-system/code", {"basepath": "memory://code"}, "etl")
    [planned] = plan_code([loc("f/etl", bundle, url=target.url)], "acme").uploads
    upload(target, bundle, planned)
    assert json.loads(MemoryFileSystem().cat_file(f"{target.root}/{NAME}"))["source"] == "acme"


def test_an_upload_stops_before_writing_when_another_source_claimed_the_location_since_the_plan(bundle):
    target = storage.target("remote-file-system", "remote-file-system/code", {"basepath": "memory://code"}, "etl")
    [planned] = plan_code([loc("f/etl", bundle, url=target.url)], "acme").uploads
    theirs = json.dumps(Marker("x", {}, source="other").to_json()).encode()
    MemoryFileSystem().pipe_file(f"{target.root}/{NAME}", theirs)
    with pytest.raises(ReconcileError) as info:
        upload(target, bundle, planned)
    assert "holds the code of source 'other'" in str(info.value)
    assert MemoryFileSystem().find(target.root) == [f"/{target.root}/{NAME}"]
    assert MemoryFileSystem().cat_file(f"{target.root}/{NAME}") == theirs


@pytest.mark.parametrize("field, path", [("remove", "../other-team.py"), ("remove", "/etc/passwd"),
                                         ("write", "../x.py"), ("write", "not-in-the-bundle.py")])
def test_an_upload_refuses_a_path_outside_the_location_before_any_write(bundle, field, path):
    target = storage.target("remote-file-system", "remote-file-system/code", {"basepath": "memory://code"}, "etl")
    [planned] = plan_code([loc("f/etl", bundle, url=target.url)], "acme").uploads
    forged = Upload(**{**planned.__dict__, field: getattr(planned, field) + (path,)})
    with pytest.raises(ReconcileError) as info:
        upload(target, bundle, forged)
    assert repr(path) in str(info.value) and "\n" not in str(info.value)
    assert not MemoryFileSystem().exists(target.root)


def test_the_bundle_directory_of_a_saved_plan_must_be_in_the_repository(tmp_path: Path):
    from reconciler.bundles.collect import collect_dirs
    (tmp_path / "repo" / "flows").mkdir(parents=True)
    (tmp_path / "private").mkdir()
    with pytest.raises(ReconcileError) as info:
        collect_dirs([str(tmp_path / "private")], tmp_path / "repo", "p.json")
    assert str(info.value).startswith(f"p.json: bundle directory {tmp_path / 'private'} leaves the repository")
