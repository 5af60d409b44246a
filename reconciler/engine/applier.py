"""Plan → Prefect API: carry out the actions; a deployment with no change gets no write.

Order: widen the inventory, upsert flows, create/update/adopt (concurrent, as
many at once as the server takes: see limiter), delete last, narrow the inventory.  One failure does not stop the
others; each gets a Result, and a re-run converges.

Within one update: new schedules are created before the PATCH and the old ones
deleted after it, so a kill at any point leaves a deployment with its old or its
new schedules.  Prefect 2.20 deletes a deployment's future auto-scheduled runs
on every PATCH and schedule write, so a deployment that was written and has
runs to make gets `POST /deployments/{id}/schedule` last.
"""
from __future__ import annotations

import concurrent.futures as cf
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from ..bundles.bundle import Bundle
from ..bundles.storage import Target
from ..bundles.transfer import upload
from ..errors import NotFound, ReconcileError
from ..prefect.api import PrefectClient
from ..prefect.v2 import V2Adapter
from . import inventory as inventory_store
from . import pools as pools_mod
from .blockdocs import BlockIds
from .limiter import WriteLimiter, recall, remember
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
        self.parallelism = max(1, parallelism)   # the ceiling: the limiter finds what the server takes
        self.limiter = WriteLimiter(self.parallelism, start=recall(client.api_url))
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
        blocked: dict[str, str] = self._create_pools(plan, report)   # deployment → why it cannot be written
        for planned in plan.uploads:  # code goes up before any deployment points at it
            result = self._upload(planned)
            self._record(report, result)
            if result.status == FAILED:
                blocked.update({identity: f"the upload of {planned.bundle}" for identity in planned.deployments})
        work = [a for a in plan.actions if a.action in ("create", "update", "adopt")]
        for action in [a for a in work if a.identity in blocked]:
            self._record(report, Result(action.identity, action.action, FAILED,
                                        f"not applied: {blocked[action.identity]} failed"))
        work = [a for a in work if a.identity not in blocked]
        self._ensure_flows([a for a in work if a.action == "create"])
        retry = self.client.retry
        retry.on_busy, told_before = self.limiter.on_busy, retry.on_busy
        retry.write_gate, gate_before = self.limiter.turn, retry.write_gate   # the lease's renewals take turns too
        try:
            with cf.ThreadPoolExecutor(self.parallelism) as pool:
                for result in pool.map(self._limited, work):
                    self._record(report, result)
        finally:
            retry.on_busy, retry.write_gate = told_before, gate_before
            remember(self.client.api_url, self.limiter)   # the next apply to this server starts there
        for action in plan.deletes:  # deletes last, one at a time (the inventory lets them go after)
            self._record(report, self._guarded(action))
        failed_deletes = {r.identity for r in report.results if r.action == "delete" and r.status == FAILED}
        # narrowed last, so it lists every deployment this source still claims at any point
        inventory_store.write(self.client, plan.source, widened, plan.inventory_after | failed_deletes)
        report.writes = self.client.writes - start_writes
        return report

    def _create_pools(self, plan: Plan, report: Report) -> dict[str, str]:
        """The pools a 3.x server lacks, before any deployment names them; the deployments of one that failed."""
        if not plan.work_pools:
            return {}
        failed: set[str] = set()
        try:
            templates = pools_mod.default_templates(self.client)
        except ReconcileError as exc:
            templates, reason = {}, str(exc)
        else:
            reason = ""
        for name, kind in plan.work_pools:
            try:
                if reason:
                    raise ReconcileError(reason)
                pools_mod.create(self.client, name, kind, templates)
            except ReconcileError as exc:
                failed.add(name)
                self._record(report, Result(name, "pool", FAILED, str(exc)))
            else:
                self._record(report, Result(name, "pool", OK, f"work pool created (type {kind})"))
        return {a.identity: f"the creation of work pool {a.desired.fields.get('work_pool_name')}" for a in plan.actions
                if a.desired is not None and a.desired.fields.get("work_pool_name") in failed}

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

    def _limited(self, action: Action) -> Result:
        with self.limiter.slot():
            return self._guarded(action)

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
            created = self.client.post("deployments/", self._full_body(desired, flow_id))
            return self._with_runs(created["id"], desired.fields, "created")
        changed = action.changed_fields
        if not changed:
            return "adopted" if action.action == "adopt" else "in sync"
        dep = self.live.deployments[action.identity]
        summary = " (" + ", ".join(sorted(changed)) + ")"
        if changed & set(self.adapter.upsert_only):
            # PATCH cannot change these: one full-replace upsert carries every field.
            self.client.post("deployments/", self._full_body(desired, dep["flow_id"]))
            return self._with_runs(dep["id"], desired.fields, "replaced" + summary)
        written: list[str] = []
        try:
            self._update(dep, desired, changed, written)
        except ReconcileError:
            if written:
                self._reschedule_after_failure(dep["id"])
            raise
        after = self.adapter.live_fields(dep, self.live.block_key)
        after.update({key: desired.fields[key] for key in changed})
        return self._with_runs(dep["id"], after, "updated" + summary)

    def _update(self, dep: dict[str, Any], desired: Any, changed: set[str], written: list[str]) -> None:
        """New schedules first, then the PATCH, then the old schedules go: a kill anywhere leaves old or new.

        `written` collects the path of each write the server took.
        """
        body = self.adapter.patch_body(
            changed, desired.fields,
            self.blocks.id_for(desired.infrastructure) if "infrastructure" in changed else None,
            self.blocks.id_for(desired.storage) if "storage" in changed else None)
        steps = (_schedule_steps(dep, desired.fields["schedules"], self.adapter.live_schedule)
                 if "schedules" in changed else _Steps())
        base = f"deployments/{dep['id']}"
        if steps.create:
            self.client.post(f"{base}/schedules", self.adapter.schedule_bodies(desired.fields["schedules"], steps.create))
            written.append(f"{base}/schedules")
        if body:
            self.client.patch(base, body)
            written.append(base)
        for schedule_id, active in steps.toggle:
            self.client.patch(f"{base}/schedules/{schedule_id}", {"active": active})
            written.append(f"{base}/schedules/{schedule_id}")
        for schedule_id in steps.delete:
            self.client.delete(f"{base}/schedules/{schedule_id}")
            written.append(f"{base}/schedules/{schedule_id}")

    def _with_runs(self, deployment_id: str, fields: dict[str, Any], done: str) -> str:
        """Every write deleted the future auto-scheduled runs: have the server schedule them now."""
        if not self.adapter.schedules_runs(fields):
            return done
        try:
            self.client.post(f"deployments/{deployment_id}/schedule")
        except ReconcileError as exc:
            raise ReconcileError(f"{done}, but its runs were not scheduled (the server's scheduler adds "
                                 f"them on its next loop): {exc}") from None
        return done

    def _reschedule_after_failure(self, deployment_id: str) -> None:
        """A write failed after others succeeded: schedule the runs of what the server now holds."""
        try:
            dep = self.client.get(f"deployments/{deployment_id}")
            if self.adapter.schedules_runs(self.adapter.live_fields(dep, self.live.block_key)):
                self.client.post(f"deployments/{deployment_id}/schedule")
        except ReconcileError:
            pass  # the first failure is the one reported; the scheduler's next loop adds the runs

    def _full_body(self, desired: Any, flow_id: str) -> dict[str, Any]:
        return self.adapter.create_body(desired.name, flow_id, desired.fields,
                                        self.blocks.id_for(desired.infrastructure), self.blocks.id_for(desired.storage))


@dataclass
class _Steps:
    """The schedule writes of one update: unchanged schedules keep their ids."""
    create: list[dict[str, Any]] = field(default_factory=list)
    toggle: list[tuple[str, bool]] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)


def _schedule_steps(dep: dict[str, Any], wanted: list[dict[str, Any]], canonical) -> _Steps:
    steps = _Steps()
    existing = list(dep.get("schedules") or [])
    for entry in wanted:
        match = _match(entry["schedule"], existing, canonical)
        if match is None:
            steps.create.append(entry)
            continue
        existing.remove(match)
        if bool(match.get("active", True)) != entry["active"]:
            steps.toggle.append((match["id"], entry["active"]))
    steps.delete = [stale["id"] for stale in existing]
    return steps


def _match(wanted: dict[str, Any], existing: list[dict[str, Any]], canonical) -> Optional[dict[str, Any]]:
    for item in existing:
        have = canonical(item["schedule"])
        if "interval" in wanted and "anchor_date" not in wanted:
            have.pop("anchor_date", None)
        if have == wanted:
            return item
    return None
