"""Support for the schedule and run tests: a deployment's future runs, and a proxy that stops an apply at a chosen write.

`HoldingProxy` sits between `reconcile apply` and the real server. It forwards
every request until `stop(index, method, path, done)` says so for a write; that
write and every request after it are never forwarded. The test then SIGKILLs the
apply: the server holds exactly the writes before the chosen one.
"""
from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

import httpx

from integration.helpers import Server

Stop = Callable[[int, str, str, list], bool]   # (1-based write index, method, path, writes done) → stop here


def future_runs(server: Server, deployment_id: str) -> list[dict]:
    """The deployment's auto-scheduled runs in a Scheduled state that start after now."""
    now = dt.datetime.now(dt.timezone.utc)
    runs = server.call("POST", "flow_runs/filter", {
        "flow_runs": {"deployment_id": {"any_": [deployment_id]}, "state": {"type": {"any_": ["SCHEDULED"]}},
                      "expected_start_time": {"after_": now.isoformat()}},
        "sort": "EXPECTED_START_TIME_ASC", "limit": 200})
    return [r for r in runs if r.get("auto_scheduled")]


def assert_runs_due_in_the_next_minutes(server: Server, deployment_id: str, minutes: int = 5) -> list[dict]:
    """Every minute boundary of the next `minutes` has its run (for a deployment scheduled every minute)."""
    now = dt.datetime.now(dt.timezone.utc)
    runs = future_runs(server, deployment_id)
    by_start = {dt.datetime.fromisoformat(r["expected_start_time"]).astimezone(dt.timezone.utc): r for r in runs}
    first = now.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    due = [first + dt.timedelta(minutes=i) for i in range(minutes)]
    missing = [t.isoformat() for t in due if t not in by_start]
    assert not missing, f"no scheduled run at {missing}; runs start at {sorted(s.isoformat() for s in by_start)[:10]}"
    return [by_start[t] for t in due]


def is_write(method: str, path: str) -> bool:
    return method in ("PATCH", "PUT", "DELETE") or (method == "POST" and not path.endswith("/filter"))


@dataclass
class HoldingProxy:
    upstream: str
    stop: Stop = lambda index, method, path, done: False
    api_url: str = ""
    writes: int = 0                                                # writes let through (or held: the last one)
    done: list = field(default_factory=list)                      # (method, path, status) of writes answered
    held: str = ""                                                 # "METHOD path" of the write it stopped at
    reached: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> "HoldingProxy":
        upstream = httpx.URL(self.upstream)
        # a new upstream connection per request: a pooled one the server closed while idle would fail the
        # request it is reused for ("Server disconnected without sending a response") and the apply with it
        client = httpx.Client(base_url=f"{upstream.scheme}://{upstream.host}:{upstream.port}", timeout=60,
                              limits=httpx.Limits(max_keepalive_connections=0))
        lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                path = self.path.split("?")[0]
                write = is_write(self.command, path)
                with lock:
                    if write and not proxy.reached.is_set():
                        proxy.writes += 1
                        if proxy.stop(proxy.writes, self.command, path, list(proxy.done)):
                            proxy.held = f"{self.command} {path}"
                            proxy.reached.set()
                    holding = proxy.reached.is_set()
                if holding:  # this request never reaches the server; the client is killed meanwhile
                    proxy.release.wait(120)
                    self.close_connection = True
                    return
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "content-length", "connection", "accept-encoding")}
                response = client.request(self.command, self.path, content=raw, headers=headers)
                if write:
                    with lock:
                        proxy.done.append((self.command, path, response.status_code))
                payload = response.content
                self.send_response(response.status_code)
                for key, value in response.headers.items():
                    if key.lower() in ("content-type", "retry-after"):
                        self.send_header(key, value)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _forward

            def log_message(self, *args: object) -> None:
                pass

        self._client = client
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.api_url = f"http://127.0.0.1:{self._server.server_address[1]}{upstream.path}".rstrip("/")
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._client.close()
