"""reconcile export: live deployments → manifests (the pure mapping, and the thin reader/writer).

`CAPTURED` (at the end of this file) is verbatim JSON from a real Prefect 2.20.27 server: five
deployments of one flow made through the REST API (named docker-container infrastructure with a
nested named docker-registry block and named local-file-system storage; an anonymous process block,
paused, interval + inactive rrule schedules; no infrastructure at all; anonymous s3 storage whose
keys the server masks; named github storage), the flow, and `POST /block_documents/filter` for their
block documents.  Only the block documents' `block_schema`/`block_type` were trimmed to the keys
shown (schema properties, descriptions and logo URLs dropped; export reads none of them).
"""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path, PurePosixPath

import httpx
import pytest
import yaml

from reconciler import cli
from reconciler.engine import desired as desired_mod, diff as diff_mod, export, exported as exported_mod
from reconciler.manifests import manifest as manifest_mod
from reconciler.manifests.blocks import MASK
from reconciler.prefect.api import PrefectClient
from reconciler.prefect.v2 import V2Adapter
from reconciler.errors import ManifestErrors, ReconcileError
from reconciler.engine.live import BlockDoc, Inventory, Live

try:
    from .. import prefect_fake as pf
except ImportError:
    import prefect_fake as pf
from fixture_paths import FIXTURES  # noqa: E402  (tests/ is on sys.path, see tests/conftest.py)

STAMP = "2026-11-25T18:00:00+00:00"
FIXTURES_2_20 = FIXTURES / "prefect-2.20.27"
MARKER = "\n###\n### DO NOT EDIT BELOW THIS LINE\n###\n"
BOOKKEEPING = ["_block_document_id", "_block_document_name", "_is_anonymous", "block_type_slug", "_block_type_slug"]


def api() -> dict:
    return copy.deepcopy(CAPTURED)


def flow_name() -> str:
    return CAPTURED["flows"][0]["name"]


def block(slug: str, anonymous: bool = False) -> dict:
    return next(b for b in CAPTURED["block_documents"]
                if b["block_type"]["slug"] == slug and b["is_anonymous"] == anonymous)


def export_all(data: dict | None = None) -> dict[str, exported_mod.Exported]:
    data = data or api()
    out = exported_mod.manifests(data["deployments"], data["flows"], data["block_documents"], STAMP)
    return {e.identity.split("/", 1)[1]: e for e in out}


def halves(text: str) -> tuple[dict, dict]:
    above, below = text.split(MARKER)
    return yaml.safe_load(above), yaml.safe_load(below)


def top_keys(text: str) -> list[str]:
    return re.findall(r"^([a-z_]+):", text, re.MULTILINE)


def parse(text: str, display: str = "exported-deployment.yaml") -> manifest_mod.Manifest:
    return manifest_mod.parse(text.encode(), Path(display), display)


def live_from(data: dict, inventories: dict[str, set[str]]) -> Live:
    names = {f["id"]: f["name"] for f in data["flows"]}
    docs = {b["id"]: BlockDoc.from_api(b) for b in data["block_documents"]}
    return Live(api_url="http://prefect.test/api", server_version="2.20.27",
                deployments={f"{names[d['flow_id']]}/{d['name']}": d for d in data["deployments"]},
                flows={f["name"]: f["id"] for f in data["flows"]}, blocks=docs,
                named={(d.slug, d.name): d for d in docs.values() if not d.anonymous},
                inventories={s: Inventory(s, frozenset(ids)) for s, ids in inventories.items()})


def plan_of(exported: list[exported_mod.Exported], live: Live, source: str):
    wanted = desired_mod.resolve([parse(e.text, str(e.path)) for e in exported])
    adapter = V2Adapter()
    return diff_mod.diff(wanted, live, source, lambda dep: adapter.live_fields(dep, live.block_key))


# ----------------------------------------------------------------------------- layout


def test_named_blocks_sit_below_the_marker_with_the_keys_prefect_writes():
    e = export_all()["named-blocks"]
    above, below = halves(e.text)
    assert "infrastructure" not in above
    infra = below["infrastructure"]
    docker = block("docker-container")
    assert list(infra)[-5:] == BOOKKEEPING
    assert [infra[k] for k in BOOKKEEPING] == [docker["id"], docker["name"], False, "docker-container", "docker-container"]
    assert infra["image"] == "python:3.11" and infra["type"] == "docker-container"
    registry = docker["block_document_references"]["image_registry"]["block_document"]
    assert infra["image_registry"]["_block_document_id"] == registry["id"]
    assert infra["image_registry"]["_block_document_name"] == registry["name"]
    assert infra["image_registry"]["block_type_slug"] == "docker-registry"
    storage = below["storage"]
    assert storage == {"basepath": "/srv/flows", "_block_document_id": block("local-file-system")["id"],
                       "_block_document_name": block("local-file-system")["name"], "_is_anonymous": False,
                       "block_type_slug": "local-file-system", "_block_type_slug": "local-file-system"}


def test_an_anonymous_block_sits_above_the_marker_without_document_keys():
    e = export_all()["anonymous-paused"]
    above, below = halves(e.text)
    assert "infrastructure" not in below
    assert above["infrastructure"] == {"type": "process", "stream_output": True, "env": {"LEVEL": "DEBUG"},
                                       "block_type_slug": "process", "_block_type_slug": "process"}
    assert below["storage"] is None


@pytest.mark.parametrize("name, fixture", [
    ("anonymous-paused", "plain-deployment.yaml"),   # anonymous infrastructure: above the marker
    ("named-blocks", "catfact-deployment.yaml"),     # named infrastructure and storage: below
])
def test_header_key_order_and_marker_are_those_of_prefect_2_20(name, fixture):
    text = export_all()[name].text
    reference = (FIXTURES_2_20 / fixture).read_text(encoding="utf-8")
    assert top_keys(text) == top_keys(reference)
    assert text.startswith(f"###\n### A complete description of a Prefect Deployment for flow {flow_name()!r}\n###\n")
    assert "# The work queue that will handle this deployment's runs\nwork_queue_name:" in text
    assert text.count(MARKER) == 1


def test_the_fields_carry_the_live_values():
    above, below = halves(export_all()["named-blocks"].text)
    assert above["description"] == "Named blocks" and above["version"] == "7"
    assert above["work_queue_name"] == "examples" and above["work_pool_name"] == "default-agent-pool"
    assert above["tags"] == ["b", "a"] and above["parameters"] == {"n": 2}
    assert above["schedule"] is None and above["is_schedule_active"] is None
    assert above["schedules"] == [{"schedule": {"cron": "0 * * * *", "timezone": None, "day_or": True}, "active": True}]
    assert below["flow_name"] == flow_name() and below["path"] == "etl" and below["entrypoint"] == "etl.py:main"
    assert below["parameter_openapi_schema"]["properties"]["n"]["default"] == 1
    assert below["timestamp"] == STAMP and below["triggers"] == [] and below["enforce_parameter_schema"] is False


def test_a_paused_deployment_gets_is_schedule_active_false_and_keeps_each_schedules_flag():
    above, below = halves(export_all()["anonymous-paused"].text)
    assert above["is_schedule_active"] is False and above["schedule"] is None
    interval = next(d for d in CAPTURED["deployments"] if d["name"] == "anonymous-paused")
    anchor = next(s["schedule"]["anchor_date"] for s in interval["schedules"] if "interval" in s["schedule"])
    by_kind = {next(iter(s["schedule"])): s for s in above["schedules"]}
    assert by_kind == {
        "interval": {"schedule": {"interval": 600.0, "anchor_date": anchor, "timezone": "UTC"}, "active": True},
        "rrule": {"schedule": {"rrule": "FREQ=WEEKLY;BYDAY=MO", "timezone": "Europe/Amsterdam"}, "active": False},
    }
    assert above["infra_overrides"] == {"env.FOO": "bar"}
    assert below["enforce_parameter_schema"] is True


def test_server_only_schedule_keys_are_not_exported():
    data = api()
    dep = next(d for d in data["deployments"] if d["name"] == "named-blocks")
    dep["schedules"][0]["schedule"]["max_active_runs"] = 3   # a key a later server might add
    above, _ = halves(export_all(data)["named-blocks"].text)
    assert above["schedules"][0]["schedule"] == {"cron": "0 * * * *", "timezone": None, "day_or": True}
    parse(export_all(data)["named-blocks"].text)


# ----------------------------------------------------------------------------- secrets


def test_secrets_are_never_exported_and_masks_are_written_as_prefect_writes_them():
    for e in export_all().values():
        assert "hunter2" not in e.text and "not-a-real-secret" not in e.text and "ghp_not_a_real_token" not in e.text
        assert not re.search(r"'\*{8}'", e.text), e.text   # the server's 8-star mask is not what Prefect writes
    _, below = halves(export_all()["named-blocks"].text)
    assert below["infrastructure"]["image_registry"]["password"] == MASK
    _, below = halves(export_all()["from-github"].text)
    assert below["storage"]["access_token"] == MASK


def test_an_anonymous_block_with_masked_secrets_is_exported_with_a_warning_and_reconcile_refuses_it():
    e = export_all()["masked storage"]
    _, below = halves(e.text)
    assert below["storage"]["aws_secret_access_key"] == MASK and "_block_document_id" not in below["storage"]
    assert [w for w in e.warnings if "secrets" in w] == [
        f"{flow_name()}/masked storage: its anonymous s3 storage block has secrets the server does not reveal "
        "(written as '**********'); it cannot be recreated from this manifest — save it as a named block and "
        "reference it by `_block_document_name`"]
    with pytest.raises(ManifestErrors, match=r"storage\.aws_access_key_id: this inline \(anonymous\) s3 block"):
        desired_mod.resolve([parse(e.text)])


def test_a_named_block_with_masked_secrets_is_fine():
    for name in ("named-blocks", "from-github"):
        e = export_all()[name]
        assert not any("secrets" in w for w in e.warnings), e.warnings
        desired_mod.resolve([parse(e.text)])


# ----------------------------------------------------------------------------- warnings


def test_code_in_writable_storage_is_named_in_a_warning_and_a_git_repository_is_not():
    exported = export_all()
    assert [w for w in exported["named-blocks"].warnings] == [
        f"{flow_name()}/named-blocks: its code is in storage local-file-system/{block('local-file-system')['name']} "
        "(path 'etl') and is not exported; copy the code into the repository where its entrypoint names it before "
        "`reconcile apply`; until then apply refuses to upload"]
    assert exported["from-github"].warnings == ()
    assert exported["anonymous-paused"].warnings == ()


def test_code_in_anonymous_writable_storage_is_warned_about_too():
    warnings = export_all()["masked storage"].warnings
    assert f"{flow_name()}/masked storage: its code is in an anonymous s3 storage block (path 'x') and is not " \
           "exported; copy the code into the repository where its entrypoint names it before `reconcile apply`; " \
           "until then apply refuses to upload" in warnings


def test_a_deployment_without_infrastructure_gets_prefects_default_and_a_warning():
    e = export_all()["no-infrastructure"]
    above, _ = halves(e.text)
    assert above["infrastructure"] == {"type": "process", "env": {}, "labels": {}, "name": None, "command": None,
                                       "stream_output": True, "working_dir": None,
                                       "block_type_slug": "process", "_block_type_slug": "process"}
    assert e.warnings == (f"{flow_name()}/no-infrastructure: has no infrastructure block on the server; the "
                          "manifest declares Prefect's default (an anonymous process), which applying it sets",)


def test_pull_steps_cannot_be_exported_and_say_so():
    data = api()
    dep = next(d for d in data["deployments"] if d["name"] == "anonymous-paused")
    dep["pull_steps"] = [{"prefect.deployments.steps.git_clone": {"repository": "https://github.com/acme/flows"}}]
    e = export_all(data)["anonymous-paused"]
    assert any("pull steps" in w and e.identity in w for w in e.warnings)
    assert "pull_steps" not in e.text


def test_live_values_reconcile_would_refuse_are_reported_at_export_time():
    data = api()
    dep = next(d for d in data["deployments"] if d["name"] == "from-github")
    dep["parameters"] = {"nope": 1}   # the server does not check parameters against the schema
    e = export_all(data)["from-github"]
    assert e.warnings == (f"{flow_name()}/from-github: the exported manifest does not pass reconcile's checks: "
                          "parameters.nope: not a parameter of flow "
                          f"{flow_name()!r} (its parameters: n)",)


# ----------------------------------------------------------------------------- the key property, in pure form


def test_exported_manifests_plan_as_in_sync_against_the_state_they_came_from():
    data = api()
    exported = [e for e in export_all(data).values() if e.identity.split("/", 1)[1] not in ("masked storage", "no-infrastructure")]
    identities = {e.identity for e in exported}
    live = live_from(data, {"mine": identities})
    plan = plan_of(exported, live, "mine")
    assert [(a.action, a.changes) for a in plan.actions] == [("noop", ())] * 3
    assert plan.conflicts == () and not plan.has_changes
    other = plan_of(exported, live_from(data, {}), "newcomer")
    assert sorted((a.action, a.identity, a.changes) for a in other.actions) == sorted(
        ("adopt", i, ()) for i in identities)


def test_a_deployment_without_infrastructure_plans_exactly_one_change():
    data = api()
    e = export_all(data)["no-infrastructure"]
    plan = plan_of([e], live_from(data, {"mine": {e.identity}}), "mine")
    [action] = plan.actions
    assert action.action == "update" and [c.field for c in action.changes] == ["infrastructure"]
    assert action.changes[0].before is None


# ----------------------------------------------------------------------------- file names


@pytest.mark.parametrize("flow, name, expected", [
    ("Cat Facts", "catfact-hourly", "cat-facts/catfact-hourly-deployment.yaml"),
    ("SoMe CrAz_y N@me", "Say Hello!", "some-craz_y-n-me/say-hello-deployment.yaml"),
    ("../../etc", "../passwd", "etc/passwd-deployment.yaml"),
    ("Données météo", "été / hiver", "donnees-meteo/ete-hiver-deployment.yaml"),
    ("flow.with.dots", ".hidden", "flow-with-dots/hidden-deployment.yaml"),
], ids=["spaces", "symbols", "traversal", "accents", "dots"])
def test_file_paths_are_filesystem_safe(flow, name, expected):
    [path] = exported_mod.file_paths([(flow, name)])
    assert path == PurePosixPath(expected)


def test_names_that_slug_alike_get_distinct_stable_paths():
    pairs = [("ETL", "Daily Run"), ("ETL", "daily-run"), ("etl", "Daily Run"), ("ETL", "weekly")]
    paths = exported_mod.file_paths(pairs)
    assert len(set(paths)) == 4
    assert paths[3] == PurePosixPath("etl/weekly-deployment.yaml")
    assert all(re.fullmatch(r"etl/daily-run-[0-9a-f]{8}-deployment\.yaml", str(p)) for p in paths[:3])
    assert exported_mod.file_paths(list(reversed(pairs))) == list(reversed(paths))   # order does not matter


def test_a_name_with_nothing_filesystem_safe_left_gets_a_hash():
    [path] = exported_mod.file_paths([("!!!", "???")])
    assert re.fullmatch(r"flow/[0-9a-f]{8}-deployment\.yaml", str(path))


# ----------------------------------------------------------------------------- reading and writing (fake server)


def seeded() -> tuple[pf.FakePrefect, list[dict]]:
    """A fake 2.20 server holding three deployments applied by reconcile for source pf.SOURCE, and a
    fourth made by hand."""
    fake = pf.FakePrefect()
    fake.add_block_document("process", "prod", {"type": "process", "stream_output": True, "env": {}})
    docs = [
        pf.manifest("hourly", schedules=[{"schedule": {"cron": "0 * * * *", "timezone": None, "day_or": True}, "active": True}]),
        pf.manifest("paused", is_schedule_active=False, tags=["b", "a"],
                    schedules=[{"schedule": {"interval": 600}, "active": True}]),
        pf.manifest("named", flow="Weather", parameters={}, infrastructure={
            "_block_document_name": "prod", "_block_type_slug": "process", "_is_anonymous": False}),
    ]
    report = pf.make_plan(fake, docs).apply()
    assert report.exit_code == 0
    fake.deploy("Other Flow", "by-hand", infrastructure_document_id=fake.add_block_document(
        "process", data={"type": "process", "stream_output": True})["id"])
    return fake, docs


def test_export_then_plan_against_the_same_fake_server_shows_no_changes(tmp_path):
    fake, docs = seeded()
    outcome = export.export(fake.client(), tmp_path / "out", source=pf.SOURCE)
    assert sorted(item.identity for _, item in outcome.written) == ["Cat Facts/hourly", "Cat Facts/paused", "Weather/named"]
    files = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.yaml"))
    assert files == ["cat-facts/hourly-deployment.yaml", "cat-facts/paused-deployment.yaml", "weather/named-deployment.yaml"]
    exported_docs = [yaml.safe_load(p.read_text()) for p in sorted((tmp_path / "out").rglob("*.yaml"))]
    planned = pf.make_plan(fake, exported_docs)
    assert [(a.action, a.changes) for a in planned.plan.actions] == [("noop", ())] * 3


def test_flow_filter_and_source_filter_combine(tmp_path):
    fake, _ = seeded()
    only_weather = export.export(fake.client(), tmp_path / "a", flows=["Weather"])
    assert [item.identity for _, item in only_weather.written] == ["Weather/named"]
    everything = export.export(fake.client(), tmp_path / "b")
    assert len(everything.written) == 4
    both = export.export(fake.client(), tmp_path / "c", source=pf.SOURCE, flows=["Other Flow", "Cat Facts"])
    assert [item.identity for _, item in both.written] == ["Cat Facts/hourly", "Cat Facts/paused"]


@pytest.mark.parametrize("kwargs, message", [
    ({"source": "never-applied"}, "source 'never-applied' has no inventory on the server at http://prefect.test/api"),
    ({"flows": ["Cat Facts", "Nope"]}, "no deployments of flow 'Nope' on the server at http://prefect.test/api"),
], ids=["unknown-source", "unknown-flow"])
def test_a_selection_that_names_nothing_is_an_error_and_writes_nothing(tmp_path, kwargs, message):
    fake, _ = seeded()
    with pytest.raises(ReconcileError) as err:
        export.export(fake.client(), tmp_path / "out", **kwargs)
    assert str(err.value).startswith(message)
    assert not (tmp_path / "out").exists()


def test_an_inventory_entry_missing_from_the_server_is_reported(tmp_path):
    fake, _ = seeded()
    fake.set_inventory("ops", ["Cat Facts/hourly", "Cat Facts/gone"])
    outcome = export.export(fake.client(), tmp_path / "out", source="ops")
    assert [item.identity for _, item in outcome.written] == ["Cat Facts/hourly"]
    assert outcome.warnings == ["Cat Facts/gone: listed in the inventory of source 'ops' but not on the server"]


def test_existing_files_are_kept_unless_forced(tmp_path):
    fake, _ = seeded()
    out = tmp_path / "out"
    mine = out / "cat-facts" / "hourly-deployment.yaml"
    mine.parent.mkdir(parents=True)
    mine.write_text("# my hand-edited manifest\n")
    outcome = export.export(fake.client(), out, source=pf.SOURCE)
    assert [p for p, _ in outcome.skipped] == [mine] and len(outcome.written) == 2
    assert mine.read_text() == "# my hand-edited manifest\n"
    forced = export.export(fake.client(), out, source=pf.SOURCE, force=True)
    assert len(forced.written) == 3 and forced.skipped == []
    assert parse(mine.read_text()).identity == "Cat Facts/hourly"


def test_block_documents_are_read_without_secrets(tmp_path):
    fake, _ = seeded()
    urls = []

    def recording(request):
        urls.append((str(request.url), json.loads(request.content) if request.content else None))
        return fake.handler(request)

    client = PrefectClient(pf.API_URL, transport=httpx.MockTransport(recording))
    export.export(client, tmp_path / "out")
    block_reads = [(u, b) for u, b in urls if "block_documents" in u]
    assert block_reads, urls
    assert all("include_secrets" not in u and not (b or {}).get("include_secrets") for u, b in block_reads)
    assert client.writes == 0


def test_cli_prints_a_line_per_file_and_a_summary(tmp_path, monkeypatch, capsys):
    fake, _ = seeded()
    pf.route_default_transport(monkeypatch, fake)
    monkeypatch.setenv("PREFECT_API_URL", pf.API_URL)
    out = tmp_path / "out"
    assert cli.main(["export", str(out), "--source", pf.SOURCE, "--flow", "Cat Facts"]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        f"wrote {out / 'cat-facts' / 'hourly-deployment.yaml'}  (Cat Facts/hourly)",
        f"wrote {out / 'cat-facts' / 'paused-deployment.yaml'}  (Cat Facts/paused)",
        f"Exported 2 deployments to {out}: 2 written, 0 skipped (already there).",
    ]
    assert cli.main(["export", str(out), "--flow", "Cat Facts"]) == 0
    again = capsys.readouterr()
    assert again.out.splitlines() == [f"Exported 2 deployments to {out}: 0 written, 2 skipped (already there)."]
    assert again.err.splitlines() == [
        f"skipped {out / 'cat-facts' / 'hourly-deployment.yaml'}: it exists (--force overwrites it)",
        f"skipped {out / 'cat-facts' / 'paused-deployment.yaml'}: it exists (--force overwrites it)",
    ]
    assert cli.main(["export", str(out), "--flow", "Nope"]) == 1
    assert capsys.readouterr().err.splitlines() == [f"error: no deployments of flow 'Nope' on the server at {pf.API_URL}"]


# ----------------------------------------------------------------------------- captured

# POST /deployments/filter, POST /flows/filter, POST /block_documents/filter (no include_secrets) on Prefect 2.20.27
CAPTURED = json.loads(r"""
{
 "deployments": [
  {
   "id": "907d33f5-3cec-4eb6-a8ac-118aa169b447",
   "created": "2026-11-25T17:52:08.431284+00:00",
   "updated": "2026-11-25T17:52:08.429851+00:00",
   "infra_overrides": {
    "env.FOO": "bar"
   },
   "name": "anonymous-paused",
   "version": null,
   "description": null,
   "flow_id": "612baae1-bdbd-431a-889d-e0ba9e756d2a",
   "schedule": {
    "rrule": "FREQ=WEEKLY;BYDAY=MO",
    "timezone": "Europe/Amsterdam"
   },
   "is_schedule_active": false,
   "paused": true,
   "schedules": [
    {
     "id": "821586e6-20e6-402f-ab08-927eebb923e8",
     "created": "2026-11-25T17:52:08.435459+00:00",
     "updated": "2026-11-25T17:52:08.435461+00:00",
     "deployment_id": "907d33f5-3cec-4eb6-a8ac-118aa169b447",
     "schedule": {
      "rrule": "FREQ=WEEKLY;BYDAY=MO",
      "timezone": "Europe/Amsterdam"
     },
     "active": false,
     "max_active_runs": null,
     "max_scheduled_runs": null,
     "catchup": false
    },
    {
     "id": "52f556e3-47ba-413f-ac0c-7fc38a903350",
     "created": "2026-11-25T17:52:08.435447+00:00",
     "updated": "2026-11-25T17:52:08.435455+00:00",
     "deployment_id": "907d33f5-3cec-4eb6-a8ac-118aa169b447",
     "schedule": {
      "interval": 600.0,
      "anchor_date": "2026-11-25T17:52:08.417727+00:00",
      "timezone": "UTC"
     },
     "active": true,
     "max_active_runs": null,
     "max_scheduled_runs": null,
     "catchup": false
    }
   ],
   "parameters": {},
   "tags": [],
   "work_queue_name": null,
   "last_polled": null,
   "parameter_openapi_schema": {
    "title": "Parameters",
    "type": "object",
    "properties": {
     "n": {
      "title": "n",
      "default": 1,
      "position": 0,
      "type": "integer"
     }
    }
   },
   "path": "/opt/flows",
   "pull_steps": null,
   "entrypoint": "etl.py:main",
   "manifest_path": null,
   "storage_document_id": null,
   "infrastructure_document_id": "723ccbbd-8967-43d4-a2cd-7f781072919f",
   "created_by": null,
   "updated_by": null,
   "work_pool_name": null,
   "status": "NOT_READY",
   "enforce_parameter_schema": true
  },
  {
   "id": "5014863e-6fa9-448b-b6a9-c32d5212ad2a",
   "created": "2026-11-25T17:52:08.510578+00:00",
   "updated": "2026-11-25T17:52:08.509152+00:00",
   "infra_overrides": {},
   "name": "from-github",
   "version": null,
   "description": null,
   "flow_id": "612baae1-bdbd-431a-889d-e0ba9e756d2a",
   "schedule": null,
   "is_schedule_active": true,
   "paused": false,
   "schedules": [],
   "parameters": {},
   "tags": [],
   "work_queue_name": "default",
   "last_polled": null,
   "parameter_openapi_schema": {
    "title": "Parameters",
    "type": "object",
    "properties": {
     "n": {
      "title": "n",
      "default": 1,
      "position": 0,
      "type": "integer"
     }
    },
    "required": null,
    "definitions": null
   },
   "path": "flows/etl",
   "pull_steps": null,
   "entrypoint": "flows/etl/etl.py:main",
   "manifest_path": null,
   "storage_document_id": "6b5be9f5-6188-4a1e-9773-1794215e33bf",
   "infrastructure_document_id": "85b333e1-01ae-4829-943f-bb0d4c1c497f",
   "created_by": null,
   "updated_by": null,
   "work_pool_name": "default-agent-pool",
   "status": "NOT_READY",
   "enforce_parameter_schema": false
  },
  {
   "id": "d03b3c92-18da-4900-9265-be2c52ae4d8d",
   "created": "2026-11-25T17:52:08.477852+00:00",
   "updated": "2026-11-25T17:52:08.476478+00:00",
   "infra_overrides": {},
   "name": "masked storage",
   "version": null,
   "description": null,
   "flow_id": "612baae1-bdbd-431a-889d-e0ba9e756d2a",
   "schedule": null,
   "is_schedule_active": true,
   "paused": false,
   "schedules": [],
   "parameters": {},
   "tags": [],
   "work_queue_name": null,
   "last_polled": null,
   "parameter_openapi_schema": {
    "title": "Parameters",
    "type": "object",
    "properties": {
     "n": {
      "title": "n",
      "default": 1,
      "position": 0,
      "type": "integer"
     }
    },
    "required": null,
    "definitions": null
   },
   "path": "x",
   "pull_steps": null,
   "entrypoint": "etl.py:main",
   "manifest_path": null,
   "storage_document_id": "42a7ec95-7f11-4a88-84fa-9f083781d563",
   "infrastructure_document_id": "85b333e1-01ae-4829-943f-bb0d4c1c497f",
   "created_by": null,
   "updated_by": null,
   "work_pool_name": null,
   "status": "NOT_READY",
   "enforce_parameter_schema": false
  },
  {
   "id": "e028dc84-e537-44d9-bec8-25893011b0cd",
   "created": "2026-11-25T17:52:08.400288+00:00",
   "updated": "2026-11-25T17:52:08.398702+00:00",
   "infra_overrides": {},
   "name": "named-blocks",
   "version": "7",
   "description": "Named blocks",
   "flow_id": "612baae1-bdbd-431a-889d-e0ba9e756d2a",
   "schedule": {
    "cron": "0 * * * *",
    "timezone": null,
    "day_or": true
   },
   "is_schedule_active": true,
   "paused": false,
   "schedules": [
    {
     "id": "e480682e-16a6-4c88-8d50-2dfc76d52089",
     "created": "2026-11-25T17:52:08.404572+00:00",
     "updated": "2026-11-25T17:52:08.404579+00:00",
     "deployment_id": "e028dc84-e537-44d9-bec8-25893011b0cd",
     "schedule": {
      "cron": "0 * * * *",
      "timezone": null,
      "day_or": true
     },
     "active": true,
     "max_active_runs": null,
     "max_scheduled_runs": null,
     "catchup": false
    }
   ],
   "parameters": {
    "n": 2
   },
   "tags": [
    "b",
    "a"
   ],
   "work_queue_name": "examples",
   "last_polled": null,
   "parameter_openapi_schema": {
    "title": "Parameters",
    "type": "object",
    "properties": {
     "n": {
      "title": "n",
      "default": 1,
      "position": 0,
      "type": "integer"
     }
    },
    "required": null,
    "definitions": null
   },
   "path": "etl",
   "pull_steps": null,
   "entrypoint": "etl.py:main",
   "manifest_path": null,
   "storage_document_id": "629f417a-5447-42b3-854e-4b0d7df4cb9c",
   "infrastructure_document_id": "77a638d7-e4bf-433e-9d53-3c84605755cd",
   "created_by": null,
   "updated_by": null,
   "work_pool_name": "default-agent-pool",
   "status": "NOT_READY",
   "enforce_parameter_schema": false
  },
  {
   "id": "d9e0fc45-d546-4633-942d-bbf0744e218e",
   "created": "2026-11-25T17:52:08.448713+00:00",
   "updated": "2026-11-25T17:52:08.445463+00:00",
   "infra_overrides": {},
   "name": "no-infrastructure",
   "version": null,
   "description": null,
   "flow_id": "612baae1-bdbd-431a-889d-e0ba9e756d2a",
   "schedule": null,
   "is_schedule_active": true,
   "paused": false,
   "schedules": [],
   "parameters": {},
   "tags": [],
   "work_queue_name": null,
   "last_polled": null,
   "parameter_openapi_schema": {
    "title": "Parameters",
    "type": "object",
    "properties": {
     "n": {
      "title": "n",
      "default": 1,
      "position": 0,
      "type": "integer"
     }
    },
    "required": null,
    "definitions": null
   },
   "path": null,
   "pull_steps": null,
   "entrypoint": "etl.py:main",
   "manifest_path": null,
   "storage_document_id": null,
   "infrastructure_document_id": null,
   "created_by": null,
   "updated_by": null,
   "work_pool_name": null,
   "status": "NOT_READY",
   "enforce_parameter_schema": false
  }
 ],
 "flows": [
  {
   "id": "612baae1-bdbd-431a-889d-e0ba9e756d2a",
   "created": "2026-11-25T17:52:08.056186+00:00",
   "updated": "2026-11-25T17:52:08.056201+00:00",
   "name": "Export Shapes 927b845e",
   "tags": []
  }
 ],
 "block_documents": [
  {
   "id": "42a7ec95-7f11-4a88-84fa-9f083781d563",
   "created": "2026-11-25T17:52:08.210864+00:00",
   "updated": "2026-11-25T17:52:08.210878+00:00",
   "name": "anonymous-4c3ec01d-3167-46af-a3de-81b16c49a892",
   "data": {
    "bucket_path": "bucket/flows",
    "aws_access_key_id": "********",
    "aws_secret_access_key": "********"
   },
   "block_schema_id": "b757fa29-f415-4740-8cd7-90644fc6078d",
   "block_schema": {
    "id": "b757fa29-f415-4740-8cd7-90644fc6078d",
    "checksum": "sha256:43f3850279e9ff1844e84099832a5f5190aa0f2e2331959b1d891e9c65e9107b",
    "fields": {
     "title": "S3",
     "type": "object",
     "block_type_slug": "s3",
     "secret_fields": [
      "aws_access_key_id",
      "aws_secret_access_key"
     ],
     "block_schema_references": {}
    },
    "block_type_id": "d4225fb9-2373-4eaa-b796-6146a85e42b2",
    "capabilities": [
     "get-directory",
     "write-path",
     "put-directory",
     "read-path"
    ],
    "version": "2.20.27"
   },
   "block_type_id": "d4225fb9-2373-4eaa-b796-6146a85e42b2",
   "block_type_name": "S3",
   "block_type": {
    "id": "d4225fb9-2373-4eaa-b796-6146a85e42b2",
    "name": "S3",
    "slug": "s3"
   },
   "block_document_references": {},
   "is_anonymous": true
  },
  {
   "id": "723ccbbd-8967-43d4-a2cd-7f781072919f",
   "created": "2026-11-25T17:52:08.167343+00:00",
   "updated": "2026-11-25T17:52:08.167356+00:00",
   "name": "anonymous-fcb1e23b-41e5-4cee-b7a0-73e8b5d6900b",
   "data": {
    "type": "process",
    "stream_output": true,
    "env": {
     "LEVEL": "DEBUG"
    }
   },
   "block_schema_id": "945856cb-5cf4-4be5-82a3-2d53ed3fd319",
   "block_schema": {
    "id": "945856cb-5cf4-4be5-82a3-2d53ed3fd319",
    "checksum": "sha256:47c4ac364708f4a6f27fb10b18086ad92c0a53fbbdd9ba07c030467067979f84",
    "fields": {
     "title": "Process",
     "type": "object",
     "block_type_slug": "process",
     "secret_fields": [],
     "block_schema_references": {}
    },
    "block_type_id": "5deb9d49-77e3-4098-ad28-8ab256599a4a",
    "capabilities": [
     "run-infrastructure"
    ],
    "version": "2.20.27"
   },
   "block_type_id": "5deb9d49-77e3-4098-ad28-8ab256599a4a",
   "block_type_name": "Process",
   "block_type": {
    "id": "5deb9d49-77e3-4098-ad28-8ab256599a4a",
    "name": "Process",
    "slug": "process"
   },
   "block_document_references": {},
   "is_anonymous": true
  },
  {
   "id": "629f417a-5447-42b3-854e-4b0d7df4cb9c",
   "created": "2026-11-25T17:52:08.125805+00:00",
   "updated": "2026-11-25T17:52:08.125818+00:00",
   "name": "shapes-927b845e",
   "data": {
    "basepath": "/srv/flows"
   },
   "block_schema_id": "d3174b3d-540c-4fab-8c34-17855c3177ef",
   "block_schema": {
    "id": "d3174b3d-540c-4fab-8c34-17855c3177ef",
    "checksum": "sha256:6db1ab242e7b2b88a52dc137a7da3a373af63e0a103b9a91e060ed54a26f395a",
    "fields": {
     "title": "LocalFileSystem",
     "type": "object",
     "block_type_slug": "local-file-system",
     "secret_fields": [],
     "block_schema_references": {}
    },
    "block_type_id": "879c33f8-87d5-4c44-9e0b-84699a8df7fb",
    "capabilities": [
     "get-directory",
     "write-path",
     "put-directory",
     "read-path"
    ],
    "version": "2.20.27"
   },
   "block_type_id": "879c33f8-87d5-4c44-9e0b-84699a8df7fb",
   "block_type_name": "Local File System",
   "block_type": {
    "id": "879c33f8-87d5-4c44-9e0b-84699a8df7fb",
    "name": "Local File System",
    "slug": "local-file-system"
   },
   "block_document_references": {},
   "is_anonymous": false
  },
  {
   "id": "6b5be9f5-6188-4a1e-9773-1794215e33bf",
   "created": "2026-11-25T17:52:08.361721+00:00",
   "updated": "2026-11-25T17:52:08.361735+00:00",
   "name": "shapes-927b845e",
   "data": {
    "repository": "https://github.com/acme/flows",
    "reference": "main",
    "access_token": "********",
    "include_git_objects": true
   },
   "block_schema_id": "56bb3e12-d952-424b-9e38-7e7c7ac1f626",
   "block_schema": {
    "id": "56bb3e12-d952-424b-9e38-7e7c7ac1f626",
    "checksum": "sha256:1a646071d2e07191f2d3934dd7a15a38c27dd60e5e6f74b21c550437b471b8ef",
    "fields": {
     "title": "GitHub",
     "type": "object",
     "block_type_slug": "github",
     "secret_fields": [
      "access_token"
     ],
     "block_schema_references": {}
    },
    "block_type_id": "3426790e-78fd-4c30-90ea-67ee234f64e8",
    "capabilities": [
     "get-directory"
    ],
    "version": "2.20.27"
   },
   "block_type_id": "3426790e-78fd-4c30-90ea-67ee234f64e8",
   "block_type_name": "GitHub",
   "block_type": {
    "id": "3426790e-78fd-4c30-90ea-67ee234f64e8",
    "name": "GitHub",
    "slug": "github"
   },
   "block_document_references": {},
   "is_anonymous": false
  },
  {
   "id": "77a638d7-e4bf-433e-9d53-3c84605755cd",
   "created": "2026-11-25T17:52:08.316582+00:00",
   "updated": "2026-11-25T17:52:08.316595+00:00",
   "name": "shapes-927b845e",
   "data": {
    "type": "docker-container",
    "image": "python:3.11",
    "stream_output": true,
    "image_registry": {
     "username": "bot",
     "password": "********",
     "registry_url": "registry.example.com",
     "reauth": true
    }
   },
   "block_schema_id": "34e9761d-c950-49b7-a1b4-931be8a6595b",
   "block_schema": {
    "id": "34e9761d-c950-49b7-a1b4-931be8a6595b",
    "checksum": "sha256:8492ae879cf429c54f27816717769d4348e05eafdfd579158a2d0a6406ec08eb",
    "fields": {
     "title": "DockerContainer",
     "type": "object",
     "block_type_slug": "docker-container",
     "secret_fields": [
      "image_registry.password"
     ],
     "block_schema_references": {
      "image_registry": {
       "block_schema_checksum": "sha256:7f51876d1b567d9c712e2f72ab76b078b2f288503e4ba3a68aca478d368a982d",
       "block_type_slug": "docker-registry"
      }
     }
    },
    "block_type_id": "6b781bc0-ad14-4333-a4c6-d4770abca54a",
    "capabilities": [
     "run-infrastructure"
    ],
    "version": "2.20.27"
   },
   "block_type_id": "6b781bc0-ad14-4333-a4c6-d4770abca54a",
   "block_type_name": "Docker Container",
   "block_type": {
    "id": "6b781bc0-ad14-4333-a4c6-d4770abca54a",
    "name": "Docker Container",
    "slug": "docker-container"
   },
   "block_document_references": {
    "image_registry": {
     "block_document": {
      "id": "8e982fc4-2ea8-4138-8c26-9529471bfb09",
      "name": "shapes-927b845e",
      "block_type": {
       "id": "7e60cd6c-7d13-4f73-aa12-d191f42d5d0a",
       "name": "Docker Registry",
       "slug": "docker-registry"
      },
      "is_anonymous": false,
      "block_document_references": {}
     }
    }
   },
   "is_anonymous": false
  },
  {
   "id": "85b333e1-01ae-4829-943f-bb0d4c1c497f",
   "created": "2026-11-25T17:52:08.083821+00:00",
   "updated": "2026-11-25T17:52:08.083831+00:00",
   "name": "shapes-927b845e",
   "data": {
    "type": "process",
    "env": {},
    "labels": {},
    "name": null,
    "command": null,
    "stream_output": true,
    "working_dir": null
   },
   "block_schema_id": "945856cb-5cf4-4be5-82a3-2d53ed3fd319",
   "block_schema": {
    "id": "945856cb-5cf4-4be5-82a3-2d53ed3fd319",
    "checksum": "sha256:47c4ac364708f4a6f27fb10b18086ad92c0a53fbbdd9ba07c030467067979f84",
    "fields": {
     "title": "Process",
     "type": "object",
     "block_type_slug": "process",
     "secret_fields": [],
     "block_schema_references": {}
    },
    "block_type_id": "5deb9d49-77e3-4098-ad28-8ab256599a4a",
    "capabilities": [
     "run-infrastructure"
    ],
    "version": "2.20.27"
   },
   "block_type_id": "5deb9d49-77e3-4098-ad28-8ab256599a4a",
   "block_type_name": "Process",
   "block_type": {
    "id": "5deb9d49-77e3-4098-ad28-8ab256599a4a",
    "name": "Process",
    "slug": "process"
   },
   "block_document_references": {},
   "is_anonymous": false
  }
 ]
}
""")
