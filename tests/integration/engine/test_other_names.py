"""Manifests with other names (issue 12, item 2), against the real server.

`prefect deployment build -o` takes any name: the real-world manifests that are not called
`*-deployment.yaml` (production.yaml, deployment-parent.yaml, pythonics3.yaml, …), in one directory under
the names they had in their repositories, plan as deployments to create, not as "0 deployments".
"""
from __future__ import annotations

import fnmatch
import re
import subprocess

import pytest

from integration.helpers import REAL_WORLD, Server, ensure_fixture_objects, reconcile, set_flow_name
from reconciler.engine import desired
from reconciler.errors import ReconcileError
from reconciler.manifests import manifest
from reconciler.manifests.discover import DEFAULT_PATTERNS


def real_name(fixture) -> str:
    return fixture.name.split("__")[-1]      # fixtures are named owner__repo__dirs__file


def resolves(fixture) -> bool:
    """Not one whose inline block has secrets Prefect masked (it cannot be recreated: an error by design)."""
    try:
        desired.resolve([manifest.parse(fixture.read_bytes(), fixture, fixture.name)])
    except ReconcileError:
        return False
    return True


OTHER_NAMES = [p for p in sorted(REAL_WORLD.glob("*.yaml"))
               if not any(fnmatch.fnmatchcase(real_name(p), pattern) for pattern in DEFAULT_PATTERNS) and resolves(p)]


@pytest.fixture
def server(prefect_api_url):
    with Server(prefect_api_url) as srv:
        yield srv


def test_manifests_named_otherwise_plan_and_apply(prefect_api_url, server, tmp_path, unique):
    assert len(OTHER_NAMES) >= 6, [p.name for p in OTHER_NAMES]
    root = tmp_path / "repo" / "deployments"
    root.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(tmp_path / "repo")], check=True)
    expected = {}
    for i, fixture in enumerate(OTHER_NAMES):
        text = fixture.read_text(encoding="utf-8")
        text = re.sub(r"(?m)^(\s+basepath: )(/.*?)(\r?)$", lambda m: f"{m.group(1)}{tmp_path / 'storage'}{m.group(3)}",
                      text)
        data = ensure_fixture_objects(server, text)
        flow = f"{data['flow_name']}-{unique}-{i}"
        (root / real_name(fixture)).write_text(set_flow_name(text, flow), encoding="utf-8")
        expected[f"{flow}/{data['name']}"] = f"deployments/{real_name(fixture)}"

    source = f"it-names-{unique}"
    # their code is in cloud storage and git repositories this test cannot reach: deployments only
    plan = reconcile(prefect_api_url, "plan", "deployments", "--source", source, "--format", "json",
                     "--skip-upload", cwd=tmp_path / "repo")
    assert plan.returncode == 0, plan
    data = plan.json()
    assert {a["deployment"]: a["manifest"] for a in data["actions"] if a["action"] == "create"} == expected, plan
    assert data["summary"]["create"] == len(OTHER_NAMES)

    applied = reconcile(prefect_api_url, "apply", "deployments", "--source", source, "--skip-upload",
                        cwd=tmp_path / "repo")
    assert applied.returncode == 0 and f"{len(OTHER_NAMES)} created" in applied.stdout, applied
    for identity in expected:
        flow, name = identity.split("/")
        assert server.deployment(flow, name) is not None, identity
    (root / "reconcile.yaml").write_text(f"exclude: [{real_name(OTHER_NAMES[0])!r}]\n", encoding="utf-8")
    excluded = reconcile(prefect_api_url, "plan", "deployments", "--source", source, "--format", "json",
                         "--skip-upload", cwd=tmp_path / "repo")
    assert excluded.returncode == 0, excluded
    deletes = [a["deployment"] for a in excluded.json()["actions"] if a["action"] == "delete"]
    assert deletes == [next(iter(expected))], excluded
