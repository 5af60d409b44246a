"""Two processes, one source: the lease lock in the real Prefect API (scenario 5).

The holder is a separate Python process that takes the lock with `reconciler.engine.lock.Lock` and keeps
it (renewing it) until its stdin gets a line; the contender is `reconcile apply` run as a real process.
A holder can pretend to run on another machine, so that only its lease, not the pid check, frees its lock.
"""
from __future__ import annotations

import datetime as dt
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from integration.helpers import Server, cli_env, manifest, reconcile, start_reconcile, write_manifest
from reconciler.engine.source import doc_slug

HOLDER = textwrap.dedent("""
    import sys
    from reconciler.prefect.api import PrefectClient
    from reconciler.engine import lock

    url, source, ttl, elsewhere = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4] == "elsewhere"
    if elsewhere:  # as if on another machine (a CI runner): its pid means nothing here
        lock.machine_id = lambda: "ci-runner-elsewhere boot 0 pidns 0"
    with PrefectClient(url) as client:
        with lock.Lock(client, source, ttl=ttl) as lease:
            print(lease.holder, flush=True)
            print(lease.expires.isoformat(), flush=True)
            sys.stdin.readline()
    print("released", flush=True)
""")


class Holder:
    """A real process holding the lock of `source` until `release()`."""

    def __init__(self, api_url: str, source: str, ttl: float = 600, elsewhere: bool = False) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", HOLDER, api_url, source, str(ttl),
                                      "elsewhere" if elsewhere else "here"], env=cli_env(api_url),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.holder = self.proc.stdout.readline().strip()
        self.expires = self.proc.stdout.readline().strip()
        if not self.expires:
            self.proc.kill()
            raise AssertionError(f"the holder did not get the lock: {self.proc.stderr.read()}")

    def release(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write("\n")
            self.proc.stdin.flush()
            out, err = self.proc.communicate(timeout=60)
            assert "released" in out, err

    def __enter__(self) -> "Holder":
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.release()
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def server(prefect_api_url):
    with Server(prefect_api_url) as srv:
        yield srv


def test_apply_while_another_process_holds_the_lock_exits_1_naming_the_holder(prefect_api_url, server, tmp_path,
                                                                              unique):
    flow, source = f"it-lock-{unique}", f"it-lock-{unique}"
    root = tmp_path / "deployments"
    write_manifest(root, manifest(flow, "contended"))

    with Holder(prefect_api_url, source) as holder:
        assert f"pid {holder.proc.pid}" in holder.holder
        run = reconcile(prefect_api_url, "apply", root, "--source", source, cwd=tmp_path)
        assert run.returncode == 1, run
        assert len(run.messages) == 1, run
        line = run.messages[0]
        assert line.startswith("error: ") and "locked" in line, line
        assert holder.holder in line and holder.expires in line, line
        assert "--lock-timeout" in line
        assert server.flow(flow) is None and server.deployments(flow) == {}
        assert server.inventory(source) is None
        assert len(server.locks(source)) == 1, "the holder's lock is untouched"

    assert server.locks(source) == []
    run = reconcile(prefect_api_url, "apply", root, "--source", source, cwd=tmp_path)
    assert run.returncode == 0, run
    assert set(server.deployments(flow)) == {"contended"}


def test_lock_timeout_waits_for_the_holder_and_then_applies(prefect_api_url, server, tmp_path, unique):
    flow, source = f"it-lock-wait-{unique}", f"it-lock-wait-{unique}"
    root = tmp_path / "deployments"
    write_manifest(root, manifest(flow, "patient"))

    with Holder(prefect_api_url, source) as holder:
        waiting = start_reconcile(prefect_api_url, "apply", root, "--source", source, "--lock-timeout", "120", "-v",
                                  cwd=tmp_path)
        lines: "queue.Queue[str]" = queue.Queue()
        stderr_lines: list[str] = []

        def pump() -> None:
            for line in waiting.stderr:
                stderr_lines.append(line)
                lines.put(line)
            lines.put("")  # EOF

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            # the lock attempt is refused (409) while the holder has it: only then release
            while True:
                line = lines.get(timeout=60)
                assert line, f"apply ended before it tried the lock: {''.join(stderr_lines)}"
                if line.startswith("POST /api/block_documents/ 409"):
                    break
            assert waiting.poll() is None, "apply gave up although --lock-timeout was given"
            assert server.deployments(flow) == {}
            holder.release()
            out = waiting.stdout.read()
            code = waiting.wait(timeout=120)
        finally:
            if waiting.poll() is None:
                waiting.kill()
                waiting.wait()
        reader.join(timeout=10)
    assert code == 0, (out, "".join(stderr_lines))
    assert "created" in out
    assert set(server.deployments(flow)) == {"patient"}
    assert server.locks(source) == []


def test_a_stale_lock_is_broken_and_the_output_says_so(prefect_api_url, server, tmp_path, unique):
    flow, source = f"it-lock-stale-{unique}", f"it-lock-stale-{unique}"
    root = tmp_path / "deployments"
    write_manifest(root, manifest(flow, "after-crash"))
    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
    # what a crashed apply leaves behind: a lock document whose lease ran out an hour ago
    server.create_json_document(f"reconcile-lock-{doc_slug(source)}", {
        "source": source, "holder": "ci@runner-7 pid 4242", "token": "crashed",
        "started": (past - dt.timedelta(minutes=10)).isoformat(), "expires": past.isoformat()})
    assert len(server.locks(source)) == 1

    run = reconcile(prefect_api_url, "apply", root, "--source", source, cwd=tmp_path)
    assert run.returncode == 0, run
    notes = [line for line in run.messages if "stale lock" in line]
    assert len(notes) == 1, run
    assert "ci@runner-7 pid 4242" in notes[0] and past.isoformat() in notes[0]
    assert set(server.deployments(flow)) == {"after-crash"}
    assert server.locks(source) == []


def test_the_lock_of_a_killed_process_on_this_machine_is_broken_at_once(prefect_api_url, server, tmp_path, unique):
    flow, source = f"it-lock-killed-{unique}", f"it-lock-killed-{unique}"
    root = tmp_path / "deployments"
    write_manifest(root, manifest(flow, "after-kill"))
    with Holder(prefect_api_url, source) as holder:
        holder.proc.kill()                    # kill -9: no release, the lease (10 minutes here) would run on
        holder.proc.wait()
        run = reconcile(prefect_api_url, "apply", root, "--source", source, cwd=tmp_path)
    assert run.returncode == 0, run
    assert any(f"its holder {holder.holder} no longer runs" in line for line in run.messages), run
    assert set(server.deployments(flow)) == {"after-kill"}
    assert server.locks(source) == []


def test_a_live_lock_of_another_source_does_not_block(prefect_api_url, server, tmp_path, unique):
    flow = f"it-lock-other-{unique}"
    root = tmp_path / "deployments"
    write_manifest(root, manifest(flow, "independent"))
    with Holder(prefect_api_url, f"it-lock-other-a-{unique}"):
        run = reconcile(prefect_api_url, "apply", root, "--source", f"it-lock-other-b-{unique}", cwd=tmp_path)
        assert run.returncode == 0, run
    assert set(server.deployments(flow)) == {"independent"}


def test_a_converged_apply_does_not_need_the_lock(prefect_api_url, server, tmp_path, unique):
    """Nothing to change: apply exits 0 without waiting for (or touching) a held lock."""
    flow, source = f"it-lock-noop-{unique}", f"it-lock-noop-{unique}"
    root = tmp_path / "deployments"
    write_manifest(root, manifest(flow, "settled"))
    assert reconcile(prefect_api_url, "apply", root, "--source", source, cwd=tmp_path).returncode == 0
    with Holder(prefect_api_url, source):
        run = reconcile(prefect_api_url, "apply", root, "--source", source, "-v", cwd=tmp_path)
        assert run.returncode == 0, run
        assert run.writes == []
        assert len(server.locks(source)) == 1


def lock_value(server: Server, source: str) -> dict:
    [doc] = server.locks(source)
    return doc["data"]["value"]


def wait_for(condition, what: str, timeout: float = 60.0):
    """Poll until condition() is truthy (returned); fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.1)


def test_a_holder_killed_on_another_machine_frees_the_lock_when_its_short_lease_ends(prefect_api_url, server,
                                                                                      tmp_path, unique):
    """kill -9 on a CI runner: no release, no pid to check; the lease, renewed while it ran, ends ttl later."""
    flow, source = f"it-lock-sigkill-{unique}", f"it-lock-sigkill-{unique}"
    root = tmp_path / "deployments"
    write_manifest(root, manifest(flow, "after-sigkill"))
    ttl = 4.0
    with Holder(prefect_api_url, source, ttl=ttl, elsewhere=True) as holder:
        first = lock_value(server, source)
        assert first["holder"] == holder.holder and first["ttl"] == ttl
        started = dt.datetime.fromisoformat(first["started"])
        # alive, it renews: the lock outlives its first lease, with the same token and start
        renewed = wait_for(lambda: (v := lock_value(server, source))
                           and dt.datetime.fromisoformat(v["renewed"]) >= started + dt.timedelta(seconds=ttl) and v,
                           "the holder renewed its lease past one ttl")
        assert renewed["token"] == first["token"] and renewed["started"] == first["started"]
        run = reconcile(prefect_api_url, "apply", root, "--source", source, cwd=tmp_path)
        assert run.returncode == 1 and "locked by" in run.messages[0], run

        holder.proc.send_signal(signal.SIGKILL)
        holder.proc.wait()
        left = lock_value(server, source)          # what the killed holder last wrote
        assert left["token"] == first["token"] and left["holder"] == holder.holder
        expires = dt.datetime.fromisoformat(left["expires"])
        assert expires - dt.datetime.fromisoformat(left["renewed"]) == dt.timedelta(seconds=ttl)

        run = reconcile(prefect_api_url, "apply", root, "--source", source, "--lock-timeout", "120", cwd=tmp_path)
    assert run.returncode == 0, run
    notes = [line for line in run.messages if "lock" in line]
    # broken as stale (its recorded expiry passed), not as a dead process of this machine
    assert notes == [f"breaking a stale lock for {source}: held by {holder.holder} since {left['started']}, "
                     f"expired {left['expires']}"], run
    assert set(server.deployments(flow)) == {"after-sigkill"}
    assert server.locks(source) == []


CONTENDER = textwrap.dedent("""
    import random, sys, time
    from reconciler.prefect.api import PrefectClient
    from reconciler.engine.lock import Lock
    from reconciler.engine.inventory import JsonDocs

    url, source, log, me = sys.argv[1:5]

    def note(line):
        with open(log, "a", encoding="utf-8") as f:   # O_APPEND: one write per line
            f.write(line + "\\n")

    with PrefectClient(url) as client:
        JsonDocs(client).ids()
        print("ready", flush=True)
        for line in sys.stdin:
            round_ = line.strip()
            with Lock(client, source, ttl=5, timeout=120, say=lambda text: print(text, file=sys.stderr)) as lease:
                note(f"start {me} {round_} {lease.token}")
                time.sleep(random.uniform(0.0, 0.3))
                note(f"end {me} {round_} {lease.token}")
            print(f"done {round_}", flush=True)
""")


def test_two_concurrent_acquirers_never_hold_the_lock_at_once(prefect_api_url, server, tmp_path, unique):
    """10 rounds: both processes go for the lock at the same moment; every other round they also race to break
    a stale lock.  Each records entering and leaving its critical section; no two sections overlap."""
    source = f"it-lock-race-{unique}"
    log = tmp_path / "sections.log"
    log.touch()
    procs = [subprocess.Popen([sys.executable, "-c", CONTENDER, prefect_api_url, source, str(log), me],
                              env=cli_env(prefect_api_url), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for me in ("a", "b")]
    try:
        for proc in procs:
            line = proc.stdout.readline().strip()
            assert line == "ready", (line, proc.stderr.read() if not line else "")
        for round_ in range(10):
            if round_ % 2:
                past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
                server.create_json_document(f"reconcile-lock-{doc_slug(source)}", {
                    "source": source, "holder": "ci@crashed pid 1", "token": f"crashed-{round_}",
                    "started": past.isoformat(), "expires": (past + dt.timedelta(minutes=1)).isoformat()})
            for proc in procs:
                proc.stdin.write(f"{round_}\n")
            for proc in procs:
                proc.stdin.flush()
            for proc in procs:
                line = proc.stdout.readline().strip()
                assert line == f"done {round_}", (line, proc.stderr.read() if not line else "")
    finally:
        for proc in procs:
            proc.stdin.close()
        for proc in procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    errors = {me: proc.stderr.read() for me, proc in zip("ab", procs)}
    assert [proc.returncode for proc in procs] == [0, 0], errors

    events = [line.split() for line in log.read_text(encoding="utf-8").splitlines()]
    assert len(events) == 40, events
    tokens = set()
    for enter, leave in zip(events[0::2], events[1::2]):   # start, end, start, end ...: never start, start
        assert enter[0] == "start" and leave[0] == "end" and enter[1:] == leave[1:], events
        tokens.add(enter[3])
    assert len(tokens) == 20, "each section under its own lock"
    rounds = sorted((e[2], e[1]) for e in events if e[0] == "start")
    assert rounds == sorted((str(r), me) for r in range(10) for me in "ab")
    broken = [line for text in errors.values() for line in text.splitlines() if "breaking a stale lock" in line]
    assert 5 <= len(broken) <= 10, errors          # each planted stale lock was broken, by one or both
    assert server.locks(source) == []
