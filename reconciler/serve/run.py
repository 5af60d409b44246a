"""Start `reconcile serve`: check everything first, bind the port, then serve until SIGTERM / Ctrl-C."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any, Iterator, Optional

import uvicorn
from pydantic import ValidationError

from ..errors import ReconcileError
from ..prefect.api import PrefectClient
from . import config as config_mod
from .app import create_app
from .controller import Controller
from .state import State, _now

OPTION = {"listen": "--listen", "poll_interval": "--poll-interval", "self_heal": "--self-heal"}


class _Server(uvicorn.Server):
    """uvicorn, except: a SIGTERM/Ctrl-C that ends in a clean shutdown exits 0 (uvicorn re-raises the signal),
    and a second signal while the run in progress is finishing exits at once."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        previous = {sig: signal.signal(sig, self._signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _signal(self, sig: int, frame: Any) -> None:
        if self.should_exit:
            print(json.dumps({"ts": _now(), "event": "killed", "reason": "second signal: not waiting for the run in "
                              "progress (its apply lock expires by itself, or the next run breaks it)"}), flush=True)
            os._exit(128 + sig)
        self.handle_exit(sig, frame)


def _overridden(config: config_mod.ServeConfig, updates: dict[str, Any]) -> config_mod.ServeConfig:
    if not updates:
        return config
    try:
        return config_mod.ServeConfig.model_validate({**config.model_dump(), **updates})
    except ValidationError as exc:
        err = exc.errors()[0]
        name = OPTION.get(str(err["loc"][0]) if err["loc"] else "", "option")
        raise ReconcileError(f"{name}: {err['msg'].removeprefix('Value error, ')}") from None


def _bind(host: str, port: int) -> socket.socket:
    """Bind before anything runs, so a port in use is an error, not a half-started controller.

    The protocol is named (IPPROTO_TCP): asyncio only sets TCP_NODELAY on connections of such a socket, and
    without it every keep-alive response waits ~40 ms for a delayed ACK."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
        return sock
    except OSError as exc:
        sock.close()
        raise ReconcileError(f"cannot listen on {host}:{port}: {os.strerror(exc.errno) if exc.errno else exc}") from None


def _apis_answer(config: config_mod.ServeConfig) -> None:
    """Each source's Prefect API answers (GET /admin/version, with its key), each URL asked once: a wrong URL
    or key stops serve at start, not at its first run."""
    answered: dict[tuple[str, Optional[str]], Optional[ReconcileError]] = {}
    for source in config.sources:
        where = (config_mod.api_url(source), config_mod.api_key(source))
        if where not in answered:
            answered[where] = None
            try:
                with PrefectClient(*where) as client:
                    client.server_version()
            except ReconcileError as exc:
                answered[where] = exc
        if answered[where] is not None:
            raise ReconcileError(f"source {source.name}: {answered[where]}")


def serve(config_path: Path, listen: Optional[str] = None, poll_interval: Optional[float] = None,
          self_heal: Optional[bool] = None) -> None:
    """Check the configuration, the secret, each source's API URL and key (that the API answers), the work
    directory, and the port; only then start the workers and serve."""
    config = config_mod.load(config_path)
    config = _overridden(config, {k: v for k, v in {"listen": listen, "poll_interval": poll_interval,
                                                   "self_heal": self_heal}.items() if v is not None})
    secret = config_mod.secret(config)
    for source in config.sources:
        config_mod.api_url(source)
        config_mod.api_key(source)
    config_mod.workdir(config)
    _apis_answer(config)
    host, port = config.host_port
    sock = _bind(host, port)
    state = State([s.name for s in config.sources], log=sys.stdout)
    controller = Controller(config, state)
    app = create_app(config, secret, controller, state)
    server = _Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                                    timeout_graceful_shutdown=10))
    state.log({"event": "listening", "url": f"http://{host}:{port}", "self_heal": config.self_heal,
               "poll_interval_s": config.poll_interval})
    server.run(sockets=[sock])
