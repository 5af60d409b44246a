"""The git hook end to end: a real bare repository, `reconcile hook install`, a real `git push`, the real server.

What the pusher sees is git's `remote:` lines in the push output; what the server holds is read back
through its REST API.
"""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Optional

import pytest

from integration.helpers import Server, cli_env, edited, manifest, reconcile, write_manifest

pytestmark = pytest.mark.integration


class Remote:
    """A bare repository (the git server) and a working clone of it (the developer)."""

    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.env = env
        self.bare = tmp_path / "srv" / "flows.git"
        self.work = tmp_path / "work"
        self.bare.parent.mkdir()
        self.git("init", "-q", "--bare", "-b", "main", str(self.bare), cwd=tmp_path)
        self.git("clone", "-q", str(self.bare), str(self.work), cwd=tmp_path)
        self.git("checkout", "-q", "-b", "main")

    def git(self, *args: str, cwd: Optional[Path] = None) -> subprocess.CompletedProcess:
        done = subprocess.run(["git", "-c", "user.name=it", "-c", "user.email=it@example.com", *args],
                              cwd=cwd or self.work, env=self.env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
        return done

    def commit_and_push(self, *docs: dict, branch: str = "main", extra: Optional[dict[str, str]] = None) -> str:
        """Write these manifests into deployments/, commit, push; returns the push output (stderr)."""
        for doc in docs:
            write_manifest(self.work / "deployments", doc)
        for rel, content in (extra or {}).items():
            (self.work / rel).write_text(content, encoding="utf-8")
        self.git("add", "-A")
        self.git("commit", "-q", "-m", "change")
        return self.git("push", "origin", f"HEAD:refs/heads/{branch}").stderr

    def remote_lines(self, output: str) -> list[str]:
        return [line[len("remote: "):].rstrip() for line in output.splitlines() if line.startswith("remote: ")]


@pytest.fixture
def server(prefect_api_url):
    with Server(prefect_api_url) as srv:
        yield srv


def test_git_push_applies_the_pushed_commit(tmp_path, prefect_api_url, server, unique):
    flow, source = f"hook-{unique}", f"it/hook-{unique}"
    remote = Remote(tmp_path, cli_env(None))            # the pushers' environment has no Prefect settings
    installed = reconcile(None, "hook", "install", "--repo", remote.bare, "--branch", "main", "--path", "deployments",
                          "--source", source, "--api-url", prefect_api_url)
    assert installed.returncode == 0, installed
    assert f"installed {remote.bare / 'hooks' / 'post-receive'}" in installed.stdout

    nightly, hourly = manifest(flow, "nightly"), manifest(flow, "hourly", parameters={"n": 5})
    out = remote.commit_and_push(nightly, hourly)
    lines = remote.remote_lines(out)
    assert f"Source: {source}" in lines
    assert f"+ create  {flow}/hourly  (deployments/hourly-deployment.yaml)" in [x.strip() for x in lines]
    assert any(x.startswith("Apply complete: 2 created") for x in lines), out
    live = server.deployments(flow)
    assert sorted(live) == ["hourly", "nightly"] and live["hourly"]["parameters"] == {"n": 5}

    # a second push changing a manifest updates that deployment
    out = remote.commit_and_push(edited(hourly, parameters={"n": 6}))
    assert any(x.startswith("Apply complete: 0 created, 1 updated") for x in remote.remote_lines(out)), out
    assert server.deployment(flow, "hourly")["parameters"] == {"n": 6}

    # a push to another branch applies nothing and says nothing
    remote.git("checkout", "-q", "-b", "feature")
    out = remote.commit_and_push(edited(hourly, parameters={"n": 7}), branch="feature")
    assert remote.remote_lines(out) == [], out
    assert server.deployment(flow, "hourly")["parameters"] == {"n": 6}

    # an invalid manifest: one line naming file and line in the push output, nothing applied (not even the
    # valid change pushed with it); the push itself is in, as post-receive cannot refuse it
    remote.git("checkout", "-q", "main")
    out = remote.commit_and_push(edited(nightly, parameters={"n": 8}), edited(hourly, parameters={"n": "six"}))
    errors = [x for x in remote.remote_lines(out) if x.startswith("error: ")]
    assert len(errors) == 1, out
    assert errors[0].startswith("error: deployments/hourly-deployment.yaml:") and "parameters.n" in errors[0]
    assert "1 error(s); nothing was changed." in remote.remote_lines(out)
    assert server.deployment(flow, "hourly")["parameters"] == {"n": 6}
    assert server.deployment(flow, "nightly")["parameters"] == {"n": 1}
    pushed = remote.git("rev-parse", "HEAD").stdout.strip()
    assert remote.git("rev-parse", "main", cwd=remote.bare).stdout.strip() == pushed   # the push itself is in


def test_api_url_from_the_pushers_environment_and_the_default_source(tmp_path, prefect_api_url, server, unique):
    """Without --api-url the hook uses PREFECT_API_URL of `git push`; without --source a name a clone shares."""
    flow = f"hook-env-{unique}"
    remote = Remote(tmp_path, cli_env(prefect_api_url))
    installed = reconcile(None, "hook", "install", "--repo", remote.bare, "--branch", "main", "--path", "deployments")
    assert installed.returncode == 0, installed
    out = remote.commit_and_push(manifest(flow, "nightly"))
    assert any(x.startswith("Apply complete: 1 created") for x in remote.remote_lines(out)), out
    assert server.deployment(flow, "nightly") is not None
    # `reconcile plan` in the developer's clone lands on the same inventory: nothing to change, nothing orphaned
    plan = reconcile(prefect_api_url, "plan", "deployments", cwd=remote.work)
    assert plan.returncode == 0, plan
    assert "No changes. 1 deployment in sync." in plan.stdout


def test_installing_over_a_foreign_hook_needs_force(tmp_path, unique):
    remote = Remote(tmp_path, cli_env(None))
    hook = remote.bare / "hooks" / "post-receive"
    hook.write_text("#!/bin/sh\necho deploy-something-else\n")
    refused = reconcile(None, "hook", "install", "--repo", remote.bare, "--branch", "main")
    assert refused.returncode == 1
    assert refused.messages == [f"error: {hook}: a post-receive hook that reconcile did not write is already there; "
                                "--force replaces it (it is kept as post-receive.before-reconcile)"]
    assert hook.read_text() == "#!/bin/sh\necho deploy-something-else\n"
    forced = reconcile(None, "hook", "install", "--repo", remote.bare, "--branch", "main", "--force")
    assert forced.returncode == 0, forced
    assert (hook.parent / "post-receive.before-reconcile").read_text() == "#!/bin/sh\necho deploy-something-else\n"
