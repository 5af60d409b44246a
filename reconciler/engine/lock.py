"""One writer per source: a lease lock kept in the Prefect API.

The lock is a JSON block document named `reconcile-lock-<source>`, created if
absent: the server's 409 on a duplicate name is the mutex.  Its value records a
token this client chose (a uuid), the holder (`user@host pid N`), when it was
taken, last renewed and when it expires.

Safe to retry.  A create whose answer is lost (connection dropped, timeout, 5xx)
may or may not have happened, so the document is read back by name: our token
in it, we hold the lock; no document, the create is sent again; someone else's,
it is held by another (as after a 409).

A short lease, renewed while held (`lease.py`).  The lease is `ttl` seconds (60
by default), renewed every ttl/3 while the apply runs.  A holder that dies
(`kill -9`, a lost CI runner) stops renewing, and another apply breaks its lock
once the recorded expiry has passed: a dead holder anywhere costs at most `ttl`.
One that was a process of this very machine (same host, boot and pid namespace)
that no longer runs is broken at once.

Never two holders:
- breaking deletes the one expired document by its id, then races on create like
  anyone else: of two breakers one create wins, the other gets a 409.  A document
  created after the breaker read the expired one has another id and survives;
- the holder trusts its lease for ttl - ttl/4 seconds after it *sent* the write
  that set the expiry, by its own clock (`lease.clock`), and a renewal counts only when
  its answer arrives within the lease it extends: a renewal cannot revive a lease
  another apply may already be breaking, and up to ttl/4 of clock skew between
  hosts plus request latency is tolerated;
- a holder whose lease is lost (the document gone or someone else's, or no
  renewal confirmed in time) learns it at its next write, which raises LockLost
  (`PrefectClient.before_write`: the applier's remaining actions fail and are not
  sent), and on leaving the `with Lock(...)` block, which raises LockLost: the
  apply exits 1;
- releasing deletes our own document by the id our create returned (or that of
  the document read back with our token): the token is checked once, when the id
  is learnt, and ids are never reused, so another apply's lock is never deleted.
"""
from __future__ import annotations

import datetime as dt
import getpass
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Optional

from ..errors import AlreadyExists, ApiError, LockHeld, LockLost, NotFound, ReconcileError, Unreachable
from ..prefect.api import PrefectClient
from .inventory import JsonDocs
from .lease import Lease, Renewer, clock
from .live import LOCK_PREFIX
from .source import doc_slug

__all__ = ["DEFAULT_TTL", "Lease", "Lock", "LockLost", "holder_name", "machine_id"]

DEFAULT_TTL = 60.0      # seconds: what a dead holder costs the others at most
UNANSWERED_TRIES = 5    # creates whose answer was lost, read back and sent again, before giving up
UNTRUSTED_TRIES = 3     # locks of ours dropped because their answer came too late to trust, before giving up
READ_TRIES = 3          # reads of the lock document after an unanswered create (each already retried)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def holder_name() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()} pid {os.getpid()}"


def machine_id() -> str:
    """Where a pid names one process: the host, and on Linux its boot and pid namespace (containers differ)."""
    parts = [socket.gethostname()]
    try:
        parts.append("boot " + Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip())
        parts.append(f"pidns {os.stat('/proc/self/ns/pid').st_ino}")
    except OSError:
        pass
    return " ".join(parts)


class Lock:
    def __init__(self, client: PrefectClient, source: str, *, ttl: float = DEFAULT_TTL,
                 timeout: float = 0.0, say: Callable[[str], None] = lambda line: None,
                 doc: Optional[str] = None, what: Optional[str] = None) -> None:
        if ttl <= 0:
            raise ValueError(f"the lock's ttl must be positive, not {ttl}")
        self.client = client
        self.docs = JsonDocs(client)
        self.source = source
        self.name = LOCK_PREFIX + (doc or doc_slug(source))   # `doc`: a lock that is no source's (ownership)
        self.what = what or f"source {source!r}"
        self.ttl = ttl
        self.timeout = timeout
        self.say = say
        self.lease: Optional[Lease] = None
        self._renewer: Optional[Renewer] = None
        self._previous_guard: Optional[Callable[[str, str], None]] = None
        self._sent: dict[str, float] = {}   # each token sent in a create → when (clock()) it was first sent

    # -- taking it ------------------------------------------------------------------
    def acquire(self) -> Lease:
        if self.lease is not None:
            raise RuntimeError(f"the lock of {self.source!r} is already held by this Lock")
        deadline = clock() + self.timeout
        holder = holder_name()
        token = uuid.uuid4().hex
        unanswered = untrusted = 0
        while True:
            sent = clock()
            self._sent.setdefault(token, sent)
            value = self._value(token, holder, _now())
            try:
                doc = self.docs.create(self.name, value)
            except AlreadyExists:
                pass
            except (Unreachable, ApiError) as exc:
                if not _unanswered(exc):
                    raise
                unanswered += 1   # it may have been created: read it back
                if unanswered >= UNANSWERED_TRIES:
                    raise ReconcileError(f"{exc} (taking the lock of {self.what}; if one of "
                                         f"{unanswered} tries took it, it expires within {self.ttl:g} s)") from None
            else:
                lease = self._take(doc["id"], value, sent)
                if lease is not None:
                    return lease
                untrusted += 1
                if untrusted >= UNTRUSTED_TRIES:
                    raise ReconcileError(f"the Prefect API answers too slowly to hold the lock of {self.what}:"
                                         f" each answer came after most of its {self.ttl:g} s lease had passed")
                token = uuid.uuid4().hex
                continue
            current = self._read()
            if current is None:
                continue                       # absent: create again (same token, so a late answer is ours too)
            held = _value_of(current)
            first_sent = self._sent.get(held.get("token"))
            if first_sent is not None:         # made by one of our creates whose answer never came
                lease = self._take(current["id"], held, first_sent)
                if lease is not None:
                    return lease
                token = uuid.uuid4().hex
                continue
            token = uuid.uuid4().hex           # a fresh token from now on: its age is known exactly
            if self._break_if_dead(current["id"], held):
                continue
            if clock() >= deadline:
                raise LockHeld(f"{self.what} is locked by {held.get('holder', '?')} since "
                               f"{held.get('started', '?')} until {held.get('expires', '?')}; "
                               "try again later or pass --lock-timeout SECONDS to wait")
            expires = _parse(held.get("expires"))
            until_expiry = (expires - _now()).total_seconds() if expires else 2.0
            time.sleep(min(2.0, max(0.1, deadline - clock()), max(0.1, until_expiry)))

    def _value(self, token: str, holder: str, at: dt.datetime, started: Optional[str] = None) -> dict[str, Any]:
        return {"source": self.source, "holder": holder, "token": token, "started": started or at.isoformat(),
                "renewed": at.isoformat(), "expires": (at + dt.timedelta(seconds=self.ttl)).isoformat(),
                "ttl": self.ttl, "machine": machine_id(), "pid": os.getpid()}

    def _take(self, doc_id: str, value: dict[str, Any], sent: float) -> Optional[Lease]:
        """Hold the document we created, if its lease (counted from when the create was sent) is still to be trusted."""
        expires = _parse(value.get("expires"))
        if (clock() >= sent + self.ttl - self.ttl / 4 or expires is None
                or _now() >= expires - dt.timedelta(seconds=self.ttl / 4)):
            self._delete(doc_id)     # the answer took too long: ours, but a breaker may be at it
            return None
        self.lease = Lease(self.source, doc_id, value["token"], value["holder"], value["started"], expires)
        self._renewer = Renewer(self.docs, self.name, self.lease, self.ttl, sent,
                                lambda at: self._value(value["token"], value["holder"], at, value["started"]))
        self._previous_guard, self.client.before_write = self.client.before_write, self._check_write
        self._renewer.start()
        return self.lease

    def _read(self) -> Optional[dict[str, Any]]:
        """The lock document, or None when there is none."""
        for attempt in range(1, READ_TRIES + 1):
            try:
                return self.docs.read(self.name)
            except NotFound:
                return None
            except (Unreachable, ApiError) as exc:
                if not _unanswered(exc):
                    raise
                if attempt == READ_TRIES:
                    raise ReconcileError(f"{exc} (reading the lock of {self.what}; if this run "
                                         f"took it, it expires within {self.ttl:g} s)") from None
                time.sleep(attempt)
        return None  # not reached

    def _break_if_dead(self, doc_id: str, held: dict[str, Any]) -> bool:
        """Delete this (and only this) document if its holder is gone; True when it was."""
        if _holder_gone(held):
            self.say(f"breaking the lock for {self.source}: its holder {held.get('holder')} no longer runs "
                     "on this machine")
        else:
            expires = _parse(held.get("expires"))
            if expires is not None and expires > _now():
                return False
            self.say(f"breaking a stale lock for {self.source}: held by {held.get('holder', '?')} "
                     f"since {held.get('started', '?')}, expired {held.get('expires', '?')}")
        self._delete(doc_id)
        return True

    def _delete(self, doc_id: str) -> None:
        try:
            self.docs.delete(doc_id)
        except NotFound:
            pass

    # -- holding it -------------------------------------------------------------------
    def held(self) -> bool:
        """Is the lease still ours: not broken, and renewed in time by our own clock?"""
        return self._renewer is not None and self._renewer.held()

    @property
    def lost(self) -> Optional[str]:
        """Why the lease was lost, if it was."""
        return self._renewer.lost if self._renewer is not None else None

    def _check_write(self, method: str, path: str) -> None:
        """PrefectClient.before_write while held: no write once the lease is lost (except to the lock itself),
        nor once a lock held around this one is lost."""
        if self._previous_guard is not None:
            self._previous_guard(method, path)
        lease = self.lease
        if lease is None or path.strip("/") == f"block_documents/{lease.doc_id}":
            return
        if not self.held():
            raise self._lost_error()

    def _lost_error(self) -> LockLost:
        return LockLost(f"lost the lock of {self.what} while applying: {self.lost}; "
                        "writes after that were not sent; run apply again")

    # -- letting go ---------------------------------------------------------------------
    def release(self) -> None:
        lease, self.lease = self.lease, None
        if self._renewer is not None:
            self._renewer.stop()
        if self.client.before_write == self._check_write:
            self.client.before_write = self._previous_guard
        if lease is None:
            return
        try:
            self._delete(lease.doc_id)
        except ReconcileError as exc:  # the work is done; the lease runs out by itself
            self.say(f"could not release the lock of {self.what} ({exc}); it expires at {lease.expires.isoformat()}")

    def __enter__(self) -> Lease:
        return self.acquire()

    def __exit__(self, exc_type: object, *exc: object) -> None:
        held = self.held()
        error = None if held else self._lost_error()
        self.release()
        if error is not None and exc_type is None:
            raise error


def _unanswered(exc: ReconcileError) -> bool:
    """No answer, or one that does not say whether the request was carried out."""
    return isinstance(exc, Unreachable) or (isinstance(exc, ApiError) and exc.status >= 500)


def _value_of(doc: dict[str, Any]) -> dict[str, Any]:
    value = (doc.get("data") or {}).get("value")
    return value if isinstance(value, dict) else {}


def _holder_gone(held: dict[str, Any]) -> bool:
    """Was the lock taken by a process of this machine (host, boot, pid namespace) that has ended?"""
    pid = held.get("pid")
    if (os.name == "nt" or held.get("machine") != machine_id() or not isinstance(pid, int) or pid <= 0
            or pid == os.getpid()):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:          # it exists (owned by someone else)
        return False
    return False


def _parse(value: object) -> Optional[dt.datetime]:
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)
