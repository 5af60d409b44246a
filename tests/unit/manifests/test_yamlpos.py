"""yamlpos.load: plain values, the 1-based line:col of every key path, one-line errors."""
from __future__ import annotations

import pytest

from reconciler.manifests import yamlpos
from reconciler.errors import ManifestError

DOC = (
    "name: n\n"                      # 1
    "tags:\n"                        # 2
    "  - a\n"                        # 3
    "  - {k: 2, seq: [3, 4]}\n"      # 4
    "parameters:\n"                  # 5
    "  nested:\n"                    # 6
    "    deep: true\n"               # 7
)


def test_values_are_plain_python():
    located = yamlpos.load(DOC.encode(), "f.yaml")
    assert located.file == "f.yaml"
    assert located.data == {
        "name": "n",
        "tags": ["a", {"k": 2, "seq": [3, 4]}],
        "parameters": {"nested": {"deep": True}},
    }


@pytest.mark.parametrize(
    "path, expected",
    [
        pytest.param((), (1, 1), id="root"),
        pytest.param(("name",), (1, 1), id="top-level key"),
        pytest.param(("tags",), (2, 1), id="key of a block sequence"),
        pytest.param(("tags", 0), (3, 5), id="sequence item"),
        pytest.param(("tags", 1), (4, 5), id="flow mapping item"),
        pytest.param(("tags", 1, "k"), (4, 6), id="key inside a flow mapping"),
        pytest.param(("tags", 1, "seq", 1), (4, 21), id="item of a flow sequence"),
        pytest.param(("parameters", "nested", "deep"), (7, 5), id="nested block mapping key"),
    ],
)
def test_positions_are_one_based_line_and_column(path, expected):
    located = yamlpos.load(DOC, "f.yaml")   # str input works like bytes
    assert located.positions[path] == expected
    assert located.where(path) == expected


def test_where_falls_back_to_the_nearest_ancestor():
    located = yamlpos.load(DOC, "f.yaml")
    assert located.where(("parameters", "nested", "missing", 0)) == (6, 3)
    assert located.where(("not-there",)) == (1, 1)


def test_error_names_file_position_and_dotted_field():
    located = yamlpos.load(DOC, "dir/f.yaml")
    err = located.error(("tags", 1, "k"), "bad value")
    assert isinstance(err, ManifestError)
    assert str(err) == "dir/f.yaml:4:6: tags.1.k: bad value"
    assert (err.file, err.line, err.col, err.field, err.message) == ("dir/f.yaml", 4, 6, "tags.1.k", "bad value")


def test_error_at_root_has_no_field():
    located = yamlpos.load(DOC, "f.yaml")
    assert str(located.error((), "whole file is wrong")) == "f.yaml:1:1: whole file is wrong"


def test_crlf_positions_and_values_match_lf():
    lf = yamlpos.load(DOC.encode(), "f.yaml")
    crlf = yamlpos.load(DOC.replace("\n", "\r\n").encode(), "f.yaml")
    assert crlf.data == lf.data
    assert crlf.positions == lf.positions


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n"])
def test_empty_document_is_none(text):
    assert yamlpos.load(text.encode(), "f.yaml").data is None


def test_timestamps_become_iso_strings():
    located = yamlpos.load(b"d: 2024-01-02\nt: 2024-01-02T03:04:05Z\nq: '2024-01-02'\n", "f.yaml")
    assert located.data == {"d": "2024-01-02", "t": "2024-01-02T03:04:05+00:00", "q": "2024-01-02"}


def test_aliases_are_resolved():
    located = yamlpos.load(b"a: &x {k: 1}\nb: *x\n", "f.yaml")
    assert located.data == {"a": {"k": 1}, "b": {"k": 1}}


@pytest.mark.parametrize(
    "text, expected",
    [
        pytest.param("a: 1\nb: 2\na: 3\n", "f.yaml:3:1: a: duplicate key (first set on line 1)", id="top level"),
        pytest.param("p:\n  x: 1\n  y: 2\n  x: 3\n", "f.yaml:4:3: p.x: duplicate key (first set on line 2)", id="nested"),
        pytest.param("p: {x: 1, x: 2}\n", "f.yaml:1:11: p.x: duplicate key (first set on line 1)", id="flow mapping"),
        pytest.param("s:\n- a: 1\n  b: 2\n  a: 3\n", "f.yaml:4:3: s.0.a: duplicate key (first set on line 2)",
                     id="inside a sequence item"),
    ],
)
def test_duplicate_keys_are_errors_naming_the_first_line(text, expected):
    with pytest.raises(ManifestError) as info:
        yamlpos.load(text.encode(), "f.yaml")
    assert str(info.value) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        pytest.param("a: 1\n  b: 2\n", "f.yaml:2:4: invalid YAML: mapping values are not allowed in this context",
                     id="bad indentation"),
        pytest.param("a: 1\n\tb: 2\n", "f.yaml:2:1: invalid YAML: found a tab character that violates indentation",
                     id="tab"),
        pytest.param("a: [1, 2\n", "f.yaml:2:1: invalid YAML: did not find expected ',' or ']' (while parsing a flow sequence opened on line 1)", id="unclosed flow"),
        pytest.param("a: 1\nb: *nope\n", "f.yaml:2:4: invalid YAML: found undefined alias", id="undefined alias"),
        pytest.param('a: "\\q"\n', "f.yaml:1:5: invalid YAML: found unknown escape character", id="bad escape"),
        pytest.param("a: 1\n---\nb: 2\n", "f.yaml:2:1: invalid YAML: but found another document",
                     id="two documents"),
    ],
)
def test_malformed_yaml_is_one_line_with_position(text, expected):
    with pytest.raises(ManifestError) as info:
        yamlpos.load(text.encode(), "f.yaml")
    assert str(info.value) == expected
    assert "\n" not in str(info.value)


def test_python_tags_are_refused_not_executed():
    with pytest.raises(ManifestError) as info:
        yamlpos.load(b"a: 1\nx: !!python/name:os.system\n", "f.yaml")
    assert str(info.value).startswith("f.yaml:2:4: x: YAML tag '!!python/name:os.system' is not allowed")


def test_mapping_keys_must_be_plain():
    with pytest.raises(ManifestError) as info:
        yamlpos.load(b"p:\n  ? [1, 2]\n  : x\n", "f.yaml")
    assert str(info.value) == "f.yaml:2:5: p: a mapping key must be a plain value"


def test_merge_keys_work_as_in_yaml_safe_load():
    # BUG: `<<` is handed to construct_object, which fails with
    # "could not determine a constructor for the tag 'tag:yaml.org,2002:merge'"; Prefect's
    # `Deployment.load_from_yaml` (yaml.safe_load) accepts it.
    text = (
        "defaults: &defaults\n"
        "  region: emea\n"
        "  days: 7\n"
        "parameters:\n"
        "  <<: *defaults\n"
        "  days: 14\n"
    )
    located = yamlpos.load(text.encode(), "f.yaml")
    assert located.data["parameters"] == {"region": "emea", "days": 14}
    assert located.where(("parameters", "days")) == (6, 3)
