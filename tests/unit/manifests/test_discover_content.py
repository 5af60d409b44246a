"""Manifests recognised by content: `prefect deployment build -o` takes any file name.

A *.yaml / *.yml file is a manifest when its first few KB hold Prefect's build header, or the
`### DO NOT EDIT BELOW THIS LINE` marker and a `flow_name` key; nothing else is read to tell.
"""
from __future__ import annotations

import fnmatch
import os
import shutil
import threading
from pathlib import Path

import pytest

from reconciler.manifests import config, discover
from reconciler.manifests.configmodel import Config

from fixture_paths import FIXTURES  # noqa: E402 - tests/ is on sys.path under pytest

REAL_WORLD = FIXTURES / "real-world"

HEADER = "###\n### A complete description of a Prefect Deployment for flow 'etl'\n###\n"
BELOW = "###\n### DO NOT EDIT BELOW THIS LINE\n###\nflow_name: etl\nentrypoint: etl.py:etl\n"


def names(root: Path, cfg: Config | None = None) -> list[str]:
    return [p.relative_to(root).as_posix() for p in discover.find(root, cfg or config.load(root).config)]


def real_name(fixture: Path) -> str:
    """The name the file had in its repository (fixtures are named owner__repo__dirs__file)."""
    return fixture.name.split("__")[-1]


def not_named_like_a_manifest() -> list[Path]:
    return [p for p in sorted(REAL_WORLD.glob("*.yaml"))
            if not any(fnmatch.fnmatchcase(real_name(p), pattern) for pattern in discover.DEFAULT_PATTERNS)]


def test_the_real_world_manifests_with_other_names_are_found_and_load(tmp_path):
    others = not_named_like_a_manifest()
    assert len(others) >= 6, [p.name for p in others]
    for path in others:   # production.yaml, deployment-parent.yaml, pythonics3.yaml, …
        shutil.copy(path, tmp_path / real_name(path))
    assert len(names(tmp_path)) == len(others)
    loaded = discover.load_all(tmp_path, Config())
    assert loaded.errors == [] and loaded.notices == []
    assert sorted(m.path.name for m in loaded.manifests) == sorted(real_name(p) for p in others)


def test_every_real_world_manifest_is_found_whatever_its_name(tmp_path):
    for path in REAL_WORLD.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    assert len(names(tmp_path)) == len(list(REAL_WORLD.glob("*.yaml"))) == 36


@pytest.mark.parametrize("text, wanted", [
    (HEADER + "name: a\n" + BELOW, True),                       # what `prefect deployment build` writes
    ("name: a\n" + BELOW, True),                                # header deleted: the marker and flow_name
    (HEADER.replace("\n", "\r\n") + "name: a\r\n", True),        # CRLF
    ("name: a\n" + BELOW.replace("flow_name", "flow"), False),   # a marker alone is not enough
    ("flow_name: etl\nname: a\n", False),                        # a flow_name alone is not enough
    ("apiVersion: v1\nkind: ConfigMap\n", False),
    ("# ### A complete description of a Prefect Deployment\n", False),
])
def test_what_the_first_bytes_must_say(tmp_path, text, wanted):
    (tmp_path / "prod.yaml").write_text(text, encoding="utf-8")
    assert names(tmp_path) == (["prod.yaml"] if wanted else [])


def test_only_the_first_few_kb_are_read(tmp_path):
    filler = "# " + "x" * 78 + "\n"
    late = filler * (discover.SNIFF_BYTES // len(filler) + 1) + HEADER + "name: a\n" + BELOW
    (tmp_path / "late.yaml").write_text(late, encoding="utf-8")
    (tmp_path / "late-deployment.yaml").write_text(late, encoding="utf-8")   # its name still counts
    assert names(tmp_path) == ["late-deployment.yaml"]


def test_a_fifo_or_a_link_to_a_device_named_yaml_is_not_read(tmp_path):
    os.mkfifo(tmp_path / "pipe.yaml")
    os.symlink("/dev/zero", tmp_path / "zero.yaml")
    os.symlink(tmp_path / "loop.yaml", tmp_path / "loop.yaml")
    found: list[list[str]] = []
    worker = threading.Thread(target=lambda: found.append(names(tmp_path)), daemon=True)
    worker.start()
    worker.join(10)
    assert found == [[]]


def test_prefectignore_exclude_and_hidden_files_still_apply(tmp_path):
    text = HEADER + "name: a\n" + BELOW
    for rel in ("keep/prod.yaml", "legacy/old.yaml", "scratch/tmp.yml", ".github/workflows/ci.yaml", ".hidden.yaml"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text, encoding="utf-8")
    (tmp_path / ".prefectignore").write_text("scratch/\n", encoding="utf-8")
    (tmp_path / "reconcile.yaml").write_text("exclude: ['legacy/']\n", encoding="utf-8")
    assert names(tmp_path) == ["keep/prod.yaml"]


def test_reconcile_yaml_is_never_a_manifest_even_when_it_looks_like_one(tmp_path):
    (tmp_path / "reconcile.yaml").write_text(HEADER + "source: s\n" + "### DO NOT EDIT BELOW THIS LINE\n",
                                             encoding="utf-8")
    assert names(tmp_path) == []
