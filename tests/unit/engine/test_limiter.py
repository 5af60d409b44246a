"""The write limiter: one writer to start, one more unless throughput clearly fell, half on 503/429.

The limiter is driven with a fake clock (throughput is what the clock says):
rounds of exact times; then, over 200 seeds each, modelled servers whose every
action takes +-30 % of its time (and, in one model, spells of machine load),
in an event simulation of virtual time.  Against a SQLite-like server, through
the applier: test_limiter_sqlite.py.
"""
from __future__ import annotations

import heapq
import itertools
import random
import threading
import time

import pytest

from reconciler.engine.applier import Applier
from reconciler.engine import limiter as limiter_mod
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
    assert limiter.history == [1, 2, 3, 4] and not limiter.growing


def test_a_writer_that_adds_nothing_but_costs_nothing_is_kept():
    clock = Clock()
    limiter = WriteLimiter(8, clock=clock)
    run_actions(limiter, clock, 400, lambda width: float(width))   # writes queue one at a time, never refused
    assert limiter.history == [1, 2, 3, 4, 5, 6, 7, 8]


def test_a_writer_that_costs_throughput_is_given_back_and_probed_again_less_and_less():
    clock = Clock()
    limiter = WriteLimiter(8, clock=clock)
    rate = {1: 1.0, 2: 2.0, 3: 3.0}     # the server takes three at once; a fourth slows it by a fifth
    limits = run_actions(limiter, clock, 3000, lambda width: width / rate.get(width, 2.4))
    assert limiter.history[:5] == [1, 2, 3, 4, 3] and limiter.peak == 4
    assert limiter.done_at[3] >= 0.9 * 3000, limiter.done_at
    probes = [i for i, width in enumerate(limits) if width == 4 and limits[i - 1] == 3]
    gaps = [b - a for a, b in zip(probes, probes[1:])]
    assert len(probes) >= 3 and gaps == sorted(gaps) and gaps[-1] >= 2 * gaps[0], limits


def test_a_fall_that_one_writer_fewer_does_not_undo_was_the_machine_and_the_writer_comes_back():
    clock = Clock()
    limiter = WriteLimiter(4, clock=clock)
    spell = []                          # the machine halves its speed the moment the fourth writer starts, for 60 s

    def seconds_per_round(width: int) -> float:
        if width == 4 and not spell:
            spell.append(clock.now)
        return 2.0 if spell and clock.now < spell[0] + 60 else 1.0

    limits = run_actions(limiter, clock, 400, seconds_per_round)
    assert limiter.history == [1, 2, 3, 4, 3, 4], limiter.history
    rounds_at_three = limits[limits.index(4):].count(3)     # two windows of 12 actions, not a hold of eight
    assert rounds_at_three <= 2 * 12 // 3, limits


def run_noisy(limiter: WriteLimiter, clock: Clock, count: int, rate, seed: int, spells: bool = False) -> float:
    """`count` actions on a server that completes rate(n) actions/s with n in flight, each action's time
    off by up to +-30 % (seeded); with spells, the whole machine is also slowed by up to 60 % for spells
    of about a second, as when another job takes the cores.  Returns the virtual seconds taken."""
    rng = random.Random(seed)
    finishing: list = []
    order = itertools.count()
    started, slowdown, spell_ends = 0, 1.0, 0.0
    while started < count or finishing:
        while started < count and len(finishing) < limiter.limit:
            if spells and clock.now >= spell_ends:
                slowdown, spell_ends = rng.uniform(1.0, 1.6), clock.now + rng.expovariate(1.0)
            slot = limiter.slot()
            slot.__enter__()
            in_flight = len(finishing) + 1
            seconds = in_flight / rate(in_flight) * rng.uniform(0.7, 1.3) * slowdown
            heapq.heappush(finishing, (clock.now + seconds, next(order), slot))
            started += 1
        clock.now, _, slot = heapq.heappop(finishing)
        slot.__exit__(None, None, None)
    return clock.now


def postgres_like(in_flight: int) -> float:
    """Never refuses; each writer up to four adds less (+30 %, +12 %, +7 %), more add nothing."""
    return 28.0 * {1: 1.0, 2: 1.3, 3: 1.45}.get(in_flight, 1.55)


@pytest.mark.parametrize("spells", [False, True], ids=["steady", "load-spells"])
def test_on_a_noisy_server_that_takes_four_writers_the_run_is_spent_at_three_or_four(spells):
    shares, slower = [], []
    for seed in range(200):
        clock = Clock()
        limiter = WriteLimiter(4, clock=clock)
        seconds = run_noisy(limiter, clock, 1000, postgres_like, seed, spells)
        shares.append(sum(n for width, n in limiter.done_at.items() if width >= 3) / 1000)
        clock = Clock()
        fixed = WriteLimiter(4, clock=clock)                # four writers from the first action
        fixed.limit, fixed.growing = 4, False
        slower.append(seconds / run_noisy(fixed, clock, 1000, postgres_like, seed, spells))
        assert limiter.busy == 0 and limiter.limit >= 3, (seed, limiter.history)
    assert min(shares) >= 0.85 and sum(shares) / len(shares) >= 0.95, sorted(shares)[:10]
    assert sum(slower) / len(slower) <= 1.05, sorted(slower)[-10:]


def test_on_a_noisy_server_that_slows_past_three_writers_the_run_is_spent_at_three():
    rate = lambda n: 28.0 * {1: 1.0, 2: 1.6, 3: 1.9}.get(n, 1.5)     # noqa: E731  a fourth costs a fifth
    shares = []
    for seed in range(200):
        clock = Clock()
        limiter = WriteLimiter(4, clock=clock)
        run_noisy(limiter, clock, 1000, rate, seed)
        shares.append(limiter.done_at.get(3, 0) / 1000)
    assert min(shares) >= 0.6 and sum(shares) / len(shares) >= 0.8, sorted(shares)[:10]


def test_a_busy_answer_halves_the_writers_and_stops_growth():
    clock = Clock()
    limiter = WriteLimiter(8, clock=clock)
    run_actions(limiter, clock, 400, lambda width: 1.0)
    assert limiter.limit == 8
    with limiter.slot():
        limiter.on_busy()
    assert limiter.limit == 4 and not limiter.growing
    run_actions(limiter, clock, 100, lambda width: 1.0)
    assert limiter.limit == 4           # no probing again after the server said it is busy


def test_busy_answers_to_requests_already_running_cut_once():
    clock = Clock()
    limiter = WriteLimiter(8, clock=clock)
    run_actions(limiter, clock, 400, lambda width: 1.0)
    assert limiter.limit == 8
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


def test_a_limit_the_server_refused_one_writer_more_than_is_where_the_next_apply_starts_and_stays():
    clock = Clock()
    first = WriteLimiter(8, clock=clock)
    run_actions(first, clock, 400, lambda width: 1.0)
    with first.slot():
        first.on_busy()                 # refused at 8: 4 it is
    limiter_mod.remember("http://server/api", first, clock=clock)
    assert limiter_mod.recall("http://other/api", clock=clock) is None
    again = WriteLimiter(8, start=limiter_mod.recall("http://server/api", clock=clock), clock=clock)
    assert again.limit == 4 and not again.growing
    run_actions(again, clock, 200, lambda width: 1.0)
    assert again.history == [4]         # not probed again: no 503, no traceback in the server's log
    with again.slot():
        again.on_busy()                 # but a busy answer still halves it
    assert again.limit == 2


def test_a_remembered_ceiling_grows_on_only_when_the_ceiling_is_raised():
    clock = Clock()
    first = WriteLimiter(4, clock=clock)
    run_actions(first, clock, 200, lambda width: 1.0)
    assert first.history == [1, 2, 3, 4]
    limiter_mod.remember("http://server/api", first, clock=clock)
    start = limiter_mod.recall("http://server/api", clock=clock)
    same = WriteLimiter(4, start=start, clock=clock)
    assert same.limit == 4 and not same.growing
    raised = WriteLimiter(6, start=start, clock=clock)
    run_actions(raised, clock, 400, lambda width: 1.0)
    assert raised.history == [4, 5, 6]
    lowered = WriteLimiter(2, start=start, clock=clock)
    assert lowered.limit == 2 and not lowered.growing


def test_the_memory_runs_out_after_the_server_last_said_something():
    clock = Clock()
    first = WriteLimiter(4, clock=clock)
    run_actions(first, clock, 200, lambda width: 1.0)
    limiter_mod.remember("http://server/api", first, clock=clock)
    clock.now += limiter_mod.REMEMBER - 10
    quiet = WriteLimiter(4, start=limiter_mod.recall("http://server/api", clock=clock), clock=clock)
    run_actions(quiet, clock, 5, lambda width: 1.0)     # started there, learned nothing new
    limiter_mod.remember("http://server/api", quiet, clock=clock)
    clock.now += 20
    assert limiter_mod.recall("http://server/api", clock=clock) is None   # the server may have changed: from one
    assert WriteLimiter(4, start=None).limit == 1
    small = WriteLimiter(4, clock=clock)
    run_actions(small, clock, 3, lambda width: 1.0)     # too few writes to move the limit: nothing to remember
    limiter_mod.remember("http://server/api", small, clock=clock)
    assert limiter_mod.recall("http://server/api", clock=clock) is None


def test_a_write_from_another_thread_waits_for_a_free_slot_ahead_of_the_queued_actions():
    """The lock's lease renewal, at one writer: never beside a create (SQLite would refuse one of them)."""
    limiter = WriteLimiter(1)
    order: list[str] = []
    action = limiter.slot()
    action.__enter__()                              # a create in flight

    def renew() -> None:
        with limiter.turn():
            order.append("renewal")

    def next_create() -> None:
        with limiter.slot():
            order.append("create")

    renewer = threading.Thread(target=renew)
    renewer.start()
    for _ in range(5000):                           # until the renewal is waiting for the slot
        if limiter._queued:
            break
        time.sleep(0.001)
    assert limiter._queued
    creator = threading.Thread(target=next_create)
    creator.start()
    time.sleep(0.05)
    assert order == []                              # neither goes beside the create in flight
    action.__exit__(None, None, None)
    renewer.join(5)
    creator.join(5)
    assert order == ["renewal", "create"]           # the renewal first, then the actions
    assert sum(limiter.done_at.values()) == 2       # and it was not counted as an action


def test_a_write_from_another_thread_waits_a_bounded_time_and_an_action_s_own_writes_do_not_wait():
    limiter = WriteLimiter(1)
    with limiter.slot():
        with limiter.turn():                        # the action's own write: it holds the slot already
            pass
        went: list[tuple[int, int]] = []

        def renew() -> None:
            with limiter.turn(wait=0.2):
                went.append((limiter._running, limiter._outside))

        outside = threading.Thread(target=renew)
        outside.start()
        outside.join(10)
        assert went == [(1, 1)]                     # it gave up waiting and went beside the stuck action
