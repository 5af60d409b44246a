"""Real manifests: Prefect 2.20.27's own output, 36 committed to public repositories, and the examples.

Every one must load; `desired.resolve` must give the facts in TABLE (or its exact one-line error).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest
import yaml

from reconciler.engine import desired
from reconciler.manifests import manifest, yamlpos
from reconciler.errors import ManifestErrors

from fixture_paths import FIXTURES  # noqa: E402
PREFECT_DIR = FIXTURES / "prefect-2.20.27"
REAL_DIR = FIXTURES / "real-world"
EXAMPLES_DIR = Path(__file__).resolve().parents[3] / "examples"

PREFECT_FILES = sorted(PREFECT_DIR.glob("*.yaml"))
REAL_FILES = sorted(REAL_DIR.glob("*.yaml"))
EXAMPLE_FILES = sorted(EXAMPLES_DIR.glob("*/*-deployment.yaml"))
ALL_FILES = PREFECT_FILES + REAL_FILES + EXAMPLE_FILES

MARKER = "### DO NOT EDIT BELOW THIS LINE"
MASKED_S3 = ("this inline (anonymous) s3 block has secrets masked by Prefect ('**********') and cannot be "
             "recreated; save it as a named block and reference it by `_block_document_name`")


def load(path: Path, raw: Optional[bytes] = None) -> manifest.Manifest:
    return manifest.parse(path.read_bytes() if raw is None else raw, path, path.name)


def test_fixture_sets_are_complete():
    assert len(REAL_FILES) == 36
    assert [p.name for p in PREFECT_FILES] == ["catfact-deployment.yaml", "plain-deployment.yaml"]
    assert [p.parent.name for p in EXAMPLE_FILES] == ["catfact", "reports", "weather"]


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: p.name)
def test_every_fixture_parses(path):
    m = load(path)
    assert m.identity == f"{m.spec.flow_name}/{m.spec.name}"


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: p.name)
def test_values_are_what_yaml_safe_load_sees(path):
    """Our position-keeping loader reads the same values as Prefect's own `yaml.safe_load`."""
    def plain(value):
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        if isinstance(value, (dt.datetime, dt.date)):
            return value.isoformat()
        return value

    raw = path.read_bytes()
    assert yamlpos.load(raw, path.name).data == plain(yaml.safe_load(raw))


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: p.name)
def test_marker_line_is_recorded(path):
    lines = path.read_bytes().decode().splitlines()
    expected = [i for i, line in enumerate(lines, 1) if line.rstrip() == MARKER]
    assert len(expected) == 1, "every fixture has exactly one marker"
    assert load(path).marker_line == expected[0]


@pytest.mark.parametrize(
    "path, line",
    [
        (PREFECT_DIR / "catfact-deployment.yaml", 26),
        (PREFECT_DIR / "plain-deployment.yaml", 28),
        (REAL_DIR / "coolhackboy__log-flow-repo__log-flow-docker-deployment.yaml", 17),   # CRLF
        (REAL_DIR / "anna-geller__prefect-deployment-patterns__a_project_template__deployment.yaml", 43),
    ],
    ids=lambda v: v.name if isinstance(v, Path) else str(v),
)
def test_marker_line_values(path, line):
    assert load(path).marker_line == line


def test_above_marker_follows_the_marker():
    m = load(PREFECT_DIR / "catfact-deployment.yaml")
    assert m.above_marker("work_queue_name") and m.above_marker("infra_overrides")
    assert not m.above_marker("infrastructure") and not m.above_marker("storage")
    plain = load(PREFECT_DIR / "plain-deployment.yaml")
    assert plain.above_marker("infrastructure")   # anonymous infrastructure sits above the marker


def test_crlf_file_parses_cleanly():
    path = REAL_DIR / "coolhackboy__log-flow-repo__log-flow-docker-deployment.yaml"
    raw = path.read_bytes()
    assert b"\r\n" in raw
    m = load(path, raw)
    assert (m.spec.name, m.spec.flow_name, m.spec.work_pool_name) == ("log-flow-repo", "log-flow", "default-agent-pool")
    assert "\r" not in repr(yamlpos.load(raw, path.name).data)


@pytest.mark.parametrize("path", PREFECT_FILES + REAL_FILES[:12], ids=lambda p: p.name)
def test_crlf_version_of_a_file_is_the_same_manifest(path):
    raw = path.read_bytes().replace(b"\r\n", b"\n")
    lf, crlf = load(path, raw), load(path, raw.replace(b"\n", b"\r\n"))
    assert crlf.spec == lf.spec
    assert crlf.marker_line == lf.marker_line
    assert dict(yamlpos.load(raw.replace(b"\n", b"\r\n"), "f").positions) == dict(yamlpos.load(raw, "f").positions)


# --------------------------------------------------------------------------- hand-edited shapes


def real(fragment: str) -> manifest.Manifest:
    [path] = [p for p in REAL_FILES if fragment in p.name]
    return load(path)


def resolved(m: manifest.Manifest) -> dict:
    [d] = desired.resolve([m])
    return d.fields


def test_json_style_parameters():
    assert real("Sunnyinho").spec.parameters == {"name": "Marvin"}
    assert real("AksharGoyal").spec.parameters == {"years": [2020, 2021, 2022, 2023]}


def test_multiline_flow_mapping_with_python_style_false():
    assert real("AymSa").spec.parameters == {
        "config_path": "./config.py",
        "prefect_args": {"model_name": "pytorch-mnist-simple-nn", "train": False, "tunning": False,
                         "pruning": False, "transition": False, "stage": "Staging"},
    }


def test_capitalised_true():
    m = real("AhmetSmlCicek")
    assert m.spec.is_schedule_active is True
    fields = resolved(m)
    assert fields["is_schedule_active"] is True
    assert fields["schedules"] == [
        {"schedule": {"cron": "0 0 * * *", "timezone": "Europe/Brussels", "day_or": True}, "active": True}]


def test_quoted_version_stays_text():
    assert real("anna-geller__dataflow-ops").spec.version == "1"
    assert real("BBQuercus").spec.version == "0.0.1"


def test_windows_paths_keep_backslashes():
    assert real("Shangeeth7").spec.path == "D:\\Prefect_base_folder"
    assert resolved(real("Shangeeth7"))["path"] == "D:\\Prefect_base_folder"
    assert real("AksharGoyal").spec.path == (
        "C:\\Users\\claim\\Desktop\\DPhi_AIplanet\\DataTalks\\Data-Enginerring\\week_7_project")


def test_trailing_spaces_in_plain_scalars_are_dropped():
    assert real("Sunnyinho").spec.overrides == {"env": {"PREFECT_LOGGING_LEVEL": "DEBUG"}}


def test_block_scalar_parameter_keeps_its_text():
    params = real("qa__deployments__demo").spec.parameters
    assert params["msg"] == "This is a demo"
    assert params["purpose"].startswith("The purpose of this deployment")
    assert "\n\nThis should successfully complete two tasks." in params["purpose"]


def test_flat_dotted_override_keys_stay_flat():
    assert resolved(load(PREFECT_DIR / "catfact-deployment.yaml"))["infra_overrides"] == {"env.FOO": "bar"}
    assert resolved(load(EXAMPLES_DIR / "reports" / "reports-deployment.yaml"))["infra_overrides"] == {
        "env.REPORTS_BUCKET": "/var/lib/reports/sales"}


def test_kwargs_parameters_are_an_object_under_kwargs():
    fields = resolved(load(EXAMPLES_DIR / "reports" / "reports-deployment.yaml"))
    assert fields["parameters"] == {"region": "apac", "days": 14, "kwargs": {"channel": "online"}}
    assert "kwargs" in fields["parameter_openapi_schema"]["properties"]


def test_weather_example_has_interval_and_rrule():
    fields = resolved(load(EXAMPLES_DIR / "weather" / "weather-deployment.yaml"))
    assert {"schedule": {"interval": 3600.0, "timezone": "UTC", "anchor_date": "2026-11-25T16:32:29.911452+00:00"},
            "active": True} in fields["schedules"]
    assert {"schedule": {"rrule": "FREQ=WEEKLY;BYDAY=MO,WE,FR;BYHOUR=7", "timezone": "Europe/Amsterdam"},
            "active": True} in fields["schedules"]


def test_prefect_2_20_27_catfact():
    m = load(PREFECT_DIR / "catfact-deployment.yaml")
    fields = resolved(m)
    assert m.identity == "Cat Facts/catfact"
    assert fields["infrastructure"] == "process/dev"
    assert fields["storage"] == "local-file-system/dev"
    assert fields["schedules"] == [
        {"schedule": {"cron": "0 * * * *", "timezone": "UTC", "day_or": True}, "active": True}]
    assert fields["parameters"] == {"url": "https://x"}
    assert fields["tags"] == ["a"]
    assert fields["work_queue_name"] == "test"
    assert fields["path"] == ""
    assert fields["entrypoint"] == "catfact.py:catfacts_flow"


def test_examples_resolve_together():
    out = desired.resolve([load(p) for p in EXAMPLE_FILES])
    assert [d.identity for d in out] == [
        "Cat Facts/catfact-hourly", "Regional Sales Report/apac-online-weekly", "Weather Summary/weather-summary"]


# --------------------------------------------------------------------------- the real-world table


@dataclass(frozen=True)
class Row:
    file: str
    identity: str
    infrastructure: Optional[str] = None   # exact key, or a prefix ending in ':' for anonymous blocks
    storage: Optional[str] = None          # exact key (anonymous: with its content hash)
    schedules: int = 0
    is_schedule_active: bool = True
    work_queue_name: Optional[str] = "default"
    version: Optional[str] = None
    error: Optional[str] = None


PROCESS = "process/anonymous:"

TABLE = [
    Row("AhmetSmlCicek__air-quality-pipeline__main_flow-deployment.yaml", "flow_with_dependencies/pipeline",
        PROCESS, None, 1, True, "deploy", "686e9355c60e8743ed5cf61a98e9af18"),
    Row("AksharGoyal__data-eng-project-toronto-covid-data__etl_gcs_to_bq-deployment.yaml",
        "etl-gcs-to-bq/GCS to BigQuery Deployment",
        PROCESS, None, 1, True, "default", "1041695e77df8df8bf8421ccde946cff"),
    Row("AymSa__MLOps-Digit-Classification__main-deployment.yaml", "main/mlops-mnist",
        PROCESS, None, 0, True, "test", "cf08f69ae015c59e64bb465c55f9c1f6"),
    Row("BBQuercus__koopa-flows__src__workflow-deployment.yaml", "Koopa/koopa-a-0.0.1",
        PROCESS, None, 0, True, "default", "0.0.1"),
    Row("Haebuk__GHArchive-Data-Pipeline-Project__etl_web_to_gcs-deployment.yaml",
        "etl-web-to-gcs/etl_github_data_to_gcs",
        PROCESS, "gcs-bucket/github-flow", 1, False, "default", "2a37c6f92f55b2ce2c6c83348d576a4c"),
    Row("PrefectHQ__prefect-recipes__flows-advanced__blocks__s3_read_write__flow-deployment.yaml",
        "flow/s3_read_write_recipe",
        error="PrefectHQ__prefect-recipes__flows-advanced__blocks__s3_read_write__flow-deployment.yaml:31:3: "
              "storage.aws_access_key_id: " + MASKED_S3),
    Row("PrefectHQ__prefect__dog-deployment.yaml", "SoMe CrAz_y N@me/TEST",
        PROCESS, None, 0, True, "default", "6a3f32c5348abcbf32bdf4434959446b"),
    Row("PrefectHQ__prefect__flow-deployment.yaml", "fn/dog",
        PROCESS, None, 0, True, None, "5d65e08482be88a7f77b38adb5741c11"),
    Row("PrefectHQ__prefect__qa__deployments__demo__deployment.yaml", "dog/qa_demo",
        PROCESS, "local-file-system/anonymous:15a7088de0dc", 0, True, "default", None),
    Row("PrefectHQ__prefect__qa__deployments__parameters__param_flow-deployment.yaml",
        "parameters flow/prefect_qa_params",
        PROCESS, "local-file-system/anonymous:df15700a30d3", 0, True, "default", None),
    Row("Shangeeth7__Prefect_git_testing__hello-deployment.yaml", "hello/demo-deployment",
        PROCESS, None, 0, True, "default", "5b3c6ba3a566ddbe31993f531670227b"),
    Row("Sunnyinho__prefect_2_tutorial__log_flow-deployment.yaml", "log-flow/log-simple",
        PROCESS, None, 0, True, "test", "258327589770175bbc240afce563ae2f"),
    Row("WillRaphaelson__prefect-live__hello_flow-deployment.yaml", "hello-flow/live",
        "docker-container/prod", None, 0, True, "live", "9fed5b2382fc63a11aa0084980a1c82f"),
    Row("adrian-baumann__dtc-de-zoomcamp__week2__q4__etl_web_to_gcs_gh-deployment.yaml",
        "etl-parent-flow-gh/Github Storage Flow",
        PROCESS, "github/gh-dtc-storage", 0, True, "default", "4cfe5a4488b3cf638135af0a736a114b"),
    Row("anna-geller__dataflow-ops__deploy_cli__pythonics3.yaml", "healthcheck/pythonics3",
        PROCESS, "s3/prod", 0, True, "prod", "1"),
    Row("anna-geller__prefect-deployment-patterns__a_project_template__deployment.yaml", "hello/cloudk8s",
        error="anna-geller__prefect-deployment-patterns__a_project_template__deployment.yaml:49:3: "
              "storage.aws_access_key_id: " + MASKED_S3),
    Row("anna-geller__prefect-deployment-patterns__a_project_template__healthcheck_docker_deployment.yaml",
        "healthcheck/docker-simple",
        error="anna-geller__prefect-deployment-patterns__a_project_template__healthcheck_docker_deployment.yaml:"
              "33:3: storage.aws_access_key_id: " + MASKED_S3),
    Row("bkkkk__prefect-20__log_flow-deployment.yaml", "Say Hello!/github_deploy_of_flow",
        error="bkkkk__prefect-20__log_flow-deployment.yaml:10:14: parameters.name: does not match the flow's "
              "parameter schema: None is not of type 'string'"),
    Row("cityofaustin__atd-prefect__deployments__atd_service_bot_intake__production.yaml",
        "Service Bot: Intake Issues/Service Bot: Intake Issues Production",
        PROCESS, "github/atd-service-bot-production", 1, False, "atd-service-bot", "22273990b49d3293e8a125addbc2b4af"),
    Row("cityofaustin__atd-prefect__deployments__reprocess_parking_data.yaml",
        "atd-parking-data: Reprocessing Parking Data/atd-parking-data: Reprocessing Parking Data",
        PROCESS, "github/ch-parking-data-refresh", 0, True, "default", "a649073bb4802f8dcea9d8d65d14235a"),
    Row("coolhackboy__log-flow-repo__log-flow-docker-deployment.yaml", "log-flow/log-flow-repo",
        "docker-container/log-tutorial", "github/log-flow-repo", 0, True, "default", "18823f331b7660ead0d2c8485e4906f7"),
    Row("discdiver__pacc-demos__pipe-deployment.yaml", "pipe/dockit",
        "docker-container/dockerpacc", "s3/myawsblock", 0, True, "default", "119b116c05ef66e2d7aa54ae773eea2e"),
    Row("khuyentran1401__prefect-dvc__my_flow-deployment.yaml", "my-flow/test-gcp",
        "cloud-run-job/gcp-run", "github/dvc-demo", 0, True, "dev", "583f0c3a78dd8d1c297a8e14514cd48c"),
    Row("kramergroup-workflows__prefect__hello-deployment.yaml", "hello/Slurm Log Hostname",
        "slurmjob/hsuper", None, 0, True, "default", "9bf0b356a8a65a759bb89a02d8c0f0f8"),
    Row("matszewczyk__product-injuries-pipeline__healthcheck-deployment.yaml", "healthcheck/ACI Test Flow",
        "azure-container-instance-job/aci-job", "azure/blob-storage-flows", 0, True, "default",
        "24c9d9188c7dad6441bd3297d635b274"),
    Row("matthewhatch__orchestrator__main_flow-deployment.yaml", "main-flow/kagr-deploy",
        PROCESS, None, 0, True, "default-agent-pool", "dfb7bdd225b145afe23cdf1375aad62c"),
    Row("pocketsizefund__pocketsizefund__pipeline-deployment.yaml", "pipeline/basic-lstm-trainer",
        PROCESS, None, 0, True, "default", "f1967649797aa9a9e6fe45e3dc4e3e6c"),
    Row("rito-sixt__prefect-spike__flows__log_flow-deployment.yaml", "log-flow/log-simple",
        PROCESS, None, 0, True, "test", "ac7b02ec457936db35157cdd476ed9a4"),
    Row("rito-sixt__prefect-spike__log_flow-deployment.yaml", "log-flow/log-flow-docker",
        "docker-container/prod", None, 0, True, "test", "ac7b02ec457936db35157cdd476ed9a4"),
    Row("sergeykochetkov__mlopsproject__main-deployment.yaml", "main/main",
        PROCESS, "local-file-system/anonymous:1acc7713585e", 1, True, "default", "bd69a210ba25b2885b69a4d4d60fc821"),
    Row("strojank__prefectcerttest__weather_flow-deployment.yaml", "weather-flow/sched",
        PROCESS, None, 1, True, "default", "8353495f9332d6b07fc8665dd8644fb4"),
    Row("tekumara__prefect-demo__deployment-dask-kubes.yaml", "dask-kubes/local",
        "kubernetes-job/anonymous:", None, 0, True, "default", "snapshot"),
    Row("tekumara__prefect-demo__deployment-increment-s3.yaml", "increment/s3",
        "kubernetes-job/anonymous:", "s3/minio-flows", 0, True, "kubernetes", "snapshot"),
    Row("tekumara__prefect-demo__deployments__deployment-parent.yaml", "parent/python",
        "kubernetes-job/anonymous:", "s3/minio-flows", 0, True, "default", "snapshot"),
    Row("yugorshkov__atm_location_assessment__main-deployment.yaml", "main/test-dep",
        "docker-container/anonymous:", None, 0, True, "default", "b64f79f774ee25d41a3ac79111fff800"),
    Row("zzstoatzz__prefect-monorepo__healthcheck-deployment.yaml", "healthcheck/test",
        "cloud-run-job-v2/cloud-run-v2", "github/monorepo", 0, True, "default", "5f1c459411462b3085a2340246bb2300"),
]


def test_table_covers_every_real_world_file():
    assert sorted(row.file for row in TABLE) == [p.name for p in REAL_FILES]
    assert sum(1 for row in TABLE if row.error) == 4


@pytest.mark.parametrize("row", TABLE, ids=lambda r: r.file.split("__")[0] + "/" + r.file.split("__")[-1])
def test_real_world_file(row):
    m = load(REAL_DIR / row.file)
    assert m.identity == row.identity
    if row.error is not None:
        with pytest.raises(ManifestErrors) as info:
            desired.resolve([m])
        assert str(info.value) == row.error
        return
    [d] = desired.resolve([m])
    fields = d.fields
    if row.infrastructure.endswith(":"):
        assert fields["infrastructure"].startswith(row.infrastructure)
        assert d.infrastructure.anonymous
    else:
        assert fields["infrastructure"] == row.infrastructure
        assert not d.infrastructure.anonymous
    assert fields["storage"] == row.storage
    assert len(fields["schedules"]) == row.schedules
    assert fields["is_schedule_active"] is row.is_schedule_active
    assert fields["work_queue_name"] == row.work_queue_name
    assert fields["version"] == row.version


def test_real_world_files_resolve_together_apart_from_the_four():
    """Loaded as one directory would be, the 32 good files clash only on the tutorial's `log-flow/log-simple`."""
    good = [load(REAL_DIR / row.file) for row in TABLE if row.error is None]
    with pytest.raises(ManifestErrors) as info:
        desired.resolve(good)
    assert str(info.value) == (
        "rito-sixt__prefect-spike__flows__log_flow-deployment.yaml:4:1: name: deployment 'log-flow/log-simple' "
        "is also declared in Sunnyinho__prefect_2_tutorial__log_flow-deployment.yaml:4; "
        "an identity (flow_name/name) may appear once")
    rest = [m for m in good if not m.display.startswith("rito-sixt__prefect-spike__flows")]
    assert len(desired.resolve(rest)) == 31


def test_default_process_infrastructure_is_one_key_across_eras():
    """2.10+ files that spell out the default Process share a key with a manifest that names none."""
    default_key = desired.resolve([manifest.parse(b"name: n\nflow_name: f\n", Path("x"), "x")])[0].fields[
        "infrastructure"]
    for fragment in ("AhmetSmlCicek", "Shangeeth7", "matthewhatch", "pocketsizefund"):
        assert resolved(real(fragment))["infrastructure"] == default_key, fragment
