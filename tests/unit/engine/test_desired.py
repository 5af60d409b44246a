"""desired.resolve: manifests → the deployments the API should hold (pure), and every load-time check."""
from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.engine import desired
from reconciler.manifests import discover, manifest
from reconciler.manifests.configmodel import Config
from reconciler.errors import ManifestErrors

HEAD = "name: n\nflow_name: f\n"   # lines 1-2

SCHEMA = (
    "parameter_openapi_schema:\n"
    "  title: Parameters\n"
    "  type: object\n"
    "  properties:\n"
    "    url:\n"
    "      title: url\n"
    "      type: string\n"
    "    n:\n"
    "      title: n\n"
    "      default: 3\n"
    "      type: integer\n"
    "    opts:\n"
    "      $ref: '#/definitions/Opts'\n"
    "  required:\n"
    "  - url\n"
    "  definitions:\n"
    "    Opts:\n"
    "      type: object\n"
    "      properties:\n"
    "        depth: {type: integer}\n"
)

MASK = "'**********'"


def parse(text: str, display: str = "x.yaml") -> manifest.Manifest:
    return manifest.parse(text.encode(), Path(display), display)


def resolve_one(text: str) -> desired.Desired:
    [d] = desired.resolve([parse(text)])
    return d


def resolve_error(text: str) -> str:
    with pytest.raises(ManifestErrors) as info:
        desired.resolve([parse(text)])
    assert len(info.value.errors) == 1
    message = str(info.value)
    assert "\n" not in message
    return message


# --------------------------------------------------------------------------- the compared shape


def test_minimal_manifest_fields():
    d = resolve_one(HEAD)
    assert (d.identity, d.flow_name, d.name, d.manifest) == ("f/n", "f", "n", "x.yaml")
    # every compared field but `pull_steps`, which only the Prefect 3 translation gives (prefect/v3fields)
    assert tuple(d.fields) == tuple(f for f in desired.FIELDS if f != "pull_steps")
    assert d.fields == {
        "description": None, "version": None, "work_queue_name": "default", "work_pool_name": None,
        "tags": [], "parameters": {}, "schedules": [], "is_schedule_active": True, "infra_overrides": {},
        "infrastructure": d.infrastructure.key, "storage": None, "path": None, "entrypoint": None,
        "manifest_path": None, "parameter_openapi_schema": None, "enforce_parameter_schema": False,
    }
    assert d.storage is None
    assert d.warnings == ()


def test_no_infrastructure_means_prefects_default_process():
    """An omitted block and an explicit default Process (as `build` writes it) are the same thing."""
    implicit = resolve_one(HEAD).infrastructure
    explicit = resolve_one(HEAD + (
        "infrastructure:\n  type: process\n  env: {}\n  labels: {}\n  name: null\n  command: null\n"
        "  stream_output: true\n  working_dir: null\n  block_type_slug: process\n  _block_type_slug: process\n"
    )).infrastructure
    assert implicit.anonymous and explicit.anonymous
    assert implicit.key == explicit.key
    assert implicit.key.startswith("process/anonymous:")


def test_named_blocks_are_referenced_by_slug_and_name():
    d = resolve_one(HEAD + (
        "infrastructure:\n  _block_type_slug: docker-container\n  _block_document_name: prod\n  _is_anonymous: false\n"
        "  image: x\nstorage:\n  _block_type_slug: s3\n  _block_document_name: flows\n"
        f"  bucket_path: team/flows\n  aws_access_key_id: AKIAEXAMPLE\n  aws_secret_access_key: {MASK}\n"
    ))
    assert d.fields["infrastructure"] == "docker-container/prod"
    assert d.fields["storage"] == "s3/flows"
    # of a named storage block only what a Prefect 3 pull step needs is kept, never a secret field
    assert (d.storage.slug, d.storage.name, d.storage.data) == ("s3", "flows", {"bucket_path": "team/flows"})
    # of a named infrastructure block, the settings its Prefect 3 pool type takes as job variables
    assert (d.infrastructure.slug, d.infrastructure.name, d.infrastructure.data) == ("docker-container", "prod",
                                                                                    {"image": "x"})


def test_a_named_infrastructure_blocks_settings_become_job_variables_on_prefect3_without_masked_values():
    from reconciler.engine.translate import for_server
    from reconciler.prefect.v3 import V3Adapter
    d = resolve_one(HEAD + (
        "infra_overrides:\n  env.EXTRA: '1'\n"
        "infrastructure:\n  _block_type_slug: process\n  _block_document_name: prod\n  _is_anonymous: false\n"
        f"  type: process\n  env:\n    LEVEL: debug\n    TOKEN: {MASK}\n  working_dir: /srv\n  stream_output: true\n"
    ))
    assert d.infrastructure.data == {"env": {"LEVEL": "debug"}, "working_dir": "/srv", "stream_output": True}
    [translated], _ = for_server([d], V3Adapter())
    assert translated.fields["infra_overrides"] == {"env.LEVEL": "debug", "env.EXTRA": "1", "working_dir": "/srv",
                                                    "stream_output": True}
    assert translated.fields["work_pool_name"] == "reconcile-process"


def test_anonymous_blocks_are_compared_by_content():
    a = resolve_one(HEAD + "storage:\n  _block_type_slug: local-file-system\n  basepath: /a\n")
    b = resolve_one(HEAD + "storage:\n  _block_type_slug: local-file-system\n  basepath: /b\n")
    assert a.fields["storage"].startswith("local-file-system/anonymous:")
    assert a.fields["storage"] != b.fields["storage"]
    assert a.storage.data == {"basepath": "/a"}


def test_tags_are_a_sorted_set():
    assert resolve_one(HEAD + "tags: [b, a, b]\n").fields["tags"] == ["a", "b"]


def test_old_schedule_shape_takes_is_schedule_active():
    d = resolve_one(HEAD + "schedule:\n  cron: 30 * * * *\n  timezone: null\n  day_or: true\nis_schedule_active: false\n")
    assert d.fields["schedules"] == [
        {"schedule": {"cron": "30 * * * *", "timezone": "UTC", "day_or": True}, "active": False}]
    assert d.fields["is_schedule_active"] is False
    assert d.lines["schedules"] == 3


def test_new_schedules_list_is_canonical_and_sorted():
    d = resolve_one(HEAD + (
        "schedule: null\n"
        "schedules:\n"
        "- schedule:\n    rrule: FREQ=WEEKLY;BYDAY=MO\n    timezone: Europe/Amsterdam\n  active: true\n"
        "- schedule:\n    interval: 3600\n  active: false\n"
        "- schedule:\n    cron: 0 * * * *\n"
    ))
    assert {"schedule": {"interval": 3600.0, "timezone": "UTC"}, "active": False} in d.fields["schedules"]
    assert {"schedule": {"cron": "0 * * * *", "timezone": "UTC", "day_or": True}, "active": True} in d.fields["schedules"]
    assert len(d.fields["schedules"]) == 3
    # order in the file does not matter
    reordered = resolve_one(HEAD + (
        "schedules:\n"
        "- schedule:\n    cron: 0 * * * *\n"
        "- schedule:\n    interval: 3600\n  active: false\n"
        "- schedule:\n    rrule: FREQ=WEEKLY;BYDAY=MO\n    timezone: Europe/Amsterdam\n  active: true\n"
    ))
    assert reordered.fields["schedules"] == d.fields["schedules"]


def test_job_variables_line_is_reported_as_infra_overrides():
    d = resolve_one(HEAD + "job_variables:\n  image: x\n")
    assert d.fields["infra_overrides"] == {"image": "x"}
    assert d.lines["infra_overrides"] == 3


def test_triggers_give_a_warning_with_the_line():
    d = resolve_one(HEAD + "triggers:\n- name: t\n")
    assert d.warnings == ("x.yaml:3: triggers are not reconciled; manage automations separately",)


def test_missing_required_parameter_is_allowed():
    # Prefect 2 lets a deployment leave a required parameter for the run to supply.
    d = resolve_one(HEAD + "parameters:\n  n: 5\n" + SCHEMA)
    assert d.fields["parameters"] == {"n": 5}
    assert d.fields["parameter_openapi_schema"]["required"] == ["url"]


def test_json_round_trip():
    d = resolve_one(HEAD + "tags: [a]\nschedule:\n  interval: 60\nstorage:\n  _block_type_slug: s3\n"
                           "  _block_document_name: flows\n")
    assert desired.Desired.from_json(d.to_json()) == d


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "text, expected",
    [
        pytest.param(HEAD + "schedule:\n  cron: 61 * * * *\n",
                     "x.yaml:4:3: schedule.cron: invalid cron expression '61 * * * *'", id="cron"),
        pytest.param(HEAD + "schedules:\n- schedule:\n    cron: '0 * * *'\n  active: true\n",
                     "x.yaml:5:5: schedules.0.schedule.cron: invalid cron expression '0 * * *'", id="cron-in-list"),
        pytest.param(HEAD + "schedule:\n  rrule: FREQ=SOMETIMES\n",
                     "x.yaml:4:3: schedule.rrule: invalid rrule 'FREQ=SOMETIMES': invalid 'FREQ': SOMETIMES",
                     id="rrule"),
        pytest.param(HEAD + "schedule:\n  rrule: FREQ=DAILY;COUNT=3\n",
                     "x.yaml:4:3: schedule.rrule: rrule with COUNT is not supported by Prefect; use UNTIL",
                     id="rrule-count"),
        pytest.param(HEAD + "schedule:\n  cron: 0 * * * *\n  timezone: Mars/Olympus\n",
                     "x.yaml:5:3: schedule.timezone: unknown timezone 'Mars/Olympus'", id="timezone"),
        pytest.param(HEAD + "schedule:\n  interval: 0\n",
                     "x.yaml:4:3: schedule.interval: interval must be greater than 0 (got 0)", id="interval-0"),
        pytest.param(HEAD + "schedules:\n  - schedule: {interval: 60}\n  - schedule: {interval: 0}\n",
                     "x.yaml:5:16: schedules.1.schedule.interval: interval must be greater than 0 (got 0)",
                     id="interval-0-second-entry"),
        pytest.param(HEAD + "schedule:\n  every: 5\n",
                     "x.yaml:3:1: schedule: a schedule needs one of `interval`, `cron` or `rrule`", id="no-kind"),
        pytest.param(HEAD + "schedule:\n  cron: 0 * * * *\n  tz: UTC\n",
                     "x.yaml:5:3: schedule.tz: unknown key for a cron schedule (allowed: cron, day_or, timezone)",
                     id="schedule-unknown-key"),
        pytest.param(HEAD + "parameters:\n  url: u\n  n: three\n" + SCHEMA,
                     "x.yaml:5:3: parameters.n: does not match the flow's parameter schema: "
                     "'three' is not of type 'integer'", id="parameter-type"),
        pytest.param(HEAD + "parameters: {url: u, opts: {depth: deep}}\n" + SCHEMA,
                     "x.yaml:3:29: parameters.opts.depth: does not match the flow's parameter schema: "
                     "'deep' is not of type 'integer'", id="parameter-via-ref"),
        pytest.param(HEAD + "parameters:\n  url: u\n  count: 3\n" + SCHEMA,
                     "x.yaml:5:3: parameters.count: not a parameter of flow 'f' (its parameters: url, n, opts)",
                     id="parameter-not-in-schema"),
        pytest.param(HEAD + f"storage:\n  _block_type_slug: s3\n  bucket_path: b\n  aws_secret_access_key: {MASK}\n",
                     "x.yaml:6:3: storage.aws_secret_access_key: this inline (anonymous) s3 block has secrets "
                     "masked by Prefect ('**********') and cannot be recreated; save it as a named block and "
                     "reference it by `_block_document_name`", id="masked-anonymous-storage"),
        pytest.param(HEAD + ("storage:\n  _block_type_slug: s3\n  _block_document_name: anonymous-1\n"
                             f"  _is_anonymous: true\n  aws_secret_access_key: {MASK}\n"),
                     "x.yaml:7:3: storage.aws_secret_access_key: this inline (anonymous) s3 block has secrets "
                     "masked by Prefect ('**********') and cannot be recreated; save it as a named block and "
                     "reference it by `_block_document_name`", id="masked-anonymous-with-doc-name"),
        pytest.param(HEAD + ("infrastructure:\n  _block_type_slug: cloud-run-job\n  credentials:\n"
                             f"    block_type_slug: gcp-credentials\n    service_account_info:\n"
                             f"      private_key: {MASK}\n"),
                     "x.yaml:8:7: infrastructure.credentials.service_account_info.private_key: this inline "
                     "(anonymous) cloud-run-job block has secrets masked by Prefect ('**********') and cannot be "
                     "recreated; save it as a named block and reference it by `_block_document_name`",
                     id="masked-nested-block"),
        pytest.param(HEAD + f"infrastructure:\n  type: process\n  command:\n  - a\n  - {MASK}\n",
                     "x.yaml:7:5: infrastructure.command.1: this inline (anonymous) process block has secrets "
                     "masked by Prefect ('**********') and cannot be recreated; save it as a named block and "
                     "reference it by `_block_document_name`", id="masked-in-list"),
    ],
)
def test_resolve_errors_are_one_positioned_line(text, expected):
    assert resolve_error(text) == expected


def test_parameter_for_a_flow_without_parameters_is_rejected():
    # BUG: `if props and key not in props` skips the check when the schema has no properties,
    # so the "(its parameters: none)" branch is unreachable; Prefect fails the run instead.
    schema = ("parameter_openapi_schema:\n  title: Parameters\n  type: object\n  properties: {}\n"
              "  required: null\n  definitions: null\n")
    assert resolve_error(HEAD + "parameters:\n  x: 1\n" + schema) == (
        "x.yaml:4:3: parameters.x: not a parameter of flow 'f' (its parameters: none)")


def test_every_bad_manifest_is_reported():
    bad_cron = parse("name: a\nflow_name: f\nschedule:\n  cron: nope\n", "a.yaml")
    good = parse("name: b\nflow_name: f\n", "b.yaml")
    bad_interval = parse("name: c\nflow_name: f\nschedule:\n  interval: 0\n", "c.yaml")
    with pytest.raises(ManifestErrors) as info:
        desired.resolve([bad_cron, good, bad_interval])
    assert str(info.value).splitlines() == [
        "a.yaml:4:3: schedule.cron: invalid cron expression 'nope'",
        "c.yaml:4:3: schedule.interval: interval must be greater than 0 (got 0)",
    ]


def test_duplicate_identity_across_two_files_names_both(tmp_path, monkeypatch):
    (tmp_path / "team-a").mkdir()
    (tmp_path / "team-b").mkdir()
    (tmp_path / "team-a" / "etl-deployment.yaml").write_text("name: nightly\nflow_name: etl\n")
    (tmp_path / "team-b" / "etl-deployment.yaml").write_text("# copied\n\nflow_name: etl\nname: nightly\n")
    monkeypatch.chdir(tmp_path)
    loaded = discover.load_all(tmp_path, Config())
    with pytest.raises(ManifestErrors) as info:
        desired.resolve(loaded.manifests)
    assert str(info.value) == (
        "team-b/etl-deployment.yaml:4:1: name: deployment 'etl/nightly' is also declared in "
        "team-a/etl-deployment.yaml:1; an identity (flow_name/name) may appear once")


def test_same_name_in_different_flows_is_fine():
    out = desired.resolve([parse("name: n\nflow_name: a\n", "a.yaml"), parse("name: n\nflow_name: b\n", "b.yaml")])
    assert [d.identity for d in out] == ["a/n", "b/n"]
