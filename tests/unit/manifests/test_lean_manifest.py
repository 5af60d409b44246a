"""A loaded manifest is kept lean (no second copy of the document, shared bookkeeping), and says the same."""
from __future__ import annotations

from pathlib import Path

from reconciler.manifests import manifest

TEXT = """\
name: {name}
description: null
tags:
- a
parameters:
  nested:
    deep: 1
schedules:
- schedule:
    cron: 0 * * * *
  active: true
flow_name: Flow
infrastructure:
  type: process
  _block_type_slug: process
"""


def parse(name: str, text: str = TEXT) -> manifest.Manifest:
    return manifest.parse(text.format(name=name).encode(), Path("/nowhere") / f"{name}.yaml", f"{name}.yaml")


def test_positions_below_the_top_level_are_found_when_an_error_asks():
    m = parse("a")
    assert str(m.error(("parameters", "nested", "deep"), "bad")) == "a.yaml:7:5: parameters.nested.deep: bad"
    assert str(m.error(("schedules", 0, "schedule", "cron"), "bad")).startswith("a.yaml:10:5: ")
    assert m.line_of("flow_name") == 12 and m.above_marker("name")


def test_what_a_manifest_set_is_still_its_own():
    a, b = parse("a"), parse("b")
    assert a.spec.model_fields_set == b.spec.model_fields_set
    assert "description" in a.spec.model_fields_set and "storage" not in a.spec.model_fields_set
    copied = a.spec.model_copy(update={"storage": None, "path": "/x"})
    assert "path" in copied.model_fields_set
    assert "path" not in a.spec.model_fields_set and "path" not in b.spec.model_fields_set
    assert a.spec.model_dump(exclude_unset=True)["parameters"] == {"nested": {"deep": 1}}
    assert a.spec.infrastructure.model_fields_set == b.spec.infrastructure.model_fields_set
