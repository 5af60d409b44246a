"""CLI wiring for `reconcile server start|status|stop`: the embedded Prefect server commands share."""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

import typer

from .app import _say, app

if TYPE_CHECKING:
    from ..prefect import embedded

server_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                         help="The embedded local Prefect server that plan and apply start when no API is "
                              "configured, and reuse until it is idle.")
app.add_typer(server_app, name="server")


def _describe(running: "embedded.Running") -> str:
    from ..prefect import embedded
    idle = embedded.idle_for_seconds()
    left = max(0.0, running.idle_timeout - idle)
    return (f"{running.url} (pid {running.pid}, up {time.time() - running.started:.0f}s, stops after "
            f"{left:.0f}s more idle; SQLite under {running.home}; log {running.log})")


@server_app.command("start")
def start_cmd() -> None:
    """Start the embedded server unless it runs; print its API URL (e.g. for PREFECT_API_URL)."""
    from ..prefect import embedded
    running = embedded.ensure(_say)
    print(running.url)


@server_app.command("status")
def status_cmd() -> None:
    """Say whether the embedded server runs, and where; exit 0 if it does, 1 if not."""
    from ..prefect import embedded
    running = embedded.status()
    if running is None:
        print(f"not running (state in {embedded.state_dir()})")
        raise typer.Exit(1)
    print(f"running at {_describe(running)}")


@server_app.command("stop")
def stop_cmd() -> None:
    """Stop the embedded server now (it also stops by itself when idle)."""
    from ..prefect import embedded
    stopped = embedded.stop()
    if stopped is None:
        print("not running")
        return
    print(f"stopped the embedded Prefect server at {stopped.url} (pid {stopped.pid})")
