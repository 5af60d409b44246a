"""discover.find / load_all: which files under a directory are manifests, and loading them all."""
from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.manifests import config, discover
from reconciler.manifests.configmodel import Config
from reconciler.errors import ManifestError, ManifestErrors, ReconcileError

K8S = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 2\n"


def write(root: Path, rel: str, text: str | None = None) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if text is None:
        text = f"name: {path.stem}\nflow_name: f\n"
    path.write_text(text, encoding="utf-8")
    return path


def found(root: Path, cfg: Config | None = None) -> list[str]:
    return [p.relative_to(root).as_posix() for p in discover.find(root, cfg or config.load(root).config)]


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for rel in [
        "a-deployment.yaml",
        "sub/deep/b-deployment.yml",
        "qa/deployment.yaml",                # Prefect 2.0.0's default name
        "flows/prod.yaml",                   # only with `include`
        "notes.yaml",                        # never
        "a-deployment.yaml.bak",             # never
        "my-deployment.yaml.txt",            # never
        ".github/workflows/c-deployment.yaml",   # hidden dir
        "sub/.cache/d-deployment.yaml",          # hidden dir, nested
        "__pycache__/e-deployment.yaml",
        "node_modules/pkg/f-deployment.yaml",
        "venv/lib/g-deployment.yaml",
        "ignored/h-deployment.yaml",         # .prefectignore dir
        "scratch-deployment.yaml",           # .prefectignore file
        "old/i-deployment.yaml",             # config exclude
        "sub/j-deployment.yaml",             # config exclude by glob
    ]:
        write(tmp_path, rel)
    write(tmp_path, ".prefectignore", "# ignore these\nignored/\nscratch-*.yaml\n")
    write(tmp_path, "reconcile.yaml", "include: ['flows/*.yaml']\nexclude: ['old/', 'sub/j-*']\n")
    return tmp_path


def test_find_recursive_with_patterns_include_and_ignores(tree):
    assert found(tree) == [
        "a-deployment.yaml",
        "flows/prod.yaml",
        "qa/deployment.yaml",
        "sub/deep/b-deployment.yml",
    ]


def test_without_config_include_and_exclude_do_not_apply(tree):
    assert found(tree, Config()) == [
        "a-deployment.yaml",
        "old/i-deployment.yaml",
        "qa/deployment.yaml",
        "sub/deep/b-deployment.yml",
        "sub/j-deployment.yaml",
    ]


def test_prefectignore_alone(tmp_path):
    write(tmp_path, "keep-deployment.yaml")
    write(tmp_path, "drafts/x-deployment.yaml")
    write(tmp_path, "y-deployment.yml")
    write(tmp_path, ".prefectignore", "drafts/\n*.yml\n")
    assert found(tmp_path, Config()) == ["keep-deployment.yaml"]


def test_include_glob_at_any_depth(tmp_path):
    write(tmp_path, "deploy/prod/etl.yaml")
    write(tmp_path, "deploy/readme.md", "# not yaml\n")
    assert found(tmp_path, Config(include=["deploy/*/*.yaml"])) == ["deploy/prod/etl.yaml"]


def test_reconcile_yaml_is_never_a_manifest(tmp_path):
    # BUG: a broad `include` picks up reconcile.yaml itself, which then fails as a manifest
    # ("reconcile.yaml:1:1: name: required key is missing").
    write(tmp_path, "reconcile.yaml", "include: ['*.yaml']\n")
    write(tmp_path, "etl.yaml")
    assert found(tmp_path) == ["etl.yaml"]


def test_a_file_root_is_that_file(tmp_path):
    path = write(tmp_path, "anything.yaml")
    assert discover.find(path, Config()) == [path]


def test_missing_root_is_a_known_error(tmp_path):
    with pytest.raises(ReconcileError) as info:
        discover.find(tmp_path / "nope", Config())
    assert str(info.value) == f"{tmp_path / 'nope'}: no such directory"


def test_load_all_skips_kubernetes_objects_with_a_notice(tree):
    write(tree, "k8s/web-deployment.yaml", K8S)
    loaded = discover.load_all(tree, config.load(tree).config)
    assert [m.display for m in loaded.manifests] == [
        "a-deployment.yaml", "flows/prod.yaml", "qa/deployment.yaml", "sub/deep/b-deployment.yml"]
    assert [m.identity for m in loaded.manifests] == ["f/a-deployment", "f/prod", "f/deployment", "f/b-deployment"]
    assert loaded.notices == ["k8s/web-deployment.yaml: skipped, not a Prefect manifest (has apiVersion/kind)"]
    assert loaded.root == tree


def test_kubernetes_multi_document_file_is_skipped(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "x-deployment.yaml", "---\n" + K8S + "---\napiVersion: v1\nkind: Service\n")
    loaded = discover.load_all(tmp_path, Config())
    assert loaded.manifests == []
    assert loaded.notices == ["x-deployment.yaml: skipped, not a Prefect manifest (has apiVersion/kind)"]


def test_a_manifest_mentioning_kind_is_still_a_manifest(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "x-deployment.yaml", "name: n\nflow_name: f\nparameters:\n  kind: full\n")
    loaded = discover.load_all(tmp_path, Config())
    assert [m.identity for m in loaded.manifests] == ["f/n"]
    assert loaded.notices == []


def test_all_bad_files_are_reported_together(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "a-deployment.yaml", "name: [\n")
    write(tmp_path, "good-deployment.yaml")
    write(tmp_path, "sub/b-deployment.yaml", "name: b\n")
    write(tmp_path, "sub/c-deployment.yml", "name: c\nflow_name: f\ntags: prod\n")
    with pytest.raises(ManifestErrors) as info:
        discover.load_all(tmp_path, Config())
    errors = info.value.errors
    assert all(isinstance(e, ManifestError) for e in errors)
    assert [str(e) for e in errors] == [
        "a-deployment.yaml:2:1: invalid YAML: did not find expected node content",
        "sub/b-deployment.yaml:1:1: flow_name: required key is missing",
        "sub/c-deployment.yml:3:1: tags: Input should be a valid list (got 'prod')",
    ]
    assert str(info.value) == "\n".join(str(e) for e in errors)


def test_a_directory_named_like_a_manifest_is_walked_not_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "ok-deployment.yaml")
    (tmp_path / "dir-deployment.yaml").mkdir()
    (tmp_path / "dir-deployment.yaml" / "inner.txt").write_text("x")
    loaded = discover.load_all(tmp_path, Config())
    assert [m.display for m in loaded.manifests] == ["ok-deployment.yaml"]


def test_empty_directory_loads_nothing(tmp_path):
    loaded = discover.load_all(tmp_path, Config())
    assert loaded.manifests == [] and loaded.notices == []
