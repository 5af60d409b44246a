"""engine/translate + prefect/v3 on a 3.x server: storage 3.x lacks becomes `pull_steps`, a compared field.

The translated deployment has no storage block (nothing to find or create on the server); an s3/gcs/azure one
keeps the block's settings that are no secret as `pull_storage`, where bundles/ uploads its code.  On 2.x
nothing changes.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.bundles.locations import pulled_target
from reconciler.engine import desired, translate
from reconciler.engine.diff import changes_between
from reconciler.errors import ManifestErrors
from reconciler.manifests import manifest
from reconciler.prefect.v2 import V2Adapter, adapter_for

PULL = "prefect.deployments.steps.pull_from_remote_storage"
BELOW = "flow_name: f\nentrypoint: flow.py:main\npath: {path}\nstorage:\n{storage}"   # path: line 5, storage: line 6
NAMED_S3 = ("  bucket_path: flows-bucket/team\n  aws_access_key_id: '**********'\n"
            "  aws_secret_access_key: '**********'\n  _block_document_name: prod-code\n"
            "  _is_anonymous: false\n  _block_type_slug: s3\n  block_type_slug: s3\n")
ANONYMOUS_S3 = ("  bucket_path: flows-bucket/team\n  aws_access_key_id: AKIAREAL\n  aws_secret_access_key: real-secret\n"
                "  _is_anonymous: true\n  _block_type_slug: s3\n  block_type_slug: s3\n")


def resolved(storage: str, path: str = "code") -> desired.Desired:
    text = "name: n\nschedules: []\n" + BELOW.format(path=path, storage=storage)
    [want] = desired.resolve([manifest.parse(text.encode(), Path("x.yaml"), "x.yaml")])
    return want


def on_3x(want: desired.Desired, secrets=None) -> tuple[desired.Desired, tuple[str, ...]]:
    [out], notices = translate.for_server([want], adapter_for("3.9.1", None, secrets))
    return out, notices


def test_a_named_s3_block_becomes_a_pull_step_and_no_storage_block():
    out, _ = on_3x(resolved(NAMED_S3))
    assert out.fields["pull_steps"] == [{PULL: {"url": "s3://flows-bucket/team/code"}}]
    assert out.fields["storage"] is None and out.storage is None and out.fields["path"] == "code"
    assert (out.pull_storage.key, out.pull_storage.data) == ("s3/prod-code", {"bucket_path": "flows-bucket/team"})
    assert out.lines["pull_steps"] == out.lines["storage"] == 6
    target = pulled_target(out)      # the upload: where the step reads, with the environment's credentials
    assert (target.url, target.options, target.block) == ("s3://flows-bucket/team/code", {}, "s3/prod-code")


def test_an_anonymous_blocks_credentials_are_neither_kept_nor_sent_and_the_user_is_told():
    want = resolved(ANONYMOUS_S3)
    out, notices = on_3x(want)
    kept = json.dumps(out.to_json(reveal=True)["pull_storage"]) + json.dumps(out.fields)
    assert "real-secret" not in kept and "AKIAREAL" not in kept
    assert out.pull_storage.data == {"bucket_path": "flows-bucket/team"}
    [notice] = notices
    assert notice.startswith("x.yaml: storage s3/anonymous:") and "prefect3.storage_secrets" in notice
    assert "real-secret" not in notice
    # named Secret blocks are templated in (keyed as the plan shows the block), and then nothing needs saying
    out, notices = on_3x(want, {want.storage.key: {"secret": "aws-secret"}})
    assert out.fields["pull_steps"][0][PULL]["secret"] == "{{ prefect.blocks.secret.aws-secret }}" and not notices


def test_a_saved_plan_keeps_where_the_code_goes():
    out, _ = on_3x(resolved(NAMED_S3))
    again = desired.Desired.from_json(json.loads(json.dumps(out.to_json())))
    assert again.pull_storage == out.pull_storage and again.fields == out.fields and again.bundle_dir == out.bundle_dir


def test_a_pull_step_that_cannot_be_written_is_one_line_naming_the_manifest_line():
    with pytest.raises(ManifestErrors) as info:
        on_3x(resolved(NAMED_S3, path="../elsewhere"))
    [error] = info.value.errors
    assert (error.file, error.line, error.field) == ("x.yaml", 5, "path") and "Prefect 3 server" in str(error)
    with pytest.raises(ManifestErrors) as info:
        on_3x(resolved("  repository: https://tok@github.com/a/b\n  _block_type_slug: github\n"))
    assert info.value.errors[0].line == 6 and "tok@" not in str(info.value)


def test_block_storage_3x_has_stays_a_block_with_no_pull_steps():
    want = resolved("  basepath: /srv/flows\n  _block_type_slug: local-file-system\n")
    out, _ = on_3x(want)
    assert out.fields["pull_steps"] is None and out.storage == want.storage and out.pull_storage is None


def test_on_2x_nothing_is_translated():
    want = resolved(NAMED_S3)
    assert translate.for_server([want], V2Adapter()) == ([want], ())
    assert "pull_steps" not in want.fields


def test_pull_steps_are_read_back_compared_and_written():
    adapter = adapter_for("3.9.1")
    out, _ = on_3x(resolved(NAMED_S3))
    steps = out.fields["pull_steps"]
    live = {"name": "n", "pull_steps": steps, "storage_document_id": None, "schedules": [], "tags": []}
    have = adapter.live_fields(live, lambda doc_id: None)
    assert have["pull_steps"] == steps and have["storage"] is None
    assert adapter.live_fields({**live, "pull_steps": []}, lambda doc_id: None)["pull_steps"] is None
    assert [c.field for c in changes_between(have, {**have, "pull_steps": [{PULL: {"url": "s3://x"}}]})] == ["pull_steps"]
    body = adapter.create_body("n", "flow-id", out.fields, None, None)
    assert body["pull_steps"] == steps and body["storage_document_id"] is None
    assert adapter.patch_body({"pull_steps"}, out.fields, None, None) == {"pull_steps": steps}
    assert adapter.patch_body({"pull_steps"}, {**out.fields, "pull_steps": None}, None, None) == {"pull_steps": None}
    assert "pull_steps" not in adapter.create_body("n", "flow-id", {**out.fields, "pull_steps": None}, None, None)
