"""The common layout (issue 12, item 1): `flows/etl.py` plus `deployments/etl-deployment.yaml`, written by a
real `prefect deployment build flows/etl.py:etl -o deployments/…` run at the repository's root.

The bundle is the directory the entrypoint is relative to (the repository's root here), not the manifest's:
apply uploads flows/etl.py, a change to it plans an upload (and status calls it drift), `check deployments/`
passes, the pull-request Action passes, and Prefect 2.20 itself runs the flow from what was uploaded.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

import prefect_server
from conftest import SERVER_VENV
from integration.helpers import Server, reconcile
from integration.upload_support import MARKER_NAME, stored_files, upload_actions

FLOW = '''from pathlib import Path

from prefect import flow


@flow(name="{flow}")
def etl(table: str = "orders"):
    Path({out!r}).write_text("{version}:" + table)
    return table
'''


@pytest.fixture
def server(prefect_api_url):
    with Server(prefect_api_url) as srv:
        yield srv


@pytest.fixture(scope="module")
def prefect_bin() -> Path:
    return prefect_server.ensure_server_venv(SERVER_VENV) / "bin" / "prefect"


def prefect_env(api_url: str, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_API_URL=api_url, PREFECT_HOME=str(home), PYTHONUNBUFFERED="1")
    return env


def git(repo: Path, *args: str) -> None:
    done = subprocess.run(["git", "-c", "user.name=it", "-c", "user.email=it@example.com", *args], cwd=repo,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


class Layout:
    """A git repository with flows/etl.py and deployments/etl-deployment.yaml written by Prefect 2.20."""

    def __init__(self, api_url: str, server: Server, prefect_bin: Path, tmp_path: Path, unique: str) -> None:
        self.api_url, self.tmp = api_url, tmp_path
        self.repo = tmp_path / "repo"
        self.flow, self.name, self.source = f"etl-{unique}", f"nightly-{unique}", f"it-layout-{unique}"
        self.out = tmp_path / "ran.txt"
        self.basepath = tmp_path / "storage"                       # outside the repository
        self.block = f"it-layout-{unique}"
        server.ensure_block_document("local-file-system", self.block, {"basepath": str(self.basepath)})
        (self.repo / "flows").mkdir(parents=True)
        (self.repo / "deployments").mkdir()
        git(self.repo, "init", "-q")
        self.write_flow("v1")
        self.env = prefect_env(api_url, tmp_path / "prefect-home")
        built = subprocess.run(
            [str(prefect_bin), "deployment", "build", "flows/etl.py:etl", "-n", self.name,
             "-o", "deployments/etl-deployment.yaml", "-sb", f"local-file-system/{self.block}", "--skip-upload"],
            cwd=self.repo, env=self.env, capture_output=True, text=True, timeout=240)
        assert built.returncode == 0, built.stdout + built.stderr
        self.manifest = self.repo / "deployments" / "etl-deployment.yaml"
        assert "entrypoint: flows/etl.py:etl" in self.manifest.read_text(encoding="utf-8")
        git(self.repo, "add", "-A")
        git(self.repo, "commit", "-q", "-m", "etl")

    def write_flow(self, version: str) -> str:
        code = FLOW.format(flow=self.flow, out=str(self.out), version=version)
        (self.repo / "flows" / "etl.py").write_text(code, encoding="utf-8")
        return code

    def run(self, command: str, *args: str):
        return reconcile(self.api_url, command, "deployments", *args, cwd=self.repo)

    def rc(self, command: str, *args: str):
        return self.run(command, "--source", self.source, *args)


@pytest.fixture
def layout(prefect_api_url, server, prefect_bin, tmp_path, unique) -> Layout:
    return Layout(prefect_api_url, server, prefect_bin, tmp_path, unique)


def test_apply_uploads_the_flow_code_and_prefect_runs_it_from_the_storage(layout, server, prefect_bin):
    plan = layout.rc("plan", "--format", "json")
    assert plan.returncode == 0, plan
    [upload] = upload_actions(plan.json())
    assert sorted(upload["write"]) == ["deployments/etl-deployment.yaml", "flows/etl.py"], upload
    assert upload["bundle_dir"] == str(layout.repo.resolve())

    applied = layout.rc("apply")
    assert applied.returncode == 0, applied
    stored = stored_files(layout.basepath)
    assert stored["flows/etl.py"] == (layout.repo / "flows" / "etl.py").read_bytes()
    assert set(stored) == {"flows/etl.py", "deployments/etl-deployment.yaml", MARKER_NAME}   # .prefectignore'd
    dep = server.deployment(layout.flow, layout.name)
    assert dep["entrypoint"] == "flows/etl.py:etl"

    # what the storage holds is what Prefect's agent needs: it pulls it and finds the entrypoint in it
    flow_run = server.call("POST", f"deployments/{dep['id']}/create_flow_run", {})
    workdir = layout.tmp / "run"
    workdir.mkdir()
    proc = subprocess.run([str(prefect_bin), "flow-run", "execute", flow_run["id"]], cwd=workdir, env=layout.env,
                          capture_output=True, text=True, timeout=240)
    state = server.call("GET", f"flow_runs/{flow_run['id']}")["state"]
    assert state["type"] == "COMPLETED", proc.stdout + proc.stderr
    assert layout.out.read_text() == "v1:orders"


def test_a_change_to_the_flow_code_is_drift_plans_an_upload_and_apply_uploads_it(layout, server):
    assert layout.rc("apply").returncode == 0
    settled = layout.rc("status", "--detailed-exitcode")
    assert settled.returncode == 0 and "1 in sync." in settled.stdout, settled

    code = layout.write_flow("v2")
    plan = layout.rc("plan", "--format", "json", "--detailed-exitcode")
    assert plan.returncode == 2, plan
    [upload] = upload_actions(plan.json())
    assert upload["write"] == ["flows/etl.py"] and upload["remove"] == [], upload
    text = layout.rc("plan")
    assert "No changes" not in text.stdout and "1 bundle to upload" in text.stdout, text

    status = layout.rc("status", "--detailed-exitcode")
    assert status.returncode == 2, status
    assert "drifted" in status.stdout and "1 file(s) to upload" in status.stdout, status
    as_json = layout.rc("status", "--format", "json")
    [entry] = as_json.json()["deployments"]
    assert entry["status"] == "drifted" and entry["code"]["files_changed"] == 1, entry
    assert as_json.json()["summary"]["drifted"] == 1

    applied = layout.rc("apply")
    assert applied.returncode == 0, applied
    assert (layout.basepath / "flows" / "etl.py").read_text(encoding="utf-8") == code
    again = layout.rc("status", "--detailed-exitcode")
    assert again.returncode == 0 and "1 in sync." in again.stdout, again


def test_check_passes_on_the_manifests_folder(layout):
    checked = layout.run("check")
    assert checked.returncode == 0, checked
    assert "1 manifest(s) match their flow code." in checked.stdout
    (layout.repo / "flows" / "etl.py").write_text(FLOW.replace('table: str = "orders"', "table: int = 1")
                                                  .format(flow=layout.flow, out="x", version="v"), encoding="utf-8")
    stale = layout.run("check")
    assert stale.returncode == 1 and "parameter_openapi_schema" in stale.stderr, stale


def test_an_entrypoint_found_nowhere_is_one_line_naming_its_line_and_nothing_is_written(layout, server):
    (layout.repo / "flows" / "etl.py").rename(layout.repo / "flows" / "moved.py")
    for command in ("plan", "apply", "status"):
        run = layout.rc(command, "-v")
        assert run.returncode == 1, run
        errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
        line = next(i for i, text in enumerate(layout.manifest.read_text().splitlines(), 1)
                    if text.startswith("entrypoint:"))
        assert len(errors) == 1 and errors[0].startswith(f"error: deployments/etl-deployment.yaml:{line}:"), run
        assert "no file flows/etl.py" in errors[0], run
        assert run.writes == [], run
    assert not layout.basepath.exists()
    assert server.deployment(layout.flow, layout.name) is None


def test_the_pull_request_action_passes(layout, prefect_api_url):
    from integration.triggers.test_github_action import Runner, StandInGitHub
    with StandInGitHub() as github:
        run = Runner(layout.repo, github, layout.tmp / "runner")
        done = run(path="deployments", api_url=prefect_api_url, source=layout.source)
    assert done.returncode == 0, done
    assert "✅ **check:** 1 manifest(s) match their flow code." in done.summary, done
    plan = json.loads(Path(done.outputs["plan-json"]).read_text(encoding="utf-8"))
    assert [a["action"] for a in plan["actions"]] == ["upload", "create"], plan


def test_a_saved_plan_uploads_the_code_root_and_is_refused_once_the_flow_code_changed(layout, server):
    saved = layout.tmp / "plan.json"
    made = layout.rc("plan", "--out", str(saved))
    assert made.returncode == 0, made
    [upload] = upload_actions(json.loads(saved.read_text(encoding="utf-8")))
    assert upload["bundle_dir"] == str(layout.repo.resolve())

    layout.write_flow("v2")
    stale = reconcile(layout.api_url, "apply", str(saved), cwd=layout.repo)
    assert stale.returncode == 1 and "changed" in stale.stderr, stale
    assert not layout.basepath.exists() and server.deployment(layout.flow, layout.name) is None

    layout.write_flow("v1")
    applied = reconcile(layout.api_url, "apply", str(saved), cwd=layout.repo)
    assert applied.returncode == 0, applied
    assert (layout.basepath / "flows" / "etl.py").read_bytes() == (layout.repo / "flows" / "etl.py").read_bytes()
    assert server.deployment(layout.flow, layout.name)["entrypoint"] == "flows/etl.py:etl"
