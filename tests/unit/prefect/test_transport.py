"""The HTTP client: retries, error translation, the -v request log.

HTTP is faked with httpx.MockTransport under reconcile's own RetryTransport;
`sleep` is replaced by a recorder, so no test sleeps and the delays chosen are
visible.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import io
import re

import httpx
import pytest

from reconciler.prefect.api import PrefectClient
from reconciler.prefect.transport import RetryTransport
from reconciler.errors import AlreadyExists, ApiError, NotFound, ReconcileError, Unreachable

API = "http://prefect.test/api"


class Script:
    """A MockTransport handler that plays a list of answers in order (then repeats the last)."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        answer = self.answers[min(len(self.seen), len(self.answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer


def make_client(script: Script, log=None) -> tuple[PrefectClient, list[float]]:
    slept: list[float] = []
    client = PrefectClient(API, transport=httpx.MockTransport(script), log=log)
    client.retry.sleep = slept.append
    return client, slept


def ok(body=None) -> httpx.Response:
    return httpx.Response(200, json=body if body is not None else "2.20.27")


def status(code: int, body=None, **headers) -> httpx.Response:
    return httpx.Response(code, json=body if body is not None else {"detail": f"status {code}"},
                          headers={k.replace("_", "-"): v for k, v in headers.items()})


# -- retries ------------------------------------------------------------------------

def test_429_waits_for_retry_after_then_succeeds():
    script = Script(status(429, retry_after="3"), ok())
    client, slept = make_client(script)
    assert client.get("admin/version") == "2.20.27"
    assert slept == [3.0]
    assert len(script.seen) == 2


def test_429_retry_after_as_http_date_is_capped():
    later = email.utils.format_datetime(dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1), usegmt=True)
    script = Script(status(429, retry_after=later), ok())
    client, slept = make_client(script)
    assert client.get("admin/version") == "2.20.27"
    assert len(slept) == 1
    assert slept[0] == client.retry.max_delay * 4  # an hour is not honoured literally


def test_429_retry_after_zero_retries_immediately():
    script = Script(status(429, retry_after="0"), ok())
    client, slept = make_client(script)
    assert client.get("admin/version") == "2.20.27"
    assert slept == [0.0]


@pytest.mark.parametrize("code", [502, 503, 504])
def test_gateway_and_locked_database_errors_are_retried(code):
    # SQLite-backed Prefect servers answer concurrent writes with 503 "database is locked"
    script = Script(status(code, {"detail": "database is locked"}), ok({"id": "x"}))
    client, slept = make_client(script)
    assert client.patch("deployments/x", {"tags": []}) == {"id": "x"}
    assert len(script.seen) == 2
    assert len(slept) == 1 and 0 <= slept[0] <= client.retry.base_delay


def test_backoff_grows_but_stays_bounded():
    script = Script(status(502))
    client, slept = make_client(script)
    with pytest.raises(ApiError):
        client.get("admin/version")
    assert len(slept) == client.retry.attempts - 1
    for attempt, delay in enumerate(slept, start=1):
        assert 0 <= delay <= min(client.retry.max_delay, client.retry.base_delay * 2 ** (attempt - 1))


def test_a_busy_server_is_retried_for_a_bounded_time_not_a_count():
    """503 ("database is locked" on SQLite) means the server refused before acting: keep trying ~60 s."""
    script = Script(status(503))
    client, slept = make_client(script)
    with pytest.raises(ApiError):
        client.get("admin/version")
    assert len(slept) >= client.retry.attempts - 1
    assert sum(slept) >= client.retry.busy_budget
    assert sum(slept) <= client.retry.busy_budget + client.retry.max_delay * 4
    assert all(0 <= d <= client.retry.max_delay for d in slept)


def test_connection_errors_are_retried_then_succeed():
    refused = httpx.ConnectError("[Errno 111] Connection refused")
    script = Script(refused, refused, ok())
    client, slept = make_client(script)
    assert client.get("admin/version") == "2.20.27"
    assert len(script.seen) == 3
    assert len(slept) == 2


def test_connection_refused_for_good_is_one_unreachable_line():
    script = Script(httpx.ConnectError("[Errno 111] Connection refused"))
    client, slept = make_client(script)
    with pytest.raises(Unreachable) as err:
        client.get("admin/version")
    message = str(err.value)
    assert message == f"cannot reach the Prefect API at {API}: connection failed ([Errno 111] Connection refused)"
    assert "\n" not in message
    assert len(script.seen) == client.retry.attempts == 6
    assert len(slept) == 5


def test_timeouts_for_good_say_timed_out():
    script = Script(httpx.ReadTimeout("read timed out"))
    client, _ = make_client(script)
    with pytest.raises(Unreachable, match=r"^cannot reach the Prefect API at .*: timed out$"):
        client.get("admin/version")
    assert len(script.seen) == 6


def test_503_for_good_gives_up_with_one_api_error_line():
    script = Script(status(503, {"detail": "database is locked"}))
    client, slept = make_client(script)
    with pytest.raises(ApiError) as err:
        client.post("deployments/", {"name": "x"})
    assert err.value.status == 503
    assert str(err.value) == f"POST {API}/deployments/ → 503: database is locked"
    assert len(script.seen) == len(slept) + 1 and sum(slept) >= client.retry.busy_budget


def test_429_for_good_gives_up_and_never_sleeps_longer_than_the_cap():
    script = Script(status(429, retry_after="100000"))
    client, slept = make_client(script)
    with pytest.raises(ApiError) as err:
        client.get("admin/version")
    assert err.value.status == 429
    assert len(script.seen) == 6
    assert slept == [client.retry.max_delay * 4] * 5


@pytest.mark.parametrize("code", [400, 401, 404, 409, 422, 500])
def test_other_errors_are_not_retried(code):
    script = Script(status(code), ok())
    client, slept = make_client(script)
    with pytest.raises(ApiError):
        client.get("deployments/x")
    assert len(script.seen) == 1
    assert slept == []


def test_retry_transport_alone_hands_back_the_last_answer():
    # the transport itself never raises for a status: translating is the client's job
    script = Script(status(502))
    slept: list[float] = []
    transport = RetryTransport(httpx.MockTransport(script), attempts=3, sleep=slept.append)
    with httpx.Client(transport=transport, base_url=API + "/") as http:
        response = http.get("admin/version")
    assert response.status_code == 502
    assert len(script.seen) == 3 and len(slept) == 2


# -- error translation ------------------------------------------------------------------

ERRORS = [
    pytest.param(404, {"detail": "Deployment not found"}, NotFound, "Deployment not found", id="404-NotFound"),
    pytest.param(409, {"detail": "Block already exists"}, AlreadyExists, "Block already exists", id="409-AlreadyExists"),
    pytest.param(500, {"exception_message": "Internal Server Error"}, ApiError,
                 '{"exception_message": "Internal Server Error"}', id="500-ApiError"),
    pytest.param(422, {"detail": [{"loc": ["body", "paused"], "msg": "value could not be parsed to a boolean"}]},
                 ApiError, "body.paused: value could not be parsed to a boolean", id="422-fastapi-detail"),
    # Prefect 2.20's own answer to PATCH {"is_schedule_active": ...} on a deployment with two schedules
    pytest.param(422, {"detail": ["Error updating deployment: Deployment UUID('ac905a72') has multiple schedules."]},
                 ApiError, "Error updating deployment: Deployment UUID('ac905a72') has multiple schedules.",
                 id="422-detail-list-of-strings"),
]


@pytest.mark.parametrize("code, body, cls, detail", ERRORS)
def test_error_status_becomes_the_right_error(code, body, cls, detail):
    client, _ = make_client(Script(httpx.Response(code, json=body)))
    with pytest.raises(cls) as err:
        client.delete("deployments/0b3c")
    assert type(err.value) is cls
    assert err.value.status == code
    assert str(err.value) == f"DELETE {API}/deployments/0b3c → {code}: {detail}"
    assert "\n" not in str(err.value)
    assert isinstance(err.value, ReconcileError)


def test_prefect_request_validation_error_is_one_line():
    # the shape Prefect 2.20 gives a body FastAPI rejects
    body = {"exception_message": "Invalid request received.",
            "exception_detail": [{"loc": ["body", "paused"], "msg": "value could not be parsed to a boolean",
                                  "type": "type_error.bool"}],
            "request_body": {"paused": "notabool"}}
    client, _ = make_client(Script(httpx.Response(422, json=body)))
    with pytest.raises(ApiError) as err:
        client.patch("deployments/0b3c", {"paused": "notabool"})
    assert err.value.status == 422
    assert "value could not be parsed to a boolean" in str(err.value)
    assert "\n" not in str(err.value)


def test_not_found_and_already_exists_are_api_errors():
    assert issubclass(NotFound, ApiError) and issubclass(AlreadyExists, ApiError)


def test_no_content_answers_none():
    client, _ = make_client(Script(httpx.Response(204)))
    assert client.patch("deployments/x", {"tags": []}) is None


def test_html_answer_is_an_api_error_not_a_crash():
    client, _ = make_client(Script(httpx.Response(200, text="<html>login</html>")))
    with pytest.raises(ApiError, match="the answer is not JSON; is this a Prefect API URL"):
        client.get("admin/version")


def test_version_404_means_not_a_prefect_api():
    client, _ = make_client(Script(httpx.Response(404, json={"detail": "Not Found"})))
    with pytest.raises(Unreachable, match=r"no Prefect API here .*the URL should end in /api"):
        client.server_version()


def test_version_401_asks_for_the_api_key():
    client, _ = make_client(Script(httpx.Response(401, json={"detail": "Unauthorized"})))
    with pytest.raises(ApiError, match="check PREFECT_API_KEY"):
        client.server_version()


def test_api_key_is_sent_as_bearer_token():
    script = Script(ok())
    client = PrefectClient(API, "pnu_secret", transport=httpx.MockTransport(script))
    client.server_version()
    assert script.seen[0].headers["authorization"] == "Bearer pnu_secret"


# -- counting writes ------------------------------------------------------------------

def test_writes_count_changes_not_reads():
    client, _ = make_client(Script(ok([])))
    client.get("admin/version")
    list(client.paged("deployments/filter", {}))
    assert client.writes == 0
    client.post("flows/", {"name": "x"})
    client.patch("deployments/x", {"tags": []})
    client.delete("deployments/x")
    assert client.writes == 3


# -- the -v log ---------------------------------------------------------------------------

LOG_LINE = re.compile(r"^(GET|POST|PATCH|DELETE) (/\S*) (\d{3}|[A-Za-z]+) (\d+)ms$")


def test_verbose_log_has_one_line_per_request():
    log = io.StringIO()
    script = Script(ok(), ok([]), httpx.Response(204))
    client, _ = make_client(script, log=log)
    client.get("admin/version")
    client.post("deployments/filter", {"limit": 200, "offset": 0})
    client.delete("deployments/0b3c")
    lines = log.getvalue().splitlines()
    assert len(lines) == 3
    parsed = [LOG_LINE.match(line) for line in lines]
    assert all(parsed), lines
    assert [(m.group(1), m.group(2), m.group(3)) for m in parsed] == [
        ("GET", "/api/admin/version", "200"),
        ("POST", "/api/deployments/filter", "200"),
        ("DELETE", "/api/deployments/0b3c", "204"),
    ]


def test_verbose_log_shows_each_retry_attempt():
    log = io.StringIO()
    script = Script(status(503), httpx.ConnectError("refused"), ok())
    client, _ = make_client(script, log=log)
    client.get("admin/version")
    outcomes = [LOG_LINE.match(line).group(3) for line in log.getvalue().splitlines()]
    assert outcomes == ["503", "ConnectError", "200"]


def test_no_log_without_verbose(capsys):
    client, _ = make_client(Script(ok()))
    client.get("admin/version")
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_cli_verbose_logs_every_request_to_stderr(monkeypatch, capsys, tmp_path):
    try:
        from .. import prefect_fake as pf
    except ImportError:
        import prefect_fake as pf
    from reconciler import cli

    fake = pf.FakePrefect()
    pf.route_default_transport(monkeypatch, fake)
    root = pf.write_manifests(tmp_path, [pf.manifest("hourly")])
    code = cli.main(["plan", str(root), "-v", "--api-url", pf.API_URL, "--source", pf.SOURCE])
    out, err = capsys.readouterr()
    assert code == 0, err
    logged = [line for line in err.splitlines() if LOG_LINE.match(line)]
    assert len(logged) == len(fake.requests)
    assert logged[0].startswith("GET /api/admin/version 200 ")
    assert not any(LOG_LINE.match(line) for line in out.splitlines())  # the log never mixes into stdout


@pytest.mark.parametrize(("path", "sent"), [
    ("deployments/", 2),                  # an upsert: sending it again is harmless
    ("deployments/d1/schedule", 2),       # runs carry idempotency keys: a second call adds none
    ("deployments/d1/schedules", 1),      # would add the schedule twice: the error is reported instead
])
def test_a_dropped_connection_repeats_a_post_only_when_repeating_is_harmless(path, sent):
    dropped = httpx.RemoteProtocolError("Server disconnected without sending a response.")
    script = Script(dropped, ok({"id": "d1"}))
    client, _ = make_client(script)
    try:
        client.post(path, {"x": 1})
    except Unreachable:
        pass
    assert len(script.seen) == sent


def test_writes_wait_at_the_write_gate_and_reads_do_not():
    """The applier's limiter gates every write sent through the client, retries included; reads go at once."""
    script = Script(status(503), ok({"id": "x"}))
    client, slept = make_client(script)
    gated: list[str] = []

    @contextlib.contextmanager
    def gate():
        gated.append("enter")
        yield
        gated.append("exit")

    client.retry.write_gate = gate
    client.post("deployments/", {"name": "d"})          # refused once, then created: one turn for both
    assert gated == ["enter", "exit"] and len(script.seen) == 2
    script.answers = [ok([])]
    client.get("flows/x")
    client.post("deployments/filter", {})
    client.post("flows/count", {})
    assert gated == ["enter", "exit"]
    client.patch("block_documents/x", {"data": {}})
    client.delete("deployments/x")
    assert gated == ["enter", "exit"] * 3
