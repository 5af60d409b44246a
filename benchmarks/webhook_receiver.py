"""How `reconcile serve` holds up under a stream of webhook deliveries.

Starts a real `reconcile serve` on loopback (its source is a local bare repository; its API URL points at a
closed port unless RECONCILE_BENCH_API_URL is set, so runs fail fast and only the receiving side is measured),
then sends N signed GitHub push deliveries, each with a new delivery id and commit, one after another.

Prints, as ratios against a baseline measured in the same run (these machines are shared and noisy):
  - the median /webhook latency (verify HMAC, parse, dedupe, queue) against the median /healthz latency;
  - the process's resident memory after N deliveries against its memory after the first 100: the delivery-id
    cache, the run history and the delivery log are bounded, so this should stay near 1.0;
  - runs started against deliveries sent: pushes that arrive during a run coalesce, so runs ≪ deliveries.

    python benchmarks/webhook_receiver.py [--deliveries 3000]
"""
from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

SECRET = "bench-secret"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deliveries", type=int, default=3000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="reconcile-bench-"))
    bare = work / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    port = free_port()
    config = work / "serve.yaml"
    api_url = os.environ.get("RECONCILE_BENCH_API_URL", "http://127.0.0.1:9/api")
    config.write_text(json.dumps({"listen": f"127.0.0.1:{port}", "workdir": str(work / "w"), "poll_interval": 0,
                                  "sources": [{"name": "bench", "repo": str(bare), "api_url": api_url}]}))
    env = {**os.environ, "RECONCILE_WEBHOOK_SECRET": SECRET}
    proc = subprocess.Popen([sys.executable, "-m", "reconciler", "serve", str(config)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
    try:
        for _ in range(300):
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)

        def timed(fn) -> float:
            started = time.perf_counter()
            fn()
            return time.perf_counter() - started

        health = [timed(lambda: client.get("/healthz")) for _ in range(300)]
        hooks: list[float] = []
        memory_at_100 = 0
        for i in range(args.deliveries):
            body = json.dumps({"ref": "refs/heads/main", "after": hashlib.sha1(str(i).encode()).hexdigest(),
                               "repository": {"clone_url": str(bare)}}).encode()
            headers = {"X-GitHub-Event": "push", "X-GitHub-Delivery": str(uuid.uuid4()), "Content-Type":
                       "application/json",
                       "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()}
            hooks.append(timed(lambda: client.post("/webhook", content=body, headers=headers)))
            if i == 99:
                memory_at_100 = rss_kib(proc.pid)
        memory_end = rss_kib(proc.pid)
        runs = client.get("/metrics").text
        total_runs = sum(int(float(line.rsplit(" ", 1)[1])) for line in runs.splitlines()
                         if line.startswith("reconcile_runs_total"))
        h, w = statistics.median(health), statistics.median(hooks)
        print(f"deliveries sent:                 {args.deliveries}")
        print(f"median /healthz (baseline):      {h * 1000:.2f} ms")
        print(f"median /webhook:                 {w * 1000:.2f} ms   ratio to baseline {w / h:.2f}")
        print(f"resident memory after 100:       {memory_at_100} KiB")
        print(f"resident memory after {args.deliveries}:{' ' * max(1, 10 - len(str(args.deliveries)))}"
              f"{memory_end} KiB   ratio {memory_end / memory_at_100:.2f}")
        print(f"runs finished / deliveries:      {total_runs} / {args.deliveries}   (pushes during a run coalesce)")
    finally:
        client.close()
        proc.terminate()
        proc.wait(30)


if __name__ == "__main__":
    main()
