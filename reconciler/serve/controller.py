"""One worker thread per source: runs never interleave, pushes coalesce, a jittered timer polls.

A run fetches the repository, checks out the commit (the pushed one, or the branch head when polling),
and calls the engine: apply, or at an already-applied commit without self-heal, plan and report drift.
"""
from __future__ import annotations

import os
import random
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from ..engine import run as engine
from ..engine.plans import Plan
from ..errors import ReconcileError
from ..prefect.api import PrefectClient
from . import config as config_mod
from .config import ServeConfig, SourceConfig
from .gitsync import Checkout
from .state import ACTION_KINDS, RunRecord, State, _now
from .webhooks import redact

JITTER = 0.1


@dataclass(frozen=True)
class Request:
    trigger: str                   # webhook | poll | startup
    commit: Optional[str] = None   # None: whatever the branch points at when the run starts
    delivery: Optional[str] = None


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
        self._clock = clock
        self._cond = threading.Condition()
        self._pending: Optional[Request] = Request("startup")     # converge once on start
        self._stopping = False
        self._next_poll = self._clock() + self._interval()
        self.thread = threading.Thread(target=self._loop, name=f"reconcile-{source.name}", daemon=True)
        state.set_info(source.name, repo=redact(source.repo), branch=source.branch, path=source.path,
                       self_heal=self.self_heal, poll_interval_s=self.interval, applied_commit=self.applied)

    # ------------------------------------------------------------------ control
    def start(self) -> None:
        self.thread.start()

    def submit(self, request: Request) -> None:
        """Queue a run. A push replaces any queued run: the newest pushed commit wins."""
        with self._cond:
            if self._pending is None or request.trigger == "webhook":
                self._pending = request
            self.state.set_info(self.source.name, queued=self._pending.commit or self._pending.trigger)
            self._cond.notify()

    def request_stop(self) -> None:
        """Drop what is queued (logged) and let the run in progress be the last."""
        with self._cond:
            self._stopping = True
            dropped, self._pending = self._pending, None
            self._cond.notify()
        if dropped is not None and dropped.trigger == "webhook":
            self.state.log({"event": "dropped", "source": self.source.name, "trigger": dropped.trigger,
                            "commit": dropped.commit, "reason": "shutting down; the next start applies the "
                                                               "branch head"})

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
                self.state.set_info(self.source.name, queued=None)
            assert request is not None
            self.run(request)
            self._next_poll = self._clock() + self._interval()

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

    def _run(self, request: Request, record: RunRecord) -> None:
        url, key = config_mod.api_url(self.source), config_mod.api_key(self.source)
        head = self.checkout.fetch()
        commit = request.commit or head
        record.commit = commit
        if request.commit and not self.checkout.on_branch(commit, head):
            record.result = "skipped"
            record.note = (f"commit {commit[:12]} is not on branch {self.source.branch} any more (force-pushed "
                           f"away?); the branch head {head[:12]} is applied by its own push or the next poll")
            return
        if (self.applied and commit != self.applied and self.checkout.is_ancestor(commit, self.applied)
                and self.checkout.on_branch(self.applied, head)):     # (after a rollback it is not: apply)
            record.result = "skipped"
            record.note = f"superseded: the newer commit {self.applied[:12]} is already applied"
            return
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
