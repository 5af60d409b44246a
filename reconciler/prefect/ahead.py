"""Answers to reads sent before the code that needs them asks (the engine's readahead), each handed out once.

The reader on the other thread offers a request's key first, then sends it and publishes the answer; the
client's `get` and `paged` take an offered answer instead of sending the same request again, waiting for it
if it is still on its way.  An answer is the server's answer to the very same request (the same method, path
and body), only sooner.  An offer the reader could not keep (it stopped, or the plan ended first) is
withdrawn, and the caller sends the request itself: the read-ahead never changes what a read returns.
"""
from __future__ import annotations

import json
import queue
import threading
from typing import Any, Iterator, Optional, Union


class Withdrawn(Exception):
    """The reader did not send this request after all: send it yourself."""


def key(method: str, path: str, body: Any = None) -> tuple[str, str, str]:
    return method, path.strip("/"), json.dumps(body, sort_keys=True, separators=(",", ":"))


class Answer:
    """One request's answer, or the error it raised, once it has come."""

    taken = False
    key: tuple[str, str, str] = ("", "", "")   # the request it answers, once offered

    def __init__(self) -> None:
        self._done = threading.Event()
        self._value: Any = None
        self._error: Optional[BaseException] = None

    def publish(self, value: Any = None, error: Optional[BaseException] = None) -> None:
        self._value, self._error = value, error
        self._done.set()

    def withdraw(self) -> None:
        if not self._done.is_set():
            self.publish(error=Withdrawn())

    def result(self) -> Any:
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._value


class Pages:
    """The items of a paged read, page by page as they come (iterated once, by the caller that took it)."""

    taken = False
    key: tuple[str, str, str] = ("", "", "")   # the request it answers, once offered

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self.started = False

    def put(self, page: list[Any]) -> None:
        self.started = True
        self._queue.put((page, None))

    def end(self, error: Optional[BaseException] = None) -> None:
        self._queue.put((None, error))

    def withdraw(self) -> None:
        if not self.started:
            self.end(Withdrawn())

    def __iter__(self) -> Iterator[Any]:
        delivered = False
        while True:
            page, error = self._queue.get()
            if page is None:
                if isinstance(error, Withdrawn) and delivered:   # never by design: the caller must not read again
                    raise RuntimeError("a read ahead was withdrawn after its first page") from None
                if error is not None:
                    raise error
                return
            delivered = True
            yield from page


Held = Union[Answer, Pages]


class Ahead:
    """The offered reads of one plan.  `finish()` ends it: offers after that are refused, and every offer not
    yet taken is dropped (a later plan, e.g. apply's second one under its lock, reads the server afresh)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[tuple[str, str, str], Held] = {}
        self._offered: list[Held] = []
        self.missed: set[tuple[str, str]] = set()
        self.finished = False

    def offer(self, request_key: tuple[str, str, str], held: Held) -> bool:
        with self._lock:
            if self.finished or request_key in self._held:
                return False
            held.key = request_key
            self._held[request_key] = held
            self._offered.append(held)
            return True

    def take(self, request_key: tuple[str, str, str]) -> Optional[Held]:
        with self._lock:
            held = self._held.pop(request_key, None)
            if held is None:    # the caller sends this one itself: the reader's guess of it was wrong
                self.missed.add(request_key[:2])
            else:
                held.taken = True
            return held

    def wanted(self, method: str, path: str, held: Held) -> bool:
        """Whether the reader should go on with a read it offered.  A taken one always (its taker may be
        reading it: a stream once taken is ended only by its last page or an error); else not once the plan
        has ended, nor once a request to the same place it did not foresee was sent (its guess was wrong)."""
        with self._lock:
            if held.taken:
                return True
            if not self.finished and (method, path.strip("/")) not in self.missed:
                return True
            if self._held.get(held.key) is held:   # no longer to be taken
                del self._held[held.key]
            return False

    def finish(self) -> None:
        with self._lock:
            self.finished = True
            self._held.clear()

    def withdraw_all(self) -> None:
        """Called by the reader when it stops: what it offered and did not send is sent by its caller."""
        with self._lock:
            offered, self._offered = self._offered, []
        for held in offered:
            held.withdraw()
