"""status: one entry per deployment, in sync / drifted / missing / unmanaged / orphaned / conflict."""
from __future__ import annotations

import json

import pytest

from reconciler import cli
from reconciler.engine import status
from reconciler.render import status as status_render

try:
    from .. import prefect_fake as pf
except ImportError:
    import prefect_fake as pf

EXPECTED = {
    "Cat Facts/in-sync": "in sync",
    "Cat Facts/drifted": "drifted",
    "Weather/missing": "missing",
    "Cat Facts/unmanaged": "unmanaged",
    "Cat Facts/orphaned": "orphaned",
    "Cat Facts/conflict": "conflict",
}


def docs():
    return [pf.manifest("in-sync"), pf.manifest("drifted", tags=["new"]), pf.manifest("missing", flow="Weather"),
            pf.manifest("unmanaged"), pf.manifest("conflict")]


def fake_server() -> pf.FakePrefect:
    fake = pf.FakePrefect()
    for name in ("in-sync", "unmanaged", "orphaned", "conflict"):
        fake.deploy_manifest(pf.manifest(name))
    fake.deploy_manifest(pf.manifest("drifted", tags=["old"]))
    fake.deploy_manifest(pf.manifest("bystander"))  # on the server, declared nowhere, in no inventory
    fake.set_inventory(pf.SOURCE, ["Cat Facts/in-sync", "Cat Facts/drifted", "Cat Facts/orphaned"])
    fake.set_inventory("team-b", ["Cat Facts/conflict"])
    return fake


@pytest.fixture
def plan():
    return pf.make_plan(fake_server(), docs()).plan


def test_each_deployment_gets_its_status(plan):
    entries = status.entries(plan)
    assert {e.identity: e.status for e in entries} == EXPECTED


def test_entries_are_ordered_by_status(plan):
    assert [e.status for e in status.entries(plan)] == list(status.ORDER)


@pytest.mark.parametrize("identity, detail", [
    ("Cat Facts/drifted", "1 field(s) differ: tags"),
    ("Weather/missing", "declared, not on the server"),
    ("Cat Facts/unmanaged", "not yet in this source's inventory"),
    ("Cat Facts/orphaned", "no longer declared"),
    ("Cat Facts/conflict", "managed by source 'team-b'"),
])
def test_details_say_why(plan, identity, detail):
    [entry] = [e for e in status.entries(plan) if e.identity == identity]
    assert detail in entry.detail


def test_manifest_is_named_where_there_is_one(plan):
    by_id = {e.identity: e for e in status.entries(plan)}
    assert by_id["Cat Facts/drifted"].manifest == "deployments/drifted-deployment.yaml"
    assert by_id["Cat Facts/conflict"].manifest == "deployments/conflict-deployment.yaml"
    assert by_id["Cat Facts/orphaned"].manifest is None


def test_unmanaged_with_differences_lists_them():
    fake = pf.FakePrefect()
    fake.deploy_manifest(pf.manifest("unmanaged", description="old"))
    plan = pf.make_plan(fake, [pf.manifest("unmanaged", description="new")]).plan
    [entry] = status.entries(plan)
    assert (entry.status, entry.detail) == ("unmanaged", "1 field(s) differ: description")


def test_counts_and_json(plan):
    raw = status.to_json(plan)
    assert raw["summary"] == {s: 1 for s in status.ORDER}
    assert {d["deployment"]: d["status"] for d in raw["deployments"]} == EXPECTED
    assert set(raw["deployments"][0]) == {"deployment", "manifest", "status", "detail"}
    assert (raw["source"], raw["server"]["url"]) == (pf.SOURCE, pf.API_URL)
    json.dumps(raw)  # serialisable as is


def test_drifted_is_false_only_when_all_in_sync(plan):
    assert status.drifted(plan)
    fake = pf.FakePrefect()
    fake.deploy_manifest(pf.manifest("a"))
    fake.set_inventory(pf.SOURCE, ["Cat Facts/a"])
    calm = pf.make_plan(fake, [pf.manifest("a")]).plan
    assert [e.status for e in status.entries(calm)] == ["in sync"]
    assert not status.drifted(calm)


def test_text_and_markdown_list_every_entry(plan):
    out = status_render.render_text(plan)
    for identity, state in EXPECTED.items():
        assert any(line.split() and state in line and identity in line for line in out.splitlines()), identity
    assert "Cat Facts/bystander" not in out
    md = status_render.render_markdown(plan)
    for identity, state in EXPECTED.items():
        assert f"| {state} | `{identity}` |" in md


def test_cli_status_json_and_detailed_exitcode(monkeypatch, capsys, tmp_path):
    pf.route_default_transport(monkeypatch, fake_server())
    root = pf.write_manifests(tmp_path, docs())
    code = cli.main(["status", str(root), "--api-url", pf.API_URL, "--source", pf.SOURCE, "--format", "json",
                     "--detailed-exitcode"])
    out, err = capsys.readouterr()
    assert {d["deployment"]: d["status"] for d in json.loads(out)["deployments"]} == EXPECTED
    assert code == 2, err
