"""Prefect Cloud-style API URLs (`…/api/accounts/{a}/workspaces/{w}`) with an API key as a bearer token.

Every request goes under the workspace's path (never to the host's `/api`), carries the key, retries
included, and the key shows in no error line and no `-v` log line. HTTP is faked at the transport seam
(httpx.MockTransport under reconcile's own RetryTransport).
"""
from __future__ import annotations

import io

import httpx
import pytest

from reconciler.errors import ApiError, ReconcileError
from reconciler.prefect.api import PrefectClient
from reconciler.prefect.connection import resolve

from .test_transport import Script

ACCOUNT, WORKSPACE = "9b6e1a52-0000-4000-8000-00000000000a", "5f0c2d7e-0000-4000-8000-00000000000b"
CLOUD = f"https://api.prefect.cloud/api/accounts/{ACCOUNT}/workspaces/{WORKSPACE}"

KEY = "pnu_Zx81cloudKeyThatMustNeverBePrinted0123"


class Recorder(Script):
    """test_transport's Script (answers in order, then the last again; keeps what it saw), answering the
    server's version when given nothing else."""

    def __init__(self, *answers):
        super().__init__(*(answers or (httpx.Response(200, json="3.9.1"),)))


def cloud_client(recorder: Recorder, key: str = KEY, log=None, url: str = CLOUD) -> PrefectClient:
    client = PrefectClient(url, key, transport=httpx.MockTransport(recorder), log=log)
    client.retry.sleep = lambda seconds: None
    return client


@pytest.mark.parametrize("url", [CLOUD, CLOUD + "/"])
def test_every_request_goes_under_the_workspace_path(url):
    recorder = Recorder(httpx.Response(200, json="3.9.1"), httpx.Response(200, json=[]),
                        httpx.Response(201, json={"id": "f"}), httpx.Response(204))
    with cloud_client(recorder, url=url) as client:
        assert client.server_version() == "3.9.1"
        assert list(client.paged("deployments/filter", {})) == []
        client.post("/flows/", {"name": "etl"})          # a leading slash does not escape to the host root
        client.delete("deployments/abc")
    prefix = f"/api/accounts/{ACCOUNT}/workspaces/{WORKSPACE}/"
    assert [(r.method, r.url.host, r.url.path) for r in recorder.seen] == [
        ("GET", "api.prefect.cloud", prefix + "admin/version"),
        ("POST", "api.prefect.cloud", prefix + "deployments/filter"),
        ("POST", "api.prefect.cloud", prefix + "flows/"),
        ("DELETE", "api.prefect.cloud", prefix + "deployments/abc"),
    ]


def test_the_key_goes_as_a_bearer_token_on_every_request_retries_included():
    recorder = Recorder(httpx.Response(503, json={"detail": "busy"}), httpx.Response(429), httpx.Response(200, json=[]),
                        httpx.Response(200, json="3.9.1"))
    with cloud_client(recorder) as client:
        client.post("deployments/filter", {})
        client.server_version()
    assert len(recorder.seen) == 4
    assert {r.headers.get("authorization") for r in recorder.seen} == {f"Bearer {KEY}"}


def test_without_a_key_no_authorization_header_is_sent():
    recorder = Recorder()
    with cloud_client(recorder, key="") as client:
        client.server_version()
    assert "authorization" not in recorder.seen[0].headers


def test_the_key_is_not_in_the_verbose_log_nor_in_any_error_line():
    log = io.StringIO()
    echo = httpx.Response(500, json={"detail": f"bad token Bearer {KEY}"})   # a proxy that echoes the header
    recorder = Recorder(httpx.Response(401, json={"detail": "Unauthorized"}), echo,
                        httpx.LocalProtocolError(f"Illegal header value b'Bearer {KEY}'"))
    errors = []
    with cloud_client(recorder, log=log) as client:
        for call in (client.server_version, lambda: client.patch("deployments/d", {}),
                     lambda: client.post("deployments/", {})):
            with pytest.raises(ReconcileError) as caught:
                call()
            errors.append(str(caught.value))
    unauthorized, echoed, refused = errors
    assert unauthorized == f"GET {CLOUD}/admin/version → 401: check PREFECT_API_KEY"
    assert echoed == f"PATCH {CLOUD}/deployments/d → 500: bad token Bearer ***"
    assert refused == f"cannot reach the Prefect API at {CLOUD}: Illegal header value b'Bearer ***'"
    lines = log.getvalue().splitlines()
    assert lines and all(f"/workspaces/{WORKSPACE}/" in line for line in lines)
    assert KEY not in log.getvalue() and not any(KEY in e for e in errors)


@pytest.mark.parametrize("bad", ["pnu_abc\ndef", "pnu_abc def", "pnu_abc\x00def", "pnu_abcé"])
def test_a_key_no_header_can_carry_is_one_line_that_does_not_show_it_and_nothing_is_sent(bad):
    recorder = Recorder()
    with pytest.raises(ReconcileError) as caught:
        cloud_client(recorder, key=bad)
    message = str(caught.value)
    assert "PREFECT_API_KEY" in message and "\n" not in message
    assert "abc" not in message and "def" not in message
    assert recorder.seen == []


def test_surrounding_whitespace_of_a_key_read_from_a_file_is_dropped():
    recorder = Recorder()
    with cloud_client(recorder, key=f"  {KEY}\n") as client:
        client.server_version()
    assert recorder.seen[0].headers["authorization"] == f"Bearer {KEY}"


def test_a_forbidden_workspace_is_an_api_error_naming_the_url():
    recorder = Recorder(httpx.Response(403, json={"detail": "Forbidden"}))
    with cloud_client(recorder) as client, pytest.raises(ApiError) as caught:
        client.server_version()
    assert caught.value.status == 403 and CLOUD in str(caught.value) and KEY not in str(caught.value)


def test_the_resolved_target_does_not_show_the_key(monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", CLOUD)
    monkeypatch.setenv("PREFECT_API_KEY", KEY)
    target = resolve(None, None)
    assert (target.api_url, target.api_key) == (CLOUD, KEY)
    assert KEY not in repr(target) and KEY not in str(target)
