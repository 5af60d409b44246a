"""apply killed (SIGKILL) at any of its API writes, with code uploads, new ownership and a prune: nothing is left broken.

One apply uploads new code, creates a deployment, updates one and prunes one. It runs as a process
through `HoldingProxy`, which stops it at the N-th API write (that write and everything after it never
reach the server), and is then killed. N is drawn per case (seed in the failure message;
RECONCILE_TEST_SEED repeats one), plus every write of a short run at fixed points.

At the kill:  no deployment points at code that is not completely uploaded (the marker is written last and
says `complete`); a deployment the apply created is listed in the source's inventory (ownership is
recorded before the create).
After the next apply:  exit 0; the declared deployments, exactly; the code at the location is the bundle,
file for file; inventory = what is declared; no lock left behind; and an apply after that writes nothing.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import uuid

import pytest

from integration.engine.schedule_support import HoldingProxy
from integration.helpers import Server, edited, reconcile, start_reconcile, write_manifest
from integration.upload_support import MARKER_NAME, block_ref, make_block, stored_files, upload_manifest, write_tree

SEED = int(os.environ.get("RECONCILE_TEST_SEED") or random.randrange(1 << 30))
DRAWN = 5


def location_is_complete(store) -> bool:
    """The marker at the location says complete, and every file it lists is there with its hash."""
    files = stored_files(store)
    if MARKER_NAME not in files:
        return False
    marker = json.loads(files[MARKER_NAME])
    return marker.get("complete", True) and all(
        rel in files and hashlib.sha256(files[rel]).hexdigest() == entry["sha256"]
        for rel, entry in marker["files"].items())


class Scenario:
    """deployments/ with its code; an old state applied; the new state written, not applied."""

    def __init__(self, api_url: str, tmp_path, unique: str) -> None:
        self.api_url, self.tmp, self.flow, self.source = api_url, tmp_path, f"it-kill-{unique}", f"it-kill-{unique}"
        self.root, self.store = tmp_path / "deployments", tmp_path / "store"
        self.store.mkdir()
        with Server(api_url) as server:
            block = make_block(server, "local-file-system", f"it-kill-{unique}", {"basepath": str(self.store)})
        storage = block_ref(block, "local-file-system", basepath=str(self.store))
        self.docs = {n: upload_manifest(self.flow, n, storage, "code") for n in ("kept", "changed", "pruned")}
        write_tree(self.root, {"flow.py": "def main(n=1, label='x'):\n    return 1\n"})
        for doc in self.docs.values():
            write_manifest(self.root, doc)
        first = reconcile(api_url, "apply", self.root, "--source", self.source, cwd=tmp_path)
        assert first.returncode == 0, first
        # the new state: new code, one deployment created, one updated, one no longer declared
        write_tree(self.root, {"flow.py": "def main(n=1, label='x'):\n    return 2\n", "lib/util.py": "X = 2\n"})
        (self.root / "pruned-deployment.yaml").unlink()
        write_manifest(self.root, edited(self.docs["changed"], description="changed"))
        write_manifest(self.root, upload_manifest(self.flow, "created", storage, "code"))
        self.declared = {f"{self.flow}/{n}" for n in ("kept", "changed", "created")}

    def apply(self, *args) -> object:
        return reconcile(self.api_url, "apply", self.root, "--source", self.source, *args, cwd=self.tmp)


@pytest.fixture(scope="module")
def writes_of_a_whole_apply(prefect_api_url, tmp_path_factory) -> int:
    tmp = tmp_path_factory.mktemp("kill-reference")
    scenario = Scenario(prefect_api_url, tmp, uuid.uuid4().hex[:8])
    with HoldingProxy(prefect_api_url) as proxy:
        run = reconcile(prefect_api_url, "apply", scenario.root, "--source", scenario.source,
                        "--api-url", proxy.api_url, cwd=tmp)
    assert run.returncode == 0, run
    return len([status for _, _, status in proxy.done if status not in (429, 502, 503, 504)])


@pytest.mark.parametrize("case", [f"drawn-{i}" for i in range(DRAWN)] + ["first-write", "last-write"])
def test_a_kill_at_any_write_leaves_no_broken_deployment_and_the_next_apply_converges(
        prefect_api_url, tmp_path, unique, writes_of_a_whole_apply, case):
    s = Scenario(prefect_api_url, tmp_path, unique)
    n = {"first-write": 1, "last-write": writes_of_a_whole_apply}.get(case) or \
        random.Random(f"{SEED}-{case}").randint(1, writes_of_a_whole_apply)
    where = f"case {case} (seed {SEED}: write {n} of {writes_of_a_whole_apply})"

    with Server(prefect_api_url) as server, HoldingProxy(prefect_api_url, lambda index, *_: index == n) as proxy:
        proc = start_reconcile(proxy.api_url, "apply", s.root, "--source", s.source, cwd=tmp_path)
        try:
            while not proxy.reached.wait(0.1) and proc.poll() is None:
                pass
        finally:
            proc.kill()              # SIGKILL: no cleanup; the locks and the inventory stay as they are
            out, err = proc.communicate(timeout=60)
        assert proxy.reached.is_set(), f"{where}: apply finished before the stop\n{out}\n{err}"
        where += f", stopped at {proxy.held}"

        on_server = server.deployments(s.flow)
        if "created" in on_server:   # a deployment exists only once its code is completely there, and it is owned
            assert location_is_complete(s.store / "code"), f"{where}: created points at an incomplete upload"
            assert f"{s.flow}/created" in (server.inventory(s.source) or set()), f"{where}: created, not owned"
        proxy.release.set()

        rerun = s.apply("-v")
        assert rerun.returncode == 0, f"{where}\n{rerun}"
        assert set(server.deployments(s.flow)) == {"kept", "changed", "created"}, where
        assert server.deployment(s.flow, "changed")["description"] == "changed", where
        assert location_is_complete(s.store / "code"), where
        stored = stored_files(s.store / "code")
        assert stored["flow.py"] == (s.root / "flow.py").read_bytes() and stored["lib/util.py"] == b"X = 2\n", where
        assert server.inventory(s.source) == s.declared, where
        left = server.locks(s.source)
        if left and proxy.held == f"DELETE /api/block_documents/{left[0]['id']}":
            # Killed while releasing its lock, after every other write: the rerun has nothing to change and
            # takes no lock, so the dead holder's lock stays until it expires (its lease) or the next apply
            # that writes breaks it at once, since its holder no longer runs. That apply must not wait.
            write_manifest(s.root, edited(s.docs["changed"], description="changed again"))
            again = s.apply()
            assert again.returncode == 0 and "breaking the lock" in again.stderr, f"{where}\n{again}"
            left = server.locks(s.source)
        assert left == [], f"{where}: a lock was left behind\n{rerun}"
        again = s.apply("-v")
        assert again.returncode == 0 and again.writes == [], f"{where}\n{again}"
