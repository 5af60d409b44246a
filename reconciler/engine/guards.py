"""Checks that stop a run before its first write.  Each returns or raises; none writes."""
from __future__ import annotations

from ..errors import ManifestError, ManifestErrors, Refused
from .desired import Desired
from .live import Live
from .plans import Plan


def blocks_exist(desired: list[Desired], live: Live) -> None:
    """Every named block a manifest references exists on the server (by type slug + name)."""
    errors = []
    for want in desired:
        for key, ref in (("infrastructure", want.infrastructure), ("storage", want.storage)):
            if ref is not None and ref.name is not None and (ref.slug, ref.name) not in live.named:
                errors.append(ManifestError(
                    want.manifest or want.identity, want.lines.get(key, 1), 1, key,
                    f"block {ref.slug}/{ref.name} not found on the server at {live.api_url}; "
                    "create it there or correct `_block_document_name`"))
    if errors:
        raise ManifestErrors(errors)


def work_pools_exist(desired: list[Desired], live: Live) -> None:
    """A work pool a manifest names exists (Prefect 2 creates queues on demand, never pools)."""
    errors = []
    for want in desired:
        pool = want.fields.get("work_pool_name")
        if pool is not None and pool not in live.work_pools:
            errors.append(ManifestError(
                want.manifest or want.identity, want.lines.get("work_pool_name", 1), 1, "work_pool_name",
                f"work pool {pool!r} not found on the server at {live.api_url}; create it there or correct the name"))
    if errors:
        raise ManifestErrors(errors)


def delete_limit(plan: Plan, max_deletes: int, allow_deletes: bool) -> None:
    deletes = plan.deletes
    if len(deletes) > max_deletes and not allow_deletes:
        names = ", ".join(a.identity for a in deletes[:5]) + (", …" if len(deletes) > 5 else "")
        raise Refused(f"refusing to delete {len(deletes)} deployments (more than --max-deletes {max_deletes}): "
                      f"{names}; pass --allow-deletes to proceed")


def empty_desired(plan: Plan, declared: int, allow_empty: bool) -> None:
    if declared == 0 and plan.inventory_before and not allow_empty:
        raise Refused(f"no manifests found, but source {plan.source!r} manages {len(plan.inventory_before)} "
                      "deployments; applying would delete them all. Check the path, or pass --allow-empty")


def conflicts(plan: Plan) -> None:
    """A deployment another source owns fails the run, unless the user opted to leave such deployments alone."""
    if plan.conflicts and not plan.leave_conflicts:
        raise Refused(conflict_message(plan))


def conflict_message(plan: Plan) -> str:
    shown = ", ".join(f"{c.identity} (source {c.owner!r})" for c in plan.conflicts[:5])
    more = ", …" if len(plan.conflicts) > 5 else ""
    n = len(plan.conflicts)
    return (f"{n} deployment{'s' if n != 1 else ''} declared here belong{'s' if n == 1 else ''} to another source: "
            f"{shown}{more}; nothing was changed. Remove {'them' if n != 1 else 'it'} from this source, or pass "
            "--allow-conflicts (allow_conflicts: true in reconcile.yaml) to leave them alone")
