"""Parsed YAML documents remembered by their text: a plan of files that did not change does not parse them again.

Building each document's values node by node (yamlpos, yamlvalues: duplicate keys caught, the work bounded,
each top-level key's position kept) is the slowest step of loading a manifest, and its result depends only
on the text and on this code.  So what a document that loaded without error built is kept under the SHA-256
of its text, in one SQLite file per version of the code that built it (another version of reconcile, of
PyYAML or of Python uses another file; files of other versions unused for a day are removed, and entries are
made again after 30 days).  New entries are written together, in one transaction, when a load ends (`flush`).

Where: `$RECONCILE_CACHE_DIR`, else `$XDG_CACHE_HOME/reconcile`, else `~/.cache/reconcile`; an empty
`RECONCILE_CACHE_DIR` turns the cache off.  Entries are marshal-encoded plain values (dicts, lists, strings,
numbers) that reconcile wrote itself, each under the hash of the text it was built from, so no repository
can choose what another text loads as; the folder is the user's alone (0700).  The cache is an optimisation
only: a file that cannot be opened, read or written is a miss, never an error.
"""
from __future__ import annotations

import atexit
import hashlib
import marshal
import os
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any, Optional

FORMAT = 1          # bump when what an entry holds changes
KEEP_DAYS = 30
_CODE = ("yamlpos.py", "yamlvalues.py", "parsecache.py")   # the code an entry's values come from

Entry = tuple[Any, tuple[int, int], dict[str, int]]   # (values, the root's (line, col), top-level key → packed position)


class _Store:
    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(str(path), timeout=2.0, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA cache_size = -512")   # KiB: lookups by key need few pages
        self.db.execute("CREATE TABLE IF NOT EXISTS parsed (key BLOB PRIMARY KEY, value BLOB NOT NULL, "
                        "made INTEGER NOT NULL)")
        self.pending: dict[bytes, bytes] = {}

    def get(self, key: bytes) -> Optional[bytes]:
        row = self.db.execute("SELECT value FROM parsed WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def flush(self) -> None:
        if not self.pending:
            return
        now = int(time.time())
        rows, self.pending = [(k, v, now) for k, v in self.pending.items()], {}
        with self.db:   # one transaction
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany("INSERT OR REPLACE INTO parsed (key, value, made) VALUES (?, ?, ?)", rows)
            self.db.execute("DELETE FROM parsed WHERE made < ?", (now - KEEP_DAYS * 86400,))


_store: Optional[_Store] = None
_off = False
_lock = threading.RLock()


def _open() -> Optional[_Store]:
    """This code's store, opened on first use; None when the cache is off or unusable."""
    global _store, _off
    if _store is not None or _off:
        return _store
    configured = os.environ.get("RECONCILE_CACHE_DIR")
    if configured is not None and not configured.strip():
        _off = True
        return None
    if configured:
        top = Path(configured).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        top = (Path(xdg) if xdg else Path.home() / ".cache") / "reconcile"
    here = Path(__file__).resolve().parent
    try:
        import yaml
        stamp = [FORMAT, sys.version_info[:2], marshal.version, getattr(yaml, "__version__", "?"),
                 getattr(yaml, "__with_libyaml__", False)]
        for name in _CODE:
            info = (here / name).stat()
            stamp.append((name, info.st_size, info.st_mtime_ns))
        top.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = top / f"parsed-{hashlib.sha256(repr(stamp).encode()).hexdigest()[:16]}.sqlite"
        _prune(top, path)
        _store = _Store(path)
        os.chmod(path, 0o600)
    except (OSError, sqlite3.Error):
        _off = True
        return None
    atexit.register(flush)
    return _store


def _prune(top: Path, keep: Path, idle: float = 86400.0) -> None:
    """Remove the stores of other code versions that nothing used for a day."""
    now = time.time()
    for other in top.glob("parsed-*.sqlite*"):
        try:
            if not other.name.startswith(keep.name) and other.is_file() and now - other.stat().st_mtime > idle:
                other.unlink()
        except OSError:
            continue


def _key(text: bytes) -> bytes:
    return hashlib.sha256(text).digest()


def get(text: bytes) -> Optional[Entry]:
    """What this text built when it last loaded without error, or None."""
    with _lock:
        store = _open()
        if store is None:
            return None
        key = _key(text)
        try:
            blob = store.pending.get(key) or store.get(key)
        except sqlite3.Error:
            return None
    if blob is None:
        return None
    try:
        values, root, top = marshal.loads(blob)
    except (EOFError, ValueError, TypeError):
        return None
    if not (isinstance(root, tuple) and len(root) == 2 and isinstance(top, dict)):
        return None
    return values, root, top


def put(text: bytes, values: Any, root: tuple[int, int], top: dict[str, int]) -> None:
    """Keep what this text built (written by the next `flush`)."""
    with _lock:
        store = _open()
        if store is None:
            return
        try:
            store.pending[_key(text)] = marshal.dumps((values, root, top))
        except ValueError:    # a value marshal cannot hold: not kept
            return
        if len(store.pending) >= 500:    # a few hundred KB held at most (a plan of 10,000 stays small)
            flush()


def flush() -> None:
    """Write the entries kept since the last flush (one transaction); the end of a load calls it."""
    with _lock:
        if _store is None:
            return
        try:
            _store.flush()
        except sqlite3.Error:
            _store.pending.clear()
