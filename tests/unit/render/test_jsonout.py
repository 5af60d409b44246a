"""JSON written item by item is, byte for byte, the JSON the contract documents (json.dumps, indent 2)."""
from __future__ import annotations

import datetime as dt
import io
import json
import re

import pytest

from reconciler.cli import app as cli
from reconciler.render import jsonout

from .test_render import GOLDEN, every_kind_docs, every_kind_fake

try:
    from .. import prefect_fake as pf
except ImportError:
    import prefect_fake as pf

CREATED = re.compile(r'"created": "[^"]*"')


def written(value) -> str:
    out = io.StringIO()
    jsonout.write(value, out)
    return out.getvalue()


@pytest.mark.parametrize("make", [
    lambda: {"version": 1, "actions": [{"a": 1}]},
    lambda: {"actions": iter([{"nested": {"x": [1, 2, {}], "y": []}}, "line\nbreak", "é ✓ \x00", None, 1.5])},
    lambda: {"actions": iter([]), "empty": {}, "list": [], "when": dt.datetime(2024, 1, 2, 3, 4, 5)},
    lambda: {},
    lambda: [],
    lambda: "text",
])
def test_same_bytes_as_json_dumps(make):
    expected_value = {k: list(v) if hasattr(v, "__next__") else v for k, v in make().items()} \
        if isinstance(make(), dict) else make()
    assert written(make()) == json.dumps(expected_value, indent=2, default=str) + "\n"


def test_cli_plan_json_is_the_golden_plan_json(monkeypatch, capsys, tmp_path):
    pf.route_default_transport(monkeypatch, every_kind_fake())
    root = pf.write_manifests(tmp_path, every_kind_docs())
    saved = tmp_path / "saved-plan.json"
    cli.main(["plan", str(root), "--api-url", pf.API_URL, "--source", pf.SOURCE, "--format", "json",
              "--out", str(saved)])
    out = capsys.readouterr().out
    golden = (GOLDEN / "plan.json").read_text(encoding="utf-8")
    manifests = re.compile(re.escape(json.dumps(str(root))[1:-1]) + r"[^\"]*?/")   # the temporary directory

    def same(text: str) -> str:
        return manifests.sub("", CREATED.sub('"created": ""', text))

    assert same(out) == same(golden)
    assert saved.read_text(encoding="utf-8") == out     # the saved plan is the printed one


def test_cli_plan_text_is_the_golden_plan_text(monkeypatch, capsys, tmp_path):
    """The text form, printed a thousand lines at a time, is still exactly the rendered plan."""
    pf.route_default_transport(monkeypatch, every_kind_fake())
    root = pf.write_manifests(tmp_path, every_kind_docs())
    cli.main(["plan", str(root), "--api-url", pf.API_URL, "--source", pf.SOURCE])
    out = capsys.readouterr().out
    golden = (GOLDEN / "plan.txt").read_text(encoding="utf-8")
    manifests = re.compile(re.escape(str(root)) + r"[^ )]*?/")
    assert manifests.sub("", out) == manifests.sub("", golden)
