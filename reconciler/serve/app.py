"""The HTTP face of `reconcile serve` (Starlette on uvicorn): /webhook, /healthz, /metrics, /status.

The webhook handler only checks, parses and queues; runs happen on the source's worker thread, so a
delivery is answered at once (202) and GitHub's 10-second timeout never cuts a run short.
"""
from __future__ import annotations

import collections
import contextlib
import threading
from typing import AsyncIterator

import anyio
from starlette.applications import Starlette
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .config import ServeConfig
from .controller import Controller
from .queue import Request
from .state import State
from .webhooks import Rejected, is_deletion, matches, parse_push, verify

SEEN = 10_000        # delivery ids remembered, to ignore redeliveries


class Deliveries:
    """The delivery ids already handled (bounded, oldest forgotten first)."""

    def __init__(self, size: int = SEEN) -> None:
        self._ids: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def first_time(self, delivery_id: str) -> bool:
        with self._lock:
            if delivery_id in self._ids:
                return False
            self._ids[delivery_id] = None
            if len(self._ids) > self._size:
                self._ids.popitem(last=False)
            return True


def create_app(config: ServeConfig, secret: bytes, controller: Controller, state: State) -> Starlette:
    cap = config.webhook.max_body_bytes
    seen = Deliveries()

    def answer(status: int, outcome: str, message: str, **facts: object) -> JSONResponse:
        state.delivery(outcome, status=status, reason=message, **facts)
        key = "error" if status >= 400 else ("queued" if status == 202 else "ignored")
        return JSONResponse({key: message, **facts}, status_code=status)

    async def read_body(request: HttpRequest) -> bytes | None:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > cap:
            return None
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > cap:
                return None
        return bytes(body)

    async def webhook(request: HttpRequest) -> Response:
        body = await read_body(request)
        if body is None:
            return answer(413, "rejected", f"body larger than {cap} bytes (webhook.max_body_bytes)")
        try:
            delivery = verify(request.headers, body, secret)
        except Rejected as exc:
            return answer(exc.status, "rejected", exc.reason)
        facts = {"provider": delivery.provider, "event_type": delivery.event, "delivery": delivery.delivery_id}
        if not seen.first_time(delivery.delivery_id):
            return answer(200, "duplicate", "this delivery was already handled", **facts)
        if not delivery.is_push:
            return answer(200, "ignored", f"event {delivery.event!r} is not a push", **facts)
        try:
            push = parse_push(delivery, body)
        except Rejected as exc:
            return answer(exc.status, "rejected", exc.reason, **facts)
        facts.update(ref=push.ref, commit=push.commit)
        if is_deletion(push):
            return answer(200, "ignored", f"{push.ref} was deleted", **facts)
        followed = [w for w in controller.workers if matches(push, w.source.repo, w.source.repository)]
        if not followed:
            return answer(200, "ignored", "no source follows this repository", **facts)
        wanted = [w for w in followed if push.branch == w.source.branch]
        if not wanted:
            branches = ", ".join(sorted({w.source.branch for w in followed}))
            return answer(200, "ignored", f"{push.ref} is not a followed branch ({branches})", **facts)
        for worker in wanted:
            worker.submit(Request("webhook", push.commit, delivery.delivery_id))
        return answer(202, "queued", "run queued for " + ", ".join(w.source.name for w in wanted),
                      sources=[w.source.name for w in wanted], **facts)

    async def healthz(request: HttpRequest) -> Response:
        dead = [w.source.name for w in controller.workers if not w.thread.is_alive()]
        stuck = controller.stuck()
        if not dead and not stuck:
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "failing", "stopped_workers": dead, "runs_over_run_timeout": stuck},
                            status_code=503)

    async def status(request: HttpRequest) -> Response:
        return JSONResponse(state.status())

    async def metrics(request: HttpRequest) -> Response:
        return PlainTextResponse(state.metrics(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        controller.start()
        state.log({"event": "started", "sources": [w.source.name for w in controller.workers]})
        try:
            yield
        finally:
            state.log({"event": "stopping", "reason": "finishing the run in progress"})
            await anyio.to_thread.run_sync(controller.stop)
            state.log({"event": "stopped"})

    return Starlette(routes=[
        Route("/webhook", webhook, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/status", status, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ], lifespan=lifespan)
