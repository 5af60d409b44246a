"""The Prefect REST API client: HTTP in, plain JSON out, errors translated once."""
from __future__ import annotations

import json
import ssl
from typing import Any, Callable, Iterator, Optional, TextIO, Union

import httpx

from ..errors import AlreadyExists, ApiError, NotFound, ReconcileError, Unreachable
from . import ahead as ahead_mod
from . import connection
from .transport import RetryTransport

PAGE = 200  # the largest page Prefect's filter endpoints return


class PrefectClient:
    def __init__(
        self,
        api_url: str,
        api_key: Optional[str] = None,
        *,
        transport: Optional[httpx.BaseTransport] = None,
        log: Optional[TextIO] = None,
        timeout: float = 30.0,
        verify: Union[ssl.SSLContext, bool, None] = None,   # None: Prefect's TLS settings (prefect.connection)
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.embedded = False  # set by the engine when it started the server itself
        self.writes = 0        # requests that change the server (not counting retries)
        # called with (method, path) before each write, may raise: the engine's lock refuses writes once its lease is lost
        self.before_write: Optional[Callable[[str, str], None]] = None
        self.ahead: Optional[ahead_mod.Ahead] = None   # reads sent ahead of a plan (engine/readahead)
        if transport is None:   # Prefect's TLS settings, as its own client honours them
            if verify is None:  # plain HTTP checks no certificate (redirects are not followed): no CA bundle to load
                verify = False if self.api_url.lower().startswith("http://") else connection.tls_verify()
            transport = httpx.HTTPTransport(verify=verify)
        self.retry = RetryTransport(transport, log=log)
        headers = {"user-agent": "reconcile"}
        self._key = _header_safe(api_key.strip()) if api_key and api_key.strip() else None
        if self._key:
            headers["authorization"] = f"Bearer {self._key}"
        self.http = httpx.Client(base_url=self.api_url + "/", headers=headers,
                                 transport=self.retry, timeout=timeout)

    # -- plumbing ---------------------------------------------------------
    def request(self, method: str, path: str, body: Any = None) -> Any:
        url = f"{self.api_url}/{path.lstrip('/')}"
        if method != "GET" and not (method == "POST" and path.rstrip("/").endswith("/filter")):
            if self.before_write is not None:
                self.before_write(method, path)
            self.writes += 1
        try:
            response = self.http.request(method, path.lstrip("/"), json=body)
        except httpx.TransportError as exc:
            raise Unreachable(self.api_url, self._redact(_reason(exc))) from None
        if response.status_code >= 400:
            detail = self._redact(_detail(response))
            cls = {404: NotFound, 409: AlreadyExists}.get(response.status_code, ApiError)
            raise cls(method, url, response.status_code, detail)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise ApiError(method, url, response.status_code, "the answer is not JSON; is this a Prefect API URL?") from None

    def _redact(self, text: str) -> str:
        """text without the API key (an HTTP library's error may quote the header it refused)."""
        return text.replace(self._key, "***") if self._key else text

    def get(self, path: str) -> Any:
        held = self._held("GET", path, None)
        if isinstance(held, ahead_mod.Answer):
            try:
                return held.result()
            except ahead_mod.Withdrawn:
                pass
        return self.request("GET", path)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, body if body is not None else {})

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def paged(self, path: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        held = self._held("PAGED", path, body)
        if isinstance(held, ahead_mod.Pages):
            try:
                yield from held
                return
            except ahead_mod.Withdrawn:    # only ever before the first page
                pass
        for page in self.pages(path, body):
            yield from page

    def pages(self, path: str, body: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
        """A paged read's pages, as sent (never an answer read ahead)."""
        offset = 0
        while True:
            page = self.post(path, {**body, "limit": PAGE, "offset": offset})
            yield page
            if len(page) < PAGE:
                return
            offset += PAGE

    def _held(self, method: str, path: str, body: Any) -> Optional[ahead_mod.Held]:
        ahead = self.ahead
        return ahead.take(ahead_mod.key(method, path, body)) if ahead is not None else None

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> "PrefectClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the calls the engine needs -----------------------------------------
    def server_version(self) -> str:
        try:
            version = self.get("admin/version")
        except NotFound:
            raise Unreachable(self.api_url, "no Prefect API here (GET /admin/version → 404); "
                              "the URL should end in /api") from None
        except ApiError as exc:
            if exc.status in (401, 403):
                raise ApiError(exc.method, exc.url, exc.status, "check PREFECT_API_KEY") from None
            raise
        if not isinstance(version, str):
            raise Unreachable(self.api_url, f"unexpected answer to /admin/version: {json.dumps(version)[:80]}")
        return version


def _header_safe(key: str) -> str:
    """The key, if an HTTP header can carry it; else a one-line error that does not show it."""
    bad = next((i for i, c in enumerate(key) if not ("!" <= c <= "~")), None)
    if bad is not None:
        raise ReconcileError(f"the Prefect API key (PREFECT_API_KEY) has a space, control or non-ASCII character "
                             f"at position {bad + 1} of {len(key)}, which an HTTP header cannot carry; "
                             "set it to the key exactly as Prefect issued it")
    return key


def _reason(exc: httpx.TransportError) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError):
        return f"connection failed ({text})"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    return text


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase
    if isinstance(body, dict):   # Prefect's 422 echoes the request (`request_body`): it may hold secrets
        body = {k: v for k, v in body.items() if k != "request_body"}
    if isinstance(body, dict) and ("detail" in body or "exception_detail" in body):
        detail = body.get("detail", body.get("exception_detail"))
        if isinstance(detail, list):  # FastAPI validation errors
            return "; ".join(f"{'.'.join(str(p) for p in d.get('loc', []))}: {d.get('msg')}" if isinstance(d, dict)
                             else str(d) for d in detail[:3])
        return str(detail)[:300]
    return json.dumps(body)[:300]
