"""A held lock's lease: renewed in the background, trusted only as long as it was confirmed.

Every ttl/3 the renewer reads the lock document and checks it is still ours
(same id, same token), then PATCHes a new expiry by id.  The lease is trusted
until ttl - ttl/4 after the renewal (or the create) was *sent*, and a renewal
whose answer arrives after the lease it extends has ended counts for nothing:
once that end has passed another apply may be breaking the lock (the document's
expiry is ttl/4 later still), so the lease is lost for good.  A failed renewal is
tried again every couple of seconds until then.

"Until" holds on two clocks at once: `clock()`, monotonic and still running
while the machine sleeps (a suspended laptop wakes up with its lease gone), and
the wall clock against the expiry written in the document.
"""
from __future__ import annotations

import datetime as dt
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

from ..errors import NotFound, ReconcileError
from .inventory import JsonDocs


if hasattr(time, "CLOCK_BOOTTIME"):            # Linux: CLOCK_MONOTONIC stops during suspend, this does not
    def clock() -> float:
        return time.clock_gettime(time.CLOCK_BOOTTIME)
elif sys.platform == "darwin":                   # macOS: time.monotonic() stops during sleep, CLOCK_MONOTONIC does not
    def clock() -> float:
        return time.clock_gettime(time.CLOCK_MONOTONIC)
else:
    clock = time.monotonic


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass
class Lease:
    source: str
    doc_id: str
    token: str
    holder: str
    started: str
    expires: dt.datetime       # as last written to the document


class Renewer:
    def __init__(self, docs: JsonDocs, name: str, lease: Lease, ttl: float, sent: float,
                 value: Callable[[dt.datetime], dict[str, Any]]) -> None:
        self.docs = docs
        self.name = name
        self.lease = lease
        self.ttl = ttl
        self.value = value                          # the document's value, renewed at this time
        self.every = ttl / 3
        self.retry = min(2.0, ttl / 10)
        self._state = threading.Lock()
        self._last_sent = sent                      # clock(): when the write of the current expiry was sent
        self._valid_until = sent + ttl - ttl / 4    # clock(): the lease is trusted until then
        self.margin = dt.timedelta(seconds=ttl / 4)
        self._lost: Optional[str] = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"reconcile-lease {lease.source}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Renew no more.  Not waited for long: a renewal in flight is a PATCH by id, which cannot revive a deleted lock."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)

    def held(self) -> bool:
        with self._state:
            if self._lost is None and not self._in_time():
                self._lost = f"no renewal was confirmed within its {self.ttl:g} s lease"
            return self._lost is None

    def _in_time(self) -> bool:
        return clock() < self._valid_until and _now() < self.lease.expires - self.margin

    @property
    def lost(self) -> Optional[str]:
        with self._state:
            return self._lost

    def _lose(self, why: str) -> None:
        with self._state:
            if self._lost is None:
                self._lost = why

    def _loop(self) -> None:
        delay = max(0.0, self._last_sent + self.every - clock())
        try:
            while not self._stop.wait(delay):
                if self._renew():
                    delay = max(0.0, self._last_sent + self.every - clock())
                elif not self.held():
                    return
                else:
                    delay = min(self.retry, max(0.0, self._valid_until - clock()))
        except Exception as exc:  # noqa: BLE001 - a bug here must not leave a holder that believes it holds
            self._lose(f"its renewal failed ({type(exc).__name__}: {exc})")

    def _renew(self) -> bool:
        """One renewal; True when confirmed in time.  Lost leases are recorded in `_lost`."""
        if not self.held():
            return False
        lease = self.lease
        try:
            current = self.docs.read(self.name)
        except NotFound:
            self._lose("its lock document was deleted (broken by another apply?)")
            return False
        except ReconcileError:
            return False          # no answer: try again soon, while the lease lasts
        value = (current.get("data") or {}).get("value") or {}
        if current.get("id") != lease.doc_id or not isinstance(value, dict) or value.get("token") != lease.token:
            holder = value.get("holder", "?") if isinstance(value, dict) else "?"
            started = value.get("started", "?") if isinstance(value, dict) else "?"
            self._lose(f"the lock is now held by {holder} since {started}")
            return False
        sent = clock()
        at = _now()
        try:
            self.docs.update(lease.doc_id, self.value(at))
        except NotFound:
            self._lose("its lock document was deleted (broken by another apply?)")
            return False
        except ReconcileError:
            return False
        with self._state:
            if self._lost is not None or self._stop.is_set():
                return False
            if not self._in_time():
                self._lost = "its renewal was confirmed only after the lease had run out"
                return False
            self._last_sent, self._valid_until = sent, sent + self.ttl - self.ttl / 4
            lease.expires = at + dt.timedelta(seconds=self.ttl)
        return True
