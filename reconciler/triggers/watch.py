"""Watch mode: plan (or apply) a directory at start and again after every relevant change.

`watch` opens ONE API client for the whole session (an embedded server starts once) and feeds
watchfiles' debounced change batches to `loop`, which is plain Python: it takes any iterable of
batches and a stop event, so tests drive it with a scripted stream.  A run that fails on bad input
(a manifest saved half-edited, an unreachable server) prints its one-line errors and the loop keeps
going; the next change plans again.  SIGINT/SIGTERM set the stop event: the run in progress
finishes, then `watch` returns 0.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import signal
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable, Iterator, Optional, Sequence, TextIO

from ..engine import run as engine
from ..errors import ManifestErrors, ReconcileError
from ..manifests import config as config_mod
from ..prefect.api import PrefectClient
from ..prefect.connection import resolve
from ..render import text

# directories whose changes never matter (hidden ones are skipped too, as manifest discovery does)
IGNORED_DIRS = {"__pycache__", "node_modules", "venv", "env", "site-packages"}
# editors' swap, backup, lock and probe files; compiled Python
TEMPORARY = re.compile(r"~$|\.sw[a-p]$|^\.#|^#.*#$|^4913$|\.tmp$|\.bak$|\.orig$|\.kate-swp$|\.py[cod]$"
                       r"|\.___jb_\w+___$|^flycheck_|^\.DS_Store$")
MAX_NAMED = 3                                      # files named in a header line; the rest are counted


def relevant(root: Path, path: str) -> bool:
    """Whether a change to `path` can change the plan of `root`.

    Any file can: manifests, reconcile.yaml, .prefectignore, and every file of a code bundle (flow code,
    requirements.txt, SQL, data) that an upload would send.  Only VCS and tool directories, caches and
    editors' temporary files cannot.
    """
    p = Path(path)
    try:
        parts = p.resolve().relative_to(root.resolve()).parts if p.is_absolute() else p.parts
    except ValueError:
        parts = (p.name,)
    if not parts:
        return False
    *dirs, name = parts
    if any(d.startswith(".") or d in IGNORED_DIRS for d in dirs) or TEMPORARY.search(name):
        return False
    return True


def relevant_in(roots: Sequence[Path], path: str) -> bool:
    """`relevant` judged against the watched directory holding path (the innermost), else the first."""
    p = Path(path).resolve() if Path(path).is_absolute() else None
    holding = [r for r in roots if p is not None and (p == r.resolve() or r.resolve() in p.parents)]
    return relevant(max(holding, key=lambda r: len(r.resolve().parts)) if holding else roots[0], path)


def describe(root: Path, batch: Iterable[tuple[object, str]], known: Optional[set[str]] = None,
             also: Sequence[Path] = ()) -> list[str]:
    """`path (added|modified|deleted)` for each relevant path of a batch, sorted (`also`: more watched
    directories, the code roots outside root).

    `known` (the relevant files seen so far; kept up to date here) tells a new file from one an editor
    saved by renaming a temporary file over it, which watchfiles reports as added.
    """
    kinds: dict[str, set[str]] = {}
    for change, path in batch:
        if relevant_in((root, *also), path):
            kinds.setdefault(str(Path(path).resolve()), set()).add(getattr(change, "name", str(change)))
    out = []
    for path, seen in sorted(kinds.items(), key=lambda item: _shown(root, item[0])):
        if not Path(path).exists():
            if known is not None and path not in known:
                continue                    # created and deleted within the batch: an editor's or sed's temp file
            kind = "deleted"
            if known is not None:
                known.discard(path)
        elif known is not None:
            kind = "modified" if path in known else "added"
            known.add(path)
        else:
            kind = "added" if seen == {"added"} else "modified"
        out.append(f"{_shown(root, path)} ({kind})")
    return out


def scan(root: Path, also: Sequence[Path] = ()) -> set[str]:
    """The relevant files under root (and the directories `also`) now (resolved paths)."""
    base = root.resolve()
    found = set()
    if base.is_file():
        found = {str(base)} if relevant(base.parent, str(base)) else set()
    for top in [base] * base.is_dir() + [a.resolve() for a in also]:
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = [d for d in dirnames if not d.startswith(".") and d not in IGNORED_DIRS]
            found.update(str(Path(dirpath) / name) for name in filenames
                         if relevant(top, str(Path(dirpath) / name)))
    return found


def outside(root: Path, code_roots: Iterable[Path]) -> tuple[Path, ...]:
    """The code roots to watch besides root: those not inside it (a manifest in deployments/ whose code is in
    flows/ at the repository's root), outermost only."""
    base = (root if root.is_dir() else root.parent).resolve()
    extra = sorted({c.resolve() for c in code_roots if c.resolve() != base and base not in c.resolve().parents},
                   key=lambda c: (len(c.parts), str(c)))
    out: list[Path] = []
    for c in extra:
        if not any(o == c or o in c.parents for o in out):
            out.append(c)
    return tuple(out)


def _shown(root: Path, path: str) -> str:
    """As the plan shows files: relative to the working directory when below it, else absolute."""
    absolute = (root / path).resolve()
    try:
        return PurePosixPath(absolute.relative_to(Path.cwd().resolve())).as_posix()
    except ValueError:
        return str(absolute)


@dataclass
class Session:
    """One watch session: a directory, one open client, where the output goes."""

    root: Path
    options: engine.Options
    client: PrefectClient
    apply: bool = False
    colour: bool = False
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    now: Callable[[], dt.datetime] = dt.datetime.now
    also: tuple[Path, ...] = ()     # code roots outside root, watched too
    runs: int = 0
    failed: int = 0                # runs that ended in an error (bad input, unreachable server, failed action)

    @property
    def base(self) -> Path:
        return self.root if self.root.is_dir() else self.root.parent

    def run(self, what: str) -> bool:
        """Print a header, then the plan (and with apply, the report); errors are printed, not raised."""
        self.runs += 1
        print(f"[{self.now():%H:%M:%S}] {what}", file=self.out, flush=True)
        ok = False
        try:
            if self.apply:
                report = engine.apply_path(self.root, self.options, client=self.client)
                self.out.write(text.render_plan(report.plan, self.colour))
                if report.results:
                    self.out.write(text.render_report(report, self.colour))
                ok = report.exit_code == 0
            else:
                self.out.write(text.render_plan(engine.make_plan(self.root, self.options, client=self.client),
                                                self.colour))
                ok = True
        except ManifestErrors as exc:
            for error in exc.errors:
                print(f"error: {error}", file=self.err)
            print(f"{len(exc.errors)} error(s); nothing was changed. Waiting for the next change.", file=self.err)
        except ReconcileError as exc:
            print(f"error: {exc}", file=self.err)
            print("Waiting for the next change.", file=self.err)
        self.failed += 0 if ok else 1
        self.out.flush()
        self.err.flush()
        return ok


def loop(session: Session, batches: Iterable[Iterable[tuple[object, str]]], stop: threading.Event) -> None:
    """Run once now, then once per batch that has a relevant change, until the batches end or stop is set."""
    if stop.is_set():
        return
    verb = "apply" if session.apply else "plan"
    known = scan(session.root, session.also)
    session.run(f"watching {session.root} ({verb} on every change; Ctrl-C to stop)")
    for batch in batches:
        if stop.is_set():
            return
        changed = describe(session.base, batch, known, session.also)
        if not changed:
            continue
        extra = f", and {len(changed) - MAX_NAMED} more" if len(changed) > MAX_NAMED else ""
        session.run("changed: " + ", ".join(changed[:MAX_NAMED]) + extra)


def watch(path: Path, options: engine.Options, apply: bool = False, debounce_ms: int = 300, colour: bool = False,
          out: Optional[TextIO] = None, err: Optional[TextIO] = None) -> int:
    import watchfiles

    root = Path(path)
    if not root.exists():
        raise ReconcileError(f"{path}: no such file or directory")
    stop = threading.Event()
    with _stop_on_signals(stop), engine.connect(options, _config_url(root, options)) as client:
        session = Session(root, options, client, apply=apply, colour=colour,
                          out=out or sys.stdout, err=err or sys.stderr, also=outside(root, engine.code_roots(root)))
        roots = (session.base.resolve(), *session.also)
        batches = watchfiles.watch(root, *session.also, watch_filter=lambda _change, p: relevant_in(roots, p),
                                   step=debounce_ms,
                                   debounce=max(1600, 4 * debounce_ms), stop_event=stop, raise_interrupt=False,
                                   rust_timeout=500, yield_on_timeout=True)
        next(batches, None)     # the watcher is live from here: an edit made during the first plan is seen
        loop(session, batches, stop)
    print("stopped watching", file=err or sys.stderr)
    return 0


def _config_url(root: Path, options: engine.Options) -> Optional[str]:
    """reconcile.yaml's api_url, read once (the one client is opened at start); broken is fine if not needed."""
    try:
        return config_mod.load(root if root.is_dir() else root.parent).config.api_url
    except ReconcileError:
        if resolve(options.api_url, None).api_url is None:
            raise
        return None


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM: finish the run in progress, then stop (a second Ctrl-C interrupts at once)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: object) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
