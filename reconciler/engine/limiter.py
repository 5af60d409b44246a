"""How many writes run at once: start at one, add one unless throughput clearly fell, halve on 503/429.

A SQLite-backed Prefect server takes one write at a time and answers the rest
with 503 "database is locked" (each a traceback in its log); a PostgreSQL-backed
one takes several.  So the limit is found, not configured: `--parallelism` is the
ceiling.

The two servers say "enough" differently.  SQLite says it loudly: a second
writer draws a 503 within a few writes.  PostgreSQL never refuses; past the
writers it can use, more only stop helping, and each one it can use adds less
than the last.  So the loud signal decides and the quiet one only vetoes:
- a busy answer (503/429) halves the limit and stops growth for the rest of the
  run, once per busy episode: answers to requests already running when the limit
  was cut do not cut again.  The transport still retries the refused request.
- without one, a new writer stays unless throughput at the new limit clearly
  fell: its mean below FALL times the mean at one writer fewer.  Requiring a
  clear *rise* instead (as before) failed on a noisy 2-core machine: a 0.3 s
  window rarely shows a clean 10 % gain even where there is one (the third and
  fourth writers add less than that), so the limit went 1 2 1 2 3 2 ... and the
  run spent its time at 1-2 writers where 4 was best.  A writer that adds
  nothing but costs nothing is harmless; one that costs throughput is caught.
- a step is judged against the mean over all the windows at the lower limit
  (all their actions over all their seconds), not against the best window: the
  best of several noisy windows is biased high and would read noise as a fall.
  Each limit is held for STAY windows before the next step, so that reference
  is not one window's luck; at the ceiling, where no next step checks it, the
  step is confirmed over CONFIRM windows before the limit settles.
- windows are counted in actions as well as seconds: at least MIN_WINDOW
  actions, PER_WRITER per writer of the limit, and MIN_SECONDS.  A rate over n
  actions whose times vary by +-30 % is off by about 17 %/sqrt(n); more writers
  finish more actions per second, so their longer windows take no longer.  The
  actions still running when the limit changes started under the old one: the
  first window at the new limit begins once they are done.
- a fall is checked at once, against the machine rather than the past: the
  writer is given back and one writer fewer is measured right away (STAY
  windows).  If that does no better (the fallen rate is within FALL of it), the
  machine slowed, not the server: the writer comes back.  On a 2-core machine
  shared with other jobs, spells of load last longer than a window and are as
  large as what a writer adds.  Judged only against a rate measured seconds
  earlier, the fourth writer on PostgreSQL (where the raw loop was fastest at
  4) fell four times in one benchmark run: 1 2 3 4 3 4 3 4 3 4 3.
- a confirmed fall holds the lower limit for HOLD windows before probing again
  (what the server takes can change while apply runs); each further confirmed
  fall of the same step doubles the hold, up to MAX_HOLD, so a server that
  really is slower with one writer more is probed less and less.
Not caught: a writer that costs less than 1 - FALL, and one that costs more but
is added, and checked, while the machine's load changes by as much.  Both keep
writers that cost some throughput, never a 503 storm; the unit tests model
both kinds of noise.

A process that applies again and again to one server (`serve`, `watch`) does
not find the limit again each time: an apply that learned something (the server
refused a writer more, or the limit moved) leaves what it settled at, by API
URL, and the next apply to that URL within REMEMBER seconds starts there.  A
limit the server refused one writer more than is not probed again (no 503, no
traceback in the server's log, on every apply against a SQLite-backed server);
one that only reached the ceiling probes on if the ceiling was raised; one that
stopped short of it grows on from there.  A busy answer still halves it.  After
REMEMBER the server behind the URL may have changed (restarted on another
database): the next apply starts again from one.  Kept in memory only: a
one-shot `reconcile apply` starts from one, as a CI runner would anyway.
"""
from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

FALL = 0.90          # a new writer stays unless throughput fell below 90 % of the rate with one writer fewer
MIN_WINDOW = 8       # actions per measuring window, at least
PER_WRITER = 4       # and this many per writer of the limit
MIN_SECONDS = 0.3    # and at least this long, so one slow answer does not decide
HOLD = 8             # windows to stay at a limit after a writer was given back, before probing again
STAY = 2             # windows at each limit before the next step
CONFIRM = 4          # windows at the ceiling that must not show a fall before the limit settles there
MAX_HOLD = 64        # the hold doubles each time the same step falls again, up to this
REMEMBER = 6 * 3600  # seconds a settled limit is remembered for the next apply to the same server
TURN_WAIT = 5.0      # seconds a write from outside the actions waits for a slot, at most (see turn)


@dataclass(frozen=True)
class Settled:
    """Where an apply's limiter ended: the next apply to the same server starts there."""
    limit: int
    refused: bool       # the server refused one writer more (503/429): do not probe past `limit`


_remembered: dict[str, tuple[float, Settled]] = {}
_remembered_lock = threading.Lock()


def recall(server: str, *, clock: Callable[[], float] = time.monotonic) -> Optional[Settled]:
    """What the last apply to this server settled at, if it was recently."""
    with _remembered_lock:
        entry = _remembered.get(server)
    if entry is None or clock() - entry[0] > REMEMBER:
        return None
    return entry[1]


def remember(server: str, limiter: "WriteLimiter", *, clock: Callable[[], float] = time.monotonic) -> None:
    """Keep where this apply's limiter ended, if it learned anything: the limit moved, or the server refused.

    An apply that did neither (too few writes, or one that started from a remembered limit and stayed) leaves
    what is remembered, and when it was learned, as it is: the memory still runs out REMEMBER seconds after
    the server last told something.
    """
    if len(limiter.history) == 1 and not limiter.busy:
        return
    with _remembered_lock:
        _remembered[server] = (clock(), limiter.settled())


def forget() -> None:
    """Drop every remembered limit (a benchmark's cold start, a test's clean slate)."""
    with _remembered_lock:
        _remembered.clear()


class WriteLimiter:
    def __init__(self, ceiling: int, *, start: Optional[Settled] = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ceiling = max(1, ceiling)
        self.limit = min(self.ceiling, start.limit) if start else 1
        self.peak = self.limit      # the highest limit reached, for reports and benchmarks
        self.busy = 0               # 503/429 answers seen
        # the server refused one writer more than `limit` (in this apply, or the remembered one)
        self.refused = bool(start and start.refused and self.limit == start.limit)
        self.growing = self.ceiling > self.limit and not self.refused   # False once busy, or settled at the ceiling
        self.history = [self.limit]  # every limit taken, in order (each a change)
        self.done_at: dict[int, int] = {}   # actions completed, by the limit in force when each completed
        self.windows: list[tuple[int, int, float]] = []   # (limit, actions, seconds) of every full window
        self._clock = clock
        self._cond = threading.Condition()
        self._running = 0           # actions holding a slot
        self._outside = 0           # writes from outside the actions holding one (see turn)
        self._queued = 0            # such writes waiting for one: they go first
        self._epoch = 0             # bumped on every cut; a slot remembers the epoch it started in
        self._local = threading.local()
        self._window_start = clock()
        self._window_done = 0
        self._settling = 0          # actions still running that started before the limit changed
        self._stay_done = 0         # actions and seconds over the judged windows at this limit
        self._stay_seconds = 0.0
        self._stay_windows = 0
        self._reference: Optional[float] = None   # after a step up: the rate at the limit below
        self._suspect: Optional[float] = None     # after a fall: the rate seen with the writer just given back
        self._hold = 0              # windows left before probing again
        self._falls: dict[int, int] = {}          # limit → times the step from it to one more fell

    def settled(self) -> Settled:
        return Settled(self.limit, self.refused)

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the `limit` write slots for the length of one action."""
        with self._cond:
            while self._running + self._outside >= self.limit or self._queued:
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

    @contextlib.contextmanager
    def turn(self, wait: float = TURN_WAIT) -> Iterator[None]:
        """A write from outside the actions (the lock's lease renewal, from its own thread) takes a slot too.

        At one writer, a renewal sent beside a create is what a SQLite-backed server refuses: it draws a 503
        and a traceback, and its retries, sent while the creates go on, draw more.  So it waits for a free
        slot, ahead of the actions waiting for one, and is not counted as an action.  It waits `wait`
        seconds at most (an action can spend a minute retrying a busy server; a lease must not wait that
        long), then goes anyway.  A thread already holding a slot (an action's own writes) goes at once.
        """
        if getattr(self._local, "epoch", None) is not None:
            yield
            return
        deadline = self._clock() + wait
        with self._cond:
            self._queued += 1
            try:
                while self._running + self._outside >= self.limit:
                    left = deadline - self._clock()
                    if left <= 0 or not self._cond.wait(left):
                        break
            finally:
                self._queued -= 1
            self._outside += 1
        try:
            yield
        finally:
            with self._cond:
                self._outside -= 1
                self._cond.notify_all()

    def on_busy(self) -> None:
        """The server answered 503 or 429: halve the limit, once per episode."""
        with self._cond:
            self.busy += 1
            started = getattr(self._local, "epoch", None)
            if started is not None and started < self._epoch:
                return              # this request was in flight before the cut that answers it
            self._epoch += 1
            self._set(self.limit // 2)
            self.growing = False    # the server said how many writers it takes: no more probing this run
            self.refused = True
            self._new_window()

    def _completed(self) -> None:
        self.done_at[self.limit] = self.done_at.get(self.limit, 0) + 1
        if self._settling:          # an action started under the old limit: not a measure of the new one
            self._settling -= 1
            if not self._settling:
                self._new_window()
            return
        self._window_done += 1
        elapsed = self._clock() - self._window_start
        if self._window_done < max(MIN_WINDOW, PER_WRITER * self.limit) or elapsed < MIN_SECONDS:
            return
        self.windows.append((self.limit, self._window_done, elapsed))
        if self.growing:
            self._judge(self._window_done, elapsed)
        self._new_window()

    def _judge(self, done: int, seconds: float) -> None:
        """One full window at this limit, with no busy answer since growth began: keep, give back or step."""
        self._stay_done += done
        self._stay_seconds += seconds
        self._stay_windows += 1
        rate = self._stay_done / max(self._stay_seconds, 1e-9)     # the mean at this limit so far
        if self._suspect is not None:               # back at one writer fewer after a fall: the writer's, or the machine's?
            if self._stay_windows < STAY:
                return
            suspect = self._suspect
            if suspect >= rate * FALL:              # one writer fewer does no better now: the machine was slow
                self._set(self.limit + 1)
                self._reference = rate
                return
            self._suspect = None                    # confirmed: the writer cost throughput; hold here
            self._falls[self.limit] = self._falls.get(self.limit, 0) + 1
            self._hold = min(MAX_HOLD, HOLD * 2 ** (self._falls[self.limit] - 1))
            return
        if self._reference is not None and rate < self._reference * FALL:
            self._set(self.limit - 1)               # give the last writer back, and measure without it at once
            self._suspect = rate
            return
        if self._hold:
            self._hold -= 1
            if self._hold:
                return
        if self.limit >= self.ceiling:              # the ceiling is the user's: stay there, once it is
            if self._stay_windows >= CONFIRM:       # confirmed over a few windows (no next step will check it)
                self.growing = False
            return
        if self._stay_windows < STAY:
            return
        self._set(self.limit + 1)
        self._reference = rate

    def _set(self, limit: int) -> None:
        before, self.limit = self.limit, max(1, min(self.ceiling, limit))
        self.peak = max(self.peak, self.limit)
        if self.limit != before:
            self.history.append(self.limit)
        self._stay_done, self._stay_seconds, self._stay_windows, self._reference = 0, 0.0, 0, None
        self._suspect = None
        self._settling = self._running

    def _new_window(self) -> None:
        self._window_start = self._clock()
        self._window_done = 0
