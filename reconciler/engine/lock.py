"""One writer per source: a lease lock kept in the Prefect API.

Acquire = create a JSON block document named after the source; the server's
409 on a duplicate name is the mutex.  The document holds the holder, the start
and the expiry.  A lock past its expiry, or one whose holder was a process of
this machine that no longer runs, is broken (and the output says so); a held
lock is renewed while an apply runs.
"""
from __future__ import annotations

import datetime as dt
import getpass
import os
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Callable, Optional

from ..errors import AlreadyExists, LockHeld, NotFound
from ..prefect.api import PrefectClient
from .inventory import JsonDocs
from .live import LOCK_PREFIX
from .source import doc_slug


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def holder_name() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()} pid {os.getpid()}"


@dataclass
class Lease:
    source: str
    doc_id: str
    token: str
    holder: str
    started: str
    expires: dt.datetime


class Lock:
    def __init__(self, client: PrefectClient, source: str, *, ttl: float = 600.0,
                 timeout: float = 0.0, say: Callable[[str], None] = lambda line: None) -> None:
        self.docs = JsonDocs(client)
        self.source = source
        self.name = LOCK_PREFIX + doc_slug(source)
        self.ttl = ttl
        self.timeout = timeout
        self.say = say
        self.lease: Optional[Lease] = None
        self._stop = threading.Event()
        self._renewer: Optional[threading.Thread] = None

    def acquire(self) -> Lease:
        deadline = time.monotonic() + self.timeout
        token = uuid.uuid4().hex
        holder = holder_name()
        while True:
            started = _now()
            expires = started + dt.timedelta(seconds=self.ttl)
            value = {"source": self.source, "holder": holder, "token": token,
                     "started": started.isoformat(), "expires": expires.isoformat()}
            try:
                doc = self.docs.create(self.name, value)
                self.lease = Lease(self.source, doc["id"], token, holder, started.isoformat(), expires)
                self._start_renewing()
                return self.lease
            except AlreadyExists:
                pass
            try:
                current = self.docs.read(self.name)
            except NotFound:
                continue  # released between our create and our read: try again at once
            held = (current.get("data") or {}).get("value") or {}
            if held.get("token") == token:  # our own create, retried after a lost answer
                self.lease = Lease(self.source, current["id"], token, holder, started.isoformat(), expires)
                self._start_renewing()
                return self.lease
            held_until = _parse(held.get("expires"))
            if _holder_gone(held.get("holder")):
                self.say(f"breaking the lock for {self.source}: its holder {held.get('holder')} no longer runs "
                         "on this machine")
                try:
                    self.docs.delete(current["id"])
                except NotFound:
                    pass
                continue
            if held_until is None or held_until <= _now():
                self.say(f"breaking a stale lock for {self.source}: held by {held.get('holder', '?')} "
                         f"since {held.get('started', '?')}, expired {held.get('expires', '?')}")
                try:
                    self.docs.delete(current["id"])
                except NotFound:
                    pass
                continue
            if time.monotonic() >= deadline:
                raise LockHeld(f"source {self.source!r} is locked by {held.get('holder', '?')} since "
                               f"{held.get('started', '?')} until {held.get('expires', '?')}; "
                               "try again later or pass --lock-timeout SECONDS to wait")
            time.sleep(min(2.0, max(0.1, deadline - time.monotonic())))

    def _start_renewing(self) -> None:
        self._stop.clear()
        self._renewer = threading.Thread(target=self._renew_loop, name="reconcile-lock", daemon=True)
        self._renewer.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            lease = self.lease
            if lease is None:
                return
            expires = _now() + dt.timedelta(seconds=self.ttl)
            try:
                self.docs.update(lease.doc_id, {"source": lease.source, "holder": lease.holder, "token": lease.token,
                                                "started": lease.started, "expires": expires.isoformat()})
                lease.expires = expires
            except Exception:  # noqa: BLE001 - a failed renewal must not kill the apply; expiry still bounds it
                pass

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=5)
        lease, self.lease = self.lease, None
        if lease is not None:
            try:
                self.docs.delete(lease.doc_id)
            except NotFound:
                pass

    def __enter__(self) -> Lease:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _holder_gone(holder: object) -> bool:
    """Was the lock taken by a process of this machine that has ended (killed, crashed)?"""
    if not isinstance(holder, str):
        return False
    match = re.fullmatch(r"[^@]*@(?P<host>\S+) pid (?P<pid>\d+)", holder)
    if match is None or match.group("host") != socket.gethostname() or int(match.group("pid")) == os.getpid():
        return False
    try:
        os.kill(int(match.group("pid")), 0)
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
