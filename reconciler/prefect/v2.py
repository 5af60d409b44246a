"""The adapter for Prefect 2.x servers: API JSON ↔ the compared shape.

Knows which fields the 2.x deployment schema has, which ones PATCH can change,
how to pause (through `paused`: on 2.20 a PATCH carrying `is_schedule_active`
or `schedule` deletes every schedule of the deployment), and when the server
makes runs for a deployment (`schedules_runs`).
"""
from __future__ import annotations

from typing import Any, Optional

from ..errors import ReconcileError
from ..manifests import schedules

# Compared fields that PATCH /deployments/{id} sends under the same name.
PATCH_SAME_NAME = (
    "description", "version", "work_queue_name", "work_pool_name", "tags", "parameters",
    "path", "entrypoint", "manifest_path", "enforce_parameter_schema",
)
# Compared fields PATCH cannot change: a full-replace POST upsert is needed.
UPSERT_ONLY = ("parameter_openapi_schema",)


class V2Adapter:
    major = 2
    upsert_only: tuple[str, ...] = UPSERT_ONLY

    def desired_fields(self, fields: dict[str, Any], infrastructure, storage, notices: list[str]) -> dict[str, Any]:
        """The manifest's compared fields as this server line holds them: on 2.x, as they are."""
        return fields

    def live_fields(self, dep: dict[str, Any], block_key) -> dict[str, Any]:
        """The API's deployment JSON in the compared shape (server-set fields dropped)."""
        return {
            "description": dep.get("description"),
            "version": dep.get("version"),
            "work_queue_name": dep.get("work_queue_name"),
            "work_pool_name": dep.get("work_pool_name"),
            "tags": sorted(set(dep.get("tags") or [])),
            "parameters": dep.get("parameters") or {},
            "schedules": sorted(
                ({"schedule": schedules.from_live(s["schedule"]), "active": bool(s.get("active", True))}
                 for s in dep.get("schedules") or []),
                key=schedules.sort_key),
            "is_schedule_active": not dep.get("paused", False),
            "infra_overrides": dep.get("infra_overrides") or dep.get("job_variables") or {},
            "infrastructure": block_key(dep.get("infrastructure_document_id")),
            "storage": block_key(dep.get("storage_document_id")),
            "path": dep.get("path"),
            "entrypoint": dep.get("entrypoint"),
            "manifest_path": dep.get("manifest_path"),
            "parameter_openapi_schema": _without_nulls(dep.get("parameter_openapi_schema")),
            "enforce_parameter_schema": bool(dep.get("enforce_parameter_schema")),
        }

    def create_body(self, name: str, flow_id: str, fields: dict[str, Any],
                    infrastructure_id: Optional[str], storage_id: Optional[str]) -> dict[str, Any]:
        """The complete body for POST /deployments/ (an upsert that replaces everything)."""
        body = {key: fields[key] for key in PATCH_SAME_NAME}
        body.update(
            name=name,
            flow_id=flow_id,
            schedules=[{"schedule": s["schedule"], "active": s["active"]} for s in fields["schedules"]],
            paused=not fields["is_schedule_active"],
            infra_overrides=fields["infra_overrides"],
            infrastructure_document_id=infrastructure_id,
            storage_document_id=storage_id,
            parameter_openapi_schema=fields["parameter_openapi_schema"],
        )
        return body

    def patch_body(self, changed: set[str], fields: dict[str, Any],
                   infrastructure_id: Optional[str], storage_id: Optional[str]) -> dict[str, Any]:
        """Only the changed fields, for PATCH /deployments/{id} (schedules go separately)."""
        body: dict[str, Any] = {key: fields[key] for key in PATCH_SAME_NAME if key in changed}
        if "is_schedule_active" in changed:
            body["paused"] = not fields["is_schedule_active"]
        if "infra_overrides" in changed:
            body["infra_overrides"] = fields["infra_overrides"]
        if "infrastructure" in changed:
            body["infrastructure_document_id"] = infrastructure_id
        if "storage" in changed:
            body["storage_document_id"] = storage_id
        return body

    @staticmethod
    def schedule_bodies(wanted: list[dict[str, Any]], chosen: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The bodies that create `chosen` (entries of the deployment's `wanted` schedules)."""
        return [{"schedule": s["schedule"], "active": s["active"]} for s in chosen]

    @staticmethod
    def live_schedule(schedule: dict[str, Any]) -> dict[str, Any]:
        """One schedule the server holds, as compared (manifests/schedules.from_live)."""
        return schedules.from_live(schedule)

    @staticmethod
    def schedules_runs(fields: dict[str, Any]) -> bool:
        """Whether the server's scheduler makes runs for a deployment in the compared shape.

        2.20's scheduler picks deployments that are not paused and have an active
        schedule; `POST /deployments/{id}/schedule` checks only the schedules, so it
        must not be sent for a paused deployment.
        """
        return bool(fields["is_schedule_active"]) and any(s["active"] for s in fields["schedules"])


def _without_nulls(schema: Any) -> Any:
    return {k: v for k, v in schema.items() if v is not None} if isinstance(schema, dict) else schema


def adapter_for(version: str, pools: Optional[dict[str, str]] = None,
                storage_secrets: Optional[dict[str, dict[str, str]]] = None) -> V2Adapter:
    """The adapter for a server's major version; on 3.x, `pools`: pool type → the pool of pool-less manifests,
    `storage_secrets`: storage block key → {pull step setting: Secret block name}."""
    major = version.split(".", 1)[0]
    if major == "2":
        return V2Adapter()
    if major == "3":
        from .v3 import V3Adapter
        return V3Adapter(pools, storage_secrets)
    raise ReconcileError(
        f"Prefect server version {version} is not supported (this release speaks to Prefect 2.x and 3.x servers)")
