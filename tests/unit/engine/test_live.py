"""live.read: what the server holds, read in a handful of requests whatever its size."""
from __future__ import annotations

import pytest

from reconciler.engine import live as live_mod

try:
    from .. import prefect_fake as pf
except ImportError:
    import prefect_fake as pf


def populate(fake: pf.FakePrefect, count: int, flows: int = 3) -> None:
    infra = fake.add_block_document("process", data={"type": "process", "stream_output": True})
    for i in range(count):
        fake.deploy(f"flow-{i % flows}", f"dep-{i:04d}", infrastructure_document_id=infra["id"],
                    schedules=[{"schedule": {"interval": 60 + i}, "active": True}])


def read(fake: pf.FakePrefect, docs=()):
    return live_mod.read(fake.client(), pf.desired(*docs))


def test_450_deployments_are_read_in_three_pages_of_200():
    fake = pf.FakePrefect()
    populate(fake, 450)
    live = read(fake)
    pages = fake.calls("POST", "/deployments/filter")
    assert [(c.body["limit"], c.body["offset"]) for c in pages] == [(200, 0), (200, 200), (200, 400)]
    assert len(live.deployments) == 450


def test_exactly_200_deployments_needs_one_more_empty_page():
    fake = pf.FakePrefect()
    populate(fake, 200)
    live = read(fake)
    assert len(fake.calls("POST", "/deployments/filter")) == 2
    assert len(live.deployments) == 200


@pytest.mark.parametrize("count", [2, 150, 199])
def test_request_count_does_not_grow_with_deployments(count):
    small, large = pf.FakePrefect(), pf.FakePrefect()
    populate(small, 1)
    populate(large, count)
    doc = pf.manifest("declared", flow="flow-0")
    read(small, [doc])
    read(large, [doc])
    # the same requests (independent reads go out together, so their order may differ)
    assert sorted((c.method, c.path) for c in large.requests) == sorted((c.method, c.path) for c in small.requests)
    assert len(large.requests) <= 6


def test_many_deployments_take_a_handful_of_requests_and_no_per_deployment_get():
    fake = pf.FakePrefect()
    populate(fake, 450)
    read(fake, [pf.manifest("dep-0001", flow="flow-1")])
    gets = [c.path for c in fake.requests if c.method == "GET"]
    assert gets == ["/admin/version"]
    assert len(fake.requests) <= 8  # version + 3 deployment pages + flows + up to 3 block filters
    assert fake.writes == []


def test_identities_are_flow_name_slash_deployment_name():
    fake = pf.FakePrefect()
    fake.deploy("Cat Facts", "hourly")
    fake.deploy("Cat Facts", "daily")
    fake.deploy("Weather Summary", "hourly")
    live = read(fake)
    assert sorted(live.deployments) == ["Cat Facts/daily", "Cat Facts/hourly", "Weather Summary/hourly"]
    assert live.deployments["Weather Summary/hourly"]["name"] == "hourly"
    assert live.deployments["Cat Facts/daily"]["flow_id"] == live.flows["Cat Facts"]


def test_declared_flows_without_deployments_are_looked_up_too():
    fake = pf.FakePrefect()
    fake.deploy("Cat Facts", "hourly")
    lonely = fake.add_flow("Lonely Flow")
    fake.add_flow("Unrelated Flow")
    live = read(fake, [pf.manifest("new", flow="Lonely Flow")])
    assert live.flows["Lonely Flow"] == lonely
    assert "Unrelated Flow" not in live.flows
    assert len(fake.calls("POST", "/flows/filter")) == 1


def test_inventories_are_parsed_from_json_block_documents():
    fake = pf.FakePrefect()
    mine = fake.set_inventory("github.com/acme/flows//deployments", ["Cat Facts/hourly", "Cat Facts/daily"])
    fake.set_inventory("/srv/other", ["Weather/hourly"])
    fake.add_block_document("json", "reconcile-lock-abc", {"value": {"holder": "ci", "expires": 1}})
    fake.add_block_document("json", "reconcile-inventory-broken", {"value": ["not", "a", "mapping"]})
    fake.add_block_document("json", "someone-elses-config", {"value": {"source": "sneaky", "deployments": ["x/y"]}})
    live = read(fake)
    assert set(live.inventories) == {"github.com/acme/flows//deployments", "/srv/other"}
    inv = live.inventories["github.com/acme/flows//deployments"]
    assert inv.deployments == frozenset({"Cat Facts/hourly", "Cat Facts/daily"})
    assert inv.doc_id == mine["id"]
    assert inv.doc_name == mine["name"]
    assert live.inventories["/srv/other"].deployments == frozenset({"Weather/hourly"})
    assert "sneaky" not in live.inventories  # only reconcile's own inventory documents count


def test_owner_of_names_the_other_source_only():
    fake = pf.FakePrefect()
    fake.set_inventory("a", ["f/y"])
    fake.set_inventory("b", ["f/x", "f/y"])
    fake.set_inventory("c", ["f/x"])
    live = read(fake)
    assert live.owner_of("f/x", except_source="a") == "b"
    assert live.owner_of("f/z", except_source="a") is None
    # listed twice (an earlier version killed between its two inventory writes), no claim: every source agrees
    # on the first in name order
    assert live.owner_of("f/x", except_source="b") is None and live.owner_of("f/x", except_source="c") == "b"
    assert live.owner_of("f/y", except_source="b") == "a" and live.owner_of("f/y", except_source="a") is None


def test_block_documents_give_stable_keys():
    fake = pf.FakePrefect()
    # Prefect fills every field of a saved Process block; empty values mean "not set"
    anonymous = fake.add_block_document("process", data={
        "type": "process", "env": {}, "labels": {}, "name": None, "command": None,
        "stream_output": True, "working_dir": None})
    named = fake.add_block_document("local-file-system", "prod", {"basepath": "/srv/flows"})
    fake.deploy("Cat Facts", "hourly", infrastructure_document_id=anonymous["id"],
                storage_document_id=named["id"])
    fake.deploy("Cat Facts", "dangling", infrastructure_document_id="00000000-0000-4000-8000-0000000fffff")
    live = read(fake)
    hourly = live.deployments["Cat Facts/hourly"]
    expected = pf.desired(pf.manifest("hourly"))[0].fields["infrastructure"]
    assert live.block_key(hourly["infrastructure_document_id"]) == expected
    assert live.block_key(hourly["storage_document_id"]) == "local-file-system/prod"
    assert live.block_key(None) is None
    dangling = live.deployments["Cat Facts/dangling"]
    assert live.block_key(dangling["infrastructure_document_id"]) == "missing:00000000-0000-4000-8000-0000000fffff"


def test_named_blocks_the_manifests_reference_are_read_by_slug_and_name():
    fake = pf.FakePrefect()
    prod = fake.add_block_document("process", "prod", {"type": "process", "stream_output": True})
    fake.add_block_document("process", "staging", {"type": "process"})
    doc = pf.manifest("hourly", infrastructure={
        "type": "process", "_block_document_name": "prod", "_block_type_slug": "process",
        "_block_document_id": "ignored-id", "_is_anonymous": False})
    live = read(fake, [doc])
    assert live.named[("process", "prod")].id == prod["id"]
    assert ("process", "staging") not in live.named


def test_deployments_of_unknown_flows_are_skipped_not_crashed_on():
    fake = pf.FakePrefect()
    dep = fake.deploy("Cat Facts", "hourly")
    dep["flow_id"] = "00000000-0000-4000-8000-00000000dead"  # a flow deleted under it
    live = read(fake)
    assert live.deployments == {}


def test_server_version_and_url_are_kept():
    fake = pf.FakePrefect(version="2.20.27")
    live = read(fake)
    assert live.server_version == "2.20.27"
    assert live.api_url == pf.API_URL


# -- a plan's read: only the deployments of its own flows ---------------------------------------------

def test_a_plan_does_not_read_the_deployments_of_flows_it_neither_declares_nor_owns():
    fake = pf.FakePrefect()
    populate(fake, 450, flows=3)                   # someone else's: flow-0, flow-1, flow-2
    other = fake.add_block_document("process", data={"type": "process", "working_dir": "/elsewhere"})
    fake.deploy("flow-9", "elsewhere", infrastructure_document_id=other["id"])
    fake.deploy("Cat Facts", "hourly")
    live = live_mod.read(fake.client(), pf.desired(pf.manifest("hourly")), pf.SOURCE, relevant_only=True)
    assert sorted(live.deployments) == ["Cat Facts/hourly"]
    pages = fake.calls("POST", "/deployments/filter")
    assert len(pages) == 1 and pages[0].body["flows"] == {"name": {"any_": ["Cat Facts"]}}
    assert other["id"] not in live.blocks
    flows = fake.calls("POST", "/flows/filter")
    assert len(flows) == 1 and flows[0].body["flows"]["name"] == {"any_": ["Cat Facts"]} and "id" not in flows[0].body["flows"]


def test_a_plan_still_prunes_an_owned_deployment_whose_flow_is_no_longer_declared():
    fake = pf.FakePrefect()
    fake.deploy("Cat Facts", "hourly")
    gone = fake.deploy("Old Flow", "nightly")
    fake.deploy("Old Flow", "unmanaged")           # same flow, not this source's: left alone
    fake.set_inventory(pf.SOURCE, ["Cat Facts/hourly", "Old Flow/nightly"])
    plan = pf.make_plan(fake, [pf.manifest("hourly")]).plan
    deletes = [(a.identity, a.live_id) for a in plan.actions if a.action == "delete"]
    assert deletes == [("Old Flow/nightly", gone["id"])]


def test_a_plan_with_nothing_declared_or_owned_reads_no_deployment():
    fake = pf.FakePrefect()
    populate(fake, 30)
    live = live_mod.read(fake.client(), [], pf.SOURCE, relevant_only=True)
    assert live.deployments == {} and fake.calls("POST", "/deployments/filter") == []
