"""The write limiter: one writer to start, one more while throughput rises, half on 503/429.

The limiter is driven with a fake clock (throughput is what the clock says), and
through the applier against the fake Prefect API behind a SQLite-like gate that
answers 503 "database is locked" to a second concurrent write.
"""
from __future__ import annotations

import threading
import time

import httpx

from reconciler.engine.applier import Applier
from reconciler.engine.limiter import WriteLimiter
from reconciler.engine.report import OK
from reconciler.prefect.v2 import adapter_for

try:
    from .. import prefect_fake as pf
except ImportError:
    import prefect_fake as pf


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def run_actions(limiter: WriteLimiter, clock: Clock, count: int, seconds_per_round) -> list[int]:
    """Complete `count` actions one round at a time; a round of `limit` actions takes seconds_per_round(limit)."""
    limits = []
    done = 0
    while done < count:
        width = limiter.limit
        limits.append(width)
        slots = [limiter.slot() for _ in range(width)]
        for slot in slots:
            slot.__enter__()
        clock.now += seconds_per_round(width)
        for slot in slots:
            slot.__exit__(None, None, None)
        done += width
    return limits


def test_it_starts_at_one_writer_and_grows_to_the_ceiling_while_throughput_rises():
    clock = Clock()
    limiter = WriteLimiter(4, clock=clock)
    assert limiter.limit == 1
    limits = run_actions(limiter, clock, 200, lambda width: 1.0)   # each writer added is pure gain
    assert limits[0] == 1
    assert limiter.limit == 4 and max(limits) == 4


def test_growth_stops_when_throughput_does_not_rise():
    clock = Clock()
    limiter = WriteLimiter(8, clock=clock)
    limits = run_actions(limiter, clock, 400, lambda width: float(width))    # like SQLite: one write at a time
    assert limiter.history[:3] == [1, 2, 1]     # the second writer added nothing: given back
    assert limiter.peak == 2                    # and no third is ever tried
    # it holds at one writer, probing a second again only now and then
    assert limits.count(1) >= 0.8 * len(limits), limits


def test_growth_stops_at_the_writer_count_past_which_nothing_is_gained():
    clock = Clock()
    limiter = WriteLimiter(8, clock=clock)
    limits = run_actions(limiter, clock, 800, lambda width: max(1.0, width / 3))   # the server takes three at once
    assert limiter.history[:5] == [1, 2, 3, 4, 3] and limiter.peak == 4
    settled = limits[len(limits) // 3:]
    assert settled.count(3) >= 0.8 * len(settled), limits


def test_a_busy_answer_halves_the_writers_and_stops_growth():
    clock = Clock()
    limiter = WriteLimiter(8, clock=clock)
    run_actions(limiter, clock, 60, lambda width: 1.0)
    assert limiter.limit == 8
    with limiter.slot():
        limiter.on_busy()
    assert limiter.limit == 4 and not limiter.growing
    run_actions(limiter, clock, 100, lambda width: 1.0)
    assert limiter.limit == 4           # no probing again after the server said it is busy


def test_busy_answers_to_requests_already_running_cut_once():
    clock = Clock()
    limiter = WriteLimiter(8, clock=clock)
    run_actions(limiter, clock, 60, lambda width: 1.0)
    slots = [limiter.slot() for _ in range(8)]
    for slot in slots:
        slot.__enter__()
    for _ in slots:                     # all eight in flight when the server got busy: one cut, not three
        limiter.on_busy()
    assert limiter.limit == 4 and limiter.busy == 8
    for slot in slots:
        slot.__exit__(None, None, None)
    with limiter.slot():                # a write started after the cut and refused again: cut again
        limiter.on_busy()
    assert limiter.limit == 2


def test_a_429_or_503_from_the_transport_reaches_the_limiter():
    for status in (429, 503):
        fake = pf.FakePrefect()
        fake.fail("POST", "/deployments/", status, {"detail": "busy"}, headers={"retry-after": "0"})
        planned = pf.make_plan(fake, [pf.manifest("one")])
        applier = Applier(planned.client, planned.live, adapter_for(planned.live.server_version), parallelism=4)
        report = applier.run(planned.plan)
        assert [r.status for r in report.results] == [OK]
        assert applier.limiter.busy == 1, status


class SqliteGate:
    """In front of the fake: a deployment create that overlaps another is refused with 503, as SQLite does."""

    def __init__(self, fake: pf.FakePrefect) -> None:
        self.fake = fake
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
            time.sleep(0.005)           # the time the write holds the database
            if clash:
                with self.lock:
                    self.refused += 1
                return httpx.Response(503, json={"exception_message": "Service Unavailable"})
            return self.fake.handler(request)
        finally:
            with self.lock:
                self.in_flight -= 1


def apply_through_gate(writers: int, adaptive: bool) -> tuple[SqliteGate, Applier]:
    fake = pf.FakePrefect()
    docs = [pf.manifest(f"dep-{i:02d}") for i in range(40)]
    planned = pf.make_plan(fake, docs)
    gate = SqliteGate(fake)
    client = pf.PrefectClient(pf.API_URL, transport=httpx.MockTransport(gate.handler))
    client.retry.sleep = lambda seconds: time.sleep(seconds / 100)   # the backoff, scaled down
    applier = Applier(client, planned.live, adapter_for(planned.live.server_version), parallelism=writers)
    if not adaptive:                    # what apply did before: every writer at once from the start
        applier.limiter.limit, applier.limiter.growing = writers, False
        applier.limiter.on_busy = lambda: None
    report = applier.run(planned.plan)
    assert [r.status for r in report.results] == [OK] * 40, [r.message for r in report.results if r.status != OK]
    assert len(fake.deployments) == 40
    return gate, applier


def test_against_a_one_writer_server_apply_settles_on_one_writer_and_few_refusals():
    fixed, _ = apply_through_gate(8, adaptive=False)
    gate, applier = apply_through_gate(8, adaptive=True)
    assert applier.limiter.limit == 1
    print(f"refused: {gate.refused} adaptive, {fixed.refused} with 8 fixed writers")
    assert gate.refused <= 10 and gate.refused * 4 <= fixed.refused, (gate.refused, fixed.refused)
