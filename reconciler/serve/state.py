"""What the controller has done: runs per source and webhook deliveries, as /status JSON and /metrics text.

Thread-safe: workers record, HTTP handlers read.
"""
from __future__ import annotations

import collections
import datetime as dt
import json
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Optional, TextIO

KEEP_RUNS = 20
KEEP_DELIVERIES = 50
ACTION_KINDS = ("upload", "create", "update", "delete", "adopt")


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class RunRecord:
    source: str
    trigger: str                  # webhook | poll | startup
    commit: Optional[str]
    started: str = field(default_factory=_now)
    started_at: float = field(default_factory=time.time)
    duration_s: float = 0.0
    finished: Optional[str] = None
    result: str = "running"       # applied | in-sync | drift | skipped | failed | running
    actions: dict[str, int] = field(default_factory=dict)   # what was (or, without self-heal, would be) done
    drift: int = 0                # deployments that differed from git at a commit already applied
    errors: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)         # e.g. "update etl/nightly: description"
    note: Optional[str] = None                               # why a run was skipped
    delivery: Optional[str] = None
    coalesced: list[str] = field(default_factory=list)       # other pushed commits queued with this run's (older)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("started_at")
        out["duration_s"] = round(self.duration_s, 3)
        return out


class State:
    def __init__(self, sources: list[str], log: TextIO = sys.stdout) -> None:
        self._lock = threading.Lock()
        self._log = log
        self.runs: dict[str, collections.deque[RunRecord]] = {s: collections.deque(maxlen=KEEP_RUNS) for s in sources}
        self.totals: dict[tuple[str, str], int] = collections.Counter()        # (source, result) → runs
        self.action_totals: dict[tuple[str, str], int] = collections.Counter()  # (source, kind) → actions
        self.deliveries: collections.deque[dict[str, Any]] = collections.deque(maxlen=KEEP_DELIVERIES)
        self.delivery_totals: dict[str, int] = collections.Counter()           # outcome → count
        self.info: dict[str, dict[str, Any]] = {s: {} for s in sources}        # per-source live facts

    # ------------------------------------------------------------------ recording
    def started(self, record: RunRecord) -> None:
        with self._lock:
            self.runs[record.source].appendleft(record)

    def finished(self, record: RunRecord) -> None:
        with self._lock:
            self.totals[(record.source, record.result)] += 1
            if record.result == "applied":
                for kind, n in record.actions.items():
                    self.action_totals[(record.source, kind)] += n
        self.log({"event": "run", **record.to_json()})

    def delivery(self, outcome: str, **facts: Any) -> None:
        entry = {"at": _now(), "outcome": outcome, **facts}
        with self._lock:
            self.deliveries.appendleft(entry)
            self.delivery_totals[outcome] += 1
        self.log({"event": "webhook", **entry})

    def set_info(self, source: str, **facts: Any) -> None:
        with self._lock:
            self.info[source].update(facts)

    def log(self, line: dict[str, Any]) -> None:
        text = json.dumps({"ts": _now(), **line}, default=str, sort_keys=False)
        with self._lock:
            self._log.write(text + "\n")
            self._log.flush()

    def running_for(self, source: str) -> float:
        """Seconds the source's current run has lasted (0 when idle)."""
        with self._lock:
            runs = self.runs[source]
            return time.time() - runs[0].started_at if runs and runs[0].result == "running" else 0.0

    # ------------------------------------------------------------------ reading
    def status(self) -> dict[str, Any]:
        with self._lock:
            return {
                "sources": {name: {**self.info[name], "runs": [r.to_json() for r in runs]}
                            for name, runs in self.runs.items()},
                "deliveries": list(self.deliveries),
            }

    def metrics(self) -> str:
        with self._lock:
            lines: list[str] = []

            def metric(name: str, kind: str, help_text: str, samples: list[tuple[dict[str, str], float]]) -> None:
                lines.append(f"# HELP {name} {help_text}")
                lines.append(f"# TYPE {name} {kind}")
                for labels, value in samples:
                    label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
                    lines.append(f"{name}{{{label_text}}} {_number(value)}" if label_text else f"{name} {_number(value)}")

            last = {s: next((r for r in runs if r.result != "running"), None) for s, runs in self.runs.items()}
            done = {s: r for s, r in last.items() if r is not None}
            metric("reconcile_last_run_timestamp_seconds", "gauge", "When the last finished run started (Unix time).",
                   [({"source": s}, r.started_at) for s, r in done.items()])
            metric("reconcile_last_run_duration_seconds", "gauge", "How long the last finished run took.",
                   [({"source": s}, r.duration_s) for s, r in done.items()])
            metric("reconcile_last_run_success", "gauge", "1 if the last finished run succeeded, else 0.",
                   [({"source": s}, 0.0 if r.result == "failed" else 1.0) for s, r in done.items()])
            metric("reconcile_last_run_result", "gauge", "The result of the last finished run (1 for its result).",
                   [({"source": s, "result": r.result}, 1.0) for s, r in done.items()])
            metric("reconcile_drift_deployments", "gauge",
                   "Deployments that differed from git at an already-applied commit, at the last run.",
                   [({"source": s}, float(r.drift)) for s, r in done.items()])
            metric("reconcile_running", "gauge", "1 while a run is in progress.",
                   [({"source": s}, 1.0 if runs and runs[0].result == "running" else 0.0)
                    for s, runs in self.runs.items()])
            metric("reconcile_runs_total", "counter", "Finished runs by result.",
                   [({"source": s, "result": res}, n) for (s, res), n in sorted(self.totals.items())])
            metric("reconcile_actions_total", "counter", "Changes applied, by kind.",
                   [({"source": s, "kind": k}, n) for (s, k), n in sorted(self.action_totals.items())])
            metric("reconcile_webhook_deliveries_total", "counter", "Webhook requests by outcome.",
                   [({"outcome": o}, n) for o, n in sorted(self.delivery_totals.items())])
            return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(float(value))
