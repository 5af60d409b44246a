"""Rendering plans: golden text, markdown and JSON, and no colour unless asked for.

Golden files live in tests/unit/golden/.  After a deliberate change to the
output, regenerate them and review the diff before committing:

    UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/render/test_render.py
    git diff tests/unit/golden/
"""
from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

import pytest

from reconciler.cli import app as cli
from reconciler.render import markdown, text

try:
    from .. import prefect_fake as pf
except ImportError:
    import prefect_fake as pf

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
OTHER_SOURCE = "gitlab.com/platform/shared-flows"

CRON = {"schedule": {"cron": "0 6 * * *", "timezone": "Europe/Amsterdam", "day_or": True}, "active": True}
INTERVAL = {"schedule": {"interval": 900, "anchor_date": "2024-01-01T00:00:00+00:00"}, "active": True}
PROD = {"type": "process", "_block_document_id": "b1b1b1b1-0000-4000-8000-000000000001",
        "_block_document_name": "prod", "_is_anonymous": False, "block_type_slug": "process",
        "_block_type_slug": "process"}


def assert_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(f"{path} is missing; create it with UPDATE_GOLDEN=1 and review it", pytrace=False)
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, f"{name} differs from the golden file (UPDATE_GOLDEN=1 regenerates it)"


def every_kind_docs():
    return [
        pf.manifest("kept", schedules=[CRON]),
        pf.manifest("hourly", schedules=[CRON, INTERVAL], description="Cat facts every hour",
                    tags=["cats", "facts"], parameters={"url": "https://catfact.ninja/facts", "n": 5}),
        pf.manifest("legacy", version="2"),
        pf.manifest("theirs"),
        pf.manifest("daily", flow="Weather Summary", schedules=[INTERVAL], infrastructure=PROD,
                    tags=["weather"], parameters={"url": "https://api.weather.test"},
                    infra_overrides={"env.REGION": "eu"}),
    ]


def every_kind_fake() -> pf.FakePrefect:
    """One deployment per action kind, plus a conflict and an inventory entry already gone."""
    fake = pf.FakePrefect()
    fake.add_block_document("process", "prod", {"type": "process", "stream_output": True})
    fake.deploy_manifest(pf.manifest("kept", schedules=[CRON]))
    hourly = fake.deploy_manifest(pf.manifest("hourly", schedules=[CRON], parameters={"url": "http://old.test"},
                                              tags=["cats"]))
    hourly.update(paused=True, is_schedule_active=False)  # paused in the UI
    fake.deploy_manifest(pf.manifest("legacy", version="1"))
    fake.deploy_manifest(pf.manifest("theirs"))
    fake.deploy_manifest(pf.manifest("retired"))
    fake.set_inventory(pf.SOURCE, ["Cat Facts/kept", "Cat Facts/hourly", "Cat Facts/retired", "Cat Facts/vanished"])
    fake.set_inventory(OTHER_SOURCE, ["Cat Facts/theirs"])
    return fake


@pytest.fixture
def every_kind():
    return pf.make_plan(every_kind_fake(), every_kind_docs()).plan


def test_fixture_plan_has_every_kind(every_kind):
    assert every_kind.summary == {"create": 1, "update": 1, "delete": 1, "adopt": 1, "noop": 1, "conflict": 1, "upload": 0}
    assert every_kind.notices


def test_text_golden(every_kind):
    assert_golden("plan.txt", text.render_plan(every_kind, colour=False))


def test_markdown_golden(every_kind):
    assert_golden("plan.md", markdown.render_plan(every_kind))


def test_json_golden(every_kind):
    assert_golden("plan.json", every_kind.dumps())


def test_text_shows_each_kind_with_its_symbol(every_kind):
    out = text.render_plan(every_kind)
    assert re.search(r"^  \+ create +Weather Summary/daily", out, re.M)
    assert re.search(r"^  ~ update +Cat Facts/hourly", out, re.M)
    assert re.search(r"^  = adopt +Cat Facts/legacy", out, re.M)
    assert re.search(r"^  - delete +Cat Facts/retired", out, re.M)
    assert re.search(r"^  ! conflict Cat Facts/theirs .*managed by source 'gitlab.com/platform/shared-flows'", out, re.M)
    assert "Cat Facts/kept" not in out  # in sync: counted, not listed
    assert "Plan: 1 to create, 1 to update, 1 to delete, 1 to adopt. 1 in sync." in out
    assert "parameters.url" in out and "is_schedule_active: false → true" in out


def test_markdown_is_a_table_with_a_diff_block(every_kind):
    out = markdown.render_plan(every_kind)
    assert out.startswith(f"### reconcile plan for `{pf.SOURCE}`")
    rows = [line for line in out.splitlines() if line.startswith("| ") and not line.startswith("| action |")]
    assert len(rows) == 5  # create, update, adopt, delete, conflict
    assert "```diff" in out and "</details>" in out


def test_no_changes_says_so():
    fake = pf.FakePrefect()
    docs = [pf.manifest("a"), pf.manifest("b")]
    for doc in docs:
        fake.deploy_manifest(doc)
    fake.set_inventory(pf.SOURCE, ["Cat Facts/a", "Cat Facts/b"])
    plan = pf.make_plan(fake, docs).plan
    assert text.render_plan(plan).splitlines()[-1] == "No changes. 2 deployments in sync."
    assert "**No changes.** 2 deployments in sync." in markdown.render_plan(plan)


# -- colour ---------------------------------------------------------------------------------

class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_when_asked(every_kind):
    assert not ANSI.search(text.render_plan(every_kind, colour=False))
    assert ANSI.search(text.render_plan(every_kind, colour=True))  # so the check above can fail
    assert ANSI.sub("", text.render_plan(every_kind, colour=True)) == text.render_plan(every_kind, colour=False)


def test_markdown_and_json_never_have_colour(every_kind):
    assert not ANSI.search(markdown.render_plan(every_kind))
    assert not ANSI.search(every_kind.dumps())


@pytest.mark.parametrize("tty, no_color, expected", [
    (False, None, False),
    (False, "1", False),
    (True, "1", False),
    (True, "", True),
    (True, None, True),
], ids=["pipe", "pipe-NO_COLOR", "terminal-NO_COLOR", "terminal-empty-NO_COLOR", "terminal"])
def test_colour_needs_a_terminal_and_no_NO_COLOR(monkeypatch, tty, no_color, expected):
    if no_color is None:
        monkeypatch.delenv("NO_COLOR", raising=False)
    else:
        monkeypatch.setenv("NO_COLOR", no_color)
    stream = Terminal() if tty else io.StringIO()
    assert cli._colour(stream) is expected


@pytest.mark.parametrize("command", [["plan"], ["status"], ["--dry-run"]])
def test_cli_output_to_a_pipe_has_no_ansi(monkeypatch, capsys, tmp_path, command):
    fake = every_kind_fake()
    pf.route_default_transport(monkeypatch, fake)
    monkeypatch.delenv("NO_COLOR", raising=False)
    root = pf.write_manifests(tmp_path, every_kind_docs())
    code = cli.main([*command, str(root), "--api-url", pf.API_URL, "--source", pf.SOURCE])
    out, err = capsys.readouterr()
    assert code == (0 if command == ["status"] else 1), err   # the plan has a conflict: plan fails, status reports
    assert "Cat Facts/hourly" in out
    assert not ANSI.search(out) and not ANSI.search(err)


def test_cli_json_is_the_plan_json(monkeypatch, capsys, tmp_path):
    fake = every_kind_fake()
    pf.route_default_transport(monkeypatch, fake)
    root = pf.write_manifests(tmp_path, every_kind_docs())
    code = cli.main(["plan", str(root), "--api-url", pf.API_URL, "--source", pf.SOURCE, "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 1 and "belongs to another source" in err   # a conflict fails the plan; the plan is still printed
    shown = json.loads(out)
    expected = json.loads(every_kind_plan_json())
    for volatile in ("created",):
        shown.pop(volatile), expected.pop(volatile)
    assert [(a["action"], a["deployment"], a["changes"]) for a in shown["actions"]] == \
        [(a["action"], a["deployment"], a["changes"]) for a in expected["actions"]]
    assert shown["summary"] == expected["summary"]


@pytest.mark.parametrize("in_sync, expected", [(False, 2), (True, 0)], ids=["changes", "no-changes"])
def test_cli_plan_detailed_exitcode(monkeypatch, capsys, tmp_path, in_sync, expected):
    fake = pf.FakePrefect()
    doc = pf.manifest("hourly")
    if in_sync:
        fake.deploy_manifest(doc)
        fake.set_inventory(pf.SOURCE, ["Cat Facts/hourly"])
    pf.route_default_transport(monkeypatch, fake)
    root = pf.write_manifests(tmp_path, [doc])
    code = cli.main(["plan", str(root), "--api-url", pf.API_URL, "--source", pf.SOURCE, "--detailed-exitcode"])
    out, err = capsys.readouterr()
    assert ("No changes." in out) is in_sync
    assert code == expected, err


def every_kind_plan_json() -> str:
    return pf.make_plan(every_kind_fake(), every_kind_docs()).plan.dumps()
