"""One working copy per source: fetch the branch, check out exactly the commit asked for.

GitPython drives the git CLI, so credentials come from git's own configuration (credential helpers, SSH keys,
a token in the URL); a URL's credentials are never printed.  Every git command has a time limit, and a
remote that stalls is cut off, so a hung server cannot freeze a source.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import git

from ..errors import ReconcileError
from .webhooks import redact

KEEP = ".reconcile"     # the hash cache survives checkouts (see bundle.HashCache)
ENV = {
    "GIT_TERMINAL_PROMPT": "0",                 # never wait for a password on a terminal nobody watches
    "GIT_SSH_COMMAND": "ssh -o BatchMode=yes -o ConnectTimeout=20 -o ServerAliveInterval=15 -o ServerAliveCountMax=4",
}
STALL = ["-c", "http.lowSpeedLimit=1000", "-c", "http.lowSpeedTime=60"]   # under 1 kB/s for a minute: give up


class Checkout:
    def __init__(self, url: str, branch: str, directory: Path, timeout: float = 300.0) -> None:
        self.url = url
        self.branch = branch
        self.directory = directory
        self.timeout = timeout
        self._repo: Optional[git.Repo] = None

    def _open(self) -> git.Repo:
        if self._repo is None:
            if (self.directory / ".git").is_dir():
                repo = git.Repo(self.directory)
            else:
                self.directory.mkdir(parents=True, exist_ok=True)
                repo = git.Repo.init(self.directory)
            with repo.config_writer() as cfg:
                cfg.set_value('remote "origin"', "url", self.url)
                cfg.set_value('remote "origin"', "fetch", "+refs/heads/*:refs/remotes/origin/*")
            self._repo = repo
        return self._repo

    def fetch(self) -> str:
        """Fetch the branch; return the commit it points at on the remote."""
        repo = self._open()
        self._git(repo, *STALL, "fetch", "--prune", "--no-tags", "origin",
                  f"+refs/heads/{self.branch}:refs/remotes/origin/{self.branch}")
        try:
            return repo.commit(f"refs/remotes/origin/{self.branch}").hexsha
        except (git.BadName, ValueError):
            raise ReconcileError(f"{redact(self.url)}: no branch {self.branch!r}") from None

    def on_branch(self, commit: str, head: str) -> bool:
        """Is `commit` in the history of `head` (the branch as just fetched)?"""
        return self.is_ancestor(commit, head)

    def is_ancestor(self, older: str, newer: str) -> bool:
        repo = self._open()
        try:
            repo.git.execute(["git", "merge-base", "--is-ancestor", older, newer], env=ENV,
                             kill_after_timeout=self.timeout)
            return True
        except git.GitCommandError:
            return False

    def newest(self, commits: list[str]) -> list[str]:
        """Of these fetched commits, the ones no other of them descends from (`git merge-base --independent`),
        in the order given. Commits on one branch usually have one newest; two pushes that a later merge joined
        (both parents of it) have two."""
        unique = list(dict.fromkeys(commits))
        if len(unique) < 2:
            return unique
        repo = self._open()
        out = self._git(repo, "merge-base", "--independent", *unique)
        found = set(out.split())
        return [c for c in unique if c in found]

    def checkout(self, commit: str) -> Path:
        """Make the working copy exactly `commit`, which must have been fetched (it is on the branch)."""
        repo = self._open()
        if not self._has(repo, commit):
            raise ReconcileError(f"{redact(self.url)}: commit {commit[:12]} is not on branch {self.branch}")
        self._git(repo, "checkout", "--force", "--detach", commit)
        self._git(repo, "clean", "-ffdx", "-e", KEEP)
        return self.directory

    @staticmethod
    def _has(repo: git.Repo, commit: str) -> bool:
        try:
            return repo.commit(commit).hexsha.startswith(commit.lower())
        except (git.BadName, ValueError, git.GitCommandError):
            return False

    def _git(self, repo: git.Repo, *args: str) -> str:
        verb = next(a for a in args if not a.startswith("-") and "=" not in a)
        try:
            return repo.git.execute(["git", *args], env=ENV, kill_after_timeout=self.timeout)
        except git.GitCommandError as exc:
            raise ReconcileError(f"git {verb} from {redact(self.url)} failed: {_reason(exc)}") from None


def _reason(exc: git.GitCommandError) -> str:
    """git's own reason: its `fatal:`/`error:` lines, not the hint that follows them."""
    text = exc.stderr if isinstance(exc.stderr, str) else ""
    lines = [re.sub(r"^\s*stderr: ", "", line).strip().strip("'").strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    chosen = [line for line in lines if line.startswith(("fatal:", "error:"))] or lines[-1:]
    reason = " ".join(chosen) if chosen else f"exit status {exc.status}"
    if "did not complete in" in text:           # GitPython killed it at kill_after_timeout
        reason = "no answer within the time limit (git_timeout); the remote stalled"
    return redact(reason)
