"""The git hook: `install` writes the post-receive script; `run` applies exactly the pushed commit.

Real git repositories in tmp_path; the Prefect API is the in-memory fake at the transport seam.
"""
from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from reconciler.engine import run as engine
from reconciler.errors import ManifestErrors, ReconcileError
from reconciler.triggers import hook

try:
    from .. import prefect_fake as pf
except ImportError:
    import prefect_fake as pf

ZERO = "0" * 40
URL_A, URL_B = "https://example.com/a", "https://example.com/b"


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout.strip()


class Repo:
    """A git repository (non-bare: `run` needs only its refs and objects) with manifests under deployments/."""

    def __init__(self, top: Path) -> None:
        self.top = top
        top.mkdir(parents=True)
        git("init", "-q", "-b", "main", str(top), cwd=top.parent)

    def commit(self, *docs: dict, extra: dict[str, str] | None = None) -> str:
        target = self.top / "deployments"
        for old in target.glob("*-deployment.yaml") if target.exists() else []:
            old.unlink()
        pf.write_manifests(self.top, docs)
        for rel, content in (extra or {}).items():
            (self.top / rel).parent.mkdir(parents=True, exist_ok=True)
            (self.top / rel).write_text(content, encoding="utf-8")
        git("add", "-A", cwd=self.top)
        git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "--allow-empty", "-m", "c",
            cwd=self.top)
        return git("rev-parse", "HEAD", cwd=self.top)


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path / "flows repo")


@pytest.fixture
def fake() -> pf.FakePrefect:
    return pf.FakePrefect()


def doc(url: str = URL_A, name: str = "nightly") -> dict:
    return pf.manifest(name, parameters={"url": url})


def settings(repo: Repo, **kw) -> hook.Settings:
    base = dict(repo=repo.top, branch="main", path="deployments", default_source="/srv/flows//deployments")
    return hook.Settings(**{**base, **kw})


def run(repo: Repo, fake: pf.FakePrefect, lines: list[str], **kw) -> tuple[int, str]:
    out = io.StringIO()
    code = hook.run(settings(repo, **kw), lines, engine.Options(say=lambda line: None), out, client=fake.client())
    return code, out.getvalue()


# ----------------------------------------------------------------------------- run

def test_applies_the_pushed_commit_not_the_files_on_disk(repo, fake):
    sha = repo.commit(doc(URL_A))
    pf.write_manifests(repo.top, [doc(URL_B)])            # uncommitted: not part of the push
    code, out = run(repo, fake, [f"{ZERO} {sha} refs/heads/main"])
    assert code == 0, out
    assert fake.deployment("Cat Facts", "nightly")["parameters"] == {"url": URL_A}
    assert f"applying {sha[:12]} (refs/heads/main)" in out
    assert "+ create  Cat Facts/nightly  (deployments/nightly-deployment.yaml)" in out
    assert "Apply complete: 1 created" in out


def test_a_second_push_updates_what_the_first_created(repo, fake):
    first = repo.commit(doc(URL_A))
    run(repo, fake, [f"{ZERO} {first} refs/heads/main"])
    second = repo.commit(doc(URL_B))
    code, out = run(repo, fake, [f"{first} {second} refs/heads/main"])
    assert code == 0, out
    assert fake.deployment("Cat Facts", "nightly")["parameters"] == {"url": URL_B}
    assert "~ update  Cat Facts/nightly" in out


def test_a_commit_the_branch_has_moved_past_is_skipped(repo, fake):
    older = repo.commit(doc(URL_A))
    newer = repo.commit(doc(URL_B))
    code, out = run(repo, fake, [f"{ZERO} {older} refs/heads/main"])
    assert code == 0
    assert fake.requests == []
    assert f"moved on to {newer[:12]}" in out and f"{older[:12]} is skipped" in out


@pytest.mark.parametrize("lines", [
    pytest.param([f"{ZERO} {'a' * 40} refs/heads/feature"], id="another-branch"),
    pytest.param([f"{ZERO} {'a' * 40} refs/tags/main"], id="a-tag-named-like-the-branch"),
    pytest.param([], id="no-input"),
    pytest.param(["garbage"], id="not-git-input"),
])
def test_pushes_to_other_refs_apply_nothing(repo, fake, lines):
    repo.commit(doc())
    assert run(repo, fake, lines) == (0, "")
    assert fake.requests == []


def test_the_branch_is_picked_out_of_a_push_of_several_refs(repo, fake):
    sha = repo.commit(doc())
    code, _ = run(repo, fake, [f"{ZERO} {'b' * 40} refs/heads/feature", f"{ZERO} {sha} refs/heads/main",
                               f"{ZERO} {'c' * 40} refs/tags/v1"])
    assert code == 0
    assert fake.deployment("Cat Facts", "nightly") is not None


def test_deleting_the_branch_applies_nothing(repo, fake):
    sha = repo.commit(doc())
    code, out = run(repo, fake, [f"{sha} {ZERO} refs/heads/main"])
    assert code == 0
    assert out == "reconcile: refs/heads/main was deleted; nothing applied.\n"
    assert fake.requests == []


def test_invalid_manifest_is_a_one_line_error_naming_the_repository_path_and_nothing_is_applied(
        repo, fake, tmp_path, monkeypatch):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(scratch))
    sha = repo.commit(doc(), extra={"deployments/broken-deployment.yaml": "name: x\nflow_name: [\n"})
    with pytest.raises(ManifestErrors) as caught:
        run(repo, fake, [f"{ZERO} {sha} refs/heads/main"])
    [error] = caught.value.errors
    assert str(error).startswith("deployments/broken-deployment.yaml:")
    assert "\n" not in str(error)
    assert fake.writes == []
    assert list(scratch.iterdir()) == []          # the checkout was removed


def test_a_directory_missing_from_the_commit_is_an_error(repo, fake):
    sha = repo.commit(doc())
    with pytest.raises(ReconcileError, match=rf"^flows: no such directory in commit {sha[:12]}$"):
        run(repo, fake, [f"{ZERO} {sha} refs/heads/main"], path="flows")


def test_a_failed_apply_exits_1_and_says_the_push_is_in(repo, fake):
    sha = repo.commit(doc())
    fake.fail("POST", "/deployments/", 500, {"detail": "boom"}, times=None)
    code, out = run(repo, fake, [f"{ZERO} {sha} refs/heads/main"])
    assert code == 1
    assert "✗ create  Cat Facts/nightly" in out
    assert f"the apply of {sha[:12]} failed (the push itself is in" in out


@pytest.mark.parametrize("explicit, in_config, owner", [
    pytest.param(None, None, "/srv/flows//deployments", id="recorded-default"),
    pytest.param(None, "acme/from-config", "acme/from-config", id="reconcile.yaml-wins-over-the-default"),
    pytest.param("acme/explicit", "acme/from-config", "acme/explicit", id="--source-wins-over-reconcile.yaml"),
])
def test_source_name(repo, fake, explicit, in_config, owner):
    extra = {"deployments/reconcile.yaml": yaml.safe_dump({"source": in_config})} if in_config else {}
    sha = repo.commit(doc(), extra=extra)
    code, out = run(repo, fake, [f"{ZERO} {sha} refs/heads/main"], source=explicit)
    assert code == 0, out
    assert f"Source: {owner}\n" in out
    assert fake.inventory(owner) == ["Cat Facts/nightly"]


def test_api_key_comes_from_the_key_file(repo, fake, tmp_path, monkeypatch):
    monkeypatch.setenv("PREFECT_API_KEY", "pnu_from_the_environment")   # the file wins (and teardown restores)
    key_file = tmp_path / "key"
    key_file.write_text("pnu_secret\n")
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization", ""))
        return fake.handler(request)

    monkeypatch.setattr(httpx, "HTTPTransport", lambda *a, **k: httpx.MockTransport(handler))
    sha = repo.commit(doc())
    options = engine.Options(say=lambda line: None)
    code = hook.run(settings(repo, api_url=pf.API_URL, api_key_file=key_file), [f"{ZERO} {sha} refs/heads/main"],
                    options, io.StringIO())
    assert code == 0
    assert seen and set(seen) == {"Bearer pnu_secret"}


# ----------------------------------------------------------------------------- install

@pytest.fixture
def bare(tmp_path: Path) -> Path:
    path = tmp_path / "srv git" / "flows.git"
    path.mkdir(parents=True)
    git("init", "-q", "--bare", str(path), cwd=tmp_path)
    return path


def test_install_writes_an_executable_hook_pinning_this_interpreter_and_no_key(bare, tmp_path, monkeypatch):
    monkeypatch.setenv("PREFECT_API_KEY", "pnu_from_env")
    key_file = tmp_path / "key"
    key_file.write_text("pnu_from_file")
    done = hook.install(bare, "main", "deployments", api_url="http://prefect:4200/api", api_key_file=key_file)
    assert done.hook == bare / "hooks" / "post-receive"
    assert done.hook.stat().st_mode & stat.S_IXUSR
    script = done.hook.read_text()
    assert script.startswith("#!/bin/sh\n")
    assert sys.executable in script and "--branch main" in script and "--path deployments" in script
    assert f"--default-source '{bare.parent.as_posix()}/flows//deployments'" in script
    assert "http://prefect:4200/api" in script and str(key_file) in script
    assert "pnu_from_env" not in script and "pnu_from_file" not in script
    assert not done.updated


def test_installing_again_updates_our_hook(bare):
    hook.install(bare, "main", "deployments")
    done = hook.install(bare, "release", "", source="acme/flows")
    script = done.hook.read_text()
    assert done.updated and done.backup is None
    assert "--branch release" in script and "--source acme/flows" in script
    assert "--branch main" not in script and "--path" not in script and "--default-source" not in script


def test_a_foreign_hook_is_kept_unless_forced(bare):
    foreign = bare / "hooks" / "post-receive"
    foreign.write_text("#!/bin/sh\necho mine\n")
    with pytest.raises(ReconcileError) as caught:
        hook.install(bare, "main")
    assert "\n" not in str(caught.value) and "--force" in str(caught.value)
    assert foreign.read_text() == "#!/bin/sh\necho mine\n"
    done = hook.install(bare, "main", force=True)
    assert done.backup is not None and done.backup.read_text() == "#!/bin/sh\necho mine\n"
    assert hook.MARKER in foreign.read_text()


@pytest.mark.parametrize("configured", ["my-hooks", "ABS"])
def test_core_hooks_path_is_respected(bare, tmp_path, configured):
    where = str(tmp_path / "shared-hooks") if configured == "ABS" else configured
    git("config", "core.hooksPath", where, cwd=bare)
    done = hook.install(bare, "main")
    expected = Path(where) if configured == "ABS" else bare / where
    assert done.hook == expected / "post-receive" and done.hook.is_file()
    assert not (bare / "hooks" / "post-receive").exists()


@pytest.mark.parametrize("kwargs, message", [
    pytest.param({"repo": "NOT_A_REPO"}, "not a git repository", id="not-a-repository"),
    pytest.param({"branch": "bad..name"}, "'bad..name' is not a valid branch name", id="bad-branch"),
    pytest.param({"path": "../elsewhere"}, "must be a directory inside the repository", id="path-leaves"),
    pytest.param({"path": "/etc"}, "must be a directory inside the repository", id="absolute-path"),
    pytest.param({"api_key_file": "missing-key"}, "no such file (--api-key-file)", id="missing-key-file"),
])
def test_install_bad_input_is_one_line_and_writes_nothing(bare, tmp_path, kwargs, message):
    args = {"repo": bare, "branch": "main", **kwargs}
    if args["repo"] == "NOT_A_REPO":
        args["repo"] = tmp_path / "plain"
        args["repo"].mkdir()
    if "api_key_file" in kwargs:
        args["api_key_file"] = tmp_path / kwargs["api_key_file"]
    with pytest.raises(ReconcileError) as caught:
        hook.install(**args)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert not (bare / "hooks" / "post-receive").exists()


def test_the_installed_script_runs_the_hook_with_pushed_input(bare):
    """The shell script itself (quoting of a path with a space, the pinned interpreter, stdin passed on)."""
    done = hook.install(bare, "main", "deployments", api_url="http://127.0.0.1:9/api")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    deleted = subprocess.run([str(done.hook)], input=f"{'a' * 40} {ZERO} refs/heads/main\n", cwd=bare, env=env,
                             capture_output=True, text=True, timeout=60)
    assert (deleted.returncode, deleted.stdout) == (0, "reconcile: refs/heads/main was deleted; nothing applied.\n")
    other = subprocess.run([str(done.hook)], input=f"{ZERO} {'a' * 40} refs/heads/dev\n", cwd=bare, env=env,
                           capture_output=True, text=True, timeout=60)
    assert (other.returncode, other.stdout, other.stderr) == (0, "", "")
