"""An httpx transport that retries what is safe to retry, and logs each request.

Retried: 429 (honouring Retry-After), 502/503/504 (SQLite-backed servers answer
concurrent writes with 503 "database is locked") and connection errors.
Backoff is exponential with full jitter and bounded in attempts and seconds.
"""
from __future__ import annotations

import contextlib
import email.utils
import random
import threading
import time
from typing import Callable, ContextManager, Optional, TextIO

import httpx

from ..errors import printable

RETRY_STATUS = {429, 502, 503, 504}
_READ_POSTS = ("/filter", "/count")   # Prefect's reads sent as POST
_LOG_LOCK = threading.Lock()   # every client's log lines, whichever stream they go to


class RetryTransport(httpx.BaseTransport):
    def __init__(
        self,
        inner: Optional[httpx.BaseTransport] = None,
        *,
        attempts: int = 6,
        base_delay: float = 0.25,
        max_delay: float = 8.0,
        busy_budget: float = 60.0,
        log: Optional[TextIO] = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.inner = inner or httpx.HTTPTransport()
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.log = log
        self.sleep = sleep
        self.busy_budget = busy_budget  # seconds of 503 ("database is locked") retries per request
        self.on_busy: Callable[[], None] = lambda: None  # told of every 503/429: the applier's limiter cuts its writers
        # every write (not a read sent as POST) waits its turn here, retries included: the applier's limiter while
        # it runs, so a write from another thread (the lock's lease) is not sent beside the creates
        self.write_gate: Callable[[], ContextManager[None]] = contextlib.nullcontext
        self.sent = 0                   # requests sent, retries included
        self._count_lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if _reads_only(request):
            return self._send(request)
        with self.write_gate():
            return self._send(request)

    def _send(self, request: httpx.Request) -> httpx.Response:
        busy_waited = 0.0
        attempt = 0
        while True:
            attempt += 1
            started = time.monotonic()
            with self._count_lock:
                self.sent += 1
            try:
                response = self.inner.handle_request(request)
            except httpx.TransportError as exc:
                self._note(request, f"{type(exc).__name__}", started)
                # A request that may have reached the server is repeated only when repeating is harmless.
                if attempt == self.attempts or not (isinstance(exc, httpx.ConnectError) or _idempotent(request)):
                    raise
                self.sleep(self._backoff(attempt))
                continue
            self._note(request, str(response.status_code), started)
            if response.status_code in (429, 503):
                self.on_busy()
            # A busy SQLite server refused before acting (503): keep trying for a while, not a count.
            busy = response.status_code == 503 and busy_waited < self.busy_budget
            if response.status_code not in RETRY_STATUS or (attempt >= self.attempts and not busy):
                return response
            if response.status_code in (502, 504) and not _idempotent(request):
                return response  # a gateway error says nothing about whether the write happened
            retry_after = self._retry_after(response)
            delay = retry_after if retry_after is not None else self._backoff(min(attempt, self.attempts))
            delay = min(delay, self.max_delay * 4)
            if response.status_code == 503:
                busy_waited += delay
            response.close()
            self.sleep(delay)

    def _backoff(self, attempt: int) -> float:
        return random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))

    @staticmethod
    def _retry_after(response: httpx.Response) -> Optional[float]:
        value = response.headers.get("retry-after")
        if not value:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(value)
            return max(0.0, parsed.timestamp() - time.time()) if parsed else None

    def _note(self, request: httpx.Request, outcome: str, started: float) -> None:
        """One request, one line, written whole: concurrent requests never share a line."""
        if self.log is not None:
            ms = (time.monotonic() - started) * 1000
            line = printable(f"{request.method} {request.url.path} {outcome} {ms:.0f}ms") + "\n"
            with _LOG_LOCK:   # one write of the whole line (print() writes the text and the newline apart)
                self.log.write(line)
                self.log.flush()

    def close(self) -> None:
        self.inner.close()


def _idempotent(request: httpx.Request) -> bool:
    """Safe to send twice: reads, PATCH/PUT/DELETE, Prefect's upserts (deployments, flows), and
    `/deployments/{id}/schedule` (its runs carry idempotency keys: a second call adds none).

    429 and 503 are retried for every request: the server refused it before acting
    (SQLite's "database is locked" rolls the transaction back).
    """
    if request.method != "POST" or _reads_only(request):
        return True
    return request.url.path.rstrip("/").endswith(("/deployments", "/flows", "/schedule"))


def _reads_only(request: httpx.Request) -> bool:
    return request.method == "GET" or request.url.path.rstrip("/").endswith(_READ_POSTS)
