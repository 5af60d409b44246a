"""CLI wiring for the triggers: serve, hook, watch.  Each command only parses options and calls a module."""
from __future__ import annotations

from .cli import app  # noqa: F401
