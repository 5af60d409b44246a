"""A deployment's code bundle: which files, and one hash over them (local I/O only).

The files are the bundle root (the manifest's directory, or a root from config)
minus `.prefectignore` patterns (gitignore syntax, negation included) and minus
Prefect 2's default ignore list.  Symlinks that leave the repository are never
followed.  The hash is sha256 over the sorted relative paths, each file's exec
bit and each file's content hash: the same on every machine and checkout (line
endings as stored, no mtimes).  File hashes are cached by (path, size, mtime_ns).
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pathspec

from ..errors import ReconcileError
from ..manifests import ignore
from ..manifests.config import display_path
from ..manifests.confine import inside

# What Prefect 2 writes into a new .prefectignore (prefect/.prefectignore, 2.20).
DEFAULT_IGNORE = """
.prefectignore
__pycache__/
*.py[cod]
*$py.class
*.egg-info/
*.egg
.mypy_cache/
.dmypy.json
dmypy.json
.pyre/
profile_default/
ipython_config.py
*.ipynb_checkpoints/*
.python-version
.env
.venv
env/
venv/
.DS_Store
dask-worker-space/
.idea/
.vscode/
.git/
.hg/
.reconcile/
.reconcile-bundle.json
""".split()

CHUNK = 1 << 20


@dataclass(frozen=True)
class FileEntry:
    path: str          # relative, POSIX separators
    sha256: str
    size: int
    executable: bool

    def to_json(self) -> dict:
        return {"sha256": self.sha256, "size": self.size, "exec": self.executable}


@dataclass(frozen=True)
class Bundle:
    root: Path                         # absolute directory the files are relative to
    display: str                       # the root as printed
    files: tuple[FileEntry, ...]
    skipped: tuple[str, ...] = ()      # symlinks leaving the repository, unreadable entries

    @property
    def digest(self) -> str:
        h = hashlib.sha256()
        for f in self.files:
            h.update(f"{f.path}\0{int(f.executable)}\0{f.sha256}\n".encode())
        return h.hexdigest()

    @property
    def by_path(self) -> dict[str, FileEntry]:
        return {f.path: f for f in self.files}

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


class HashCache:
    """sha256 of files by (path, size, mtime_ns), kept in a JSON file between runs.

    The cache lives in the repository (`.reconcile/`), whose content a commit decides: its directory and
    files are opened without following symlinks (O_NOFOLLOW, relative to the directory's descriptor), so a
    committed `.reconcile` link, or a link named like one of its files, is never written through.  A cache
    that cannot be read or written safely only costs time.
    """

    def __init__(self, file: Optional[Path]) -> None:
        self.file = file
        self.entries: dict[str, list] = {}
        self.dirty = False
        self.reads = 0  # files actually read and hashed (a warm cache reads none)
        if file is not None:
            try:
                loaded = json.loads(_read_nofollow(file))
                if isinstance(loaded, dict) and loaded.get("version") == 1 and isinstance(loaded.get("files"), dict):
                    self.entries = loaded["files"]
            except (OSError, ValueError):
                self.entries = {}

    def sha256(self, path: Path, st: os.stat_result) -> str:
        key = str(path)
        hit = self.entries.get(key)
        if isinstance(hit, list) and len(hit) == 3 and hit[0] == st.st_size and hit[1] == st.st_mtime_ns:
            return hit[2]
        digest = _hash_file(path)
        self.reads += 1
        self.entries[key] = [st.st_size, st.st_mtime_ns, digest]
        self.dirty = True
        return digest

    def save(self) -> None:
        if self.file is None or not self.dirty:
            return
        try:
            folder = _open_dir_nofollow(self.file.parent, create=True)
        except OSError:
            return
        try:
            _create_nofollow(folder, ".gitignore", b"# reconcile's cache; never commit it\n*\n")
            tmp = f"{self.file.name}.{secrets.token_hex(6)}.tmp"
            _create_nofollow(folder, tmp, json.dumps({"version": 1, "files": self.entries}).encode())
            try:
                # rename never follows a link at the destination: it replaces the link itself
                os.replace(tmp, self.file.name, src_dir_fd=folder, dst_dir_fd=folder)
            except OSError:
                os.unlink(tmp, dir_fd=folder)
                raise
            self.dirty = False
        except OSError:
            pass
        finally:
            os.close(folder)


NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
SAFE = bool(NOFOLLOW) and {os.open, os.mkdir, os.rename, os.unlink} <= os.supports_dir_fd  # os.replace is rename


def _open_dir_nofollow(directory: Path, create: bool = False) -> int:
    """A descriptor of `directory`, its parent opened as it is and its own name never through a link."""
    if not SAFE:
        raise OSError("this platform cannot open files without following links")
    parent = os.open(directory.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        if create:
            try:
                os.mkdir(directory.name, 0o755, dir_fd=parent)
            except FileExistsError:
                pass
        return os.open(directory.name, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | NOFOLLOW, dir_fd=parent)
    finally:
        os.close(parent)


def _read_nofollow(file: Path) -> bytes:
    folder = _open_dir_nofollow(file.parent)
    try:
        fd = os.open(file.name, os.O_RDONLY | NOFOLLOW | getattr(os, "O_NONBLOCK", 0), dir_fd=folder)
    finally:
        os.close(folder)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise OSError("not a regular file")
        return f.read()


def _create_nofollow(folder: int, name: str, content: bytes) -> bool:
    """Create a new file (never an existing one, never through a link); False when the name is taken."""
    try:
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW, 0o644, dir_fd=folder)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as f:
        f.write(content)
    return True


def _hash_file(path: Path) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(CHUNK), b""):
                h.update(chunk)
    except OSError as exc:
        raise ReconcileError(f"{path}: cannot read bundle file: {exc.strerror}") from None
    return h.hexdigest()


def ignore_spec(root: Path) -> pathspec.PathSpec:
    """Prefect's defaults plus the root's `.prefectignore` (bounded; a bad pattern is one line naming it)."""
    custom = root / ".prefectignore"
    display = display_path(custom)
    lines = ignore.read(custom, display)
    ignore.check(lines, display)
    return pathspec.GitIgnoreSpec.from_lines(list(DEFAULT_IGNORE) + lines)


def collect(root: Path, repo: Path, cache: HashCache, display: Optional[str] = None) -> Bundle:
    """Walk root and hash every file the bundle consists of."""
    root = root.resolve()
    repo = repo.resolve()
    if not root.is_dir():
        raise ReconcileError(f"{display or root}: bundle directory does not exist")
    spec = ignore_spec(root)
    files: list[FileEntry] = []
    skipped: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        rel_dir = here.relative_to(root).as_posix()
        prefix = "" if rel_dir == "." else rel_dir + "/"
        kept = []
        for d in sorted(dirnames):
            full = here / d
            if spec.match_file(prefix + d + "/"):
                continue
            if full.is_symlink():
                skipped.append(f"{prefix}{d}/ (symlinked directory, not followed)")
                continue
            kept.append(d)
        dirnames[:] = kept
        for name in sorted(filenames):
            rel = prefix + name
            if spec.match_file(rel):
                continue
            full = here / name
            if full.is_symlink():
                if not inside(full, repo):
                    skipped.append(f"{rel} (symlink leaving the repository)")
                    continue
            try:
                st = full.stat()
            except OSError as exc:
                raise ReconcileError(f"{full}: cannot read bundle file: {exc.strerror}") from None
            if not stat.S_ISREG(st.st_mode):
                continue
            files.append(FileEntry(rel, cache.sha256(full, st), st.st_size, bool(st.st_mode & stat.S_IXUSR)))
    files.sort(key=lambda f: f.path)
    return Bundle(root=root, display=display or str(root), files=tuple(files), skipped=tuple(skipped))
