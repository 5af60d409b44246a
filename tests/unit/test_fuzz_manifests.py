"""A fuzzer: real manifests, mutated (bytes, YAML structure, field values), through `reconcile plan`.

Seeds are the real-world manifests of the shared fixtures and the examples.  Each case writes the
mutated files into a fresh directory and runs `reconcile plan` (`cli.main`) against the fake Prefect
API, as a pull-request check would.  Whatever the input: never exit 3, never a traceback, nothing
written, and every line on stderr is one line naming a file (`error: FILE:LINE...`, a notice, or the
summary).  Time and memory are bounded by construction (the loader's limits); each case's Python
allocation peak is checked with tracemalloc, never a wall clock.

The default run is short (RECONCILE_FUZZ_EXAMPLES, default 150 per strategy); a longer one:
    RECONCILE_FUZZ_EXAMPLES=5000 .venv/bin/pytest tests/unit/test_fuzz_manifests.py -q
"""
from __future__ import annotations

import contextlib
import functools
import io
import os
import re
import tempfile
import tracemalloc
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer.main
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler import cli

from fixture_paths import FIXTURES  # tests/ is on sys.path, see tests/conftest.py

try:
    from . import prefect_fake as pf
except ImportError:   # run from tests/unit
    import prefect_fake as pf  # type: ignore[no-redef]

EXAMPLES = int(os.environ.get("RECONCILE_FUZZ_EXAMPLES", "150"))
PEAK_BYTES = 64 << 20      # a case may allocate at most this much at once (a 1 MiB file, 100k values)
EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"
SEEDS = sorted([*(FIXTURES / "real-world").glob("*.yaml"),
                *(FIXTURES / "prefect-2.20.27").glob("*-deployment.yaml"),
                *EXAMPLES_DIR.glob("*/*-deployment.yaml")])
SEED_BYTES = {p: p.read_bytes() for p in SEEDS}
SEED_DOCS = {p: yaml.safe_load(raw) for p, raw in SEED_BYTES.items()}
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])
FILES = ("x-deployment.yaml", "reconcile.yaml", ".prefectignore")
SUMMARY = re.compile(r"^\d+ (error\(s\); nothing was changed\.|problem\(s\) in \d+ manifest\(s\); .*)$")
FLOW = (b"from prefect import flow\n\n\n@flow(name='Cat Facts')\n"
        b"def f(url: str = 'https://catfact.ninja/facts', n: int = 1, a: list = None):\n    pass\n")


@pytest.fixture(scope="module")
def server():
    """Every PrefectClient the CLI builds talks to the fake in `server["fake"]` (a fresh one per case)."""
    holder: dict[str, pf.FakePrefect] = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(httpx, "HTTPTransport", lambda *a, **k: httpx.MockTransport(lambda r: holder["fake"].handler(r)))
        # typer rebuilds the click command tree on every call (most of a case's time): build it once
        mp.setattr(typer.main, "get_command", functools.lru_cache(maxsize=None)(typer.main.get_command))
        yield holder


def _named_blocks(doc: Any, fake: pf.FakePrefect) -> None:
    """The blocks and work pool the seed names exist on the fake, so a case gets past the lookups."""
    if not isinstance(doc, dict):
        return
    for key in ("infrastructure", "storage"):
        block = doc.get(key)
        if isinstance(block, dict) and block.get("_block_document_name"):
            slug = block.get("_block_type_slug") or block.get("block_type_slug") or block.get("type")
            if isinstance(slug, str):
                with contextlib.suppress(Exception):
                    fake.add_block_document(slug, str(block["_block_document_name"]), {})


def plan(server: dict, files: dict[str, bytes], seed_doc: Any = None, check: bool = False) -> None:
    """Run `reconcile plan` (and `check`) on these files and check the promise: exit 0/1, one line per error
    naming the file, nothing written, a bounded allocation peak."""
    fake = pf.FakePrefect()
    _named_blocks(seed_doc, fake)
    server["fake"] = fake
    commands = [["plan", ".", "--api-url", pf.API_URL, "--source", pf.SOURCE, "--skip-upload"]]
    commands += [["check", "."]] if check else []
    here = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        for name, content in files.items():
            (Path(tmp) / name).write_bytes(content)
        os.chdir(tmp)
        try:
            for argv in commands:
                _run(argv)
        finally:
            os.chdir(here)
    assert not fake.writes


def _run(argv: list[str]) -> None:
    out, err = io.StringIO(), io.StringIO()
    tracemalloc.start()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(argv)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    text = err.getvalue()
    assert code in (0, 1), f"{argv[0]}: exit {code}:\n{text}"
    assert "Traceback" not in text + out.getvalue()
    for line in text.splitlines():
        assert (line.startswith(tuple(f"error: {f}:" for f in FILES)) or line.startswith(FILES)
                or SUMMARY.match(line)), f"{argv[0]}: not one line naming the file: {line!r}\n{text}"
    if code == 1:
        assert "error: " in text
    assert peak < PEAK_BYTES, f"{argv[0]}: a case allocated {peak} bytes at its peak"


# -- bytes ---------------------------------------------------------------------------------------------

TOKENS = [b"&a ", b"*a", b"&b [*a, *a, *a, *a, *a, *a, *a, *a]", b"!!python/object/apply:os.system ", b"!custom ",
          b"!!binary ", b"!!set ", b"!!omap ", b"!!str ", b"! ", b"<<: ", b"<<: *a\n", b"[", b"]", b"{", b"}",
          b": ", b"- ", b"? ", b"\t", b"\r", b"\r\n", b"\x00", b"\xff", b"\xef\xbb\xbf", b"'", b'"', b"#", b"---\n",
          b"...\n", b"|", b">-", b"%YAML 1.1\n", b"\n  ", b"~", b".nan", b"-.inf", b"1e999", b"0x1F", b"0o17",
          b"2001-13-45", b"2024-02-30T25:00:00Z", b"9" * 5000, b"\\u0000", b"\x85", "\u2028".encode(), b"null",
          b"true", b"[" * 120 + b"]" * 120, b"schedules:\n- schedule: {cron: '61 * * * *'}\n", b"\n" * 3]


@st.composite
def byte_mutants(draw) -> tuple[Path, bytes]:
    seed = draw(st.sampled_from(SEEDS))
    data = bytearray(SEED_BYTES[seed])
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, 1 << 20)) % (len(data) + 1)
        op = draw(st.sampled_from(["insert", "replace", "delete", "flip", "duplicate"]))
        if op == "insert":
            data[pos:pos] = draw(st.sampled_from(TOKENS) | st.binary(max_size=8))
        elif op == "replace":
            token = draw(st.sampled_from(TOKENS))
            data[pos:pos + len(token)] = token
        elif op == "delete":
            del data[pos:pos + draw(st.integers(1, 64))]
        elif op == "flip" and pos < len(data):
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "duplicate":
            end = pos + draw(st.integers(1, 200))
            data[pos:pos] = data[pos:end] * draw(st.integers(1, 4))
    return seed, bytes(data)


@FUZZ
@given(byte_mutants())
def test_fuzz_bytes(server, case):
    seed, raw = case
    plan(server, {"x-deployment.yaml": raw}, SEED_DOCS[seed])


# -- YAML structure -------------------------------------------------------------------------------------

scalars = (st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False, allow_infinity=False)
           | st.text(max_size=30) | st.sampled_from(["", "**********", "0 6 * * *", "UTC", "Europe/Berlin", "\n",
                                                      "FREQ=DAILY", "process", "#/definitions/x", "1e999"]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(max_size=12) | st.sampled_from(["type", "properties", "$ref", "cron", "interval", "_block_type_slug"]),
    inner, max_size=4), max_leaves=20)


def _paths(node: Any, path: tuple = ()) -> list[tuple]:
    out = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, path + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += _paths(value, path + (index,))
    return out


def _dump(doc: Any, as_json: bool) -> bytes:
    import json
    if as_json:
        return json.dumps(doc, default=str).encode()
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True).encode()


@st.composite
def tree_mutants(draw) -> tuple[Path, bytes]:
    import copy
    seed = draw(st.sampled_from(SEEDS))
    doc = copy.deepcopy(SEED_DOCS[seed])
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        op = draw(st.sampled_from(["replace", "delete", "add", "wrap", "null"]))
        if not path:
            if op == "replace":
                doc = draw(values)
            continue
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        last = path[-1]
        if op == "replace":
            parent[last] = draw(values)
        elif op == "delete":
            del parent[last]
        elif op == "add" and isinstance(parent, dict):
            parent[draw(st.text(max_size=12))] = draw(values)
        elif op == "wrap":
            parent[last] = [parent[last]] if draw(st.booleans()) else {"x": parent[last]}
        else:
            parent[last] = None
    return seed, _dump(doc, draw(st.booleans()))


@FUZZ
@given(tree_mutants())
def test_fuzz_structure(server, case):
    seed, raw = case
    plan(server, {"x-deployment.yaml": raw}, SEED_DOCS[seed])


# -- field values ----------------------------------------------------------------------------------------

types = st.sampled_from(["object", "string", "integer", "number", "array", "boolean", "null"]) | st.integers() | st.text(max_size=5)
schema_leaf = st.fixed_dictionaries({}, optional={
    "type": types, "title": scalars, "default": values, "enum": values, "minimum": scalars, "required": values,
    "pattern": st.sampled_from(["^a+$", "(a+)+", "[", "\\d{2,}", "(x|y)*"]),
    "$ref": st.sampled_from(["#", "#/definitions/A", "#/definitions/nope", "http://127.0.0.1:1/s.json", "#/properties/a"])})
schemas = st.deferred(lambda: schema_leaf | st.fixed_dictionaries({}, optional={
    "type": types, "properties": st.dictionaries(st.sampled_from(["a", "n", "url"]), schemas, max_size=3),
    "definitions": st.dictionaries(st.sampled_from(["A", "B"]), schemas, max_size=2),
    "items": schemas, "allOf": st.lists(schemas, max_size=2), "anyOf": st.lists(schemas, max_size=2),
    "additionalProperties": schemas | st.booleans(), "required": st.lists(st.sampled_from(["a", "n"]))}))
schedules = st.fixed_dictionaries({}, optional={
    "cron": st.sampled_from(["0 6 * * *", "61 * * * *", "* * * * * * *", "@daily", ""]) | st.text(max_size=20),
    "interval": st.integers(-5, 10**12) | st.floats(allow_nan=False) | st.text(max_size=5),
    "rrule": st.sampled_from(["FREQ=DAILY", "FREQ=MINUTELY;COUNT=3", "DTSTART:20200101T000000\nRRULE:FREQ=DAILY",
                              "FREQ=SECONDLY;INTERVAL=1"]) | st.text(max_size=30),
    "timezone": st.sampled_from(["UTC", "Europe/Berlin", "Mars/Olympus", ""]) | st.text(max_size=10),
    "anchor_date": st.sampled_from(["2024-01-01T00:00:00+00:00", "not a date"]) | values,
    "day_or": values})
blocks = st.fixed_dictionaries({}, optional={
    "_block_type_slug": st.sampled_from(["process", "local-file-system", "s3", "docker-container"]) | scalars,
    "_block_document_name": scalars, "_is_anonymous": values, "type": scalars, "env": values,
    "basepath": st.sampled_from(["/tmp/x", "../..", "s3://b/p"]) | scalars, "aws_access_key_id": scalars})
FIELDS = {
    "name": scalars, "flow_name": scalars, "version": scalars, "description": scalars, "path": scalars,
    "entrypoint": scalars, "work_queue_name": scalars, "work_pool_name": scalars, "tags": values,
    "parameters": st.dictionaries(st.sampled_from(["a", "n", "url", "kwargs"]), values, max_size=3) | values,
    "parameter_openapi_schema": schemas | values, "schedule": schedules | values,
    "schedules": st.lists(st.fixed_dictionaries({"schedule": schedules}, optional={"active": values}), max_size=3) | values,
    "is_schedule_active": values, "infra_overrides": values, "job_variables": values,
    "infrastructure": blocks | values, "storage": blocks | values, "triggers": values, "timestamp": scalars,
    "enforce_parameter_schema": values, "manifest_path": scalars,
}
configs = st.fixed_dictionaries({}, optional={
    "exclude": st.lists(st.text(max_size=12) | st.sampled_from(["!", "[z-a]", "*a*a*a*a*b", "\\"]), max_size=3),
    "include": st.lists(st.text(max_size=12), max_size=2), "max_deletes": values, "source": scalars,
    "bundle_root": st.sampled_from([".", "..", "/", "../../etc"]) | scalars, "runtime_root": scalars,
    "ignore_differences": values, "allow_conflicts": values})


@st.composite
def field_mutants(draw) -> tuple[Path, dict[str, bytes]]:
    import copy
    seed = draw(st.sampled_from(SEEDS))
    doc = copy.deepcopy(SEED_DOCS[seed])
    for key in draw(st.lists(st.sampled_from(sorted(FIELDS)), min_size=1, max_size=3, unique=True)):
        doc[key] = draw(FIELDS[key])
    if draw(st.booleans()):   # a schema and parameters that reach the validator together
        properties = draw(st.dictionaries(st.sampled_from(["a", "n", "url"]), schemas, min_size=1, max_size=3))
        doc["parameter_openapi_schema"] = {"type": "object", "properties": properties,
                                           **draw(st.fixed_dictionaries({}, optional={"definitions": st.dictionaries(
                                               st.sampled_from(["A", "B"]), schemas, max_size=2)}))}
        doc["parameters"] = {k: draw(values) for k in properties}
    if draw(st.booleans()):   # `check` then reads a real flow file and compares schemas
        doc["entrypoint"] = "flow.py:f"
    files = {"x-deployment.yaml": _dump(doc, draw(st.booleans())), "flow.py": FLOW}
    if draw(st.booleans()):
        files["reconcile.yaml"] = _dump(draw(configs), False)
    if draw(st.booleans()):
        files[".prefectignore"] = "\n".join(draw(st.lists(st.text(max_size=10) | st.sampled_from(
            ["!", "[z-a]", "a\\", "*a*a*a*a*a*b", "**/x", "x-deployment.yaml"]), max_size=4))).encode("utf-8", "replace")
    return seed, files


@FUZZ
@given(field_mutants())
def test_fuzz_fields(server, case):
    seed, files = case
    plan(server, files, SEED_DOCS[seed], check=True)
