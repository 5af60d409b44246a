"""CLI wiring for `reconcile serve`."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from typing_extensions import Annotated

from .app import app


@app.command("serve")
def serve_cmd(
    config: Annotated[Path, typer.Argument(help="The serve configuration (YAML): sources, listen, polling.")],
    listen: Annotated[Optional[str], typer.Option("--listen", help="HOST:PORT to listen on (default from the "
                                                  "file, else 127.0.0.1:8080).")] = None,
    poll_interval: Annotated[Optional[float], typer.Option("--poll-interval", min=0, help="Seconds between "
                                                           "polls, jittered ±10% (default 180; 0 = off).")] = None,
    self_heal: Annotated[Optional[bool], typer.Option("--self-heal/--no-self-heal", help="Revert drift found "
                                                      "between pushes (default), or only report it.")] = None,
) -> None:
    """Apply each source's branch on every push (webhook) and every poll; serve /healthz /metrics /status."""
    from ..serve.run import serve  # uvicorn and starlette load only for this command

    serve(config, listen, poll_interval, self_heal)
