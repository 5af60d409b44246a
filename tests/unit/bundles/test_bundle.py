"""bundle.collect: which files make a deployment's code bundle, and the one hash over them.

Real files in tmp_path; the repository is tmp_path unless a test says otherwise.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import warnings
from pathlib import Path

import pathspec
import pytest

from reconciler.bundles import bundle
from reconciler.bundles.bundle import DEFAULT_IGNORE, HashCache
from reconciler.errors import ReconcileError

# prefect/.prefectignore as shipped in Prefect 2.20 (what `prefect deployment build` writes
# into a project that has none).  Compared with the installed file below when one is found.
PREFECT_2_20_PREFECTIGNORE = """\
# prefect artifacts
.prefectignore

# python artifacts
__pycache__/
*.py[cod]
*$py.class
*.egg-info/
*.egg

# Type checking artifacts
.mypy_cache/
.dmypy.json
dmypy.json
.pyre/

# IPython
profile_default/
ipython_config.py
*.ipynb_checkpoints/*

# Environments
.python-version
.env
.venv
env/
venv/

# MacOS
.DS_Store

# Dask
dask-worker-space/

# Editors
.idea/
.vscode/

# VCS
.git/
.hg/
"""

REPO_ROOT = Path(__file__).resolve().parents[3]
INSTALLED_PREFECTIGNORE = [
    p for p in (
        Path("/work/prefect2-venv/lib/python3.11/site-packages/prefect/.prefectignore"),
        *REPO_ROOT.glob(".venvs/prefect-2.20/lib/python3*/site-packages/prefect/.prefectignore"),
    ) if p.is_file()
]


def patterns(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]


def write(root: Path, rel: str, data: bytes | str = b"x", mode: int | None = None) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    if mode is not None:
        path.chmod(mode)
    return path


def collect(root: Path, repo: Path | None = None, cache: HashCache | None = None) -> bundle.Bundle:
    return bundle.collect(root, repo or root, cache or HashCache(None))


def paths(b: bundle.Bundle) -> list[str]:
    return [f.path for f in b.files]


# -- the default ignore list ---------------------------------------------------------------

def test_every_prefect_2_20_default_pattern_is_in_default_ignore():
    missing = [p for p in patterns(PREFECT_2_20_PREFECTIGNORE) if p not in DEFAULT_IGNORE]
    assert missing == []


@pytest.mark.skipif(not INSTALLED_PREFECTIGNORE, reason="no Prefect 2.20 installation to compare with")
def test_installed_prefect_2_20_prefectignore_is_the_one_copied_here():
    installed = INSTALLED_PREFECTIGNORE[0].read_text(encoding="utf-8")
    assert patterns(installed) == patterns(PREFECT_2_20_PREFECTIGNORE)
    assert [p for p in patterns(installed) if p not in DEFAULT_IGNORE] == []


IGNORED = [
    "__pycache__/flow.cpython-311.pyc",
    "pkg/__pycache__/mod.cpython-311.pyc",
    "flow.pyc",
    "pkg/flow.pyo",
    "Mod$py.class",
    "pkg.egg-info/PKG-INFO",
    "dist.egg",
    ".mypy_cache/3.11/flow.meta.json",
    ".dmypy.json",
    "dmypy.json",
    ".pyre/cache",
    "profile_default/history.sqlite",
    "ipython_config.py",
    ".ipynb_checkpoints/a-checkpoint.ipynb",
    ".python-version",
    ".env",
    ".venv/bin/python",
    "env/lib/site.py",
    "venv/lib/site.py",
    "sub/venv/lib/site.py",
    ".DS_Store",
    "dask-worker-space/global.lock",
    ".idea/workspace.xml",
    ".vscode/settings.json",
    ".git/HEAD",
    ".git/objects/ab/cdef",
    ".hg/store/data",
    ".reconcile/hash-cache.json",
    ".prefectignore",
]
KEPT = [
    "flow.py",
    "pkg/__init__.py",
    "environment.py",
    "env.py",
    ".envrc",
    "myvenv/helper.py",
    "src/venv_tools.py",
    "requirements.txt",
    "data/.gitkeep",
    "config/.gitignore",
    "notebooks/analysis.ipynb",
]


@pytest.mark.parametrize("rel", IGNORED)
def test_default_ignore_leaves_out(tmp_path, rel):
    write(tmp_path, "flow.py")
    write(tmp_path, rel)
    assert paths(collect(tmp_path)) == ["flow.py"]


@pytest.mark.parametrize("rel", KEPT)
def test_default_ignore_keeps(tmp_path, rel):
    write(tmp_path, rel)
    assert paths(collect(tmp_path)) == [rel]


# paths where the answer follows from gitignore rules rather than from intuition
SUBTLE = [
    "notebooks/.ipynb_checkpoints/b-checkpoint.ipynb",  # `*.ipynb_checkpoints/*` has a slash: root only
    "sub/.env",
    "sub/.venv/bin/python",
    "sub/.git",                                         # a submodule's .git is a file
    "deep/a/b/__pycache__/m.cpython-311.pyc",
    "pkg/module.py.orig",
    "Env/x.py",
]


def test_default_ignore_gives_the_files_prefect_2_20_would_upload(tmp_path):
    everything = IGNORED + KEPT + SUBTLE
    for rel in everything:
        write(tmp_path, rel)
    # Prefect 2.20 filters each file path with gitwildmatch over its .prefectignore
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        prefect = pathspec.PathSpec.from_lines("gitwildmatch", patterns(PREFECT_2_20_PREFECTIGNORE))
    # .reconcile/ is reconcile's own cache, never part of a bundle
    would_upload = sorted(r for r in everything if not prefect.match_file(r) and not r.startswith(".reconcile/"))
    assert set(KEPT) <= set(would_upload)
    assert paths(collect(tmp_path)) == would_upload


# -- .prefectignore ---------------------------------------------------------------------------

def test_prefectignore_negation_keeps_the_negated_file(tmp_path):
    write(tmp_path, ".prefectignore", "# data files stay local\n*.csv\n!keep.csv\n")
    for rel in ("flow.py", "a.csv", "keep.csv", "data/b.csv", "data/keep.csv"):
        write(tmp_path, rel)
    assert paths(collect(tmp_path)) == ["data/keep.csv", "flow.py", "keep.csv"]


def test_prefectignore_directory_pattern_and_anchored_pattern(tmp_path):
    write(tmp_path, ".prefectignore", "logs/\n/build.py\n")
    for rel in ("flow.py", "logs/run.log", "sub/logs/x.log", "build.py", "sub/build.py"):
        write(tmp_path, rel)
    assert paths(collect(tmp_path)) == ["flow.py", "sub/build.py"]


def test_prefectignore_with_crlf_line_endings(tmp_path):
    write(tmp_path, ".prefectignore", b"*.csv\r\n!keep.csv\r\n")
    for rel in ("flow.py", "a.csv", "keep.csv"):
        write(tmp_path, rel)
    assert paths(collect(tmp_path)) == ["flow.py", "keep.csv"]


# -- symlinks -------------------------------------------------------------------------------------

def test_symlink_leaving_the_repository_is_skipped_and_listed(tmp_path):
    repo = tmp_path / "repo"
    write(repo, "flow.py")
    write(tmp_path, "outside/secret.txt", "token")
    (repo / "secret.txt").symlink_to(tmp_path / "outside" / "secret.txt")
    (repo / "relative.txt").symlink_to(Path("..") / "outside" / "secret.txt")
    b = collect(repo)
    assert paths(b) == ["flow.py"]
    assert len(b.skipped) == 2
    assert any(s.startswith("secret.txt") for s in b.skipped)
    assert any(s.startswith("relative.txt") for s in b.skipped)


def test_dangling_symlink_leaving_the_repository_is_skipped_not_an_error(tmp_path):
    repo = tmp_path / "repo"
    write(repo, "flow.py")
    (repo / "gone.txt").symlink_to(tmp_path / "nowhere" / "gone.txt")
    b = collect(repo)
    assert paths(b) == ["flow.py"]
    assert [s for s in b.skipped if s.startswith("gone.txt")]


def test_symlink_to_a_file_inside_the_repository_is_included_with_its_target_content(tmp_path):
    repo = tmp_path / "repo"
    write(repo, "shared/util.py", "def helper(): ...\n")
    root = repo / "flows"
    write(root, "flow.py")
    (root / "util.py").symlink_to(Path("..") / "shared" / "util.py")
    (root / "alias.py").symlink_to(root / "flow.py")
    b = collect(root, repo)
    assert paths(b) == ["alias.py", "flow.py", "util.py"]
    util = b.by_path["util.py"]
    assert util.sha256 == hashlib.sha256(b"def helper(): ...\n").hexdigest()
    assert util.size == len(b"def helper(): ...\n")
    assert b.skipped == ()


@pytest.mark.parametrize("inside", [True, False], ids=["inside-repo", "outside-repo"])
def test_symlinked_directory_is_not_followed(tmp_path, inside):
    repo = tmp_path / "repo"
    root = repo / "flows"
    write(root, "flow.py")
    target = (repo / "lib") if inside else (tmp_path / "lib")
    write(target, "mod.py")
    (root / "lib").symlink_to(target, target_is_directory=True)
    b = collect(root, repo)
    assert paths(b) == ["flow.py"]
    assert [s for s in b.skipped if s.startswith("lib/")]


def test_dangling_symlink_inside_the_repository_is_a_one_line_error_naming_it(tmp_path):
    write(tmp_path, "flow.py")
    (tmp_path / "broken.py").symlink_to(tmp_path / "removed.py")
    with pytest.raises(ReconcileError) as info:
        collect(tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert "broken.py" in message


def test_missing_bundle_directory_is_a_one_line_error(tmp_path):
    with pytest.raises(ReconcileError) as info:
        bundle.collect(tmp_path / "absent", tmp_path, HashCache(None), display="flows/absent")
    assert "\n" not in str(info.value)
    assert "flows/absent" in str(info.value)


# -- the digest --------------------------------------------------------------------------------------

def tree(root: Path) -> Path:
    write(root, "flow.py", "print('hi')\n")
    write(root, "pkg/__init__.py", "")
    write(root, "pkg/tasks.py", "def t(): return 1\n")
    write(root, "run.sh", "#!/bin/sh\n", mode=0o755)
    write(root, "data/input.json", '{"a": 1}')
    return root


def test_file_entries_carry_content_hash_size_and_exec_bit(tmp_path):
    b = collect(tree(tmp_path))
    assert paths(b) == ["data/input.json", "flow.py", "pkg/__init__.py", "pkg/tasks.py", "run.sh"]
    for f in b.files:
        content = (tmp_path / f.path).read_bytes()
        assert f.sha256 == hashlib.sha256(content).hexdigest()
        assert f.size == len(content)
    assert {f.path for f in b.files if f.executable} == {"run.sh"}
    assert b.size == sum(f.size for f in b.files)


def test_digest_is_the_same_for_copies_in_different_places_with_different_mtimes(tmp_path):
    a = tree(tmp_path / "checkout-a" / "flows")
    b = tmp_path / "elsewhere" / "b"
    shutil.copytree(a, b.parent / "b", symlinks=True)
    for i, f in enumerate(sorted(p for p in b.rglob("*") if p.is_file())):
        os.utime(f, ns=(1_000_000_000 * (i + 1), 1_000_000_000 * (i + 1)))
    first, second = collect(a), collect(b)
    assert first.files == second.files
    assert first.digest == second.digest


@pytest.mark.parametrize("change", ["one-byte", "rename", "exec-bit", "new-file", "removed-file", "empty-file-added"])
def test_digest_changes_when(tmp_path, change):
    root = tree(tmp_path)
    before = collect(root).digest
    if change == "one-byte":
        (root / "pkg/tasks.py").write_text("def t(): return 2\n")
    elif change == "rename":
        (root / "pkg/tasks.py").rename(root / "pkg/jobs.py")
    elif change == "exec-bit":
        (root / "flow.py").chmod(0o755)
    elif change == "new-file":
        write(root, "pkg/more.py", "x = 1\n")
    elif change == "removed-file":
        (root / "data/input.json").unlink()
    elif change == "empty-file-added":
        write(root, "pkg/py.typed", b"")
    assert collect(root).digest != before


def test_digest_does_not_change_when_an_ignored_file_changes(tmp_path):
    root = tree(tmp_path)
    before = collect(root).digest
    write(root, "__pycache__/flow.cpython-311.pyc", b"\x00\x01")
    write(root, ".git/HEAD", "ref: refs/heads/main\n")
    assert collect(root).digest == before


def test_crlf_content_is_hashed_as_stored(tmp_path):
    lf = write(tmp_path / "lf", "flow.py", b"a = 1\nb = 2\n")
    crlf = write(tmp_path / "crlf", "flow.py", b"a = 1\r\nb = 2\r\n")
    b_lf, b_crlf = collect(lf.parent), collect(crlf.parent)
    assert b_crlf.files[0].sha256 == hashlib.sha256(b"a = 1\r\nb = 2\r\n").hexdigest()
    assert b_crlf.files[0].size == 14
    assert b_lf.digest != b_crlf.digest


# -- the hash cache ------------------------------------------------------------------------------------

def cache_file(repo: Path) -> Path:
    return repo / ".reconcile" / "hash-cache.json"


def bump_mtime(path: Path, seconds: int = 10) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + seconds * 1_000_000_000))


def test_warm_cache_reads_no_file(tmp_path):
    root = tree(tmp_path)
    cache = HashCache(cache_file(tmp_path))
    cold = collect(root, cache=cache)
    assert cache.reads == 5
    cache.reads = 0
    warm = collect(root, cache=cache)
    assert cache.reads == 0
    assert warm == cold


def test_cache_file_survives_a_new_hash_cache_instance(tmp_path):
    root = tree(tmp_path)
    first = HashCache(cache_file(tmp_path))
    cold = collect(root, cache=first)
    first.save()
    assert cache_file(tmp_path).is_file()
    assert (cache_file(tmp_path).parent / ".gitignore").read_text().splitlines()[-1] == "*"
    second = HashCache(cache_file(tmp_path))
    warm = collect(root, cache=second)
    assert second.reads == 0
    assert warm.digest == cold.digest
    # the cache directory is never part of the bundle
    assert not [p for p in paths(warm) if p.startswith(".reconcile/")]


@pytest.mark.parametrize("same_size", [False, True], ids=["size-changes", "same-size"])
def test_changing_one_file_rereads_exactly_that_file(tmp_path, same_size):
    root = tree(tmp_path)
    first = HashCache(cache_file(tmp_path))
    collect(root, cache=first)
    first.save()
    target = root / "pkg/tasks.py"
    target.write_text("def t(): return 9\n" if same_size else "def t(): return 42\n")
    bump_mtime(target)  # a later edit, whatever the clock's granularity
    second = HashCache(cache_file(tmp_path))
    changed = collect(root, cache=second)
    assert second.reads == 1
    assert changed.by_path["pkg/tasks.py"].sha256 == hashlib.sha256(target.read_bytes()).hexdigest()
    assert changed.digest == collect(root).digest  # the same as with no cache at all


def test_exec_bit_flip_is_seen_with_a_warm_cache(tmp_path):
    root = tree(tmp_path)
    cache = HashCache(cache_file(tmp_path))
    before = collect(root, cache=cache)
    (root / "flow.py").chmod(0o755)
    after = collect(root, cache=cache)
    assert after.by_path["flow.py"].executable
    assert after.digest != before.digest


@pytest.mark.parametrize("content", [
    b"\x00\xff\xfe not json",
    b'{"version": 1, "files": {',
    b"",
    b"[]",
    b"null",
    b'{"version": 2, "files": {}}',
    b'{"version": 1, "files": []}',
    b'{"version": 1, "files": "oops"}',
], ids=["binary", "truncated", "empty", "list", "null", "other-version", "files-is-a-list", "files-is-a-string"])
def test_corrupt_cache_file_is_ignored(tmp_path, content):
    root = tree(tmp_path)
    expected = collect(root).digest
    cache_file(tmp_path).parent.mkdir()
    cache_file(tmp_path).write_bytes(content)
    cache = HashCache(cache_file(tmp_path))
    got = collect(root, cache=cache)
    assert got.digest == expected
    assert cache.reads == 5
    cache.save()
    assert json.loads(cache_file(tmp_path).read_text())["version"] == 1
    assert HashCache(cache_file(tmp_path)).entries


def test_cache_entry_for_an_old_version_of_a_file_is_not_used(tmp_path):
    # a cache written by an earlier run, then the file is replaced by one of another size
    root = tree(tmp_path)
    cache = HashCache(cache_file(tmp_path))
    collect(root, cache=cache)
    cache.save()
    target = root / "flow.py"
    st = target.stat()
    target.write_text("print('a much longer line than before')\n")
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))  # same mtime, other size
    again = HashCache(cache_file(tmp_path))
    got = collect(root, cache=again)
    assert again.reads == 1
    assert got.by_path["flow.py"].sha256 == hashlib.sha256(target.read_bytes()).hexdigest()


def test_file_modes_other_than_regular_files_are_not_bundled(tmp_path):
    write(tmp_path, "flow.py")
    os.mkfifo(tmp_path / "pipe")
    b = collect(tmp_path)
    assert paths(b) == ["flow.py"]
    assert stat.S_ISFIFO((tmp_path / "pipe").stat().st_mode)
