"""`reconcile migrate` on the examples → a real Prefect 3.9.1 `prefect --no-prompt deploy --all` creates the same
deployments, and a flow run of one of them completes through a real process worker."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml

from integration.helpers import EXAMPLES, Server, reconcile
from integration.migrate_support import prefect3, prefect3_venv  # noqa: F401
from integration.worker import run_worker_once, wait_for_final_state

NAMES = {"catfact": ("Cat Facts", "catfact-hourly"), "weather": ("Weather Summary", "weather-summary"),
         "reports": ("Regional Sales Report", "apac-online-weekly")}


def _examples_repo(root: Path, unique: str) -> dict[str, tuple[str, str]]:
    """A copy of the examples as a git repository, with names of this test's own (the server is shared)."""
    shutil.copytree(EXAMPLES, root)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    names = {}
    for folder, (flow, name) in NAMES.items():
        path = root / folder / f"{folder}-deployment.yaml"
        text = path.read_text().replace(f"\nname: {name}\n", f"\nname: {name}-{unique}\n", 1)
        path.write_text(text.replace("_block_document_name: reconcile-examples", f"_block_document_name: ex-{unique}"))
        names[folder] = (flow, f"{name}-{unique}")
    (root / "reconcile.yaml").write_text(f"prefect3:\n  work_pools:\n    process: migrate-{unique}\n")
    return names


def test_migrate_examples_then_prefect_deploy_creates_them_and_a_run_completes(
        prefect3_api_url, prefect3_venv, tmp_path, unique):
    root = tmp_path / "examples"
    names = _examples_repo(root, unique)
    pool = f"migrate-{unique}"
    done = reconcile(None, "migrate", ".", "--out", "prefect.yaml", cwd=root)
    assert done.returncode == 0, done
    assert f"prefect work-pool create {pool} --type process" in done.stdout
    manifests = {f: yaml.safe_load((root / f / f"{f}-deployment.yaml").read_text().split("###\n### DO NOT")[0])
                 for f in NAMES}

    created = prefect3(prefect3_venv, prefect3_api_url, "work-pool", "create", pool, "--type", "process", cwd=root)
    assert created.returncode == 0, created.stdout
    deployed = prefect3(prefect3_venv, prefect3_api_url, "--no-prompt", "deploy", "--all", cwd=root)
    assert deployed.returncode == 0, deployed.stdout[-4000:]

    with Server(prefect3_api_url) as server:
        live = {folder: server.call("GET", "deployments/name/{}/{}".format(*names[folder])) for folder in NAMES}
        for folder, got in live.items():
            want = manifests[folder]
            assert got is not None, f"{names[folder]} not created\n{deployed.stdout[-3000:]}"
            assert got["entrypoint"] == f"{folder}/{folder}.py:" + {
                "catfact": "catfacts_flow", "weather": "weather_summary", "reports": "build_report"}[folder]
            assert got["parameters"] == want["parameters"]
            assert sorted(got["tags"]) == sorted(want["tags"])
            assert got["work_pool_name"] == pool and got["work_queue_name"] == want["work_queue_name"]
            assert got["version"] == want["version"] and got["paused"] is False
            assert got["enforce_parameter_schema"] is False
            assert sorted(_schedule(s) for s in got["schedules"]) == sorted(
                _schedule(s) for s in want["schedules"]), folder
        assert live["reports"]["job_variables"] == {"stream_output": True,
                                                    "env": {"REPORTS_BUCKET": "/var/lib/reports/sales"}}
        assert live["weather"]["pull_steps"] == [
            {"prefect.deployments.steps.set_working_directory": {"directory": "/opt/flows"}}]

        # catfact's code is in a local-file-system block, as `reconcile apply` left it on 2.x
        store = tmp_path / "store"
        shutil.copytree(root / "catfact", store / "catfact")
        server.ensure_block_type("local-file-system")
        server.ensure_block_document("local-file-system", f"ex-{unique}", {"basepath": str(store)})
        run = server.call("POST", f"deployments/{live['catfact']['id']}/create_flow_run", {})
        worker = run_worker_once(prefect3_api_url, pool, tmp_path / "worker", venv=prefect3_venv)
        state = wait_for_final_state(server, run["id"], context=worker)
        assert state.get("type") == "COMPLETED", f"{state}\n{worker}"
        assert "5 of 6 facts" in worker.output      # the flow's own log line: the code really ran


def _schedule(entry: dict) -> tuple:
    s = entry["schedule"]
    if "cron" in s:
        return ("cron", s["cron"], s.get("timezone") or "UTC")
    if "interval" in s:
        return ("interval", float(s["interval"]), s.get("timezone") or "UTC")
    rrule = re.sub(r"^DTSTART:[^\n]*\n", "", s["rrule"])   # 3.x adds a start line
    return ("rrule", rrule, s.get("timezone") or "UTC")
