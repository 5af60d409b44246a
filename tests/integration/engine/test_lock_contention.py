"""Two processes, one source: the lease lock in the real Prefect API (scenario 5).

The holder is a separate Python process that takes the lock with `reconciler.engine.lock.Lock` and keeps
it until its stdin gets a line; the contender is `reconcile apply` run as a real process.
"""
from __future__ import annotations

import datetime as dt
import queue
import subprocess
import sys
import textwrap
import threading

import pytest

from integration.helpers import Server, cli_env, manifest, reconcile, start_reconcile, write_manifest
from reconciler.engine.source import doc_slug

HOLDER = textwrap.dedent("""
    import sys
    from reconciler.prefect.api import PrefectClient
    from reconciler.engine.lock import Lock

    url, source = sys.argv[1], sys.argv[2]
    with PrefectClient(url) as client:
        with Lock(client, source, ttl=600) as lease:
            print(lease.holder, flush=True)
            print(lease.expires.isoformat(), flush=True)
            sys.stdin.readline()
    print("released", flush=True)
""")


class Holder:
    """A real process holding the lock of `source` until `release()`."""

    def __init__(self, api_url: str, source: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", HOLDER, api_url, source], env=cli_env(api_url),
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
        holder.proc.kill()                    # kill -9: no release, the lease would run for 10 minutes
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
