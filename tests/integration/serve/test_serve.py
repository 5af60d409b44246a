"""`reconcile serve` end to end: a real origin repository, real webhook requests, a real Prefect server."""
from __future__ import annotations

import json
import random
import socket
import subprocess
import threading
from pathlib import Path

import pytest
import yaml

from integration.helpers import RecordingProxy, Server, cli_env, reconcile
from integration.serve_support import Deliverer, Origin, Serve, git, github_push, signed

pytestmark = pytest.mark.integration


@pytest.fixture
def origin(tmp_path: Path, unique: str) -> Origin:
    repo = Origin(tmp_path, f"serve-flow-{unique}")
    repo.write(version="1")
    repo.commit("first")
    return repo


@pytest.fixture
def server(prefect_api_url: str):
    with Server(prefect_api_url) as srv:
        yield srv


def start(tmp_path: Path, api_url: str, origin: Origin, *args: str, **kwargs) -> Serve:
    serve = Serve(tmp_path, api_url, origin, *args, **kwargs)
    serve.wait_runs(1)          # the startup run converges the server on the branch head
    return serve


def test_a_signed_push_applies_the_pushed_commit_not_the_branch_head(tmp_path, prefect_api_url, origin, server):
    serve = start(tmp_path, prefect_api_url, origin)
    try:
        assert server.deployment(origin.flow, "one")["version"] == "1"
        origin.write(version="2")
        second = origin.commit("second")
        origin.write(version="3")
        origin.commit("third")                    # the branch moves on before the delivery is handled

        answer = serve.post(github_push(origin, second))
        assert answer.status_code == 202, answer.text
        run = serve.wait_runs(2)[-1]
        assert (run["trigger"], run["commit"], run["result"]) == ("webhook", second, "applied")
        assert run["actions"] == {"update": 1}
        assert server.deployment(origin.flow, "one")["version"] == "2"
        assert serve.status()["sources"][serve.source]["applied_commit"] == second
        logged = [line for line in serve.log() if line.get("event") == "run"]
        assert logged[-1]["commit"] == second and logged[-1]["result"] == "applied"
    finally:
        assert serve.stop() == 0


def test_an_older_or_force_pushed_away_commit_is_never_applied_over_a_newer_one(tmp_path, prefect_api_url, origin,
                                                                               server):
    serve = start(tmp_path, prefect_api_url, origin)
    try:
        origin.write(version="2")
        older = origin.commit("second")
        origin.write(version="3")
        newer = origin.commit("third")
        assert serve.post(github_push(origin, newer)).status_code == 202
        serve.wait_runs(2)
        assert serve.post(github_push(origin, older)).status_code == 202      # delivered late
        late = serve.wait_runs(3)[-1]
        assert (late["commit"], late["result"]) == (older, "skipped")
        assert late["note"].startswith("superseded: the newer commit " + newer[:12])
        assert server.deployment(origin.flow, "one")["version"] == "3"

        git(origin.work, "reset", "-q", "--hard", "HEAD~2")                    # force-push main back
        origin.write(version="4")
        rewritten = origin.commit("rewritten", push=False)
        git(origin.work, "push", "-q", "--force", "origin", "HEAD:refs/heads/main")
        replayed = serve.post(github_push(origin, newer))                      # an old delivery, replayed
        assert replayed.status_code == 202
        gone = serve.wait_runs(4)[-1]
        assert (gone["commit"], gone["result"]) == (newer, "skipped")
        assert "not on branch main" in gone["note"] and rewritten[:12] in gone["note"]
        assert server.deployment(origin.flow, "one")["version"] == "3"

        git(origin.work, "push", "-q", "--force", "origin", f"{older}:refs/heads/main")   # a rollback
        assert serve.post(github_push(origin, older)).status_code == 202
        rolled_back = serve.wait_runs(5)[-1]
        assert (rolled_back["commit"], rolled_back["result"]) == (older, "applied")
        assert server.deployment(origin.flow, "one")["version"] == "2"
    finally:
        assert serve.stop() == 0


def test_serve_refuses_to_start_on_a_port_in_use_and_applies_nothing(tmp_path, prefect_api_url, origin, server):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        config = tmp_path / "serve.yaml"
        config.write_text(yaml.safe_dump({"listen": f"127.0.0.1:{port}", "workdir": str(tmp_path / "w"),
                                          "sources": [{"name": "port-" + origin.flow, "repo": str(origin.bare),
                                                       "path": "deploy", "api_url": prefect_api_url}]}))
        done = reconcile(None, "serve", config, env=cli_env(None, RECONCILE_WEBHOOK_SECRET="x"), timeout=60)
    assert done.returncode == 1, done
    assert done.stderr.strip() == f"error: cannot listen on 127.0.0.1:{port}: Address already in use"
    assert server.deployment(origin.flow, "one") is None


def test_bad_deliveries_are_refused_or_ignored_and_apply_nothing(tmp_path, prefect_api_url, origin, server):
    serve = start(tmp_path, prefect_api_url, origin)
    try:
        origin.write(version="2")
        sha = origin.commit("second")
        push = github_push(origin, sha)
        body = json.dumps(push).encode()

        assert serve.post(push, signature=None).status_code == 401
        assert serve.post(push, signature=signed(body, "not-the-secret")).status_code == 401
        assert serve.post(push, headers={"X-Hub-Signature-256": signed(body + b" ")}).status_code == 401
        assert serve.post(github_push(origin, sha, branch="feature")).status_code == 200
        other = dict(push, repository={"clone_url": "https://git.example.com/someone/else.git"})
        assert serve.post(other).status_code == 200
        assert serve.post(b"{not json", delivery="malformed").status_code == 400
        assert serve.post({"action": "opened"}, event="issues").status_code == 200
        assert serve.post(b"x" * (6 * 1024 * 1024)).status_code == 413

        assert server.deployment(origin.flow, "one")["version"] == "1"     # nothing applied
        assert len(serve.runs()) == 1
        reasons = [d["reason"] for d in serve.status()["deliveries"]]
        assert any("wrong signature" in r for r in reasons)
        assert any("not a followed branch" in r for r in reasons)
        assert any("no source follows" in r for r in reasons)
        assert any("not JSON" in r for r in reasons)
        assert any("'issues' is not a push" in r for r in reasons)
        assert any("larger than" in r for r in reasons)

        first = serve.post(push, delivery="delivery-1")
        assert first.status_code == 202
        serve.wait_runs(2)
        assert serve.post(push, delivery="delivery-1").status_code == 200   # a redelivery
        assert "already handled" in serve.status()["deliveries"][0]["reason"]
        assert len(serve.runs()) == 2
        assert serve.http.get("/healthz").status_code == 200
    finally:
        assert serve.stop() == 0


def test_gitlab_and_gitea_pushes_are_verified_their_own_way(tmp_path, prefect_api_url, origin, server):
    serve = start(tmp_path, prefect_api_url, origin)
    try:
        origin.write(version="2")
        sha = origin.commit("second")
        gitlab = {"object_kind": "push", "ref": "refs/heads/main", "checkout_sha": sha, "after": sha,
                  "project": {"path_with_namespace": "it/origin", "git_http_url": str(origin.bare)}}
        wrong = serve.post(gitlab, signature=None, headers={"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "nope"})
        assert wrong.status_code == 401
        right = serve.post(gitlab, signature=None, headers={"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token":
                                                             "it-webhook-secret", "X-Gitlab-Event-UUID": "gl-1"})
        assert right.status_code == 202, right.text
        serve.wait_runs(2)
        assert server.deployment(origin.flow, "one")["version"] == "2"

        origin.write(version="3")
        sha = origin.commit("third")
        body = json.dumps(github_push(origin, sha)).encode()
        gitea_headers = {"X-Gitea-Event": "push", "X-Gitea-Delivery": "gt-1",
                         "X-Gitea-Signature": signed(body)[len("sha256="):]}
        assert serve.post(body, signature=None, headers=gitea_headers).status_code == 202
        serve.wait_runs(3)
        assert server.deployment(origin.flow, "one")["version"] == "3"
    finally:
        assert serve.stop() == 0


def test_pushes_in_quick_succession_run_in_order_and_never_overlap(tmp_path, prefect_api_url, origin, server):
    serve = start(tmp_path, prefect_api_url, origin)
    try:
        pushed = []
        for version in ("2", "3", "4", "5"):
            origin.write(version=version)
            pushed.append(origin.commit(f"v{version}"))
            assert serve.post(github_push(origin, pushed[-1])).status_code == 202
        serve.wait(lambda: serve.runs()[-1]["commit"] == pushed[-1] and not _busy(serve), what="the newest commit")
        runs = serve.runs()[1:]
        commits = [r["commit"] for r in runs]
        assert commits == sorted(commits, key=pushed.index)          # in push order; queued ones coalesce
        assert commits[-1] == pushed[-1] and len(runs) <= len(pushed)
        for before, after in zip(runs, runs[1:]):
            assert before["finished"] <= after["started"], (before, after)
        assert all(r["result"] == "applied" for r in runs)
        assert server.deployment(origin.flow, "one")["version"] == "5"
    finally:
        assert serve.stop() == 0


BURSTS = 5
PUSHES = 40
THREADS = 8


def _descends(origin: Origin, newer: str, older: str) -> bool:
    return subprocess.run(["git", "merge-base", "--is-ancestor", older, newer], cwd=origin.bare).returncode == 0


def _burst(origin: Origin, deliverer: Deliverer, burst: int) -> dict[str, dict[str, str]]:
    """PUSHES commits, each pushed on its own; every commit changes `one`'s version, and `two` comes and goes, so
    only the head's manifests give the head's deployments. Returns commit → {deployment: version}."""
    expected = {}
    for i in range(PUSHES):
        version = f"{burst}.{i}"
        origin.write("one", version=version)
        two = origin.work / "deploy" / "two-deployment.yaml"
        if (i + burst) % 3:
            origin.write("two", version=version)
        else:
            two.unlink(missing_ok=True)
        sha = origin.commit(f"burst {burst} push {i}")
        expected[sha] = {"one": version, **({"two": version} if (i + burst) % 3 else {})}
        deliverer.add(github_push(origin, sha))
    return expected


def test_a_burst_of_pushes_delivered_out_of_order_ends_on_the_branch_head(tmp_path, prefect_api_url, origin, server):
    """Issue 10: coalescing kept the push that arrived last, so serve stopped on an older commit and, with polling
    off, never caught up. Whatever order the deliveries come in, once serve is idle the branch head is applied."""
    serve = start(tmp_path, prefect_api_url, origin)        # poll_interval 0: only webhooks move it
    try:
        for burst in range(BURSTS):
            seen = len([line for line in serve.log() if line.get("event") == "run"])
            rng = random.Random(f"burst-{burst}")
            deliverer = Deliverer(serve, THREADS, rng, hold=6)
            if burst % 2:          # delivered while the pushes go on (runs see the branch move under them)
                deliverer.start()
                expected = _burst(origin, deliverer, burst)
            else:                  # all pushed first, then every delivery at once, shuffled
                expected = _burst(origin, deliverer, burst)
                deliverer.start()
            sent = deliverer.finish()
            head = git(origin.bare, "rev-parse", "refs/heads/main")
            assert head == list(expected)[-1]
            assert sorted(sent) == sorted((sha, 202) for sha in expected), sent
            order = [sha for sha, _ in sent]
            assert order != list(expected), "the deliveries were not shuffled"

            serve.wait(serve.idle, what=f"serve to be idle after burst {burst}", timeout=180)
            info = serve.status()["sources"][serve.source]
            runs = [line for line in serve.log() if line.get("event") == "run"][seen:]
            applied = [r["commit"] for r in runs if r["result"] in ("applied", "in-sync")]
            assert info["applied_commit"] == head, (burst, [expected.get(c, c) for c in applied], runs[-3:])
            assert applied[-1] == head
            assert not [r for r in runs if r["result"] == "failed"], runs
            for older, newer in zip(applied, applied[1:]):      # never an older commit over a newer one
                assert _descends(origin, newer, older), (burst, expected[newer], "applied after", expected[older])
            deployments = server.deployments(origin.flow)
            assert {name: dep["version"] for name, dep in deployments.items()} == expected[head]
            plan = reconcile(prefect_api_url, "plan", origin.work / "deploy", "--source", serve.source,
                             "--detailed-exitcode")          # the work tree is at the head: nothing to change
            assert plan.returncode == 0, plan
    finally:
        assert serve.stop() == 0


def _busy(serve: Serve) -> bool:
    info = serve.status()["sources"][serve.source]
    return bool(info.get("queued")) or (info["runs"] and info["runs"][0]["result"] == "running")


def test_polling_finds_a_push_that_sent_no_webhook(tmp_path, prefect_api_url, origin, server):
    serve = start(tmp_path, prefect_api_url, origin, poll_interval=1)
    try:
        origin.write(version="2")
        sha = origin.commit("no webhook for this one")
        run = serve.wait(lambda: next((r for r in serve.runs() if r["commit"] == sha), None), what="a poll run")
        assert (run["trigger"], run["result"], run["drift"]) == ("poll", "applied", 0)
        assert server.deployment(origin.flow, "one")["version"] == "2"
    finally:
        assert serve.stop() == 0


def test_self_heal_reverts_a_change_made_by_hand(tmp_path, prefect_api_url, origin, server):
    serve = start(tmp_path, prefect_api_url, origin, poll_interval=1)
    try:
        dep = server.deployment(origin.flow, "one")
        server.call("PATCH", f"deployments/{dep['id']}", {"description": "changed in the UI"})
        healed = serve.wait(lambda: next((r for r in serve.runs() if r["drift"]), None), what="a self-heal run")
        assert (healed["trigger"], healed["result"], healed["actions"]) == ("poll", "applied", {"update": 1})
        assert server.deployment(origin.flow, "one")["description"] is None
        metrics = serve.http.get("/metrics").text
        assert f'reconcile_actions_total{{source="{serve.source}",kind="update"}} 1' in metrics
    finally:
        assert serve.stop() == 0


def test_without_self_heal_drift_is_reported_and_left_alone(tmp_path, prefect_api_url, origin, server):
    serve = start(tmp_path, prefect_api_url, origin, "--no-self-heal", poll_interval=1)
    try:
        dep = server.deployment(origin.flow, "one")
        server.call("PATCH", f"deployments/{dep['id']}", {"description": "changed in the UI"})
        drift = serve.wait(lambda: next((r for r in serve.runs() if r["result"] == "drift"), None), what="drift")
        assert drift["drift"] == 1 and drift["actions"] == {"update": 1}
        assert drift["changes"] == [f"update {origin.flow}/one: description"]
        assert server.deployment(origin.flow, "one")["description"] == "changed in the UI"
        metrics = serve.http.get("/metrics").text
        assert f'reconcile_drift_deployments{{source="{serve.source}"}} 1' in metrics
        assert f'reconcile_last_run_result{{source="{serve.source}",result="drift"}} 1' in metrics

        origin.write(version="2")            # a new commit is still applied: only drift is left alone
        sha = origin.commit("second")
        assert serve.post(github_push(origin, sha)).status_code == 202
        serve.wait(lambda: any(r["commit"] == sha and r["result"] == "applied" for r in serve.runs()), what="apply")
        assert server.deployment(origin.flow, "one")["version"] == "2"
    finally:
        assert serve.stop() == 0


def test_a_push_with_an_invalid_manifest_fails_its_run_and_serving_goes_on(tmp_path, prefect_api_url, origin, server):
    serve = start(tmp_path, prefect_api_url, origin)
    try:
        path = origin.write(version="2")
        path.write_text(path.read_text().replace("tags:", "tags: [unclosed\nx:"), encoding="utf-8")
        bad = origin.commit("broken")
        assert serve.post(github_push(origin, bad)).status_code == 202
        run = serve.wait_runs(2)[-1]
        assert run["result"] == "failed" and run["commit"] == bad
        assert run["errors"] and run["errors"][0].startswith("deploy/one-deployment.yaml:"), run["errors"]
        assert server.deployment(origin.flow, "one")["version"] == "1"
        assert serve.http.get("/healthz").status_code == 200
        failed = [line for line in serve.log() if line.get("event") == "run" and line["result"] == "failed"]
        assert failed and failed[-1]["errors"] == run["errors"]
        metrics = serve.http.get("/metrics").text
        assert f'reconcile_last_run_success{{source="{serve.source}"}} 0' in metrics

        origin.write(version="2")
        good = origin.commit("fixed")
        assert serve.post(github_push(origin, good)).status_code == 202
        assert serve.wait_runs(3)[-1]["result"] == "applied"
        assert server.deployment(origin.flow, "one")["version"] == "2"
    finally:
        assert serve.stop() == 0


def test_a_manifest_directory_that_links_outside_the_repository_is_refused(tmp_path, prefect_api_url, origin,
                                                                          server):
    serve = start(tmp_path, prefect_api_url, origin)
    try:
        outside = tmp_path / "outside"
        (origin.work / "deploy").rename(outside)
        (outside / "one-deployment.yaml").write_text(
            (outside / "one-deployment.yaml").read_text().replace("version: '1'", "version: 'from-outside'"))
        (origin.work / "deploy").symlink_to(outside)
        sha = origin.commit("a link to the host's files")
        assert serve.post(github_push(origin, sha)).status_code == 202
        run = serve.wait_runs(2)[-1]
        assert run["result"] == "failed" and "leads outside the repository" in run["errors"][0]
        assert server.deployment(origin.flow, "one")["version"] == "1"
    finally:
        assert serve.stop() == 0


def test_a_manifest_that_links_outside_the_repository_is_refused(tmp_path, prefect_api_url, origin, server):
    serve = start(tmp_path, prefect_api_url, origin)
    try:
        outside = tmp_path / "host-file.yaml"
        outside.write_text("secret: value\n")
        (origin.work / "deploy" / "two-deployment.yaml").symlink_to(outside)
        sha = origin.commit("a link to a file of the host")
        assert serve.post(github_push(origin, sha)).status_code == 202
        run = serve.wait_runs(2)[-1]
        assert run["result"] == "failed"
        assert run["errors"] == [f"deploy/two-deployment.yaml: a symbolic link to outside the repository at commit "
                                 f"{sha[:12]}; nothing applied"]
    finally:
        assert serve.stop() == 0


def test_an_unreachable_repository_is_a_failed_run_not_a_crash(tmp_path, prefect_api_url, origin):
    serve = Serve(tmp_path, prefect_api_url, origin, repo=str(tmp_path / "no-such-repo.git"))
    try:
        run = serve.wait_runs(1)[0]
        assert run["result"] == "failed"
        assert "no-such-repo.git" in run["errors"][0] and run["errors"][0].startswith("git fetch from")
        assert serve.http.get("/healthz").status_code == 200
    finally:
        assert serve.stop() == 0


def test_shutdown_finishes_the_run_in_progress(tmp_path, prefect_api_url, origin, server):
    gate = threading.Event()
    with RecordingProxy(prefect_api_url, hold_writes=gate) as proxy:
        gate.set()
        serve = start(tmp_path, proxy.api_url, origin)
        gate.clear()
        origin.write(version="2")
        sha = origin.commit("second")
        assert serve.post(github_push(origin, sha)).status_code == 202
        serve.wait(proxy.holding.is_set, what="the run to reach its first write")
        serve.proc.send_signal(15)
        serve.wait(lambda: any(line.get("event") == "stopping" for line in serve.log()), what="shutdown to begin")
        assert serve.proc.poll() is None           # still finishing the run
        gate.set()
        assert serve.proc.wait(60) == 0
        serve.stop()
        runs = [line for line in serve.log() if line.get("event") == "run"]
        assert (runs[-1]["commit"], runs[-1]["result"]) == (sha, "applied")
        assert server.deployment(origin.flow, "one")["version"] == "2"

