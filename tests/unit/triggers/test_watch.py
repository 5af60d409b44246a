"""Watch mode's loop: a scripted stream of change batches against the in-memory Prefect API.

Each stream is a generator that edits real files in tmp_path and then yields the batch watchfiles
would report, so a run always sees the files as the batch describes them.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import io
import re
import threading
from pathlib import Path

import pytest
from watchfiles import Change

from reconciler.engine import run as engine
from reconciler.triggers import watch

try:
    from .. import prefect_fake as pf
except ImportError:
    import prefect_fake as pf

URL_A, URL_B = "https://example.com/a", "https://example.com/b"
BROKEN = "name: nightly\nflow_name: [\n"
HEADER_TIME = dt.datetime(2024, 5, 1, 12, 3, 4)


def doc(url: str = URL_A) -> dict:
    return pf.manifest("nightly", parameters={"url": url})


class Rig:
    """A directory of manifests, a fake server with the deployment as the manifest declares it, a session."""

    def __init__(self, root: Path, apply: bool = False) -> None:
        self.root = root
        self.fake = pf.FakePrefect()
        pf.write_manifests(root, [doc()])
        self.manifest = root / pf.display_of(doc())
        self.fake.deploy_manifest(doc())
        self.fake.set_inventory("it/watch", ["Cat Facts/nightly"])
        self.out, self.err = io.StringIO(), io.StringIO()
        self.session = watch.Session(root, engine.Options(source="it/watch", say=lambda line: None),
                                     self.fake.client(), apply=apply, out=self.out, err=self.err,
                                     now=lambda: HEADER_TIME)
        self.stop = threading.Event()

    def edit(self, text_or_doc) -> set:
        text = text_or_doc if isinstance(text_or_doc, str) else None
        if text is None:
            pf.write_manifests(self.root, [text_or_doc])
        else:
            self.manifest.write_text(text, encoding="utf-8")
        return {(Change.modified, str(self.manifest))}

    def loop(self, batches) -> None:
        watch.loop(self.session, batches, self.stop)


@pytest.fixture
def rig(tmp_path: Path, monkeypatch) -> Rig:
    made = Rig(tmp_path / "repo")
    monkeypatch.chdir(made.root)          # files show relative to the working directory, as in plans
    return made


def test_plans_at_start_and_after_each_change_with_a_header_naming_it(rig):
    def stream():
        yield rig.edit(doc(URL_B))

    rig.loop(stream())
    out = rig.out.getvalue()
    first, second = out.split("[12:03:04] ")[1:]
    assert first.startswith(f"watching {rig.root} (plan on every change; Ctrl-C to stop)\n")
    assert "No changes. 1 deployment in sync." in first
    assert second.startswith("changed: deployments/nightly-deployment.yaml (modified)\n")
    assert "~ update  Cat Facts/nightly" in second
    assert f'parameters.url: "{URL_A}" → "{URL_B}"' in second
    assert rig.fake.writes == []                         # plan only
    assert rig.err.getvalue() == ""


def test_a_broken_manifest_prints_its_error_and_the_next_fix_plans_again(rig):
    def stream():
        yield rig.edit(BROKEN)
        yield rig.edit(doc(URL_B))

    rig.loop(stream())
    err_lines = rig.err.getvalue().splitlines()
    assert err_lines[0].startswith("error: deployments/nightly-deployment.yaml:3:1: invalid YAML")
    assert err_lines[1] == "1 error(s); nothing was changed. Waiting for the next change."
    assert len(err_lines) == 2
    headers = [line for line in rig.out.getvalue().splitlines() if line.startswith("[12:03:04]")]
    assert len(headers) == 3 and rig.session.runs == 3 and rig.session.failed == 1
    assert rig.out.getvalue().rstrip().endswith("Plan: 0 to create, 1 to update, 0 to delete, 0 to adopt.")


def test_a_server_error_is_reported_and_watching_goes_on(rig):
    def stream():
        rig.fake.fail("POST", "/deployments/filter", 401, {"detail": "Unauthorized"})
        yield rig.edit(doc(URL_B))
        yield rig.edit(doc(URL_A))

    rig.loop(stream())
    assert "→ 401" in rig.err.getvalue() and "Waiting for the next change." in rig.err.getvalue()
    assert rig.out.getvalue().rstrip().endswith("No changes. 1 deployment in sync.")


@pytest.mark.parametrize("rel", [
    ".git/index", ".git/refs/heads/main", ".reconcile/hash-cache.json", "deployments/__pycache__/flow.cpython-311.pyc",
    "deployments/.nightly-deployment.yaml.swp", "deployments/nightly-deployment.yaml~", "deployments/4913",
    "deployments/.#nightly-deployment.yaml", "deployments/#nightly-deployment.yaml#",
    "deployments/.hidden/x-deployment.yaml", "node_modules/pkg/index.yaml",
])
def test_irrelevant_changes_do_not_plan(rig, rel):
    def stream():
        path = rig.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
        yield {(Change.added, str(path))}

    rig.loop(stream())
    assert rig.session.runs == 1
    assert not watch.relevant(rig.root, str(rig.root / rel))


@pytest.mark.parametrize("rel", [
    "deployments/nightly-deployment.yaml", "deployment.yaml", "deployments/extra.yml", "reconcile.yaml",
    ".prefectignore", "deployments/.prefectignore", "flows/etl.py",
    "deployments/data.csv", "flows/requirements.txt", "README.md",
])
def test_relevant_changes(tmp_path, rel):
    assert watch.relevant(tmp_path, str(tmp_path / rel))
    assert watch.relevant(tmp_path, rel)


def test_describe_names_each_file_once_with_what_happened(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-deployment.yaml").write_text("x")
    (tmp_path / "b.py").write_text("x")
    batch = {(Change.deleted, str(tmp_path / "a-deployment.yaml")), (Change.added, str(tmp_path / "a-deployment.yaml")),
             (Change.added, str(tmp_path / "b.py")), (Change.deleted, str(tmp_path / "gone.py")),
             (Change.modified, str(tmp_path / ".git" / "HEAD"))}
    assert watch.describe(tmp_path, batch) == ["a-deployment.yaml (modified)", "b.py (added)", "gone.py (deleted)"]


def test_a_temporary_file_created_and_deleted_within_one_batch_is_not_a_change(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-deployment.yaml").write_text("x")
    known = watch.scan(tmp_path)
    batch = {(Change.added, str(tmp_path / "sedOPxt8Q")), (Change.deleted, str(tmp_path / "sedOPxt8Q")),
             (Change.modified, str(tmp_path / "a-deployment.yaml"))}
    assert watch.describe(tmp_path, batch, known) == ["a-deployment.yaml (modified)"]
    only_temporary = {(Change.added, str(tmp_path / "sedX")), (Change.deleted, str(tmp_path / "sedX"))}
    assert watch.describe(tmp_path, only_temporary, known) == []


def test_a_file_saved_by_renaming_over_it_is_modified_and_a_new_one_added(rig):
    def stream():
        rig.edit(doc(URL_B))                          # the editor wrote a temporary file and renamed it
        yield {(Change.added, str(rig.manifest))}     # watchfiles reports the rename as added
        (rig.root / "flows").mkdir()
        (rig.root / "flows" / "etl.py").write_text("")
        yield {(Change.added, str(rig.root / "flows" / "etl.py"))}
        rig.manifest.unlink()
        yield {(Change.deleted, str(rig.manifest))}

    rig.loop(stream())
    headers = [line for line in rig.out.getvalue().splitlines() if line.startswith("[12:03:04] changed")]
    assert headers == ["[12:03:04] changed: deployments/nightly-deployment.yaml (modified)",
                       "[12:03:04] changed: flows/etl.py (added)",
                       "[12:03:04] changed: deployments/nightly-deployment.yaml (deleted)"]


def test_many_files_are_counted_in_the_header(rig):
    def stream():
        (rig.root / "flows").mkdir()
        for i in range(5):
            (rig.root / "flows" / f"f{i}.py").write_text("")
        yield {(Change.added, str(rig.root / "flows" / f"f{i}.py")) for i in range(5)}

    rig.loop(stream())
    assert "changed: flows/f0.py (added), flows/f1.py (added), flows/f2.py (added), and 2 more\n" \
        in rig.out.getvalue()


def test_the_stop_event_ends_the_loop_before_the_next_batch(rig):
    def stream():
        rig.stop.set()                                # e.g. SIGTERM while waiting for changes
        yield rig.edit(doc(URL_B))
        raise AssertionError("the loop asked for another batch after stop")

    rig.loop(stream())
    assert rig.session.runs == 1


def test_apply_mode_applies_each_change_and_prints_the_report(tmp_path):
    rig = Rig(tmp_path / "repo", apply=True)      # not in the working directory: files show as absolute paths

    def stream():
        yield rig.edit(doc(URL_B))
        yield rig.edit(BROKEN)                          # nothing applied for a broken save
        yield rig.edit(doc(URL_B))                      # fixed: nothing left to do

    rig.loop(stream())
    out = rig.out.getvalue()
    assert rig.fake.deployment("Cat Facts", "nightly")["parameters"] == {"url": URL_B}
    assert out.count("Apply complete: 0 created, 1 updated") == 1
    assert f"changed: {rig.manifest.resolve()} (modified)\n" in out
    assert out.rstrip().endswith("No changes. 1 deployment in sync.")
    assert rig.session.runs == 4 and rig.session.failed == 1


def test_watch_opens_one_client_for_the_whole_session(rig, monkeypatch):
    opened: list[object] = []

    @contextlib.contextmanager
    def connect(options, config_url=None):
        client = rig.fake.client()
        opened.append(client)
        yield client

    def batches(*paths, stop_event, **kwargs):
        yield set()                                   # watchfiles' first answer: a timeout, nothing changed yet
        for url in (URL_B, URL_A, URL_B):
            yield rig.edit(doc(url))

    monkeypatch.setattr(engine, "connect", connect)
    monkeypatch.setattr("watchfiles.watch", batches)
    code = watch.watch(rig.root, engine.Options(source="it/watch", say=lambda line: None), out=rig.out, err=rig.err)
    assert code == 0
    assert len(opened) == 1
    assert len(re.findall(r"(?m)^\[\d\d:\d\d:\d\d\] ", rig.out.getvalue())) == 4
    assert rig.out.getvalue().count("~ update  Cat Facts/nightly") == 2
    assert rig.err.getvalue() == "stopped watching\n"
