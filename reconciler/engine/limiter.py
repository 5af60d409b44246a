"""How many writes run at once: start at one, add one while throughput rises, halve on 503/429.

A SQLite-backed Prefect server takes one write at a time and answers the rest
with 503 "database is locked" (each a traceback in its log); a PostgreSQL-backed
one takes several.  So the limit is found, not configured: `--parallelism` is the
ceiling.  Throughput is measured in completed actions per second over windows
(at least MIN_WINDOW actions, twice the limit, and MIN_SECONDS); a window that
shows a rise of at least RISE over the one before lets the limit grow by one, a
window that does not gives the last writer back and holds for HOLD windows
before probing again (what the server takes can change while apply runs).  A
busy answer (503/429) halves the limit and stops growth for the rest of the
run, once per busy episode: answers to requests already running when the limit
was cut do not cut again.  The transport still retries the refused request.
"""
from __future__ import annotations

import contextlib
import threading
import time
from typing import Callable, Iterator

RISE = 1.10          # a new writer must add 10 % throughput to stay
MIN_WINDOW = 4       # actions per measuring window, at least; more when the limit is higher
MIN_SECONDS = 0.3    # and at least this long, so one slow answer does not decide
HOLD = 8             # windows to stay at a limit after a writer added nothing, before probing again


class WriteLimiter:
    def __init__(self, ceiling: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.ceiling = max(1, ceiling)
        self.limit = 1
        self.peak = 1               # the highest limit reached, for reports and benchmarks
        self.busy = 0               # 503/429 answers seen
        self.growing = self.ceiling > 1   # False once the server said it is busy, or at the ceiling
        self.history = [1]          # every limit taken, in order
        self._clock = clock
        self._cond = threading.Condition()
        self._running = 0
        self._epoch = 0             # bumped on every cut; a slot remembers the epoch it started in
        self._local = threading.local()
        self._window_start = clock()
        self._window_done = 0
        self._window_busy = False
        self._best = 0.0            # throughput of the window before the last growth step
        self._hold = 0              # windows left before probing again

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the `limit` write slots for the length of one action."""
        with self._cond:
            while self._running >= self.limit:
                self._cond.wait()
            self._running += 1
            self._local.epoch = self._epoch
        try:
            yield
        finally:
            with self._cond:
                self._running -= 1
                self._local.epoch = None
                self._completed()
                self._cond.notify_all()

    def on_busy(self) -> None:
        """The server answered 503 or 429: halve the limit, once per episode."""
        with self._cond:
            self.busy += 1
            self._window_busy = True
            started = getattr(self._local, "epoch", None)
            if started is not None and started < self._epoch:
                return              # this request was in flight before the cut that answers it
            self._epoch += 1
            self._set(self.limit // 2)
            self.growing = False    # the server said how many writers it takes: no more probing this run
            self._new_window()

    def _completed(self) -> None:
        self._window_done += 1
        elapsed = self._clock() - self._window_start
        if self._window_done < max(MIN_WINDOW, 2 * self.limit) or elapsed < MIN_SECONDS:
            return
        rate = self._window_done / max(elapsed, 1e-9)
        if not self.growing or self._window_busy:
            pass
        elif self._hold:
            self._hold -= 1
            if not self._hold:      # probe again, against what this limit does now
                self._best = rate
                self._set(self.limit + 1)
        elif rate >= self._best * RISE:
            self._best = rate
            if self.limit < self.ceiling:
                self._set(self.limit + 1)
            else:
                self.growing = False    # the ceiling is the user's: stay there
        else:
            self._set(self.limit - 1)   # the last writer added nothing: give it back, and hold
            self._hold = HOLD
        self._new_window()

    def _set(self, limit: int) -> None:
        self.limit = max(1, min(self.ceiling, limit))
        self.peak = max(self.peak, self.limit)
        self.history.append(self.limit)

    def _new_window(self) -> None:
        self._window_start = self._clock()
        self._window_done = 0
        self._window_busy = False
