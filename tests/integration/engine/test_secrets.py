"""No secret value anywhere: every plan format, `--out`, `-v`, apply, status, export, and serve's /status and log.

Secrets are distinctive strings (`SECRET-…-<unique>`) and every byte each command writes is searched for
them: inline ones (infra_overrides env values, an anonymous infrastructure's env, an inline storage block's
`settings`) and server-side ones (a named remote-file-system block's credential `settings`, which the server
keeps in plain text).  A saved plan keeps digests only: applied, the server gets the manifest's secret; when
the manifest's secret changed since the plan, apply refuses in one line and writes nothing.
"""
from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from integration.helpers import Run, Server, edited, manifest, reconcile, write_manifest
from integration.serve_support import Origin, Serve
from integration.upload_support import block_ref, make_block

pytestmark = pytest.mark.integration


@pytest.fixture
def server(prefect_api_url):
    with Server(prefect_api_url) as srv:
        yield srv


def leaks(text: str, secrets: dict[str, str]) -> list[str]:
    return [name for name, value in secrets.items() if value in text]


def assert_clean(secrets: dict[str, str], *texts: str) -> None:
    for text in texts:
        assert not leaks(text, secrets), (leaks(text, secrets), text[-4000:])


class Repo:
    """A git work tree holding three deployments with secrets; the CLI runs from its root."""

    def __init__(self, api_url: str, tmp: Path, unique: str, endpoint: str, server: Server) -> None:
        import subprocess
        self.api_url, self.tmp = api_url, tmp
        self.repo = tmp / "repo"
        self.root = self.repo / "flows"
        self.root.mkdir(parents=True)
        subprocess.run(["git", "init", "-q", str(self.repo)], check=True)
        self.flow = self.source = f"it-secrets-{unique}"
        u = unique
        self.secrets = {"override": f"SECRET-ovr-7c21{u}", "nested": f"SECRET-env-9d04{u}",
                        "infra": f"SECRET-infra-1e88{u}", "inline_key": f"SECRET-key-4b6d{u}",
                        "inline": f"SECRET-aws-5f3a{u}", "named_key": f"SECRET-key-0a9c{u}",
                        "named": f"SECRET-aws-8e17{u}"}
        s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test",
                          region_name="us-east-1")
        bucket = f"it-secrets-{unique}"
        s3.create_bucket(Bucket=bucket)
        s = self.secrets
        named = {"basepath": f"s3://{bucket}/named", "settings": {
            "key": s["named_key"], "secret": s["named"], "client_kwargs": {"endpoint_url": endpoint}}}
        self.block = make_block(server, "remote-file-system", f"it-secrets-{unique}", named)
        self.inline_storage = {"basepath": f"s3://{bucket}/inline", "settings": {
            "key": s["inline_key"], "secret": s["inline"], "client_kwargs": {"endpoint_url": endpoint}},
            "block_type_slug": "remote-file-system", "_block_type_slug": "remote-file-system"}
        self.docs = {
            "dotted": manifest(self.flow, "dotted", infra_overrides={"env.API_TOKEN": s["override"], "image": "x"},
                               storage=block_ref(self.block, "remote-file-system", basepath=named["basepath"]),
                               path="dotted"),
            "nested": manifest(self.flow, "nested", infra_overrides={"env": {"DB_URL": s["nested"]}},
                               storage=self.inline_storage, path="nested"),
            "infra": manifest(self.flow, "infra", infrastructure={
                "type": "process", "env": {"INFRA_PASSWORD": s["infra"]}, "stream_output": True,
                "block_type_slug": "process", "_block_type_slug": "process"}),
        }
        (self.root / "flow.py").write_text("from prefect import flow\n\n@flow\ndef main(n: int = 1, label: str = 'x'):\n"
                                           "    pass\n")
        for doc in self.docs.values():
            write_manifest(self.root, doc)

    def run(self, *args: object) -> Run:
        return reconcile(self.api_url, *args, cwd=self.repo)

    def cmd(self, command: str, *args: object) -> Run:
        return self.run(command, "flows", "--source", self.source, *args)

    def set_override(self, value: str) -> Path:
        self.secrets[f"override-{len(self.secrets)}"] = value
        return write_manifest(self.root, edited(self.docs["dotted"], infra_overrides={"env.API_TOKEN": value,
                                                                                      "image": "x"}))


def everything(run: Run) -> str:
    return run.stdout + run.stderr


def test_no_secret_in_any_output_and_saved_plans_apply_the_manifests_secret(prefect_api_url, server, tmp_path,
                                                                           unique, s3_endpoint):
    repo = Repo(prefect_api_url, tmp_path, unique, s3_endpoint, server)
    outputs = [repo.cmd("plan"), repo.cmd("plan", "-v"), repo.cmd("plan", "--format", "markdown"),
               repo.cmd("plan", "--format", "json", "-v")]
    assert all(r.returncode == 0 for r in outputs), outputs
    assert any(r.method == "POST" for r in outputs[1].requests)       # -v logged the requests (paths only)
    plan = outputs[3].json()
    dotted = next(a for a in plan["actions"] if a.get("deployment") == f"{repo.flow}/dotted")
    assert dotted["desired"]["fields"]["infra_overrides"] == {"env.API_TOKEN": "(sensitive)", "image": "x"}
    assert "(sensitive)" in json.dumps(next(a for a in plan["actions"] if a.get("deployment") == f"{repo.flow}/nested"))

    plan_file = tmp_path / "first.json"
    saved = repo.cmd("plan", "--out", plan_file)
    assert saved.returncode == 0, saved
    applied = repo.run("apply", plan_file, "-v")
    assert applied.returncode == 0, applied
    assert_clean(repo.secrets, *map(everything, outputs + [saved, applied]), plan_file.read_text())

    # the server holds the manifests' values, read back from the manifests at apply time
    deps = server.deployments(repo.flow)
    assert deps["dotted"]["infra_overrides"]["env.API_TOKEN"] == repo.secrets["override"]
    assert deps["nested"]["infra_overrides"] == {"env": {"DB_URL": repo.secrets["nested"]}}
    docs = server.call("POST", "block_documents/filter", {"block_documents": {"id": {"any_": [
        deps["nested"]["storage_document_id"], deps["infra"]["infrastructure_document_id"]]}, "is_anonymous": None},
        "include_secrets": True})
    assert {d["data"].get("settings", {}).get("secret") for d in docs} >= {repo.secrets["inline"]}
    assert any(d["data"].get("env") == {"INFRA_PASSWORD": repo.secrets["infra"]} for d in docs)

    # a changed secret: shown as changed, never by value; a saved plan of it applies the manifest's new value
    old = repo.secrets["override"]
    repo.set_override(f"SECRET-ovr-v2-{unique}")
    text, md, js = (repo.cmd("plan"), repo.cmd("plan", "--format", "markdown"), repo.cmd("plan", "--format", "json"))
    assert "infra_overrides.env.API_TOKEN: (sensitive value changed)" in text.stdout, text
    assert "(sensitive value changed)" in md.stdout, md
    change = next(c for a in js.json()["actions"] for c in a.get("changes", [])
                  if c["field"] == "infra_overrides.env.API_TOKEN")
    assert change == {"field": "infra_overrides.env.API_TOKEN", "before": "(sensitive)", "after": "(sensitive)",
                      "sensitive": True}
    status = [repo.cmd("status"), repo.cmd("status", "--format", "json")]   # drift: the secret differs
    assert any("infra_overrides" in everything(r) for r in status), status
    second = tmp_path / "second.json"
    made = repo.cmd("plan", "--out", second)
    again = repo.run("apply", second)
    assert made.returncode == 0 and again.returncode == 0, again
    assert server.deployment(repo.flow, "dotted")["infra_overrides"]["env.API_TOKEN"] == f"SECRET-ovr-v2-{unique}"
    assert_clean({**repo.secrets, "old": old}, *map(everything, [text, md, js, made, again] + status),
                 second.read_text())

    # the manifest's secret changed after the plan: one line naming file:line, nothing written
    third = tmp_path / "third.json"
    repo.set_override(f"SECRET-ovr-v3-{unique}")
    assert repo.cmd("plan", "--out", third).returncode == 0
    path = repo.set_override(f"SECRET-ovr-v4-{unique}")
    before = server.deployment(repo.flow, "dotted")
    refused = repo.run("apply", third, "-v")
    assert refused.returncode == 1, refused
    assert len(refused.messages) == 1 and refused.messages[0].startswith(f"error: flows/{path.name}:"), refused
    assert "infra_overrides.env.API_TOKEN" in refused.messages[0] and "changed since the plan" in refused.messages[0]
    assert refused.writes == [], refused
    assert server.deployment(repo.flow, "dotted") == before
    assert_clean(repo.secrets, everything(refused), third.read_text())

    # export: the credential settings the server keeps in plain text are written masked
    out = tmp_path / "exported"
    exported = repo.run("export", out, "--flow", repo.flow, "-v")
    assert exported.returncode == 0, exported
    files = "".join(p.read_text() for p in sorted(out.rglob("*.yaml")))
    assert files.count("'**********'") >= 2, files
    block_secrets = {k: v for k, v in repo.secrets.items() if k in ("inline_key", "inline", "named_key", "named")}
    assert_clean(block_secrets, everything(exported), files)


def test_serve_status_and_log_never_show_a_secret(tmp_path, prefect_api_url, server, unique):
    origin = Origin(tmp_path, f"serve-secrets-{unique}")
    secrets = {"override": f"SECRET-ovr-3f1b{unique}", "infra": f"SECRET-infra-6a2e{unique}"}
    infra = {"type": "process", "env": {"INFRA_TOKEN": secrets["infra"]}, "stream_output": True,
             "block_type_slug": "process", "_block_type_slug": "process"}
    origin.write(infra_overrides={"env.API_TOKEN": secrets["override"]}, infrastructure=infra)
    origin.commit("first")
    serve = Serve(tmp_path, prefect_api_url, origin, poll_interval=0.5)
    try:
        serve.wait_runs(1)
        assert server.deployment(origin.flow, "one")["infra_overrides"] == {"env.API_TOKEN": secrets["override"]}
        secrets["second"] = f"SECRET-ovr-v2-{unique}"
        origin.write(infra_overrides={"env.API_TOKEN": secrets["second"]}, infrastructure=infra)
        origin.commit("second")
        runs = serve.wait_runs(2)
        assert runs[-1]["result"] == "applied", runs
        assert any("infra_overrides" in line for line in runs[-1]["changes"]), runs
        status = json.dumps(serve.status())
    finally:
        serve.stop()
    assert server.deployment(origin.flow, "one")["infra_overrides"] == {"env.API_TOKEN": secrets["second"]}
    assert_clean(secrets, status, "\n".join(serve.lines))
