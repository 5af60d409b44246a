"""`reconcile migrate`: the manifests under a directory → one Prefect 3 `prefect.yaml` (files only, no server).

The manifests are found and validated as `plan` finds them; every deployment is translated
(engine/migrated.py) before anything is written, and the file is written whole, next to itself first,
then moved into place: a failure leaves no half-written prefect.yaml.
"""
from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Optional

from ..errors import ManifestError, ManifestErrors, ReconcileError
from ..manifests import config as config_mod
from ..manifests import discover
from ..manifests.confine import Escapes, confine
from . import desired as desired_mod
from .migrated import Migrated, deployment

PREFECT_VERSION = "3.9.1"   # the release whose `prefect deploy` the output is checked against


@dataclass(frozen=True)
class Outcome:
    out: Path
    deployments: list[Migrated]
    pools: dict[str, str]          # work pool name → type, the pools `prefect deploy` needs to exist
    notices: list[str]


def migrate(path: Path, out: Optional[Path] = None, force: bool = False) -> Outcome:
    """Translate every manifest under `path` and write `out` (default `path/prefect.yaml`)."""
    root = Path(path)
    if not root.exists():
        raise ReconcileError(f"{path}: no such file or directory")
    home = root if root.is_dir() else root.parent
    target = Path(out) if out is not None else home / "prefect.yaml"
    _check_target(target, home, force)
    outcome = translate(root, target)
    text = render(outcome, display=_shown(root, target.parent))
    _write(target, text)
    return outcome


def translate(root: Path, target: Path) -> Outcome:
    """Load and translate (no write); raises ManifestErrors naming every file and line at fault."""
    home = root if root.is_dir() else root.parent
    cfg = config_mod.load(home).config
    loaded = discover.load_all(root, cfg, strict=False)
    manifests = list(loaded.manifests)
    errors: list[ReconcileError] = list(loaded.errors)
    try:
        wanted = desired_mod.resolve(manifests, config_mod.bundle_directory(home, cfg))
    except ManifestErrors as exc:
        raise ManifestErrors(errors + exc.errors) from None
    if errors:
        raise ManifestErrors(errors)
    if cfg.runtime_root:
        from ..bundles.collect import runtime_path
        wanted = [replace(d, fields={**d.fields, "path": runtime_path(d, root, cfg.runtime_root)})
                  if d.storage is None else d for d in wanted]
    by_identity = {m.identity: m for m in manifests}
    where = target.parent.resolve()
    done: list[Migrated] = []
    for want in sorted(wanted, key=lambda d: d.identity):
        m = by_identity[want.identity]
        try:
            done.append(deployment(m, want, where, cfg.prefect3, _relative(m.path, where)))
        except ManifestError as exc:
            errors.append(exc)
    if errors:
        raise ManifestErrors(errors)
    if not done:
        raise ReconcileError(f"{root}: no *-deployment.yaml manifests found; nothing to migrate")
    pools: dict[str, str] = {}
    for item in done:
        name, kind = item.pool
        if pools.setdefault(name, kind) != kind:
            raise ReconcileError(f"{item.source}: work pool {name!r} would run both {pools[name]} and {kind} "
                                 "infrastructure; a Prefect 3 pool has one type: set work_pool_name apart")
    notices = list(loaded.notices) + [n for item in done for n in item.notices]
    return Outcome(target, done, dict(sorted(pools.items())), notices)


def render(outcome: Outcome, display: str = ".") -> str:
    """The prefect.yaml text: deterministic (the same manifests give the same bytes)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    y = YAML()   # round trip: comments, key order
    y.default_flow_style = False
    y.width = 4096
    y.indent(mapping=2, sequence=2, offset=0)
    y.representer.add_representer(type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null"))
    doc = CommentedMap()
    doc["name"] = outcome.out.resolve().parent.name
    doc["prefect-version"] = PREFECT_VERSION
    doc["build"] = None
    doc["push"] = None
    items = CommentedSeq()
    for item in outcome.deployments:
        items.append(_commented(item.deployment))
    for index, item in enumerate(outcome.deployments):
        items.yaml_set_comment_before_after_key(index, before=f"{item.identity}, from {item.source}", indent=0)
    doc["deployments"] = items
    pools = ", ".join(f"{name} ({kind})" for name, kind in outcome.pools.items())
    doc.yaml_set_start_comment("\n".join([
        f"Written by `reconcile migrate` from the Prefect 2 manifests in {display}.",
        "Deploy from this directory with a Prefect 3 client:  prefect --no-prompt deploy --all",
        f"The work pools must exist first: {pools}",
        *(f"  prefect work-pool create {name} --type {kind}" for name, kind in outcome.pools.items()),
    ]))
    buffer = io.StringIO()
    y.dump(doc, buffer)
    return buffer.getvalue()


def _commented(value: Any) -> Any:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq
    if isinstance(value, dict):
        out = CommentedMap()
        for key, item in value.items():
            out[key] = _commented(item)
        return out
    if isinstance(value, list):
        return CommentedSeq(_commented(item) for item in value)
    return value


def _check_target(target: Path, home: Path, force: bool) -> None:
    """The output stays inside the repository, is not a link or a directory, and is new unless --force."""
    repo = discover.repository_root(home.resolve())
    absolute = Path(os.path.abspath(target))
    try:
        confine(repo, absolute, follow_links=True)
    except Escapes as exc:
        raise ReconcileError(f"{target}: outside the repository {repo} ({exc.how} {exc.resolved}); "
                             "write prefect.yaml inside it") from None
    if target.is_symlink():
        raise ReconcileError(f"{target}: is a symbolic link; reconcile does not write through links")
    if target.is_dir():
        raise ReconcileError(f"{target}: is a directory; give the prefect.yaml file's path")
    if target.exists() and not force:
        raise ReconcileError(f"{target}: already exists; --force overwrites it")
    if not absolute.parent.is_dir():
        raise ReconcileError(f"{target.parent}: no such directory")


def _write(target: Path, text: str) -> None:
    directory = Path(os.path.abspath(target)).parent
    temp = None
    try:
        fd, temp = tempfile.mkstemp(prefix=".prefect-yaml-", suffix=".tmp", dir=directory)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(temp, 0o644)
        os.replace(temp, target)
    except OSError as exc:
        if temp is not None and os.path.exists(temp):
            os.unlink(temp)
        raise ReconcileError(f"{target}: cannot write: {exc.strerror or exc}") from None


def _relative(path: Path, base: Path) -> str:
    return os.path.relpath(path.resolve(), base).replace(os.sep, "/")


def _shown(root: Path, base: Path) -> str:
    text = os.path.relpath(root.resolve(), base.resolve()).replace(os.sep, "/")
    return "this directory" if text == "." else text
