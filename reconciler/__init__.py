"""reconcile: GitOps for Prefect deployments.

    from reconciler import plan, apply
    p = plan("deployments/")             # a Plan (see reconciler.engine.plans.Plan)
    report = apply("deployments/")        # a Report (see reconciler.engine.report.Report)

Both take the CLI's options as keyword arguments and raise ReconcileError (one
line, the message the CLI prints) on bad input or an unreachable server.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union

from .errors import ReconcileError

if TYPE_CHECKING:
    from .engine.plans import Plan
    from .engine.report import Report

__all__ = ["plan", "apply", "Plan", "Report", "ReconcileError"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """`reconciler.Plan` and `reconciler.Report`, loaded when first asked for: `reconcile --help` does not need them."""
    if name == "Plan":
        from .engine.plans import Plan
        return Plan
    if name == "Report":
        from .engine.report import Report
        return Report
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def plan(path: Union[str, Path] = ".", *, api_url: Optional[str] = None, source: Optional[str] = None,
         verbose: bool = False) -> Plan:
    """What apply would change, as a Plan value (no writes)."""
    from .engine import run as engine
    return engine.make_plan(Path(path), engine.Options(api_url=api_url, source=source, verbose=verbose))


def apply(path_or_plan: Union[str, Path, Plan] = ".", *, api_url: Optional[str] = None,
          source: Optional[str] = None, allow_deletes: bool = False, max_deletes: Optional[int] = None,
          allow_empty: bool = False, lock_timeout: float = 0.0, parallelism: int = 4,
          verbose: bool = False, **extra: Any) -> Report:
    """Make the server match a directory of manifests, or apply a saved plan (a file or a Plan)."""
    from .engine import run as engine
    from .engine import saved
    from .engine.plans import Plan
    options = engine.Options(api_url=api_url, source=source, allow_deletes=allow_deletes,
                             max_deletes=max_deletes, allow_empty=allow_empty, lock_timeout=lock_timeout,
                             parallelism=parallelism, verbose=verbose, **extra)
    if isinstance(path_or_plan, Plan):
        return saved.apply_plan(path_or_plan, options, origin="plan")
    target = Path(path_or_plan)
    if target.is_file() and target.suffix == ".json":
        return saved.apply_saved(target, options)
    return engine.apply_path(target, options)
