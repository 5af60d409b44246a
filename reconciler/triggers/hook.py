"""The git hook: a `post-receive` hook in a (bare) repository that applies the pushed commit.

`install` writes a small shell script that pins the interpreter which installed it and calls
`reconcile hook run` with the settings (kept in the script itself, so installing again updates them).
`run` does the work: it reads the `old new ref` lines git passes on stdin, takes the commit pushed
to the configured branch, checks exactly that commit out into a fresh temporary directory (a shared
clone: no objects are copied), applies `<tmp>/<path>` with the engine, and removes the directory.

Hook runs for one repository are serialised with a file lock; a run that finds its branch already
moved on (a later push, whose own hook applies the newer commit) skips its commit, so an older commit
is never applied after a newer one.  No API key is ever written to the hook.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Iterable, Iterator, Optional, TextIO

from ..engine import run as engine
from ..engine.source import normalize_remote
from ..errors import ReconcileError
from ..manifests import config as config_mod
from ..prefect.api import PrefectClient
from ..render import text

MARKER = "# reconcile post-receive hook"
HOOK_NAME = "post-receive"
BACKUP_SUFFIX = ".before-reconcile"
LOCK_FILE = "reconcile-hook.lock"
LOCK_TIMEOUT = 120.0          # seconds to wait for another apply of the same source (e.g. `reconcile serve`)
# set by git for the hook's own repository; they would point our git commands (and GitPython) at it
REPO_VARS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR",
             "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_QUARANTINE_PATH", "GIT_NAMESPACE", "GIT_PREFIX")


@dataclass(frozen=True)
class Settings:
    repo: Path                          # the repository's directory (absolute)
    branch: str                         # short name: main
    path: str = ""                      # the manifests' directory inside the repository ("" = its root)
    source: Optional[str] = None        # --source: wins over reconcile.yaml
    default_source: Optional[str] = None  # used when neither --source nor reconcile.yaml names one
    api_url: Optional[str] = None
    api_key_file: Optional[Path] = None

    @property
    def ref(self) -> str:
        return f"refs/heads/{self.branch}"

    def args(self) -> list[str]:
        """The `reconcile hook run` options that reproduce these settings."""
        out = ["--repo", str(self.repo), "--branch", self.branch]
        pairs = (("--path", self.path), ("--source", self.source), ("--default-source", self.default_source),
                 ("--api-url", self.api_url), ("--api-key-file", self.api_key_file))
        for flag, value in pairs:
            if value:
                out += [flag, str(value)]
        return out


@dataclass(frozen=True)
class Installed:
    hook: Path
    settings: Settings
    updated: bool                       # it replaced an earlier hook of ours
    backup: Optional[Path] = None       # where a foreign hook went (--force)


# ----------------------------------------------------------------------------- install

def install(repo: Path, branch: str, path: str = "", source: Optional[str] = None, api_url: Optional[str] = None,
            api_key_file: Optional[Path] = None, force: bool = False, python: Optional[str] = None) -> Installed:
    repo = Path(repo).expanduser().resolve()
    if not repo.is_dir():
        raise ReconcileError(f"{repo}: no such directory")
    try:
        _git("-C", str(repo), "rev-parse", "--absolute-git-dir")
    except ReconcileError:
        raise ReconcileError(f"{repo}: not a git repository") from None
    branch = check_branch(branch)
    sub = clean_path(path)
    key_file = None
    if api_key_file is not None:
        key_file = Path(api_key_file).expanduser().resolve()
        if not key_file.is_file():
            raise ReconcileError(f"{api_key_file}: no such file (--api-key-file)")
    settings = Settings(repo, branch, sub, source or None, None if source else default_source(repo, sub),
                        api_url or None, key_file)
    hook = hooks_dir(repo) / HOOK_NAME
    updated, backup = False, None
    if hook.exists() or hook.is_symlink():
        existing = hook.read_text(encoding="utf-8", errors="replace") if hook.is_file() else ""
        if MARKER in existing:
            updated = True
        elif not force:
            raise ReconcileError(f"{hook}: a post-receive hook that reconcile did not write is already there; "
                                 f"--force replaces it (it is kept as {hook.name}{BACKUP_SUFFIX})")
        else:
            backup = hook.with_name(hook.name + BACKUP_SUFFIX)
            os.replace(hook, backup)
    hook.parent.mkdir(parents=True, exist_ok=True)
    partial = hook.with_name(f".{hook.name}.{os.getpid()}.tmp")
    partial.write_text(script(settings, python or sys.executable), encoding="utf-8")
    partial.chmod(0o755)
    os.replace(partial, hook)
    return Installed(hook, settings, updated, backup)


def script(settings: Settings, python: str) -> str:
    command = " ".join(shlex.quote(a) for a in [python, "-m", "reconciler", "hook", "run", *settings.args()])
    return (
        "#!/bin/sh\n"
        f"{MARKER}: written by `reconcile hook install`; run that again to change the settings.\n"
        f"# On a push to {settings.ref} it applies the pushed commit to the Prefect API. A push cannot be\n"
        "# refused any more at this point: a failed apply only shows in the push output (and the exit status).\n"
        "# No API key is kept here: PREFECT_API_KEY comes from the git server's environment or --api-key-file.\n"
        "PYTHONUNBUFFERED=1\nexport PYTHONUNBUFFERED\n"
        f"exec {command} 2>&1\n"
    )


def hooks_dir(repo: Path) -> Path:
    """Where git looks for this repository's hooks (`core.hooksPath` when set)."""
    found = Path(_git("-C", str(repo), "rev-parse", "--git-path", "hooks"))
    return found if found.is_absolute() else (repo / found)


def check_branch(branch: str) -> str:
    name = branch.removeprefix("refs/heads/")
    try:
        _git("check-ref-format", "--branch", name)
    except ReconcileError:
        raise ReconcileError(f"{branch!r} is not a valid branch name") from None
    return name


def clean_path(path: Optional[str]) -> str:
    """A sub-directory inside the repository, as a relative POSIX path ("" for the root)."""
    if not path:
        return ""
    pure = PurePosixPath(path.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts:
        raise ReconcileError(f"--path {path!r}: must be a directory inside the repository (relative, no '..')")
    return "" if str(pure) == "." else str(pure)


def default_source(repo: Path, path: str) -> str:
    """The repository path as a clone of it names its remote (see reconciler.engine.source), plus the sub-directory.

    So `reconcile plan` in a clone whose origin is this repository's path uses the same inventory.
    """
    base = normalize_remote(str(repo))
    return f"{base}//{path}" if path else base


# ----------------------------------------------------------------------------- run

@dataclass(frozen=True)
class Push:
    old: str
    new: str
    ref: str

    @property
    def deletes(self) -> bool:
        return set(self.new) == {"0"}


def parse_updates(lines: Iterable[str]) -> list[Push]:
    """git's post-receive input: one `<old-sha> <new-sha> <ref>` line per updated ref."""
    out = []
    for line in lines:
        parts = line.split()
        if len(parts) == 3 and all(re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", p) for p in parts[:2]):
            out.append(Push(*parts))
    return out


def run(settings: Settings, lines: Iterable[str], options: engine.Options, out: Optional[TextIO] = None,
        client: Optional[PrefectClient] = None) -> int:
    """Apply the commit pushed to the branch (0 when there is none); ReconcileError for bad input."""
    out = out or sys.stdout
    for var in REPO_VARS:
        os.environ.pop(var, None)
    push = next((p for p in parse_updates(lines) if p.ref == settings.ref), None)
    if push is None:
        return 0
    if push.deletes:
        print(f"reconcile: {settings.ref} was deleted; nothing applied.", file=out)
        return 0
    if settings.api_key_file is not None:
        os.environ["PREFECT_API_KEY"] = _read_key(settings.api_key_file)
    with _serialised(settings.repo):
        tip = _tip(settings)
        if tip != push.new:
            moved = f"moved on to {tip[:12]}" if tip else "been deleted"
            print(f"reconcile: {settings.ref} has {moved} since {push.new[:12]} was pushed; that push's own hook "
                  f"applies it, so {push.new[:12]} is skipped.", file=out)
            return 0
        where = settings.path or "."
        print(f"reconcile: applying {push.new[:12]} ({settings.ref}), directory {where}", file=out, flush=True)
        with tempfile.TemporaryDirectory(prefix="reconcile-hook-") as tmp:
            tree = Path(tmp) / "tree"
            checkout(settings.repo, push.new, tree)
            if not (tree / where).is_dir():
                raise ReconcileError(f"{where}: no such directory in commit {push.new[:12]}")
            with contextlib.chdir(tree):         # manifests show as repository paths in messages
                report = engine.apply_path(Path(where), _options(settings, Path(where), options), client=client)
    out.write(text.render_plan(report.plan))
    for notice in report.notices if not report.results else []:
        print(f"note: {notice}", file=out)
    if report.results:
        out.write(text.render_report(report))
    if report.exit_code:
        print(f"reconcile: the apply of {push.new[:12]} failed (the push itself is in; fix and push again).",
              file=out)
    out.flush()
    return report.exit_code


def _options(settings: Settings, root: Path, options: engine.Options) -> engine.Options:
    source = settings.source
    if source is None and not config_mod.load(root).config.source:
        source = settings.default_source or default_source(settings.repo, settings.path)
    return replace(options, source=source, api_url=settings.api_url or options.api_url,
                   lock_timeout=max(options.lock_timeout, LOCK_TIMEOUT))


def checkout(repo: Path, sha: str, dest: Path) -> None:
    """Exactly this commit in dest: a shared clone (borrows the repository's objects), detached at sha."""
    _git("clone", "--quiet", "--shared", "--no-checkout", str(repo), str(dest))
    _git("-C", str(dest), "-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", sha)


def _tip(settings: Settings) -> Optional[str]:
    try:
        return _git("-C", str(settings.repo), "rev-parse", "--verify", "--quiet", f"{settings.ref}^{{commit}}")
    except ReconcileError:
        return None


@contextlib.contextmanager
def _serialised(repo: Path) -> Iterator[None]:
    git_dir = Path(_git("-C", str(repo), "rev-parse", "--absolute-git-dir"))
    with open(git_dir / LOCK_FILE, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read_key(path: Path) -> str:
    try:
        key = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ReconcileError(f"{path}: cannot read the API key: {exc.strerror}") from None
    if not key:
        raise ReconcileError(f"{path}: the API key file is empty")
    return key


def _git(*args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in REPO_VARS}
    try:
        done = subprocess.run(["git", *args], capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise ReconcileError("git: command not found (the hook needs the git CLI)") from None
    if done.returncode != 0:
        detail = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise ReconcileError(f"git {_subcommand(args)} failed: {detail}")
    return done.stdout.strip()


def _subcommand(args: tuple[str, ...]) -> str:
    rest = list(args)
    while rest and rest[0] in ("-C", "-c"):
        rest = rest[2:]
    return rest[0] if rest else "git"
