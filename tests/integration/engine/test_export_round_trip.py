"""`reconcile export` against a real Prefect 2.20 server: apply → export → plan shows nothing to do.

The examples and the real-world fixtures that resolve are applied by reconcile (their blocks made
through the REST API first), exported into an empty directory, and planned again with the same
source: `No changes.` (with another source: adopt only, no field changes).  Deployments made by hand
show what cannot round-trip (no infrastructure, an anonymous block with masked secrets) and the
warnings that say so.  Every flow and source name carries a unique suffix (the server is shared).
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import textwrap
import uuid
from dataclasses import dataclass
from pathlib import Path

import prefect_server
import pytest
import yaml

from integration.helpers import EXAMPLES, REAL_WORLD, Run, Server, cli_env, ensure_fixture_objects, reconcile, set_flow_name
from reconciler.engine import desired as desired_mod
from reconciler.manifests import manifest as manifest_mod
from reconciler.errors import ReconcileError
from reconciler.bundles.storage import READ_ONLY

SERVER_VENV = Path(__file__).resolve().parents[3] / ".venvs" / "prefect-2.20"   # as tests/conftest.py builds it


def prefect_python() -> Path:
    """A Python with Prefect 2.20 installed: the server venv (built on first use), else the workspace's."""
    workspace = Path("/work/prefect2-venv/bin/python")
    if not (SERVER_VENV / "bin" / "prefect").exists() and workspace.exists():
        return workspace
    return prefect_server.ensure_server_venv(SERVER_VENV) / "bin" / "python"


@pytest.fixture
def server(prefect_api_url):
    with Server(prefect_api_url) as srv:
        yield srv


def exported_files(root: Path) -> dict[str, Path]:
    """relative path → file, for every manifest under root."""
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*-deployment.yaml"))}


def plan_json(api_url: str, root: Path, source: str, cwd: Path) -> dict:
    run = reconcile(api_url, "plan", root, "--source", source, "--format", "json", cwd=cwd)
    assert run.returncode == (1 if run.json()["conflicts"] else 0), run    # a conflict fails the plan
    return run.json()


def deployment_actions(plan: dict) -> list[dict]:
    return [a for a in plan["actions"] if a["action"] != "upload"]

# ----------------------------------------------------------------------------- the examples


@dataclass
class Examples:
    api_url: str
    unique: str
    flows: dict[str, str]        # original flow name → unique flow name
    storage_basepath: Path
    work: Path
    plain_source: str            # weather and reports (no code storage), applied from one directory
    code_source: str             # catfact (named local-file-system storage), applied from another
    exported: Path               # `export --source plain_source`
    exported_code: Path          # `export --source code_source`
    runs: dict[str, Run]         # the two export runs, by source


@pytest.fixture(scope="module")
def examples(prefect_api_url, tmp_path_factory) -> Examples:
    """examples/ applied by reconcile (own named blocks, own storage basepath) as two sources, each exported once."""
    unique = uuid.uuid4().hex[:8]
    work = tmp_path_factory.mktemp("export-examples")
    basepath = work / "storage"
    block = f"reconcile-examples-{unique}"
    with Server(prefect_api_url) as srv:
        srv.ensure_block_document("local-file-system", block, {"basepath": str(basepath)})
        srv.ensure_block_document("process", block, {})
    flows = {}
    plain, code = work / "plain", work / "code"
    for sub in ("catfact", "weather", "reports"):
        target = (code if sub == "catfact" else plain) / sub
        shutil.copytree(EXAMPLES / sub, target)
        for path in sorted(target.glob("*-deployment.yaml")):
            text = path.read_text(encoding="utf-8")
            original = yaml.safe_load(text)["flow_name"]
            flows[original] = f"{original} {unique}"
            text = set_flow_name(text, flows[original]).replace(
                "_block_document_name: reconcile-examples\n", f"_block_document_name: {block}\n")
            path.write_text(text, encoding="utf-8")
    assert set(flows) == {"Cat Facts", "Weather Summary", "Regional Sales Report"}
    sources = {plain: f"it-export-{unique}", code: f"it-export-code-{unique}"}
    runs = {}
    for root, source in sources.items():
        applied = reconcile(prefect_api_url, "apply", root, "--source", source, "--parallelism", "1", cwd=work)
        assert applied.returncode == 0 and "✗" not in applied.stdout, applied
        runs[source] = reconcile(prefect_api_url, "export", work / f"exported-{root.name}", "--source", source, cwd=work)
        assert runs[source].returncode == 0, runs[source]
    return Examples(prefect_api_url, unique, flows, basepath, work, sources[plain], sources[code],
                    work / "exported-plain", work / "exported-code", runs)


def code_warning(examples: Examples) -> str:
    return (f"warning: {examples.flows['Cat Facts']}/catfact-hourly: its code is in storage "
            f"local-file-system/reconcile-examples-{examples.unique} (path 'catfact') and is not exported; copy the "
            "code into the repository where its entrypoint names it before `reconcile apply`; until then apply refuses to upload")


def test_export_writes_one_file_per_deployment_and_says_so(examples):
    slug = examples.unique
    out = examples.work / "all-three"
    run = reconcile(examples.api_url, "export", out, *[a for f in examples.flows.values() for a in ("--flow", f)],
                    cwd=examples.work)
    assert run.returncode == 0, run
    expected = [
        (f"cat-facts-{slug}/catfact-hourly-deployment.yaml", examples.flows["Cat Facts"], "catfact-hourly"),
        (f"regional-sales-report-{slug}/apac-online-weekly-deployment.yaml",
         examples.flows["Regional Sales Report"], "apac-online-weekly"),
        (f"weather-summary-{slug}/weather-summary-deployment.yaml", examples.flows["Weather Summary"], "weather-summary"),
    ]
    assert sorted(exported_files(out)) == [rel for rel, _, _ in expected]
    lines = run.stdout.splitlines()
    assert sorted(lines[:3]) == sorted(f"wrote {out / rel}  ({flow}/{name})" for rel, flow, name in expected)
    assert lines[3:] == [f"Exported 3 deployments to {out}: 3 written, 0 skipped (already there)."]
    # catfact's code lives in (writable) named storage: the export says that it is not exported
    assert run.messages == [code_warning(examples)]
    assert examples.runs[examples.code_source].messages == [code_warning(examples)]
    assert examples.runs[examples.plain_source].messages == []


def test_plan_of_the_export_with_the_same_source_says_no_changes(examples):
    assert len(exported_files(examples.exported)) == 2
    plan = reconcile(examples.api_url, "plan", examples.exported, "--source", examples.plain_source,
                     "--detailed-exitcode", cwd=examples.work)
    assert plan.returncode == 0, plan
    assert "No changes." in plan.stdout, plan


def test_plan_of_an_export_with_code_storage_refuses_to_upload_a_bundle_without_its_flow_code(examples):
    # the code is not exported (the warning says so): uploading the manifest's directory would replace catfact's
    # code at the storage location by a bundle without its entrypoint, so the plan stops at the entrypoint line
    run = reconcile(examples.api_url, "plan", examples.exported_code, "--source", examples.code_source,
                    cwd=examples.work)
    assert run.returncode == 1, run
    [error] = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert ": entrypoint: 'catfact.py:catfacts_flow': there is no file catfact.py in " in error, run
    # with the code copied next to the manifest, it plans: the deployment unchanged, the code uploaded
    [manifest] = list(examples.exported_code.rglob("*.yaml"))
    shutil.copy(EXAMPLES / "catfact" / "catfact.py", manifest.parent / "catfact.py")
    plan = plan_json(examples.api_url, examples.exported_code, examples.code_source, examples.work)
    assert [(a["action"], a["changes"]) for a in deployment_actions(plan)] == [("noop", [])]
    assert plan["conflicts"] == [] and plan["inventory"]["before"] == plan["inventory"]["after"]
    [upload] = [a for a in plan["actions"] if a["action"] == "upload"]
    assert upload["storage"] == f"local-file-system/reconcile-examples-{examples.unique}"


def test_plan_of_the_export_with_another_source_conflicts_with_the_owner(examples):
    """Managed deployments stay their source's: another source gets conflicts, not adoption."""
    plan = plan_json(examples.api_url, examples.exported, f"it-export-other-{examples.unique}", examples.work)
    assert deployment_actions(plan) == []
    assert sorted((c["deployment"], c["owner"]) for c in plan["conflicts"]) == sorted(
        (f"{examples.flows[f]}/{n}", examples.plain_source) for f, n in [
            ("Weather Summary", "weather-summary"), ("Regional Sales Report", "apac-online-weekly")])


def test_exported_examples_load_in_reconciles_parser_and_in_prefect_2_20(examples, tmp_path):
    files = {**exported_files(examples.exported), **exported_files(examples.exported_code)}
    for rel, path in files.items():
        parsed = manifest_mod.parse(path.read_bytes(), path, rel)
        desired_mod.resolve([parsed])
    script = textwrap.dedent("""
        import json, sys
        from prefect.deployments import Deployment

        def when(s):
            for key in ("cron", "rrule"):
                if hasattr(s.schedule, key):
                    return getattr(s.schedule, key)
            return str(s.schedule.interval.total_seconds())

        out = []
        for path in sys.argv[1:]:
            d = Deployment.load_from_yaml(path)
            out.append({"name": d.name, "flow_name": d.flow_name, "work_queue_name": d.work_queue_name,
                        "parameters": d.parameters, "tags": d.tags, "path": d.path, "entrypoint": d.entrypoint,
                        "infrastructure": [type(d.infrastructure).__name__, d.infrastructure._block_document_name],
                        "storage": getattr(d.storage, "basepath", None), "overrides": d.job_variables,
                        "schedules": sorted(when(s) for s in d.schedules)})
        print(json.dumps(out))
    """)
    env = cli_env(examples.api_url, PREFECT_HOME=str(tmp_path / "prefect-home"))
    proc = subprocess.run([str(prefect_python()), "-c", script, *[str(p) for p in files.values()]],
                          env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = {d["name"]: d for d in json.loads(proc.stdout.strip().splitlines()[-1])}
    block = f"reconcile-examples-{examples.unique}"
    cat = loaded["catfact-hourly"]
    assert cat["flow_name"] == examples.flows["Cat Facts"] and cat["work_queue_name"] == "examples"
    assert cat["infrastructure"] == ["Process", block]           # resolved by name on the server
    assert cat["storage"] == str(examples.storage_basepath)        # the named storage block, read back
    assert cat["path"] == "catfact" and cat["entrypoint"] == "catfact.py:catfacts_flow"
    assert cat["parameters"] == {"url": "https://catfact.ninja/facts", "n": 5} and cat["schedules"] == ["0 * * * *"]
    weather = loaded["weather-summary"]
    assert weather["infrastructure"] == ["Process", None] and weather["storage"] is None
    assert weather["schedules"] == sorted(["3600.0", "FREQ=WEEKLY;BYDAY=MO,WE,FR;BYHOUR=7"])
    assert weather["tags"] == ["examples", "weather"]
    reports = loaded["apac-online-weekly"]
    assert reports["overrides"] == {"env.REPORTS_BUCKET": "/var/lib/reports/sales"}
    assert reports["parameters"] == {"region": "apac", "days": 14, "kwargs": {"channel": "online"}}


def test_existing_files_are_not_overwritten_unless_forced(examples):
    before = {rel: p.read_text() for rel, p in exported_files(examples.exported).items()}
    again = reconcile(examples.api_url, "export", examples.exported, "--source", examples.plain_source, cwd=examples.work)
    assert again.returncode == 0, again
    assert again.stdout.splitlines() == [f"Exported 2 deployments to {examples.exported}: 0 written, 2 skipped (already there)."]
    assert sorted(m for m in again.messages if m.startswith("skipped")) == sorted(
        f"skipped {examples.exported / rel}: it exists (--force overwrites it)" for rel in before)
    assert {rel: p.read_text() for rel, p in exported_files(examples.exported).items()} == before

    forced_dir = examples.work / "forced"
    shutil.copytree(examples.exported, forced_dir)
    forced = reconcile(examples.api_url, "export", forced_dir, "--source", examples.plain_source, "--force", cwd=examples.work)
    assert forced.returncode == 0 and len([line for line in forced.stdout.splitlines() if line.startswith("wrote ")]) == 2
    after = {rel: p.read_text() for rel, p in exported_files(forced_dir).items()}
    assert sorted(after) == sorted(before)
    # rewritten: only the timestamp differs
    stamp = re.compile(r"(?m)^timestamp: .*$")
    assert all(stamp.sub("", after[rel]) == stamp.sub("", before[rel]) for rel in before)
    assert any(after[rel] != before[rel] for rel in before)

# ----------------------------------------------------------------------------- real-world fixtures


def _round_trippable() -> list[Path]:
    """Real-world manifests that resolve and whose code is not uploaded (no storage, or a git repository)."""
    out = []
    for path in sorted(REAL_WORLD.glob("*.yaml")):
        try:
            parsed = manifest_mod.parse(path.read_bytes(), path, path.name)
            [want] = desired_mod.resolve([parsed])
        except ReconcileError:
            continue
        if want.storage is None or want.storage.slug in READ_ONLY:
            out.append(path)
    return out


ROUND_TRIPPABLE = _round_trippable()


def test_real_world_fixtures_export_and_plan_with_no_changes(prefect_api_url, server, tmp_path, unique):
    assert len(ROUND_TRIPPABLE) >= 20, [p.name for p in ROUND_TRIPPABLE]   # the selection must not shrink silently
    root = tmp_path / "m"
    identities = []
    for index, fixture in enumerate(ROUND_TRIPPABLE):
        text = fixture.read_text(encoding="utf-8")
        data = ensure_fixture_objects(server, text)
        flow = f"{data['flow_name']}-{unique}-{index}"
        identities.append(f"{flow}/{data['name']}")
        (root / fixture.stem).mkdir(parents=True)
        (root / fixture.stem / "real-deployment.yaml").write_text(set_flow_name(text, flow), encoding="utf-8")
    source = f"it-export-rw-{unique}"
    # one writer: with the default 4, a busy shared SQLite server answers some creates 503 past the retries
    applied = reconcile(prefect_api_url, "apply", root, "--source", source, "--parallelism", "1", cwd=tmp_path)
    assert applied.returncode == 0 and f"{len(identities)} created" in applied.stdout, applied

    out = tmp_path / "exported"
    run = reconcile(prefect_api_url, "export", out, "--source", source, cwd=tmp_path)
    assert run.returncode == 0, run
    assert run.messages == [], run   # nothing here needs a warning
    written = [yaml.safe_load(p.read_text()) for p in exported_files(out).values()]
    assert sorted(f"{d['flow_name']}/{d['name']}" for d in written) == sorted(identities)

    plan = reconcile(prefect_api_url, "plan", out, "--source", source, "--detailed-exitcode", cwd=tmp_path)
    assert plan.returncode == 0, plan
    assert "No changes." in plan.stdout, plan

# ----------------------------------------------------------------------------- made by hand


def test_hand_made_deployments_export_with_warnings_where_they_cannot_round_trip(prefect_api_url, server, tmp_path, unique):
    flow = f"Hand Made {unique}"
    anonymous = server.call("POST", "block_documents/", {
        "data": {"type": "process", "stream_output": True, "env": {"LEVEL": "DEBUG"}}, "is_anonymous": True,
        "block_type_id": server.block_type("process")["id"],
        "block_schema_id": server.latest_schema(server.block_type("process")["id"])["id"]})
    s3_type = server.ensure_block_type("s3")
    s3 = server.call("POST", "block_documents/", {
        "data": {"bucket_path": "bucket/flows", "aws_access_key_id": "AKIAEXAMPLE",
                 "aws_secret_access_key": "not-a-real-secret"},
        "is_anonymous": True, "block_type_id": s3_type["id"], "block_schema_id": server.latest_schema(s3_type["id"])["id"]})
    schema = {"title": "Parameters", "type": "object",
              "properties": {"n": {"title": "n", "default": 1, "position": 0, "type": "integer"}}}
    server.create_deployment(flow, "paused", infrastructure_document_id=anonymous["id"], path="/opt/flows",
                             entrypoint="etl.py:main", infra_overrides={"env.FOO": "bar"}, paused=True,
                             enforce_parameter_schema=True, parameter_openapi_schema=schema, parameters={"n": 3},
                             tags=["b", "a"], schedules=[
                                 {"schedule": {"interval": 600}, "active": True},
                                 {"schedule": {"rrule": "FREQ=WEEKLY;BYDAY=MO", "timezone": "Europe/Amsterdam"},
                                  "active": False}])
    server.create_deployment(flow, "bare", entrypoint="etl.py:main")
    server.create_deployment(flow, "secret storage", infrastructure_document_id=anonymous["id"],
                             storage_document_id=s3["id"], path="x", entrypoint="etl.py:main")

    out = tmp_path / "out"
    run = reconcile(prefect_api_url, "export", out, "--flow", flow, cwd=tmp_path)
    assert run.returncode == 0, run
    files = exported_files(out)
    directory = f"hand-made-{unique}"
    assert sorted(files) == [f"{directory}/bare-deployment.yaml", f"{directory}/paused-deployment.yaml",
                             f"{directory}/secret-storage-deployment.yaml"]
    text = "\n".join(p.read_text() for p in files.values())
    assert "not-a-real-secret" not in text and "AKIAEXAMPLE" not in text
    warned = {m.split(": ", 2)[1] for m in run.messages if m.startswith("warning: ")}
    assert warned == {f"{flow}/bare", f"{flow}/secret storage"}, run
    assert any("anonymous s3 storage block has secrets" in m and f"{flow}/secret storage" in m for m in run.messages), run
    assert any("has no infrastructure block" in m and f"{flow}/bare" in m for m in run.messages), run

    # the masked anonymous block is exported as Prefect writes it, and reconcile refuses to plan it
    refused = reconcile(prefect_api_url, "plan", out, "--source", f"it-export-hand-{unique}", cwd=tmp_path)
    assert refused.returncode == 1 and "storage.aws_access_key_id" in refused.stderr, refused

    files[f"{directory}/secret-storage-deployment.yaml"].unlink()
    plan = plan_json(prefect_api_url, out, f"it-export-hand-{unique}", tmp_path)
    by_name = {a["deployment"].split("/", 1)[1]: a for a in deployment_actions(plan)}
    assert by_name["paused"]["action"] == "adopt" and by_name["paused"]["changes"] == []
    assert by_name["bare"]["action"] == "adopt"
    assert [c["field"] for c in by_name["bare"]["changes"]] == ["infrastructure"]   # what the warning said
    assert plan["actions"] == deployment_actions(plan)   # no storage, nothing to upload


def test_unknown_source_or_flow_is_one_error_line(prefect_api_url, tmp_path, unique):
    for args, expected in [
        (("--source", f"never-applied-{unique}"), f"error: source 'never-applied-{unique}' has no inventory on the server at"),
        (("--flow", f"no-such-flow-{unique}"), f"error: no deployments of flow 'no-such-flow-{unique}' on the server at"),
    ]:
        run = reconcile(prefect_api_url, "export", tmp_path / "out", *args, cwd=tmp_path)
        assert run.returncode == 1, run
        assert len(run.messages) == 1 and run.messages[0].startswith(expected), run
        assert not (tmp_path / "out").exists()
