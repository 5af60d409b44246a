"""The package layout: one package per stage, and no lower stage imports an upper one.

Data flows manifests → flowcode → bundles → engine → render → cli / serve / triggers; prefect (the API
client) is a floor every stage may stand on. Every import is read from the syntax tree, at any depth
(a function-level import is a dependency too).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "reconciler"
STAGES = ("manifests", "flowcode", "bundles", "engine", "prefect", "render", "cli", "serve", "triggers")
UPPER = ("cli", "serve", "triggers", "render")

# stage → the stages it must never import
FORBIDDEN = {
    "manifests": ("engine", "bundles", "flowcode", *UPPER),
    "prefect": ("engine", "bundles", "flowcode", *UPPER),
    "flowcode": ("engine", "bundles", *UPPER),
    "bundles": ("flowcode", *UPPER),
    "engine": UPPER,
    "render": ("cli", "serve", "triggers"),
}
# bundles may use the engine's data types, never its runner
BUNDLES_MAY_USE = {"reconciler.engine.desired", "reconciler.engine.live"}


def imported_modules(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, absolute dotted module) of every import in a module of the package at root."""
    package = path.relative_to(root.parent).parts[:-1]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[: len(package) - node.level + 1])
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            out.append((node.lineno, module))
            out += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]   # `from . import engine`
    return out


def stage_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "reconciler" and parts[1] in STAGES else None


def violations(root: Path = PACKAGE) -> list[str]:
    found: dict[str, str] = {}    # file:line → the first forbidden import on it
    for path in sorted(root.rglob("*.py")):
        stage = path.relative_to(root).parts[0]
        for line, module in imported_modules(path, root):
            target = stage_of(module)
            where = f"{path.relative_to(root.parent)}:{line}"
            if target is None or target == stage or where in found:
                continue
            if target in FORBIDDEN.get(stage, ()):
                found[where] = f"{where}: {stage} imports {module}"
            elif stage == "bundles" and target == "engine" and not any(
                    module == allowed or module.startswith(allowed + ".") for allowed in BUNDLES_MAY_USE):
                found[where] = f"{where}: bundles imports the engine's {module}"
    return list(found.values())


def test_no_lower_stage_imports_an_upper_one() -> None:
    assert violations() == []


def test_only_the_api_the_entry_point_and_the_errors_live_at_the_top() -> None:
    loose = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert loose == ["__init__.py", "__main__.py", "errors.py"]
    assert sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()) == sorted(STAGES)


def test_every_stage_says_what_it_takes_and_gives() -> None:
    for stage in STAGES:
        doc = ast.get_docstring(ast.parse((PACKAGE / stage / "__init__.py").read_text(encoding="utf-8")))
        assert doc and len(doc.splitlines()) >= 2, f"reconciler/{stage}/__init__.py needs a docstring"


@pytest.mark.parametrize("stage, source, expected", [
    ("manifests", "from ..engine.desired import Desired\n", "manifests imports reconciler.engine.desired"),
    ("prefect", "def f():\n    from ..cli import app\n", "prefect imports reconciler.cli"),
    ("engine", "from reconciler.render import text\n", "engine imports reconciler.render"),
    ("engine", "from .. import serve\n", "engine imports reconciler.serve"),
    ("bundles", "from ..engine.run import make_plan\n", "bundles imports the engine's reconciler.engine.run"),
])
def test_the_check_catches_a_back_edge(tmp_path: Path, stage: str, source: str, expected: str) -> None:
    root = tmp_path / "reconciler"
    (root / stage).mkdir(parents=True)
    (root / stage / "x.py").write_text(source)
    assert [v.split(": ", 1)[1] for v in violations(root)] == [expected]


def test_the_check_allows_the_data_flow(tmp_path: Path) -> None:
    root = tmp_path / "reconciler"
    (root / "bundles").mkdir(parents=True)
    (root / "bundles" / "x.py").write_text("from ..engine.desired import Desired\nfrom ..manifests import config\n")
    (root / "cli").mkdir()
    (root / "cli" / "x.py").write_text("from ..engine import run\nfrom ..render import text\n")
    assert violations(root) == []
