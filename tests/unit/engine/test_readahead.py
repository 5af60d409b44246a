"""The plan's reads sent while the manifests load (engine/readahead, prefect/ahead), against the fake API.

What a user would notice: the same plan as without reading ahead, no request sent twice, a manifest's error
before the server's, and an apply that re-reads the server under its lock.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.engine import readahead
from reconciler.engine import run
from reconciler.errors import ApiError, ManifestErrors
from reconciler.manifests import discover
from reconciler.prefect import ahead as ahead_mod
from reconciler.render import text
try:
    from ..prefect_fake import SOURCE, FakePrefect, manifest, write_manifests
except ImportError:  # run as a top-level module
    from prefect_fake import SOURCE, FakePrefect, manifest, write_manifests  # type: ignore[no-redef]

COUNT = 450      # three pages of deployments (200 a page)


def _docs(count: int = COUNT) -> list[dict]:
    return [manifest(f"d{i:04d}", flow=f"flow {i % 7}") for i in range(count)]


def _options() -> run.Options:
    return run.Options(source=SOURCE, skip_upload=True, say=lambda line: None)


@pytest.fixture()
def applied(tmp_path: Path) -> tuple[FakePrefect, Path]:
    fake = FakePrefect()
    root = write_manifests(tmp_path, _docs()) / "deployments"
    with fake.client() as client:
        report = run.apply_path(root, _options(), client)
    assert not report.failures, [r.message for r in report.failures]
    fake.requests.clear()
    return fake, root


def _requests(fake: FakePrefect) -> list[tuple[str, str, str]]:
    return [(c.method, c.path, json.dumps(c.body, sort_keys=True)) for c in fake.requests]


def _rendered(plan) -> str:
    return "".join(line + "\n" for line in text.plan_lines(plan, False))


def test_a_no_op_plan_sends_each_read_once(applied) -> None:
    fake, root = applied
    with fake.client() as client:
        plan = run.make_plan(root, _options(), client)
        assert client.ahead is None    # ended with the plan
    assert not run.needs_apply(plan)
    sent = _requests(fake)
    assert len(sent) == len(set(sent)), [r for r in sent if sent.count(r) > 1]
    assert len(fake.calls("POST", "/deployments/filter")) == 3


def test_the_plan_is_the_plan_read_without_reading_ahead(applied, monkeypatch: pytest.MonkeyPatch) -> None:
    fake, root = applied
    (root / "d0003-deployment.yaml").write_text(
        (root / "d0003-deployment.yaml").read_text().replace("- url", "- url\n  - n"), encoding="utf-8")
    (root / "d0004-deployment.yaml").unlink()
    with fake.client() as client:
        ahead = _rendered(run.make_plan(root, _options(), client))
    read_ahead = len(fake.requests)
    monkeypatch.setattr(readahead, "ReadAhead", lambda *args: type("Off", (), {"stop": lambda self: None})())
    fake.requests.clear()
    with fake.client() as client:
        alone = _rendered(run.make_plan(root, _options(), client))
    assert ahead == alone
    assert "d0003" in ahead and "d0004" in ahead
    assert read_ahead == len(fake.requests)


def test_a_flow_only_the_inventory_names_is_read_as_well(applied) -> None:
    fake, root = applied
    for doc in _docs():
        if doc["flow_name"] == "flow 6":
            (root / f"{doc['name']}-deployment.yaml").unlink()
    with fake.client() as client:
        plan = run.make_plan(root, _options(), client)
    deletes = [a.identity for a in plan.actions if a.action == "delete"]
    assert len(deletes) == COUNT // 7 and all(i.startswith("flow 6/") for i in deletes)
    sent = _requests(fake)
    assert len(sent) == len(set(sent)), [r for r in sent if sent.count(r) > 1]
    assert sorted(c.body["flows"]["name"]["any_"] for c in fake.calls("POST", "/deployments/filter")
                  if c.body["offset"] == 0) == [[f"flow {i}" for i in range(6)], ["flow 6"]]


def test_a_wrong_guess_of_the_flow_names_costs_no_wrong_plan(applied, monkeypatch: pytest.MonkeyPatch) -> None:
    fake, root = applied
    monkeypatch.setattr(discover, "flow_name_guess", lambda raw: "a flow no manifest names")
    with fake.client() as client:
        plan = run.make_plan(root, _options(), client)
    assert not run.needs_apply(plan)
    pages = fake.calls("POST", "/deployments/filter")
    guessed = [c for c in pages if "a flow no manifest names" in c.body["flows"]["name"]["any_"]]
    assert len(guessed) <= 3 and len(pages) - len(guessed) == 3   # the live read sent its own


def test_a_manifest_error_comes_before_the_server_error(applied) -> None:
    fake, root = applied
    (root / "d0001-deployment.yaml").write_text("name: [unclosed\n", encoding="utf-8")
    fake.fail("GET", "/admin/version", 500, {"detail": "down"}, times=None)
    with fake.client() as client, pytest.raises(ManifestErrors) as raised:
        run.make_plan(root, _options(), client)
    assert "d0001-deployment.yaml" in str(raised.value)
    (root / "d0001-deployment.yaml").write_text(json.dumps(manifest("d0001", flow="flow 1")), encoding="utf-8")
    with fake.client() as client, pytest.raises(ApiError) as raised:
        run.make_plan(root, _options(), client)
    assert "500" in str(raised.value)
    assert not fake.writes


def test_apply_reads_the_server_again_under_its_lock(applied) -> None:
    fake, root = applied
    (root / "d0002-deployment.yaml").write_text(
        (root / "d0002-deployment.yaml").read_text().replace("tags: []", "tags: [new]"), encoding="utf-8")
    with fake.client() as client:
        report = run.apply_path(root, _options(), client)
    assert not report.failures
    assert [r.identity for r in report.results if r.action == "update"] == ["flow 2/d0002"]
    assert len(fake.calls("POST", "/deployments/filter")) == 6     # the plan's 3 pages, then 3 under the lock


def test_an_offer_the_reader_did_not_keep_is_sent_by_its_caller() -> None:
    fake = FakePrefect()
    with fake.client() as client:
        client.ahead = ahead = ahead_mod.Ahead()
        answer, pages = ahead_mod.Answer(), ahead_mod.Pages()
        assert ahead.offer(ahead_mod.key("GET", "admin/version"), answer)
        assert ahead.offer(ahead_mod.key("PAGED", "flows/filter", {}), pages)
        ahead.withdraw_all()
        assert client.server_version() == fake.version
        assert list(client.paged("flows/filter", {})) == []
    assert [c.path for c in fake.requests] == ["/admin/version", "/flows/filter"]


def test_a_finished_read_ahead_hands_out_nothing() -> None:
    fake = FakePrefect()
    with fake.client() as client:
        client.ahead = ahead = ahead_mod.Ahead()
        answer = ahead_mod.Answer()
        assert ahead.offer(ahead_mod.key("GET", "admin/version"), answer)
        answer.publish("0.0.0-stale")
        ahead.finish()
        assert not ahead.offer(ahead_mod.key("GET", "admin/version"), ahead_mod.Answer())
        assert client.server_version() == fake.version


@pytest.mark.parametrize("line, guess", [
    (b"flow_name: etl\n", "etl"),
    (b"flow_name:   Cat Facts   # a comment\r\n", "Cat Facts"),
    (b"flow_name: 'my flow'\n", "my flow"),
    (b'flow_name: "my flow"\n', "my flow"),
    (b"flow_name: null\n", None),
    (b"flow_name: a: b\n", None),
    (b"flow_name: |\n  etl\n", None),
    (b"flow_name: a\nflow_name: b\n", None),
    (b"  flow_name: nested\n", None),
    (b"flow_name: \"a\\tb\"\n", None),
    (b"flow_name: " + b"x" * 2000 + b"\n", None),
])
def test_the_flow_name_guess(line: bytes, guess) -> None:
    assert discover.flow_name_guess(b"name: x\n" + line) == guess


def _inventory_reads(fake: FakePrefect) -> tuple[int, int]:
    """(filters of every inventory, reads of one inventory by its name)."""
    by_name = [c for c in fake.requests if c.method == "GET" and "/block_documents/name/reconcile-inventory-" in c.path]
    every = [c for c in fake.calls("POST", "/block_documents/filter") if "like_" in json.dumps(c.body)]
    return len(every), len(by_name)


def test_this_sources_inventory_comes_from_the_one_page_of_every_inventory(applied) -> None:
    fake, root = applied
    with fake.client() as client:
        plan = run.make_plan(root, _options(), client)
    assert not run.needs_apply(plan)
    assert _inventory_reads(fake) == (1, 0)


@pytest.mark.parametrize("ahead", [True, False])
def test_with_200_inventories_or_more_it_is_read_by_its_name(applied, ahead, monkeypatch) -> None:
    """Offset paging over inventories that change between pages could skip one: read it by name then."""
    fake, root = applied
    for i in range(200):
        fake.set_inventory(f"another source {i:03d}", [])
    if not ahead:
        monkeypatch.setattr(readahead, "ReadAhead", lambda *args: type("Off", (), {"stop": lambda self: None})())
    (root / "d0004-deployment.yaml").unlink()
    fake.requests.clear()
    with fake.client() as client:
        plan = run.make_plan(root, _options(), client)
    assert [a.identity for a in plan.actions if a.action == "delete"] == ["flow 4/d0004"]   # still owned
    assert _inventory_reads(fake) == (2, 1)     # two pages of every inventory, then this one by name
    sent = _requests(fake)
    assert len(sent) == len(set(sent)), [r for r in sent if sent.count(r) > 1]


def test_the_blocks_of_the_first_page_are_read_apart_from_those_later_pages_add(tmp_path: Path) -> None:
    """What the first page of deployments points at is read while the other pages come; the last pages'
    other blocks in one more read.  Either way each read goes out once, and the plan is the same."""
    fake = FakePrefect()
    other = {**manifest("x")["infrastructure"], "env": {"TEAM": "late"}}
    docs = [manifest(f"d{i:04d}", flow=f"flow {i % 7}", **({"infrastructure": other} if i >= 400 else {}))
            for i in range(COUNT)]
    root = write_manifests(tmp_path, docs) / "deployments"
    with fake.client() as client:
        assert not run.apply_path(root, _options(), client).failures
    fake.requests.clear()
    with fake.client() as client:
        plan = run.make_plan(root, _options(), client)
    assert not run.needs_apply(plan)
    reads = [c.body["block_documents"]["id"]["any_"] for c in fake.calls("POST", "/block_documents/filter")
             if "id" in (c.body.get("block_documents") or {})]
    first = {d["infrastructure_document_id"] for d in fake.deployments.values() if d["name"] < "d0200"}
    assert [set(ids) for ids in reads] in ([first, _all_blocks(fake) - first], [_all_blocks(fake) - first, first])
    sent = _requests(fake)
    assert len(sent) == len(set(sent)), [r for r in sent if sent.count(r) > 1]


def _all_blocks(fake: FakePrefect) -> set[str]:
    return {d["infrastructure_document_id"] for d in fake.deployments.values()}
