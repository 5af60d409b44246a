"""Benchmark: a no-op `reconcile plan` of 300 and 1,000 deployments, next to a minimal httpx script.

The benchmark writes N manifests (shaped like Prefect 2.20's `deployment build` output: schedule,
parameters, parameter schema, an anonymous process block), applies them once to a real Prefect
server so that the plan finds nothing to do, then times, each as a fresh process (imports included):

- `reconcile plan DIR` (a no-op: every deployment in sync), and
- the baseline: a minimal script that imports httpx and pages `POST /deployments/filter` (limit 200)
  over the same server, which is the least any plan must do.

Figures are the best of several rounds, the plan and the baseline taking turns in each, printed as a ratio
to the baseline measured in the same run (machines here are shared and noisy: compare the ratio, not the
seconds).  Parsed manifests are cached (manifests/parsecache): the plan that checks the apply left nothing
to do fills the cache, as a user's earlier plan would; `--cold` turns the cache off for the timed plans.  Target: at most 1.3x.
The deployments it made are deleted at the end.

The server: RECONCILE_BENCH_API_URL (e.g. http://127.0.0.1:4200/api), else one started from
.venvs/prefect-2.20 by tests/prefect_server.py for this run, with its background services off (scheduling and
marking the runs of the deployments just applied is server work that comes and goes, in neither the plan nor
the baseline).  `--latency MS` puts a proxy in front of it
that holds each request MS milliseconds (both the plan and the baseline go through it): a server across
a network, where the reads a plan sends together overlap their round trips.

    python benchmarks/noop_plan.py [--sizes 300,1000] [--repeat 5] [--latency MS] [--cold] [--profile]
"""
from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

HERE = Path(__file__).resolve().parent
RECONCILE = str(Path(sys.executable).with_name("reconcile"))

MANIFEST = """\
###
### A complete description of a Prefect Deployment for flow '{flow}'
###
name: {name}
description: Deployment {i} of the no-op plan benchmark
version: 6d5cf87f4c65907a748a559f52b7d093
# The work queue that will handle this deployment's runs
work_queue_name: default
work_pool_name: null
tags:
- bench
- team-{team}
parameters:
  url: https://example.test/{i}
  n: {i}
schedule: null
schedules:
- schedule:
    cron: {minute} * * * *
    timezone: UTC
    day_or: true
  active: true
is_schedule_active: null
infra_overrides:
  env.FOO: bar

###
### DO NOT EDIT BELOW THIS LINE
###
flow_name: {flow}
manifest_path: null
infrastructure:
  type: process
  env: {{}}
  labels: {{}}
  name: null
  command: null
  stream_output: true
  working_dir: null
  _block_document_id: null
  _block_document_name: null
  _is_anonymous: true
  block_type_slug: process
  _block_type_slug: process
storage: null
path: /opt/flows
entrypoint: flows/etl.py:etl
parameter_openapi_schema:
  title: Parameters
  type: object
  properties:
    url:
      position: 0
      title: url
      type: string
    n:
      default: 3
      position: 1
      title: n
      type: integer
  required:
  - url
  definitions: null
timestamp: '2026-11-25T15:37:26.457445+00:00'
triggers: []
enforce_parameter_schema: null
"""

BASELINE = """\
import sys
import httpx
with httpx.Client(base_url=sys.argv[1].rstrip("/") + "/") as http:
    offset, total = 0, 0
    while True:
        page = http.post("deployments/filter", json={"sort": "NAME_ASC", "limit": 200, "offset": offset}).json()
        total += len(page)
        offset += 200
        if len(page) < 200:
            break
print(total)
"""


def write_manifests(root: Path, tag: str, count: int) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        flow = f"bench {tag} flow {i % 50:02d}"
        (root / f"d{i:05d}-deployment.yaml").write_text(
            MANIFEST.format(flow=flow, name=f"d{i:05d}", i=i, team=i % 7, minute=i % 60), encoding="utf-8")


def best(commands: list[list[str]], repeat: int) -> list[float]:
    """The best time of each command over `repeat` rounds, the commands taking turns within a round (the
    server's own background work, such as scheduling the new deployments' runs, comes and goes: taking turns
    gives each command the same server)."""
    times: list[list[float]] = [[] for _ in commands]
    for _ in range(repeat):
        for argv, seen in zip(commands, times):
            started = time.perf_counter()
            subprocess.run(argv, check=argv[0] == sys.executable, stdout=subprocess.DEVNULL)
            seen.append(time.perf_counter() - started)
    return [min(seen) for seen in times]


@contextlib.contextmanager
def server() -> Iterator[str]:
    url = os.environ.get("RECONCILE_BENCH_API_URL")
    if url:
        yield url
        return
    sys.path.insert(0, str(HERE.parent / "tests"))
    import prefect_server   # the tests' own helper: a throwaway Prefect 2.20 server from .venvs/prefect-2.20

    with tempfile.TemporaryDirectory() as home:
        # without its background services: their loops over the newly applied deployments and their runs (the
        # scheduler, late runs, notifications, events) would come and go during the timings, as much as doubling
        # a read of 1,000 deployments; neither the plan nor the baseline reads a flow run or an event
        quiet = {f"PREFECT_API_SERVICES_{name}_ENABLED": "false" for name in (
            "SCHEDULER", "LATE_RUNS", "FLOW_RUN_NOTIFICATIONS", "PAUSE_EXPIRATIONS", "CANCELLATION_CLEANUP",
            "FOREMAN", "EVENT_PERSISTER", "TRIGGERS", "EVENT_LOGGER")}
        handle = prefect_server.start_server_on_free_port(HERE.parent / ".venvs" / "prefect-2.20", Path(home),
                                                          settings=quiet)
        try:
            yield handle.url
        finally:
            prefect_server.stop_server(handle)


@contextlib.contextmanager
def delayed(url: str, latency: float) -> Iterator[str]:
    """A proxy to url that answers each request `latency` seconds later (many requests at once)."""
    if latency <= 0:
        yield url
        return
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import httpx

    upstream = httpx.URL(url)
    client = httpx.Client(base_url=f"{upstream.scheme}://{upstream.host}:{upstream.port}", timeout=120)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            time.sleep(latency)
            answer = client.request(self.command, self.path, content=raw,
                                    headers={"content-type": self.headers.get("content-type") or "application/json"})
            self.send_response(answer.status_code)
            self.send_header("content-type", answer.headers.get("content-type", "application/json"))
            self.send_header("content-length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _forward

        def log_message(self, *args: object) -> None:
            pass

    proxy = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    proxy.daemon_threads = True
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{proxy.server_address[1]}{upstream.path}"
    finally:
        proxy.shutdown()
        proxy.server_close()
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="300,1000")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--latency", type=float, default=0.0, help="milliseconds each request is held (a remote server)")
    parser.add_argument("--profile", action="store_true", help="also print the top of a cProfile of the largest plan")
    parser.add_argument("--cold", action="store_true", help="time plans without the parse cache (a CI runner's)")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    tag = f"{os.getpid()}-{int(time.time())}"
    with server() as url, tempfile.TemporaryDirectory() as tmp:
        root, source = Path(tmp) / "deployments", f"bench-noop-{tag}"
        # a parse cache of this run's own (not the user's); empty for --cold
        os.environ["RECONCILE_CACHE_DIR"] = "" if args.cold else str(Path(tmp) / "cache")
        env = {**os.environ, "NO_COLOR": "1"}
        common = ["--api-url", url, "--source", source]
        try:
            for size in sizes:
                write_manifests(root, tag, size)
                subprocess.run([RECONCILE, "apply", str(root), *common, "--parallelism", "8"], check=True,
                               stdout=subprocess.DEVNULL, env=env)
                plan = [RECONCILE, "plan", str(root), *common, "--detailed-exitcode"]
                if subprocess.run(plan, stdout=subprocess.DEVNULL, env=env).returncode != 0:
                    raise SystemExit(f"the plan of {size} after apply is not a no-op")
                with delayed(url, args.latency / 1000) as far:
                    baseline, seconds = best([[sys.executable, "-c", BASELINE, far],
                                              [RECONCILE, "plan", str(root), "--api-url", far, "--source", source,
                                               "--detailed-exitcode"]], args.repeat)
                held = (f"; {args.latency:g}ms a request" if args.latency else "") + ("; no parse cache" if args.cold else "")
                print(f"no-op plan of {size:5d} deployments: {seconds:.3f}s; httpx paging baseline {baseline:.3f}s; "
                      f"ratio {seconds / baseline:.2f}x (target <= 1.3x; best of {args.repeat}{held})")
            if args.profile:
                out = Path(tmp) / "plan.prof"
                subprocess.run([sys.executable, "-m", "cProfile", "-o", str(out), RECONCILE, "plan", str(root),
                                *common], stdout=subprocess.DEVNULL, env=env, check=False)
                import pstats
                pstats.Stats(str(out)).sort_stats("cumulative").print_stats(30)
        finally:
            for path in root.glob("*-deployment.yaml"):
                path.unlink()
            subprocess.run([RECONCILE, "apply", str(root), *common, "--allow-empty", "--allow-deletes",
                            "--parallelism", "8"], stdout=subprocess.DEVNULL, env=env)


if __name__ == "__main__":
    main()
