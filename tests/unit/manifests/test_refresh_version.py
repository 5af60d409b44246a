"""`build --refresh` and the manifest's `version`: a generated one (the flow file's md5) follows the code, one a
person wrote stays; every other byte of the user's part stays too."""
from __future__ import annotations

import hashlib

import pytest

from fixture_paths import FIXTURES
from reconciler.manifests.refresh import keep_user_part, rewrite_generated, split, with_version

OLD = hashlib.md5(b"old flow").hexdigest()
NEW = hashlib.md5(b"new flow").hexdigest()
TEXT = f"""###
### A complete description of a Prefect Deployment for flow 'x'
###
name: x
description: null
version: {OLD}   # written by prefect deployment build
# The work queue that will handle this deployment's runs
work_queue_name: default
tags: []
parameters: {{}}

###
### DO NOT EDIT BELOW THIS LINE
###
flow_name: x
# a comment the round trip keeps
entrypoint: flow.py:main
parameter_openapi_schema:
  title: Parameters
  type: object
  properties: {{}}
"""


def test_a_generated_version_follows_the_code_and_nothing_else_moves():
    out = rewrite_generated(TEXT, {"flow_name": "x", "version": NEW}, "x.yaml")
    assert out == TEXT.replace(OLD, NEW)


def test_a_version_a_person_wrote_stays():
    for mine in ("'2024.06.1'", "release-7", '"1.0"', "v2 # pinned by hand"):
        text = TEXT.replace(f"{OLD}   # written by prefect deployment build", mine)
        assert rewrite_generated(text, {"flow_name": "x", "version": NEW}, "x.yaml") == text


def test_the_generated_part_and_the_version_change_together():
    out = rewrite_generated(TEXT, {"flow_name": "y", "version": NEW}, "x.yaml")
    top, bottom = split(out, "x.yaml")
    assert f"version: {NEW}   # written by prefect deployment build\n" in top
    assert "flow_name: y\n# a comment the round trip keeps\n" in bottom


@pytest.mark.parametrize("version, written", [("1.0", 'version: "1.0"'), ("release-7", "version: release-7"),
                                              ("yes", 'version: "yes"'), ("a b", 'version: "a b"')])
def test_a_version_from_the_flow_decorator_is_written_as_text(version, written):
    top, _ = split(TEXT, "x.yaml")
    assert f"{written}   # written by" in with_version(top, version)


def test_build_over_an_existing_manifest_refreshes_a_generated_version_and_honours_an_explicit_one():
    fresh = TEXT.replace(OLD, NEW).replace("\nname: x\n", "\nname: other\n")
    assert keep_user_part(TEXT, fresh, "x.yaml", version=NEW) == TEXT.replace(OLD, NEW)
    mine = TEXT.replace(OLD, "hand-made")
    assert keep_user_part(mine, fresh, "x.yaml", version=NEW) == mine
    assert "version: '7'" not in keep_user_part(mine, fresh, "x.yaml", version="7", force_version=True)
    assert 'version: "7"' in keep_user_part(mine, fresh, "x.yaml", version="7", force_version=True)


def test_the_real_prefect_manifest_keeps_every_byte_but_its_version():
    text = (FIXTURES / "prefect-2.20.27" / "catfact-deployment.yaml").read_text()
    old = next(line for line in text.splitlines() if line.startswith("version: ")).split()[1]
    out = rewrite_generated(text, {"version": NEW}, "catfact")
    assert out == text.replace(f"version: {old}\n", f"version: {NEW}\n", 1)
