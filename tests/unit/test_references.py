"""Every reference to this repository a user is told to copy (`uses: <owner>/<repo>@REF`, pre-commit's
`rev: REF`) names a branch or commit that exists, so a copied snippet resolves.

Placeholders such as `<40-hex commit sha>` are not references and are skipped. A shallow clone (CI
checkouts) does not hold the history to check against: the test skips there and runs in `.ci/run`."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [REPO_ROOT / "README.md", REPO_ROOT / "action.yml", REPO_ROOT / ".pre-commit-hooks.yaml",
             *sorted((REPO_ROOT / "examples").rglob("*.yml")), *sorted((REPO_ROOT / "examples").rglob("*.md"))]
USES = re.compile(r"<owner>/<repo>@([^\s`'\")]+)")
REV = re.compile(r"^[#\s-]*rev:\s*([^\s#]+)", re.MULTILINE)


def git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=30)


def references() -> list[tuple[str, str]]:
    found = []
    for path in DOCUMENTS:
        if not path.exists():
            continue
        text = path.read_text(encoding="utf-8")
        found += [(path.relative_to(REPO_ROOT).as_posix(), ref) for ref in USES.findall(text) + REV.findall(text)
                  if not ref.startswith("<")]
    return found


def resolves(ref: str) -> bool:
    return any(git("rev-parse", "--verify", "--quiet", f"{name}^{{commit}}").returncode == 0
               for name in (ref, f"origin/{ref}", f"refs/remotes/origin/{ref}"))


def test_the_documents_show_references():
    refs = references()
    assert ("README.md", "main") in refs and (".pre-commit-hooks.yaml", "main") in refs, refs
    assert {path for path, _ in refs} >= {"README.md", "action.yml", "examples/github/reconcile-plan.yml"}


def test_every_reference_resolves_in_this_repository():
    inside = git("rev-parse", "--is-inside-work-tree")
    if inside.returncode != 0:
        pytest.skip("not a git checkout")
    if git("rev-parse", "--is-shallow-repository").stdout.strip() == "true":
        pytest.skip("a shallow clone has no history to resolve references against")
    missing = [f"{path}: {ref}" for path, ref in references() if not resolves(ref)]
    assert not missing, f"references a user would copy that do not exist here: {missing}"


def test_a_tag_that_does_not_exist_is_caught():
    assert not resolves("v0.1.0-no-such-tag")
