"""Find the manifests under a directory and load them all (the `load` stage).

Every file is read and validated before anything else happens; all errors are
collected so one run reports every bad file, not just the first.
"""
from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional, Protocol, Sequence

from ..errors import ManifestError, ManifestErrors, ReconcileError
from . import files, ignore, parsecache
from .config import FILENAME as CONFIG_FILENAME
from .config import display_path

DEFAULT_PATTERNS = ("*-deployment.yaml", "*-deployment.yml", "deployment.yaml")
# Any other *.yaml / *.yml is a manifest when its first few KB say so (`prefect deployment build -o` takes
# any name): Prefect's build header, or the `### DO NOT EDIT BELOW THIS LINE` marker plus a `flow_name` key.
SNIFF_BYTES = 8192
_HEADER = re.compile(rb"^### A complete description of a Prefect Deployment for flow", re.MULTILINE)
_MARKER = re.compile(rb"^###\s*DO NOT EDIT BELOW THIS LINE\s*$", re.MULTILINE)
_FLOW_NAME = re.compile(rb"^flow_name\s*:", re.MULTILINE)
if TYPE_CHECKING:
    import pathspec

    from .manifest import Manifest

SKIP_DIRS = {"__pycache__", "node_modules", "venv", "env", "site-packages"}


@dataclass(frozen=True)
class Loaded:
    root: Path
    manifests: list[Manifest]
    notices: list[str] = field(default_factory=list)
    errors: list[ReconcileError] = field(default_factory=list)   # only with strict=False


class Patterns(Protocol):
    """What finding the manifests takes from reconcile.yaml (its Config, or config.NO_SETTINGS without one)."""
    include: Sequence[str]
    exclude: Sequence[str]


def _ignore_spec(root: Path, config: Patterns) -> Optional[pathspec.PathSpec]:
    """`.prefectignore` and `exclude` compiled; None when there are no patterns."""
    ignore_file = root / ".prefectignore"
    display = display_path(ignore_file)
    lines = ignore.read(ignore_file, display)
    ignore.check(lines, display)
    ignore.check(config.exclude, f"{CONFIG_FILENAME}: exclude")   # reported with its position on load
    if not lines and not config.exclude:
        return None
    import pathspec   # only with patterns to compile (about 10 ms)
    return pathspec.GitIgnoreSpec.from_lines(lines + list(config.exclude))


def find(root: Path, config: Patterns) -> list[Path]:
    """Manifest files under root, sorted: those named like one (or matching `include`) and other YAML files
    whose first few KB are a Prefect manifest's; hidden and ignored directories are skipped."""
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise ReconcileError(f"{root}: no such directory")
    spec = _ignore_spec(root, config)
    ignored = spec.match_file if spec is not None else (lambda _: False)
    found: set[Path] = set()
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root)
        dirnames[:] = sorted(
            d for d in dirnames
            if not d.startswith(".") and d not in SKIP_DIRS
            and not ignored(str(rel_dir / d) + "/")
        )
        for name in filenames:
            rel = (rel_dir / name).as_posix()
            if rel == CONFIG_FILENAME:
                continue  # reconcile.yaml is the settings file, never a manifest
            named = any(fnmatch.fnmatchcase(name, p) for p in DEFAULT_PATTERNS) or any(
                fnmatch.fnmatchcase(rel, p) for p in config.include
            )
            if (named or _yaml(name)) and not ignored(rel):
                if named or looks_like_manifest(files.head(Path(dirpath) / name, SNIFF_BYTES)):
                    found.add(Path(dirpath) / name)
    return sorted(found)


def _yaml(name: str) -> bool:
    return name.endswith((".yaml", ".yml")) and not name.startswith(".")


def looks_like_manifest(head: bytes) -> bool:
    """The first bytes of a file are a Prefect 2 deployment manifest's (build header, or marker + flow_name)."""
    # the literal tests first: a regex anchored at line starts is tried at every byte, the search is not
    if b"A complete description of a Prefect Deployment" in head and _HEADER.search(head) is not None:
        return True
    return (b"DO NOT EDIT BELOW THIS LINE" in head and b"flow_name" in head
            and _MARKER.search(head) is not None and _FLOW_NAME.search(head) is not None)


def _display(path: Path, root: Path) -> str:
    """Relative to the working directory when the file is below it, else absolute."""
    return display_path(path)


def load_all(root: Path, config: Patterns, strict: bool = True,
             on_found: Optional[Callable[[list[Path]], None]] = None,
             paths: Optional[list[Path]] = None) -> Loaded:
    """Parse every manifest; raise ManifestErrors listing every bad file (or, not strict, return them).
    `on_found` is told which files they are before any is parsed.  `paths`: what find(root, config) gave."""
    manifests: list[Manifest] = []
    notices: list[str] = []
    errors: list[ReconcileError] = []
    if paths is None:
        paths = find(root, config)
    if on_found is not None:
        on_found(paths)
    from .manifest import parse   # here: its models and jsonschema load while what on_found started runs
    for path in paths:
        display = _display(path, root)
        try:
            raw = files.read(path)
        except files.Unreadable as exc:
            errors.append(ManifestError(display, 1, 1, None, str(exc)))
            continue
        try:
            if _foreign(raw):
                notices.append(f"{display}: skipped, not a Prefect manifest (has apiVersion/kind)")
                continue
            manifests.append(parse(raw, path, display))
        except ManifestError as exc:
            errors.append(exc)
    parsecache.flush()   # what the files built, kept for the next load of the same texts
    if errors and strict:
        raise ManifestErrors(errors)
    return Loaded(root=root, manifests=manifests, notices=notices, errors=errors)


_FLOW_LINE = re.compile(rb"^flow_name[ \t]*:[ \t]*([^\r\n]*)", re.MULTILINE)
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_ .\-]*")


def flow_name_guess(raw: bytes) -> Optional[str]:
    """The flow name a manifest's text declares, read off its `flow_name:` line without parsing the file: a
    guess for reading ahead (the parsed manifest decides), None when the line is not a plain one-line value."""
    found = _FLOW_LINE.findall(raw, 0, 1 << 20)
    if len(found) != 1:
        return None
    if len(found[0]) > 1024:     # no flow is named like that: the parsed manifest will say what is wrong
        return None
    text = found[0].decode("utf-8", "replace")
    text = text.split(" #", 1)[0].rstrip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"" and "\\" not in text and text[0] not in text[1:-1]:
        return text[1:-1]
    if _PLAIN.fullmatch(text) and text.lower() not in _NOT_TEXT:
        return text
    return None


_NOT_TEXT = {"null", "true", "false", "yes", "no", "on", "off", "y", "n"}


def _foreign(raw: bytes) -> bool:
    """A Kubernetes object (or similar) that merely matches the file name pattern."""
    def top(key: bytes) -> bool:
        return re.search(rb"^" + key + rb"\s*:", raw, re.MULTILINE) is not None
    return top(b"apiVersion") and top(b"kind") and not top(b"flow_name")


def repository_root(path: Path) -> Path:
    """The git work tree holding path (symlinks may not leave it), else path itself."""
    path = path.resolve()
    start = path if path.is_dir() else path.parent
    for candidate in (start, *start.parents):
        if (candidate / ".git").exists():
            return candidate
    return start
