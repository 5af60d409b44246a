"""Benchmark: peak memory (RSS) of `reconcile plan` over 10,000 manifests, text and JSON output.

The manifests are the no-op benchmark's (benchmarks/noop_plan.py: Prefect 2.20's build output); the
server does not hold them, so the plan is 10,000 creates (the largest plan there is: every action
carries its desired deployment).  Each plan runs in a fresh process whose peak RSS is read with
resource.getrusage(RUSAGE_CHILDREN) by a small parent made for that one measurement; next to it, in
the same run, the peak RSS of `python -c "import httpx"` (the interpreter and an HTTP client).
Target: at most 150 MiB.  The plan makes no write.

The server: RECONCILE_BENCH_API_URL, else one started from .venvs/prefect-2.20 for this run.

    python benchmarks/plan_memory.py [--count 10000] [--repeat 3]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from noop_plan import RECONCILE, server, write_manifests

# one process per measurement: RUSAGE_CHILDREN is the largest child this parent has waited for
PEAK = """\
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, done.stderr[-300:].decode(errors="replace").strip().replace(chr(10), " | "))
"""


def peak_mib(argv: list[str]) -> tuple[float, int, str]:
    out = subprocess.run([sys.executable, "-c", PEAK, *argv], capture_output=True, text=True, check=True).stdout
    code, kib, err = out.rstrip("\n").split(" ", 2)
    return int(kib) / 1024, int(code), err   # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    tag = f"{os.getpid()}-{int(time.time())}"
    with server() as url, tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "deployments"
        write_manifests(root, tag, args.count)
        baseline = min(peak_mib([sys.executable, "-c", "import httpx"])[0] for _ in range(args.repeat))
        print(f"python -c 'import httpx': peak RSS {baseline:.1f} MiB")
        for fmt in ("text", "json"):
            argv = [RECONCILE, "plan", str(root), "--api-url", url, "--source", f"bench-memory-{tag}", "--format", fmt]
            for cache in ("cold", "warm"):
                # the parse cache (manifests/parsecache): this run's own, empty for the first plan ("cold",
                # as on a CI runner), filled by it for the next ones ("warm", as on a second plan)
                os.environ["RECONCILE_CACHE_DIR"] = str(Path(tmp) / f"cache-{fmt}")
                runs = [peak_mib(argv) for _ in range(1 if cache == "cold" else args.repeat)]
                for _, code, err in runs:
                    if code not in (0, 2):
                        raise SystemExit(f"plan --format {fmt} failed (exit {code}): {err}")
                mib = min(r[0] for r in runs)
                print(f"plan of {args.count} manifests (all creates), --format {fmt:4}, parse cache {cache}: peak RSS "
                      f"{mib:.1f} MiB ({mib * 1024 / args.count:.1f} KiB a manifest; {mib / baseline:.1f}x import "
                      f"httpx; target <= 150 MiB; least of {len(runs)})")


if __name__ == "__main__":
    main()
