"""schemas/deployment-manifest.schema.json is generated from the pydantic models and kept current."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

from fixture_paths import FIXTURES
from reconciler.manifests import schema as manifest_schema

SCHEMA_FILE = Path(__file__).resolve().parents[3] / "schemas" / "deployment-manifest.schema.json"


def test_schema_file_is_up_to_date():
    assert SCHEMA_FILE.read_text(encoding="utf-8") == manifest_schema.text(), (
        "schemas/deployment-manifest.schema.json is out of date: run "
        "`reconcile schema -o schemas/deployment-manifest.schema.json`")


def test_every_real_manifest_is_valid_against_the_schema():
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))
    files = sorted(FIXTURES.glob("*/*.yaml")) + sorted((SCHEMA_FILE.parents[1] / "examples").glob("*/*-deployment.yaml"))
    assert len(files) >= 38
    for path in files:
        errors = list(validator.iter_errors(yaml.safe_load(path.read_bytes())))
        assert not errors, f"{path.name}: {errors[0].message}"


def test_the_schema_rejects_what_the_loader_rejects():
    validator = jsonschema.Draft202012Validator(manifest_schema.generate())
    assert list(validator.iter_errors({"name": "x", "flow_name": "f", "shedule": None}))  # a typo'd key
    assert list(validator.iter_errors({"flow_name": "f"}))                                 # no name
    assert not list(validator.iter_errors({"name": "x", "flow_name": "f"}))
