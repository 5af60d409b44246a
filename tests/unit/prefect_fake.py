"""An in-memory Prefect 2.20 API for unit tests, plugged in at the transport seam.

`FakePrefect.handler` is an `httpx.MockTransport` handler: reconcile's real
`PrefectClient` (with its retry transport) talks to it exactly as it would to a
server.  Every answer is built from the JSON captured from a real Prefect
2.20.27 server (`prefect_2_20_shapes/`, see its README), so keys, nesting and
server-filled values (ids, timestamps, an interval's `anchor_date`, `timezone`,
`default-agent-pool`, `status`, ...) look the way reconcile sees them in
production.  Every request is recorded in `requests`; `writes` lists the
requests that change something.

Ids and timestamps are deterministic (a counter and a fixed clock), so rendered
plans can be compared against golden files.

Also here: the manifest template (a verbatim `prefect deployment build`
output) and `make_plan`, which runs the same stages `reconcile plan` runs
(`desired.resolve` → `live.read` → `diff.diff`) against a fake.
"""
from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import fnmatch
import itertools
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ContextManager, Iterable, Optional

import httpx
import yaml

from reconciler.engine import desired as desired_mod
from reconciler.engine import diff as diff_mod
from reconciler.engine import claims as claims_mod
from reconciler.engine import inventory as inventory_mod
from reconciler.engine import live as live_mod
from reconciler.manifests import manifest as manifest_mod
from reconciler.engine.applier import Applier
from reconciler.prefect.api import PrefectClient
from reconciler.prefect.v2 import adapter_for
from reconciler.manifests.configmodel import Config
from reconciler.engine.desired import Desired
from reconciler.engine.plans import Plan
from reconciler.engine.report import Report

API_URL = "http://prefect.test/api"
SOURCE = "github.com/acme/flows//deployments"
SHAPES = Path(__file__).resolve().parent / "prefect_2_20_shapes"
EPOCH = dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=dt.timezone.utc)
MAX_LIMIT = 200  # PREFECT_API_DEFAULT_LIMIT: the largest page the filter endpoints accept


def shape(name: str) -> Any:
    """A fresh copy of one captured answer."""
    return json.loads((SHAPES / f"{name}.json").read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Call:
    method: str
    path: str            # relative to the API root, e.g. "/deployments/filter"
    body: Any            # the decoded JSON body, or None


@dataclass
class Fault:
    method: str
    pattern: str         # a regular expression matched against the whole path
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    times: Optional[int] = 1   # None: for ever
    error: Optional[Exception] = None  # raise this transport error instead of answering


class FakePrefect:
    def __init__(self, version: str = "2.20.27") -> None:
        self.version = version
        self._ids = itertools.count(1)
        self._ticks = itertools.count(0)
        self._lock = threading.RLock()
        self.requests: list[Call] = []
        self.faults: list[Fault] = []
        self.flows: dict[str, dict[str, Any]] = {}
        self.work_pools: dict[str, dict[str, Any]] = {"default-agent-pool": {"name": "default-agent-pool", "type": "prefect-agent"}}
        self.deployments: dict[str, dict[str, Any]] = {}
        self.scheduled: list[str] = []   # deployment ids, one per POST /deployments/{id}/schedule
        self.block_types: dict[str, dict[str, Any]] = {}    # slug → block type
        self.block_schemas: dict[str, dict[str, Any]] = {}  # block type id → schema
        self.block_documents: dict[str, dict[str, Any]] = {}
        for slug in ("json", "process", "local-file-system"):
            block_type = shape(f"block_type_{slug}")
            self.block_types[slug] = block_type
            self.block_schemas[block_type["id"]] = shape(f"block_schemas_{slug}")[0]

    # -- plumbing -------------------------------------------------------------
    def new_id(self) -> str:
        return str(uuid.UUID(f"00000000-0000-4000-8000-{next(self._ids):012x}"))

    def now(self) -> str:
        return (EPOCH + dt.timedelta(seconds=next(self._ticks))).isoformat()

    def paused(self) -> ContextManager[Any]:
        """`with fake.paused():` other threads' requests wait until the block ends, so the changes the
        test makes inside it (its own requests included) reach them all at once."""
        return self._lock

    def client(self, **kwargs: Any) -> PrefectClient:
        return PrefectClient(API_URL, transport=httpx.MockTransport(self.handler), **kwargs)

    @property
    def writes(self) -> list[Call]:
        return [c for c in self.requests
                if c.method in ("PATCH", "PUT", "DELETE") or (c.method == "POST" and not c.path.endswith("/filter"))]

    def calls(self, method: str, pattern: str) -> list[Call]:
        return [c for c in self.requests if c.method == method and re.fullmatch(pattern, c.path)]

    def fail(self, method: str, pattern: str, status: int, body: Any = None, *, times: Optional[int] = 1,
             headers: Optional[dict[str, str]] = None, error: Optional[Exception] = None) -> None:
        """Answer matching requests with this status (or raise `error`), `times` times."""
        self.faults.append(Fault(method, pattern, status, body, headers or {}, times, error))

    # -- seeding the server ---------------------------------------------------
    def add_flow(self, name: str) -> str:
        with self._lock:
            for flow in self.flows.values():
                if flow["name"] == name:
                    return flow["id"]
            flow = shape("flow")
            stamp = self.now()
            flow.update(id=self.new_id(), created=stamp, updated=stamp, name=name, tags=[])
            self.flows[flow["id"]] = flow
            return flow["id"]

    def add_block_document(self, slug: str, name: Optional[str] = None, data: Optional[dict[str, Any]] = None,
                           *, anonymous: Optional[bool] = None) -> dict[str, Any]:
        anonymous = name is None if anonymous is None else anonymous
        block_type = self.block_types[slug]
        schema = self.block_schemas[block_type["id"]]
        return self._create_block_document({
            "name": name, "data": data or {}, "is_anonymous": anonymous,
            "block_type_id": block_type["id"], "block_schema_id": schema["id"]})[1]

    def set_inventory(self, source: str, identities: Iterable[str]) -> dict[str, Any]:
        """A source's inventory: the deployments it owns."""
        identities = sorted(identities)
        return self.add_block_document(
            "json", inventory_mod.doc_name(source), {"value": {"source": source, "deployments": identities}})

    def set_claim(self, identity: str, source: str) -> dict[str, Any]:
        """A claim document as earlier versions wrote them (one per deployment)."""
        return self.add_block_document("json", claims_mod.claim_name(identity),
                                       {"value": {"deployment": identity, "source": source}})

    def inventory(self, source: str) -> Optional[list[str]]:
        name = inventory_mod.doc_name(source)
        for doc in self.block_documents.values():
            if doc["name"] == name:
                return doc["data"]["value"]["deployments"]
        return None

    def deploy(self, flow_name: str, name: str, **body: Any) -> dict[str, Any]:
        """Create (or replace) a deployment as `POST /deployments/` would; returns the stored JSON."""
        full = {"name": name, "flow_id": self.add_flow(flow_name), **body}
        return self._upsert_deployment(full)[1]

    def deploy_manifest(self, doc: dict[str, Any], **body: Any) -> dict[str, Any]:
        """What Prefect 2's own `prefect deployment apply` leaves on the server for this manifest.

        Like Prefect's `Deployment.apply`: a named block is used by id, an inline
        (anonymous) infrastructure block is saved as a new anonymous document, the
        old `schedule` becomes the one entry of `schedules`.  `body` overrides keys.
        """
        infra = doc.get("infrastructure") or {"type": "process", "stream_output": True}
        infra_id = self._block_for(infra, "process")
        storage = doc.get("storage")
        storage_id = self._block_for(storage, None) if storage else None
        if doc.get("schedule"):
            active = doc.get("is_schedule_active")
            schedules = [{"schedule": doc["schedule"], "active": True if active is None else active}]
        else:
            schedules = [{"schedule": s["schedule"], "active": s.get("active", True)} for s in doc.get("schedules") or []]
        sent = {
            "work_queue_name": doc.get("work_queue_name"), "work_pool_name": doc.get("work_pool_name"),
            "version": doc.get("version"), "schedules": schedules,
            "paused": doc.get("is_schedule_active") is False,
            "parameters": doc.get("parameters") or {}, "description": doc.get("description"),
            "tags": doc.get("tags") or [], "manifest_path": doc.get("manifest_path"), "path": doc.get("path"),
            "entrypoint": doc.get("entrypoint"), "infra_overrides": doc.get("infra_overrides") or {},
            "storage_document_id": storage_id, "infrastructure_document_id": infra_id,
            "parameter_openapi_schema": doc.get("parameter_openapi_schema"),
            "enforce_parameter_schema": doc.get("enforce_parameter_schema"),
        }
        sent.update(body)
        return self.deploy(doc["flow_name"], doc["name"], **sent)

    def _block_for(self, spec: dict[str, Any], default_slug: Optional[str]) -> str:
        slug = spec.get("_block_type_slug") or spec.get("block_type_slug") or default_slug
        name = spec.get("_block_document_name")
        if name and not spec.get("_is_anonymous"):
            for doc in self.block_documents.values():
                if doc["name"] == name and doc["block_type"]["slug"] == slug:
                    return doc["id"]
            raise KeyError(f"no block {slug}/{name} on the fake server")
        data = {k: v for k, v in spec.items() if not k.startswith("_") and k != "block_type_slug"}
        return self.add_block_document(slug, None, data)["id"]

    def deployment(self, flow_name: str, name: str) -> Optional[dict[str, Any]]:
        flow_ids = {i for i, f in self.flows.items() if f["name"] == flow_name}
        for dep in self.deployments.values():
            if dep["name"] == name and dep["flow_id"] in flow_ids:
                return dep
        return None

    # -- the HTTP side ------------------------------------------------------------
    def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        assert path.startswith("/api/"), path
        path = path[len("/api"):]
        body = json.loads(request.content) if request.content else None
        with self._lock:
            self.requests.append(Call(request.method, path, copy.deepcopy(body)))
            for fault in self.faults:
                if fault.method == request.method and re.fullmatch(fault.pattern, path) and fault.times != 0:
                    if fault.times is not None:
                        fault.times -= 1
                    if fault.error is not None:
                        raise fault.error
                    return httpx.Response(fault.status, json=fault.body, headers=fault.headers)
            for method, pattern, name in ROUTES:
                match = re.fullmatch(pattern, path)
                if method == request.method and match:
                    status, answer = getattr(self, name)(body, *match.groups())
                    if status == 204:
                        return httpx.Response(204)
                    return httpx.Response(status, json=answer)
        return httpx.Response(404, json={"detail": "Not Found"})

    # GET /admin/version
    def _version(self, body: Any) -> tuple[int, Any]:
        return 200, self.version

    # POST /flows/
    def _create_flow(self, body: Any) -> tuple[int, Any]:
        existing = [f for f in self.flows.values() if f["name"] == body["name"]]
        if existing:
            return 200, existing[0]
        return 201, self.flows[self.add_flow(body["name"])]

    # POST /flows/filter
    def _filter_flows(self, body: Any) -> tuple[int, Any]:
        crit = (body or {}).get("flows") or {}
        found = [f for f in self.flows.values() if _matches(f, crit)]
        return _page(sorted(found, key=lambda f: (f["name"], f["id"])), body)

    # POST /work_pools/filter
    def _filter_work_pools(self, body: Any) -> tuple[int, Any]:
        crit = (body or {}).get("work_pools") or {}
        found = [p for p in self.work_pools.values() if _matches(p, crit)]
        return _page(sorted(found, key=lambda p: p["name"]), body)

    # POST /deployments/filter
    def _filter_deployments(self, body: Any) -> tuple[int, Any]:
        crit = (body or {}).get("deployments") or {}
        flow_crit = (body or {}).get("flows") or {}   # a deployment matches when its flow does
        found = [d for d in self.deployments.values()
                 if _matches(d, crit) and (not flow_crit or _matches(self.flows.get(d["flow_id"], {}), flow_crit))]
        return _page(sorted(found, key=lambda d: (d["name"], d["id"])), body)

    # POST /deployments/
    def _create_deployment(self, body: Any) -> tuple[int, Any]:
        if body.get("flow_id") not in self.flows:
            return 404, {"detail": "Flow not found"}
        return self._upsert_deployment(body)

    def _upsert_deployment(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            existing = next((d for d in self.deployments.values()
                             if d["flow_id"] == body["flow_id"] and d["name"] == body["name"]), None)
            dep = shape("deployment")
            stamp = self.now()
            dep_id = existing["id"] if existing else self.new_id()
            paused = bool(body.get("paused")) or body.get("is_schedule_active") is False
            dep.update(
                id=dep_id, created=existing["created"] if existing else stamp, updated=stamp,
                name=body["name"], flow_id=body["flow_id"], version=body.get("version"),
                description=body.get("description"), tags=list(body.get("tags") or []),
                parameters=copy.deepcopy(body.get("parameters") or {}),
                work_queue_name=body.get("work_queue_name") or "default",
                work_pool_name=body.get("work_pool_name") or "default-agent-pool",
                infra_overrides=copy.deepcopy(body.get("infra_overrides") or body.get("job_variables") or {}),
                path=body.get("path"), entrypoint=body.get("entrypoint"), manifest_path=body.get("manifest_path"),
                storage_document_id=body.get("storage_document_id"),
                infrastructure_document_id=body.get("infrastructure_document_id"),
                parameter_openapi_schema=copy.deepcopy(body.get("parameter_openapi_schema")),
                enforce_parameter_schema=bool(body.get("enforce_parameter_schema")),
                paused=paused, is_schedule_active=not paused, last_polled=None, status="NOT_READY",
                pull_steps=None, created_by=None, updated_by=None,
                schedules=[self._server_schedule(dep_id, s) for s in body.get("schedules") or []],
            )
            _sync_legacy_schedule(dep)
            self.deployments[dep_id] = dep
            return (200 if existing else 201), dep

    def _server_schedule(self, dep_id: str, entry: dict[str, Any]) -> dict[str, Any]:
        template = shape("deployment")["schedules"][0]
        stamp = self.now()
        template.update(id=self.new_id(), created=stamp, updated=stamp, deployment_id=dep_id,
                        schedule=self._server_schedule_value(entry["schedule"], stamp),
                        active=entry.get("active", True) is not False,
                        max_active_runs=None, max_scheduled_runs=None, catchup=False)
        return template

    @staticmethod
    def _server_schedule_value(sched: dict[str, Any], stamp: str) -> dict[str, Any]:
        if "interval" in sched:
            return {"interval": float(sched["interval"]), "anchor_date": sched.get("anchor_date") or stamp,
                    "timezone": sched.get("timezone") or "UTC"}
        if "cron" in sched:
            day_or = sched.get("day_or")
            return {"cron": sched["cron"], "timezone": sched.get("timezone"),  # kept null, as 2.20 does
                    "day_or": True if day_or is None else day_or}
        return {"rrule": sched["rrule"], "timezone": sched.get("timezone") or "UTC"}

    # GET /deployments/{id}
    def _read_deployment(self, body: Any, dep_id: str) -> tuple[int, Any]:
        dep = self.deployments.get(dep_id)
        return (200, dep) if dep is not None else (404, {"detail": "Deployment not found"})

    # PATCH /deployments/{id}
    def _patch_deployment(self, body: Any, dep_id: str) -> tuple[int, Any]:
        dep = self.deployments.get(dep_id)
        if dep is None:
            return 404, {"detail": "Deployment not found"}
        body = dict(body)
        if "schedule" in body or "is_schedule_active" in body:
            # Prefect 2.20 rewrites `schedules` from the legacy fields (and refuses with several)
            if len(dep["schedules"]) > 1:
                return 422, {"detail": [f"Error updating deployment: Deployment UUID('{dep_id}') has multiple "
                                        "schedules. Please use the UI or update your client to adjust this "
                                        "deployment's schedules."]}
            legacy = body.pop("schedule", dep["schedule"])
            active = body.pop("is_schedule_active", dep["is_schedule_active"])
            body["schedules"] = [{"schedule": legacy, "active": active}] if legacy is not None else []
            body.setdefault("paused", not active)
        if "schedules" in body:
            dep["schedules"] = [self._server_schedule(dep_id, s) for s in body.pop("schedules") or []]
        if "paused" in body:
            dep["paused"] = bool(body.pop("paused"))
            dep["is_schedule_active"] = not dep["paused"]
        if "job_variables" in body:
            body["infra_overrides"] = body.pop("job_variables")
        for key, value in body.items():
            if key not in dep:
                return 422, {"exception_message": "Invalid request received.",
                             "exception_detail": [{"loc": ["body", key], "msg": "extra fields not permitted",
                                                   "type": "value_error.extra"}], "request_body": body}
            dep[key] = copy.deepcopy(value)
        dep["updated"] = self.now()
        _sync_legacy_schedule(dep)
        return 204, None

    # DELETE /deployments/{id}
    def _delete_deployment(self, body: Any, dep_id: str) -> tuple[int, Any]:
        if self.deployments.pop(dep_id, None) is None:
            return 404, {"detail": "Deployment not found"}
        return 204, None

    # POST /deployments/{id}/schedules
    def _create_schedules(self, body: Any, dep_id: str) -> tuple[int, Any]:
        dep = self.deployments.get(dep_id)
        if dep is None:
            return 404, {"detail": "Deployment not found"}
        created = [self._server_schedule(dep_id, s) for s in body]
        dep["schedules"].extend(created)
        dep["updated"] = self.now()
        _sync_legacy_schedule(dep)
        return 201, created

    # POST /deployments/{id}/schedule: 2.20 makes the auto-scheduled runs its scheduler would
    def _schedule_runs(self, body: Any, dep_id: str) -> tuple[int, Any]:
        if dep_id not in self.deployments:
            return 200, None   # 2.20 answers 200 and schedules nothing for an unknown id
        self.scheduled.append(dep_id)
        return 200, None

    # PATCH /deployments/{id}/schedules/{schedule_id}
    def _patch_schedule(self, body: Any, dep_id: str, schedule_id: str) -> tuple[int, Any]:
        dep = self.deployments.get(dep_id)
        found = [s for s in (dep or {}).get("schedules", []) if s["id"] == schedule_id]
        if not found:
            return 404, {"detail": "Schedule not found"}
        for key, value in body.items():
            if value is not None:
                found[0][key] = value
        found[0]["updated"] = self.now()
        return 204, None

    # DELETE /deployments/{id}/schedules/{schedule_id}
    def _delete_schedule(self, body: Any, dep_id: str, schedule_id: str) -> tuple[int, Any]:
        dep = self.deployments.get(dep_id)
        before = len((dep or {}).get("schedules", []))
        if dep is None or before == 0:
            return 404, {"detail": "Schedule not found"}
        dep["schedules"] = [s for s in dep["schedules"] if s["id"] != schedule_id]
        if len(dep["schedules"]) == before:
            return 404, {"detail": "Schedule not found"}
        _sync_legacy_schedule(dep)
        return 204, None

    # GET /block_types/slug/{slug}
    def _block_type(self, body: Any, slug: str) -> tuple[int, Any]:
        if slug not in self.block_types:
            return 404, {"detail": "Block type not found"}
        return 200, self.block_types[slug]

    # POST /block_types/filter
    def _filter_block_types(self, body: Any) -> tuple[int, Any]:
        body = body or {}
        crit = dict(body.get("block_types") or {})
        return _page(sorted((t for t in self.block_types.values() if _matches(t, crit)), key=lambda t: t["name"]), body)

    # POST /block_schemas/filter
    def _filter_block_schemas(self, body: Any) -> tuple[int, Any]:
        ids = (((body or {}).get("block_schemas") or {}).get("block_type_id") or {}).get("any_") or []
        return 200, [self.block_schemas[i] for i in ids if i in self.block_schemas]

    # POST /block_documents/
    def _create_block_document(self, body: Any) -> tuple[int, Any]:
        with self._lock:
            type_id = body["block_type_id"]
            block_type = next(t for t in self.block_types.values() if t["id"] == type_id)
            anonymous = bool(body.get("is_anonymous"))
            if not anonymous:
                if not body.get("name"):
                    return 422, {"detail": "Names must be provided for block documents."}
                if any(d["name"] == body["name"] and d["block_type_id"] == type_id for d in self.block_documents.values()):
                    return 409, {"detail": "Block already exists"}
            doc = shape("block_document_json" if block_type["slug"] == "json" else "block_document_named")
            stamp = self.now()
            doc_id = self.new_id()
            doc.update(id=doc_id, created=stamp, updated=stamp,
                       name=f"anonymous-{self.new_id()}" if anonymous else body["name"],
                       data=copy.deepcopy(body.get("data") or {}), block_schema_id=body["block_schema_id"],
                       block_schema=self.block_schemas[type_id], block_type_id=type_id,
                       block_type_name=block_type["name"], block_type=block_type,
                       block_document_references={}, is_anonymous=anonymous)
            self.block_documents[doc_id] = doc
            return 201, doc

    # PATCH /block_documents/{id}
    def _patch_block_document(self, body: Any, doc_id: str) -> tuple[int, Any]:
        doc = self.block_documents.get(doc_id)
        if doc is None:
            return 404, {"detail": "Block document not found"}
        if body.get("merge_existing_data", True):
            doc["data"] = {**doc["data"], **copy.deepcopy(body.get("data") or {})}
        else:
            doc["data"] = copy.deepcopy(body.get("data") or {})
        doc["updated"] = self.now()
        return 204, None

    # DELETE /block_documents/{id}
    def _delete_block_document(self, body: Any, doc_id: str) -> tuple[int, Any]:
        if self.block_documents.pop(doc_id, None) is None:
            return 404, {"detail": "Block document not found"}
        return 204, None

    # GET /block_types/slug/{slug}/block_documents/name/{name}
    def _block_document_by_name(self, body: Any, slug: str, name: str) -> tuple[int, Any]:
        for doc in self.block_documents.values():
            if doc["block_type"]["slug"] == slug and doc["name"] == name:
                return 200, doc
        return 404, {"detail": "Block document not found"}

    # POST /block_documents/filter
    def _filter_block_documents(self, body: Any) -> tuple[int, Any]:
        body = body or {}
        crit = dict(body.get("block_documents") or {})
        if "is_anonymous" not in crit:
            crit["is_anonymous"] = {"eq_": False}   # Prefect's default: anonymous documents excluded
        slugs = (((body.get("block_types") or {}).get("slug")) or {}).get("any_")
        found = [d for d in self.block_documents.values()
                 if _matches(d, crit) and (slugs is None or d["block_type"]["slug"] in slugs)]
        return _page(sorted(found, key=lambda d: (d["name"], d["id"])), body)


ROUTES: list[tuple[str, str, str]] = [
    ("GET", r"/admin/version", "_version"),
    ("POST", r"/flows/", "_create_flow"),
    ("POST", r"/flows/filter", "_filter_flows"),
    ("POST", r"/deployments/filter", "_filter_deployments"),
    ("POST", r"/work_pools/filter", "_filter_work_pools"),
    ("POST", r"/deployments/", "_create_deployment"),
    ("GET", r"/deployments/([0-9a-f-]+)", "_read_deployment"),
    ("PATCH", r"/deployments/([0-9a-f-]+)", "_patch_deployment"),
    ("DELETE", r"/deployments/([0-9a-f-]+)", "_delete_deployment"),
    ("POST", r"/deployments/([0-9a-f-]+)/schedules", "_create_schedules"),
    ("POST", r"/deployments/([0-9a-f-]+)/schedule", "_schedule_runs"),
    ("PATCH", r"/deployments/([0-9a-f-]+)/schedules/([0-9a-f-]+)", "_patch_schedule"),
    ("DELETE", r"/deployments/([0-9a-f-]+)/schedules/([0-9a-f-]+)", "_delete_schedule"),
    ("GET", r"/block_types/slug/([^/]+)", "_block_type"),
    ("POST", r"/block_types/filter", "_filter_block_types"),
    ("POST", r"/block_schemas/filter", "_filter_block_schemas"),
    ("POST", r"/block_documents/", "_create_block_document"),
    ("POST", r"/block_documents/filter", "_filter_block_documents"),
    ("PATCH", r"/block_documents/([0-9a-f-]+)", "_patch_block_document"),
    ("DELETE", r"/block_documents/([0-9a-f-]+)", "_delete_block_document"),
    ("GET", r"/block_types/slug/([^/]+)/block_documents/name/([^/]+)", "_block_document_by_name"),
]


def _sync_legacy_schedule(dep: dict[str, Any]) -> None:
    dep["schedule"] = copy.deepcopy(dep["schedules"][0]["schedule"]) if dep["schedules"] else None


def _matches(item: dict[str, Any], crit: dict[str, Any]) -> bool:
    """Prefect's filter operators that reconcile uses: any_, eq_, like_; combined by `operator`."""
    tests = []
    for key, cond in crit.items():
        if key == "operator" or cond is None:
            continue
        value = item.get(key)
        if "any_" in cond and cond["any_"] is not None:
            tests.append(value in cond["any_"])
        if "eq_" in cond and cond["eq_"] is not None:
            tests.append(value == cond["eq_"])
        if "like_" in cond and cond["like_"] is not None:
            # `name.ilike(f"%{like_}%")`, with SQL's `%` and `_` wildcards
            pattern = "*" + cond["like_"].lower().replace("%", "*").replace("_", "?") + "*"
            tests.append(isinstance(value, str) and fnmatch.fnmatchcase(value.lower(), pattern))
    if not tests:
        return True
    return any(tests) if crit.get("operator") == "or_" else all(tests)


def _page(items: list[dict[str, Any]], body: Any) -> tuple[int, Any]:
    body = body or {}
    limit = body.get("limit", MAX_LIMIT)
    offset = body.get("offset", 0)
    if limit is not None and limit > MAX_LIMIT:
        return 422, {"exception_message": "Invalid request received.",
                     "exception_detail": [{"loc": ["body", "limit"], "msg": f"ensure this value is less than or "
                                           f"equal to {MAX_LIMIT}", "type": "value_error.number.not_le"}]}
    return 200, items[offset: offset + (limit if limit is not None else MAX_LIMIT)]


# -- manifests ------------------------------------------------------------------

# `prefect deployment build catfact.py:catfacts_flow -n plain` (Prefect 2.20.27), verbatim but the name.
PLAIN_MANIFEST = """\
###
### A complete description of a Prefect Deployment for flow 'Cat Facts'
###
name: plain
description: null
version: 6d5cf87f4c65907a748a559f52b7d093
# The work queue that will handle this deployment's runs
work_queue_name: default
work_pool_name: null
tags: []
parameters: {}
schedule: null
schedules: []
is_schedule_active: null
infra_overrides: {}
infrastructure:
  type: process
  env: {}
  labels: {}
  name: null
  command: null
  stream_output: true
  working_dir: null
  block_type_slug: process
  _block_type_slug: process

###
### DO NOT EDIT BELOW THIS LINE
###
flow_name: Cat Facts
manifest_path: null
storage: null
path: /home/flows/catfact
entrypoint: catfact.py:catfacts_flow
parameter_openapi_schema:
  title: Parameters
  type: object
  properties:
    url:
      position: 0
      title: url
      type: string
    n:
      default: 3
      position: 1
      title: n
      type: integer
  required:
  - url
  definitions: null
timestamp: '2026-11-25T15:37:32.333853+00:00'
triggers: []
enforce_parameter_schema: null
"""


def manifest(name: str, flow: str = "Cat Facts", **changes: Any) -> dict[str, Any]:
    """The plain manifest as a dict, renamed, with keys replaced (a value of DROP removes the key)."""
    doc = yaml.safe_load(PLAIN_MANIFEST)
    doc.update(name=name, flow_name=flow)
    doc["parameters"] = {"url": "https://catfact.ninja/facts"}
    for key, value in changes.items():
        if value is DROP:
            doc.pop(key, None)
        else:
            doc[key] = value
    return doc


DROP = object()


def display_of(doc: dict[str, Any]) -> str:
    return f"deployments/{doc['name']}-deployment.yaml"


def desired(*docs: dict[str, Any]) -> list[Desired]:
    loaded = []
    for doc in docs:
        display = display_of(doc)
        raw = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True).encode()
        loaded.append(manifest_mod.parse(raw, Path(display), display))
    return desired_mod.resolve(loaded)


@dataclass
class Planned:
    plan: Plan
    live: live_mod.Live
    client: PrefectClient

    def apply(self) -> Report:
        return Applier(self.client, self.live, adapter_for(self.live.server_version)).run(self.plan)


def make_plan(fake: FakePrefect, docs: Iterable[dict[str, Any]], source: str = SOURCE,
              ignore: Iterable[Any] = (), created: str = "2024-05-01T12:00:00+00:00") -> Planned:
    """`reconcile plan`'s stages against the fake: resolve → live.read → diff."""
    wanted = desired(*docs)
    client = fake.client()
    live = live_mod.read(client, wanted, source, relevant_only=True)   # as the engine's plan reads
    adapter = adapter_for(live.server_version)
    config = Config(ignore_differences=list(ignore))
    plan = diff_mod.diff(wanted, live, source, lambda dep: adapter.live_fields(dep, live.block_key), config.ignored)
    return Planned(dataclasses.replace(plan, created=created), live, client)


def write_manifests(root: Path, docs: Iterable[dict[str, Any]]) -> Path:
    """Write manifests as files under root (as `display_of` names them); returns root."""
    for doc in docs:
        path = root / display_of(doc)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return root


def route_default_transport(monkeypatch: Any, fake: FakePrefect) -> None:
    """Make every PrefectClient built without a transport (the CLI's) talk to `fake`.

    The seam is the same one the unit tests use elsewhere: the httpx transport
    under reconcile's RetryTransport.
    """
    monkeypatch.setattr(httpx, "HTTPTransport", lambda *args, **kwargs: httpx.MockTransport(fake.handler))
