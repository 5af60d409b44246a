"""examples/ and the real-world corpus against a Prefect 3.9.1 server: the same outcome as against 2.20 (plan → apply →
no changes → a second apply that writes nothing), or one line naming the file, the line and what Prefect 3
cannot hold, with nothing written.

Only the storage blocks a 3.x worker reads (local-file-system, remote-file-system) are made on the server:
3.x has no infrastructure blocks (they become the work pool's job variables) and a pool a manifest needs is
planned and created by apply itself.
"""
from __future__ import annotations

import re
import shutil

import pytest
import yaml

from integration.engine.test_examples_and_real_world import RESOLVABLE, _round_trip
from integration.helpers import EXAMPLES, Server, iter_fixture_blocks, reconcile, set_flow_name
from reconciler.prefect.v3pull import STORAGE_AS_BLOCK


@pytest.fixture
def server(prefect3_api_url):
    with Server(prefect3_api_url) as srv:
        yield srv


@pytest.mark.parametrize("fixture", RESOLVABLE, ids=lambda p: p.stem)
def test_real_world_manifest_on_prefect3_round_trips_or_says_what_3x_cannot_hold(prefect3_api_url, server, tmp_path,
                                                                                  unique, fixture):
    text = fixture.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^(\s+basepath: )(/.*?)(\r?)$", lambda m: f"{m.group(1)}{tmp_path / 'storage'}{m.group(3)}", text)
    for slug, name, content in iter_fixture_blocks(text):
        if slug in STORAGE_AS_BLOCK and name is not None:
            server.ensure_block_document(slug, name, content)
    data = yaml.safe_load(text)
    storage = data.get("storage") or {}
    storage_slug = storage.get("_block_type_slug") or storage.get("block_type_slug")
    root = tmp_path / "m"
    root.mkdir()
    flow = f"{data['flow_name']}-{unique}"
    (root / "real-deployment.yaml").write_text(set_flow_name(text, flow), encoding="utf-8")
    source = f"it-rw3-{unique}"
    # as against 2.20 (test_examples_and_real_world): code in cloud storage is not reachable from here
    extra = () if storage_slug in (None, "local-file-system", "github") else ("--skip-upload",)

    plan = reconcile(prefect3_api_url, "plan", root, "--source", source, *extra, cwd=tmp_path)
    if plan.returncode == 1:
        lines = plan.stderr.strip().splitlines()
        assert len(lines) == 2 and lines[1].startswith("1 error(s)"), plan
        assert re.match(r"error: m/real-deployment\.yaml:\d+:\d+: (storage|infrastructure): .*\(Prefect 3 server\)$",
                        lines[0]), plan
        assert server.deployments(flow) == {}
        return
    _round_trip(prefect3_api_url, root, source, tmp_path, expected=1, extra=extra)
    dep = server.deployment(flow, data["name"])
    assert dep["entrypoint"] == data.get("entrypoint")
    assert (dep["parameters"] or {}) == (data.get("parameters") or {})


def test_examples_on_prefect3_plan_apply_plan_again_has_no_changes(prefect3_api_url, server, tmp_path, unique):
    block = f"reconcile-examples-{unique}"
    storage = server.ensure_block_document("local-file-system", block, {"basepath": str(tmp_path / "storage")})
    root = tmp_path / "examples"
    shutil.copytree(EXAMPLES, root)
    pool = f"it-examples-{unique}"
    (root / "reconcile.yaml").write_text(f"prefect3:\n  work_pools:\n    process: {pool}\n", encoding="utf-8")
    flows = {}
    for path in sorted(root.rglob("*-deployment.yaml")):
        text = path.read_text(encoding="utf-8")
        original = yaml.safe_load(text)["flow_name"]
        flows[original] = f"{original} {unique}"
        path.write_text(set_flow_name(text, flows[original]).replace(
            "_block_document_name: reconcile-examples\n", f"_block_document_name: {block}\n"), encoding="utf-8")

    _round_trip(prefect3_api_url, root, f"it-examples3-{unique}", tmp_path, expected=3)

    catfact = server.deployment(flows["Cat Facts"], "catfact-hourly")
    assert catfact["storage_document_id"] == storage["id"] and catfact["infrastructure_document_id"] is None
    assert (catfact["work_pool_name"], catfact["work_queue_name"], catfact["path"]) == (pool, "examples", "catfact")
    reports = server.deployment(flows["Regional Sales Report"], "apac-online-weekly")
    assert reports["job_variables"]["env"] == {"REPORTS_BUCKET": "/var/lib/reports/sales"}   # nested, not dotted
    weather = server.deployment(flows["Weather Summary"], "weather-summary")
    assert len(weather["schedules"]) == 2 and all(s["slug"] for s in weather["schedules"])
