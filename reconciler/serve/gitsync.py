"""One working copy per source: fetch the branch, check out exactly the commit asked for.

GitPython drives the git CLI, so credentials come from git's own configuration (credential helpers, SSH keys,
a token in the URL); a URL's credentials are never printed.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import git

from ..errors import ReconcileError
from .webhooks import redact

KEEP = ".reconcile"     # the hash cache survives checkouts (see bundle.HashCache)


class Checkout:
    def __init__(self, url: str, branch: str, directory: Path) -> None:
        self.url = url
        self.branch = branch
        self.directory = directory
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
        self._git(repo, "fetch", "--prune", "--no-tags", "origin",
                  f"+refs/heads/{self.branch}:refs/remotes/origin/{self.branch}")
        try:
            return repo.commit(f"refs/remotes/origin/{self.branch}").hexsha
        except (git.BadName, ValueError):
            raise ReconcileError(f"{redact(self.url)}: no branch {self.branch!r}") from None

    def checkout(self, commit: str) -> Path:
        """Make the working copy exactly `commit` (fetching it if the branch has moved on or away)."""
        repo = self._open()
        if not self._has(repo, commit):
            self.fetch()
        if not self._has(repo, commit):
            try:  # force-pushed away from the branch: servers that allow it still serve the commit itself
                self._git(repo, "fetch", "--no-tags", "origin", commit)
            except ReconcileError:
                pass
        if not self._has(repo, commit):
            raise ReconcileError(f"{redact(self.url)}: commit {commit[:12]} is not on the remote "
                                 f"(force-pushed away from {self.branch}?)")
        self._git(repo, "checkout", "--force", "--detach", commit)
        self._git(repo, "clean", "-ffdx", "-e", KEEP)
        return self.directory

    def head(self) -> Optional[str]:
        repo = self._open()
        try:
            return repo.head.commit.hexsha
        except ValueError:
            return None

    @staticmethod
    def _has(repo: git.Repo, commit: str) -> bool:
        try:
            return repo.commit(commit).hexsha.startswith(commit.lower())
        except (git.BadName, ValueError, git.GitCommandError):
            return False

    def _git(self, repo: git.Repo, *args: str) -> str:
        try:
            return repo.git.execute(["git", *args], env={"GIT_TERMINAL_PROMPT": "0"})
        except git.GitCommandError as exc:
            detail = (exc.stderr or "").strip().splitlines()
            last = re.sub(r"^stderr: ", "", detail[-1].strip()).strip("' ") if detail else f"exit {exc.status}"
            raise ReconcileError(f"git {args[0]} from {redact(self.url)} failed: {redact(last)}") from None
