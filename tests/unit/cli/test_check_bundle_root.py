"""`reconcile check` finds the flow file by the same rule as plan and apply: reconcile.yaml's `bundle_root`
when it is set, else the nearest directory up to the repository root that holds the entrypoint's file."""
from __future__ import annotations

import subprocess

from reconciler import cli

FLOW = "from prefect import flow\n\n\n@flow\ndef etl(table: str = 'orders'):\n    return table\n"


def repo(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "etl.py").write_text(FLOW)
    (tmp_path / "deploy").mkdir()
    cli.main(["build", "src/etl.py:etl", "-n", "nightly", "-o", "deploy/etl-deployment.yaml", "--skip-upload"])
    text = (tmp_path / "deploy" / "etl-deployment.yaml").read_text()
    # as if built from inside src/: the entrypoint is relative to src, which no directory above deploy/ holds
    (tmp_path / "deploy" / "etl-deployment.yaml").write_text(text.replace("entrypoint: src/etl.py:etl",
                                                                          "entrypoint: etl.py:etl"))
    return tmp_path


def test_check_uses_bundle_root(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    repo(tmp_path)
    assert cli.main(["check", "deploy"]) == 1
    assert "entrypoint" in capsys.readouterr().err

    (tmp_path / "deploy" / "reconcile.yaml").write_text("bundle_root: ../src\n")
    assert cli.main(["check", "deploy"]) == 0, capsys.readouterr().err
    assert "1 manifest(s) match their flow code." in capsys.readouterr().out


def test_check_without_bundle_root_searches_up_to_the_repository_root(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    repo(tmp_path)
    (tmp_path / "deploy" / "etl-deployment.yaml").write_text(
        (tmp_path / "deploy" / "etl-deployment.yaml").read_text().replace("entrypoint: etl.py:etl",
                                                                          "entrypoint: src/etl.py:etl"))
    assert cli.main(["check", "deploy"]) == 0, capsys.readouterr().err
