"""Against the real (SQLite-backed) Prefect server: apply finds how many writers it takes.

`--parallelism 8` is only the ceiling.  A SQLite server takes one write at a
time and refuses the others with 503 "database is locked"; apply starts with one
writer and keeps it, so each deployment costs exactly the writes it needs and
hardly any refused request.
"""
from __future__ import annotations

from collections import Counter

from integration.helpers import RecordingProxy, manifest, reconcile, write_manifest

COUNT = 30


def test_apply_with_eight_allowed_writers_converges_without_a_storm_of_refusals(prefect_api_url, tmp_path, unique):
    flow, source = f"it-conc-{unique}", f"it-conc-{unique}"
    root = tmp_path / "deployments"
    for i in range(COUNT):
        write_manifest(root, manifest(flow, f"dep-{i:02d}"))

    with RecordingProxy(prefect_api_url) as proxy:
        run = reconcile(prefect_api_url, "apply", root, "--source", source, "--parallelism", 8,
                        "--api-url", proxy.api_url, cwd=tmp_path)
    assert run.returncode == 0, run
    assert f"Apply complete: {COUNT} created" in run.stdout, run

    # exactly what is needed, once each: one create and one run-scheduling request per deployment
    taken = Counter((w.method, w.path.rstrip("/").rsplit("/", 1)[-1] if w.path.endswith("/schedule") else w.path)
                    for w in proxy.deployment_writes())
    assert taken == Counter({("POST", "/api/flows/"): 1, ("POST", "/api/deployments/"): COUNT,
                             ("POST", "schedule"): COUNT}), taken
    refused = [r for r in proxy.requests if r.status in (429, 503)]
    # the server is shared with other tests, which may make it busy too: a handful, never one per write
    assert len(refused) <= 6, [(r.method, r.path) for r in refused]

    again = reconcile(prefect_api_url, "plan", root, "--source", source, "--detailed-exitcode", cwd=tmp_path)
    assert again.returncode == 0, again
    assert f"No changes. {COUNT} deployments in sync." in again.stdout
