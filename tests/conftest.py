"""Shared pytest fixtures: real Prefect 2.20 and 3.9.1 servers for the integration tests.

``prefect_api_url`` (2.20) and ``prefect3_api_url`` (3.9.1) are session-scoped, so
all integration tests share one server of each line; they keep out of each
other's way by putting the ``unique`` suffix into the names they create. Unit
tests never request them and never start a server. ``server_api_url`` is one
test run against each: ids ``prefect2`` and ``prefect3`` (``server_line`` says
which, "2.20" or "3.9").

Set ``RECONCILE_TEST_API_URL`` / ``RECONCILE_TEST_API_URL_V3`` (e.g.
``http://127.0.0.1:4200/api``) to use a server that is already running;
``.ci/run`` does that. Otherwise a server is started from
``<repo>/.venvs/prefect-2.20`` / ``.venvs/prefect-3.9`` (built on first use)
with its home and SQLite database in a pytest temp dir, and stopped at the end
of the session. The 3.9.1 tests are skipped, saying why, only when its venv
cannot be built (no index to install from); a server that does not start fails.

``s3_endpoint`` (session) is an S3-compatible endpoint for the upload tests:
moto's server mode (the dev extra ``moto[server]``) on a free loopback port,
or the URL in ``RECONCILE_TEST_S3_ENDPOINT`` when that is set.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Iterator

import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
INTEGRATION_DIR = TESTS_DIR / "integration"
SERVER_VENV = REPO_ROOT / ".venvs" / "prefect-2.20"
SERVER_VENV_V3 = REPO_ROOT / ".venvs" / "prefect-3.9"
API_URL_ENV = "RECONCILE_TEST_API_URL"
API_URL_V3_ENV = "RECONCILE_TEST_API_URL_V3"
S3_ENDPOINT_ENV = "RECONCILE_TEST_S3_ENDPOINT"

if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

import prefect_server  # noqa: E402  (tests/prefect_server.py)


# What the user's own home holds for reconcile and Prefect: the demo's storage and embedded
# server (~/.reconcile), the parsed manifests (~/.cache/reconcile), Prefect's profiles and
# database (~/.prefect). No test may write there.
_GUARDED = (".reconcile", ".prefect", ".cache/reconcile")
_real_home: Path | None = None
_home_before: dict[str, tuple[int, int]] = {}


def _snapshot(home: Path) -> dict[str, tuple[int, int]]:
    """Every path under the guarded folders of ``home`` with its size and mtime."""
    seen: dict[str, tuple[int, int]] = {}
    for name in _GUARDED:
        top = home / name
        if not top.exists():
            continue
        for path in [top, *top.rglob("*")]:
            try:
                stat = path.lstat()
            except OSError:
                continue
            seen[str(path)] = (stat.st_size, stat.st_mtime_ns)
    return seen


def pytest_configure(config: pytest.Config) -> None:
    """Run the whole session, and every process it starts, with HOME in a throwaway directory.

    A test that expands ``~`` (a demo block's basepath, the embedded server's home, a Prefect
    profile) then writes there and not into the user's home; ``pytest_sessionfinish`` checks
    that the real home's ``.reconcile``, ``.prefect`` and ``.cache/reconcile`` were left exactly as they were."""
    global _real_home, _home_before
    if os.environ.get("RECONCILE_TEST_REAL_HOME"):      # a nested pytest inherits the guard
        return
    _real_home = Path.home()
    _home_before = _snapshot(_real_home)
    fake = Path(tempfile.mkdtemp(prefix="reconcile-test-home-"))
    os.environ["RECONCILE_TEST_REAL_HOME"] = str(_real_home)
    os.environ["HOME"] = str(fake)
    os.environ.pop("PREFECT_HOME", None)
    os.environ.pop("PREFECT_PROFILES_PATH", None)
    os.environ.pop("XDG_CACHE_HOME", None)       # the parse cache (manifests/parsecache) goes under HOME too
    os.environ.pop("RECONCILE_CACHE_DIR", None)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _real_home is None:
        return
    shutil.rmtree(os.environ["HOME"], ignore_errors=True)
    after = _snapshot(_real_home)
    changed = sorted(p for p in set(after) | set(_home_before) if after.get(p) != _home_before.get(p))
    if changed:
        shown = "\n  ".join(changed[:20])
        print(f"\nerror: the tests wrote into the user's home ({len(changed)} paths):\n  {shown}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    for item in items:
        path = Path(str(item.path)).resolve()
        if path == INTEGRATION_DIR or INTEGRATION_DIR in path.parents:
            item.add_marker(pytest.mark.integration)


def _server_url(env_name: str, venv_path: Path, tmp_path_factory: pytest.TempPathFactory,
                skip_unbuildable: bool) -> Iterator[str]:
    """The URL in ``env_name`` (checked), else a server started from ``venv_path`` for the session."""
    given = os.environ.get(env_name, "").strip()
    if given:
        url = given.rstrip("/")
        if not prefect_server.health_ok(url, timeout=10):
            pytest.fail(
                f"{env_name}={given!r} but GET {url}/health does not answer 200; "
                "start the server first or unset the variable to let the tests start one",
                pytrace=False,
            )
        yield url
        return

    version = prefect_server.version_for(venv_path)
    try:
        venv = prefect_server.ensure_server_venv(venv_path)
    except (prefect_server.ServerError, subprocess.CalledProcessError, OSError) as exc:
        if skip_unbuildable:
            pytest.skip(f"no Prefect {version} server: {env_name} is not set and {venv_path} "
                        f"cannot be built ({exc})")
        pytest.fail(f"could not build {venv_path} for the tests: {exc}", pytrace=False)
    try:
        home = tmp_path_factory.mktemp(f"prefect-{version}-home")
        handle = prefect_server.start_server_on_free_port(venv, home)
    except (prefect_server.ServerError, subprocess.CalledProcessError, OSError) as exc:
        pytest.fail(f"could not start a Prefect {version} server for the tests: {exc}", pytrace=False)
    try:
        yield handle.url
    finally:
        prefect_server.stop_server(handle)


@pytest.fixture(scope="session")
def prefect_api_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base API URL (``http://127.0.0.1:PORT/api``) of a real Prefect 2.20 server."""
    yield from _server_url(API_URL_ENV, SERVER_VENV, tmp_path_factory, skip_unbuildable=False)


@pytest.fixture(scope="session")
def prefect3_api_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base API URL of a real Prefect 3.9.1 server."""
    yield from _server_url(API_URL_V3_ENV, SERVER_VENV_V3, tmp_path_factory, skip_unbuildable=True)


SERVER_LINES = {"2.20": "prefect_api_url", "3.9": "prefect3_api_url"}


@pytest.fixture(params=list(SERVER_LINES), ids=["prefect2", "prefect3"])
def server_api_url(request: pytest.FixtureRequest) -> str:
    """One test, run once against the 2.20 server and once against the 3.9.1 server."""
    return request.getfixturevalue(SERVER_LINES[request.param])


@pytest.fixture
def server_line(request: pytest.FixtureRequest, server_api_url: str) -> str:
    """Which server ``server_api_url`` is in this run: "2.20" or "3.9"."""
    return request.node.callspec.params["server_api_url"]


@pytest.fixture
def prefect_env(prefect_api_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point ``PREFECT_API_URL`` at the test server (no API key) for one test."""
    monkeypatch.setenv("PREFECT_API_URL", prefect_api_url)
    monkeypatch.delenv("PREFECT_API_KEY", raising=False)
    return prefect_api_url


@pytest.fixture(autouse=True)
def _fresh_write_limits() -> None:
    """Every test's applies find their writer count afresh: none inherits what an earlier test's server said."""
    from reconciler.engine import limiter
    limiter.forget()


@pytest.fixture
def unique() -> str:
    """Short random suffix for flow, deployment and source names (shared server)."""
    return uuid.uuid4().hex[:8]


def _answers_http(url: str, timeout: float = 2.0) -> bool:
    """True when something at ``url`` speaks HTTP (any status: S3 answers 403/404 to a bare GET)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _moto_command(port: int) -> list[str]:
    # The console script sits next to this interpreter in the test venv (do not resolve the
    # venv's python symlink: that would leave the venv).
    script = Path(sys.executable).parent / "moto_server"
    args = ["-H", prefect_server.HOST, "-p", str(port)]
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-m", "moto.server", *args]


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Endpoint URL (``http://127.0.0.1:PORT``) of an S3-compatible server: moto in server mode."""
    given = os.environ.get(S3_ENDPOINT_ENV, "").strip()
    if given:
        url = given.rstrip("/")
        if not _answers_http(url, timeout=10):
            pytest.fail(f"{S3_ENDPOINT_ENV}={given!r} does not answer HTTP", pytrace=False)
        yield url
        return

    try:
        import moto.server  # noqa: F401  (only to give a clear message when the dev extra is missing)
    except ImportError:
        pytest.fail("the S3 upload tests need moto's server mode: pip install -e '.[dev]' (moto[server])",
                    pytrace=False)
    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    process = None
    url = ""
    for _ in range(3):  # the free port may be taken between choosing it and binding it
        port = prefect_server.free_port()
        url = f"http://{prefect_server.HOST}:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_"))}
        with open(log_path, "ab") as log:
            process = subprocess.Popen(_moto_command(port), stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                       preexec_fn=_die_with_parent)
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline and not _answers_http(url):
            time.sleep(0.2)
        if process.poll() is None and _answers_http(url):
            break
        _stop(process)
        process = None
    if process is None:
        pytest.fail(f"could not start moto_server; last lines of {log_path}:\n"
                    f"{prefect_server.log_tail(log_path)}", pytrace=False)
    try:
        yield url
    finally:
        _stop(process)


def _die_with_parent() -> None:
    """In the child before exec (Linux): SIGTERM it when pytest dies without its teardown (killed)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
