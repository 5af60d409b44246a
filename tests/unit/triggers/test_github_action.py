"""The GitHub Action's pure parts and its REST calls (HTTP faked at the transport seam), and action.yml's wiring.

The whole script against a real Prefect server and a stand-in GitHub is in tests/integration/triggers/test_github_action.py.
"""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml

from github_outputs import parse_output_file
from reconciler.triggers import github_inputs
from reconciler.triggers import github_workflow as workflow
from reconciler.triggers.github_comments import (COMMENT_LIMIT, GitHub, GitHubError, comment_key, fenced, is_ours,
                                                  marker, summary_size, truncate)

REPO_ROOT = Path(__file__).resolve().parents[3]
API = "https://api.github.test"
TOKEN = "ghs_unit_token"


# ----------------------------------------------------------------------------- outputs


@pytest.mark.parametrize("value", [
    "true", "", "/tmp/runner/reconcile-plan-abc.json", "a=b=c",
    "line one\nline two", "ends with newline\n", "x<<EOF\nEOF\ny",
], ids=["word", "empty", "path", "equals", "two-lines", "trailing-newline", "heredoc-lookalike"])
def test_outputs_read_back_as_written(tmp_path, value):
    target = tmp_path / "output"
    target.write_text("earlier=kept\n", encoding="utf-8")  # the file is appended to, never replaced
    workflow.write_outputs({"GITHUB_OUTPUT": str(target)}, {"first": value, "second": "2"})
    assert parse_output_file(target.read_text(encoding="utf-8")) == {"earlier": "kept", "first": value, "second": "2"}


def test_single_line_output_uses_the_simple_form_and_multiline_a_fresh_delimiter():
    assert workflow.format_output("has-changes", "true") == "has-changes=true\n"
    text = workflow.format_output("body", "a\nb")
    first, *_ = text.split("\n")
    name, delimiter = first.split("<<")
    assert name == "body" and delimiter.startswith("ghadelimiter_") and text.endswith(f"\n{delimiter}\n")


# ----------------------------------------------------------------------------- the marker


def test_marker_is_the_same_for_two_spellings_of_the_path_and_differs_per_path_and_source():
    assert marker("./deployments/", "acme/prod") == marker("deployments", "acme/prod")
    keys = {comment_key("deployments", "acme/prod"), comment_key("deployments", "acme/staging"),
            comment_key("other", "acme/prod"), comment_key("deployments", None)}
    assert len(keys) == 4


def test_marker_is_one_hidden_html_comment_whatever_the_source_says():
    text = marker("deploy\nments", "evil --> <script>x</script> -- ")
    assert text.startswith("<!--") and text.endswith("-->")
    assert text.count("-->") == 1 and "\n" not in text and "--" not in text[4:-3]


def test_is_ours_needs_our_key_at_the_start_of_the_body():
    key = comment_key("deployments", "acme/prod")
    ours = marker("deployments", "acme/prod") + "\n## plan"
    assert is_ours(ours, key)
    assert not is_ours(marker("deployments", "acme/staging") + "\n## plan", key)
    assert not is_ours("I copied this: " + ours, key)
    assert not is_ours(None, key)


# ----------------------------------------------------------------------------- Markdown


def test_fenced_output_is_longer_than_any_backtick_run_inside():
    block = fenced("error: ```` in a name")
    assert block.startswith("`````\n") and block.endswith("\n`````\n")
    assert fenced("plain").startswith("```\nplain\n```")


def test_short_text_is_not_truncated():
    assert truncate("small\n", 100, "note") == "small\n"


def long_plan(rows: int) -> str:
    head = "## reconcile plan\n\n| action | deployment |\n|---|---|\n| update | `flow/deployment-0` |\n\n"
    details = "<details><summary>Field changes</summary>\n\n```diff\n" + \
              "".join(f"~ flow/deployment-{i}\n    parameters.n: {i} → {i + 1}\n" for i in range(rows)) + "```\n\n</details>\n"
    return head + details + "\n**Plan: 0 to create**\n"


def test_a_comment_over_the_limit_is_cut_at_a_line_with_its_fence_and_details_closed_and_the_note_last():
    text = long_plan(4000)
    assert len(text) > COMMENT_LIMIT
    note = "> Truncated: the whole plan is in the step summary."
    cut = truncate(text, COMMENT_LIMIT, note)
    assert len(cut) <= COMMENT_LIMIT
    assert cut.rstrip().endswith(note)
    kept, closers = cut.split("\n```\n", 1)[0] + "\n", cut.split("\n```\n", 1)[1]
    assert text.startswith(kept) and len(kept) > COMMENT_LIMIT - 1000  # the start of the plan, whole lines
    assert closers == f"\n</details>\n\n{note}\n"


def test_the_summary_limit_counts_bytes_not_characters():
    text = ("é" * 50 + "\n") * 1000  # 2 bytes a character
    cut = truncate(text, 6000, "note", summary_size)
    assert summary_size(cut) <= 6000 and summary_size(cut) > 5000
    assert summary_size(truncate(text, 6000, "note")) > 6000  # counted in characters it would not fit


# ----------------------------------------------------------------------------- the REST calls


class FakeGitHub:
    """A MockTransport handler holding one pull request's comments, paged `page_size` at a time."""

    def __init__(self, bodies: list[str], page_size: int = 100, fail: dict | None = None):
        self.comments = [{"id": 1000 + i, "body": b, "html_url": f"https://github.test/c/{1000 + i}"}
                         for i, b in enumerate(bodies)]
        self.page_size, self.fail = page_size, fail or {}
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        if request.method in self.fail:
            return httpx.Response(self.fail[request.method], json={"message": "Resource not accessible by integration"})
        path = request.url.path
        if request.method == "GET" and path == "/repos/acme/flows/issues/7/comments":
            page = int(request.url.params.get("page", "1"))
            size = min(int(request.url.params.get("per_page", "30")), self.page_size)
            chunk = self.comments[(page - 1) * size: page * size]
            headers = {}
            if page * size < len(self.comments):
                headers["link"] = f'<{API}{path}?per_page={size}&page={page + 1}>; rel="next"'
            return httpx.Response(200, json=chunk, headers=headers)
        if request.method == "POST" and path == "/repos/acme/flows/issues/7/comments":
            made = {"id": 2000 + len(self.comments), "body": json.loads(request.content)["body"], "html_url": "new"}
            self.comments.append(made)
            return httpx.Response(201, json=made)
        m = re.fullmatch(r"/repos/acme/flows/issues/comments/(\d+)", path)
        if request.method == "PATCH" and m:
            found = next(c for c in self.comments if c["id"] == int(m.group(1)))
            found["body"] = json.loads(request.content)["body"]
            return httpx.Response(200, json=found)
        return httpx.Response(404, json={"message": "Not Found"})


def client(fake: FakeGitHub) -> GitHub:
    return GitHub(TOKEN, API, transport=httpx.MockTransport(fake), retry_delay=0)


def test_comments_follow_every_next_page():
    fake = FakeGitHub([f"comment {i}" for i in range(7)], page_size=3)
    assert [c["body"] for c in client(fake).comments("acme/flows", 7)] == [f"comment {i}" for i in range(7)]
    assert [r.url.params.get("page", "1") for r in fake.seen] == ["1", "2", "3"]
    assert fake.seen[0].headers["accept"] == "application/vnd.github+json"


KEY = comment_key("deployments", "acme/prod")
OURS = marker("deployments", "acme/prod")


def test_upsert_updates_our_comment_on_a_later_page_and_leaves_the_others():
    bodies = ["LGTM", marker("deployments", "acme/staging") + "\nstaging plan", "nit", OURS + "\nold plan", "+1"]
    fake = FakeGitHub(bodies, page_size=2)
    done, made = client(fake).upsert_comment("acme/flows", 7, KEY, OURS + "\nnew plan")
    assert done == "updated" and made["id"] == 1003
    assert [c["body"] for c in fake.comments] == bodies[:3] + [OURS + "\nnew plan", "+1"]
    assert [r.method for r in fake.seen] == ["GET", "GET", "GET", "PATCH"]


def test_upsert_creates_the_comment_when_none_is_ours():
    fake = FakeGitHub(["LGTM", marker("deployments", "acme/staging") + "\nstaging plan"])
    done, _ = client(fake).upsert_comment("acme/flows", 7, KEY, OURS + "\nplan")
    assert done == "created"
    assert [c["body"] for c in fake.comments][-1] == OURS + "\nplan" and len(fake.comments) == 3


def test_a_refused_write_is_one_line_with_the_status_and_githubs_message():
    fake = FakeGitHub([], fail={"POST": 403})
    with pytest.raises(GitHubError) as caught:
        client(fake).upsert_comment("acme/flows", 7, KEY, OURS)
    assert str(caught.value) == "POST /repos/acme/flows/issues/7/comments → 403 Resource not accessible by integration"


def test_a_next_page_on_another_host_is_not_followed_with_the_token():
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.host == "api.github.test", "the token was sent to another host"
        return httpx.Response(200, json=[], headers={"link": '<https://evil.test/steal?page=2>; rel="next"'})
    with pytest.raises(GitHubError, match="another host"):
        GitHub(TOKEN, API, transport=httpx.MockTransport(handler)).comments("acme/flows", 7)


def test_a_bad_gateway_is_retried():
    answers = iter([httpx.Response(502, text="bad gateway"), httpx.Response(200, json=[{"id": 1, "body": "x"}])])
    gh = GitHub(TOKEN, API, transport=httpx.MockTransport(lambda r: next(answers)), retry_delay=0)
    assert gh.comments("acme/flows", 7) == [{"id": 1, "body": "x"}]


# ----------------------------------------------------------------------------- inputs and the child environment


def env_with(**inputs: str) -> dict[str, str]:
    return {github_inputs.INPUTS[name.replace("_", "-")]: value for name, value in inputs.items()}


def test_an_api_key_without_an_api_url_is_refused_in_one_line_that_does_not_show_the_key():
    with pytest.raises(github_inputs.ActionError) as caught:
        github_inputs.read_inputs(env_with(api_key="pnu_secret"))
    assert "api-url" in str(caught.value) and "pnu_secret" not in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(github_inputs.ActionError):  # a key from the job's environment counts too
        github_inputs.read_inputs({**env_with(), "PREFECT_API_KEY": "pnu_secret"})


def test_an_api_key_with_prefect_api_url_in_the_environment_is_accepted():
    got = github_inputs.read_inputs({**env_with(api_key="pnu_secret"), "PREFECT_API_URL": "https://prefect.test/api"})
    assert (got.api_url, got.api_key) == ("https://prefect.test/api", "pnu_secret")
    assert github_inputs.common_args(got) == ["--api-url", "https://prefect.test/api"]


@pytest.mark.parametrize("inputs, message", [
    ({"mode": "destroy"}, "input mode must be plan or apply, not 'destroy'"),
    ({"fail_on_changes": "yes"}, "input fail-on-changes must be true or false, not 'yes'"),
    ({"comment": "1"}, "input comment must be true or false, not '1'"),
], ids=["mode", "fail-on-changes", "comment"])
def test_bad_inputs_are_named(inputs, message):
    with pytest.raises(github_inputs.ActionError, match=re.escape(message)):
        github_inputs.read_inputs(env_with(**inputs))


def test_defaults_when_inputs_are_empty():
    got = github_inputs.read_inputs(env_with(path="", mode="", comment="", fail_on_changes=""))
    assert (got.path, got.mode, got.comment, got.fail_on_changes, got.check, got.api_url) == (".", "plan", True, False, True, None)


def test_reconcile_gets_the_key_by_environment_and_none_of_the_runs_tokens():
    env = {**env_with(api_key="pnu_secret", api_url="https://prefect.test/api", github_token="ghs_x"),
           "GITHUB_TOKEN": "ghs_x", "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "oidc", "PATH": "/usr/bin"}
    child = github_inputs.child_env(env, github_inputs.read_inputs(env))
    assert child["PREFECT_API_KEY"] == "pnu_secret" and child["PATH"] == "/usr/bin"
    assert not any(k.startswith("INPUT_") for k in child)
    assert "ghs_x" not in child.values() and "oidc" not in child.values()


def test_manifest_errors_become_annotations_on_their_file_and_line():
    stderr = ("error: deployments/etl-deployment.yaml:17:7: schedules.0.schedule.cron: invalid cron '61 * * * *'\n"
              "error: cannot reach the Prefect API at http://x/api: 100% down\n2 error(s); nothing was changed.\n")
    assert workflow.annotations(stderr, "reconcile plan") == [
        "::error file=deployments/etl-deployment.yaml,line=17,col=7,title=reconcile plan::"
        "schedules.0.schedule.cron: invalid cron '61 * * * *'",
        "::error title=reconcile plan::cannot reach the Prefect API at http://x/api: 100%25 down",
    ]


# ----------------------------------------------------------------------------- action.yml runs this script


def action_yml() -> dict:
    return yaml.safe_load((REPO_ROOT / "action.yml").read_text(encoding="utf-8"))


def test_action_yml_passes_every_script_input_to_the_script_by_environment():
    spec = action_yml()
    step = next(s for s in spec["runs"]["steps"] if s.get("id") == "reconcile")
    assert re.fullmatch(r'"\$RECONCILE_PYTHON" -I -m reconciler\.triggers\.github_action', step["run"].strip())
    assert step["env"]["RECONCILE_PYTHON"] == "${{ steps.install.outputs.python }}"
    for name, variable in github_inputs.INPUTS.items():
        assert name in spec["inputs"], f"the script reads {name}, action.yml has no such input"
        assert step["env"].get(variable) == f"${{{{ inputs.{name} }}}}", f"{name} does not reach {variable}"
    assert not re.search(r"\$\{\{", step["run"]), "inputs must not be pasted into the shell text"


def test_every_input_of_action_yml_is_used_and_every_output_comes_from_the_script_step():
    spec = action_yml()
    text = json.dumps(spec["runs"])
    for name in spec["inputs"]:
        assert f"inputs.{name} " in text, f"input {name} is declared but never used"
    for name, output in spec["outputs"].items():
        assert output["value"] == f"${{{{ steps.reconcile.outputs.{name} }}}}"


def test_every_run_step_is_valid_bash():
    for step in action_yml()["runs"]["steps"]:
        if "run" in step:
            assert step["shell"] == "bash"
            result = subprocess.run(["bash", "-n", "-c", step["run"]], capture_output=True, text=True)
            assert result.returncode == 0, f"{step['name']}: {result.stderr}"


def test_reconcile_is_installed_from_the_actions_own_directory():
    spec = action_yml()
    setup = next(s for s in spec["runs"]["steps"] if s.get("id") == "python")
    assert setup["uses"].startswith("actions/setup-python@") and setup["with"]["update-environment"] is False
    install = next(s for s in spec["runs"]["steps"] if s.get("id") == "install")
    assert install["working-directory"] == "${{ github.action_path }}"
    assert 'pip install' in install["run"] and '"$GITHUB_ACTION_PATH' in install["run"]
    assert "GITHUB_WORKSPACE" not in install["run"]
