"""The serve controller without a server: configuration errors, run queueing, metrics and status."""
from __future__ import annotations

import io
import json
import re
import threading
import time
from pathlib import Path

import pytest

from reconciler.errors import ReconcileError
from reconciler.serve import config as config_mod
from reconciler.serve.controller import Worker
from reconciler.serve.queue import Request
from reconciler.serve.state import RunRecord, State


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "serve.yaml"
    path.write_text(text, encoding="utf-8")
    return path


SOURCE = "sources:\n  - name: flows\n    repo: repo.git\n"


def test_relative_paths_in_the_file_are_relative_to_the_file(tmp_path):
    config = config_mod.load(write(tmp_path, SOURCE))
    assert config.sources[0].repo == str(tmp_path / "repo.git")
    assert config.workdir == str(tmp_path / ".reconcile-serve")
    assert (config.poll_interval, config.self_heal, config.host_port) == (180.0, True, ("127.0.0.1", 8080))
    remote = config_mod.load(write(tmp_path, "sources:\n  - name: a\n    repo: git@github.com:acme/flows.git\n"))
    assert remote.sources[0].repo == "git@github.com:acme/flows.git"


@pytest.mark.parametrize("text, message", [
    ("sources: []\n", r"serve.yaml:1:\d+: sources"),
    (SOURCE + "    brnch: main\n", r"serve.yaml:4:5: .*unknown key"),
    (SOURCE + "poll_interval: -1\n", r"serve.yaml:4:\d+: poll_interval"),
    (SOURCE + "listen: localhost\n", r"serve.yaml:4:\d+: listen: .*HOST:PORT"),
    ("sources:\n  - name: a/b\n    repo: r\n", r"serve.yaml:2:\d+: sources.0.name"),
    ("sources:\n  - name: a\n    repo: r\n    path: ../up\n", r"serve.yaml:4:\d+: sources.0.path"),
    ("sources:\n  - {name: a, repo: r}\n  - {name: a, repo: s}\n", r"two sources are named 'a'"),
])
def test_a_bad_configuration_is_one_line_naming_the_place(tmp_path, text, message):
    with pytest.raises(ReconcileError) as caught:
        config_mod.load(write(tmp_path, text))
    assert re.search(message, str(caught.value)), str(caught.value)
    assert "\n" not in str(caught.value)


def test_serve_will_not_start_without_a_secret_or_an_api_url(tmp_path, monkeypatch):
    config = config_mod.load(write(tmp_path, SOURCE))
    monkeypatch.delenv("RECONCILE_WEBHOOK_SECRET", raising=False)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with pytest.raises(ReconcileError, match="export RECONCILE_WEBHOOK_SECRET"):
        config_mod.secret(config)
    with pytest.raises(ReconcileError, match="source flows: no api_url"):
        config_mod.api_url(config.sources[0])
    monkeypatch.setenv("PREFECT_API_URL", "http://prefect:4200/api")
    assert config_mod.api_url(config.sources[0]) == "http://prefect:4200/api"


class Blocking(Worker):
    """A worker whose runs wait for the test, so queueing can be seen."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.ran: list[Request] = []
        self.release = threading.Semaphore(0)
        self.entered = threading.Semaphore(0)
        self.active = 0
        self.overlapped = False

    def _run(self, request, record):
        self.active += 1
        self.overlapped |= self.active > 1
        self.ran.append(request)
        self.entered.release()
        self.release.acquire(timeout=10)
        record.result = "in-sync"
        self.active -= 1


def blocking_worker(tmp_path: Path, **settings) -> Blocking:
    config = config_mod.load(write(tmp_path, SOURCE + "poll_interval: 0\n"))
    config = config.model_copy(update=settings)
    return Blocking(config.sources[0], config, State(["flows"], log=io.StringIO()))


def test_pushes_during_a_run_coalesce_into_one_run_for_the_newest_commit(tmp_path):
    worker = blocking_worker(tmp_path)
    worker.start()
    assert worker.entered.acquire(timeout=10)          # the startup run is in progress
    for commit in ("1" * 40, "2" * 40, "3" * 40):
        worker.submit(Request("webhook", commit))
    worker.release.release()
    assert worker.entered.acquire(timeout=10)
    worker.release.release()
    worker.stop(timeout=10)
    assert [(r.trigger, r.commit) for r in worker.ran] == [("startup", None), ("webhook", "3" * 40)]
    assert [r.commit for r in worker.ran[1].requests()] == ["1" * 40, "2" * 40, "3" * 40]   # git picks among them
    assert not worker.overlapped and not worker.thread.is_alive()


def test_status_says_idle_only_with_no_run_in_progress_and_nothing_queued(tmp_path):
    worker = blocking_worker(tmp_path)
    idle = lambda: worker.state.status()["sources"]["flows"]["idle"]   # noqa: E731
    assert idle() is False                             # the startup run is queued
    worker.start()
    assert worker.entered.acquire(timeout=10)
    assert idle() is False
    worker.submit(Request("webhook", "1" * 40))
    worker.release.release()
    assert worker.entered.acquire(timeout=10)
    assert idle() is False and worker.state.status()["sources"]["flows"]["queued_commits"] == 0
    worker.release.release()
    deadline = time.monotonic() + 10
    while not idle() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert idle() is True
    worker.submit(Request("webhook", "2" * 40))
    assert idle() is False
    assert worker.entered.acquire(timeout=10)
    worker.release.release()
    worker.stop(timeout=10)


def test_a_poll_does_not_displace_a_queued_push(tmp_path):
    worker = blocking_worker(tmp_path)
    worker.start()
    assert worker.entered.acquire(timeout=10)
    worker.submit(Request("webhook", "1" * 40))
    worker.submit(Request("poll"))
    worker.release.release()
    assert worker.entered.acquire(timeout=10)
    worker.release.release()
    worker.stop(timeout=10)
    assert [r.trigger for r in worker.ran] == ["startup", "webhook"]


def test_stopping_finishes_the_run_in_progress_and_drops_the_queue(tmp_path):
    worker = blocking_worker(tmp_path)
    worker.start()
    assert worker.entered.acquire(timeout=10)
    worker.submit(Request("webhook", "1" * 40))
    stopper = threading.Thread(target=worker.stop, kwargs={"timeout": 10})
    stopper.start()
    stopper.join(0.2)
    assert stopper.is_alive()                          # waiting for the run in progress
    worker.release.release()
    stopper.join(10)
    assert not worker.thread.is_alive()
    assert [r.trigger for r in worker.ran] == ["startup"]
    assert worker.state.runs["flows"][0].result == "in-sync"
    assert '"event": "dropped"' in worker.state._log.getvalue()


def test_polling_runs_on_a_timer(tmp_path):
    now = [0.0]
    config = config_mod.load(write(tmp_path, SOURCE + "poll_interval: 60\n"))
    worker = Blocking(config.sources[0], config, State(["flows"], log=io.StringIO()), clock=lambda: now[0])
    worker.start()
    assert worker.entered.acquire(timeout=10)
    worker.release.release()
    idle = lambda: worker.state.status()["sources"]["flows"]["idle"]   # noqa: E731
    deadline = time.monotonic() + 10
    while not idle() and time.monotonic() < deadline:   # the next poll is set before the worker says idle
        time.sleep(0.01)
    assert idle() is True
    assert not worker.entered.acquire(timeout=0.3)    # an hour is not up
    now[0] = 1000.0
    assert worker.entered.acquire(timeout=10)
    worker.release.release()
    worker.stop(timeout=10)
    assert [r.trigger for r in worker.ran][:2] == ["startup", "poll"]


def test_metrics_are_prometheus_text_per_source():
    state = State(["a", "b"], log=io.StringIO())
    record = RunRecord("a", "webhook", "1" * 40, duration_s=1.5, result="applied", actions={"create": 2, "update": 1})
    state.started(record)
    state.finished(record)
    failed = RunRecord("b", "poll", None, result="failed", errors=["x"])
    state.started(failed)
    state.finished(failed)
    state.delivery("rejected", status=401, reason="bad signature")
    text = state.metrics()
    for line in ['reconcile_last_run_duration_seconds{source="a"} 1.5',
                 'reconcile_last_run_success{source="a"} 1', 'reconcile_last_run_success{source="b"} 0',
                 'reconcile_runs_total{source="a",result="applied"} 1',
                 'reconcile_actions_total{source="a",kind="create"} 2',
                 'reconcile_webhook_deliveries_total{outcome="rejected"} 1',
                 "# TYPE reconcile_runs_total counter"]:
        assert line in text.splitlines(), line
    for line in text.splitlines():   # every line is a comment or `name{labels} number`
        assert line.startswith("# ") or re.fullmatch(r'[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? [0-9.e+-]+', line)


def test_each_finished_run_is_one_json_log_line():
    log = io.StringIO()
    state = State(["a"], log=log)
    record = RunRecord("a", "webhook", "1" * 40, result="failed", errors=["deploy/x.yaml:3:1: bad"])
    state.started(record)
    state.finished(record)
    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    assert len(lines) == 1
    assert lines[0]["event"] == "run" and lines[0]["errors"] == ["deploy/x.yaml:3:1: bad"]
    assert state.status()["sources"]["a"]["runs"][0]["result"] == "failed"


def test_startup_checks_name_what_is_wrong(tmp_path, monkeypatch):
    with pytest.raises(ReconcileError, match=r"serve.yaml:4:\d+: sources.0.api_url: .*http\(s\) URL"):
        config_mod.load(write(tmp_path, SOURCE + "    api_url: not a url\n"))
    config = config_mod.load(write(tmp_path, SOURCE + "    api_key_env: MY_PREFECT_KEY\n"))
    monkeypatch.delenv("MY_PREFECT_KEY", raising=False)
    with pytest.raises(ReconcileError, match="api_key_env names MY_PREFECT_KEY, which is not set"):
        config_mod.api_key(config.sources[0])
    monkeypatch.setenv("MY_PREFECT_KEY", "pnu_secret")
    assert config_mod.api_key(config.sources[0]) == "pnu_secret"
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    config = config_mod.load(write(tmp_path, SOURCE + f"workdir: {blocked}/w\n"))
    with pytest.raises(ReconcileError, match=r"workdir .*/file/w: cannot write there"):
        config_mod.workdir(config)


def test_home_is_expanded_in_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    config = config_mod.load(write(tmp_path, "workdir: ~/work\nsources:\n  - {name: a, repo: ~/flows.git}\n"))
    assert config.workdir == str(tmp_path / "home" / "work")
    assert config.sources[0].repo == str(tmp_path / "home" / "flows.git")


@pytest.mark.parametrize("listen, poll, message", [
    ("localhost", None, "--listen: HOST:PORT, e.g. 127.0.0.1:8080"),
    (None, -5.0, "--poll-interval: Input should be greater than or equal to 0"),
])
def test_a_bad_command_line_override_is_one_line(tmp_path, monkeypatch, listen, poll, message):
    from reconciler.serve.run import serve

    monkeypatch.setenv("RECONCILE_WEBHOOK_SECRET", "x")
    with pytest.raises(ReconcileError) as caught:
        serve(write(tmp_path, SOURCE), listen=listen, poll_interval=poll)
    assert str(caught.value) == message


def test_a_run_over_run_timeout_fails_healthz(tmp_path):
    import anyio
    import httpx

    from reconciler.serve.app import create_app
    from reconciler.serve.controller import Controller

    config = config_mod.load(write(tmp_path, SOURCE + "poll_interval: 0\nrun_timeout: 0.2\n"))
    state = State(["flows"], log=io.StringIO())
    controller = Controller(config, state)
    worker = Blocking(config.sources[0], config, state)
    controller.workers = [worker]
    app = create_app(config, b"s", controller, state)

    async def healthz() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://serve") as client:
            return await client.get("/healthz")

    worker.start()
    assert worker.entered.acquire(timeout=10)
    assert anyio.run(healthz).status_code == 200
    worker.state.runs["flows"][0].started_at -= 1.0     # the run has now lasted over a second
    answer = anyio.run(healthz)
    assert answer.status_code == 503 and answer.json()["runs_over_run_timeout"] == ["flows"]
    worker.release.release()
    worker.stop(timeout=10)
    assert anyio.run(healthz).status_code == 503        # a stopped worker is not healthy either


def test_the_listening_socket_is_tcp_so_responses_are_not_held_by_nagle():
    import socket

    from reconciler.serve.run import _bind

    sock = _bind("127.0.0.1", 0)
    try:
        # asyncio turns TCP_NODELAY on only for connections of a socket whose protocol is IPPROTO_TCP;
        # socket.create_server() leaves it 0, and every keep-alive response then waits ~40 ms
        assert sock.proto == socket.IPPROTO_TCP
        with pytest.raises(ReconcileError, match=r"^cannot listen on 127.0.0.1:\d+: Address already in use$"):
            _bind("127.0.0.1", sock.getsockname()[1])
    finally:
        sock.close()
