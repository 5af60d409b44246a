"""apply killed (SIGKILL) between two of its writes, on a real Prefect 2.20 server: schedules are never lost.

Each case changes the schedules of four deployments, runs `reconcile apply` as a
process through `HoldingProxy`, stops it at one write (that write and everything
after it never reach the server) and kills it there. Then, at the kill: every
deployment has at least its old or its new schedules. After the next apply:
every deployment has exactly its declared schedules, the runs of each one it
wrote exist at once, and an apply after that writes nothing.

The write to stop at is drawn per case (seed in the failure message; set
RECONCILE_TEST_SEED to repeat one), and three cases stop at fixed points: at the
delete of an old schedule whose replacement was created (the gap between create
and delete), right after a schedule was deleted, and at the request that
schedules the runs.
"""
from __future__ import annotations

import os
import random
import uuid

import pytest

from integration.engine.schedule_support import HoldingProxy, assert_runs_due_in_the_next_minutes, future_runs
from integration.helpers import Server, cron, edited, interval, manifest, reconcile, rrule, start_reconcile, write_manifest
from reconciler.manifests import schedules as forms

EVERY_MINUTE = "* * * * *"
SEED = int(os.environ.get("RECONCILE_TEST_SEED") or random.randrange(1 << 30))


def _old_and_new(flow: str) -> tuple[list[dict], list[dict]]:
    old = [
        manifest(flow, "swap", schedules=[interval(3600), rrule()]),
        manifest(flow, "grow", schedules=[cron()]),
        manifest(flow, "shrink", schedules=[cron(), rrule()]),
        manifest(flow, "pause", schedules=[cron()]),
    ]
    new = [
        edited(old[0], schedules=[cron(EVERY_MINUTE), rrule()], description="swapped"),
        edited(old[1], schedules=[cron(), interval(900)], tags=["grown"]),
        edited(old[2], schedules=[rrule(active=False)], tags=["shrunk"]),
        edited(old[3], schedules=[cron(EVERY_MINUTE)], is_schedule_active=False),
    ]
    return old, new


def _setup(api_url: str, root, flow: str, source: str, cwd) -> tuple[list[dict], list[dict]]:
    old, new = _old_and_new(flow)
    for doc in old:
        write_manifest(root, doc)
    first = reconcile(api_url, "apply", root, "--source", source, cwd=cwd)
    assert first.returncode == 0, first
    for doc in new:
        write_manifest(root, doc)
    return old, new


def _declared(doc: dict) -> dict[str, bool]:
    return {forms.sort_key(forms.validate(e["schedule"])): e["active"] for e in doc["above"]["schedules"]}


def _on_server(dep: dict) -> dict[str, bool]:
    return {forms.sort_key(forms.from_live(s["schedule"])): bool(s["active"]) for s in dep["schedules"]}


@pytest.fixture(scope="module")
def writes_of_a_whole_apply(prefect_api_url, tmp_path_factory) -> int:
    """How many writes the apply of these changes makes when nothing stops it (503s retried not counted)."""
    tmp = tmp_path_factory.mktemp("killed-reference")
    name = f"it-killed-ref-{uuid.uuid4().hex[:8]}"
    _setup(prefect_api_url, tmp / "deployments", name, name, tmp)
    with HoldingProxy(prefect_api_url) as proxy:
        run = reconcile(prefect_api_url, "apply", tmp / "deployments", "--source", name, "--api-url", proxy.api_url,
                        cwd=tmp)
    assert run.returncode == 0, run
    return len([status for _, _, status in proxy.done if status not in (429, 502, 503, 504)])


def _between_create_and_delete(index, method, path, done) -> bool:
    """At the delete of an old schedule of a deployment whose new schedules were created."""
    return method == "DELETE" and "/schedules/" in path and \
        any(m == "POST" and p == path.rsplit("/", 1)[0] for m, p, _ in done)


def _after_a_deleted_schedule(index, method, path, done) -> bool:
    return any(m == "DELETE" and "/schedules/" in p for m, p, _ in done)


def _at_the_runs_request(index, method, path, done) -> bool:
    return method == "POST" and path.endswith("/schedule")


@pytest.mark.parametrize("case", ["between-create-and-delete", "after-a-delete", "at-the-runs-request",
                                  "drawn-1", "drawn-2", "drawn-3", "drawn-4"])
def test_a_kill_between_writes_leaves_old_or_new_schedules_and_the_next_apply_converges(
        prefect_api_url, tmp_path, unique, writes_of_a_whole_apply, case):
    flow, source = f"it-killed-{unique}", f"it-killed-{unique}"
    root = tmp_path / "deployments"
    old, new = _setup(prefect_api_url, root, flow, source, tmp_path)
    fixed = {"between-create-and-delete": _between_create_and_delete, "after-a-delete": _after_a_deleted_schedule,
             "at-the-runs-request": _at_the_runs_request}
    n = random.Random(f"{SEED}-{case}").randint(1, writes_of_a_whole_apply)
    stop = fixed.get(case) or (lambda index, method, path, done: index == n)
    where = f"case {case}" + ("" if case in fixed else f" (seed {SEED}: write {n} of {writes_of_a_whole_apply})")

    with Server(prefect_api_url) as server, HoldingProxy(prefect_api_url, stop) as proxy:
        proc = start_reconcile(proxy.api_url, "apply", root, "--source", source, "--parallelism", 2, cwd=tmp_path)
        try:
            while not proxy.reached.wait(0.1) and proc.poll() is None:
                pass
        finally:
            proc.kill()              # SIGKILL: no cleanup, the lock stays behind
            out, err = proc.communicate(timeout=60)
        assert proxy.reached.is_set(), f"{where}: apply finished before the stop, after {proxy.done}\n{out}\n{err}"
        where += f", stopped at {proxy.held} after {[(m, p) for m, p, _ in proxy.done]}"

        # at the kill: the old or the new schedules, never fewer
        deployments = server.deployments(flow)
        for before, after in zip(old, new):
            have = set(_on_server(deployments[after["above"]["name"]]))
            assert set(_declared(before)) <= have or set(_declared(after)) <= have, \
                f"{where}: {after['above']['name']} holds {sorted(have)}"
        proxy.release.set()

        # the next apply converges (the dead process's lock is broken at once)
        rerun = reconcile(prefect_api_url, "apply", root, "--source", source, "-v", cwd=tmp_path)
        assert rerun.returncode == 0, f"{where}\n{rerun}"
        deployments = server.deployments(flow)
        for doc in new:
            dep = deployments[doc["above"]["name"]]
            assert _on_server(dep) == _declared(doc), f"{where}: {doc['above']['name']}"
            written = any(dep["id"] in w.path for w in rerun.writes)
            makes_runs = doc["above"]["is_schedule_active"] is not False and any(_declared(doc).values())
            if not makes_runs:
                # No runs asked for. (Not "no runs exist": 2.20's scheduler may insert runs it computed
                # before the write that deleted them; that race is the server's.)
                asked = [w for w in rerun.writes if w.path.endswith(f"{dep['id']}/schedule")]
                assert not asked, f"{where}: {doc['above']['name']}"
            elif written and doc["above"]["schedules"][0]["schedule"].get("cron") == EVERY_MINUTE:
                assert_runs_due_in_the_next_minutes(server, dep["id"])
            elif written:
                assert future_runs(server, dep["id"]), f"{where}: {doc['above']['name']} has no runs"

        again = reconcile(prefect_api_url, "apply", root, "--source", source, "-v", cwd=tmp_path)
        assert again.returncode == 0 and again.writes == [], f"{where}\n{again}"
