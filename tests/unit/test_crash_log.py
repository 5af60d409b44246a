"""The internal-error log: a new file of its own, never through a planted link, one line when it cannot be made."""
from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import pytest

from reconciler import cli
from reconciler.engine import run as engine


@pytest.fixture
def crash(monkeypatch):
    """Make `reconcile plan` hit a bug (an exception that is not a ReconcileError)."""
    def boom(*args, **kwargs):
        raise KeyError("a bug\nwith a second line")
    monkeypatch.setattr(engine, "make_plan", boom)


def run(capsys) -> tuple[int, list[str]]:
    code = cli.main(["plan", "."])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, err.splitlines()


def logged(line: str) -> Path:
    assert line.startswith("internal error: KeyError: 'a bug\\nwith a second line' (traceback in ")
    return Path(line.split("(traceback in ", 1)[1].split(";", 1)[0])


def test_the_log_is_a_new_private_file(tmp_path, monkeypatch, capsys, crash):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    code, lines = run(capsys)
    assert code == 3 and len(lines) == 1
    log = logged(lines[0])
    assert log.parent == tmp_path and log.name.startswith("reconcile-error-")
    assert "KeyError" in log.read_text() and "Traceback" in log.read_text()
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


def test_the_old_fixed_path_being_a_directory_does_not_matter(tmp_path, monkeypatch, capsys, crash):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    (tmp_path / "reconcile-error.log").mkdir()
    code, lines = run(capsys)
    assert code == 3 and len(lines) == 1 and logged(lines[0]).is_file()


def test_a_planted_symlink_is_never_written_through(tmp_path, monkeypatch, capsys, crash):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    os.symlink(victim, tmp_path / "reconcile-error.log")
    code, lines = run(capsys)
    assert code == 3 and len(lines) == 1
    log = logged(lines[0])
    assert not log.is_symlink() and victim.read_text() == "precious\n"


def test_an_unwritable_temporary_directory_is_one_line_not_a_traceback(tmp_path, monkeypatch, capsys, crash):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    monkeypatch.setattr(tempfile, "tempdir", str(not_a_dir))   # root may write anywhere: a file is never a dir
    code, lines = run(capsys)
    assert code == 3 and len(lines) == 1
    assert lines[0].startswith("internal error: KeyError: ")
    assert "the traceback could not be written to the temporary directory" in lines[0]


def test_a_read_only_temporary_directory_is_one_line(tmp_path, monkeypatch, capsys, crash):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(tempfile, "mkstemp", refuse)   # as for a user without write access (root has it anyway)
    code, lines = run(capsys)
    assert code == 3 and len(lines) == 1 and "could not be written" in lines[0]
