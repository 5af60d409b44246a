"""`reconcile migrate`: Prefect 2 manifests → one Prefect 3 prefect.yaml, as a user reads and deploys it."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fixture_paths import FIXTURES
from reconciler.cli import main
from reconciler.engine import migrate as migrate_mod
from reconciler.errors import ManifestErrors, ReconcileError

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples"
GOLDEN = REPO / "tests" / "unit" / "golden" / "prefect.yaml"
MARKER = "###\n### DO NOT EDIT BELOW THIS LINE\n###\n"
STEPS = "prefect.deployments.steps."


def write_manifest(directory: Path, name: str = "etl", flow: str = "ETL", **over) -> Path:
    """A manifest as `prefect deployment build` writes it (above/below the marker), with `over` replacing keys."""
    above = {"name": name, "description": None, "version": "1", "work_queue_name": "default", "work_pool_name": None,
             "tags": ["t"], "parameters": {"n": 2}, "schedule": None,
             "schedules": [{"schedule": {"cron": "0 * * * *", "timezone": None, "day_or": True}, "active": True}],
             "is_schedule_active": None, "infra_overrides": {},
             "infrastructure": {"type": "process", "env": {}, "stream_output": True,
                                "block_type_slug": "process", "_block_type_slug": "process"}}
    below = {"flow_name": flow, "manifest_path": None, "storage": None, "path": f"/srv/code/{directory.name}",
             "entrypoint": "flow.py:main",
             "parameter_openapi_schema": {"title": "Parameters", "type": "object",
                                          "properties": {"n": {"title": "n", "type": "integer", "position": 0}},
                                          "required": None, "definitions": None},
             "timestamp": "2026-01-01T00:00:00+00:00", "triggers": [], "enforce_parameter_schema": None}
    for key, value in over.items():
        (above if key in above else below)[key] = value
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "flow.py").write_text("from prefect import flow\n\n@flow\ndef main(n: int = 1):\n    return n\n")
    path = directory / f"{name}-deployment.yaml"
    path.write_text(yaml.safe_dump(above, sort_keys=False) + MARKER + yaml.safe_dump(below, sort_keys=False))
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


def migrated(root: Path, **kw) -> dict:
    outcome = migrate_mod.migrate(root, **kw)
    return yaml.safe_load(outcome.out.read_text())


def one(root: Path) -> dict:
    (deployment,) = migrated(root)["deployments"]
    return deployment


def error_of(root: Path, **kw) -> str:
    with pytest.raises(ReconcileError) as caught:
        migrate_mod.migrate(root, **kw)
    errors = caught.value.errors if isinstance(caught.value, ManifestErrors) else [caught.value]
    assert len(errors) == 1
    text = str(errors[0])
    assert "\n" not in text
    assert not (root / "prefect.yaml").exists()     # nothing written
    return text


# ----------------------------------------------------------------------------- the examples


def test_examples_give_the_golden_prefect_yaml():
    outcome = migrate_mod.translate(EXAMPLES, EXAMPLES / "prefect.yaml")
    text = migrate_mod.render(outcome, display="this directory")
    if not GOLDEN.exists() or GOLDEN.read_text() != text:
        if GOLDEN.exists() and not _regenerating():
            assert text == GOLDEN.read_text(), "prefect.yaml changed; RECONCILE_UPDATE_GOLDEN=1 rewrites the golden file"
        GOLDEN.write_text(text)


def _regenerating() -> bool:
    import os
    return os.environ.get("RECONCILE_UPDATE_GOLDEN") == "1"


def test_migrating_twice_writes_the_same_bytes(tmp_path):
    root = tmp_path / "examples"
    shutil.copytree(EXAMPLES, root)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    first = migrate_mod.migrate(root).out.read_bytes()
    migrate_mod.migrate(root, force=True)
    assert (root / "prefect.yaml").read_bytes() == first
    assert first == GOLDEN.read_bytes()


def test_examples_translation_as_a_user_reads_it():
    doc = yaml.safe_load(GOLDEN.read_text())
    by_name = {d["name"]: d for d in doc["deployments"]}
    cat, weather, reports = by_name["catfact-hourly"], by_name["weather-summary"], by_name["apac-online-weekly"]
    assert cat["entrypoint"] == "catfact/catfact.py:catfacts_flow"
    assert cat["pull"] == [
        {STEPS + "pull_with_block": {"id": "pull-code", "block_type_slug": "local-file-system",
                                     "block_document_name": "reconcile-examples"}},
        {STEPS + "set_working_directory": {"directory": "{{ pull-code.directory }}"}}]
    assert cat["work_pool"] == {"name": "reconcile-process", "work_queue_name": "examples",
                                "job_variables": {"stream_output": True}}
    assert cat["schedules"] == [{"cron": "0 * * * *", "timezone": "UTC", "day_or": True, "active": True}]
    assert cat["enforce_parameter_schema"] is False and cat["paused"] is False
    assert isinstance(cat["version"], str)
    # storage null: the worker's copy of the prefect.yaml's directory is `path` less `weather`
    assert weather["pull"] == [{STEPS + "set_working_directory": {"directory": "/opt/flows"}}]
    assert weather["entrypoint"] == "weather/weather.py:weather_summary"
    assert [sorted(s) for s in weather["schedules"]] == [["active", "anchor_date", "interval", "timezone"],
                                                         ["active", "rrule", "timezone"]]
    assert reports["work_pool"]["job_variables"]["env"] == {"REPORTS_BUCKET": "/var/lib/reports/sales"}
    assert reports["parameters"] == {"region": "apac", "days": 14, "kwargs": {"channel": "online"}}
    assert doc["prefect-version"] == "3.9.1"


# ----------------------------------------------------------------------------- translation rules


def test_legacy_schedule_is_active_and_an_inactive_one_pauses_the_deployment(repo):
    write_manifest(repo / "etl", schedules=None, schedule={"interval": 600, "timezone": None},
                   is_schedule_active=False)
    got = one(repo)
    assert got["schedules"] == [{"interval": 600.0, "timezone": "UTC", "active": True}]
    assert got["paused"] is True


def test_enforced_schema_and_numeric_version_carry_over(repo):
    path = write_manifest(repo / "etl", enforce_parameter_schema=True)
    path.write_text(path.read_text().replace("version: '1'", "version: 2"))
    got = one(repo)
    assert got["enforce_parameter_schema"] is True and got["version"] == "2"


def test_infra_block_settings_and_dotted_overrides_become_nested_job_variables(repo):
    write_manifest(repo / "etl", infrastructure={
        "type": "docker-container", "image": "acme/etl:1", "command": ["python", "-m", "x"],
        "env": {"A": 1}, "_block_document_name": "prod", "_block_type_slug": "docker-container",
        "block_type_slug": "docker-container"}, infra_overrides={"env.B": "two", "image_pull_policy": "Always"})
    outcome = migrate_mod.migrate(repo)
    got = yaml.safe_load(outcome.out.read_text())["deployments"][0]
    assert got["work_pool"] == {"name": "reconcile-docker", "work_queue_name": "default", "job_variables": {
        "env": {"A": "1", "B": "two"}, "image": "acme/etl:1", "image_pull_policy": "Always"}}
    assert any("command" in n for n in outcome.notices)      # the 2.x command list is left out, and said so


def test_pools_come_from_reconcile_yaml_and_the_agent_pool_is_not_kept(repo):
    (repo / "reconcile.yaml").write_text("prefect3:\n  work_pools:\n    process: team-process\n")
    write_manifest(repo / "a", name="a", work_pool_name="default-agent-pool")
    write_manifest(repo / "b", name="b", work_pool_name="gpu")
    outcome = migrate_mod.migrate(repo)
    pools = {d["name"]: d["work_pool"]["name"] for d in yaml.safe_load(outcome.out.read_text())["deployments"]}
    assert pools == {"a": "team-process", "b": "gpu"}
    assert outcome.pools == {"gpu": "process", "team-process": "process"}
    assert any("default-agent-pool" in n for n in outcome.notices)
    assert "prefect work-pool create gpu --type process" in outcome.out.read_text()


def test_s3_storage_pulls_from_the_bucket_with_secret_templates_never_values(repo):
    (repo / "reconcile.yaml").write_text(
        "prefect3:\n  storage_secrets:\n    s3/code:\n      key: aws-key\n      secret: aws-secret\n")
    write_manifest(repo / "etl", path="etl", storage={
        "bucket_path": "acme-code/flows", "aws_access_key_id": "AKIAREALKEY", "aws_secret_access_key": "hunter2hunter2",
        "_block_document_name": "code", "_block_type_slug": "s3", "block_type_slug": "s3"})
    text = migrate_mod.migrate(repo).out.read_text()
    assert "AKIAREALKEY" not in text and "hunter2" not in text
    assert yaml.safe_load(text)["deployments"][0]["pull"] == [
        {STEPS + "pull_from_remote_storage": {"id": "pull-code", "url": "s3://acme-code/flows",
                                              "key": "{{ prefect.blocks.secret.aws-key }}",
                                              "secret": "{{ prefect.blocks.secret.aws-secret }}"}},
        {STEPS + "set_working_directory": {"directory": "{{ pull-code.directory }}"}}]


def test_s3_storage_without_secret_blocks_uses_the_workers_credentials_and_says_so(repo):
    write_manifest(repo / "etl", path="", storage={
        "bucket_path": "acme-code", "aws_access_key_id": "AKIAREALKEY", "_block_document_name": "code",
        "_block_type_slug": "s3"})
    (repo / "etl" / "etl-deployment.yaml").rename(repo / "etl-deployment.yaml")
    (repo / "etl" / "flow.py").rename(repo / "flow.py")
    outcome = migrate_mod.migrate(repo)
    assert "AKIAREALKEY" not in outcome.out.read_text()
    step = yaml.safe_load(outcome.out.read_text())["deployments"][0]["pull"][0][STEPS + "pull_from_remote_storage"]
    assert step == {"id": "pull-code", "url": "s3://acme-code"}
    assert any("credentials are not copied" in n for n in outcome.notices)


def test_github_storage_becomes_a_clone_of_the_reference(repo):
    write_manifest(repo, path="", storage={"repository": "https://github.com/acme/flows.git",
                                           "reference": "release", "_block_document_name": "gh",
                                           "_block_type_slug": "github"})
    assert one(repo)["pull"] == [
        {STEPS + "git_clone": {"id": "clone", "repository": "https://github.com/acme/flows.git",
                               "branch": "release"}},
        {STEPS + "set_working_directory": {"directory": "{{ clone.directory }}"}}]


def test_a_second_manifest_below_the_prefect_yaml_pulls_the_directory_above_its_code(repo):
    write_manifest(repo / "flows" / "etl", path="flows/etl", storage={
        "basepath": "/srv/store", "_block_document_name": "store", "_block_type_slug": "local-file-system"})
    got = one(repo)
    assert got["entrypoint"] == "flows/etl/flow.py:main"
    assert got["pull"][1] == {STEPS + "set_working_directory": {"directory": "{{ pull-code.directory }}"}}


@pytest.mark.parametrize("over, key, says", [
    ({"path": "code/etl"}, "path", "not an absolute directory"),
    ({"path": None}, "path", "not an absolute directory"),
    ({"path": "/srv/elsewhere"}, "path", "does not end in 'etl'"),
    ({"infrastructure": {"type": "cloud-run-job", "_block_type_slug": "cloud-run-job"}}, "infrastructure",
     "no Prefect 3 work pool"),
    ({"infra_overrides": {"env.TOKEN": "**********"}}, "infrastructure", "masked"),
    ({"entrypoint": "/abs/flow.py:main"}, "entrypoint", "absolute path"),
    ({"storage": {"share_path": "/x", "_block_type_slug": "smb", "block_type_slug": "smb"}}, "storage",
     "no Prefect 3 pull step"),
    ({"storage": {"repository": "https://ghp_tok3n@github.com/acme/x", "_block_document_name": "gh",
                  "_block_type_slug": "github"}, "path": ""}, "storage", "holds credentials"),
])
def test_what_prefect_3_cannot_hold_is_one_line_naming_the_file_and_line(repo, over, key, says):
    path = write_manifest(repo / "etl", **over)
    text = error_of(repo)
    line = next(i for i, row in enumerate(path.read_text().splitlines(), 1) if row.startswith(f"{key}:"))
    assert re.match(rf"^etl/etl-deployment\.yaml:{line}:\d+: ", _relative_to(text, repo)), text
    assert says in text and "tok3n" not in text


def _relative_to(text: str, root: Path) -> str:
    return text.replace(f"{root}/", "").replace(f"{root.resolve()}/", "")


def test_every_bad_manifest_is_listed_and_nothing_is_written(repo):
    write_manifest(repo / "a", name="a", path="rel")
    write_manifest(repo / "b", name="b", infra_overrides={"env.X": "**********"})
    with pytest.raises(ManifestErrors) as caught:
        migrate_mod.migrate(repo)
    assert len(caught.value.errors) == 2
    assert not (repo / "prefect.yaml").exists()


# ----------------------------------------------------------------------------- the output file


def test_an_existing_prefect_yaml_is_kept_unless_force(repo):
    write_manifest(repo / "etl")
    (repo / "prefect.yaml").write_text("mine\n")
    with pytest.raises(ReconcileError, match="already exists; --force"):
        migrate_mod.migrate(repo)
    assert (repo / "prefect.yaml").read_text() == "mine\n"
    migrate_mod.migrate(repo, force=True)
    assert "deployments" in yaml.safe_load((repo / "prefect.yaml").read_text())


def test_out_outside_the_repository_or_through_a_link_is_refused(repo, tmp_path):
    write_manifest(repo / "etl")
    with pytest.raises(ReconcileError, match="outside the repository"):
        migrate_mod.migrate(repo, out=tmp_path / "prefect.yaml")
    (repo / "out").symlink_to(tmp_path)
    with pytest.raises(ReconcileError, match="outside the repository"):
        migrate_mod.migrate(repo, out=repo / "out" / "prefect.yaml")
    (repo / "link.yaml").symlink_to(tmp_path / "target.yaml")
    with pytest.raises(ReconcileError):
        migrate_mod.migrate(repo, out=repo / "link.yaml", force=True)
    assert not (tmp_path / "prefect.yaml").exists() and not (tmp_path / "target.yaml").exists()


def test_the_command_line_prints_the_pools_and_exits_1_with_one_line_per_error(repo, capsys, monkeypatch):
    monkeypatch.chdir(repo)
    write_manifest(repo / "etl")
    assert main(["migrate", ".", "--out", "prefect.yaml"]) == 0
    out = capsys.readouterr().out
    assert "prefect work-pool create reconcile-process --type process" in out
    assert main(["migrate", "."]) == 1
    assert "already exists" in capsys.readouterr().err
    write_manifest(repo / "bad", name="bad", path="rel")
    assert main(["migrate", ".", "--force"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("error: bad/bad-deployment.yaml:") and len(err) == 2


def test_help_names_the_command():
    done = subprocess.run([sys.executable, "-c", "from reconciler.cli import main; main(['migrate', '--help'])"],
                          capture_output=True, text=True)
    assert "prefect.yaml" in done.stdout and "--force" in done.stdout


# ----------------------------------------------------------------------------- real manifests


REAL_WORLD = sorted((FIXTURES / "real-world").glob("*.yaml"))
BUILT = sorted((FIXTURES / "prefect-2.20.27").glob("*-deployment.yaml"))


@pytest.mark.parametrize("fixture", REAL_WORLD + BUILT, ids=lambda p: p.name)
def test_each_real_manifest_migrates_or_says_why_in_one_line(tmp_path, fixture):
    root = tmp_path / "repo"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    name = fixture.name if fixture.name.endswith("-deployment.yaml") else fixture.stem + "-deployment.yaml"
    shutil.copy(fixture, root / name)
    try:
        outcome = migrate_mod.migrate(root)
    except ReconcileError as exc:
        errors = exc.errors if isinstance(exc, ManifestErrors) else [exc]
        assert len(errors) == 1 and "\n" not in str(errors[0])
        assert re.match(rf"^(.*/)?{re.escape(name)}:\d+:\d+: ", str(errors[0])), str(errors[0])
        assert not (root / "prefect.yaml").exists()
        return
    doc = yaml.safe_load(outcome.out.read_text())
    (got,) = doc["deployments"]
    assert set(got) == {"name", "entrypoint", "description", "version", "tags", "parameters", "schedules", "paused",
                        "enforce_parameter_schema", "work_pool", "pull"}
    assert got["version"] is None or isinstance(got["version"], str)
    assert got["pull"] and all(len(step) == 1 and next(iter(step)).startswith(STEPS) for step in got["pull"])
    assert "**********" not in outcome.out.read_text()


def test_most_real_manifests_migrate(tmp_path):
    """The storage-null, block, bucket and git ones translate; what does not is infrastructure with no 3.x pool
    type, a 2.0 manifest without an entrypoint, an absolute entrypoint or masked inline credentials."""
    migrated_count = 0
    for index, fixture in enumerate(REAL_WORLD):
        root = tmp_path / str(index)
        root.mkdir()
        subprocess.run(["git", "init", "-q", str(root)], check=True)
        shutil.copy(fixture, root / (fixture.stem.removesuffix("-deployment") + "-deployment.yaml"))
        try:
            migrate_mod.migrate(root)
            migrated_count += 1
        except ReconcileError:
            pass
    assert migrated_count >= 24, migrated_count
