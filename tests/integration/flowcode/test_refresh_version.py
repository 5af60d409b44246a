"""`reconcile build --refresh` and `version:`: the md5 Prefect generated follows the flow file; a version a person
wrote stays.  Real flow files, the real CLI; the flow code is read, never imported."""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import yaml

from integration.helpers import EXAMPLES, reconcile


def copy_weather(tmp_path: Path) -> tuple[Path, Path]:
    shutil.copytree(EXAMPLES / "weather", tmp_path / "weather")
    return tmp_path / "weather" / "weather-deployment.yaml", tmp_path / "weather" / "weather.py"


def edit_flow(flow: Path) -> None:
    flow.write_text(flow.read_text() + "\n# a change that moves the file's md5\n")


def test_a_generated_version_is_refreshed_when_the_flow_file_changes(tmp_path):
    manifest, flow = copy_weather(tmp_path)
    before = manifest.read_text()
    assert yaml.safe_load(before)["version"] == hashlib.md5(flow.read_bytes()).hexdigest()   # as Prefect wrote it
    edit_flow(flow)
    run = reconcile(None, "build", "--refresh", "weather", cwd=tmp_path)
    assert run.returncode == 0, run
    assert run.stdout.splitlines() == ["refreshed weather/weather-deployment.yaml",
                                       "1 manifest(s) refreshed, 0 already up to date."]
    new = hashlib.md5(flow.read_bytes()).hexdigest()
    old = yaml.safe_load(before)["version"]
    assert manifest.read_text() == before.replace(f"version: {old}\n", f"version: {new}\n")
    again = reconcile(None, "build", "--refresh", "weather", cwd=tmp_path)
    assert again.stdout.splitlines()[-1] == "0 manifest(s) refreshed, 1 already up to date."


def test_a_version_a_person_wrote_is_kept(tmp_path):
    manifest, flow = copy_weather(tmp_path)
    old = yaml.safe_load(manifest.read_text())["version"]
    manifest.write_text(manifest.read_text().replace(f"version: {old}\n", "version: 2024.06-release  # ours\n"))
    before = manifest.read_text()
    edit_flow(flow)
    run = reconcile(None, "build", "--refresh", "weather", cwd=tmp_path)
    assert run.returncode == 0, run
    assert run.stdout.splitlines()[-1] == "0 manifest(s) refreshed, 1 already up to date."
    assert manifest.read_text() == before


def test_build_over_an_existing_manifest_refreshes_its_generated_version(tmp_path):
    (tmp_path / "f.py").write_text("from prefect import flow\n\n@flow\ndef go(n: int = 1):\n    pass\n")
    first = reconcile(None, "build", "f.py:go", "-n", "one", cwd=tmp_path)
    assert first.returncode == 0, first
    path = tmp_path / "one-deployment.yaml"
    path.write_text(path.read_text().replace("description: null\n", "description: null  # kept\n"))
    edit_flow(tmp_path / "f.py")
    second = reconcile(None, "build", "f.py:go", "-n", "one", cwd=tmp_path)
    assert second.returncode == 0, second
    text = path.read_text()
    assert yaml.safe_load(text)["version"] == hashlib.md5((tmp_path / "f.py").read_bytes()).hexdigest()
    assert "description: null  # kept\n" in text
