"""One worker thread per source: runs never interleave, pushes coalesce, a jittered timer polls.

A run fetches the repository, checks out the commit (the pushed one, or the branch head when polling),
and calls the engine: apply, or at an already-applied commit without self-heal, plan and report drift.

Deliveries arrive in any order (a burst of pushes is delivered concurrently), so the order they arrive in says
nothing about which commit is newer. Pushes queued during a run are all kept; when the run starts, the branch is
fetched and git orders them by ancestry: the newest one on the branch is applied. A commit that is an ancestor of
the one last applied (or tried) is never applied over it, unless that one has left the branch (a rollback).
"""
from __future__ import annotations

import os
import random
import threading
import time
import traceback
from pathlib import Path
from typing import Callable, Optional

from ..engine import run as engine
from ..engine.plans import Plan
from ..errors import ReconcileError
from ..prefect.api import PrefectClient
from . import config as config_mod
from .config import ServeConfig, SourceConfig
from .gitsync import Checkout
from .queue import Request, merge
from .state import ACTION_KINDS, RunRecord, State, _now
from .webhooks import redact

JITTER = 0.1


MAX_DETAILS = 50


def _counts(plan: Plan) -> dict[str, int]:
    summary = plan.summary
    return {kind: summary[kind] for kind in ACTION_KINDS if summary.get(kind)}


def _details(plan: Plan) -> list[str]:
    """One line per change, e.g. `update etl/nightly: description, schedules`, so drift says what moved."""
    lines = [f"upload {u.bundle} → {u.storage}" for u in plan.uploads]
    for action in plan.actions:
        if action.action == "noop":
            continue
        fields = ", ".join(sorted(action.changed_fields)) if action.action in ("update", "adopt") else ""
        lines.append(f"{action.action} {action.identity}" + (f": {fields}" if fields else ""))
    return lines[:MAX_DETAILS] + ([f"… and {len(lines) - MAX_DETAILS} more"] if len(lines) > MAX_DETAILS else [])


def _links_outside(directory: Path, root: Path) -> list[Path]:
    """Symbolic links under `directory` that lead out of the checkout (a pushed commit must not read the host)."""
    base = root.resolve()
    found = []
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if path.is_symlink() and not path.resolve().is_relative_to(base):
                found.append(path)
    return sorted(found)


class Worker:
    def __init__(self, source: SourceConfig, config: ServeConfig, state: State,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.source = source
        self.state = state
        self.self_heal = config.self_heal
        self.interval = config.poll_interval
        self.checkout = Checkout(source.repo, source.branch, Path(config.workdir) / source.name / "checkout",
                                 timeout=config.git_timeout)
        self._applied_file = Path(config.workdir) / source.name / "applied-commit"
        self.applied: Optional[str] = self._read_applied()
        self.tried: Optional[str] = self.applied     # the commit of the last run that was not skipped
        self._clock = clock
        self._cond = threading.Condition()
        self._pending: Optional[Request] = Request("startup")     # converge once on start
        self._stopping = False
        self._next_poll = self._clock() + self._interval()
        self.thread = threading.Thread(target=self._loop, name=f"reconcile-{source.name}", daemon=True)
        state.set_info(source.name, repo=redact(source.repo), branch=source.branch, path=source.path,
                       self_heal=self.self_heal, poll_interval_s=self.interval, applied_commit=self.applied,
                       idle=False)

    # ------------------------------------------------------------------ control
    def start(self) -> None:
        self.thread.start()

    def submit(self, request: Request) -> None:
        """Queue a run. Pushes queued together coalesce into one run, for the newest of their commits by ancestry
        (decided by git when the run starts, never by the order the deliveries arrived in)."""
        with self._cond:
            self._pending = merge(self._pending, request)
            self.state.set_info(self.source.name, queued=self._pending.commit or self._pending.trigger,
                                queued_commits=len(self._pending.requests()), idle=False)
            self._cond.notify()

    def request_stop(self) -> None:
        """Drop what is queued (logged) and let the run in progress be the last."""
        with self._cond:
            self._stopping = True
            dropped, self._pending = self._pending, None
            self._cond.notify()
        pushed = [r.commit for r in dropped.requests() if r.trigger == "webhook"] if dropped is not None else []
        if pushed:
            self.state.log({"event": "dropped", "source": self.source.name, "trigger": "webhook",
                            "commit": pushed[-1], "commits": pushed, "reason": "shutting down; the next start "
                                                                             "applies the branch head"})

    def stop(self, timeout: Optional[float] = None) -> None:
        """Finish the run in progress, drop what is queued, and end the thread."""
        self.request_stop()
        if self.thread.is_alive():
            self.thread.join(timeout)

    def _interval(self) -> float:
        return self.interval * random.uniform(1 - JITTER, 1 + JITTER)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and self._pending is None:
                    if self.interval and self._clock() >= self._next_poll:
                        self._pending = Request("poll")
                        break
                    wait = self._next_poll - self._clock() if self.interval else None
                    self._cond.wait(timeout=min(max(wait, 0.05), 1.0) if wait is not None else None)  # re-check each second
                if self._stopping:
                    return
                request, self._pending = self._pending, None
                self.state.set_info(self.source.name, queued=None, queued_commits=0, idle=False)
            assert request is not None
            self.run(request)
            self._next_poll = self._clock() + self._interval()
            with self._cond:     # idle: no run in progress and nothing queued (set under the queue's lock)
                self.state.set_info(self.source.name, idle=self._pending is None)

    # ------------------------------------------------------------------ one run
    def run(self, request: Request) -> RunRecord:
        record = RunRecord(self.source.name, request.trigger, request.commit, delivery=request.delivery)
        self.state.started(record)
        started = time.monotonic()
        try:
            self._run(request, record)
        except ReconcileError as exc:
            record.result = "failed"
            record.errors = self._relative(str(exc)).splitlines()
        except Exception as exc:  # noqa: BLE001 - a bug must not kill the controller; it is reported
            record.result = "failed"
            record.errors = [f"internal error: {type(exc).__name__}: {exc} (traceback in the log; please report it)"]
            self.state.log({"event": "internal-error", "source": self.source.name,
                            "traceback": redact("".join(traceback.format_exc()))})
        finally:
            record.errors = [redact(e) for e in record.errors]
            record.duration_s = time.monotonic() - started
            record.finished = _now()
            self.state.finished(record)
            self.state.set_info(self.source.name, applied_commit=self.applied)
        return record

    def _choose(self, request: Request, head: str, record: RunRecord) -> Optional[str]:
        """The commit to run for: of the queued requests' commits that are on the branch (as just fetched), the
        newest by ancestry. None (the run is skipped, with a note) when none is on the branch, or when the newest
        is an ancestor of the commit last applied or tried (a late delivery), unless that one has left the branch
        (a rollback: apply)."""
        pairs = [(r, r.commit or head) for r in request.requests()]      # (request, the commit it names)
        if any(commit == head for _, commit in pairs):   # the usual end of a burst: no need to ask git about the others
            on_branch = [(r, c) for r, c in pairs if c == head]
        else:
            on_branch = [(r, c) for r, c in pairs if self.checkout.on_branch(c, head)]
        if on_branch:
            newest = set(self.checkout.newest([c for _, c in on_branch]))
            chosen, commit = [(r, c) for r, c in on_branch if c in newest][-1]   # several: the last to arrive
        else:
            chosen, commit = pairs[-1]
        record.trigger, record.commit, record.delivery = chosen.trigger, commit, chosen.delivery
        record.coalesced = list(dict.fromkeys(c for _, c in pairs if c != commit))
        others = len(record.coalesced)
        if not on_branch:
            record.result = "skipped"
            nor = f", nor are the {others} other queued push(es)" if others else ""
            record.note = (f"commit {commit[:12]} is not on branch {self.source.branch} any more (force-pushed "
                           f"away?){nor}; the branch head {head[:12]} is applied by its own push or the next poll")
            return None
        last = self.tried
        if (last and commit != last and self.checkout.is_ancestor(commit, last)
                and self.checkout.on_branch(last, head)):     # (after a rollback it is not: apply)
            record.result = "skipped"
            done = ("is already applied" if last == self.applied
                    else "was tried last (its run failed; its next push or a poll tries it again)")
            older = f" (and {others} other queued push(es), none newer)" if others else ""
            record.note = f"superseded: the newer commit {last[:12]} {done}{older}"
            return None
        return commit

    def _run(self, request: Request, record: RunRecord) -> None:
        url, key = config_mod.api_url(self.source), config_mod.api_key(self.source)
        head = self.checkout.fetch()
        commit = self._choose(request, head, record)
        if commit is None:
            return
        self.tried = commit
        root = self.checkout.checkout(commit)
        directory = root / self.source.path
        if not directory.is_dir():
            raise ReconcileError(f"{self.source.path}: no such directory at commit {commit[:12]}")
        if not directory.resolve().is_relative_to(root.resolve()):
            raise ReconcileError(f"{self.source.path}: leads outside the repository at commit {commit[:12]} "
                                 "(a symbolic link?); nothing applied")
        for link in _links_outside(directory, root):
            raise ReconcileError(f"{link.relative_to(root)}: a symbolic link to outside the repository at commit "
                                 f"{commit[:12]}; nothing applied")
        options = engine.Options(api_url=url, source=self.source.name, lock_timeout=120.0, say=self._say)
        already = commit == self.applied
        with PrefectClient(url, key) as client:
            if already and not self.self_heal:
                plan = engine.make_plan(directory, options, client)
                record.actions = _counts(plan)
                record.drift = sum(record.actions.values())
                record.changes = _details(plan)
                record.result = "drift" if record.drift else "in-sync"
                return
            report = engine.apply_path(directory, options, client)
        record.actions = _counts(report.plan)
        record.changes = _details(report.plan)
        record.drift = sum(record.actions.values()) if already else 0
        if report.failures:
            record.result = "failed"
            record.errors = [f"{r.identity}: {r.action} failed: {r.message}" for r in report.failures]
            return
        record.result = "applied" if report.results else "in-sync"
        self._write_applied(commit)

    def _say(self, line: str) -> None:
        self.state.log({"event": "message", "source": self.source.name, "message": self._relative(line)})

    def _relative(self, text: str) -> str:
        """Errors name files as they are in the repository, not in this controller's work directory."""
        absolute = str(self.checkout.directory.resolve())
        for prefix in (absolute, str(self.checkout.directory), os.path.relpath(absolute)):
            text = text.replace(prefix + "/", "")
        return redact(text)

    def _read_applied(self) -> Optional[str]:
        try:
            return self._applied_file.read_text(encoding="utf-8").strip() or None
        except OSError:
            return None

    def _write_applied(self, commit: str) -> None:
        self.applied = commit
        self._applied_file.parent.mkdir(parents=True, exist_ok=True)
        self._applied_file.write_text(commit + "\n", encoding="utf-8")


class Controller:
    def __init__(self, config: ServeConfig, state: State) -> None:
        self.config = config
        self.workers = [Worker(source, config, state) for source in config.sources]

    def start(self) -> None:
        for worker in self.workers:
            worker.start()

    def stop(self) -> None:
        for worker in self.workers:   # ask all first, so they finish their runs side by side
            worker.request_stop()
        for worker in self.workers:
            worker.stop()

    def alive(self) -> bool:
        return all(w.thread.is_alive() for w in self.workers)

    def stuck(self) -> list[str]:
        """Sources whose run has lasted longer than run_timeout."""
        return [w.source.name for w in self.workers if w.state.running_for(w.source.name) > self.config.run_timeout]
