"""Start `reconcile serve`: check everything first, then serve until SIGTERM / Ctrl-C."""
from __future__ import annotations

import contextlib
import signal
import sys
from pathlib import Path
from typing import Iterator, Optional

import uvicorn

from . import config as config_mod
from .app import create_app
from .controller import Controller
from .state import State


class _Server(uvicorn.Server):
    """uvicorn, except that a SIGTERM/Ctrl-C that ends in a clean shutdown exits 0 (it re-raises the signal)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def serve(config_path: Path, listen: Optional[str] = None, poll_interval: Optional[float] = None,
          self_heal: Optional[bool] = None) -> None:
    """Validate the configuration, the secret and every source's API URL (no network), then serve."""
    config = config_mod.load(config_path)
    updates = {k: v for k, v in {"listen": listen, "poll_interval": poll_interval, "self_heal": self_heal}.items()
               if v is not None}
    if updates:
        config = config_mod.ServeConfig.model_validate({**config.model_dump(), **updates})
    secret = config_mod.secret(config)
    for source in config.sources:
        config_mod.api_url(source)
    state = State([s.name for s in config.sources], log=sys.stdout)
    controller = Controller(config, state)
    host, port = config.host_port
    app = create_app(config, secret, controller, state)
    server = _Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                                          lifespan="on", timeout_graceful_shutdown=10))
    state.log({"event": "listening", "url": f"http://{host}:{port}", "self_heal": config.self_heal,
               "poll_interval_s": config.poll_interval})
    server.run()
