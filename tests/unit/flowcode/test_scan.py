"""reconciler.flowcode.scan: a flow's name, version and parameter schema from its syntax tree, never importing it.

The golden cases in flowscan_cases/ were run through real Prefect 2.20.27 by
flowscan_cases/generate_expected.py (see its docstring for the command); every
function's scan must give exactly what Prefect wrote to expected.json, key order
included.  `schema_equivalent` is checked on the real-world manifests written by
Prefect 2.0–2.20 against copies rewritten into the other pydantic dialect, and on
Prefect's own pydantic-1 rendering of the golden cases.
"""
from __future__ import annotations

import copy
import hashlib
import json
import re
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from fixture_paths import FIXTURES
from reconciler.flowcode import scan as flowscan
from reconciler.errors import ManifestError, ReconcileError
from reconciler.flowcode.scan import schema_equivalent, scan

CASES = Path(__file__).resolve().parents[1] / "flowscan_cases"
EXPECTED = json.loads((CASES / "expected.json").read_text(encoding="utf-8"))
GOLDEN = [(file, fn) for file, entry in sorted(EXPECTED.items()) for fn in entry["flows"]]
NOT_FLOWS = [(file, fn) for file, entry in sorted(EXPECTED.items()) for fn in entry["not_flows"]]
EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
MANIFESTS = sorted((FIXTURES / "real-world").glob("*.yaml")) + sorted((FIXTURES / "prefect-2.20.27").glob("*.yaml")) \
    + sorted(EXAMPLES.glob("*/*-deployment.yaml"))
# Prefect's pydantic-1 code path cannot type these (pydantic 2 models become Any; the TYPE_CHECKING fallback
# resolves names differently): their v1 rendering really says less, so it is not a dialect of the same schema.
V1_LOSES_INFORMATION = {("enums_and_models.py", "models"), ("enums_and_models.py", "model_used_once"),
                        ("future_annotations.py", "future"), ("type_checking_only.py", "checked"),
                        ("aliases_and_nesting.py", "nesting")}


def write(tmp_path: Path, source: str, name: str = "flows.py") -> Path:
    path = tmp_path / name
    path.write_text(source, encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------------ golden cases

def test_the_golden_cases_cover_every_case_file():
    files = {p.name for p in CASES.glob("*.py")} - {"generate_expected.py", "case_helpers.py"}
    assert files == {f for f, entry in EXPECTED.items() if entry["flows"]}
    assert len(GOLDEN) >= 35


@pytest.mark.parametrize("file,function", GOLDEN, ids=[f"{f}:{fn}" for f, fn in GOLDEN])
def test_scan_gives_what_prefect_2_20_writes(file, function):
    expected = EXPECTED[file]["flows"][function]
    info = scan(CASES / file, function)
    assert (info.flow_name, info.version) == (expected["flow_name"], expected["version"])
    assert info.parameter_openapi_schema == expected["schema"]
    # same key order too, so a manifest written from it is byte-identical to Prefect's
    assert json.dumps(info.parameter_openapi_schema) == json.dumps(expected["schema"])
    assert info.function == function
    assert info.version == hashlib.md5((CASES / file).read_bytes()).hexdigest() or function == "versioned_flow"


@pytest.mark.parametrize("file,function", NOT_FLOWS, ids=[f"{f}:{fn}" for f, fn in NOT_FLOWS])
def test_functions_prefect_does_not_see_as_flows_are_refused(file, function):
    with pytest.raises(ReconcileError) as err:
        scan(CASES / file, function)
    assert f"{function!r} is not a flow" in str(err.value)
    assert "\n" not in str(err.value)


def test_the_line_is_the_def_line():
    source = (CASES / "decorators.py").read_text().splitlines()
    info = scan(CASES / "decorators.py", "module_flow")
    assert source[info.line - 1].startswith("def module_flow(")


@pytest.mark.parametrize("function,name", [
    ("plain_flow", "plain-flow"), ("module_flow", "Named by prefect.flow"),
    ("aliased_flow", "Aliased: spaces, punctuation!"),
    ("constant_named_flow", "from-a-constant"), ("empty_name_flow", "empty-name-flow"), ("async_flow", "async-flow"),
])
def test_flow_names(function, name):
    assert scan(CASES / "decorators.py", function).flow_name == name


def test_a_literal_version_is_kept_and_otherwise_the_md5_of_the_file():
    assert scan(CASES / "decorators.py", "versioned_flow").version == "1.2.3"
    assert scan(CASES / "decorators.py", "constant_named_flow").version == \
        hashlib.md5((CASES / "decorators.py").read_bytes()).hexdigest()


@pytest.mark.parametrize("manifest", sorted((FIXTURES / "prefect-2.20.27").glob("*.yaml")), ids=lambda p: p.name)
def test_real_prefect_2_20_manifests_match_the_scan_of_their_flow(manifest):
    doc = yaml.safe_load(manifest.read_text())
    file, _, function = doc["entrypoint"].rpartition(":")
    info = scan(manifest.parent / file, function)
    written = {k: v for k, v in doc["parameter_openapi_schema"].items() if v is not None}
    assert (info.flow_name, info.version, info.parameter_openapi_schema) == (doc["flow_name"], doc["version"], written)
    assert info.warnings == ()
    # the manifest itself holds every field, the empty ones as null, in this order
    as_written = flowscan.manifest_schema(info.parameter_openapi_schema)
    assert json.dumps(as_written) == json.dumps(doc["parameter_openapi_schema"])


@pytest.mark.parametrize("manifest", sorted(EXAMPLES.glob("*/*-deployment.yaml")), ids=lambda p: p.parent.name)
def test_the_examples_manifests_are_equivalent_to_their_code(manifest):
    doc = yaml.safe_load(manifest.read_text())
    file, _, function = doc["entrypoint"].rpartition(":")
    info = scan(manifest.parent / file, function)
    assert info.flow_name == doc["flow_name"]
    assert schema_equivalent(doc["parameter_openapi_schema"], info.parameter_openapi_schema) == []


# ------------------------------------------------------------------------------------------------ never importing

def test_a_file_whose_import_raises_is_scanned(tmp_path, monkeypatch):
    monkeypatch.delenv("FLOWSCAN_GENERATOR", raising=False)
    path = Path(shutil.copy(CASES / "raises_on_import.py", tmp_path))
    info = scan(path, "survives")
    assert info.parameter_openapi_schema == EXPECTED["raises_on_import.py"]["flows"]["survives"]["schema"]
    assert not any(path.stem in name for name in sys.modules)


def test_a_file_that_writes_at_import_time_writes_nothing(tmp_path):
    path = Path(shutil.copy(CASES / "writes_on_import.py", tmp_path))
    info = scan(path, "side_effect")
    assert info.flow_name == "side-effect"
    assert not (tmp_path / "writes_on_import.marker").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["writes_on_import.py"]
    assert not (CASES / "writes_on_import.marker").exists()


def test_nothing_in_the_file_runs(tmp_path):
    marker = tmp_path / "ran"
    path = write(tmp_path, f"""\
import pathlib
pathlib.Path({str(marker)!r}).write_text("module body")
from prefect import flow
SIZE = pathlib.Path({str(marker)!r}).write_text("constant")

class Meta(type):
    def __new__(mcs, *a):
        pathlib.Path({str(marker)!r}).write_text("metaclass")
        return super().__new__(mcs, *a)

class Sneaky(metaclass=Meta):
    pass

def side():
    pathlib.Path({str(marker)!r}).write_text("default")
    return 1

@flow(name=str(pathlib.Path({str(marker)!r}).write_text("decorator")))
def f(a: Sneaky = None, b: int = side(), c: int = SIZE):
    pass
""")
    with pytest.raises(ReconcileError, match="is not a literal"):
        scan(path, "f")
    assert not marker.exists()


# ------------------------------------------------------------------------------------------------ errors

def test_a_syntax_error_is_one_located_line(tmp_path):
    path = write(tmp_path, "from prefect import flow\n\n@flow\ndef f(x: int = 1:\n    pass\n")
    with pytest.raises(ManifestError) as err:
        scan(path, "f")
    assert (err.value.file, err.value.line, err.value.col, err.value.field) == (str(path), 4, 17, None)
    assert str(err.value) == f"{path}:4:17: syntax error: invalid syntax"


def test_a_file_with_a_null_byte_is_a_syntax_error(tmp_path):
    path = tmp_path / "flows.py"
    path.write_bytes(b"from prefect import flow\x00\n")
    with pytest.raises(ManifestError, match="syntax error"):
        scan(path, "f")


def test_a_missing_function_names_the_file_and_its_flows():
    with pytest.raises(ReconcileError) as err:
        scan(CASES / "docstrings.py", "nope")
    assert str(err.value) == (f"{CASES / 'docstrings.py'}: no top-level function 'nope'; the flows in it are: "
                              "documented, last_section_wins, no_blank_line_above, not_indented, parameters_heading, "
                              "undocumented")


def test_a_missing_function_in_a_file_without_flows(tmp_path):
    path = write(tmp_path, "def helper():\n    pass\n")
    with pytest.raises(ReconcileError, match=r"no top-level function 'f'; the flows in it are: none$"):
        scan(path, "f")


def test_a_nested_function_is_not_top_level(tmp_path):
    path = write(tmp_path, "from prefect import flow\n\ndef outer():\n    @flow\n    def inner():\n        pass\n")
    with pytest.raises(ReconcileError, match="no top-level function 'inner'"):
        scan(path, "inner")


def test_a_task_is_not_a_flow():
    with pytest.raises(ReconcileError, match=r"decorators.py:\d+: 'a_task' is not a flow \(it is a @task\)$"):
        scan(CASES / "decorators.py", "a_task")


@pytest.mark.parametrize("source,message", [
    ("@flow(name=NAME)\ndef f():\n    pass\n", r"the flow's name=NAME is not a literal"),
    ("@flow(name=3)\ndef f():\n    pass\n", r"the flow's name must be a string, not 3"),
    ("@flow(name='a/b')\ndef f():\n    pass\n", r"flow name 'a/b' contains a character Prefect forbids"),
    ("@flow\ndef f(wait_for: int = 1):\n    pass\n", r"parameter wait_for: the name is reserved by Prefect"),
    ("@flow\ndef f(return_state=None):\n    pass\n", r"parameter return_state: the name is reserved"),
    ("@flow\ndef f(_private: int = 1):\n    pass\n", r"parameter _private: Prefect 2.20 cannot build a parameter"),
    ("@flow\ndef f(b: bytes = b'\\xff'):\n    pass\n", r"parameter b: a bytes default that is not UTF-8"),
], ids=["name-not-literal", "name-not-string", "banned-character", "reserved-wait_for", "reserved-return_state",
        "leading-underscore", "non-utf8-bytes"])
def test_what_prefect_itself_refuses_is_a_one_line_error(tmp_path, source, message):
    path = write(tmp_path, "import os\nfrom prefect import flow\nNAME = os.environ['X']\n" + source)
    with pytest.raises(ReconcileError) as err:
        scan(path, "f")
    assert re.search(message, str(err.value)), str(err.value)
    assert str(err.value).startswith(f"{path}:") and "\n" not in str(err.value)


def test_an_unreadable_file_is_a_one_line_error(tmp_path):
    with pytest.raises(ReconcileError, match=r"cannot read the flow file"):
        scan(tmp_path / "missing.py", "f")


# ------------------------------------------------------------------------------------------------ warnings

def test_an_imported_annotation_is_left_unconstrained_with_a_warning(tmp_path):
    path = write(tmp_path, "import pandas as pd\nfrom prefect import flow\n\n@flow\n"
                           "def f(df: pd.DataFrame = None, n: int = 1):\n    pass\n")
    info = scan(path, "f")
    assert info.parameter_openapi_schema["properties"]["df"] == {"default": None, "position": 0, "title": "df"}
    assert info.parameter_openapi_schema["properties"]["n"]["type"] == "integer"
    assert info.warnings == (f"{path}:5: parameter df: cannot resolve annotation 'pd.DataFrame' without importing; "
                             "left unconstrained",)


def test_an_imported_model_is_left_unconstrained_though_prefect_would_describe_it(tmp_path):
    write(tmp_path, "from pydantic import BaseModel\nclass Shared(BaseModel):\n    x: int\n", "shared.py")
    path = write(tmp_path, "from shared import Shared\nfrom typing import List, Optional\nfrom prefect import flow\n\n"
                           "@flow\ndef f(one: Shared, many: Optional[List[Shared]] = None):\n    pass\n")
    info = scan(path, "f")
    assert info.parameter_openapi_schema == {
        "title": "Parameters", "type": "object",
        "properties": {"one": {"position": 0, "title": "one"},
                       "many": {"default": None, "position": 1, "title": "many"}},
        "required": ["one"]}
    assert [w.split(": ", 2)[1:] for w in info.warnings] == [
        ["parameter one", "cannot resolve annotation 'Shared' without importing; left unconstrained"],
        ["parameter many", "cannot resolve annotation 'Optional[List[Shared]]' without importing (Shared); "
                           "left unconstrained"]]


def test_the_golden_warnings():
    assert scan(CASES / "unresolvable.py", "imported").warnings == tuple(
        f"{CASES / 'unresolvable.py'}:{line}: parameter {name}: cannot resolve annotation {ann!r} without importing; "
        "left unconstrained"
        for line, name, ann in [(17, "client", "httpx.Client"), (17, "logger", "logging.Logger"),
                                (17, "helper", "case_helpers.Plain"), (18, "plain", "Plain")])
    checked = scan(CASES / "type_checking_only.py", "checked").warnings
    assert [w.split(": ")[1] for w in checked] == ["parameter logger", "parameter b", "parameter c"]
    assert all("as Prefect 2 does" in w and "Logger not defined when the flow runs" in w for w in checked)
    quoted = scan(CASES / "string_annotations.py", "quoted").warnings
    assert len(quoted) == 1 and "parameter nested_local" in quoted[0] and "as Prefect 2 does" in quoted[0]
    warned = ("unresolvable.py", "type_checking_only.py", "string_annotations.py")
    clean = [(f, fn) for f, fn in GOLDEN if f not in warned]
    assert [scan(CASES / f, fn).warnings for f, fn in clean] == [()] * len(clean)


def test_a_flow_prefect_cannot_load_for_a_type_checking_import_is_warned_about(tmp_path):
    source = (CASES / "type_checking_only.py").read_text().replace("@flow(validate_parameters=False)", "@flow")
    path = write(tmp_path, source)
    info = scan(path, "checked")
    assert info.parameter_openapi_schema == EXPECTED["type_checking_only.py"]["flows"]["checked"]["schema"]
    assert info.warnings[0] == (
        f"{path}:16: Prefect 2.20 cannot load this flow: @flow validates parameters, which evaluates the annotations, "
        "and Logger is not defined when the flow runs (import it outside TYPE_CHECKING, or pass "
        "validate_parameters=False)")
    assert len(info.warnings) == 4


def test_manifest_schema_writes_the_empty_fields_as_null():
    info = scan(CASES / "decorators.py", "plain_flow")
    assert info.parameter_openapi_schema == {"title": "Parameters", "type": "object", "properties": {}}
    assert json.dumps(flowscan.manifest_schema(info.parameter_openapi_schema)) == json.dumps(
        {"title": "Parameters", "type": "object", "properties": {}, "required": None, "definitions": None})
    models = scan(CASES / "enums_and_models.py", "model_used_once").parameter_openapi_schema
    assert flowscan.manifest_schema(models) == models


@pytest.mark.parametrize("default", ["os.environ.get('X', 'y')", "make()", "[x for x in 'ab']", "lambda: 1",
                                     "10 ** 10 ** 10", "'ab' * 10 ** 9", "UNKNOWN_NAME"])
def test_a_default_that_needs_running_code_is_left_out_with_a_warning(tmp_path, default):
    path = write(tmp_path, f"import os\nfrom prefect import flow\n\ndef make():\n    return 1\n\n"
                           f"@flow\ndef f(a: int = 1, b: str = {default}):\n    pass\n")
    info = scan(path, "f")
    assert info.parameter_openapi_schema["properties"]["b"] == {"position": 1, "title": "b", "type": "string"}
    assert "required" not in info.parameter_openapi_schema
    assert info.warnings == (f"{path}:8: parameter b: cannot evaluate the default {default!r} without running the "
                             "code; left out of the schema",)


def test_a_hostile_file_is_read_within_bounds(tmp_path):
    chain = "\n".join(f"C{i} = C{i - 1} + C{i - 1}" for i in range(1, 60))
    deep = "list[" * 60 + "int" + "]" * 60
    path = write(tmp_path, f"from prefect import flow\nC0 = 'x' * 1000\n{chain}\nDeep = {deep}\n"
                           "@flow\ndef f(a: str = C59, b: Deep = None, c: int = 2 ** 64 ** 64):\n    pass\n")
    info = scan(path, "f")
    props = info.parameter_openapi_schema["properties"]
    assert props["a"] == {"position": 0, "title": "a", "type": "string"}
    assert props["b"] == {"default": None, "position": 1, "title": "b"}
    assert props["c"] == {"position": 2, "title": "c", "type": "integer"}
    assert len(info.warnings) == 3


# ------------------------------------------------------------------------------------------------ schema_equivalent

def manifest_schema(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))["parameter_openapi_schema"] or {}


_ISO = re.compile(r"^(-)?P(?:(\d+)Y)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:([\d.]+)S)?)?$")
DECIMAL_V2 = [{"type": "number"}, {"pattern": r"^(?!^[-+.]*$)[+-]?0*\d*\.?\d*$", "type": "string"}]


def to_dialect(schema: dict, dialect: str) -> dict:
    """The same parameter schema as the other pydantic generation of Prefect 2 would have written it.

    "v1" (Prefect 2.0–2.10, pydantic 1): `definitions`, `allOf: [{$ref}]` beside siblings, tuple `items: [...]`,
    no null in unions, no `default: null`, `additionalProperties: true` left out, durations in seconds,
    Decimal as a number, `const` as a one-value enum, `required: null`.  "v2" (pydantic 2): `$defs`, bare
    `$ref`, `prefixItems`, optional parameters as `anyOf [..., null]` with `default: null`.  Both also swap
    title casing and reverse key order, which mean nothing.
    """
    schema = copy.deepcopy(schema or {})
    defs = {**(schema.get("definitions") or {}), **(schema.get("$defs") or {})}
    required = set(schema.get("required") or [])

    def node(s, parent=None):
        if isinstance(s, list):
            return [node(x, parent) for x in s]
        if not isinstance(s, dict):
            return s
        s = {k: (v if k in ("default", "enum", "const", "required") else node(v, k)) for k, v in s.items()}
        if "title" in s and isinstance(s["title"], str):
            s["title"] = s["title"].swapcase()
        ref = s.pop("$ref", None) or (s.pop("allOf")[0]["$ref"] if len(s.get("allOf") or []) == 1 else None)
        if ref:
            ref = ref.rsplit("/", 1)[-1]
            ref = {"$ref": ("#/definitions/" if dialect == "v1" else "#/$defs/") + ref}
            s.update({"allOf": [ref]} if dialect == "v1" and s else ref)
        if dialect == "v1":
            if "anyOf" in s:
                members = [m for m in s["anyOf"] if m != {"type": "null"} and m not in DECIMAL_V2[1:]]
                s.pop("anyOf")
                s.update(members[0] if len(members) == 1 else {"anyOf": members})
            if "prefixItems" in s:
                s["items"] = s.pop("prefixItems")
            if s.get("additionalProperties") is True:
                del s["additionalProperties"]
            if "const" in s:
                s["enum"] = [s.pop("const")]
            if s.get("format") == "duration":
                s.update(type="number", format="time-delta")
                if isinstance(s.get("default"), str) and (m := _ISO.match(s["default"])):
                    y, d, h, mi, sec = (float(g or 0) for g in m.groups()[1:])
                    s["default"] = (-1 if m[1] else 1) * ((y * 365 + d) * 86400 + h * 3600 + mi * 60 + sec)
            if DECIMAL_V2[0] in [s] and isinstance(s.get("default"), str):
                s["default"] = float(s["default"])
        else:
            if isinstance(s.get("items"), list):
                s["prefixItems"] = s.pop("items")
            if s.get("type") == "object" and "properties" not in s and "additionalProperties" not in s:
                s["additionalProperties"] = True
            if s.get("format") == "time-delta":
                s.update(type="string", format="duration")
                if isinstance(s.get("default"), (int, float)):
                    s["default"] = f"PT{s['default']}S"
            if isinstance(s.get("enum"), list) and len(s["enum"]) == 1:
                s["const"] = s.pop("enum")[0]
        return dict(reversed(list(s.items())))

    props = {}
    for name, prop in (schema.get("properties") or {}).items():
        prop = node(prop)
        optional = name not in required and prop.get("default", None) is None
        if dialect == "v1" and optional:
            prop.pop("default", None)
        if dialect == "v2" and optional:
            prop["default"] = None
            typed = {k: prop.pop(k) for k in list(prop) if k not in ("title", "default", "position", "description")}
            if typed:
                prop["anyOf"] = [typed, {"type": "null"}]
        props[name] = prop
    out = {"title": "Parameters", "type": "object", "properties": props,
           "required": sorted(required, reverse=True) or (None if dialect == "v1" else [])}
    new_defs = {k: node(v) for k, v in defs.items()}
    out["definitions" if dialect == "v1" else "$defs"] = new_defs or None
    return dict(reversed(list(out.items())))


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
@pytest.mark.parametrize("dialect", ["v1", "v2"])
def test_a_manifest_schema_is_equivalent_to_itself_in_the_other_dialect(path, dialect):
    schema = manifest_schema(path)
    other = to_dialect(schema, dialect)
    if schema.get("properties"):
        assert json.dumps(other) != json.dumps(schema)
    assert schema_equivalent(schema, other) == []
    assert schema_equivalent(other, schema) == []


@pytest.mark.parametrize("file,function", GOLDEN, ids=[f"{f}:{fn}" for f, fn in GOLDEN])
def test_the_golden_schemas_are_equivalent_across_dialects(file, function):
    expected = EXPECTED[file]["flows"][function]
    for dialect in ("v1", "v2"):
        assert schema_equivalent(expected["schema"], to_dialect(expected["schema"], dialect)) == []
    # Prefect's own pydantic-1 rendering of the same signature
    if expected["schema_pydantic_v1"] is not None and (file, function) not in V1_LOSES_INFORMATION:
        assert schema_equivalent(expected["schema_pydantic_v1"], expected["schema"]) == []
        assert schema_equivalent(expected["schema"], expected["schema_pydantic_v1"]) == []


def test_prefects_pydantic_1_rendering_of_pydantic_2_models_is_reported_as_a_difference():
    expected = EXPECTED["enums_and_models.py"]["flows"]["model_used_once"]
    assert schema_equivalent(expected["schema_pydantic_v1"], expected["schema"]) == \
        ["parameter 'only': type changed from any to object with x, y"]


WITH_PARAMETERS = [p for p in MANIFESTS if manifest_schema(p).get("properties")]


@pytest.mark.parametrize("path", WITH_PARAMETERS, ids=lambda p: p.name)
@pytest.mark.parametrize("dialect", ["v1", "v2"])
def test_real_changes_are_reported_across_dialects(path, dialect):
    schema = manifest_schema(path)
    first = next(iter(schema["properties"]))
    required = set(schema.get("required") or [])

    def changed(edit):
        other = to_dialect(schema, dialect)
        edit(other, other["properties"])
        return schema_equivalent(schema, other)

    def rename(s, props):
        props["renamed_param"] = props.pop(first)
        if first in (s.get("required") or []):
            s["required"] = [("renamed_param" if n == first else n) for n in s["required"]]
    differences = changed(rename)
    if "position" in schema["properties"][first]:
        assert differences == [f"parameter {first!r} was renamed to 'renamed_param'"]
    else:
        assert differences == [f"parameter {first!r} was removed", "parameter 'renamed_param' was added"
                               + (" (required)" if first in required else "")]

    def add_required(s, props):
        props["new_param"] = {"title": "new_param", "type": "string"}
        s["required"] = [*(s.get("required") or []), "new_param"]
    assert changed(add_required) == ["parameter 'new_param' was added (required)"]

    def remove(s, props):
        del props[first]
        s["required"] = [n for n in (s.get("required") or []) if n != first] or None
    assert changed(remove) == [f"parameter {first!r} was removed"]

    kind = "boolean" if schema["properties"][first].get("type") != "boolean" else "integer"

    def retype(s, props):
        keep = {k: v for k, v in props[first].items() if k in ("title", "position", "default")}
        props[first] = {**keep, "type": kind}
    differences = changed(retype)
    assert len(differences) == 1 and re.match(rf"parameter {first!r}: type changed from .+ to {kind}$", differences[0])

    def redefault(s, props):
        props[first]["default"] = "a different default"
        s["required"] = [n for n in (s.get("required") or []) if n != first] or None
    differences = changed(redefault)
    if first in required:
        assert differences == [f"parameter {first!r} is no longer required"]
    else:
        assert len(differences) == 1 and re.match(
            rf"parameter {first!r}: default changed from .+ to \"a different default\"$", differences[0])


@pytest.mark.parametrize("a,b,differences", [
    pytest.param({"properties": {"x": {"title": "x", "type": "integer"}}},
                 {"properties": {"x": {"title": "x", "type": "integer", "default": None, "anyOf": None}}}, [],
                 id="absent-default-is-null"),
    pytest.param({"properties": {"x": {"title": "x", "type": "integer", "position": 0}}, "required": ["x"]},
                 {"properties": {"x": {"title": "x", "type": "integer", "position": 1}}, "required": ["x"]},
                 ["parameter 'x': position changed from 0 to 1"], id="position"),
    pytest.param({"properties": {"x": {"title": "x", "type": "integer", "position": 0}}, "required": ["x"]},
                 {"properties": {"x": {"title": "x", "type": "integer"}}, "required": ["x"]}, [],
                 id="no-positions-in-prefect-2.0"),
    pytest.param({"properties": {"x": {"title": "x", "type": "integer", "default": 1}}},
                 {"properties": {"x": {"title": "x", "type": "integer"}}, "required": ["x"]},
                 ["parameter 'x' is now required"], id="now-required"),
    pytest.param({"properties": {"x": {"title": "x", "type": "integer", "default": 1}}},
                 {"properties": {"x": {"title": "x", "type": "number", "default": 1.0}}},
                 ["parameter 'x': type changed from integer to number"], id="int-to-float-same-default"),
    pytest.param({"properties": {"x": {"title": "x", "type": "boolean", "default": True}}},
                 {"properties": {"x": {"title": "x", "type": "boolean", "default": 1}}},
                 ["parameter 'x': default changed from true to 1"], id="true-is-not-1"),
    pytest.param({"properties": {"x": {"title": "x", "default": [1, {"a": 2}]}}},
                 {"properties": {"x": {"title": "x", "default": [1, {"a": 3}]}}},
                 ["parameter 'x': default changed from [1, {\"a\": 2}] to [1, {\"a\": 3}]"], id="nested-default"),
    pytest.param({"properties": {"c": {"allOf": [{"$ref": "#/definitions/C"}]}},
                  "definitions": {"C": {"title": "C", "description": "An enumeration.", "enum": ["r", "g"]}}},
                 {"properties": {"c": {"$ref": "#/definitions/C"}},
                  "definitions": {"C": {"title": "C", "enum": ["r", "g", "b"], "type": "string"}}},
                 ['parameter \'c\': type changed from one of "g", "r" to one of "b", "g", "r"'],
                 id="enum-member-added"),
    pytest.param({"properties": {"m": {"$ref": "#/$defs/M"}},
                  "$defs": {"M": {"properties": {"a": {"type": "integer"}}}}},
                 {"properties": {"m": {"$ref": "#/definitions/M"}},
                  "definitions": {"M": {"properties": {"a": {"type": "string"}}}}},
                 ['parameter \'m\': type changed from {"properties": {"a": {"type": "integer"}}} to '
                  '{"properties": {"a": {"type": "string"}}}'], id="model-field-type"),
    pytest.param({"properties": {"d": {"type": "number", "format": "time-delta", "default": 90.0}}},
                 {"properties": {"d": {"type": "string", "format": "duration", "default": "PT1M30S"}}}, [],
                 id="duration-seconds-vs-iso"),
    pytest.param({"properties": {"d": {"type": "number", "format": "time-delta", "default": 90.0}}},
                 {"properties": {"d": {"type": "string", "format": "duration", "default": "PT1M31S"}}},
                 ['parameter \'d\': default changed from 90.0 to "PT1M31S"'], id="duration-changed"),
    pytest.param({"properties": {"x": {"anyOf": [{"enum": ["a"], "type": "string"},
                                                 {"enum": [1], "type": "integer"}]}}},
                 {"properties": {"x": {"enum": ["a", 1, None], "default": None}}}, [], id="literal-split-by-type"),
    pytest.param(None, {"properties": {}}, [], id="no-schema-no-parameters"),
    pytest.param({}, {"properties": {"a": {"type": "integer"}}, "required": ["a"]},
                 ["parameter 'a' was added (required)"], id="added-to-empty"),
])
def test_schema_equivalent_cases(a, b, differences):
    def clean(s):  # the table writes "anyOf": None for "leave it out"
        return {k: clean(v) for k, v in s.items() if v is not None} if isinstance(s, dict) else s
    assert schema_equivalent(clean(a), clean(b)) == differences


def test_a_manifest_and_the_scan_of_changed_code_differ_in_meaning(tmp_path):
    doc = yaml.safe_load((FIXTURES / "prefect-2.20.27" / "catfact-deployment.yaml").read_text())
    source = (FIXTURES / "prefect-2.20.27" / "catfact.py").read_text()
    changed = source.replace("def catfacts_flow(url: str, n: int = 3)", "def catfacts_flow(url: str, count: int = 5,"
                                                                         " verbose: bool = False)")
    assert changed != source
    info = scan(write(tmp_path, changed, "catfact.py"), "catfacts_flow")
    assert schema_equivalent(doc["parameter_openapi_schema"], info.parameter_openapi_schema) == [
        "parameter 'n' was renamed to 'count'", "parameter 'verbose' was added",
        "parameter 'count': default changed from 3 to 5"]
