"""config.load: `reconcile.yaml` at the root, validated with positions like a manifest."""
from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.manifests import config
from reconciler.errors import ManifestError


def load(tmp_path: Path, text: str) -> config.LoadedConfig:
    (tmp_path / "reconcile.yaml").write_text(text, encoding="utf-8")
    return config.load(tmp_path)


def load_error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ManifestError) as info:
        load(tmp_path, text)
    message = str(info.value)
    assert "\n" not in message
    prefix = f"{tmp_path / 'reconcile.yaml'}:"
    assert message.startswith(prefix), message
    return message[len(prefix):]


def test_no_file_gives_defaults(tmp_path):
    loaded = config.load(tmp_path)
    assert loaded.file is None
    c = loaded.config
    assert (c.source, c.api_url, c.include, c.exclude, c.ignore_differences, c.max_deletes) == (
        None, None, [], [], [], 10)


def test_root_given_as_a_file_reads_no_config(tmp_path):
    (tmp_path / "reconcile.yaml").write_text("max_deletes: 1\n")
    manifest_file = tmp_path / "a-deployment.yaml"
    manifest_file.write_text("name: n\nflow_name: f\n")
    assert config.load(manifest_file).file is None


def test_empty_file_gives_defaults(tmp_path):
    loaded = load(tmp_path, "# nothing yet\n")
    assert loaded.file == tmp_path / "reconcile.yaml"
    assert loaded.config.max_deletes == 10


def test_every_key(tmp_path):
    c = load(tmp_path, (
        "source: github.com/acme/flows//prod\n"
        "api_url: http://127.0.0.1:4200/api\n"
        "include: ['flows/*.yaml']\n"
        "exclude: [old/, '*.tmp.yaml']\n"
        "max_deletes: 0\n"
    )).config
    assert c.source == "github.com/acme/flows//prod"
    assert c.api_url == "http://127.0.0.1:4200/api"
    assert c.include == ["flows/*.yaml"]
    assert c.exclude == ["old/", "*.tmp.yaml"]
    assert c.max_deletes == 0


def test_ignore_differences_as_strings_and_patterns(tmp_path):
    c = load(tmp_path, (
        "ignore_differences:\n"
        "  - description\n"
        "  - field: parameters.n\n"
        "    deployments: ['Cat Facts/*', 'Weather Summary/weather-summary']\n"
        "  - field: tags\n"
    )).config
    assert [(r.field, r.deployments) for r in c.ignore_differences] == [
        ("description", ["*"]),
        ("parameters.n", ["Cat Facts/*", "Weather Summary/weather-summary"]),
        ("tags", ["*"]),
    ]
    assert c.ignored("Cat Facts/catfact-hourly") == ["description", "parameters.n", "tags"]
    assert c.ignored("Weather Summary/weather-summary") == ["description", "parameters.n", "tags"]
    assert c.ignored("Weather Summary/other") == ["description", "tags"]
    # fnmatch is case-sensitive, like deployment names
    assert c.ignored("cat facts/catfact-hourly") == ["description", "tags"]


@pytest.mark.parametrize(
    "text, expected",
    [
        pytest.param("source: s\nsourc: t\n", "2:1: sourc: unknown key", id="unknown-top-level"),
        pytest.param("max_deletes: -1\n",
                     "1:1: max_deletes: Input should be greater than or equal to 0 (got -1)", id="negative"),
        pytest.param("max_deletes: lots\n",
                     "1:1: max_deletes: Input should be a valid integer, unable to parse string as an integer "
                     "(got 'lots')", id="not-int"),
        pytest.param("include: '*.yml'\n", "1:1: include: Input should be a valid list (got '*.yml')",
                     id="include-string"),
        pytest.param("exclude:\n  - old/\n  - [x]\n",
                     "3:5: exclude.1: Input should be a valid string (got ['x'])", id="exclude-item"),
        pytest.param("- a\n", "1:1: reconcile.yaml must be a mapping", id="not-a-mapping"),
        pytest.param("source: a\nsource: b\n", "2:1: source: duplicate key (first set on line 1)", id="duplicate"),
        pytest.param("source: [a\n", "2:1: invalid YAML: did not find expected ',' or ']'", id="malformed"),
    ],
)
def test_bad_config_gives_one_positioned_line(tmp_path, text, expected):
    assert load_error(tmp_path, text).startswith(expected)


def test_unknown_key_message_does_not_talk_about_deployment_manifests(tmp_path):
    # BUG: the message is manifest.py's "(not part of the Prefect 2 deployment format)"
    message = load_error(tmp_path, "sourc: t\n")
    assert "deployment format" not in message


@pytest.mark.parametrize(
    "text, expected",
    [
        pytest.param(
            "ignore_differences:\n  - description\n  - field: tags\n    deploymnets: ['a/*']\n",
            "4:5: ignore_differences.1.deploymnets: unknown key", id="typo-in-rule"),
        pytest.param(
            "ignore_differences:\n  - deployments: ['a/*']\n",
            "2:5: ignore_differences.0.field: required key is missing", id="rule-without-field"),
    ],
)
def test_bad_ignore_rule_points_at_the_rule_key(tmp_path, text, expected):
    # BUG: today the str|IgnoreRule union reports the `str` branch:
    #   "3:5: ignore_differences.1.str: Input should be a valid string (got {...})"
    assert load_error(tmp_path, text).startswith(expected)


def test_ignore_rule_of_the_wrong_type_is_rejected(tmp_path):
    message = load_error(tmp_path, "ignore_differences:\n  - 3\n")
    assert message.startswith("2:5: ignore_differences.0")
