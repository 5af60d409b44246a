"""A rich progress bar on stderr while apply runs (actions and upload bytes), when stderr is a terminal."""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..engine import run as engine
    from ..engine.report import Result


class progress:
    """A rich progress bar on stderr while applying, when stderr is a terminal."""

    def __init__(self, options: engine.Options, enabled: bool) -> None:
        self.options = options
        self.enabled = enabled and sys.stderr.isatty()
        self.bar = None

    def __enter__(self) -> engine.Options:
        if not self.enabled:
            return self.options
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn

        from ..render.values import size

        # one live display (rich allows one at a time): a task for the actions, one for upload bytes
        self.bar = Progress(TextColumn("{task.fields[what]:<10}"), BarColumn(), TextColumn("{task.fields[done]}"),
                            TextColumn("{task.description}"), console=Console(stderr=True), transient=True)
        self.bar.start()
        task = self.bar.add_task("", total=None, what="applying", done="")
        upload_task = None

        def start(plan) -> None:
            nonlocal upload_task
            steps = len(plan.uploads) + sum(1 for a in plan.actions if a.action != "noop")
            self.bar.update(task, total=steps, done=f"0/{steps}")
            total = sum(u.bytes for u in plan.uploads)
            if total:
                upload_task = self.bar.add_task("", total=total, what="uploading", done=f"0 B/{size(total)}")

        def advance(result: Result) -> None:
            self.bar.advance(task)
            t = self.bar.tasks[task]
            self.bar.update(task, description=result.identity, done=f"{int(t.completed)}/{int(t.total or 0)}")

        def sent(n: int) -> None:
            if upload_task is not None:
                self.bar.advance(upload_task, n)
                t = self.bar.tasks[upload_task]
                self.bar.update(upload_task, done=f"{size(int(t.completed))}/{size(int(t.total or 0))}")

        self.options.on_start, self.options.on_result, self.options.on_bytes = start, advance, sent
        return self.options

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()
