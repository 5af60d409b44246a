"""The GitHub Action end to end: action.yml's script step run as a real process in a simulated GitHub environment.

The step's `run:` and `env:` are taken from action.yml (its `${{ inputs.* }}` evaluated with the inputs' defaults,
as the runner does), so what runs here is what runs on GitHub, apart from the install step: the script finds the
`reconcile` installed next to this interpreter. Prefect is the real test server; GitHub's REST API is a small local
stand-in (there is no GitHub here) that checks the token and pages the comment list two at a time.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Optional
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from integration.helpers import REPO, Server, edited, manifest, write_manifest
from github_outputs import parse_output_file

pytestmark = pytest.mark.integration

TOKEN = "ghs_standin_token_for_tests"
REPOSITORY = "acme/flows"
PR = 42

# ----------------------------------------------------------------------------- a stand-in for GitHub's REST API


class StandInGitHub:
    """Issue comments of one repository: list (paged), create, update. Requests without the token get 401."""

    def __init__(self, page_size: int = 2) -> None:
        self.comments: list[dict] = []
        self.page_size = page_size
        self.log: list[tuple[str, str, bool]] = []  # method, path, authorised
        self.refuse_writes: Optional[int] = None
        self.lock = threading.Lock()
        self.next_id = 5000

    def seed(self, *bodies: str) -> None:
        for body in bodies:
            self.comments.append({"id": self._id(), "body": body, "user": {"login": "someone"}})

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id

    def __enter__(self) -> "StandInGitHub":
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status: int, body, headers: Optional[dict] = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                url = urlsplit(self.path)
                authorised = self.headers.get("authorization") == f"Bearer {TOKEN}"
                with hub.lock:
                    hub.log.append((self.command, url.path, authorised))
                if not authorised:
                    return self._send(401, {"message": "Bad credentials"})
                length = int(self.headers.get("content-length") or 0)
                payload = json.loads(self.rfile.read(length)) if length else None
                listing = f"/repos/{REPOSITORY}/issues/{PR}/comments"
                with hub.lock:
                    if self.command == "GET" and url.path == listing:
                        query = parse_qs(url.query)
                        page = int(query.get("page", ["1"])[0])
                        size = min(int(query.get("per_page", ["30"])[0]), hub.page_size)
                        chunk = hub.comments[(page - 1) * size: page * size]
                        more = page * size < len(hub.comments)
                        link = {"link": f'<{hub.url}{listing}?per_page={size}&page={page + 1}>; rel="next"'} if more else {}
                        return self._send(200, chunk, link)
                    if self.command in ("POST", "PATCH") and hub.refuse_writes:
                        return self._send(hub.refuse_writes, {"message": "Resource not accessible by integration"})
                    if self.command == "POST" and url.path == listing:
                        made = {"id": hub._id(), "body": payload["body"], "user": {"login": "github-actions[bot]"}}
                        made["html_url"] = f"https://github.com/{REPOSITORY}/pull/{PR}#issuecomment-{made['id']}"
                        hub.comments.append(made)
                        return self._send(201, made)
                    m = re.fullmatch(rf"/repos/{REPOSITORY}/issues/comments/(\d+)", url.path)
                    if self.command == "PATCH" and m:
                        found = next((c for c in hub.comments if c["id"] == int(m.group(1))), None)
                        if found is None:
                            return self._send(404, {"message": "Not Found"})
                        found["body"] = payload["body"]
                        return self._send(200, found)
                return self._send(404, {"message": "Not Found"})

            do_GET = do_POST = do_PATCH = _handle

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def ours(self) -> list[dict]:
        """The comments the action made (the stand-in's POSTs), seeded ones excluded."""
        return [c for c in self.comments if c["user"]["login"] == "github-actions[bot]"]

    def writes(self) -> list[tuple[str, str, bool]]:
        return [entry for entry in self.log if entry[0] != "GET"]


# ----------------------------------------------------------------------------- action.yml's script step, run for real

ACTION = yaml.safe_load((REPO / "action.yml").read_text(encoding="utf-8"))
SCRIPT_STEP = next(s for s in ACTION["runs"]["steps"] if s.get("id") == "reconcile")


def evaluate(expression: str, inputs: dict[str, str]) -> str:
    """The few `${{ }}` expressions the script step may use, evaluated as the runner would."""
    m = re.fullmatch(r"\$\{\{\s*(.+?)\s*\}\}", expression)
    if not m:
        return expression
    name = m.group(1)
    if name == "github.token":
        return TOKEN
    if name == "steps.install.outputs.python":
        return sys.executable  # the install step's virtual environment: here, the one running the tests
    if name.startswith("inputs."):
        key = name[len("inputs."):]
        assert key in ACTION["inputs"], f"action.yml uses an undeclared input {key}"
        return inputs[key] if key in inputs else evaluate(str(ACTION["inputs"][key].get("default", "")), inputs)
    raise AssertionError(f"the script step uses an expression this test does not know: {expression}")


@dataclass
class ActionRun:
    returncode: int
    log: str
    outputs: dict[str, str]
    summary: str

    def __str__(self) -> str:
        return f"exit {self.returncode}\n--- log\n{self.log}--- outputs {self.outputs}\n--- summary\n{self.summary}"


@dataclass
class Runner:
    workspace: Path
    github: StandInGitHub
    temp: Path
    runs: int = 0

    def __call__(self, event_name: str = "pull_request", extra_env: Optional[dict] = None, **inputs: str) -> ActionRun:
        self.runs += 1
        home = self.temp / f"run{self.runs}"
        (home / "tmp").mkdir(parents=True)
        event = home / "event.json"
        payload = {"pull_request": {"number": PR, "head": {"sha": "0123456789abcdef"}}} if event_name == "pull_request" \
            else {"ref": "refs/heads/main", "after": "fedcba9876543210"}
        event.write_text(json.dumps(payload), encoding="utf-8")
        env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", "CI": "true", "GITHUB_ACTIONS": "true",
               "GITHUB_EVENT_NAME": event_name, "GITHUB_EVENT_PATH": str(event), "GITHUB_REPOSITORY": REPOSITORY,
               "GITHUB_API_URL": self.github.url, "GITHUB_SERVER_URL": "https://github.com", "GITHUB_RUN_ID": "777",
               "GITHUB_WORKSPACE": str(self.workspace), "RUNNER_TEMP": str(home / "tmp"),
               "GITHUB_OUTPUT": str(home / "output"), "GITHUB_STEP_SUMMARY": str(home / "summary"),
               "GITHUB_TOKEN": TOKEN, **(extra_env or {})}
        inputs = {k.replace("_", "-"): v for k, v in inputs.items()}
        env.update({k: evaluate(str(v), inputs) for k, v in SCRIPT_STEP["env"].items()})
        proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", SCRIPT_STEP["run"]],
                              cwd=self.workspace, env=env, capture_output=True, text=True, timeout=240)
        read = lambda p: p.read_text(encoding="utf-8") if p.exists() else ""  # noqa: E731
        return ActionRun(proc.returncode, proc.stdout + proc.stderr, parse_output_file(read(home / "output")),
                         read(home / "summary"))


FLOW_CODE = '''from prefect import flow
open("{sentinel}", "w").write("flow code ran")


@flow(name="{flow}")
def main(n: int = 1, label: str = "x"):
    pass
'''


@pytest.fixture
def setup(tmp_path, unique, prefect_api_url):
    """A workspace (the pull request's checkout) with one flow and its manifest, and the GitHub stand-in."""
    workspace = tmp_path / "workspace"
    deployments = workspace / "deployments"
    deployments.mkdir(parents=True)
    flow = f"gh-action-{unique}"
    sentinel = tmp_path / "pr-code-ran"
    (deployments / "flow.py").write_text(FLOW_CODE.format(sentinel=sentinel, flow=flow), encoding="utf-8")
    doc = manifest(flow, "nightly", entrypoint="flow.py:main", tags=["v1"])
    write_manifest(deployments, doc)
    # a pull request that tries to run its own code in the action: a package and a module the script imports
    (workspace / "reconciler").mkdir()
    (workspace / "reconciler" / "__init__.py").write_text(f'open("{sentinel}", "w").write("package ran")\n')
    (workspace / "httpx.py").write_text(f'open("{sentinel}", "w").write("module ran")\n')
    with StandInGitHub() as github:
        github.seed("Looks good", "<!-- reconcile-plan:000000000000 path=other --> another job's plan", "nit: typo")
        yield {"workspace": workspace, "deployments": deployments, "doc": doc, "flow": flow, "sentinel": sentinel,
               "source": f"gh-action-{unique}", "api": prefect_api_url, "github": github,
               "run": Runner(workspace, github, tmp_path / "runner")}


def test_plan_comments_then_updates_one_comment_and_apply_converges(setup):
    run, github, api, source = setup["run"], setup["github"], setup["api"], setup["source"]
    inputs = {"path": "deployments", "api_url": api, "source": source}

    first = run(**inputs)
    assert first.returncode == 0, first
    assert first.outputs["has-changes"] == "true", first
    plan_json = json.loads(Path(first.outputs["plan-json"]).read_text(encoding="utf-8"))
    assert [(a["action"], a["deployment"]) for a in plan_json["actions"]] == [("create", f"{setup['flow']}/nightly")]
    assert "$ reconcile check deployments" in first.log and "$ reconcile plan deployments --format markdown" in first.log
    assert "✅ **check:** 1 manifest(s) match their flow code." in first.summary
    assert f"`{setup['flow']}/nightly`" in first.summary and "create" in first.summary
    [ours] = github.ours()
    first_body = ours["body"]
    assert f"`{setup['flow']}/nightly`" in ours["body"] and "[workflow run](https://github.com/acme/flows/actions/runs/777)" in ours["body"]
    assert first.outputs["comment-url"] == ours["html_url"]
    assert len(github.comments) == 4 and all(authorised for _, _, authorised in github.log)

    write_manifest(setup["deployments"], edited(setup["doc"], tags=["v2"]))
    second = run(**inputs)
    assert second.returncode == 0, second
    [updated] = github.ours()
    assert updated["id"] == ours["id"] and len(github.comments) == 4
    assert updated["body"] != first_body and "v2" in updated["body"] and "v2" not in first_body
    assert [m for m, _, _ in github.writes()] == ["POST", "PATCH"]
    assert github.comments[0]["body"] == "Looks good" and github.comments[1]["body"].endswith("another job's plan")

    applied = run(event_name="push", path="deployments", mode="apply", api_url=api, source=source)
    assert applied.returncode == 0, applied
    assert applied.outputs["has-changes"] == "true" and "✅ **applied.**" in applied.summary
    assert f"{setup['flow']}/nightly" in applied.summary
    with Server(api) as server:
        assert server.deployment(setup["flow"], "nightly")["tags"] == ["v2"]

    again = run(**inputs)
    assert again.returncode == 0, again
    assert again.outputs["has-changes"] == "false" and "No changes." in again.summary
    [final] = github.ours()
    assert final["id"] == ours["id"] and "No changes." in final["body"]
    assert not setup["sentinel"].exists(), "code from the pull request ran"


def test_fail_on_changes_fails_the_step_and_still_writes_the_plan(setup):
    result = setup["run"](path="deployments", api_url=setup["api"], source=setup["source"], fail_on_changes="true")
    assert result.returncode == 1, result
    assert "::error::the plan has changes and fail-on-changes is true" in result.log
    assert result.outputs["has-changes"] == "true" and len(setup["github"].ours()) == 1


def test_a_broken_manifest_is_shown_in_the_comment_and_the_summary_and_fails_the_step(setup):
    bad = edited(setup["doc"], schedules=[{"schedule": {"cron": "61 * * * *", "timezone": "UTC"}, "active": True}])
    path = write_manifest(setup["deployments"], bad)
    result = setup["run"](path="deployments", api_url=setup["api"], source=setup["source"])
    assert result.returncode == 1, result
    assert result.outputs["has-changes"] == "" and result.outputs["plan-json"] == ""
    [ours] = setup["github"].ours()
    for text in (ours["body"], result.summary):
        assert "❌ **`reconcile plan` failed**" in text and "61 * * * *" in text and path.name in text
    assert f"::error file=deployments/{path.name},line=" in result.log


def test_an_api_key_goes_only_to_the_api_url_input_never_to_the_pull_requests_reconcile_yaml(setup):
    key = "pnu_never_print_this_key"
    with StandInGitHub() as thief:  # a server the pull request would like the key sent to
        (setup["deployments"] / "reconcile.yaml").write_text(f"api_url: {thief.url}/api\n", encoding="utf-8")
        refused = setup["run"](path="deployments", api_key=key, source=setup["source"])
        assert refused.returncode == 1, refused
        assert "::error::api-key is set but api-url is not" in refused.log and "$ reconcile" not in refused.log

        result = setup["run"](path="deployments", api_key=key, api_url=setup["api"], source=setup["source"])
        assert result.returncode == 0, result
        assert thief.log == []
    assert f"::add-mask::{key}" in result.log
    shown = result.log.replace(f"::add-mask::{key}", "")
    assert key not in shown and key not in result.summary and key not in json.dumps(setup["github"].comments)


def test_a_refused_comment_is_a_warning_and_the_plan_is_still_in_the_summary(setup):
    setup["github"].refuse_writes = 403
    result = setup["run"](path="deployments", api_url=setup["api"], source=setup["source"])
    assert result.returncode == 0, result
    assert "::warning::could not write the pull request comment: POST" in result.log and "403" in result.log
    assert f"`{setup['flow']}/nightly`" in result.summary and result.outputs["comment-url"] == ""


def test_a_failed_check_is_in_the_comment_and_stops_an_apply(setup):
    flow_file = setup["deployments"] / "flow.py"
    flow_file.write_text(flow_file.read_text().replace("label: str", "label: int").replace('"x"', "3"))
    planned = setup["run"](path="deployments", api_url=setup["api"], source=setup["source"])
    assert planned.returncode == 1, planned
    [ours] = setup["github"].ours()
    assert "❌ **`reconcile check` failed**" in ours["body"] and "label" in ours["body"]
    assert planned.outputs["has-changes"] == "true"  # the plan still ran, so the reviewer sees both

    applied = setup["run"](event_name="push", path="deployments", mode="apply", api_url=setup["api"],
                           source=setup["source"])
    assert applied.returncode == 1 and "Nothing was applied." in applied.summary, applied
    assert "$ reconcile apply" not in applied.log
    with Server(setup["api"]) as server:
        assert server.deployment(setup["flow"], "nightly") is None


def test_a_pull_request_that_renames_the_source_fails_on_its_conflicts(setup):
    """Renaming `source:` turns every deployment into another source's: the check goes red and says why."""
    api, source = setup["api"], setup["source"]
    applied = setup["run"](event_name="push", path="deployments", mode="apply", api_url=api, source=source)
    assert applied.returncode == 0, applied
    renamed = setup["run"](path="deployments", api_url=api, source=source + "-renamed")
    assert renamed.returncode == 1, renamed
    [ours] = setup["github"].ours()
    for text in (ours["body"], renamed.summary):
        assert "❌ **`reconcile plan` failed**" in text and "belongs to another source" in text
        assert f"`{setup['flow']}/nightly`" in text and "conflict" in text   # the plan itself is shown as well
    with Server(api) as server:
        assert server.inventory(source) == {f"{setup['flow']}/nightly"}
