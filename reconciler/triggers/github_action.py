"""The GitHub Action's script: `python -I -m reconciler.triggers.github_action`, run by action.yml.

Inputs arrive as INPUT_* variables (action.yml maps each input explicitly, never into the shell text). The
installed `reconcile` runs as real subprocesses (`check` + `plan`, or `apply`), so the log shows each command.
Results go to $GITHUB_STEP_SUMMARY, $GITHUB_OUTPUT and, for a plan on a pull request, one sticky comment.

Nothing from the checkout is executed: `-I` keeps the working directory off sys.path, reconcile reads flow code
as syntax trees only, and with an API key the API URL never comes from the (pull request's) reconcile.yaml.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

from .github_comments import (
    COMMENT_LIMIT,
    GitHub,
    GitHubError,
    comment_key,
    fenced,
    marker,
    truncate,
)
from .github_inputs import ActionError, Inputs, child_env, common_args, read_inputs
from .github_run import Ran, annotate, run
from .github_workflow import command, write_outputs, write_summary


def failure(what: str, ran: Ran) -> str:
    shown = (ran.stderr + ("\n" + ran.stdout if ran.stdout.strip() else "")).strip() or "(no output)"
    return f"❌ **`reconcile {what}` failed** (exit status {ran.code}):\n\n{fenced(shown)}"


def check_section(ran: Ran) -> str:
    if ran.code == 0:
        return f"✅ **check:** {ran.stdout.strip()}\n"
    return failure("check", ran)


# ----------------------------------------------------------------------------- the two modes


@dataclass
class Context:
    env: Mapping[str, str]
    inputs: Inputs
    child: dict[str, str]

    @property
    def run_url(self) -> Optional[str]:
        e = self.env
        if e.get("GITHUB_REPOSITORY") and e.get("GITHUB_RUN_ID"):
            return f"{e.get('GITHUB_SERVER_URL', 'https://github.com')}/{e['GITHUB_REPOSITORY']}/actions/runs/{e['GITHUB_RUN_ID']}"
        return None

    def event(self) -> dict:
        path = self.env.get("GITHUB_EVENT_PATH")
        if not path or not os.path.isfile(path):
            return {}
        try:
            return json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            print(command("warning", f"cannot read the event payload {path}: {exc}"))
            return {}


def plan_mode(ctx: Context) -> int:
    inputs = ctx.inputs
    key = comment_key(inputs.path, inputs.source)
    sections, failed = [f"## reconcile plan: `{inputs.path}`\n"], False
    if inputs.check:
        checked = run(["check", inputs.path], ctx.child)
        annotate(checked, "reconcile check")
        sections.append(check_section(checked))
        failed = checked.code != 0
    temp = Path(ctx.env.get("RUNNER_TEMP") or os.environ.get("TMPDIR") or "/tmp")
    plan_json = temp / f"reconcile-plan-{key}.json"
    planned = run(["plan", inputs.path, "--format", "markdown", "--detailed-exitcode", "--out", str(plan_json),
                   *common_args(inputs)], ctx.child)
    has_changes = ""
    if planned.code in (0, 2):
        has_changes = "true" if planned.code == 2 else "false"
        sections.append(planned.stdout)
    else:
        failed = True
        annotate(planned, "reconcile plan")
        sections.append(failure("plan", planned))
        if planned.stdout.strip():    # a plan refused for its conflicts is still shown
            sections.append(planned.stdout)
    report = "\n".join(s.rstrip("\n") + "\n" for s in sections)
    write_summary(ctx.env, report, "the step's log and the `plan-json` output")
    outputs = {"has-changes": has_changes, "plan-json": str(plan_json) if has_changes else "", "comment-url": ""}
    outputs["comment-url"] = comment(ctx, key, report)
    write_outputs(ctx.env, outputs)
    if failed:
        print(command("error", "reconcile check or plan failed; the reason is in the step summary and above"))
        return 1
    if inputs.fail_on_changes and has_changes == "true":
        print(command("error", "the plan has changes and fail-on-changes is true"))
        return 1
    return 0


def comment(ctx: Context, key: str, report: str) -> str:
    """Create or update the sticky comment on the pull request; a failure is only a warning. Returns its URL."""
    inputs, event = ctx.inputs, ctx.event()
    pr = event.get("pull_request") or {}
    if not inputs.comment:
        return ""
    if not pr.get("number"):
        print(f"not a pull request event ({ctx.env.get('GITHUB_EVENT_NAME', 'unknown')}): no comment")
        return ""
    repo = ctx.env.get("GITHUB_REPOSITORY") or ((event.get("repository") or {}).get("full_name"))
    if not inputs.token or not repo:
        print(command("warning", "no github-token or GITHUB_REPOSITORY: the plan is only in the step summary"))
        return ""
    head = ((pr.get("head") or {}).get("sha") or "")[:7]
    footer = f"\n---\n<sub>reconcile plan for {head or 'this pull request'}" + \
             (f" · [workflow run]({ctx.run_url})" if ctx.run_url else "") + "</sub>\n"
    note = ("> ⚠️ Truncated: a comment holds at most 65536 characters. The whole plan is in the step summary"
            + (f" of [this run]({ctx.run_url})." if ctx.run_url else "."))
    body = truncate(marker(inputs.path, inputs.source) + "\n" + report + footer, COMMENT_LIMIT, note + footer)
    try:
        with GitHub(inputs.token, ctx.env.get("GITHUB_API_URL") or "https://api.github.com") as gh:
            done, made = gh.upsert_comment(repo, int(pr["number"]), key, body)
    except GitHubError as exc:
        hint = " (a pull request from a fork gets a read-only token)" if " 403 " in str(exc) else ""
        print(command("warning", f"could not write the pull request comment: {exc}{hint}; "
                                 "the plan is in the step summary"))
        return ""
    print(f"{done} comment {made.get('html_url') or made.get('id')}")
    return str(made.get("html_url") or "")


def apply_mode(ctx: Context) -> int:
    inputs = ctx.inputs
    if ctx.env.get("GITHUB_EVENT_NAME", "").startswith("pull_request"):
        print(command("warning", "mode apply on a pull_request event applies the pull request's manifests"))
    sections = [f"## reconcile apply: `{inputs.path}`\n"]
    if inputs.check:
        checked = run(["check", inputs.path], ctx.child)
        annotate(checked, "reconcile check")
        sections.append(check_section(checked))
        if checked.code != 0:
            sections.append("Nothing was applied.\n")
            write_summary(ctx.env, "\n".join(sections))
            write_outputs(ctx.env, {"has-changes": ""})
            print(command("error", "reconcile check failed: nothing was applied"))
            return 1
    applied = run(["apply", inputs.path, "--detailed-exitcode", *common_args(inputs)], ctx.child)
    if applied.code in (0, 2):
        verdict = "✅ **applied.**" if applied.code == 2 else "✅ **no changes:** the server already matches."
        sections.append(f"{verdict}\n\n{fenced(applied.stdout or '(no output)')}")
    else:
        annotate(applied, "reconcile apply")
        sections.append(failure("apply", applied))
    write_summary(ctx.env, "\n".join(s.rstrip("\n") + "\n" for s in sections))
    write_outputs(ctx.env, {"has-changes": {0: "false", 2: "true"}.get(applied.code, "")})
    return 0 if applied.code in (0, 2) else 1


def main(env: Optional[Mapping[str, str]] = None) -> int:
    env = dict(os.environ if env is None else env)
    if hasattr(sys.stdout, "reconfigure"):  # the runner reads the log as UTF-8, whatever the locale says
        sys.stdout.reconfigure(encoding="utf-8", errors="replace")
    try:
        inputs = read_inputs(env)
    except ActionError as exc:
        print(command("error", str(exc)))
        return 1
    for secret in (inputs.api_key, inputs.token):
        if secret:
            print(f"::add-mask::{secret}")
    ctx = Context(env, inputs, child_env(env, inputs))
    return plan_mode(ctx) if inputs.mode == "plan" else apply_mode(ctx)


if __name__ == "__main__":
    raise SystemExit(main())
