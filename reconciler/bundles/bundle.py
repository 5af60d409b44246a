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
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pathspec

from ..errors import ReconcileError

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
    """sha256 of files by (path, size, mtime_ns), kept in a JSON file between runs."""

    def __init__(self, file: Optional[Path]) -> None:
        self.file = file
        self.entries: dict[str, list] = {}
        self.dirty = False
        self.reads = 0  # files actually read and hashed (a warm cache reads none)
        if file is not None and file.is_file():
            try:
                loaded = json.loads(file.read_text(encoding="utf-8"))
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
            self.file.parent.mkdir(parents=True, exist_ok=True)
            ignore = self.file.parent / ".gitignore"
            if not ignore.exists():
                ignore.write_text("# reconcile's cache; never commit it\n*\n", encoding="utf-8")
            tmp = self.file.with_suffix(".tmp")
            tmp.write_text(json.dumps({"version": 1, "files": self.entries}), encoding="utf-8")
            os.replace(tmp, self.file)
            self.dirty = False
        except OSError:
            pass  # a cache that cannot be written only costs time


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
    lines = list(DEFAULT_IGNORE)
    custom = root / ".prefectignore"
    if custom.is_file():
        lines += custom.read_text(encoding="utf-8", errors="replace").splitlines()
    return pathspec.GitIgnoreSpec.from_lines(lines)


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
                target = full.resolve()
                if not _inside(target, repo):
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


def _inside(path: Path, repo: Path) -> bool:
    return path == repo or repo in path.parents
