"""Hostile manifests (issue 11): bounded work, unknown tags, malformed content; each one line, exit 1.

Every case runs through `reconcile plan` (`cli.main`) against the fake Prefect API, as a pull-request
check would: exit 1, exactly one `error:` line naming the file and position, nothing written.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler import cli
from reconciler.bundles import bundle
from reconciler.errors import ManifestError, ReconcileError
from reconciler.manifests import files, paramschema, yamlpos, yamlvalues

try:
    from .. import prefect_fake as pf
except ImportError:
    import prefect_fake as pf

GOOD = "name: hourly\nflow_name: Cat Facts\nparameters: {}\n"

# nine levels of nine: 9**9 (387 million) values from a document of about 400 bytes
LAUGHS = "lol: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 9))


@pytest.fixture
def fake(monkeypatch) -> pf.FakePrefect:
    server = pf.FakePrefect()
    pf.route_default_transport(monkeypatch, server)
    return server


def plan(tmp_path: Path, monkeypatch, capsys, files_: dict[str, str | bytes]) -> tuple[int, list[str]]:
    """Write the files under tmp_path/repo and run `reconcile plan` there; (exit code, error lines)."""
    root = tmp_path / "repo"
    for rel, content in files_.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    root.mkdir(exist_ok=True)
    monkeypatch.chdir(root)
    code = cli.main(["plan", ".", "--api-url", pf.API_URL, "--source", pf.SOURCE])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, [line for line in err.splitlines() if line.startswith("error:")]


def one_error(tmp_path, monkeypatch, capsys, fake, files_) -> str:
    code, errors = plan(tmp_path, monkeypatch, capsys, files_)
    assert code == 1 and len(errors) == 1, errors
    assert not fake.writes
    return errors[0]


# -- resource exhaustion -----------------------------------------------------------------------------

def test_billion_laughs_in_a_manifest_is_refused_at_once(tmp_path, monkeypatch, capsys, fake):
    line = one_error(tmp_path, monkeypatch, capsys, fake, {"x-deployment.yaml": GOOD + "description: x\n" + LAUGHS})
    assert line.startswith("error: x-deployment.yaml:")
    assert "YAML aliases expand past 10000 values" in line and "refusing to load it" in line


def test_billion_laughs_in_reconcile_yaml_is_refused_at_once(tmp_path, monkeypatch, capsys, fake):
    line = one_error(tmp_path, monkeypatch, capsys, fake, {"x-deployment.yaml": GOOD, "reconcile.yaml": LAUGHS})
    assert line.startswith("error: reconcile.yaml:") and "YAML aliases expand past" in line


@pytest.mark.parametrize("text", ["a: &a [*a]\n", "a: &a {b: *a}\n", "a: &a {<<: *a}\n"],
                         ids=["sequence", "mapping", "merge"])
def test_self_referencing_alias_is_refused(tmp_path, monkeypatch, capsys, fake, text):
    line = one_error(tmp_path, monkeypatch, capsys, fake, {"x-deployment.yaml": GOOD + text})
    assert line.startswith("error: x-deployment.yaml:4:4: a") and "refers to a value that contains it" in line


def test_a_file_over_one_mebibyte_is_not_parsed(tmp_path, monkeypatch, capsys, fake):
    big = GOOD + "description: " + "x" * (yamlpos.MAX_BYTES + 1) + "\n"
    line = one_error(tmp_path, monkeypatch, capsys, fake, {"x-deployment.yaml": big})
    assert line.startswith("error: x-deployment.yaml:1:1:") and "over the 1048576 bytes" in line


def test_too_many_values_and_too_deep_nesting_are_refused():
    many = "a: [" + ", ".join(["1"] * (yamlvalues.MAX_NODES + 1)) + "]\n"
    with pytest.raises(ManifestError, match=f"more than {yamlvalues.MAX_NODES} YAML values"):
        yamlpos.load(many, "f.yaml")
    deep = "a: " + "[" * (yamlvalues.MAX_DEPTH + 1) + "]" * (yamlvalues.MAX_DEPTH + 1) + "\n"
    with pytest.raises(ManifestError, match=f"nested deeper than {yamlvalues.MAX_DEPTH} levels"):
        yamlpos.load(deep, "f.yaml")


def test_aliases_a_real_file_uses_still_load():
    text = "d: &d {tz: UTC, n: [1, 2, 3]}\n" + "".join(f"k{i}: *d\n" for i in range(500))
    assert yamlpos.load(text, "f.yaml").data["k499"] == {"tz": "UTC", "n": [1, 2, 3]}


def test_a_manifest_linked_to_a_device_is_not_read(tmp_path, monkeypatch, capsys, fake):
    (tmp_path / "repo").mkdir()
    os.symlink("/dev/zero", tmp_path / "repo" / "z-deployment.yaml")
    line = one_error(tmp_path, monkeypatch, capsys, fake, {})
    assert line == "error: /dev/zero:1:1: not a regular file (a directory, device, socket or FIFO)"   # shown resolved, as every linked manifest is


# -- tags ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, shown", [
    ("!!python/object/apply:os.system [echo pwned]", "'!!python/object/apply:os.system'"),
    ("!!python/object/apply:os.system\n  args: [echo pwned]", "'!!python/object/apply:os.system'"),
    ("!custom {a: 1}", "'!custom'"),
    ("!custom text", "'!custom'"),
    ("!!binary aGk=", "'!!binary'"),
    ("!!set {a, b}", "'!!set'"),
])
def test_unknown_tags_are_refused(tmp_path, monkeypatch, capsys, fake, value, shown):
    line = one_error(tmp_path, monkeypatch, capsys, fake, {"x-deployment.yaml": GOOD + f"description: {value}\n"})
    assert line.startswith("error: x-deployment.yaml:4:14: description: YAML tag " + shown + " is not allowed")


# -- malformed content: exit 1, not 3 -------------------------------------------------------------------

def test_parameter_schema_with_a_number_as_type(tmp_path, monkeypatch, capsys, fake):
    text = ("name: hourly\nflow_name: Cat Facts\nparameters: {n: 1}\nparameter_openapi_schema:\n"
            "  type: object\n  properties:\n    n: {type: 123}\n")
    line = one_error(tmp_path, monkeypatch, capsys, fake, {"x-deployment.yaml": text})
    assert line.startswith("error: x-deployment.yaml:7:9: parameter_openapi_schema.properties.n.type: "
                           "not a valid JSON Schema")


@pytest.mark.parametrize("schema, where, message", [
    ({"properties": {"n": {"$ref": "#/definitions/a"}}, "definitions": {"a": {"$ref": "#/definitions/a"}}},
     ("definitions", "a", "$ref"), "leads back to itself"),
    ({"properties": {"n": {"$ref": "https://example.org/s.json"}}}, ("properties", "n", "$ref"), "only references"),
    ({"properties": {"n": {"$ref": "#/definitions/gone"}}}, ("properties", "n", "$ref"), "names nothing"),
    ({"properties": {"n": {"type": "string", "pattern": "^(a+)+$"}}}, ("properties", "n", "pattern"),
     "repetition inside a repetition"),
    ({"properties": 5}, ("properties",), "not a valid JSON Schema"),
])
def test_parameter_schemas_jsonschema_would_choke_on(schema, where, message):
    found = paramschema.problem({"type": "object", **schema})
    assert found is not None and found[0] == where and message in found[1]


def test_recursive_model_schemas_still_load():
    tree = {"type": "object", "properties": {"kids": {"type": "array", "items": {"$ref": "#/definitions/T"}}}}
    assert paramschema.problem({"properties": {"t": {"$ref": "#/definitions/T"}}, "definitions": {"T": tree}}) is None


def test_manifest_symlink_to_itself(tmp_path, monkeypatch, capsys, fake):
    (tmp_path / "repo").mkdir()
    os.symlink("loop-deployment.yaml", tmp_path / "repo" / "loop-deployment.yaml")
    line = one_error(tmp_path, monkeypatch, capsys, fake, {"x-deployment.yaml": GOOD})
    assert line == "error: loop-deployment.yaml:1:1: a symlink loop (the link leads back to itself)"


@pytest.mark.parametrize("pattern, message", [
    ("!", "invalid pattern '!'"),
    ("[z-a]", "invalid pattern '[z-a]'"),
    ("*a*a*a*a*a*b", "more than 3 `*` in one path segment"),
])
def test_prefectignore_line_pathspec_rejects(tmp_path, monkeypatch, capsys, fake, pattern, message):
    line = one_error(tmp_path, monkeypatch, capsys, fake,
                     {"x-deployment.yaml": GOOD, ".prefectignore": f"# comment\n{pattern}\n"})
    assert line.startswith("error: .prefectignore:2: " + message)


def test_exclude_pattern_in_reconcile_yaml_is_located(tmp_path, monkeypatch, capsys, fake):
    line = one_error(tmp_path, monkeypatch, capsys, fake,
                     {"x-deployment.yaml": GOOD, "reconcile.yaml": "exclude:\n  - old/\n  - '[z-a]'\n"})
    assert line.startswith("error: reconcile.yaml:3:5: exclude.1: invalid pattern '[z-a]'")


def test_bundle_prefectignore_is_checked_too(tmp_path):
    (tmp_path / ".prefectignore").write_text("ok/\n\\\n")
    with pytest.raises(ReconcileError, match=r"\.prefectignore:2: invalid pattern"):
        bundle.ignore_spec(tmp_path)


def test_bounded_read_refuses_what_is_not_a_small_regular_file(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(files.Unreadable, match="not a regular file"):
        files.read(tmp_path / "fifo")       # opened without blocking, never read
    (tmp_path / "big").write_bytes(b"x" * 11)
    with pytest.raises(files.Unreadable, match="over the 10 bytes"):
        files.read(tmp_path / "big", limit=10)


@pytest.mark.parametrize("value", ["2001-13-45", ".nan", "-.inf", "1" * 5000])
def test_scalars_python_cannot_build_are_one_line(value):
    with pytest.raises(ManifestError, match=r"^f\.yaml:1:4: x: invalid value: "):
        yamlpos.load(f"x: {value}\n", "f.yaml")


def test_a_nul_in_any_string_is_refused_before_a_path_call_meets_it():
    with pytest.raises(ManifestError, match=r"^f\.yaml:1:7: path: invalid value: a NUL character"):
        yamlpos.load('path: "flows\\0/x"\n', "f.yaml")


def test_check_with_an_entrypoint_too_long_for_the_file_system(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x-deployment.yaml").write_text(f"name: x\nflow_name: f\nentrypoint: {'a' * 5000}.py:f\n")
    code = cli.main(["check", "."])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    [line] = [line for line in err.splitlines() if line.startswith("error:")]
    assert line.startswith("error: x-deployment.yaml:3: entrypoint: the file says 'aaa")


def test_a_flow_file_that_is_not_a_regular_file_is_not_read(tmp_path):
    from reconciler.flowcode import scan
    os.mkfifo(tmp_path / "flow.py")
    with pytest.raises(ReconcileError, match="cannot read the flow file: not a regular file"):
        scan.scan(tmp_path / "flow.py", "f")


def test_the_serve_configuration_is_loaded_within_the_same_bounds(tmp_path):
    from reconciler.serve import config as serve_config
    (tmp_path / "serve.yaml").write_text("sources: []\n" + LAUGHS)
    with pytest.raises(ReconcileError, match="YAML aliases expand past"):
        serve_config.load(tmp_path / "serve.yaml")
    os.symlink("/dev/zero", tmp_path / "zero.yaml")
    with pytest.raises(ReconcileError, match="zero.yaml: not a regular file"):
        serve_config.load(tmp_path / "zero.yaml")
