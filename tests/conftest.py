"""Shared pytest fixtures: a real Prefect 2.20 server for the integration tests.

``prefect_api_url`` is session-scoped, so all integration tests share one
server; they keep out of each other's way by putting the ``unique`` suffix into
the names they create. Unit tests never request it and never start a server.

Set ``RECONCILE_TEST_API_URL`` (e.g. ``http://127.0.0.1:4200/api``) to use a
server that is already running; ``.ci/run`` does that. Otherwise a server is
started from ``<repo>/.venvs/prefect-2.20`` (built on first use) with its home
and SQLite database in a pytest temp dir, and stopped at the end of the session.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Iterator

import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
INTEGRATION_DIR = TESTS_DIR / "integration"
SERVER_VENV = REPO_ROOT / ".venvs" / "prefect-2.20"
API_URL_ENV = "RECONCILE_TEST_API_URL"

if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

import prefect_server  # noqa: E402  (tests/prefect_server.py)


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    for item in items:
        path = Path(str(item.path)).resolve()
        if path == INTEGRATION_DIR or INTEGRATION_DIR in path.parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def prefect_api_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base API URL (``http://127.0.0.1:PORT/api``) of a real Prefect 2.20 server."""
    given = os.environ.get(API_URL_ENV, "").strip()
    if given:
        url = given.rstrip("/")
        if not prefect_server.health_ok(url, timeout=10):
            pytest.fail(
                f"{API_URL_ENV}={given!r} but GET {url}/health does not answer 200; "
                "start the server first or unset the variable to let the tests start one",
                pytrace=False,
            )
        yield url
        return

    try:
        venv = prefect_server.ensure_server_venv(SERVER_VENV)
        home = tmp_path_factory.mktemp("prefect-home")
        handle = prefect_server.start_server_on_free_port(venv, home)
    except (prefect_server.ServerError, subprocess.CalledProcessError, OSError) as exc:
        pytest.fail(f"could not start a Prefect server for the tests: {exc}", pytrace=False)
    try:
        yield handle.url
    finally:
        prefect_server.stop_server(handle)


@pytest.fixture
def prefect_env(prefect_api_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point ``PREFECT_API_URL`` at the test server (no API key) for one test."""
    monkeypatch.setenv("PREFECT_API_URL", prefect_api_url)
    monkeypatch.delenv("PREFECT_API_KEY", raising=False)
    return prefect_api_url


@pytest.fixture
def unique() -> str:
    """Short random suffix for flow, deployment and source names (shared server)."""
    return uuid.uuid4().hex[:8]
