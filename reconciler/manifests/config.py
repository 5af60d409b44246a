"""`reconcile.yaml` at the root of the directory: validated like a manifest (its models: configmodel)."""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from ..errors import ManifestError
from . import files, ignore
from .confine import Escapes, confine

if TYPE_CHECKING:
    from .configmodel import Config

FILENAME = "reconcile.yaml"


@dataclass(frozen=True)
class LoadedConfig:
    config: Config
    file: Optional[Path]


@dataclass(frozen=True)
class Defaults:
    """The patterns finding the manifests takes (discover.Patterns) where there is no reconcile.yaml: a plan
    finds its files, and sends its first reads, before the settings' models are built (engine/run)."""
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()


NO_SETTINGS = Defaults()


def settings_file(root: Path) -> Optional[Path]:
    """root's reconcile.yaml, if it has one."""
    path = root / FILENAME if root.is_dir() else None
    return path if path is not None and (path.is_file() or path.is_symlink()) else None


def load(root: Path) -> LoadedConfig:
    from pydantic import ValidationError

    from . import yamlpos
    from .configmodel import Config
    path = settings_file(root)
    if path is None:
        return LoadedConfig(Config(), None)
    display = display_path(path)
    try:
        raw = files.read(path)
    except files.Unreadable as exc:
        raise ManifestError(display, 1, 1, None, str(exc)) from None
    located = yamlpos.load(raw, display)
    data: Any = located.data if located.data is not None else {}
    if not isinstance(data, dict):
        raise located.error((), f"{FILENAME} must be a mapping")
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        from .manifest import _first_error   # only for an error: manifest loads pydantic models and jsonschema
        raise _first_error(exc, located, unknown=f"unknown key (not a {FILENAME} setting)") from None
    for index, pattern in enumerate(config.exclude):
        found = ignore.problem(pattern)
        if found is not None:
            raise located.error(("exclude", index), found)
    if config.bundle_root is not None:
        try:
            bundle_directory(root, config)
        except Escapes as exc:
            raise located.error(("bundle_root",), (
                f"{config.bundle_root!r} leaves the repository {exc.root}: {exc.how} {exc.resolved} "
                "(use a directory inside the repository, e.g. '.')")) from None
    return LoadedConfig(config, path)


def display_path(path: Path) -> str:
    """Relative to the working directory when the file is below it, else absolute; printable on one line.

    A link that loops, or leads nowhere, is shown where it lies (resolving it raises)."""
    try:
        absolute = path.resolve()
    except (OSError, RuntimeError):
        absolute = Path(os.path.abspath(path))
    try:
        shown = absolute.relative_to(_resolved(os.getcwd())).as_posix()
    except (ValueError, OSError, RuntimeError):
        shown = str(absolute)
    return shown if shown.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in shown)


@functools.lru_cache(maxsize=16)
def _resolved(directory: str) -> Path:
    """The working directory, resolved once per run, not once per manifest."""
    return Path(directory).resolve()


def bundle_directory(root: Path, config: Config) -> Optional[Path]:
    """The directory `bundle_root` names (relative to root), confined to the repository (confine.Escapes)."""
    if config.bundle_root is None:
        return None
    from .discover import repository_root   # discover imports this module

    base = root.resolve()
    return Path(confine(repository_root(base), base / config.bundle_root, follow_links=True))
