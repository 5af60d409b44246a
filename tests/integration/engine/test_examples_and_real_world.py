"""Round trips of real manifests against a real server (scenarios 9 and 10).

examples/ and every real-world manifest that resolves: plan → apply → plan shows no changes (and a
second apply writes nothing).  Flow names get a unique suffix so tests sharing one server never
meet; the blocks and work pools the manifests name are created through the REST API first.
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from integration.helpers import EXAMPLES, REAL_WORLD, Server, ensure_fixture_objects, reconcile, set_flow_name


@pytest.fixture
def server(prefect_api_url):
    with Server(prefect_api_url) as srv:
        yield srv


def _round_trip(api_url: str, root: Path, source: str, cwd: Path, expected: int, extra: tuple = ()) -> None:
    plan = reconcile(api_url, "plan", root, "--source", source, "--format", "json", "--detailed-exitcode", *extra,
                     cwd=cwd)
    assert plan.returncode == 2, plan  # --detailed-exitcode: there are changes
    data = plan.json()
    assert data["summary"]["create"] == expected, json.dumps(data["summary"])
    assert data["conflicts"] == []

    applied = reconcile(api_url, "apply", root, "--source", source, *extra, cwd=cwd)
    assert applied.returncode == 0, applied
    assert "✗" not in applied.stdout, applied
    assert f"{expected} created" in applied.stdout, applied

    again = reconcile(api_url, "plan", root, "--source", source, "--detailed-exitcode", *extra, cwd=cwd)
    assert again.returncode == 0, again
    assert "No changes." in again.stdout, f"not converged after one apply:\n{again}"

    idle = reconcile(api_url, "apply", root, "--source", source, "-v", *extra, cwd=cwd)
    assert idle.returncode == 0 and idle.writes == [], idle


def test_examples_plan_apply_plan_again_has_no_changes(prefect_api_url, server, tmp_path, unique):
    # the examples' own blocks, under this test's name and storage: never the demo's (~/.reconcile/example-storage)
    block = f"reconcile-examples-{unique}"
    storage = server.ensure_block_document("local-file-system", block, {"basepath": str(tmp_path / "storage")})
    infra = server.ensure_block_document("process", block, {})
    root = tmp_path / "examples"
    shutil.copytree(EXAMPLES, root)
    flows = {}
    for path in sorted(root.rglob("*-deployment.yaml")):
        text = path.read_text(encoding="utf-8")
        original = yaml.safe_load(text)["flow_name"]
        flows[original] = f"{original} {unique}"
        text = set_flow_name(text, flows[original]).replace(
            "_block_document_name: reconcile-examples\n", f"_block_document_name: {block}\n")
        path.write_text(text, encoding="utf-8")
    assert set(flows) == {"Cat Facts", "Weather Summary", "Regional Sales Report"}

    _round_trip(prefect_api_url, root, f"it-examples-{unique}", tmp_path, expected=3)

    catfact = server.deployment(flows["Cat Facts"], "catfact-hourly")
    assert catfact["storage_document_id"] == storage["id"]
    assert catfact["infrastructure_document_id"] == infra["id"]
    assert catfact["path"] == "catfact" and catfact["work_queue_name"] == "examples"
    assert [s["schedule"]["cron"] for s in catfact["schedules"]] == ["0 * * * *"]
    weather = server.deployment(flows["Weather Summary"], "weather-summary")
    assert sorted(next(k for k in ("interval", "rrule") if k in s["schedule"]) for s in weather["schedules"]) == [
        "interval", "rrule"]
    reports = server.deployment(flows["Regional Sales Report"], "apac-online-weekly")
    assert reports["parameters"] == {"region": "apac", "days": 14, "kwargs": {"channel": "online"}}
    assert (reports.get("infra_overrides") or reports.get("job_variables")) == {
        "env.REPORTS_BUCKET": "/var/lib/reports/sales"}


def _resolvable() -> list[Path]:
    from reconciler.engine import desired
    from reconciler.manifests import manifest
    from reconciler.errors import ReconcileError
    out = []
    for path in sorted(REAL_WORLD.glob("*.yaml")):
        try:
            desired.resolve([manifest.parse(path.read_bytes(), path, path.name)])
        except ReconcileError:
            continue
        out.append(path)
    return out


RESOLVABLE = _resolvable()


def test_most_real_world_fixtures_resolve():
    """Guard for the parametrisation below: it must not silently shrink to nothing."""
    assert len(RESOLVABLE) >= 30, [p.name for p in RESOLVABLE]


@pytest.mark.parametrize("fixture", RESOLVABLE, ids=lambda p: p.stem)
def test_real_world_manifest_round_trips(prefect_api_url, server, tmp_path, unique, fixture):
    text = fixture.read_text(encoding="utf-8")
    # local storage of the machine that wrote the file (/Users/…, /home/…): uploads go to tmp_path instead
    text = re.sub(r"(?m)^(\s+basepath: )(/.*?)(\r?)$", lambda m: f"{m.group(1)}{tmp_path / 'storage'}{m.group(3)}", text)
    data = ensure_fixture_objects(server, text)

    root = tmp_path / "m"
    root.mkdir()
    flow = f"{data['flow_name']}-{unique}"
    (root / "real-deployment.yaml").write_text(set_flow_name(text, flow), encoding="utf-8")

    storage = (data.get("storage") or {}).get("_block_type_slug") or (data.get("storage") or {}).get("block_type_slug")
    # code in cloud storage (AWS, GCS, Azure) cannot be reached from here: reconcile the deployment only
    extra = () if storage in (None, "local-file-system", "github") else ("--skip-upload",)
    _round_trip(prefect_api_url, root, f"it-rw-{unique}", tmp_path, expected=1, extra=extra)
    dep = server.deployment(flow, data["name"])
    assert dep is not None
    assert dep["entrypoint"] == data.get("entrypoint")
    assert (dep["parameters"] or {}) == (data.get("parameters") or {})
