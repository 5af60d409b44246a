"""The adapter for Prefect 3.x servers: the same compared shape as 2.x, in the manifest's terms.

A manifest is translated once (`desired_fields`, rules in v3fields): its infrastructure block and
`infra_overrides` become the work pool's `job_variables`, compared as `infra_overrides` with dotted keys
(what the server's job variables say, flattened), so a plan of one directory reads the same against 2.20
and 3.9.1.  Nothing is sent that 3.x's request models refuse: no `schedule`, `is_schedule_active`,
`infra_overrides`, `manifest_path`, no null for a list or a mapping, `version` as a string.  A 2.x storage
type 3.x lacks (s3, gcs, azure, github, gitlab-repository) becomes `pull_steps`, a compared field here, and the
deployment gets no `storage_document_id`.
"""
from __future__ import annotations

from typing import Any, Optional

from ..manifests import schedules
from ..manifests.blocks import BlockRef
from ..manifests.secrets import SECRET_FIELDS
from . import v3fields, v3pull
from .v2 import V2Adapter

AGENT_POOL = "default-agent-pool"
PATCH_SAME_NAME = (
    "description", "work_queue_name", "work_pool_name", "path", "entrypoint", "enforce_parameter_schema",
)


class V3Adapter(V2Adapter):
    major = 3
    upsert_only: tuple[str, ...] = ()      # 3.x PATCH changes the parameter schema too

    def __init__(self, pools: Optional[dict[str, str]] = None,
                 storage_secrets: Optional[dict[str, dict[str, str]]] = None) -> None:
        self.pools = {**v3fields.DEFAULT_POOLS, **(pools or {})}   # pool type → the pool of pool-less manifests
        # storage block key → {pull step setting: Secret block name} (reconcile.yaml's prefect3.storage_secrets)
        self.storage_secrets = dict(storage_secrets or {})

    def desired_fields(self, fields: dict[str, Any], infrastructure: Optional[BlockRef],
                       storage: Optional[BlockRef], notices: list[str]) -> dict[str, Any]:
        """The manifest's compared fields as a 3.x server can hold them (v3fields.Unrepresentable if it cannot)."""
        named_pool = fields.get("work_pool_name")
        if named_pool == AGENT_POOL:    # Prefect 2's agent pool: 3.x workers never read it
            notices.append(f"work pool {AGENT_POOL} is Prefect 2's agent pool, which Prefect 3 workers do not read: "
                           "the deployment goes to the pool of its infrastructure type")
            named_pool = None
        fields = {**fields, "work_pool_name": named_pool}
        try:
            kind: Optional[str] = v3fields.pool_type(infrastructure)
        except v3fields.Unrepresentable:
            if not named_pool:
                raise
            kind = None   # the manifest names its pool: it runs there, with infra_overrides as job variables
            assert infrastructure is not None
            notices.append(f"its {infrastructure.slug} infrastructure block's settings are not carried over to work "
                           f"pool {fields['work_pool_name']} (no Prefect 3 pool type reconcile maps it to); "
                           "infra_overrides are")
        out = dict(fields)
        out["pull_steps"] = None
        if v3pull.storage_kind(storage) in ("remote", "git"):
            # no block document on 3.x: the worker pulls the code with the steps, the deployment has no storage
            assert storage is not None
            secrets = self.storage_secrets.get(storage.key)
            v3fields.no_templates("storage", storage.data or {})
            v3fields.no_templates("path", fields.get("path"))
            out["pull_steps"] = v3pull.pull_steps(storage, fields.get("path"), secrets)
            out["storage"] = None
            if not secrets and any((storage.data or {}).get(key) for key in SECRET_FIELDS.get(storage.slug, ())):
                notices.append(f"storage {storage.key}: its credentials are not used on Prefect 3 (the upload uses "
                               "this process's environment, the worker its own); or name Secret blocks under "
                               "prefect3.storage_secrets in reconcile.yaml")
        v3fields.no_templates("infrastructure", (infrastructure.data if infrastructure is not None else None) or {})
        v3fields.no_templates("infra_overrides", fields.get("infra_overrides") or {})
        out["infra_overrides"] = v3fields.flat(
            v3fields.job_variables(infrastructure if kind else None, fields.get("infra_overrides") or {}, notices))
        out["infrastructure"] = None
        out["manifest_path"] = None
        out["work_pool_name"] = fields.get("work_pool_name") or self.pools[kind or "process"]
        out["work_pool_type"] = kind      # not compared: the type of the pool, should apply create it
        out["work_queue_name"] = fields.get("work_queue_name") or "default"
        out["parameter_openapi_schema"] = v3fields.without_nulls(fields.get("parameter_openapi_schema"))
        out["enforce_parameter_schema"] = bool(fields.get("enforce_parameter_schema"))
        out["schedules"] = sorted((_rrule_as_stored(s) for s in fields.get("schedules") or []), key=schedules.sort_key)
        return out

    def live_fields(self, dep: dict[str, Any], block_key) -> dict[str, Any]:
        return {
            "description": dep.get("description"),
            "version": dep.get("version"),
            "work_queue_name": dep.get("work_queue_name"),
            "work_pool_name": dep.get("work_pool_name"),
            "tags": sorted(set(dep.get("tags") or [])),
            "parameters": dep.get("parameters") or {},
            "schedules": sorted(
                ({"schedule": self.live_schedule(s["schedule"]), "active": bool(s.get("active", True))}
                 for s in dep.get("schedules") or []),
                key=schedules.sort_key),
            "is_schedule_active": not dep.get("paused", False),
            "infra_overrides": v3fields.flat(dep.get("job_variables") or {}),
            "infrastructure": None,
            "storage": block_key(dep.get("storage_document_id")),
            "pull_steps": dep.get("pull_steps") or None,
            "path": dep.get("path"),
            "entrypoint": dep.get("entrypoint"),
            "manifest_path": None,
            "parameter_openapi_schema": v3fields.without_nulls(dep.get("parameter_openapi_schema")),
            "enforce_parameter_schema": bool(dep.get("enforce_parameter_schema")),
        }

    @staticmethod
    def schedule_bodies(wanted: list[dict[str, Any]], chosen: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """As 2.x, each with a slug derived from the manifest (v3fields.schedule_slugs over all of `wanted`)."""
        slugs = {id(entry): slug for entry, slug in zip(wanted, v3fields.schedule_slugs(wanted))}
        return [{"schedule": s["schedule"], "active": s["active"], **({"slug": slugs[id(s)]} if id(s) in slugs else {})}
                for s in chosen]

    @staticmethod
    def live_schedule(schedule: dict[str, Any]) -> dict[str, Any]:
        """As 2.x, less what 3.x adds to an rrule without a start."""
        return _rrule_as_stored({"schedule": schedules.from_live(schedule)})["schedule"]

    def create_body(self, name: str, flow_id: str, fields: dict[str, Any],
                    infrastructure_id: Optional[str], storage_id: Optional[str]) -> dict[str, Any]:
        body: dict[str, Any] = {key: fields[key] for key in PATCH_SAME_NAME}
        body.update(
            name=name, flow_id=flow_id,
            tags=list(fields.get("tags") or []),
            parameters=fields.get("parameters") or {},
            schedules=self.schedule_bodies(fields["schedules"], fields["schedules"]),
            paused=not fields["is_schedule_active"],
            job_variables=v3fields.nested(fields.get("infra_overrides") or {}),
            storage_document_id=storage_id,
            parameter_openapi_schema=fields.get("parameter_openapi_schema") or {},
        )
        if fields.get("pull_steps"):
            body["pull_steps"] = fields["pull_steps"]
        if fields.get("version") is not None:
            body["version"] = str(fields["version"])
        return body

    def patch_body(self, changed: set[str], fields: dict[str, Any],
                   infrastructure_id: Optional[str], storage_id: Optional[str]) -> dict[str, Any]:
        body: dict[str, Any] = {key: fields[key] for key in PATCH_SAME_NAME if key in changed}
        if "work_queue_name" in changed or "work_pool_name" in changed:
            # both: a queue sent alone is looked for (and made) in 3.x's default agent pool
            body.update(work_queue_name=fields["work_queue_name"], work_pool_name=fields["work_pool_name"])
        if "version" in changed:
            body["version"] = None if fields.get("version") is None else str(fields["version"])
        if "tags" in changed:
            body["tags"] = list(fields.get("tags") or [])
        if "parameters" in changed:
            body["parameters"] = fields.get("parameters") or {}
        if "is_schedule_active" in changed:
            body["paused"] = not fields["is_schedule_active"]
        if "infra_overrides" in changed:
            body["job_variables"] = v3fields.nested(fields.get("infra_overrides") or {})
        if "storage" in changed:
            body["storage_document_id"] = storage_id
        if "pull_steps" in changed:
            body["pull_steps"] = fields.get("pull_steps") or None    # null: the worker reads the storage block
        if "parameter_openapi_schema" in changed:
            body["parameter_openapi_schema"] = fields.get("parameter_openapi_schema") or {}
        return body


def _rrule_as_stored(entry: dict[str, Any]) -> dict[str, Any]:
    schedule = entry.get("schedule") or {}
    if "rrule" in schedule:
        return {**entry, "schedule": {**schedule, "rrule": v3fields.rrule(schedule["rrule"])}}
    return entry


