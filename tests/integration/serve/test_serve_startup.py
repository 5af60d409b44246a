"""`reconcile serve` refuses to start when a source's Prefect API does not answer: one `error:` line, exit 1."""
from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml

from integration.helpers import cli_env, reconcile
from integration.serve_support import free_port

pytestmark = pytest.mark.integration


def config(tmp_path: Path, *sources: tuple[str, str]) -> tuple[Path, int]:
    port = free_port()
    path = tmp_path / "serve.yaml"
    path.write_text(yaml.safe_dump({
        "listen": f"127.0.0.1:{port}", "workdir": str(tmp_path / "w"),
        "sources": [{"name": name, "repo": str(tmp_path / "repo.git"), "path": "deploy", "api_url": url}
                    for name, url in sources]}))
    return path, port


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]     # closed again when the block ends: nothing listens there


def serve(path: Path):
    return reconcile(None, "serve", path, env=cli_env(None, RECONCILE_WEBHOOK_SECRET="x"), timeout=120)


def test_an_api_url_that_does_not_answer_stops_serve_at_start(tmp_path, prefect_api_url):
    dead = f"http://127.0.0.1:{closed_port()}/api"
    path, port = config(tmp_path, ("good", prefect_api_url), ("dead", dead))
    done = serve(path)
    assert done.returncode == 1, done
    lines = done.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: source dead: cannot reach the Prefect API at {dead}: connection failed")
    assert done.stdout == ""                          # never said it was listening
    with socket.socket() as sock:                     # and the port was never bound
        sock.bind(("127.0.0.1", port))


def test_a_url_that_is_not_a_prefect_api_stops_serve_at_start(tmp_path, prefect_api_url):
    wrong = prefect_api_url.rstrip("/").removesuffix("/api") + "/not-the-api"
    path, _ = config(tmp_path, ("wrong", wrong))
    done = serve(path)
    assert done.returncode == 1, done
    assert done.stderr.strip() == (f"error: source wrong: cannot reach the Prefect API at {wrong}: no Prefect API "
                                   "here (GET /admin/version → 404); the URL should end in /api")
