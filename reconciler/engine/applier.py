"""Plan → Prefect API: carry out the actions; a deployment with no change gets no write.

Order: widen the inventory, upsert flows, create/update/adopt (bounded
concurrency), delete last, narrow the inventory.  One failure does not stop the
others; each gets a Result, and a re-run converges.
"""
from __future__ import annotations

import concurrent.futures as cf
from typing import Any, Callable, Optional

from ..bundles.bundle import Bundle
from ..bundles.storage import Target
from ..bundles.transfer import upload
from ..errors import NotFound, ReconcileError
from ..manifests import schedules
from ..prefect.api import PrefectClient
from ..prefect.v2 import UPSERT_ONLY, V2Adapter
from . import inventory as inventory_store
from .blockdocs import BlockIds
from .live import Live
from .plans import Action, Plan
from .report import FAILED, OK, Report, Result

Listener = Callable[[Result], None]


class Applier:
    def __init__(self, client: PrefectClient, live: Live, adapter: V2Adapter, *, parallelism: int = 4,
                 on_result: Listener = lambda r: None, targets: Optional[dict[str, Target]] = None,
                 bundles: Optional[dict[str, Bundle]] = None, on_bytes: Callable[[int], None] = lambda n: None) -> None:
        self.client = client
        self.live = live
        self.adapter = adapter
        self.parallelism = max(1, parallelism)
        self.on_result = on_result
        self.blocks = BlockIds(client, live)
        self.flow_ids = dict(live.flows)
        self.targets = targets or {}
        self.bundles = bundles or {}   # bundle directory → Bundle
        self.on_bytes = on_bytes

    def run(self, plan: Plan) -> Report:
        report = Report(plan)
        start_writes = self.client.writes
        current = self.live.inventories.get(plan.source)
        widened = inventory_store.write(self.client, plan.source, current,
                                        plan.inventory_before | plan.inventory_after)
        blocked: dict[str, str] = {}
        for planned in plan.uploads:  # code goes up before any deployment points at it
            result = self._upload(planned)
            self._record(report, result)
            if result.status == FAILED:
                blocked.update({identity: planned.bundle for identity in planned.deployments})
        work = [a for a in plan.actions if a.action in ("create", "update", "adopt")]
        for action in [a for a in work if a.identity in blocked]:
            self._record(report, Result(action.identity, action.action, FAILED,
                                        f"not applied: the upload of {blocked[action.identity]} failed"))
        work = [a for a in work if a.identity not in blocked]
        self._ensure_flows([a for a in work if a.action == "create"])
        with cf.ThreadPoolExecutor(self.parallelism) as pool:
            for result in pool.map(self._guarded, work):
                self._record(report, result)
        for action in plan.deletes:  # deletes last, one at a time
            self._record(report, self._guarded(action))
        failed_deletes = {r.identity for r in report.results if r.action == "delete" and r.status == FAILED}
        inventory_store.write(self.client, plan.source, widened, plan.inventory_after | failed_deletes)
        report.writes = self.client.writes - start_writes
        return report

    def _upload(self, planned) -> Result:
        try:
            target = self.targets.get(planned.url)
            bundle = self.bundles.get(planned.bundle_dir)
            if target is None or bundle is None:
                raise ReconcileError(f"{planned.bundle}: its storage location is no longer declared")
            written = upload(target, bundle, planned, self.on_bytes)
        except ReconcileError as exc:
            return Result(planned.bundle, "upload", FAILED, str(exc))
        files = len(planned.write)
        return Result(planned.bundle, "upload", OK,
                      f"{files} file{'s' if files != 1 else ''} ({written} bytes) to {planned.storage}"
                      + (f", {len(planned.remove)} removed" if planned.remove else ""))

    def _record(self, report: Report, result: Result) -> None:
        report.results.append(result)
        self.on_result(result)

    def _guarded(self, action: Action) -> Result:
        before = self.client.writes
        try:
            message = self._do(action)
        except ReconcileError as exc:
            return Result(action.identity, action.action, FAILED, str(exc), self.client.writes - before)
        return Result(action.identity, action.action, OK, message, self.client.writes - before)

    def _ensure_flows(self, creates: list[Action]) -> None:
        for name in sorted({a.desired.flow_name for a in creates if a.desired}):
            if name not in self.flow_ids:
                try:
                    self.flow_ids[name] = self.client.post("flows/", {"name": name})["id"]
                except ReconcileError:
                    pass  # the creates of this flow fail with the reason below

    def _do(self, action: Action) -> str:
        if action.action == "delete":
            try:
                self.client.delete(f"deployments/{action.live_id}")
            except NotFound:
                return "already gone"
            return "deleted"
        desired = action.desired
        assert desired is not None
        if action.action == "create":
            flow_id = self.flow_ids.get(desired.flow_name) or self.client.post("flows/", {"name": desired.flow_name})["id"]
            self.client.post("deployments/", self._full_body(desired, flow_id))
            return "created"
        changed = action.changed_fields
        if not changed:
            return "adopted" if action.action == "adopt" else "in sync"
        dep = self.live.deployments[action.identity]
        if changed & set(UPSERT_ONLY):
            # PATCH cannot change these: one full-replace upsert carries every field.
            self.client.post("deployments/", self._full_body(desired, dep["flow_id"]))
            return "replaced (" + ", ".join(sorted(changed)) + ")"
        body = self.adapter.patch_body(
            changed, desired.fields,
            self.blocks.id_for(desired.infrastructure) if "infrastructure" in changed else None,
            self.blocks.id_for(desired.storage) if "storage" in changed else None)
        if body:
            self.client.patch(f"deployments/{dep['id']}", body)
        if "schedules" in changed:
            self._sync_schedules(dep, desired.fields["schedules"])
        return "updated (" + ", ".join(sorted(changed)) + ")"

    def _full_body(self, desired: Any, flow_id: str) -> dict[str, Any]:
        return self.adapter.create_body(desired.name, flow_id, desired.fields,
                                        self.blocks.id_for(desired.infrastructure), self.blocks.id_for(desired.storage))

    def _sync_schedules(self, dep: dict[str, Any], wanted: list[dict[str, Any]]) -> None:
        """Change schedules one by one, so unchanged ones keep their ids (and their runs)."""
        existing = list(dep.get("schedules") or [])
        missing: list[dict[str, Any]] = []
        for entry in wanted:
            match = _match(entry["schedule"], existing)
            if match is None:
                missing.append(entry)
                continue
            existing.remove(match)
            if bool(match.get("active", True)) != entry["active"]:
                self.client.patch(f"deployments/{dep['id']}/schedules/{match['id']}", {"active": entry["active"]})
        for stale in existing:
            self.client.delete(f"deployments/{dep['id']}/schedules/{stale['id']}")
        if missing:
            self.client.post(f"deployments/{dep['id']}/schedules",
                             [{"schedule": e["schedule"], "active": e["active"]} for e in missing])


def _match(wanted: dict[str, Any], existing: list[dict[str, Any]]) -> Optional[dict[str, Any]]:
    for item in existing:
        have = schedules.from_live(item["schedule"])
        if "interval" in wanted and "anchor_date" not in wanted:
            have.pop("anchor_date", None)
        if have == wanted:
            return item
    return None
