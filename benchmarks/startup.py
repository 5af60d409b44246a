"""Benchmark: how long `reconcile --version` and `reconcile --help` take to start, next to `import httpx`.

Each command runs as a fresh process, several times; the figure is the best (least disturbed) run,
printed as a ratio to `python -c "import httpx"` measured in the same run (machines here are shared
and noisy: compare the ratio, not the seconds).  Target: at most 2x.  Also prints what
`python -X importtime` says the CLI module imports most.

    python benchmarks/startup.py [--repeat 15]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

PYTHON = sys.executable
RECONCILE = str(Path(PYTHON).with_name("reconcile"))


def wall(argv: list[str], repeat: int) -> tuple[float, int]:
    """Best wall time of `repeat` runs, and the last exit status."""
    best, status = float("inf"), 0
    for _ in range(repeat):
        started = time.perf_counter()
        status = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
        best = min(best, time.perf_counter() - started)
    return best, status


def heaviest_imports(module: str, count: int = 8) -> list[tuple[int, str]]:
    out = subprocess.run([PYTHON, "-X", "importtime", "-c", f"import {module}"], capture_output=True, text=True,
                         env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}).stderr
    rows = []
    for line in out.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            name = parts[2].rstrip()
            depth = (len(name) - len(name.lstrip()) - 1) // 2    # one space, then two per level of nesting
            if 1 <= depth <= 2:
                rows.append((int(parts[1]), "  " * (depth - 1) + name.strip()))
    return sorted(rows, reverse=True)[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    baseline, _ = wall([PYTHON, "-c", "import httpx"], args.repeat)
    empty, _ = wall([PYTHON, "-c", "pass"], args.repeat)
    print(f"python -c pass: {empty:.3f}s; python -c 'import httpx' (the baseline): {baseline:.3f}s "
          f"(best of {args.repeat})")
    for label, argv in (("reconcile --version", [RECONCILE, "--version"]),
                        ("reconcile --help", [RECONCILE, "--help"]),
                        ("python -c 'import reconciler.cli'", [PYTHON, "-c", "import reconciler.cli"])):
        seconds, status = wall(argv, args.repeat)
        note = "" if status == 0 else f"  (exit {status}: not available in this build)"
        print(f"{label:36} {seconds:.3f}s  = {seconds / baseline:.2f}x import httpx (target <= 2x){note}")
    print("heaviest imports of reconciler.cli (cumulative microseconds, python -X importtime):")
    for us, name in heaviest_imports("reconciler.cli"):
        print(f"  {us:8d}  {name}")


if __name__ == "__main__":
    main()
