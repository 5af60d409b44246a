"""`reconcile watch DIR` as a real process against the real server: plans (or applies) after real file edits.

The process's output is read by a thread; every wait is bounded and looks for a line, never a sleep.
"""
from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from integration.helpers import Server, cli_env, edited, manifest, reconcile, write_manifest

pytestmark = pytest.mark.integration

WAIT = 60.0      # seconds: a bound for one re-plan after an edit, not an expectation


class Watcher:
    """`reconcile watch ARGS` with stdout and stderr merged, read line by line."""

    def __init__(self, api_url: str, *args: object, cwd: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "reconciler", "watch", *map(str, args)], cwd=str(cwd),
                                     env=cli_env(api_url), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._queue: queue.Queue = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, pattern: str, since: int = 0) -> int:
        """Index of the first line at or after `since` matching `pattern` (a regular expression)."""
        wanted = re.compile(pattern)
        for index in range(since, len(self.lines)):
            if wanted.search(self.lines[index]):
                return index
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                raise AssertionError(f"watch exited ({self.proc.wait()}) before {pattern!r}:\n{self.output}")
            self.lines.append(line)
            if wanted.search(line):
                return len(self.lines) - 1
        raise AssertionError(f"no line matching {pattern!r} within {WAIT}s:\n{self.output}")

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=WAIT)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=10)
        while not self._queue.empty():
            line = self._queue.get()
            if line is not None:
                self.lines.append(line)
        return code

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def server(prefect_api_url):
    with Server(prefect_api_url) as srv:
        yield srv


@pytest.fixture
def watchers():
    started: list[Watcher] = []
    yield started
    for watcher in started:
        watcher.close()


HEADER = r"^\[\d\d:\d\d:\d\d\] "


def test_watch_replans_after_each_edit_and_survives_a_broken_manifest(tmp_path, prefect_api_url, server, unique,
                                                                      watchers):
    flow, source = f"watch-{unique}", f"it/watch-{unique}"
    doc = manifest(flow, "nightly")
    path = write_manifest(tmp_path / "deployments", doc)
    applied = reconcile(prefect_api_url, "apply", ".", "--source", source, cwd=tmp_path)
    assert applied.returncode == 0, applied

    watcher = Watcher(prefect_api_url, ".", "--source", source, "--debounce", "100", cwd=tmp_path)
    watchers.append(watcher)
    start = watcher.wait_for(HEADER + r"watching \. \(plan on every change")
    at = watcher.wait_for(r"^No changes\. 1 deployment in sync\.", start)

    write_manifest(tmp_path / "deployments", edited(doc, parameters={"n": 2}))
    at = watcher.wait_for(HEADER + r"changed: deployments/nightly-deployment\.yaml \(modified\)$", at)
    at = watcher.wait_for(r"parameters\.n: 1 → 2$", at)
    watcher.wait_for(r"^Plan: 0 to create, 1 to update", at)

    path.write_text(path.read_text() + "tags: [oops\n", encoding="utf-8")
    at = watcher.wait_for(r"^error: deployments/nightly-deployment\.yaml:\d+:\d+: ", at)
    at = watcher.wait_for(r"^1 error\(s\); nothing was changed\. Waiting for the next change\.$", at)
    assert watcher.proc.poll() is None

    write_manifest(tmp_path / "deployments", edited(doc, parameters={"n": 3}))
    at = watcher.wait_for(r"parameters\.n: 1 → 3$", at)
    watcher.wait_for(r"^Plan: 0 to create, 1 to update", at)

    assert watcher.stop(signal.SIGTERM) == 0, watcher.output
    assert watcher.lines[-1] == "stopped watching"
    assert server.deployment(flow, "nightly")["parameters"] == {"n": 1}     # plan only: nothing written


def test_watch_apply_lands_each_change_on_the_server(tmp_path, prefect_api_url, server, unique, watchers):
    flow, source = f"watch-apply-{unique}", f"it/watch-apply-{unique}"
    doc = manifest(flow, "nightly")
    write_manifest(tmp_path / "deployments", doc)

    watcher = Watcher(prefect_api_url, ".", "--apply", "--source", source, "--debounce", "100", cwd=tmp_path)
    watchers.append(watcher)
    at = watcher.wait_for(r"^Apply complete: 1 created", 0)
    assert server.deployment(flow, "nightly")["parameters"] == {"n": 1}

    write_manifest(tmp_path / "deployments", edited(doc, parameters={"n": 5}))
    at = watcher.wait_for(HEADER + r"changed: deployments/nightly-deployment\.yaml", at)
    watcher.wait_for(r"^Apply complete: 0 created, 1 updated", at)
    assert server.deployment(flow, "nightly")["parameters"] == {"n": 5}

    assert watcher.stop(signal.SIGINT) == 0, watcher.output
    assert "Traceback" not in watcher.output
