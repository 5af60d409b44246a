"""Reading a file a pull request wrote: a regular file of bounded size, or one line saying why not.

A committed symlink may point at `/dev/zero`, a FIFO or itself; a plain `read_bytes()` would then
never return, block, or raise an exception no caller expects.  `read` opens without blocking,
reads only a regular file and at most `limit` bytes, and turns every failure into `Unreadable`.
"""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

MAX_BYTES = 1 << 20        # a manifest is a few kB; Prefect writes nothing near this


class Unreadable(Exception):
    """Why a file could not be read; `str()` is the reason, for the caller's one-line error."""


def read(path: Path, limit: int = MAX_BYTES) -> bytes:
    """The file's bytes; Unreadable when it is not a regular file, is over `limit` bytes or fails."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise Unreadable(_reason(exc)) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Unreadable("not a regular file (a directory, device, socket or FIFO)")
        if info.st_size > limit:
            raise Unreadable(f"the file is {info.st_size} bytes, over the {limit} bytes it may have")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:   # grew while being read
                raise Unreadable(f"the file is over the {limit} bytes it may have")
        return b"".join(chunks)
    except OSError as exc:
        raise Unreadable(_reason(exc)) from None
    finally:
        os.close(fd)


def head(path: Path, size: int) -> bytes:
    """At most the first `size` bytes of a regular file (b"" for anything else, or when it cannot be read):
    enough to tell what a file is without reading all of it."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return b""
    try:
        return os.read(fd, size) if stat.S_ISREG(os.fstat(fd).st_mode) else b""
    except OSError:
        return b""
    finally:
        os.close(fd)


def _reason(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "a symlink loop (the link leads back to itself)"
    return f"cannot read: {exc.strerror or exc}"


def text(path: Path, limit: int = MAX_BYTES) -> str:
    """`read` as text (UTF-8, undecodable bytes replaced), as ignore files are read."""
    return read(path, limit).decode("utf-8", errors="replace")
