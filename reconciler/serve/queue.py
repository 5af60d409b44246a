"""What a source's worker runs next: pushes queued during a run coalesce, and none is dropped for arriving late.

Deliveries arrive in any order, so a queued push keeps every request merged into it; the run chooses among
their commits by ancestry once it has fetched the branch (see controller.Worker._choose).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional


@dataclass(frozen=True)
class Request:
    trigger: str                   # webhook | poll | startup
    commit: Optional[str] = None   # None: whatever the branch points at when the run starts
    delivery: Optional[str] = None
    coalesced: tuple[Request, ...] = ()   # requests queued before this one and merged into it, oldest first

    def requests(self) -> list[Request]:
        """Every request this one stands for, in arrival order, one per commit (its latest delivery)."""
        latest: dict[Optional[str], Request] = {}
        for one in (*self.coalesced, replace(self, coalesced=())):
            latest.pop(one.commit, None)
            latest[one.commit] = one
        return list(latest.values())


MAX_QUEUED = 1000   # distinct pushed commits kept for one run; past that the run applies the branch head


def merge(queued: Optional[Request], new: Request) -> Request:
    """What to run next, given what is queued and a new request.

    A push joins the queued pushes (the run picks the newest of them by ancestry, not the last to arrive);
    a poll does not displace a queued push (the push's run fetches the branch anyway)."""
    if queued is None:
        return new
    if new.trigger != "webhook":
        return queued
    merged = replace(new, coalesced=tuple(queued.requests()))
    if len(merged.coalesced) >= MAX_QUEUED:   # a flood: the branch head is newer than (or one of) them all
        merged = Request(new.trigger, None, new.delivery)
    return merged
