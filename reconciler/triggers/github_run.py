"""reconcile run by the GitHub Action: a real subprocess whose output goes to the step's log, and a copy kept.

The installed `reconcile` (next to this interpreter) runs with stdin closed; its output is echoed inside a log group,
with workflow commands disabled (output naming pull-request content cannot issue them).
"""
from __future__ import annotations

import shlex
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from .github_workflow import annotations


def annotate(ran: "Ran", title: str) -> None:
    for line in annotations(ran.stderr, title):
        print(line)


@dataclass
class Ran:
    args: list[str]
    code: int
    stdout: str
    stderr: str


def reconcile_argv() -> list[str]:
    """The `reconcile` installed next to this interpreter (the action's own virtual environment)."""
    script = Path(sys.executable).parent / "reconcile"
    return [str(script)] if script.exists() else [sys.executable, "-I", "-m", "reconciler"]


def run(args: list[str], env: Mapping[str, str]) -> Ran:
    """Run reconcile, echoing its output (commands in it disabled) while keeping a copy."""
    argv = reconcile_argv() + args
    print(f"::group::$ reconcile {shlex.join(args)}", flush=True)
    stop = f"reconcile-{uuid.uuid4().hex}"
    print(f"::stop-commands::{stop}", flush=True)  # output naming PR content cannot issue workflow commands
    proc = subprocess.Popen(argv, env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, encoding="utf-8", errors="replace")
    streams: dict[str, list[str]] = {"out": [], "err": []}

    def pump(stream, kept: list[str]) -> None:
        for line in stream:
            kept.append(line)
            sys.stdout.write(line)
            sys.stdout.flush()

    threads = [threading.Thread(target=pump, args=(proc.stdout, streams["out"])),
               threading.Thread(target=pump, args=(proc.stderr, streams["err"]))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    code = proc.wait()
    print(f"::{stop}::", flush=True)
    print(f"exit status {code}\n::endgroup::", flush=True)
    return Ran(args, code, "".join(streams["out"]), "".join(streams["err"]))
