"""migrate: the manifests → one Prefect 3 prefect.yaml.  No logic of its own; the engine is imported inside."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from typing_extensions import Annotated

from .app import PathArg, _say, app


@app.command("migrate")
def migrate_cmd(
    path: PathArg = Path("."),
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="The prefect.yaml to write, inside the "
                                                "repository (default: PATH/prefect.yaml).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing prefect.yaml.")] = False,
) -> None:
    """Write one Prefect 3 prefect.yaml (entrypoints, pull steps, work pools, schedules) from the manifests,
    for `prefect deploy --all`. Reads files only: no server, and the flow code is never imported."""
    from ..engine import migrate as migrate_mod
    outcome = migrate_mod.migrate(path, out, force)
    for notice in outcome.notices:
        _say(f"note: {notice}")
    count = len(outcome.deployments)
    print(f"wrote {outcome.out}: {count} deployment{'s' if count != 1 else ''} for Prefect 3")
    for name, kind in outcome.pools.items():
        print(f"  work pool {name} ({kind}): prefect work-pool create {name} --type {kind}")
    print(f"then, from {outcome.out.parent}: prefect --no-prompt deploy --all")


__all__ = ["migrate_cmd"]
