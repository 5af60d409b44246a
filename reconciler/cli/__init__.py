"""The command line: parses options, calls the engine, prints; no logic of its own.

Takes argv; gives an exit code: 0 done, 1 a user's error, 2 changes (with --detailed-exitcode), 3 a bug.
"""
from __future__ import annotations

# each module registers its commands on the app; this order is the order of `reconcile --help`
from . import deployments  # noqa: F401,I001 - plan, apply, status, export
from . import code  # noqa: F401 - build, check, schema
from . import migrate  # noqa: F401 - migrate
from . import triggers  # noqa: F401 - hook, watch
from . import serve  # noqa: F401 - serve
from . import server  # noqa: F401 - server start, status, stop
from .app import main
from .exit import run

__all__ = ["main", "run"]
