"""The lock's create reaches the real server but its answer never comes back (scenario 5).

A proxy between `reconcile apply` and the real Prefect server forwards the lock's create, the server
makes the document, and the proxy then drops the connection (or answers 502 like a gateway that lost
the upstream's reply).  The apply reads the lock back, finds its own token, holds it, applies, and
releases it: no lock is left behind to block the next apply.
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import httpx
import pytest

from integration.helpers import Server, manifest, reconcile, write_manifest


class LosingProxy:
    """Forwards everything to the server; the answer to the first lock create is lost (`how`)."""

    def __init__(self, upstream: str, how: str) -> None:
        self.upstream = httpx.URL(upstream)
        self.how = how
        self.lost: list[tuple[int, dict]] = []     # (the server's status, the body it was sent)
        self._guard = threading.Lock()

    def __enter__(self) -> "LosingProxy":
        origin = f"{self.upstream.scheme}://{self.upstream.host}:{self.upstream.port}"
        client = httpx.Client(base_url=origin, timeout=60)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "content-length", "connection", "accept-encoding")}
                response = client.request(self.command, self.path, content=raw, headers=headers)
                body = json.loads(raw) if raw else None
                with proxy._guard:
                    lose = (not proxy.lost and self.command == "POST" and self.path.rstrip("/").endswith("/block_documents")
                            and str((body or {}).get("name", "")).startswith("reconcile-lock-"))
                    if lose:
                        proxy.lost.append((response.status_code, body))
                if lose and proxy.how == "drop":
                    self.close_connection = True     # no status line at all: "Server disconnected"
                    return
                status, payload = (502, b"Bad Gateway") if lose else (response.status_code, response.content)
                self.send_response(status)
                if not lose and "content-type" in response.headers:
                    self.send_header("content-type", response.headers["content-type"])
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _forward

            def log_message(self, *args: object) -> None:
                pass

        self._client = client
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.api_url = f"http://127.0.0.1:{self._server.server_address[1]}{self.upstream.path}".rstrip("/")
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._client.close()


@pytest.fixture
def server(prefect_api_url) -> Iterator[Server]:
    with Server(prefect_api_url) as srv:
        yield srv


@pytest.mark.parametrize("how", ["drop", "502"])
def test_an_apply_whose_lock_create_answer_is_lost_reads_it_back_holds_it_and_releases_it(
        prefect_api_url, server, tmp_path, unique, how):
    flow, source = f"it-lock-lost-{how}-{unique}", f"it-lock-lost-{how}-{unique}"
    root = tmp_path / "deployments"
    write_manifest(root, manifest(flow, "lost-answer"))
    with LosingProxy(prefect_api_url, how) as proxy:
        run = reconcile(proxy.api_url, "apply", root, "--source", source, "-v", cwd=tmp_path)
    assert run.returncode == 0, run
    [(status, body)] = proxy.lost
    assert status == 201, "the server did create the lock"
    creates = [r for r in run.requests if r.method == "POST" and r.path == "/api/block_documents/"]
    assert creates[0].outcome == ("RemoteProtocolError" if how == "drop" else "502"), run
    lock_reads = [r for r in run.requests if r.method == "GET" and "/block_documents/name/reconcile-lock-" in r.path]
    assert lock_reads and lock_reads[0].outcome == "200", run
    assert set(server.deployments(flow)) == {"lost-answer"}
    assert server.locks(source) == [], "the lock it read back as its own was released"
    assert body["data"]["value"]["source"] == source
    # and nothing was left to block the next apply
    again = reconcile(prefect_api_url, "apply", root, "--source", source, cwd=tmp_path)
    assert again.returncode == 0, again
