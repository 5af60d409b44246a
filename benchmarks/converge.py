"""Benchmark: converging N new deployments, next to the best of a raw create loop, on SQLite and PostgreSQL.

For each database it starts a Prefect 2.20 server of its own (from
.venvs/prefect-2.20; PostgreSQL from /usr/lib/postgresql/*/bin, run as the
`postgres` user when this runs as root), then:
- raw: a plain httpx `POST /api/deployments/` loop of N deployments at 1, 2 and 4
  writers, each with the body apply sends for such a manifest (a 503/429 is
  retried after a short jittered sleep, as any client must);
- reconcile: `reconciler.apply()` of N new manifests with --parallelism 4 (the
  ceiling; the write limiter picks the writer count, from one writer as a one-shot
  `reconcile apply` does; with --warm, from where the previous apply of this process
  settled, as `serve` and `watch` do).
The runs take turns, in the opposite order each round (--rounds, default 3), and each run's deployments are
deleted after it (every run meets the same database).  It prints seconds, deployments/s, refused requests
(503/429) and the "database is locked" tracebacks the server logged during each run, and the ratios
best-raw-seconds / reconcile-seconds, for apply's create phase (what the write limiter drives; ≥ 1.0 means as
fast as the best raw loop) and for the whole apply, which also reads the live state, takes its source's lock and
records the new deployments in its inventory under the ownership lock (see README "Ownership": a few writes in
all, not one per deployment).  Two ratios, from the same runs:
- medians: each kind's median over the rounds, the raw loop's best writer count against the apply.  Every kind
  is summed up from the same number of runs, so this is the like-for-like figure, the one the target is read on;
- bests: each kind's fastest run.  The best raw figure is the minimum of 3 × rounds runs, the apply's of
  rounds runs: on a machine whose runs of one loop spread by ±15 %, the minimum of more samples is lower by
  luck alone, so this ratio leans against the apply.
And, for the median apply: the limits the write limiter took, in order, how many creates completed at each, and
the rates its measuring windows saw at each.
Machines here are shared and noisy: compare ratios measured in the same run,
not seconds.

    python benchmarks/converge.py [--count 1000] [--databases sqlite,postgres] [--parallelism 4] [--rounds 3]
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import contextlib
import glob
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Iterator, Optional

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import prefect_server  # noqa: E402
from integration.helpers import manifest, write_manifest  # noqa: E402

import reconciler  # noqa: E402
from reconciler.engine import applier as applier_mod  # noqa: E402
from reconciler.engine import limiter as limiter_mod  # noqa: E402

LOCKED = "database is locked"


@contextlib.contextmanager
def postgres(tmp: Path) -> Iterator[str]:
    """A throwaway PostgreSQL cluster on a free port; yields the asyncpg URL of database `prefect`."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise SystemExit("PostgreSQL's initdb not found under /usr/lib/postgresql/*/bin")
    bindir = Path(found[-1]).parent
    data = tmp / "pgdata"
    data.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:           # initdb refuses root
        os.chmod(tmp.parent, 0o755)     # the temporary directory is root's alone
        shutil.chown(tmp, "postgres")
        shutil.chown(data, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = prefect_server.free_port()
    run = lambda *argv: subprocess.run([*as_user, *argv], check=True, stdout=subprocess.DEVNULL,  # noqa: E731
                                       stderr=subprocess.STDOUT)
    run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(tmp / "pg.log"), "-w", "-o",
        f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
    try:
        run(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "prefect")
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/prefect"
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")


def locked_in_log(log: Path) -> int:
    """Tracebacks of "database is locked" (each ends in this one line) in the server's log so far."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return 0
    return sum(line.startswith(f"sqlite3.OperationalError: {LOCKED}") for line in lines)


def raw_loop(url: str, count: int, writers: int, template: dict) -> tuple[float, int]:
    """Seconds to create `count` deployments with `writers` threads, and the refused (503/429) answers and dropped connections."""
    http = httpx.Client(base_url=url + "/", timeout=60, limits=httpx.Limits(max_connections=writers + 2))
    flow_id = http.post("flows/", json={"name": f"raw-{uuid.uuid4().hex[:8]}"}).json()["id"]
    refused = 0
    lock = threading.Lock()

    def create(i: int) -> None:
        nonlocal refused
        body = {**template, "name": f"dep-{i:04d}", "flow_id": flow_id}
        for attempt in range(30):
            try:
                answer = http.post("deployments/", json=body)
            except httpx.TransportError:    # a connection the server dropped: the create is an upsert, repeat it
                with lock:
                    refused += 1
                continue
            if answer.status_code not in (429, 503):
                answer.raise_for_status()
                return
            with lock:
                refused += 1
            time.sleep(random.uniform(0, min(2.0, 0.05 * 2 ** attempt)))
        raise RuntimeError("the server stayed busy")

    started = time.perf_counter()
    with cf.ThreadPoolExecutor(writers) as pool:
        list(pool.map(create, range(count)))
    seconds = time.perf_counter() - started
    remove_flow(http, flow_id)
    http.close()
    return seconds, refused


def remove_flow(http: httpx.Client, flow_id: str) -> None:
    """Delete a run's flow, and with it its deployments: every run starts from the same database (a table that
    grew by 1,000 rows a run slowed the later runs, whichever kind they were)."""
    http.delete(f"flows/{flow_id}").raise_for_status()


def reconcile_apply(url: str, count: int, parallelism: int, tmp: Path, warm: bool = False) -> dict:
    """`reconciler.apply()` of `count` new manifests: seconds in all and in its create phase (first
    `POST /deployments/` sent to last answered), refused answers, and requests sent by kind.

    Cold (the default), the write limiter starts from one writer, as a one-shot `reconcile apply` does; warm, it
    starts where the previous apply in this process left it, as `serve` and `watch` do."""
    if not warm:
        limiter_mod.forget()
    flow = f"bench-{uuid.uuid4().hex[:8]}"
    root = tmp / flow
    for i in range(count):
        write_manifest(root, manifest(flow, f"dep-{i:04d}", schedules=[]))
    seen = {"refused": 0, "creates": 0, "claims": 0, "requests": 0, "first": None, "last": None, "body": None}
    lock = threading.Lock()
    original = httpx.HTTPTransport.handle_request

    def counting(self, request):       # sees every attempt the retry transport makes
        started = time.perf_counter()
        answer = original(self, request)
        create = request.method == "POST" and request.url.path == "/api/deployments/"
        with lock:
            seen["requests"] += 1
            seen["refused"] += answer.status_code in (429, 503)
            seen["claims"] += request.method == "POST" and request.url.path == "/api/block_documents/"
            if create:
                seen["body"] = seen["body"] or json.loads(request.content)
                seen["creates"] += 1
                seen["first"] = seen["first"] or started
                seen["last"] = time.perf_counter()
        return answer

    limiters = []

    class Recording(applier_mod.WriteLimiter):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            limiters.append(self)

    httpx.HTTPTransport.handle_request = counting
    applier_mod.WriteLimiter = Recording
    try:
        started = time.perf_counter()
        report = reconciler.apply(root, api_url=url, source=flow, parallelism=parallelism)
        seen["seconds"] = time.perf_counter() - started
    finally:
        httpx.HTTPTransport.handle_request = original
        applier_mod.WriteLimiter = Recording.__mro__[1]
    seen["writers"] = limiters[0].history if limiters else []
    seen["done_at"] = dict(sorted(limiters[0].done_at.items())) if limiters else {}
    seen["windows"] = limiters[0].windows if limiters else []
    if report.exit_code != 0:
        raise RuntimeError(f"apply failed: {[r.message for r in report.results if r.status == 'failed'][:3]}")
    seen["create_seconds"] = seen["last"] - seen["first"]
    with httpx.Client(base_url=url + "/", timeout=60) as http:
        remove_flow(http, seen["body"]["flow_id"])
    return seen


def bench(name: str, database_url: Optional[str], args: argparse.Namespace, tmp: Path) -> None:
    venv = prefect_server.ensure_server_venv(REPO / ".venvs" / "prefect-2.20")
    home = tmp / f"home-{name}"
    handle = prefect_server.start_server(venv, home, prefect_server.free_port(), database_url=database_url)
    try:
        print(f"\n{name}: Prefect server at {handle.url} (started in {handle.startup_seconds:.1f}s), "
              f"{args.count} new deployments per run")
        print(f"  {'run':<28} {'seconds':>8} {'deps/s':>8} {'refused':>8} {'locked tracebacks':>18}")
        # the raw loop sends the very body apply sends for such a manifest (taken from a one-deployment apply)
        template = reconcile_apply(handle.url, 1, 1, tmp)["body"]
        if args.warm:   # an untimed apply first, long enough for the limiter to settle: the timed ones start there
            primed = reconcile_apply(handle.url, min(args.count, 200), args.parallelism, tmp)
            print(f"  warm: each apply starts where the last settled; an untimed first apply of "
                  f"{min(args.count, 200)} settled at {primed['writers'][-1]} writer(s) ({' '.join(map(str, primed['writers']))})")
        raw: dict[int, list[float]] = {}    # writers → the seconds of each raw loop run
        applies: list[dict] = []
        kinds: list = [1, 2, 4, "apply"]
        for round_ in range(args.rounds):
            # taking turns, in the opposite order each round: the machine's load comes and goes, and neither
            # should favour the raw loops or the apply (each run's deployments are deleted after it)
            for kind in (kinds if round_ % 2 == 0 else kinds[::-1]):
                before = locked_in_log(handle.log_path)
                if kind == "apply":
                    run = reconcile_apply(handle.url, args.count, args.parallelism, tmp, warm=args.warm)
                    locked = locked_in_log(handle.log_path) - before
                    print(f"  {f'reconcile apply (ceiling {args.parallelism})':<28} {run['seconds']:8.2f} "
                          f"{args.count / run['seconds']:8.1f} {run['refused']:8d} {locked:18d}")
                    print(f"  {'  of which its creates':<28} {run['create_seconds']:8.2f} "
                          f"{args.count / run['create_seconds']:8.1f}")
                    applies.append(run)
                    continue
                seconds, refused = raw_loop(handle.url, args.count, kind, template)
                locked = locked_in_log(handle.log_path) - before
                raw.setdefault(kind, []).append(seconds)
                print(f"  {f'raw loop, {kind} writer(s)':<28} {seconds:8.2f} {args.count / seconds:8.1f} "
                      f"{refused:8d} {locked:18d}")
        report(args, raw, applies)
    finally:
        prefect_server.stop_server(handle)


def report(args: argparse.Namespace, raw: dict[int, list[float]], applies: list[dict]) -> None:
    """The ratios by medians (the like-for-like figure) and by bests, and the median apply's limiter."""
    medians = {w: statistics.median(runs) for w, runs in raw.items()}
    bests = {w: min(runs) for w, runs in raw.items()}
    creates = sorted(applies, key=lambda run: run["create_seconds"])
    middle = creates[(len(creates) - 1) // 2]      # the median apply (the faster one of the middle two)
    whole = statistics.median(run["seconds"] for run in applies)
    print(f"  over {args.rounds} round(s), median (best): raw loop " + ", ".join(
        f"{w} writer(s) {medians[w]:.2f}s ({bests[w]:.2f}s)" for w in sorted(raw))
        + f"; apply {whole:.2f}s ({min(r['seconds'] for r in applies):.2f}s), its creates "
        f"{statistics.median(r['create_seconds'] for r in applies):.2f}s ({creates[0]['create_seconds']:.2f}s)")
    steps = middle["writers"]
    shown = " ".join(map(str, steps[:60])) + (f" … ({len(steps)} changes)" if len(steps) > 60 else "")
    print(f"  the median apply: writers the limiter chose: {shown} (final {steps[-1] if steps else '?'}, "
          f"peak {max(steps) if steps else '?'})")
    print("  actions completed at each limit: "
          + ", ".join(f"{width}: {n}" for width, n in middle["done_at"].items()))
    by_limit: dict[int, list[float]] = {}
    for width, done, window_seconds in middle["windows"]:
        by_limit.setdefault(width, []).append(done / window_seconds)
    print("  the limiter's windows, creates/s by limit: " + "; ".join(
        f"{width}: {len(rates)} windows, mean {sum(rates) / len(rates):.1f}, {min(rates):.1f}-{max(rates):.1f}"
        for width, rates in sorted(by_limit.items())))
    print(f"  requests: {middle['requests']} in all, {middle['creates']} deployment creates, "
          f"{middle['claims']} block documents (locks, inventory)")
    created = statistics.median(r["create_seconds"] for r in applies)
    best = min(medians, key=medians.get)
    print(f"  ratio, medians: best raw ({best} writer(s)) / reconcile's creates: {medians[best] / created:.2f}x"
          f"   (target >= 1.0)")
    print(f"  ratio, medians: best raw ({best} writer(s)) / whole apply:        {medians[best] / whole:.2f}x")
    best = min(bests, key=bests.get)
    print(f"  ratio, bests:   best raw ({best} writer(s)) / reconcile's creates: "
          f"{bests[best] / creates[0]['create_seconds']:.2f}x   (the minimum of {sum(map(len, raw.values()))} "
          f"raw runs against that of {len(applies)}: leans against the apply)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--parallelism", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3, help="runs of each kind, taking turns")
    parser.add_argument("--warm", action="store_true",
                        help="each apply starts from the writer count the previous one settled at (serve, watch)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="reconcile-converge-") as tmp_name:
        tmp = Path(tmp_name)
        for name in args.databases.split(","):
            if name == "sqlite":
                bench("sqlite", None, args, tmp)
            elif name == "postgres":
                pg = tmp / "pg"
                pg.mkdir()
                with postgres(pg) as url:
                    bench("postgres", url, args, tmp)
            else:
                raise SystemExit(f"unknown database {name!r}: sqlite or postgres")


if __name__ == "__main__":
    main()
