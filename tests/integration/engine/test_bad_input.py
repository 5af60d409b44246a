"""Bad input against a real server: one line per error naming file and line, exit 1, and no write (scenario 7).

Each case puts one bad manifest next to good ones and runs `reconcile apply -v` as a real process;
the server is then checked: the good manifests' flow and deployments were not created either.
"""
from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from integration.helpers import (
    REAL_WORLD, Server, line_of, manifest, manifest_text, reconcile, set_flow_name, write_manifest,
)


@pytest.fixture
def server(prefect_api_url):
    with Server(prefect_api_url) as srv:
        yield srv


@dataclass(frozen=True)
class Case:
    """`make(text)` turns a good manifest's text into the bad one; the error must point at `needle`'s line."""

    make: Callable[[str], str]
    needle: str          # text on the line the error must name
    occurrence: int      # which line containing `needle` (1 = the first)
    says: str            # a word or phrase the message must contain
    or_at: str = ""      # text on another line that is as good an answer (e.g. where a bracket opened)


def _replace(old: str, new: str) -> Callable[[str], str]:
    def make(text: str) -> str:
        assert old in text, old
        return text.replace(old, new, 1)
    return make


CASES = {
    "malformed-yaml": Case(_replace("version: '1'\n", "version: '1': oops\n"), "version: '1': oops", 1, "invalid YAML"),
    # the parser notices the unclosed `{` on the next line; either line is a fair answer
    "unclosed-flow-mapping": Case(_replace("parameters:\n  n: 1\n", "parameters: {n: 1\n"), "schedule: null", 1,
                                  "invalid YAML", or_at="parameters: {n: 1"),
    "duplicate-key": Case(_replace("tags:\n", "version: '2'\ntags:\n"), "version:", 2, "duplicate key"),
    "wrong-type-tags": Case(_replace("tags:\n- it\n", "tags: 5\n"), "tags: 5", 1, "tags"),
    "wrong-type-parameters": Case(_replace("parameters:\n  n: 1\n", "parameters:\n- 1\n"), "parameters:", 1,
                                  "parameters"),
    "wrong-type-nested": Case(_replace("  active: true\n", "  active: sometimes\n"), "active: sometimes", 1, "active"),
    "unknown-key": Case(_replace("tags:\n", "tag:\n- typo\ntags:\n"), "tag:", 1, "unknown key"),
    "unknown-schedule-key": Case(_replace("    day_or: true\n", "    day_or: true\n    every: hour\n"), "every: hour",
                                 1, "unknown key"),
    # a missing key is reported where the document's mapping starts (its first key)
    "missing-name": Case(lambda t: re.sub(r"(?m)^name: .*\n", "", t, count=1), "description: null", 1, "name"),
    "missing-flow-name": Case(lambda t: re.sub(r"(?m)^flow_name: .*\n", "", t, count=1), "name: bad", 1,
                              "flow_name"),
    "bad-cron": Case(_replace("cron: 0 * * * *", "cron: 0 * * * * * * 99"), "cron: 0 * * * * * * 99", 1, "cron"),
    "bad-rrule": Case(_replace("    cron: 0 * * * *\n    timezone: UTC\n    day_or: true\n",
                               "    rrule: FREQ=SOMETIMES\n"), "rrule: FREQ=SOMETIMES", 1, "rrule"),
    "bad-timezone": Case(_replace("    timezone: UTC\n", "    timezone: Mars/Olympus_Mons\n"), "Mars/Olympus_Mons", 1,
                         "timezone"),
    "bad-interval": Case(_replace("    cron: 0 * * * *\n    timezone: UTC\n    day_or: true\n",
                                  "    interval: -5\n"), "interval: -5", 1, "interval"),
    "bad-anchor-date": Case(_replace("    cron: 0 * * * *\n    timezone: UTC\n    day_or: true\n",
                                     "    interval: 60\n    anchor_date: next tuesday\n"), "next tuesday", 1,
                            "anchor_date"),
    "parameter-wrong-type": Case(_replace("parameters:\n  n: 1\n", "parameters:\n  n: many\n"), "n: many", 1,
                                 "parameter schema"),
    "parameter-not-in-schema": Case(_replace("parameters:\n  n: 1\n", "parameters:\n  n: 1\n  nn: 2\n"), "nn: 2",
                                    1, "not a parameter"),
    "masked-secret-inline-block": Case(
        _replace("storage: null\n", "storage:\n  bucket_path: b\n  aws_access_key_id: '**********'\n"
                                    "  _block_type_slug: s3\n"),
        "aws_access_key_id", 1, "masked"),
}


def _bad_dir(tmp_path: Path, unique: str, bad_text: Callable[[str], str]) -> tuple[Path, str, str]:
    root = tmp_path / "m"
    good_flow, bad_flow = f"it-good-{unique}", f"it-bad-{unique}"
    write_manifest(root, manifest(good_flow, "good-one"))
    write_manifest(root, manifest(good_flow, "good-two"))
    text = bad_text(manifest_text(manifest(bad_flow, "bad")))
    (root / "bad-deployment.yaml").write_text(text, encoding="utf-8")
    return root, good_flow, text


def _assert_nothing_written(server: Server, run, source: str, *flows: str) -> None:
    assert run.writes == [], f"bad input led to writes:\n{run}"
    for flow in flows:
        assert server.flow(flow) is None, f"flow {flow} was created"
        assert server.deployments(flow) == {}
    assert server.inventory(source) is None
    assert server.locks(source) == []


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_each_bad_manifest_is_one_line_naming_file_and_line_and_nothing_is_written(
        prefect_api_url, server, tmp_path, unique, case):
    source = f"it-bad-{unique}"
    root, good_flow, text = _bad_dir(tmp_path, unique, case.make)
    expected = {line_of(text, case.needle, case.occurrence)} | ({line_of(text, case.or_at)} if case.or_at else set())

    for command in ("apply", "plan"):
        run = reconcile(prefect_api_url, command, root, "--source", source, "-v", cwd=tmp_path)
        assert run.returncode == 1, run
        assert run.stdout == "", run
        errors = [m for m in run.messages if m.startswith("error: ")]
        assert len(errors) == 1, run
        assert run.messages == [errors[0], "1 error(s); nothing was changed."], run
        match = re.match(r"^error: (m/bad-deployment\.yaml):(\d+):(\d+): (.*)$", errors[0])
        assert match, errors[0]
        assert int(match.group(2)) in expected, f"expected line {expected}:\n{errors[0]}\n\n{text}"
        assert case.says in match.group(4), errors[0]
        _assert_nothing_written(server, run, source, good_flow, f"it-bad-{unique}")


def test_every_bad_file_is_reported_in_one_run(prefect_api_url, server, tmp_path, unique):
    source = f"it-bad-many-{unique}"
    root = tmp_path / "m"
    write_manifest(root, manifest(f"it-good-{unique}", "good"))
    picks = ["duplicate-key", "bad-cron", "parameter-wrong-type", "unknown-key"]
    for name in picks:
        text = CASES[name].make(manifest_text(manifest(f"it-bad-{unique}", name)))
        (root / f"{name}-deployment.yaml").write_text(text, encoding="utf-8")

    run = reconcile(prefect_api_url, "apply", root, "--source", source, "-v", cwd=tmp_path)
    assert run.returncode == 1, run
    errors = [m for m in run.messages if m.startswith("error: ")]
    assert len(errors) == len(picks), run
    assert sorted(e.split(":")[1].strip() for e in errors) == sorted(f"m/{n}-deployment.yaml" for n in picks)
    assert run.messages[-1] == f"{len(picks)} error(s); nothing was changed."
    _assert_nothing_written(server, run, source, f"it-good-{unique}", f"it-bad-{unique}")


def test_duplicate_identity_names_both_files(prefect_api_url, server, tmp_path, unique):
    source = f"it-dup-{unique}"
    root = tmp_path / "m"
    flow = f"it-dup-{unique}"
    write_manifest(root, manifest(flow, "twice"), "a-deployment.yaml")
    (root / "sub").mkdir()
    write_manifest(root / "sub", manifest(flow, "twice", version="other"), "b-deployment.yaml")
    write_manifest(root, manifest(flow, "fine"))

    run = reconcile(prefect_api_url, "apply", root, "--source", source, "-v", cwd=tmp_path)
    assert run.returncode == 1, run
    errors = [m for m in run.messages if m.startswith("error: ")]
    assert len(errors) == 1, run
    assert errors[0].startswith("error: m/sub/b-deployment.yaml:"), errors[0]
    name_line = manifest_text(manifest(flow, "twice")).splitlines().index("name: twice") + 1
    assert f"m/a-deployment.yaml:{name_line}" in errors[0], errors[0]
    _assert_nothing_written(server, run, source, flow)


def test_missing_named_block_is_one_line_and_nothing_is_written(prefect_api_url, server, tmp_path, unique):
    source = f"it-noblock-{unique}"
    root = tmp_path / "m"
    good, bad = f"it-good-{unique}", f"it-noblock-{unique}"
    write_manifest(root, manifest(good, "good"))
    block = {"type": "process", "stream_output": True, "_block_document_id": "4722ac30-ee78-4ec1-a15f-be22c536711f",
             "_block_document_name": f"nowhere-{unique}", "_is_anonymous": False,
             "block_type_slug": "process", "_block_type_slug": "process"}
    path = write_manifest(root, manifest(bad, "needs-block", infrastructure=block), "needs-block-deployment.yaml")
    expected_line = path.read_text().splitlines().index("infrastructure:") + 1

    run = reconcile(prefect_api_url, "apply", root, "--source", source, "-v", cwd=tmp_path)
    assert run.returncode == 1, run
    errors = [m for m in run.messages if m.startswith("error: ")]
    assert len(errors) == 1, run
    assert errors[0].startswith(f"error: m/needs-block-deployment.yaml:{expected_line}:"), errors[0]
    assert f"process/nowhere-{unique}" in errors[0] and prefect_api_url in errors[0]
    _assert_nothing_written(server, run, source, good, bad)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("how", ["flag", "env"])
def test_unreachable_server_is_one_line_naming_the_url(prefect_api_url, tmp_path, unique, how):
    root = tmp_path / "m"
    write_manifest(root, manifest(f"it-unreach-{unique}", "x"))
    url = f"http://127.0.0.1:{_closed_port()}/api"
    args = ["--api-url", url] if how == "flag" else []
    for command in ("plan", "apply", "status"):
        run = reconcile(url if how == "env" else prefect_api_url, command, root, "--source", f"it-{unique}", *args,
                        cwd=tmp_path)
        assert run.returncode == 1, run
        assert len(run.messages) == 1, run
        assert run.messages[0].startswith("error: ") and url in run.messages[0], run
        assert "Traceback" not in run.stderr


def test_a_url_that_is_not_a_prefect_api_is_one_line(prefect_api_url, tmp_path, unique):
    root = tmp_path / "m"
    write_manifest(root, manifest(f"it-notapi-{unique}", "x"))
    wrong = prefect_api_url[: -len("/api")] + "/not-the-api"
    run = reconcile(prefect_api_url, "plan", root, "--source", f"it-{unique}", "--api-url", wrong, cwd=tmp_path)
    assert run.returncode == 1, run
    assert len(run.messages) == 1 and wrong in run.messages[0], run


def _real_world_rejects() -> list[Path]:
    from reconciler.engine import desired
    from reconciler.manifests import manifest as manifest_mod
    from reconciler.errors import ReconcileError
    out = []
    for path in sorted(REAL_WORLD.glob("*.yaml")):
        try:
            desired.resolve([manifest_mod.parse(path.read_bytes(), path, path.name)])
        except ReconcileError:
            out.append(path)
    return out


@pytest.mark.parametrize("fixture", _real_world_rejects(), ids=lambda p: p.stem)
def test_real_world_manifests_that_cannot_be_applied_are_rejected_before_any_write(
        prefect_api_url, server, tmp_path, unique, fixture):
    """Masked inline secrets, a null where the schema wants a string: one line each, nothing written."""
    source = f"it-rw-reject-{unique}"
    root = tmp_path / "m"
    root.mkdir()
    text = fixture.read_text(encoding="utf-8")
    flow = f"rw-reject-{unique}"
    (root / "real-deployment.yaml").write_text(set_flow_name(text, flow), encoding="utf-8")
    write_manifest(root, manifest(f"it-good-{unique}", "good"))

    run = reconcile(prefect_api_url, "apply", root, "--source", source, "-v", cwd=tmp_path)
    assert run.returncode == 1, run
    errors = [m for m in run.messages if m.startswith("error: ")]
    assert len(errors) == 1, run
    assert re.match(r"^error: m/real-deployment\.yaml:\d+:\d+: ", errors[0]), errors[0]
    _assert_nothing_written(server, run, source, flow, f"it-good-{unique}")
