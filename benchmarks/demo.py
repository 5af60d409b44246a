"""Benchmark: the README demo (plan, apply, plan) on the embedded server, next to one server start.

With no API configured, the first command starts the embedded Prefect server and
the next ones reuse it.  Measured in the same run, each on a fresh PREFECT_HOME:
- one start: `prefect server start` from .venvs/prefect-2.20 until /api/health answers;
- the demo: `reconcile plan`, `reconcile apply`, `reconcile plan` (examples/weather
  and examples/reports, which need no blocks) as three processes;
- the demo as it ran when each command started its own server (`reconcile server
  stop` after each command).
It prints seconds and the ratios demo / one start (target ≤ 1.5) and
per-command servers / demo.  Machines here are shared and noisy: compare ratios.

    python benchmarks/demo.py [--repeat 1]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import prefect_server  # noqa: E402

DEMO = (["plan", "."], ["apply", "."], ["plan", ".", "--detailed-exitcode"])


def one_start(venv: Path, home: Path) -> float:
    handle = prefect_server.start_server(venv, home, prefect_server.free_port())
    prefect_server.stop_server(handle)
    return handle.startup_seconds


def reconcile(args: list[str], env: dict[str, str], cwd: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "reconciler", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"reconcile {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}")


def demo(venv: Path, tmp: Path, name: str, stop_between: bool) -> float:
    project = tmp / name
    for example in ("weather", "reports"):
        shutil.copytree(REPO / "examples" / example, project / example)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RECONCILE_SERVER_"))}
    env.update(PREFECT_HOME=str(tmp / f"{name}-home"), RECONCILE_PREFECT=str(venv / "bin" / "prefect"), NO_COLOR="1")
    started = time.perf_counter()
    try:
        for args in DEMO:
            reconcile(args, env, project)
            if stop_between:
                reconcile(["server", "stop"], env, project)
        return time.perf_counter() - started
    finally:
        reconcile(["server", "stop"], env, project)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    venv = prefect_server.ensure_server_venv(REPO / ".venvs" / "prefect-2.20")
    for round_ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="reconcile-demo-") as tmp_name:
            tmp = Path(tmp_name)
            start = one_start(venv, tmp / "start-home")
            shared = demo(venv, tmp, "shared", stop_between=False)
            per_command = demo(venv, tmp, "per-command", stop_between=True)
        print(f"round {round_ + 1}: one server start {start:.1f}s; demo (plan, apply, plan) {shared:.1f}s; "
              f"with a server per command {per_command:.1f}s")
        print(f"  demo / one start: {shared / start:.2f}x (target <= 1.5)   "
              f"server per command / demo: {per_command / shared:.2f}x")


if __name__ == "__main__":
    main()
