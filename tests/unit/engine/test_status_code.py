"""status and code: a deployment whose fields match but whose code the plan would upload is drifted."""
from __future__ import annotations

import json
from dataclasses import replace

from reconciler.bundles.uploads import Upload
from reconciler.engine import status
from reconciler.render import status as status_render

try:
    from .. import prefect_fake as pf
except ImportError:
    import prefect_fake as pf


def upload(*deployments: str, marker_before: str | None = "0" * 64, write=("flows/etl.py",), remove=()) -> Upload:
    return Upload(bundle=".", bundle_dir="/repo", storage="local-file-system/prod", path="etl",
                  url="file:///srv/flows/etl", digest="1" * 64, marker_before=marker_before, write=tuple(write),
                  remove=tuple(remove), bytes=120, deployments=deployments)


def in_sync_plan():
    fake = pf.FakePrefect()
    for name in ("a", "b"):
        fake.deploy_manifest(pf.manifest(name))
    fake.set_inventory(pf.SOURCE, ["Cat Facts/a", "Cat Facts/b"])
    return pf.make_plan(fake, [pf.manifest("a"), pf.manifest("b")]).plan


def test_code_to_upload_is_drift_for_the_deployments_using_it():
    plan = replace(in_sync_plan(), uploads=(upload("Cat Facts/a"),))
    by_id = {e.identity: e for e in status.entries(plan)}
    assert (by_id["Cat Facts/a"].status, by_id["Cat Facts/b"].status) == ("drifted", "in sync")
    assert by_id["Cat Facts/a"].detail == (
        "its code (.) differs from local-file-system/prod path etl: 1 file(s) to upload, 0 to remove")
    assert status.drifted(plan)
    assert status.counts(status.entries(plan))["drifted"] == 1


def test_code_never_uploaded_says_so():
    plan = replace(in_sync_plan(), uploads=(upload("Cat Facts/a", "Cat Facts/b", marker_before=None),))
    entries = status.entries(plan)
    assert [e.status for e in entries] == ["drifted", "drifted"]
    assert all("is not at local-file-system/prod path etl yet" in e.detail for e in entries)


def test_json_names_the_code_drift_and_in_sync_entries_keep_their_shape():
    raw = status.to_json(replace(in_sync_plan(), uploads=(upload("Cat Facts/a", remove=("old.py",)),)))
    a, b = raw["deployments"]
    assert (a["deployment"], a["status"]) == ("Cat Facts/b", "in sync") and "code" not in a
    assert b["status"] == "drifted" and b["code"] == {
        "bundle": ".", "storage": "local-file-system/prod", "path": "etl", "uploaded": True,
        "files_changed": 1, "files_removed": 1}
    assert raw["summary"]["drifted"] == 1
    json.dumps(raw)


def test_field_drift_and_code_drift_are_both_named():
    fake = pf.FakePrefect()
    fake.deploy_manifest(pf.manifest("a", tags=["old"]))
    fake.set_inventory(pf.SOURCE, ["Cat Facts/a"])
    plan = pf.make_plan(fake, [pf.manifest("a", tags=["new"])]).plan
    [entry] = status.entries(replace(plan, uploads=(upload("Cat Facts/a"),)))
    assert entry.status == "drifted"
    assert entry.detail.startswith("1 field(s) differ: tags; its code (.) differs")


def test_text_and_markdown_show_it():
    plan = replace(in_sync_plan(), uploads=(upload("Cat Facts/a"),))
    text = status_render.render_text(plan)
    assert any("drifted" in line and "Cat Facts/a" in line and "1 file(s) to upload" in line
               for line in text.splitlines()), text
    assert text.rstrip().endswith("1 in sync, 1 drifted.")
    assert "| drifted | `Cat Facts/a` | its code (.) differs" in status_render.render_markdown(plan)
