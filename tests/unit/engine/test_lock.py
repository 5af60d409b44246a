"""The lease lock, against the fake Prefect API at the transport seam (httpx.MockTransport).

Lost answers are made by a handler that lets the fake server carry out a create
and then raises the transport error the client would have seen.  Renewal tests
use a short ttl and wait (bounded) for a condition, never for a duration.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
from typing import Callable, Optional

import httpx
import pytest

from reconciler.engine import lease as lease_mod
from reconciler.engine import lock as lock_mod
from reconciler.engine.inventory import JsonDocs
from reconciler.engine.lock import DEFAULT_TTL, Lock, LockLost, machine_id
from reconciler.errors import LockHeld, ReconcileError
from reconciler.prefect.api import PrefectClient

try:
    from .. import prefect_fake as pf
except ImportError:
    import prefect_fake as pf

SOURCE = pf.SOURCE
CREATE = "/api/block_documents/"
BY_NAME = r"/block_types/slug/json/block_documents/name/reconcile-lock-.*"


def client_with(fake: pf.FakePrefect, before: Optional[Callable[[httpx.Request], Optional[httpx.Response]]] = None,
                after: Optional[Callable[[httpx.Request, httpx.Response], Optional[httpx.Response]]] = None,
                ) -> PrefectClient:
    """A real client whose requests reach `fake`, with hooks before (may answer instead) and after (may replace)."""
    def handler(request: httpx.Request) -> httpx.Response:
        if before is not None:
            early = before(request)
            if early is not None:
                return early
        response = fake.handler(request)
        if after is not None:
            late = after(request, response)
            if late is not None:
                return late
        return response
    return PrefectClient(pf.API_URL, transport=httpx.MockTransport(handler))


def is_create(request: httpx.Request) -> bool:
    return request.method == "POST" and request.url.path == CREATE


def once(condition: Callable[[httpx.Request], bool]) -> Callable[[httpx.Request], bool]:
    fired = []

    def check(request: httpx.Request) -> bool:
        if not fired and condition(request):
            fired.append(True)
            return True
        return False
    return check


def lock_docs(fake: pf.FakePrefect) -> list[dict]:
    return [d for d in fake.block_documents.values() if d["name"].startswith("reconcile-lock-")]


def value(doc: dict) -> dict:
    return doc["data"]["value"]


def seed_lock(fake: pf.FakePrefect, **fields) -> dict:
    """A lock document another apply left (created through the API, as that apply would)."""
    now = dt.datetime.now(dt.timezone.utc)
    held = {"source": SOURCE, "holder": "ci@runner-7 pid 4242", "token": "theirs", "started": now.isoformat(),
            "renewed": now.isoformat(), "expires": (now + dt.timedelta(minutes=1)).isoformat(), "ttl": 60.0,
            "machine": "runner-7 boot 1 pidns 2", "pid": 4242}
    held.update(fields)
    return JsonDocs(fake.client()).create(Lock(fake.client(), SOURCE).name, held)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.01)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# -- a create whose answer is lost -------------------------------------------------------------------------

LOST_ANSWERS = {
    "connection dropped": httpx.RemoteProtocolError("Server disconnected without sending a response."),
    "read error": httpx.ReadError("connection reset by peer"),
    "read timeout": httpx.ReadTimeout("timed out"),
    "connect error": httpx.ConnectError("connection refused"),   # retried by the transport: its 409 is read back
    "500": httpx.Response(500, json={"detail": "Internal Server Error"}),
    "502": httpx.Response(502, text="Bad Gateway"),
    "503": httpx.Response(503, json={"detail": "database is locked"}),   # retried by the transport too
    "504": httpx.Response(504, text="Gateway Timeout"),
}


@pytest.mark.parametrize("lost", LOST_ANSWERS.values(), ids=LOST_ANSWERS.keys())
def test_the_server_created_the_lock_but_the_answer_was_lost_the_client_reads_it_back_and_holds_it(lost):
    fake = pf.FakePrefect()
    lose = once(is_create)

    def after(request: httpx.Request, response: httpx.Response) -> Optional[httpx.Response]:
        if lose(request):
            assert response.status_code == 201    # the document exists on the server
            if isinstance(lost, Exception):
                raise lost
            return lost
        return None

    client = client_with(fake, after=after)
    lock = Lock(client, SOURCE)
    lease = lock.acquire()
    try:
        [doc] = lock_docs(fake)
        assert lease.doc_id == doc["id"] and value(doc)["token"] == lease.token
        assert lock.held()
        assert fake.calls("GET", BY_NAME), "the client read the lock back"
        assert fake.block_documents[doc["id"]] is doc   # nothing deleted and made again
    finally:
        lock.release()
    assert lock_docs(fake) == []


def test_a_create_that_never_reached_the_server_is_sent_again_with_the_same_token():
    fake = pf.FakePrefect()
    lose = once(is_create)
    sent: list[dict] = []

    def before(request: httpx.Request) -> Optional[httpx.Response]:
        if is_create(request):
            sent.append(json.loads(request.content))
        if lose(request):
            raise httpx.ReadTimeout("timed out")     # not carried out: the read back finds nothing
        return None

    lock = Lock(client_with(fake, before=before), SOURCE)
    with lock as lease:
        assert len(sent) == 2, "the create was sent again"
        assert len({value(body)["token"] for body in sent}) == 1
        [doc] = lock_docs(fake)
        assert value(doc)["token"] == lease.token


def test_an_unanswered_create_while_another_apply_took_the_lock_is_not_a_second_holder():
    fake = pf.FakePrefect()
    lose = once(is_create)
    theirs: list[dict] = []

    def before(request: httpx.Request) -> Optional[httpx.Response]:
        if lose(request):   # ours never lands; another apply's create does
            theirs.append(seed_lock(fake, token="other"))
            raise httpx.ReadTimeout("timed out")
        return None

    with pytest.raises(LockHeld, match="ci@runner-7 pid 4242"):
        Lock(client_with(fake, before=before), SOURCE).acquire()
    assert [d["id"] for d in lock_docs(fake)] == [theirs[0]["id"]]
    assert value(lock_docs(fake)[0])["token"] == "other"


def test_a_create_that_keeps_getting_no_answer_gives_up_saying_the_lease_runs_out():
    fake = pf.FakePrefect()
    sent: list[httpx.Request] = []

    def before(request: httpx.Request) -> Optional[httpx.Response]:
        if is_create(request):
            sent.append(request)
            raise httpx.ReadTimeout("timed out")
        return None

    with pytest.raises(ReconcileError, match=r"if one of 5 tries took it, it expires within 60 s"):
        Lock(client_with(fake, before=before), SOURCE).acquire()
    assert len(sent) == lock_mod.UNANSWERED_TRIES


def test_our_own_create_read_back_too_late_to_trust_is_deleted_and_taken_afresh():
    """Our create lands but its answer is lost, and the read back comes after the lease it set could be trusted."""
    fake = pf.FakePrefect()
    lose = once(is_create)

    def after(request: httpx.Request, response: httpx.Response) -> Optional[httpx.Response]:
        if lose(request):
            time.sleep(1.0)           # as long as the whole lease
            raise httpx.ReadTimeout("timed out")
        return None

    lock = Lock(client_with(fake, after=after), SOURCE, ttl=1.0)
    lease = lock.acquire()
    try:
        first = fake.calls("POST", "/block_documents/")[0]
        [doc] = lock_docs(fake)
        assert value(doc)["token"] == lease.token != value(first.body)["token"]
        assert len(fake.calls("DELETE", r"/block_documents/.*")) == 1
    finally:
        lock.release()


# -- two applies ---------------------------------------------------------------------------------------------

def test_a_held_lock_refuses_a_second_holder_naming_the_holder_and_expiry():
    fake = pf.FakePrefect()
    with Lock(fake.client(), SOURCE) as lease:
        with pytest.raises(LockHeld) as refused:
            Lock(fake.client(), SOURCE).acquire()
        assert lease.holder in str(refused.value) and lease.expires.isoformat() in str(refused.value)
        assert "--lock-timeout" in str(refused.value)
        assert [value(d)["token"] for d in lock_docs(fake)] == [lease.token]


def test_the_lease_is_sixty_seconds_by_default_and_the_document_says_who_where_and_until_when():
    fake = pf.FakePrefect()
    with Lock(fake.client(), SOURCE) as lease:
        [doc] = lock_docs(fake)
        held = value(doc)
        assert DEFAULT_TTL == 60.0 and held["ttl"] == 60.0
        expires, renewed = dt.datetime.fromisoformat(held["expires"]), dt.datetime.fromisoformat(held["renewed"])
        assert expires - renewed == dt.timedelta(seconds=60)
        assert held["holder"] == lease.holder == lock_mod.holder_name()
        assert held["pid"] == os.getpid() and held["machine"] == machine_id()
        assert held["source"] == SOURCE and held["started"] == lease.started


def test_an_expired_lock_is_broken_by_deleting_that_document_only():
    fake = pf.FakePrefect()
    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
    stale = seed_lock(fake, expires=past.isoformat())
    said: list[str] = []
    with Lock(fake.client(), SOURCE, say=said.append) as lease:
        assert [c.path for c in fake.calls("DELETE", r"/block_documents/.*")] == [f"/block_documents/{stale['id']}"]
        assert [d["id"] for d in lock_docs(fake)] == [lease.doc_id] and lease.doc_id != stale["id"]
    assert len(said) == 1 and "stale lock" in said[0] and "ci@runner-7 pid 4242" in said[0] and past.isoformat() in said[0]


def test_a_lock_without_a_readable_expiry_is_broken_as_stale():
    fake = pf.FakePrefect()
    seed_lock(fake, expires=None)
    said: list[str] = []
    with Lock(fake.client(), SOURCE, say=said.append):
        pass
    assert any("stale lock" in line for line in said)


def test_two_breakers_of_one_expired_lock_do_not_both_hold_it():
    """B reads the expired lock, A breaks it and takes it, then B's delete (of that old id) and create come."""
    fake = pf.FakePrefect()
    stale = seed_lock(fake, expires=(dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)).isoformat())
    winner: list[Lock] = []
    delete_of_stale = once(lambda r: r.method == "DELETE" and r.url.path.endswith(stale["id"]))

    def before(request: httpx.Request) -> Optional[httpx.Response]:
        if delete_of_stale(request):       # B is about to delete: A gets there first, all the way
            a = Lock(fake.client(), SOURCE)
            a.acquire()
            winner.append(a)
        return None

    b = Lock(client_with(fake, before=before), SOURCE)
    with pytest.raises(LockHeld):
        b.acquire()
    a = winner[0]
    try:
        assert a.held() and not b.held()
        [doc] = lock_docs(fake)
        assert doc["id"] == a.lease.doc_id and value(doc)["token"] == a.lease.token
        # B deleted only the stale id (A did too: one of them found it gone)
        assert {c.path for c in fake.calls("DELETE", r"/block_documents/.*")} == {f"/block_documents/{stale['id']}"}
    finally:
        a.release()


def test_a_lock_of_a_dead_process_of_this_machine_is_broken_at_once():
    fake = pf.FakePrefect()
    pid = dead_pid()
    seed_lock(fake, holder=f"me@here pid {pid}", machine=machine_id(), pid=pid)
    said: list[str] = []
    with Lock(fake.client(), SOURCE, say=said.append):
        pass
    assert said == [f"breaking the lock for {SOURCE}: its holder me@here pid {pid} no longer runs on this machine"]


@pytest.mark.parametrize("elsewhere", [
    "other-host",                                           # another machine
    f"{machine_id()}0",                                     # this host name, another container (pid namespace)
], ids=["another host", "another pid namespace"])
def test_a_dead_pid_recorded_on_another_machine_or_container_does_not_break_a_live_lease(elsewhere):
    fake = pf.FakePrefect()
    pid = dead_pid()
    seed_lock(fake, machine=elsewhere, pid=pid)
    with pytest.raises(LockHeld):
        Lock(fake.client(), SOURCE).acquire()
    assert len(lock_docs(fake)) == 1


def test_a_waiting_apply_takes_the_lock_when_the_holder_releases():
    fake = pf.FakePrefect()
    first = Lock(fake.client(), SOURCE)
    first.acquire()
    took: list[str] = []
    waiter = threading.Thread(target=lambda: took.append(Lock(fake.client(), SOURCE, timeout=30).acquire().token))
    waiter.start()
    wait_for(lambda: len(fake.calls("POST", "/block_documents/")) >= 2, "the waiter was refused once")
    assert not took
    first.release()
    waiter.join(timeout=30)
    assert took and [value(d)["token"] for d in lock_docs(fake)] == took


# -- holding it: renewal, loss --------------------------------------------------------------------------------

def test_the_lease_is_renewed_while_held_and_keeps_its_token_and_start():
    fake = pf.FakePrefect()
    lock = Lock(fake.client(), SOURCE, ttl=1.5)
    with lock as lease:
        [doc] = lock_docs(fake)
        first = dict(value(doc))
        wait_for(lambda: len(fake.calls("PATCH", r"/block_documents/.*")) >= 2, "renewed twice")
        renewed = value(fake.block_documents[doc["id"]])
        assert renewed["token"] == first["token"] and renewed["started"] == first["started"]
        assert renewed["expires"] > first["expires"]
        assert lock.held()
        for patch in fake.calls("PATCH", r"/block_documents/.*"):
            assert patch.path == f"/block_documents/{lease.doc_id}"
    assert lock_docs(fake) == []


def lost_lock(fake: pf.FakePrefect, ttl: float = 1.5) -> Lock:
    lock = Lock(fake.client(), SOURCE, ttl=ttl)
    lock.acquire()
    return lock


def test_a_holder_whose_document_was_deleted_learns_it_refuses_writes_and_fails():
    fake = pf.FakePrefect()
    lock = lost_lock(fake)
    fake.block_documents.pop(lock.lease.doc_id)            # broken by another apply
    wait_for(lambda: lock.lost is not None, "the renewal noticed")
    assert "deleted" in lock.lost and not lock.held()
    with pytest.raises(LockLost, match="lost the lock"):
        lock.client.post("flows/", {"name": "after the loss"})
    assert fake.calls("POST", "/flows/") == [], "the write was not sent"
    with pytest.raises(LockLost, match=f"lost the lock of source '{SOURCE}'"):
        lock.__exit__(None, None, None)
    assert lock.client.before_write is None


def test_a_holder_whose_lock_another_apply_now_holds_stops_and_releases_only_its_own():
    fake = pf.FakePrefect()
    lock = lost_lock(fake)
    with fake.paused():                     # deleted and taken in one step, as the renewer sees it
        fake.block_documents.pop(lock.lease.doc_id)
        theirs = seed_lock(fake, holder="ci@runner-9 pid 99", token="next")
    wait_for(lambda: lock.lost is not None, "the renewal noticed")
    assert "now held by ci@runner-9 pid 99" in lock.lost
    lock.release()
    assert [d["id"] for d in lock_docs(fake)] == [theirs["id"]], "the other apply's lock is untouched"


def test_renewals_that_get_no_answer_lose_the_lease_before_it_expires():
    fake = pf.FakePrefect()
    lock = lost_lock(fake)
    fake.fail("GET", BY_NAME, 500, {"detail": "Internal Server Error"}, times=None)
    wait_for(lambda: not lock.held(), "the lease ran out")
    assert "no renewal was confirmed" in lock.lost
    with pytest.raises(LockLost):
        lock.client.patch("deployments/00000000-0000-4000-8000-000000000001", {"paused": True})
    assert fake.calls("PATCH", "/deployments/.*") == []
    fake.faults.clear()
    with pytest.raises(LockLost):
        lock.__exit__(None, None, None)
    assert lock_docs(fake) == [], "its own document is released"


def test_a_renewal_confirmed_after_the_lease_ran_out_does_not_count():
    fake = pf.FakePrefect()
    gate = threading.Event()

    def before(request: httpx.Request) -> Optional[httpx.Response]:
        if request.method == "PATCH":
            gate.wait(30)       # held until the lease has run out on the holder's clock
        return None

    lock = Lock(client_with(fake, before=before), SOURCE, ttl=1.5)
    lock.acquire()
    try:
        renewer = lock._renewer
        # (not lock.held(), which would itself record the loss)
        wait_for(lambda: lease_mod.clock() > renewer._valid_until, "the lease ran out while the renewal was in flight")
        gate.set()
        wait_for(lambda: lock.lost is not None, "the late answer came")
        assert lock.lost == "its renewal was confirmed only after the lease had run out"
        assert not lock.held()
    finally:
        gate.set()
        lock.release()


def test_writes_to_the_server_pass_while_held_and_the_guard_goes_with_the_lock():
    fake = pf.FakePrefect()
    client = fake.client()
    with Lock(client, SOURCE):
        client.post("flows/", {"name": "under the lock"})
    assert client.before_write is None
    client.post("flows/", {"name": "after"})
    assert len(fake.calls("POST", "/flows/")) == 2


def test_an_apply_whose_lock_is_lost_sends_no_more_writes_and_fails():
    fake = pf.FakePrefect()
    planned = pf.make_plan(fake, [pf.manifest("one"), pf.manifest("two")])
    lock = Lock(planned.client, pf.SOURCE, ttl=1.5)
    lock.acquire()
    fake.block_documents.pop(lock.lease.doc_id)
    wait_for(lambda: lock.lost is not None, "the renewal noticed")
    fake.requests.clear()
    with pytest.raises(LockLost):          # the inventory's widening, the apply's first write, is refused
        with contextlib.ExitStack() as stack:
            stack.push(lock)
            planned.apply()
    assert [c for c in fake.writes if c.path != f"/block_documents/{lock_docs_id(lock)}"] == []
    assert fake.deployments == {}


def lock_docs_id(lock: Lock) -> str:
    return lock._renewer.lease.doc_id


def test_an_exception_from_the_body_is_not_hidden_by_a_lost_lock():
    fake = pf.FakePrefect()
    lock = Lock(fake.client(), SOURCE, ttl=1.5)
    with pytest.raises(KeyError):
        with lock as lease:
            fake.block_documents.pop(lease.doc_id)
            wait_for(lambda: lock.lost is not None, "the renewal noticed")
            raise KeyError("the body's own failure")


def test_a_ttl_must_be_positive():
    with pytest.raises(ValueError):
        Lock(pf.FakePrefect().client(), SOURCE, ttl=0)


def test_a_holder_whose_wall_clock_reached_the_recorded_expiry_stops_trusting_its_lease(monkeypatch):
    """A machine that slept through its lease: the renewals did not run, but the clocks moved on."""
    fake = pf.FakePrefect()
    lock = Lock(fake.client(), SOURCE)
    with pytest.raises(LockLost):
        with lock as lease:
            assert lock.held()
            monkeypatch.setattr(lease_mod, "_now", lambda: lease.expires - dt.timedelta(seconds=15))
            assert not lock.held()
            with pytest.raises(LockLost):
                lock.client.post("flows/", {"name": "after the sleep"})
    assert fake.calls("POST", "/flows/") == [] and lock_docs(fake) == []


def test_the_lease_clock_keeps_running_while_the_machine_sleeps():
    if hasattr(time, "CLOCK_BOOTTIME"):
        assert abs(lease_mod.clock() - time.clock_gettime(time.CLOCK_BOOTTIME)) < 1.0


def test_a_server_too_slow_for_the_lease_is_an_error_not_a_lock_held_untrusted():
    fake = pf.FakePrefect()

    def after(request: httpx.Request, response: httpx.Response) -> Optional[httpx.Response]:
        if is_create(request):
            time.sleep(0.8)           # past the 0.75 s a 1 s lease is trusted for
        return None

    with pytest.raises(ReconcileError, match="answers too slowly"):
        Lock(client_with(fake, after=after), SOURCE, ttl=1.0).acquire()
    assert lock_docs(fake) == [], "each lock it made it deleted"
    assert len(fake.calls("POST", "/block_documents/")) == lock_mod.UNTRUSTED_TRIES
