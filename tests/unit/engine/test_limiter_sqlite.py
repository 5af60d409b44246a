"""The write limiter through the applier, against the fake Prefect API behind a SQLite-like gate that
answers 503 "database is locked" to a second concurrent write.

That run is a simulation in virtual time (the gate's hold, the retries' backoff with seeded jitter, the
limiter's clock), one writer at a time in a fixed order: it sends the same requests and gets the same
answers however loaded the machine is.
"""
from __future__ import annotations

import contextlib
import heapq
import itertools
import random
import threading
from typing import Iterator, Optional

import httpx

from reconciler.engine.applier import Applier
from reconciler.engine.limiter import Settled, WriteLimiter
from reconciler.engine.report import OK
from reconciler.prefect import transport
from reconciler.prefect.v2 import adapter_for

try:
    from .. import prefect_fake as pf
except ImportError:
    import prefect_fake as pf

class VirtualTime:
    """The applier's writers run one at a time, in virtual time, in an order real time cannot change.

    A writer holds one of the limiter's slots and runs only while it holds the
    turn.  It gives the turn back when it sleeps (the gate's hold, a retry's
    backoff) or gives its slot back.  The next turn goes, once nothing else can
    happen at this instant (every slot holder waits for a turn, and no writer is
    about to take a free slot), to the earliest waiting writer in virtual time,
    ties in the order they started waiting; the clock moves to its time.  So the
    run, the server's answers and what the limiter measures are the same on a
    busy machine as on an idle one.
    """

    def __init__(self, actions: int) -> None:
        self.now = 0.0
        self.actions = actions
        self.started = 0                # actions that took a slot
        self.held = 0                   # slots held now
        self.leaving = 0                # writers giving their slot back (the limiter may change its limit)
        self.limiter: Optional[WriteLimiter] = None
        self._waiting: list[tuple[float, int, int]] = []   # (time, order, writer) for a turn
        self._order = itertools.count()
        self._turn: Optional[int] = None
        self._cond = threading.Condition()

    def clock(self) -> float:
        return self.now

    def enter(self) -> None:
        """A writer took a slot: it waits for its turn."""
        with self._cond:
            self.started += 1
            self.held += 1
            self._wait_turn(self.now)

    def sleep(self, seconds: float) -> None:
        with self._cond:
            assert self._turn == threading.get_ident(), "only the writer whose turn it is sleeps"
            self._turn = None
            self._wait_turn(self.now + max(0.0, seconds))

    def leave(self) -> None:
        """The writer whose turn it is gives its slot back."""
        with self._cond:
            self._turn = None
            self.held -= 1
            self.leaving += 1

    def left(self) -> None:
        """... and the limiter has taken it back."""
        with self._cond:
            self.leaving -= 1
            self._next()

    def _wait_turn(self, at: float) -> None:
        me = threading.get_ident()
        heapq.heappush(self._waiting, (at, next(self._order), me))
        self._next()
        while self._turn != me:
            if not self._cond.wait(timeout=60):     # a guard against a hang, not a measure
                raise AssertionError(f"virtual time stuck at {self.now}: {self.held} slots held, "
                                     f"{len(self._waiting)} waiting, limit {self.limiter and self.limiter.limit}")

    def _next(self) -> None:
        assert self.limiter is not None
        if self._turn is not None or self.leaving or len(self._waiting) < self.held:
            return                      # a writer is still running at this instant
        if self.held < self.limiter.limit and self.started < self.actions:
            return                      # a writer is about to take a free slot at this instant
        if self._waiting:
            at, _, self._turn = heapq.heappop(self._waiting)
            self.now = max(self.now, at)
            self._cond.notify_all()


class SimulatedLimiter(WriteLimiter):
    """The limiter itself, on virtual time, telling it who holds a slot."""

    def __init__(self, ceiling: int, virtual: VirtualTime, start: Optional[Settled] = None) -> None:
        super().__init__(ceiling, start=start, clock=virtual.clock)
        self.time = virtual
        virtual.limiter = self

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        with super().slot():
            self.time.enter()
            try:
                yield
            finally:
                self.time.leave()
        self.time.left()


SEED = 1


class SqliteGate:
    """In front of the fake: a deployment create that overlaps another is refused with 503, as SQLite does.

    Every create holds the database for HOLD_SECONDS of virtual time, refused or not.
    """

    HOLD_SECONDS = 0.5

    def __init__(self, fake: pf.FakePrefect, virtual: VirtualTime, seed: int) -> None:
        self.fake = fake
        self.time = virtual
        self.random = random.Random(seed)   # each hold off by up to +-30 %
        self.in_flight = 0
        self.refused = 0
        self.lock = threading.Lock()

    def handler(self, request: httpx.Request) -> httpx.Response:
        if not (request.method == "POST" and request.url.path == "/api/deployments/"):
            return self.fake.handler(request)
        with self.lock:
            self.in_flight += 1
            clash = self.in_flight > 1
        try:
            self.time.sleep(self.HOLD_SECONDS * self.random.uniform(0.7, 1.3))   # the write holds the database
            if clash:
                with self.lock:
                    self.refused += 1
                return httpx.Response(503, json={"exception_message": "Service Unavailable"})
            return self.fake.handler(request)
        finally:
            with self.lock:
                self.in_flight -= 1


def apply_through_gate(writers: int, adaptive: bool, monkeypatch, seed: int = SEED) -> tuple[SqliteGate, Applier]:
    fake = pf.FakePrefect()
    docs = [pf.manifest(f"dep-{i:02d}") for i in range(40)]
    planned = pf.make_plan(fake, docs)
    virtual = VirtualTime(len(docs))
    gate = SqliteGate(fake, virtual, seed)
    client = pf.PrefectClient(pf.API_URL, transport=httpx.MockTransport(gate.handler))
    client.retry.sleep = virtual.sleep     # the backoff, in the same virtual seconds as the gate's hold
    monkeypatch.setattr(transport, "random", random.Random(seed))   # and its jitter, the same on every run
    applier = Applier(client, planned.live, adapter_for(planned.live.server_version), parallelism=writers)
    # on virtual time, from where the applier's own limiter starts (what an earlier apply to this URL left)
    applier.limiter = SimulatedLimiter(writers, virtual, start=applier.limiter.settled())
    if not adaptive:                    # what apply did before: every writer at once from the start
        applier.limiter.limit, applier.limiter.growing = writers, False
        applier.limiter.on_busy = lambda: None
    report = applier.run(planned.plan)
    assert [r.status for r in report.results] == [OK] * 40, [r.message for r in report.results if r.status != OK]
    assert len(fake.deployments) == 40
    return gate, applier


def test_against_a_one_writer_server_apply_settles_on_one_writer_and_few_refusals(monkeypatch):
    fixed, _ = apply_through_gate(8, adaptive=False, monkeypatch=monkeypatch)
    refused = []
    for seed in range(20):
        gate, applier = apply_through_gate(8, adaptive=True, monkeypatch=monkeypatch, seed=seed)
        assert applier.limiter.limit == 1 and not applier.limiter.growing, (seed, applier.limiter.history)
        refused.append(gate.refused)
    print(f"refused: {sorted(refused)} adaptive, {fixed.refused} with 8 fixed writers")
    assert max(refused) <= 10 and max(refused) * 4 <= fixed.refused, (refused, fixed.refused)


def test_a_second_apply_to_the_same_server_in_one_process_is_not_refused_at_all(monkeypatch):
    """`serve` and `watch` apply again and again in one process: only the first apply probes a second writer."""
    first, applier = apply_through_gate(8, adaptive=True, monkeypatch=monkeypatch)
    assert first.refused > 0 and applier.limiter.history == [1, 2, 1]
    for seed in (2, 3):
        again, applier = apply_through_gate(8, adaptive=True, monkeypatch=monkeypatch, seed=seed)
        assert again.refused == 0 and applier.limiter.history == [1], applier.limiter.history
