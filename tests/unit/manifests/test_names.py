"""Names Prefect refuses, and names and text that would garble a plan, are refused before any write."""
from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.engine import desired
from reconciler.errors import ManifestError, ManifestErrors
from reconciler.manifests import manifest, names

HEAD = "name: {name}\nflow_name: {flow}\n"


def resolve(text: str, file: str = "x.yaml"):
    return desired.resolve([manifest.parse(text.encode(), Path(file), file)])


def error_of(text: str, file: str = "x.yaml") -> str:
    with pytest.raises(ManifestErrors) as info:
        resolve(text, file)
    assert len(info.value.errors) == 1
    return str(info.value.errors[0])


@pytest.mark.parametrize("value", ["a/b", "a%b", "a&b", "a>b", "<a"])
@pytest.mark.parametrize("key", ["name", "flow_name", "work_queue_name", "work_pool_name"])
def test_prefects_banned_characters(key, value):
    text = f"name: ok\nflow_name: f\n{key}: '{value}'\n" if key not in ("name", "flow_name") else \
        HEAD.format(name=value if key == "name" else "ok", flow=value if key == "flow_name" else "f").replace(value, f"'{value}'")
    message = error_of(text)
    assert f": {key}: " in message and "Prefect refuses" in message


@pytest.mark.parametrize("value, says", [
    ('""', "must not be empty"), ('"  "', "must not be empty"), ('" x"', "start or end with a space"),
    ('"a\\eb"', "control character (\\x1b)"), ('"a\\nb"', "\\n"), ('"\\u202ex"', "\\u202e"),
    ('"a\\u200bb"', "does not print"), ('"a\\x9bb"', "\\x9b"),
])
def test_names_that_would_garble_a_plan(value, says):
    message = error_of(HEAD.format(name=value, flow="f"))
    assert message.startswith("x.yaml:1:1: name: ") and says in message
    assert message.isprintable()


@pytest.mark.parametrize("text, where", [
    ("tags: [ok, \"a\\eb\"]\n", "tags.1"),
    ("description: \"a\\e]0;x\\a\"\n", "description"),
    ("version: \"1\\u202e\"\n", "version"),
    ("parameters: {\"a\\nb\": 1}\n", "parameters.'a\\nb'"),   # a key that does not print is quoted
    ("infra_overrides: {\"env.\\eX\": 1}\n", "infra_overrides.'env.\\x1bX'"),
    ("entrypoint: \"f.py:x\\n\"\n", "entrypoint"),
])
def test_text_with_control_or_bidi_characters(text, where):
    message = error_of(HEAD.format(name="ok", flow="f") + text)
    assert f": {where}: " in message and message.isprintable()


def test_a_description_may_span_lines():
    [d] = resolve(HEAD.format(name="ok", flow="f") + "description: |\n  one\n  two\ttabbed\n")
    assert d.fields["description"] == "one\ntwo\ttabbed\n"


@pytest.mark.parametrize("name", ["nightly", "Weather Summary", "ünïcödé-名前", "emoji 🚀", "a.b_c-d (v2)"])
def test_good_names_pass(name):
    assert names.name_problem(name, "deployment") is None


def test_the_error_line_escapes_the_file_name_too():
    err = ManifestError("m/\x1b[31mx\n-deployment.yaml", 3, 1, "tags.\u202e", "bad")
    assert str(err) == "m/\\x1b[31mx\\n-deployment.yaml:3:1: tags.\\u202e: bad"
