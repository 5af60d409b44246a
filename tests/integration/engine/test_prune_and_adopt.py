"""Ownership against a real server: pruning, the delete guards, adoption and conflicts between sources.

Scenarios 3 and 4: only what a source's inventory lists is ever deleted; deployments made by hand
are left alone until a manifest declares them (adopt); a deployment another source manages is a
conflict, reported and not touched.
"""
from __future__ import annotations


import pytest

from integration.helpers import Server, manifest, reconcile, schedule_ids, write_manifest


@pytest.fixture
def server(server_api_url):
    with Server(server_api_url) as srv:
        yield srv


def test_removed_manifest_is_pruned_but_a_hand_made_deployment_is_never_deleted(server_api_url, server, tmp_path,
                                                                                unique):
    flow, source = f"it-prune-{unique}", f"it-prune-{unique}"
    root = tmp_path / "deployments"
    keep = write_manifest(root, manifest(flow, "keep"))
    gone = write_manifest(root, manifest(flow, "gone"))
    hand = server.create_deployment(flow, "by-hand", version="hand", tags=["manual"])

    run = reconcile(server_api_url, "apply", root, "--source", source, cwd=tmp_path)
    assert run.returncode == 0, run
    assert set(server.deployments(flow)) == {"keep", "gone", "by-hand"}
    assert server.inventory(source) == {f"{flow}/keep", f"{flow}/gone"}

    gone.unlink()
    plan = reconcile(server_api_url, "plan", root, "--source", source, cwd=tmp_path)
    assert plan.returncode == 0, plan
    assert f"- delete  {flow}/gone" in plan.stdout
    assert "by-hand" not in plan.stdout

    run = reconcile(server_api_url, "apply", root, "--source", source, cwd=tmp_path)
    assert run.returncode == 0, run
    left = server.deployments(flow)
    assert set(left) == {"keep", "by-hand"}
    assert left["by-hand"]["id"] == hand["id"] and left["by-hand"]["updated"] == hand["updated"]
    assert server.inventory(source) == {f"{flow}/keep"}

    # the last manifest goes too: an empty directory is refused, the hand-made one survives even --allow-empty
    keep.unlink()
    refused = reconcile(server_api_url, "apply", root, "--source", source, cwd=tmp_path)
    assert refused.returncode == 1, refused
    assert len(refused.messages) == 1 and refused.messages[0].startswith("error: "), refused
    assert "--allow-empty" in refused.messages[0]
    assert set(server.deployments(flow)) == {"keep", "by-hand"}

    run = reconcile(server_api_url, "apply", root, "--source", source, "--allow-empty", cwd=tmp_path)
    assert run.returncode == 0, run
    assert set(server.deployments(flow)) == {"by-hand"}
    assert server.inventory(source) == set()


def test_max_deletes_refuses_and_allow_deletes_proceeds(server_api_url, server, tmp_path, unique):
    flow, source = f"it-maxdel-{unique}", f"it-maxdel-{unique}"
    root = tmp_path / "deployments"
    write_manifest(root, manifest(flow, "stays"))
    doomed = [write_manifest(root, manifest(flow, f"doomed-{i}")) for i in range(2)]
    assert reconcile(server_api_url, "apply", root, "--source", source, cwd=tmp_path).returncode == 0
    before = server.deployments(flow)
    for path in doomed:
        path.unlink()

    refused = reconcile(server_api_url, "apply", root, "--source", source, "--max-deletes", "0", "-v", cwd=tmp_path)
    assert refused.returncode == 1, refused
    assert refused.stdout == ""
    assert len(refused.messages) == 1, refused
    line = refused.messages[0]
    assert line.startswith("error: refusing to delete 2 deployments") and "--allow-deletes" in line, line
    assert f"{flow}/doomed-0" in line
    assert refused.writes == [], refused
    assert server.deployments(flow).keys() == before.keys()

    # the limit from reconcile.yaml is honoured the same way
    (root / "reconcile.yaml").write_text("max_deletes: 1\n", encoding="utf-8")
    refused = reconcile(server_api_url, "apply", root, "--source", source, cwd=tmp_path)
    assert refused.returncode == 1 and "more than --max-deletes 1" in refused.stderr, refused
    assert server.deployments(flow).keys() == before.keys()

    run = reconcile(server_api_url, "apply", root, "--source", source, "--max-deletes", "0", "--allow-deletes",
                    cwd=tmp_path)
    assert run.returncode == 0, run
    assert set(server.deployments(flow)) == {"stays"}
    assert server.deployments(flow)["stays"]["updated"] == before["stays"]["updated"]


def test_empty_directory_against_a_managed_source_is_refused(server_api_url, server, tmp_path, unique):
    flow, source = f"it-empty-{unique}", f"it-empty-{unique}"
    root = tmp_path / "deployments"
    write_manifest(root, manifest(flow, "one"))
    assert reconcile(server_api_url, "apply", root, "--source", source, cwd=tmp_path).returncode == 0

    empty = tmp_path / "wrong-checkout"
    empty.mkdir()
    for command in (["apply", empty], ["apply", empty, "--allow-deletes"]):
        refused = reconcile(server_api_url, *command, "--source", source, "-v", cwd=tmp_path)
        assert refused.returncode == 1, refused
        assert len(refused.messages) == 1, refused
        assert "no manifests found" in refused.messages[0] and "--allow-empty" in refused.messages[0]
        assert refused.writes == [], refused
    assert set(server.deployments(flow)) == {"one"}
    assert server.inventory(source) == {f"{flow}/one"}


def test_adopt_a_hand_made_deployment_then_prune_it(server_api_url, server, tmp_path, unique):
    flow, source = f"it-adopt-{unique}", f"it-adopt-{unique}"
    root = tmp_path / "deployments"
    doc = manifest(flow, "adoptee", version="declared")
    # made by hand with the flow's parameter schema (PATCH cannot change that one on 2.20; see the next test)
    hand = server.create_deployment(flow, "adoptee", version="by-hand",
                                    parameter_openapi_schema=doc["below"]["parameter_openapi_schema"],
                                    schedules=[{"schedule": {"cron": "0 * * * *", "timezone": "UTC"}, "active": True}])
    write_manifest(root, doc)

    plan = reconcile(server_api_url, "plan", root, "--source", source, cwd=tmp_path)
    assert plan.returncode == 0, plan
    assert f"= adopt   {flow}/adoptee" in plan.stdout, plan
    assert '"by-hand" → "declared"' in plan.stdout
    status = reconcile(server_api_url, "status", root, "--source", source, "--format", "json", cwd=tmp_path)
    assert [e["status"] for e in status.json()["deployments"]] == ["unmanaged"]

    run = reconcile(server_api_url, "apply", root, "--source", source, cwd=tmp_path)
    assert run.returncode == 0, run
    adopted = server.deployment(flow, "adoptee")
    assert adopted["id"] == hand["id"], "adopted, not recreated"
    assert adopted["version"] == "declared"
    assert schedule_ids(adopted) == schedule_ids(hand), "the matching schedule was kept"
    assert server.inventory(source) == {f"{flow}/adoptee"}

    again = reconcile(server_api_url, "apply", root, "--source", source, "-v", cwd=tmp_path)
    assert again.returncode == 0 and again.writes == [], again

    # now it is managed: removing its manifest prunes it (the directory still declares another one)
    write_manifest(root, manifest(flow, "other"))
    (root / "adoptee-deployment.yaml").unlink()
    run = reconcile(server_api_url, "apply", root, "--source", source, cwd=tmp_path)
    assert run.returncode == 0, run
    assert set(server.deployments(flow)) == {"other"}


def test_adopting_an_identical_deployment_writes_only_the_inventory(server_api_url, server, tmp_path, unique):
    flow, source = f"it-adopt-same-{unique}", f"it-adopt-same-{unique}"
    first_root, second_root = tmp_path / "first", tmp_path / "second"
    write_manifest(first_root, manifest(flow, "twin"))
    write_manifest(second_root, manifest(flow, "twin"))
    # made by another source whose inventory is then lost: on the server, identical to the manifest, unowned
    assert reconcile(server_api_url, "apply", first_root, "--source", source + "-orig", cwd=tmp_path).returncode == 0
    for doc in server.reconcile_documents():
        if ((doc.get("data") or {}).get("value") or {}).get("source") == source + "-orig":
            server.call("DELETE", f"block_documents/{doc['id']}")
    before = server.deployment(flow, "twin")

    plan = reconcile(server_api_url, "plan", second_root, "--source", source, cwd=tmp_path)
    assert f"= adopt   {flow}/twin" in plan.stdout, plan
    run = reconcile(server_api_url, "apply", second_root, "--source", source, "-v", cwd=tmp_path)
    assert run.returncode == 0, run
    assert not [w for w in run.writes if "/deployments" in w.path or "/flows" in w.path], run
    after = server.deployment(flow, "twin")
    assert after["updated"] == before["updated"]
    assert server.inventory(source) == {f"{flow}/twin"}


def test_a_deployment_managed_by_another_source_is_a_conflict_and_left_alone(server_api_url, server, tmp_path,
                                                                             unique):
    flow = f"it-conflict-{unique}"
    source_a, source_b = f"it-conflict-a-{unique}", f"it-conflict-b-{unique}"
    root_a, root_b = tmp_path / "team-a", tmp_path / "team-b"
    write_manifest(root_a, manifest(flow, "shared", version="a"))
    assert reconcile(server_api_url, "apply", root_a, "--source", source_a, cwd=tmp_path).returncode == 0
    before = server.deployment(flow, "shared")

    write_manifest(root_b, manifest(flow, "shared", version="b"))
    write_manifest(root_b, manifest(flow, "b-only"))
    plan = reconcile(server_api_url, "plan", root_b, "--source", source_b, "--detailed-exitcode", cwd=tmp_path)
    assert plan.returncode == 1, plan     # a conflict is an error of the plan, even with --detailed-exitcode
    conflict_lines = [line for line in plan.stdout.splitlines() if "conflict" in line and f"{flow}/shared" in line]
    assert len(conflict_lines) == 1, plan
    assert source_a in conflict_lines[0] and "--allow-conflicts" in conflict_lines[0]
    first = next(line for line in plan.stdout.splitlines()[3:] if line.strip())
    assert first == conflict_lines[0], plan   # listed first
    assert plan.messages[-1].startswith("error: 1 deployment declared here belongs to another source"), plan

    # apply refuses before its first write: not even b-only is created
    refused = reconcile(server_api_url, "apply", root_b, "--source", source_b, "-v", cwd=tmp_path)
    assert refused.returncode == 1, refused
    assert refused.writes == [], refused
    assert server.deployment(flow, "b-only") is None

    # opting in leaves the conflict alone and applies the rest
    run = reconcile(server_api_url, "apply", root_b, "--source", source_b, "--allow-conflicts", cwd=tmp_path)
    assert run.returncode == 0, run
    assert source_a in run.stdout and "left alone" in run.stdout
    after = server.deployment(flow, "shared")
    assert after["version"] == "a" and after["updated"] == before["updated"]
    assert server.inventory(source_b) == {f"{flow}/b-only"}
    assert server.inventory(source_a) == {f"{flow}/shared"}

    # B dropping its manifest of the shared deployment must not delete A's deployment
    (root_b / "shared-deployment.yaml").unlink()
    run = reconcile(server_api_url, "apply", root_b, "--source", source_b, cwd=tmp_path)
    assert run.returncode == 0, run
    assert server.deployment(flow, "shared")["updated"] == before["updated"]

    json_plan = reconcile(server_api_url, "plan", root_a, "--source", source_a, "--format", "json", cwd=tmp_path)
    assert json_plan.json()["conflicts"] == []
