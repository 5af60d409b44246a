"""The errors a user can cause, each printed as one line.

Anything raised from here is a *known* failure: the CLI prints ``str(err)`` and
exits 1.  Anything else is a bug: the CLI exits 3 and writes the traceback to a
log file.  Foreign exceptions (httpx, yaml, pydantic) are translated into these
at exactly one boundary each.
"""
from __future__ import annotations


def printable(text: str) -> str:
    """text with every character that does not print (control bytes, line breaks, bidi overrides) escaped."""
    return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class ReconcileError(Exception):
    """A failure the user can act on; ``str()`` is the one line to print."""


class ManifestError(ReconcileError):
    """A problem in a file the user wrote, located at ``file:line:col``."""

    def __init__(self, file: str, line: int, col: int, field: str | None, message: str) -> None:
        self.file, self.line, self.col, self.field, self.message = file, line, col, field, message
        where = f"{file}:{line}:{col}"
        super().__init__(printable(f"{where}: {field}: {message}" if field else f"{where}: {message}"))


class ManifestErrors(ReconcileError):
    """Every problem found while loading a set of files (all are reported, not just the first)."""

    def __init__(self, errors: list[ReconcileError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


class ApiError(ReconcileError):
    """The Prefect API answered with an error status."""

    def __init__(self, method: str, url: str, status: int, detail: str = "") -> None:
        self.method, self.url, self.status, self.detail = method, url, status, detail
        tail = f": {detail}" if detail else ""
        super().__init__(f"{method} {url} → {status}{tail}")


class NotFound(ApiError):
    """404 from the API."""


class AlreadyExists(ApiError):
    """409 from the API (a duplicate name, used as the lock's mutex)."""


class Unreachable(ReconcileError):
    """No usable answer from the Prefect API at all."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        super().__init__(f"cannot reach the Prefect API at {url}: {reason}")


class LockHeld(ReconcileError):
    """Another apply holds this source's lease."""


class LockLost(ReconcileError):
    """This apply's lease ran out or was broken while it held the lock; it stopped writing."""


class PlanStale(ReconcileError):
    """A saved plan no longer matches the live server."""


class Refused(ReconcileError):
    """A safety check stopped the apply before any write."""
