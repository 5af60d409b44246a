"""On Prefect 3.9.1 a 2.x storage block the server lacks becomes pull steps, and the code still runs.

A manifest names a Prefect 2 `s3` storage block (a type 3.x does not have, and no block document of it exists
anywhere) whose bucket is on the moto S3 server.  apply uploads the code to that bucket with the credentials of
its own environment (AWS_*), and the deployment gets a `pull_from_remote_storage` step instead of a storage
block; a second apply writes nothing.  The repository is then deleted, and a real 3.9.1 process worker, given
the same AWS environment, runs a flow run of the deployment: it reaches Completed running the uploaded code.
A github block becomes a `git_clone` step (planned only); a token in its URL is one line naming file:line.
"""
from __future__ import annotations

import json
import shutil
import uuid

import pytest

from integration.bundles.test_flow_run_from_upload import FLOW, SCHEMA
from integration.helpers import Server, reconcile
from integration.upload_support import MARKER_NAME, Project, upload_actions, upload_manifest
from integration.worker import run_worker_once, wait_for_final_state

MASK = "**********"
STEP = "prefect.deployments.steps."


@pytest.fixture
def server(prefect3_api_url):
    with Server(prefect3_api_url) as srv:
        yield srv


@pytest.fixture
def aws_env(s3_endpoint, monkeypatch) -> dict[str, str]:
    """The usual AWS environment, pointed at moto: reconcile (a child of this process) and the worker get it."""
    env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": s3_endpoint}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def named_block(slug: str, name: str, **data) -> dict:
    """A named 2.x block as `prefect deployment build` embeds it (secret fields masked)."""
    return {**data, "_block_document_id": str(uuid.uuid4()), "_block_document_name": name, "_is_anonymous": False,
            "block_type_slug": slug, "_block_type_slug": slug}


def _project(api_url: str, tmp_path, unique: str, label: str, secrets: str = "") -> tuple[Project, str]:
    project = Project(api_url, tmp_path, unique, label)
    pool = f"it-pool-{unique}"
    (project.root / "reconcile.yaml").write_text(
        f"prefect3:\n  work_pools:\n    process: {pool}\n{secrets}", encoding="utf-8")
    return project, pool


def test_an_s3_block_becomes_a_pull_step_and_a_prefect3_worker_runs_the_uploaded_code(
        prefect3_api_url, server, tmp_path, unique, aws_env):
    import boto3
    bucket = f"it-pull-{unique}"
    s3 = boto3.client("s3", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    project, pool = _project(prefect3_api_url, tmp_path, unique, "p3-pull")
    project.write({
        "flow.py": FLOW,
        "helpers/__init__.py": "",
        "helpers/greeting.py": "def greet(who):\n    return f'hello, {who}'\n",
        "data/config.json": json.dumps({"who": f"pulled {unique}"}),
    })
    storage = named_block("s3", f"it-s3-{unique}", bucket_path=f"{bucket}/team", aws_access_key_id=MASK,
                          aws_secret_access_key=MASK)
    out = tmp_path / "result.json"
    project.add_manifest(upload_manifest(project.flow, "run-me", storage, "code", entrypoint="flow.py:main",
                                         parameters={"out": str(out), "n": 3}, parameter_openapi_schema=SCHEMA,
                                         schedules=[]))
    want_steps = [{STEP + "pull_from_remote_storage": {"url": f"s3://{bucket}/team/code"}}]

    plan = project.plan_json()
    [create] = [a for a in plan["actions"] if a["action"] == "create"]
    changes = {c["field"]: c["after"] for c in create["changes"]}
    assert changes["pull_steps"] == want_steps and "storage" not in changes, create
    [upload] = upload_actions(plan)
    assert upload["url"] == f"s3://{bucket}/team/code" and upload["storage"] == f"s3/it-s3-{unique}", upload
    assert MASK not in json.dumps(plan) and "AWS_SECRET" not in json.dumps(plan)

    applied = project.apply()
    assert applied.returncode == 0, applied
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="team/code/").get("Contents", [])}
    assert {"team/code/flow.py", "team/code/helpers/greeting.py", "team/code/data/config.json",
            f"team/code/{MARKER_NAME}"} <= keys, keys
    dep = server.deployment(project.flow, "run-me")
    assert dep["pull_steps"] == want_steps and dep["storage_document_id"] is None, dep
    assert dep["work_pool_name"] == pool
    again = project.apply("-v")
    assert again.returncode == 0 and again.writes == [], again

    shutil.rmtree(project.repo)   # from here on the code exists only in the bucket
    flow_run = server.call("POST", f"deployments/{dep['id']}/create_flow_run", {})
    worker = run_worker_once(prefect3_api_url, pool, tmp_path / "worker", env=aws_env)
    state = wait_for_final_state(server, flow_run["id"], context=worker)
    assert (state["type"], state["name"]) == ("COMPLETED", "Completed"), worker
    assert json.loads(out.read_text()) == {"greeting": f"hello, pulled {unique}", "n": 3}, worker
    # the step copies the location to ./<bucket>/<path> and 3.x changes into it: no set_working_directory needed
    assert f"Pulled code from 's3://{bucket}/team/code' into '{bucket}/team/code'" in worker.output, worker


def test_a_path_change_rewrites_the_pull_step_and_uploads_to_the_new_location(
        prefect3_api_url, server, tmp_path, unique, aws_env):
    import boto3
    bucket = f"it-pull-{unique}"
    boto3.client("s3", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name="us-east-1").create_bucket(Bucket=bucket)
    secrets = f"  storage_secrets:\n    s3/it-s3-{unique}:\n      key: aws-key-{unique}\n      secret: aws-secret-{unique}\n"
    project, _ = _project(prefect3_api_url, tmp_path, unique, "p3-move", secrets)
    storage = named_block("s3", f"it-s3-{unique}", bucket_path=bucket, aws_secret_access_key=MASK)
    doc = upload_manifest(project.flow, "moved", storage, "v1", schedules=[])
    path = project.add_manifest(doc)
    assert project.apply().returncode == 0
    templates = {"key": "{{ prefect.blocks.secret.aws-key-" + unique + " }}",
                 "secret": "{{ prefect.blocks.secret.aws-secret-" + unique + " }}"}
    step = {"url": f"s3://{bucket}/v1", **templates}
    assert server.deployment(project.flow, "moved")["pull_steps"] == [{STEP + "pull_from_remote_storage": step}]

    path.write_text(path.read_text(encoding="utf-8").replace("path: v1", "path: v2"), encoding="utf-8")
    plan = project.plan_json()
    [update] = [a for a in plan["actions"] if a["action"] == "update"]
    assert {c["field"] for c in update["changes"]} == {"path", "pull_steps"}, update
    assert [u["url"] for u in upload_actions(plan)] == [f"s3://{bucket}/v2"]
    plan_file = tmp_path / "plan.json"     # applied later, exactly as shown: the upload goes where the step reads
    assert project.plan("--out", plan_file).returncode == 0
    saved = reconcile(prefect3_api_url, "apply", plan_file, cwd=tmp_path)
    assert saved.returncode == 0, saved
    s3 = boto3.client("s3", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name="us-east-1")
    assert s3.get_object(Bucket=bucket, Key=f"v2/{MARKER_NAME}")["ContentLength"] > 0
    moved = server.deployment(project.flow, "moved")
    assert moved["pull_steps"] == [{STEP + "pull_from_remote_storage": {**step, "url": f"s3://{bucket}/v2"}}]
    assert project.apply("-v").writes == []


def test_a_github_block_becomes_a_git_clone_step_with_nothing_uploaded(prefect3_api_url, tmp_path, unique):
    secrets = f"  storage_secrets:\n    github/it-gh-{unique}:\n      access_token: gh-token-{unique}\n"
    project, _ = _project(prefect3_api_url, tmp_path, unique, "p3-git", secrets)
    storage = named_block("github", f"it-gh-{unique}", repository="https://github.com/acme/flows",
                          reference="release", access_token=MASK)
    project.add_manifest(upload_manifest(project.flow, "cloned", storage, "etl/daily", schedules=[]))
    plan = project.plan_json()
    [create] = [a for a in plan["actions"] if a["action"] == "create"]
    changes = {c["field"]: c["after"] for c in create["changes"]}
    assert changes["pull_steps"] == [
        {STEP + "git_clone": {"id": "clone", "repository": "https://github.com/acme/flows", "branch": "release",
                              "access_token": "{{ prefect.blocks.secret.gh-token-" + unique + " }}"}},
        {STEP + "set_working_directory": {"directory": "{{ clone.directory }}/etl/daily"}},
    ], create
    assert upload_actions(plan) == [] and plan["summary"]["upload"] == 0


def test_a_token_in_a_repository_url_is_one_line_naming_the_file_and_line(prefect3_api_url, server, tmp_path,
                                                                          unique):
    project, _ = _project(prefect3_api_url, tmp_path, unique, "p3-token")
    token = f"ghp_{unique}secret"
    storage = {"repository": f"https://{token}@github.com/acme/flows", "reference": None, "access_token": None,
               "block_type_slug": "github", "_block_type_slug": "github"}
    path = project.add_manifest(upload_manifest(project.flow, "leaky", storage, None, schedules=[]))
    applied = project.apply()
    assert applied.returncode == 1, applied
    line, summary = applied.stderr.strip().splitlines()     # the error, and "1 error(s); nothing was changed."
    assert summary.startswith("1 error"), applied
    storage_line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if text.startswith("storage:"))
    assert f"{path.name}:{storage_line}" in line and "credentials" in line, line
    assert token not in applied.stdout + applied.stderr
    assert server.deployment(project.flow, "leaky") is None
