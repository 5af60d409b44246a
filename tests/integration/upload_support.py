"""Shared pieces of the code-upload integration tests (test_uploads_*.py, test_flow_run_from_upload.py).

Storage blocks are real block documents on the test server (made through the REST API with the
block type and schema ids the server reports); the storage behind them is real too: a directory
in tmp_path, moto's S3 server, or fsspec's in-process memory filesystem.

Import as ``from integration.upload_support import ...``.
"""
from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from pathlib import Path
from typing import Any, Optional, Union

from integration.helpers import Run, Server, manifest, reconcile, write_manifest

MARKER_NAME = ".reconcile-bundle.json"
UPLOAD_LINE = re.compile(r"^\s*↑ upload\s+(?P<bundle>\S+) → (?P<storage>\S+)(?: path (?P<path>\S+))? "
                         r"\((?P<details>[^)]*)\)$")


# ----------------------------------------------------------------------------- blocks and manifests


def make_block(server: Server, slug: str, name: str, data: dict[str, Any]) -> dict:
    """A named block document, made through the REST API (type id from /block_types/slug/…,
    schema id from /block_schemas/filter)."""
    return server.ensure_block_document(slug, name, data)


def block_ref(doc: dict, slug: str, **data: Any) -> dict[str, Any]:
    """How a manifest written by `prefect deployment build` embeds a named block."""
    return {**data, "_block_document_id": doc["id"], "_block_document_name": doc["name"],
            "_is_anonymous": False, "block_type_slug": slug, "_block_type_slug": slug}


def upload_manifest(flow: str, name: str, storage: dict[str, Any], path: Optional[str],
                    **overrides: Any) -> dict[str, Any]:
    """A manifest whose code lives in `storage` under `path` (the manifest's directory is its bundle)."""
    return manifest(flow, name, storage=storage, path=path, **overrides)


# ----------------------------------------------------------------------------- local trees


def with_flow_file(directory: Path, doc: dict[str, Any]) -> None:
    """Write the flow file a manifest's entrypoint names, relative to directory, unless it exists: an upload
    whose entrypoint is in no directory up to the repository root is refused."""
    entrypoint = doc["below"].get("entrypoint") or ""
    file, _, function = entrypoint.rpartition(":")
    target = directory / file
    if file and not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(f"from prefect import flow\n\n\n@flow\ndef {function}(n: int = 1, label: str = 'x'):\n"
                          "    return n\n", encoding="utf-8")


def write_tree(root: Path, files: dict[str, Union[str, bytes]]) -> None:
    for rel, content in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")


def many_files(count: int, prefix: str = "pkg") -> dict[str, str]:
    """`count` small, distinct Python files spread over a few nested directories."""
    out = {}
    for i in range(count):
        sub = f"{prefix}/part{i % 4}" + ("/deep" if i % 3 == 0 else "")
        out[f"{sub}/mod_{i:03d}.py"] = f"# module {i}\nVALUE_{i} = {i * 7919}\n" + "x = 1\n" * (i % 5)
    return out


def bundle_files(root: Path) -> dict[str, int]:
    """Every regular file under root (relative path → size), the hash cache directory left out."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".reconcile"]
        for name in filenames:
            full = Path(dirpath) / name
            out[full.relative_to(root).as_posix()] = full.stat().st_size
    return out


def stored_files(root: Path) -> dict[str, bytes]:
    """The files at a local storage location (relative path → content), the marker included."""
    out = {}
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            full = Path(dirpath) / name
            out[full.relative_to(root).as_posix()] = full.read_bytes()
    return out


def stat_snapshot(root: Path) -> dict[str, tuple[str, int, int]]:
    """Every entry under a local storage root → (kind, st_ino, st_mtime_ns): a write anywhere shows."""
    out = {".": ("dir", root.stat().st_ino, root.stat().st_mtime_ns)}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = Path(dirpath) / name
            st = full.lstat()
            kind = "dir" if stat.S_ISDIR(st.st_mode) else "file"
            out[full.relative_to(root).as_posix()] = (kind, st.st_ino, st.st_mtime_ns)
    return out


def file_mtimes(root: Path) -> dict[str, int]:
    return {rel: mtime for rel, (kind, _, mtime) in stat_snapshot(root).items() if kind == "file"}


def read_marker(raw: bytes) -> dict[str, Any]:
    data = json.loads(raw)
    assert data.get("version") == 1, data
    return data


# ----------------------------------------------------------------------------- plan output


def upload_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if "↑ upload" in line]


def parse_upload_line(line: str) -> dict[str, str]:
    match = UPLOAD_LINE.match(line)
    assert match, f"not an upload line: {line!r}"
    return match.groupdict()


def human_size(n: int) -> str:
    """The plan's size notation (decimal units: 980 B, 12.4 kB, 3.1 MB)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def upload_actions(plan_json: dict) -> list[dict]:
    return [a for a in plan_json["actions"] if a["action"] == "upload"]


def deployment_writes(run) -> list:
    """The `-v` logged writes that touch deployments or flows (not the reconciler's own documents)."""
    return [r for r in run.writes if "/deployments" in r.path or "/flows" in r.path]


# ----------------------------------------------------------------------------- a project on disk


class ShownRun(Run):
    """A Run that an assertion message prints in full (pytest shows the repr of a non-string message)."""

    def __repr__(self) -> str:
        return self.__str__()


def shown(run: Run) -> ShownRun:
    return ShownRun(run.args, run.returncode, run.stdout, run.stderr)


class Project:
    """A git work tree with one bundle directory of manifests and code, and the CLI pointed at it."""

    def __init__(self, api_url: str, tmp_path: Path, unique: str, label: str) -> None:
        self.api_url = api_url
        self.tmp = tmp_path
        self.repo = tmp_path / "repo"
        self.root = self.repo / "flows"
        self.root.mkdir(parents=True)
        subprocess.run(["git", "init", "-q", str(self.repo)], check=True)
        self.flow = f"it-{label}-{unique}"
        self.source = f"it-{label}-{unique}"

    def write(self, files: dict[str, Union[str, bytes]]) -> None:
        write_tree(self.root, files)

    def add_manifest(self, doc: dict[str, Any]) -> Path:
        """The manifest, and its entrypoint's flow file when the test wrote none (an upload needs the code)."""
        with_flow_file(self.root, doc)
        return write_manifest(self.root, doc)

    def run(self, command: str, *args: Any) -> Run:
        return shown(reconcile(self.api_url, command, self.root, "--source", self.source, *args, cwd=self.tmp))

    def plan(self, *args: Any) -> Run:
        return self.run("plan", *args)

    def plan_json(self, *args: Any) -> dict:
        run = self.run("plan", "--format", "json", *args)
        assert run.returncode == (1 if run.json()["conflicts"] else 0), run   # a conflict fails the plan
        return run.json()

    def apply(self, *args: Any) -> Run:
        return self.run("apply", *args)
