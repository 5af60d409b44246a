"""Helpers for the integration tests: manifests on disk, the CLI as a real process, the server over HTTP.

Import as ``from integration.helpers import ...`` (``tests/`` is on sys.path, see
tests/conftest.py), so the module name cannot clash with another ``helpers``.

Everything here talks to the real Prefect server the tests were given; nothing is faked.
"""
from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator, Optional

import httpx
import yaml

from fixture_paths import FIXTURES

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
REAL_WORLD = FIXTURES / "real-world"
MARKER = "###\n### DO NOT EDIT BELOW THIS LINE\n###\n"

# ----------------------------------------------------------------------------- manifests


def cron(expr: str = "0 * * * *", *, active: bool = True, timezone: Optional[str] = "UTC") -> dict:
    return {"schedule": {"cron": expr, "timezone": timezone, "day_or": True}, "active": active}


def interval(seconds: float = 3600.0, *, active: bool = True, anchor: str = "2024-01-01T00:00:00+00:00") -> dict:
    return {"schedule": {"interval": seconds, "anchor_date": anchor, "timezone": "UTC"}, "active": active}


def rrule(text: str = "FREQ=WEEKLY;BYDAY=MO;BYHOUR=7", *, active: bool = True, timezone: str = "Europe/Amsterdam") -> dict:
    return {"schedule": {"rrule": text, "timezone": timezone}, "active": active}


def manifest(flow: str, name: str, **overrides: Any) -> dict[str, Any]:
    """A manifest shaped like Prefect 2.20's `deployment build` output, as a dict.

    Keys above the marker first, then the generated part; `overrides` replace keys.
    """
    above: dict[str, Any] = {
        "name": name,
        "description": None,
        "version": "1",
        "work_queue_name": "default",
        "work_pool_name": None,
        "tags": ["it"],
        "parameters": {"n": 1},
        "schedule": None,
        "schedules": [cron()],
        "is_schedule_active": None,
        "infra_overrides": {},
        "infrastructure": {
            "type": "process", "env": {}, "labels": {}, "name": None, "command": None,
            "stream_output": True, "working_dir": None,
            "block_type_slug": "process", "_block_type_slug": "process",
        },
    }
    below: dict[str, Any] = {
        "flow_name": flow,
        "manifest_path": None,
        "storage": None,
        "path": "/opt/flows/it",
        "entrypoint": "flow.py:main",
        "parameter_openapi_schema": {
            "title": "Parameters", "type": "object",
            "properties": {
                "n": {"default": 1, "position": 0, "title": "n", "type": "integer"},
                "label": {"default": "x", "position": 1, "title": "label", "type": "string"},
            },
            "required": None, "definitions": None,
        },
        "timestamp": "2024-01-01T00:00:00+00:00",
        "triggers": [],
        "enforce_parameter_schema": None,
    }
    for key, value in overrides.items():
        if key in below:
            below[key] = value
        else:
            above[key] = value
    return {"above": above, "below": below}


def manifest_text(doc: dict[str, Any]) -> str:
    def dump(part: dict[str, Any]) -> str:
        return yaml.safe_dump(part, sort_keys=False, default_flow_style=False, allow_unicode=True)
    flow = doc["below"]["flow_name"]
    return f"###\n### A complete description of a Prefect Deployment for flow {flow!r}\n###\n" \
           + dump(doc["above"]) + "\n" + MARKER + dump(doc["below"])


def write_manifest(directory: Path, doc: dict[str, Any], filename: Optional[str] = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    name = filename or re.sub(r"[^A-Za-z0-9_.-]+", "_", doc["above"]["name"]) + "-deployment.yaml"
    path = directory / name
    path.write_text(manifest_text(doc), encoding="utf-8")
    return path


def edited(doc: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    for key, value in changes.items():
        part = "below" if key in out["below"] else "above"
        out[part][key] = value
    return out


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based line number of the `occurrence`-th line containing `needle`."""
    seen = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            seen += 1
            if seen == occurrence:
                return number
    raise AssertionError(f"{needle!r} not found {occurrence} time(s) in:\n{text}")


def set_flow_name(text: str, new: str) -> str:
    """Replace the top-level `flow_name:` value of a manifest's text (the rest stays byte-for-byte)."""
    out, count = re.subn(r"(?m)^flow_name:.*$", lambda m: "flow_name: " + json.dumps(new), text)
    assert count == 1, f"expected one top-level flow_name, found {count}"
    return out

# ----------------------------------------------------------------------------- the CLI

REQUEST_LINE = re.compile(r"^(GET|POST|PATCH|PUT|DELETE) (\S+) (\S+) \d+ms$")


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    outcome: str

    @property
    def is_write(self) -> bool:
        if self.method == "POST":
            return not self.path.endswith("/filter")
        return self.method in ("PATCH", "PUT", "DELETE")


@dataclass
class Run:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def requests(self) -> list[Request]:
        """The HTTP requests `-v` logged to stderr, in order."""
        out = []
        for line in self.stderr.splitlines():
            m = REQUEST_LINE.match(line)
            if m:
                out.append(Request(m.group(1), m.group(2), m.group(3)))
        return out

    @property
    def writes(self) -> list[Request]:
        return [r for r in self.requests if r.is_write]

    @property
    def messages(self) -> list[str]:
        """stderr without the `-v` request log and without blank lines."""
        return [line for line in self.stderr.splitlines() if line.strip() and not REQUEST_LINE.match(line)]

    def json(self) -> Any:
        return json.loads(self.stdout)

    def __str__(self) -> str:
        return f"$ reconcile {' '.join(self.args)}\nexit {self.returncode}\n--- stdout\n{self.stdout}--- stderr\n{self.stderr}"


def cli_env(api_url: Optional[str], **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    if api_url is not None:
        env["PREFECT_API_URL"] = api_url
    env["NO_COLOR"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def reconcile(api_url: Optional[str], *args: Any, cwd: Optional[Path] = None, timeout: float = 240,
              env: Optional[dict[str, str]] = None) -> Run:
    """Run `python -m reconciler ARGS` as a real process with PREFECT_API_URL=api_url."""
    argv = [str(a) for a in args]
    proc = subprocess.run([sys.executable, "-m", "reconciler", *argv], cwd=str(cwd) if cwd else None,
                          env=env or cli_env(api_url), capture_output=True, text=True, timeout=timeout)
    return Run(argv, proc.returncode, proc.stdout, proc.stderr)


def start_reconcile(api_url: str, *args: Any, cwd: Optional[Path] = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "reconciler", *[str(a) for a in args]],
                            cwd=str(cwd) if cwd else None, env=cli_env(api_url),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

# ----------------------------------------------------------------------------- the server


class Server:
    """A thin reader/writer of the real Prefect REST API, for setting up and checking tests."""

    def __init__(self, api_url: str) -> None:
        self.api_url = api_url.rstrip("/")
        self.http = httpx.Client(base_url=self.api_url + "/", timeout=30)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, body: Any = None) -> httpx.Response:
        for attempt in range(8):  # a busy SQLite server answers 503 "database is locked": retry like a client would
            response = self.http.request(method, path.lstrip("/"), json=body)
            if response.status_code not in (429, 502, 503, 504):
                break
            time.sleep(0.2 * 2 ** attempt)
        return response

    def call(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200, 201, 204)) -> Any:
        response = self.request(method, path, body)
        assert response.status_code in ok, f"{method} {path} → {response.status_code}: {response.text[:500]}"
        return response.json() if response.content else None

    # deployments and flows
    def flow(self, name: str) -> Optional[dict]:
        found = self.call("POST", "flows/filter", {"flows": {"name": {"any_": [name]}}})
        return found[0] if found else None

    def deployments(self, flow: str) -> dict[str, dict]:
        """name → deployment JSON, for every deployment of this flow."""
        found = self.call("POST", "deployments/filter", {"flows": {"name": {"any_": [flow]}}, "limit": 200})
        return {d["name"]: d for d in found}

    def deployment(self, flow: str, name: str) -> Optional[dict]:
        return self.deployments(flow).get(name)

    def ensure_flow(self, name: str) -> str:
        return self.call("POST", "flows/", {"name": name})["id"]

    def create_deployment(self, flow: str, name: str, **fields: Any) -> dict:
        """A deployment made by hand, straight through the REST API (not by reconcile)."""
        body = {"name": name, "flow_id": self.ensure_flow(flow), **fields}
        return self.call("POST", "deployments/", body)

    def patch_deployment(self, deployment_id: str, body: dict) -> None:
        self.call("PATCH", f"deployments/{deployment_id}", body)

    # block types, schemas, documents
    def block_type(self, slug: str) -> Optional[dict]:
        response = self.request("GET", f"block_types/slug/{slug}")
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        return response.json()

    def latest_schema(self, block_type_id: str) -> dict:
        schemas = self.call("POST", "block_schemas/filter",
                            {"block_schemas": {"block_type_id": {"any_": [block_type_id]}}, "limit": 50})
        assert schemas, f"block type {block_type_id} has no schema"
        return max(schemas, key=lambda s: s.get("created", ""))

    def ensure_block_type(self, slug: str) -> dict:
        """The block type with this slug, registered (with a minimal schema) if the server lacks it."""
        found = self.block_type(slug)
        if found is None:
            self.call("POST", "block_types/", {"name": f"Test {slug}", "slug": slug}, ok=(201, 409))
            found = self.block_type(slug)
            assert found is not None
        schemas = self.call("POST", "block_schemas/filter",
                            {"block_schemas": {"block_type_id": {"any_": [found["id"]]}}, "limit": 50})
        if not schemas:
            self.call("POST", "block_schemas/", {
                "block_type_id": found["id"], "capabilities": [],
                "fields": {"title": found["name"], "type": "object", "properties": {},
                           "block_type_slug": slug, "secret_fields": [], "block_schema_references": {}},
            }, ok=(201, 409))
        return found

    def block_document(self, slug: str, name: str) -> Optional[dict]:
        response = self.request("GET", f"block_types/slug/{slug}/block_documents/name/{name}")
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        return response.json()

    def ensure_block_document(self, slug: str, name: str, data: dict) -> dict:
        """A named block document (created if missing; an existing one is left as it is)."""
        found = self.block_document(slug, name)
        if found is not None:
            return found
        block_type = self.ensure_block_type(slug)
        schema = self.latest_schema(block_type["id"])
        self.call("POST", "block_documents/", {
            "name": name, "data": data, "block_type_id": block_type["id"],
            "block_schema_id": schema["id"], "is_anonymous": False}, ok=(201, 409))
        found = self.block_document(slug, name)
        assert found is not None
        return found

    def create_json_document(self, name: str, value: Any) -> dict:
        block_type = self.ensure_block_type("json")
        schema = self.latest_schema(block_type["id"])
        return self.call("POST", "block_documents/", {
            "name": name, "data": {"value": value}, "block_type_id": block_type["id"],
            "block_schema_id": schema["id"], "is_anonymous": False})

    def reconcile_documents(self) -> list[dict]:
        """Every `reconcile-*` json document on the server (paged: a shared server collects many)."""
        out: list[dict] = []
        while True:
            page = self.call("POST", "block_documents/filter", {
                "block_documents": {"name": {"like_": "reconcile-%"}},
                "block_types": {"slug": {"any_": ["json"]}}, "limit": 200, "offset": len(out)})
            out += page
            if len(page) < 200:
                return out

    def inventory(self, source: str) -> Optional[set[str]]:
        """The identities the server's inventory for `source` lists (None: no inventory)."""
        for doc in self.reconcile_documents():
            value = (doc.get("data") or {}).get("value") or {}
            if doc["name"].startswith("reconcile-inventory-") and value.get("source") == source:
                return set(value.get("deployments") or [])
        return None

    def locks(self, source: str) -> list[dict]:
        return [d for d in self.reconcile_documents()
                if d["name"].startswith("reconcile-lock-") and ((d.get("data") or {}).get("value") or {}).get("source") == source]

    def ensure_work_pool(self, name: str, pool_type: str = "prefect-agent") -> None:
        response = self.request("GET", f"work_pools/{name}")
        if response.status_code == 200:
            return
        self.call("POST", "work_pools/", {"name": name, "type": pool_type}, ok=(201, 409))


def schedule_key(schedule: dict) -> str:
    """`cron 0 * * * *`, `interval 3600.0`, `rrule ...` (without the start Prefect 3 adds to an rrule)."""
    kind = next(k for k in ("cron", "interval", "rrule") if k in schedule)
    value = schedule[kind]
    if kind == "rrule" and value.startswith("DTSTART:20200101T000000\n"):
        value = value.split("\n", 1)[1]
    return f"{kind} {value}"


def schedule_ids(dep: dict) -> dict[str, str]:
    """A readable key per schedule (schedule_key) → its id."""
    return {schedule_key(item["schedule"]): item["id"] for item in dep.get("schedules") or []}


def schedule_active(dep: dict) -> dict[str, bool]:
    return {schedule_key(item["schedule"]): bool(item.get("active")) for item in dep.get("schedules") or []}

# ----------------------------------------------------------------------------- a recording proxy


@dataclass
class Recorded:
    method: str
    path: str
    status: int
    body: Any = None

    @property
    def is_write(self) -> bool:
        if self.method == "POST":
            return not self.path.endswith("/filter")
        return self.method in ("PATCH", "PUT", "DELETE")


@dataclass
class RecordingProxy:
    """An HTTP proxy in front of the real server that remembers every request and its JSON body.

    The CLI is pointed at `proxy.api_url`; the requests still reach the real server.
    """

    upstream: str
    requests: list[Recorded] = field(default_factory=list)
    api_url: str = ""
    hold_writes: Optional[threading.Event] = None   # when given, writes wait until it is set
    holding: threading.Event = field(default_factory=threading.Event)   # set while a write is held

    def __enter__(self) -> "RecordingProxy":
        upstream = httpx.URL(self.upstream)
        origin = f"{upstream.scheme}://{upstream.host}:{upstream.port}"
        client = httpx.Client(base_url=origin, timeout=60)
        records = self.requests
        lock = threading.Lock()
        gate, holding = self.hold_writes, self.holding

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "content-length", "connection", "accept-encoding")}
                if gate is not None and self.command in ("PATCH", "PUT", "DELETE"):
                    holding.set()
                    gate.wait(60)
                response = client.request(self.command, self.path, content=raw, headers=headers)
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw
                with lock:
                    records.append(Recorded(self.command, self.path.split("?")[0], response.status_code, body))
                payload = response.content
                self.send_response(response.status_code)
                for key, value in response.headers.items():
                    if key.lower() in ("content-type", "retry-after"):
                        self.send_header(key, value)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _forward

            def log_message(self, *args: object) -> None:
                pass

        self._client = client
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.api_url = f"http://127.0.0.1:{self._server.server_address[1]}{upstream.path}".rstrip("/")
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._client.close()

    def clear(self) -> None:
        self.requests.clear()

    @property
    def writes(self) -> list[Recorded]:
        """Writes the server took: a 429/502/503/504 answer (a busy SQLite server) is retried, so not counted."""
        return [r for r in self.requests if r.is_write and r.status not in (429, 502, 503, 504)]

    def deployment_writes(self) -> list[Recorded]:
        """Writes to deployments, their schedules and flows (not the reconciler's own documents)."""
        return [r for r in self.writes if "/deployments" in r.path or "/flows" in r.path]


def iter_fixture_blocks(text: str) -> Iterator[tuple[str, Optional[str], dict]]:
    """(slug, document name or None, data) of the infrastructure and storage blocks in a manifest's text."""
    data = yaml.safe_load(text) or {}
    for key in ("infrastructure", "storage"):
        block = data.get(key)
        if not isinstance(block, dict):
            continue
        slug = block.get("_block_type_slug") or block.get("block_type_slug") or block.get("type")
        named = block.get("_block_document_name") and not block.get("_is_anonymous")
        content = {k: v for k, v in block.items() if not k.startswith("_") and k != "block_type_slug"}
        yield slug, (block["_block_document_name"] if named else None), content


def ensure_fixture_objects(server: "Server", text: str) -> dict:
    """Register the block types, named blocks and work pool a manifest's text names on the server; its data."""
    data = yaml.safe_load(text) or {}
    for slug, name, content in iter_fixture_blocks(text):
        server.ensure_block_type(slug)
        if name is not None:
            server.ensure_block_document(slug, name, content)
    if data.get("work_pool_name"):
        server.ensure_work_pool(data["work_pool_name"])
    return data
