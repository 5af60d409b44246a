"""The -v request log under concurrency: each request is one line, written whole, never merged with another."""
from __future__ import annotations

import concurrent.futures as cf
import re
import threading
import time

import httpx

from reconciler.prefect.api import PrefectClient

LINE = re.compile(r"^(GET|POST) /api/[a-z0-9/_-]+ \d{3} \d+ms$")


class SlowStream:
    """A text stream that records each write() call and yields the CPU in the middle of every one, so two
    threads writing at once would interleave their text."""

    def __init__(self) -> None:
        self.writes: list[str] = []
        self.text = ""
        self._guard = threading.Lock()

    def write(self, s: str) -> int:
        for ch in s:
            with self._guard:
                self.text += ch
            time.sleep(0)   # let another thread run between characters
        self.writes.append(s)
        return len(s)

    def flush(self) -> None:
        pass


def test_concurrent_requests_each_log_one_whole_line():
    def answer(request: httpx.Request) -> httpx.Response:
        time.sleep(0.001)
        return httpx.Response(200, json={"ok": True})

    log = SlowStream()
    client = PrefectClient("http://prefect.test/api", transport=httpx.MockTransport(answer), log=log)
    paths = [f"deployments/{i:04d}" for i in range(200)]
    with cf.ThreadPoolExecutor(16) as pool:
        list(pool.map(client.get, paths))
    lines = log.text.split("\n")
    assert lines[-1] == ""                      # the log ends with a newline
    assert len(lines[:-1]) == len(paths)        # one line per request, none merged
    assert all(LINE.match(line) for line in lines[:-1]), [l for l in lines[:-1] if not LINE.match(l)][:3]
    assert sorted(line.split()[1] for line in lines[:-1]) == [f"/api/{p}" for p in paths]
    assert all(w.endswith("\n") and w.count("\n") == 1 for w in log.writes)   # one write per line


def test_a_path_with_a_control_byte_is_logged_escaped():
    log = SlowStream()
    client = PrefectClient("http://prefect.test/api",
                           transport=httpx.MockTransport(lambda r: httpx.Response(200, json={})), log=log)
    client.get("block_types/slug/json/block_documents/name/evil%1B%5B2J")
    assert "\x1b" not in log.text and "evil\\x1b[2J" in log.text
