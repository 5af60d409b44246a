"""Which commit a run is for: queued pushes coalesce, and git (not the order deliveries arrived in) picks the newest.

A real git repository on disk, no Prefect server: `Worker._choose` is called directly after a fetch.
"""
from __future__ import annotations

import io
import random
import subprocess
from pathlib import Path

import pytest

from reconciler.serve import config as config_mod
from reconciler.serve.controller import Worker
from reconciler.serve import queue as queue_mod
from reconciler.serve.queue import Request, merge as _merge
from reconciler.serve.state import RunRecord, State


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=True,
                          env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
                               "GIT_COMMITTER_EMAIL": "t@example.com", "PATH": "/usr/bin:/bin:/usr/local/bin",
                               "HOME": str(cwd)})
    return done.stdout.strip()


class Repo:
    """A bare origin and a clone to commit in; `commit` pushes to main unless told otherwise."""

    def __init__(self, root: Path) -> None:
        self.bare, self.work = root / "origin.git", root / "work"
        git(root, "init", "-q", "--bare", "-b", "main", str(self.bare))
        git(root, "init", "-q", "-b", "main", str(self.work))
        git(self.work, "remote", "add", "origin", str(self.bare))
        self.n = 0

    def commit(self, push: bool = True) -> str:
        self.n += 1
        (self.work / f"file{self.n}").write_text(str(self.n))     # one file each: merges never conflict
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "-m", f"c{self.n}")
        if push:
            self.push("HEAD")
        return git(self.work, "rev-parse", "HEAD")

    def push(self, what: str) -> None:
        git(self.work, "push", "-q", "--force", "origin", f"{what}:refs/heads/main")


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path)


def worker(tmp_path: Path, repo: Repo) -> Worker:
    path = tmp_path / "serve.yaml"
    path.write_text(f"workdir: {tmp_path / 'w'}\npoll_interval: 0\nsources:\n  - name: flows\n"
                    f"    repo: {repo.bare}\n", encoding="utf-8")
    config = config_mod.load(path)
    return Worker(config.sources[0], config, State(["flows"], log=io.StringIO()))


def queue(*requests: Request) -> Request:
    """What the worker would run after these were submitted while it was busy."""
    pending = None
    for request in requests:
        pending = _merge(pending, request)
    assert pending is not None
    return pending


def choose(w: Worker, request: Request) -> tuple[str | None, RunRecord]:
    record = RunRecord("flows", request.trigger, request.commit)
    return w._choose(request, w.checkout.fetch(), record), record


def pushes(*commits: str) -> Request:
    return queue(*(Request("webhook", c, f"d-{c[:7]}") for c in commits))


# ---------------------------------------------------------------------------------------------- queueing
def test_queued_pushes_are_all_kept_in_arrival_order_once_each():
    a, b, c = "a" * 40, "b" * 40, "c" * 40
    queued = queue(Request("webhook", a, "1"), Request("webhook", b, "2"), Request("webhook", a, "3"),
                   Request("webhook", c, "4"))
    assert [(r.commit, r.delivery) for r in queued.requests()] == [(b, "2"), (a, "3"), (c, "4")]
    assert (queued.commit, queued.delivery) == (c, "4")


def test_a_poll_never_displaces_queued_pushes_and_a_push_keeps_a_queued_head_run():
    a = "a" * 40
    assert queue(Request("webhook", a), Request("poll")) == Request("webhook", a)
    startup_then_push = queue(Request("startup"), Request("webhook", a))
    assert [(r.trigger, r.commit) for r in startup_then_push.requests()] == [("startup", None), ("webhook", a)]


def test_a_flood_of_pushes_becomes_one_run_for_the_branch_head(monkeypatch):
    monkeypatch.setattr(queue_mod, "MAX_QUEUED", 3)
    flood = queue(*(Request("webhook", str(i) * 40, f"d{i}") for i in range(1, 6)))
    assert [r.commit for r in flood.requests()] == [None, "5" * 40]     # None: the branch head


# ---------------------------------------------------------------------------------------------- choosing
@pytest.mark.parametrize("seed", range(5))
def test_the_newest_queued_commit_by_ancestry_is_chosen_whatever_the_arrival_order(tmp_path, repo, seed):
    commits = [repo.commit() for _ in range(8)]
    w = worker(tmp_path, repo)
    w.applied = w.tried = commits[2]
    order = commits[:]
    random.Random(seed).shuffle(order)
    commit, record = choose(w, pushes(*order))
    assert commit == commits[-1]                             # the branch head
    assert (record.commit, record.delivery) == (commits[-1], f"d-{commits[-1][:7]}")
    assert sorted(record.coalesced) == sorted(commits[:-1])

    middle = [commits[5], commits[1], commits[3], commits[4]]   # the head's own delivery is still on its way
    commit, _ = choose(w, pushes(*middle))
    assert commit == commits[5]


def test_queued_commits_all_older_than_the_applied_one_are_skipped_as_superseded(tmp_path, repo):
    commits = [repo.commit() for _ in range(5)]
    w = worker(tmp_path, repo)
    w.applied = w.tried = commits[3]
    commit, record = choose(w, pushes(commits[2], commits[0], commits[1]))
    assert commit is None and record.result == "skipped"
    assert record.commit == commits[2]
    assert record.note == (f"superseded: the newer commit {commits[3][:12]} is already applied "
                           "(and 2 other queued push(es), none newer)")


def test_a_commit_older_than_one_whose_run_failed_is_not_applied_over_it(tmp_path, repo):
    commits = [repo.commit() for _ in range(5)]
    w = worker(tmp_path, repo)
    w.applied, w.tried = commits[1], commits[3]              # the run for commits[3] failed
    commit, record = choose(w, pushes(commits[2]))
    assert commit is None
    assert record.note.startswith(f"superseded: the newer commit {commits[3][:12]} was tried last")
    assert choose(w, pushes(commits[3]))[0] == commits[3]     # that commit itself is tried again
    assert choose(w, pushes(commits[4], commits[2]))[0] == commits[4]


def test_a_rollback_is_applied_and_a_force_pushed_away_commit_is_not(tmp_path, repo):
    commits = [repo.commit() for _ in range(4)]
    w = worker(tmp_path, repo)
    w.applied = w.tried = commits[3]
    repo.push(commits[1])                                    # main force-pushed back: a rollback
    commit, record = choose(w, pushes(commits[3], commits[1]))
    assert commit == commits[1] and record.coalesced == [commits[3]]

    commit, record = choose(w, pushes(commits[3], commits[2]))   # both left the branch
    assert commit is None and record.result == "skipped"
    assert record.note.startswith(f"commit {commits[2][:12]} is not on branch main any more (force-pushed away?), "
                                  "nor are the 1 other queued push(es); the branch head")


def test_a_queued_head_run_wins_over_the_pushes_queued_with_it(tmp_path, repo):
    commits = [repo.commit() for _ in range(3)]
    w = worker(tmp_path, repo)
    commit, record = choose(w, queue(Request("startup"), Request("webhook", commits[0], "d")))
    assert commit == commits[-1] and record.trigger == "startup" and record.coalesced == [commits[0]]


def test_of_two_pushes_a_merge_joined_neither_is_newer_so_the_later_arrival_is_chosen(tmp_path, repo):
    base = repo.commit()
    git(repo.work, "checkout", "-q", "-b", "side")
    side = repo.commit(push=False)
    git(repo.work, "checkout", "-q", "main")
    main = repo.commit()
    git(repo.work, "merge", "-q", "--no-edit", "side")
    merge = git(repo.work, "rev-parse", "HEAD")
    repo.push("HEAD")
    w = worker(tmp_path, repo)
    w.applied = w.tried = base
    assert choose(w, pushes(main, side))[0] == side
    assert choose(w, pushes(side, main))[0] == main
    assert choose(w, pushes(side, merge, main))[0] == merge
