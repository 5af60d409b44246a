"""The JSON Schema of a deployment manifest, generated from the pydantic models.

`schemas/deployment-manifest.schema.json` is this function's output; a test
fails when the file is out of date (regenerate with `reconcile schema -o FILE`).
"""
from __future__ import annotations

import json
from typing import Any

from .manifest import DeploymentFile


def generate() -> dict[str, Any]:
    schema = DeploymentFile.model_json_schema(by_alias=True, mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "description": "A Prefect 2 deployment manifest (*-deployment.yaml) as `prefect deployment build` "
                       "writes it and `reconcile` reads it. Keys above `### DO NOT EDIT BELOW THIS LINE` "
                       "are the user's; the rest is generated from the flow code.",
        **{k: v for k, v in schema.items() if k != "description"},
    }


def text() -> str:
    return json.dumps(generate(), indent=2, sort_keys=False) + "\n"
