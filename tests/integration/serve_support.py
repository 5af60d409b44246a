"""A real `reconcile serve` process, a real origin repository, and signed webhook deliveries."""
from __future__ import annotations

import hashlib
import hmac
import json
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Optional

import httpx
import yaml

from integration.helpers import cli_env, manifest, write_manifest

SECRET = "it-webhook-secret"


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=60,
                          env={"GIT_AUTHOR_NAME": "it", "GIT_AUTHOR_EMAIL": "it@example.com",
                               "GIT_COMMITTER_NAME": "it", "GIT_COMMITTER_EMAIL": "it@example.com",
                               "PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": str(cwd)})
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()


class Origin:
    """A bare repository (the 'remote') and a clone to commit and push from."""

    def __init__(self, root: Path, flow: str) -> None:
        self.bare = root / "origin.git"
        self.work = root / "work"
        self.flow = flow
        git(root, "init", "-q", "--bare", "-b", "main", str(self.bare))
        git(root, "clone", "-q", str(self.bare), str(self.work))
        git(self.work, "checkout", "-q", "-b", "main")

    def write(self, name: str = "one", **overrides: Any) -> Path:
        return write_manifest(self.work / "deploy", manifest(self.flow, name, **overrides))

    def commit(self, message: str, branch: str = "main", push: bool = True) -> str:
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "-m", message)
        sha = git(self.work, "rev-parse", "HEAD")
        if push:
            git(self.work, "push", "-q", "origin", f"HEAD:refs/heads/{branch}")
        return sha


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def github_push(origin: Origin, commit: str, branch: str = "main") -> dict[str, Any]:
    return {"ref": f"refs/heads/{branch}", "before": "0" * 40, "after": commit,
            "repository": {"full_name": "it/origin", "clone_url": str(origin.bare)}}


def signed(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Serve:
    """`reconcile serve CONFIG` as a real process; its JSON log lines are collected as they come."""

    def __init__(self, root: Path, api_url: str, origin: Origin, *args: str, poll_interval: float = 0,
                 repo: Optional[str] = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = root / "serve.yaml"
        self.config.write_text(yaml.safe_dump({
            "listen": f"127.0.0.1:{self.port}", "workdir": str(root / "serve-work"), "poll_interval": poll_interval,
            "sources": [{"name": f"serve-{origin.flow}", "repo": repo or str(origin.bare), "branch": "main",
                         "path": "deploy", "api_url": api_url}],
        }))
        self.source = f"serve-{origin.flow}"
        env = cli_env(None, RECONCILE_WEBHOOK_SECRET=SECRET)
        self.proc = subprocess.Popen([sys.executable, "-m", "reconciler", "serve", str(self.config), *args],
                                     env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.http = httpx.Client(base_url=self.url, timeout=10)
        self.wait(lambda: self._healthy(), what="/healthz to answer")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def _healthy(self) -> bool:
        try:
            return self.http.get("/healthz").status_code == 200
        except httpx.TransportError:
            assert self.proc.poll() is None, "serve exited:\n" + "\n".join(self.lines)
            return False

    def log(self) -> list[dict[str, Any]]:
        out = []
        for line in list(self.lines):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def wait(self, predicate: Callable[[], Any], what: str, timeout: float = 90) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; serve said:\n" + "\n".join(self.lines[-40:]))

    def status(self) -> dict[str, Any]:
        return self.http.get("/status").json()

    def runs(self) -> list[dict[str, Any]]:
        """Finished runs, oldest first."""
        runs = self.status()["sources"][self.source]["runs"]
        return [r for r in reversed(runs) if r["result"] != "running"]

    def wait_runs(self, count: int, timeout: float = 90) -> list[dict[str, Any]]:
        return self.wait(lambda: (lambda r: r if len(r) >= count else None)(self.runs()),
                         what=f"{count} finished run(s)", timeout=timeout)

    def idle(self) -> bool:
        """No run in progress and nothing queued (the worker says so under its queue's lock)."""
        return self.status()["sources"][self.source].get("idle") is True

    def post(self, payload: Any, event: str = "push", delivery: Optional[str] = None, signature: Any = "good",
             headers: Optional[dict[str, str]] = None, client: Optional[httpx.Client] = None) -> httpx.Response:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        sent = {"Content-Type": "application/json", "X-GitHub-Event": event,
                "X-GitHub-Delivery": delivery or str(uuid.uuid4())}
        if signature == "good":
            sent["X-Hub-Signature-256"] = signed(body)
        elif signature is not None:
            sent["X-Hub-Signature-256"] = signature
        sent.update(headers or {})
        return (client or self.http).post("/webhook", content=body, headers=sent)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=60)
        finally:
            self.http.close()
        self._reader.join(5)
        return code


class Deliverer:
    """Push deliveries posted by several threads at once, each taking a random one of those waiting: the order
    they reach serve has nothing to do with the order the commits were pushed in (as with a real git host)."""

    def __init__(self, serve: Serve, threads: int, rng: random.Random, hold: int = 1) -> None:
        self.serve = serve
        self.rng = rng
        self.hold = hold                               # deliver only once this many wait (or all are added)
        self.waiting: list[dict[str, Any]] = []
        self.sent: list[tuple[str, int]] = []          # (commit, status), in the order the answers came
        self._cond = threading.Condition()
        self._closed = False
        self._threads = [threading.Thread(target=self._work, daemon=True) for _ in range(threads)]

    def add(self, payload: dict[str, Any]) -> None:
        with self._cond:
            self.waiting.append(payload)
            self._cond.notify()

    def start(self) -> "Deliverer":
        for thread in self._threads:
            thread.start()
        return self

    def finish(self, timeout: float = 120) -> list[tuple[str, int]]:
        """Deliver what is still waiting, then return every (commit, status)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout)
            assert not thread.is_alive(), "a delivery thread did not finish"
        return self.sent

    def _work(self) -> None:
        with httpx.Client(base_url=self.serve.url, timeout=30) as client:
            while True:
                with self._cond:
                    while len(self.waiting) < self.hold and not self._closed:
                        self._cond.wait()
                    if not self.waiting:
                        return
                    payload = self.waiting.pop(self.rng.randrange(len(self.waiting)))
                try:
                    status = self.serve.post(payload, client=client).status_code
                except httpx.HTTPError as exc:       # reported by the test as a delivery that was not accepted
                    status = -1
                    self.serve.lines.append(f"delivery of {payload['after']} failed: {exc!r}")
                with self._cond:
                    self.sent.append((payload["after"], status))
