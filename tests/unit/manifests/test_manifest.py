"""manifest.parse: the Prefect 2 deployment file format, validated, with one-line positioned errors."""
from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.manifests import manifest
from reconciler.errors import ManifestError

HEAD = "name: n\nflow_name: f\n"   # lines 1-2 of most cases below


def parse(text: str, display: str = "x.yaml") -> manifest.Manifest:
    return manifest.parse(text.encode(), Path("/somewhere") / display, display)


def error_line(text: str) -> str:
    with pytest.raises(ManifestError) as info:
        parse(text)
    message = str(info.value)
    assert "\n" not in message, "a manifest error must be one line"
    return message


# --------------------------------------------------------------------------- good input


def test_minimal_manifest_gets_prefect_defaults():
    m = parse(HEAD)
    assert m.identity == "f/n"
    assert m.display == "x.yaml"
    assert m.path == Path("/somewhere/x.yaml")
    spec = m.spec
    assert spec.work_queue_name == "default"
    assert spec.tags == [] and spec.parameters == {} and spec.triggers == []
    assert spec.schedule is None and spec.schedules is None and spec.infrastructure is None
    assert m.marker_line is None


def test_nulls_for_collections_mean_empty():
    spec = parse(HEAD + "parameters:\ntags:\ntriggers: null\n").spec
    assert (spec.parameters, spec.tags, spec.triggers) == ({}, [], [])


@pytest.mark.parametrize(
    "line, expected",
    [
        pytest.param("version: 2", "2", id="int"),
        pytest.param("version: 0.1", "0.1", id="float"),
        pytest.param("version: '1'", "1", id="quoted"),
        pytest.param("version: 0.0.1", "0.0.1", id="dotted text"),
        pytest.param("version: null", None, id="null"),
    ],
)
def test_version_is_text(line, expected):
    assert parse(HEAD + line + "\n").spec.version == expected


def test_both_schedule_shapes_are_accepted():
    old = parse(HEAD + "schedule:\n  cron: 0 * * * *\nis_schedule_active: false\n").spec
    assert old.schedule == {"cron": "0 * * * *"} and old.is_schedule_active is False
    new = parse(HEAD + "schedule: null\nschedules:\n- schedule:\n    interval: 60\n  active: false\n").spec
    assert new.schedules is not None and new.schedules[0].schedule == {"interval": 60}
    assert new.schedules[0].active is False


def test_job_variables_is_read_as_overrides():
    assert parse(HEAD + "job_variables:\n  image: x\n").spec.overrides == {"image": "x"}
    assert parse(HEAD + "infra_overrides:\n  env.FOO: bar\n").spec.overrides == {"env.FOO": "bar"}


@pytest.mark.parametrize(
    "block, slug, named",
    [
        pytest.param("  type: process\n", "process", False, id="prefect 2.1 type only"),
        pytest.param("  _block_type_slug: docker-container\n  _block_document_name: prod\n  _is_anonymous: false\n",
                     "docker-container", True, id="saved block"),
        pytest.param("  block_type_slug: process\n  _block_document_name: anonymous-1\n  _is_anonymous: true\n",
                     "process", False, id="anonymous with a document name"),
    ],
)
def test_block_slug_and_named(block, slug, named):
    spec = parse(HEAD + "infrastructure:\n" + block).spec
    assert spec.infrastructure.slug == slug
    assert spec.infrastructure.named is named


def test_block_data_excludes_bookkeeping_keys():
    spec = parse(HEAD + "storage:\n  basepath: /b\n  _block_document_id: abc\n"
                 "  _block_document_name: dev\n  _is_anonymous: false\n  _block_type_slug: local-file-system\n").spec
    assert spec.storage.data == {"basepath": "/b"}
    assert spec.storage.document_name == "dev"


MARKED = (
    "name: n\n"                               # 1
    "work_queue_name: q\n"                    # 2
    "\n"                                      # 3
    "###\n"                                   # 4
    "### DO NOT EDIT BELOW THIS LINE\n"       # 5
    "###\n"                                   # 6
    "flow_name: f\n"                          # 7
    "path: /p\n"                              # 8
)


def test_marker_line_and_above_marker():
    m = parse(MARKED)
    assert m.marker_line == 5
    assert m.above_marker("work_queue_name") is True
    assert m.above_marker("path") is False
    assert m.line_of("path") == 8


def test_marker_line_with_crlf():
    assert parse(MARKED.replace("\n", "\r\n")).marker_line == 5


def test_no_marker_means_everything_is_editable():
    m = parse(HEAD + "path: /p\n")
    assert m.marker_line is None and m.above_marker("path")


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "text, expected",
    [
        # malformed YAML
        pytest.param("name: n\n  flow_name: f\n",
                     "x.yaml:2:12: invalid YAML: mapping values are not allowed in this context", id="yaml-indent"),
        pytest.param("name: n\nflow_name: [f\n",
                     "x.yaml:3:1: invalid YAML: did not find expected ',' or ']' (while parsing a flow sequence opened on line 2)", id="yaml-unclosed"),
        # duplicate keys
        pytest.param("name: n\nflow_name: f\nname: m\n",
                     "x.yaml:3:1: name: duplicate key (first set on line 1)", id="duplicate-top"),
        pytest.param(HEAD + "parameters:\n  x: 1\n  y: 2\n  x: 3\n",
                     "x.yaml:6:3: parameters.x: duplicate key (first set on line 4)", id="duplicate-nested"),
        # not a mapping
        pytest.param("just text\n", "x.yaml:1:1: a deployment manifest must be a mapping of keys to values",
                     id="scalar-document"),
        pytest.param("", "x.yaml:1:1: a deployment manifest must be a mapping of keys to values", id="empty-file"),
        pytest.param("- name: n\n", "x.yaml:1:1: a deployment manifest must be a mapping of keys to values",
                     id="list-document"),
        # wrong types
        pytest.param(HEAD + "tags: prod\n", "x.yaml:3:1: tags: Input should be a valid list (got 'prod')",
                     id="tags-string"),
        pytest.param(HEAD + "tags:\n- ok\n- {x: 1}\n",
                     "x.yaml:5:3: tags.1: Input should be a valid string (got {'x': 1})", id="tags-item-mapping"),
        pytest.param(HEAD + "parameters: [1]\n",
                     "x.yaml:3:1: parameters: Input should be a valid dictionary (got [1])", id="parameters-list"),
        pytest.param(HEAD + "is_schedule_active: maybe\n",
                     "x.yaml:3:1: is_schedule_active: Input should be a valid boolean, unable to interpret input "
                     "(got 'maybe')", id="bool-garbage"),
        pytest.param(HEAD + "version: true\n", "x.yaml:3:1: version: Input should be a valid string (got True)",
                     id="version-bool"),
        pytest.param("name: 3\nflow_name: f\n", "x.yaml:1:1: name: Input should be a valid string (got 3)",
                     id="name-int"),
        pytest.param("name:\nflow_name: f\n", "x.yaml:1:1: name: Input should be a valid string (got None)",
                     id="name-null"),
        pytest.param(HEAD + "schedule: [1]\n",
                     "x.yaml:3:1: schedule: Input should be a valid dictionary (got [1])", id="schedule-list"),
        pytest.param(HEAD + "infrastructure: process\n",
                     "x.yaml:3:1: infrastructure: Input should be a valid dictionary or instance of BlockSpec "
                     "(got 'process')", id="infrastructure-string"),
        # unknown keys
        pytest.param(HEAD + "work_queue: q\n",
                     "x.yaml:3:1: work_queue: unknown key (not part of the Prefect 2 deployment format)",
                     id="unknown-top"),
        pytest.param(HEAD + "schedules:\n- schedule: {interval: 60}\n  actve: true\n",
                     "x.yaml:5:3: schedules.0.actve: unknown key (not part of the Prefect 2 deployment format)",
                     id="unknown-in-schedules-entry"),
        # missing required keys
        pytest.param("flow_name: f\ntags: []\n", "x.yaml:1:1: name: required key is missing", id="missing-name"),
        pytest.param("name: n\ntags: []\n", "x.yaml:1:1: flow_name: required key is missing", id="missing-flow_name"),
        pytest.param(HEAD + "schedules:\n- active: true\n",
                     "x.yaml:4:3: schedules.0.schedule: required key is missing", id="missing-schedule-in-entry"),
        # blocks
        pytest.param(HEAD + "infrastructure:\n  env: {}\n",
                     "x.yaml:3:1: infrastructure: block has no type: add `_block_type_slug` (e.g. `process`)",
                     id="infrastructure-no-type"),
        pytest.param(HEAD + "storage:\n  basepath: /b\n  _block_document_name: dev\n",
                     "x.yaml:3:1: storage: block has no type: add `_block_type_slug` (e.g. `process`)",
                     id="storage-no-type"),
        pytest.param(HEAD + "infra_overrides: {}\njob_variables: {}\n",
                     "x.yaml:4:1: job_variables: set either infra_overrides or job_variables, not both",
                     id="overrides-twice"),
    ],
)
def test_bad_manifest_gives_one_positioned_line(text, expected):
    assert error_line(text) == expected


def test_error_carries_its_parts():
    with pytest.raises(ManifestError) as info:
        parse(HEAD + "tags: prod\n", display="sub/y-deployment.yaml")
    err = info.value
    assert (err.file, err.line, err.col, err.field) == ("sub/y-deployment.yaml", 3, 1, "tags")
