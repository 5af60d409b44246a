"""One owner per deployment, against a real server: racing sources, inventories that overlap, lone files.

Issue 10 items 5–7: two sources that declare the same deployment and apply at the same moment must
not both end up owning it; a manifest applied on its own belongs to its directory's source and
never prunes the others.
"""
from __future__ import annotations

import hashlib
import subprocess
import threading

import pytest

from integration.helpers import Server, edited, manifest, reconcile, write_manifest

RACES = 6


@pytest.fixture
def server(prefect_api_url):
    with Server(prefect_api_url) as srv:
        yield srv


def listed_by(server: Server, identity: str) -> list[str]:
    """The sources whose inventory lists identity."""
    return sorted(doc["data"]["value"]["source"] for doc in server.reconcile_documents()
                  if doc["name"].startswith("reconcile-inventory-")
                  and identity in (doc["data"]["value"].get("deployments") or []))


def legacy_claim(server: Server, identity: str, source: str) -> None:
    """A claim document as reconcile wrote one per deployment before ownership moved into the inventories."""
    name = "reconcile-owner-" + hashlib.sha256(identity.encode()).hexdigest()[:40]
    server.create_json_document(name, {"deployment": identity, "source": source})


def race(api_url: str, runs: list[tuple]) -> list:
    """Start every `reconcile` run at the same moment; their results, in order."""
    results: list = [None] * len(runs)
    go = threading.Barrier(len(runs))

    def one(i: int) -> None:
        go.wait()
        results[i] = reconcile(api_url, *runs[i][0], cwd=runs[i][1])
    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(runs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.mark.parametrize("attempt", range(RACES))
def test_two_sources_racing_for_one_deployment_never_both_own_it(prefect_api_url, server, tmp_path, unique, attempt):
    flow = f"it-race-{unique}"
    identity = f"{flow}/shared"
    sources = [f"it-race-a-{unique}", f"it-race-b-{unique}"]
    roots = []
    for letter, source in zip("ab", sources):
        root = tmp_path / source
        write_manifest(root, manifest(flow, "shared", version=letter))
        write_manifest(root, manifest(flow, f"only-{letter}"))
        roots.append(root)

    a, b = race(prefect_api_url, [(("apply", root, "--source", source), tmp_path) for root, source in zip(roots, sources)])
    owners = listed_by(server, identity)
    assert len(owners) == 1, (owners, str(a), str(b))
    [owner] = owners
    loser_run = b if owner == sources[0] else a
    winner_run = a if owner == sources[0] else b
    assert winner_run.returncode == 0, winner_run
    assert loser_run.returncode == 1, loser_run      # a conflict (planned, or lost at apply) fails the run
    assert server.deployment(flow, "shared")["version"] == ("a" if owner == sources[0] else "b")

    # from then on the loser never writes the owner's deployment, and a prune by it deletes nothing of the owner's
    loser = sources[1] if owner == sources[0] else sources[0]
    loser_root = roots[sources.index(loser)]
    before = server.deployment(flow, "shared")
    again = reconcile(prefect_api_url, "apply", loser_root, "--source", loser, "--allow-conflicts", cwd=tmp_path)
    assert again.returncode == 0, again
    assert "left alone" in again.stdout, again
    assert server.deployment(flow, "shared")["updated"] == before["updated"]
    assert identity not in (server.inventory(loser) or set())
    (loser_root / "shared-deployment.yaml").unlink()
    pruned = reconcile(prefect_api_url, "apply", loser_root, "--source", loser, cwd=tmp_path)
    assert pruned.returncode == 0, pruned
    assert server.deployment(flow, "shared")["updated"] == before["updated"]
    assert listed_by(server, identity) == [owner]


def test_a_deployment_two_inventories_list_goes_to_an_earlier_versions_claim(prefect_api_url, server, tmp_path,
                                                                            unique):
    """Two inventories that list one deployment (an earlier version killed between its inventory writes):
    the claim document that version wrote decides, and the other source lets go of it."""
    flow = f"it-legacy-{unique}"
    identity = f"{flow}/shared"
    source_a, source_b = f"it-legacy-a-{unique}", f"it-legacy-b-{unique}"
    root_a, root_b = tmp_path / "a", tmp_path / "b"
    write_manifest(root_a, manifest(flow, "shared", version="a"))
    write_manifest(root_b, manifest(flow, "shared", version="b"))
    assert reconcile(prefect_api_url, "apply", root_a, "--source", source_a, cwd=tmp_path).returncode == 0
    server.create_json_document(f"reconcile-inventory-legacy-{unique}", {"source": source_b, "deployments": [identity]})
    legacy_claim(server, identity, source_b)

    a = reconcile(prefect_api_url, "plan", root_a, "--source", source_a, cwd=tmp_path)
    assert a.returncode == 1 and source_b in a.stderr, a
    b = reconcile(prefect_api_url, "apply", root_b, "--source", source_b, cwd=tmp_path)
    assert b.returncode == 0, b
    assert server.deployment(flow, "shared")["version"] == "b"
    shrunk = reconcile(prefect_api_url, "apply", root_a, "--source", source_a, "--allow-conflicts", cwd=tmp_path)
    assert shrunk.returncode == 0, shrunk
    assert listed_by(server, identity) == [source_b]
    assert server.deployment(flow, "shared")["version"] == "b"


def test_without_a_claim_the_first_source_by_name_owns_a_deployment_two_inventories_list(prefect_api_url, server,
                                                                                         tmp_path, unique):
    flow = f"it-overlap-{unique}"
    identity = f"{flow}/shared"
    source_a, source_b = f"it-overlap-a-{unique}", f"it-overlap-b-{unique}"
    root_a, root_b = tmp_path / "a", tmp_path / "b"
    write_manifest(root_a, manifest(flow, "shared", version="a"))
    write_manifest(root_b, manifest(flow, "shared", version="b"))
    assert reconcile(prefect_api_url, "apply", root_b, "--source", source_b, cwd=tmp_path).returncode == 0
    server.create_json_document(f"reconcile-inventory-overlap-{unique}", {"source": source_a, "deployments": [identity]})

    b = reconcile(prefect_api_url, "apply", root_b, "--source", source_b, cwd=tmp_path)
    assert b.returncode == 1 and source_a in b.stderr, b      # both agree: a comes first
    assert server.deployment(flow, "shared")["version"] == "b"
    a = reconcile(prefect_api_url, "apply", root_a, "--source", source_a, cwd=tmp_path)
    assert a.returncode == 0, a
    assert server.deployment(flow, "shared")["version"] == "a"


def test_a_lone_manifest_belongs_to_its_directorys_source_and_never_prunes(prefect_api_url, server, tmp_path, unique):
    flow = f"it-lone-{unique}"
    repo = tmp_path / "repo"
    root = repo / "deployments"
    docs = {n: manifest(flow, n) for n in ("one", "two", "three")}
    paths = {n: write_manifest(root, d) for n, d in docs.items()}
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "reconcile.yaml").write_text(f"source: it-lone-{unique}\n")

    # the repository applied from its root (reconcile.yaml there), then one file on its own
    run = reconcile(prefect_api_url, "apply", ".", cwd=repo)
    assert run.returncode == 0, run
    assert set(server.deployments(flow)) == {"one", "two", "three"}
    write_manifest(root, edited(docs["two"], description="edited alone"))
    lone = reconcile(prefect_api_url, "apply", paths["two"], "-v", cwd=repo)
    assert lone.returncode == 0, lone
    assert lone.stdout.splitlines()[0] == f"Source: it-lone-{unique}", lone   # the nearest reconcile.yaml's source
    assert "conflict" not in lone.stdout, lone
    assert not [w for w in lone.writes if w.method == "DELETE" and "/deployments/" in w.path], lone  # the others stay
    assert set(server.deployments(flow)) == {"one", "two", "three"}
    assert server.deployment(flow, "two")["description"] == "edited alone"
    assert server.inventory(f"it-lone-{unique}") == {f"{flow}/{n}" for n in docs}

    # without reconcile.yaml: `apply deployments/`, then one file of it, is one source
    (repo / "reconcile.yaml").unlink()
    other = f"{flow}-b"
    docs = {n: manifest(other, n) for n in ("one", "two")}
    sub = repo / "team"
    paths = {n: write_manifest(sub, d) for n, d in docs.items()}
    assert reconcile(prefect_api_url, "apply", sub, cwd=repo).returncode == 0
    write_manifest(sub, edited(docs["one"], description="first"))
    lone = reconcile(prefect_api_url, "apply", paths["one"], cwd=repo)
    assert lone.returncode == 0, lone
    assert "conflict" not in lone.stdout, lone
    assert set(server.deployments(other)) == {"one", "two"}
    assert server.deployment(other, "one")["description"] == "first"
