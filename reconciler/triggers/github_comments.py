"""The GitHub side of the Action: one sticky pull-request comment through the REST API.

Pure pieces first (the hidden marker that finds our comment again, Markdown fences, truncation to GitHub's
limits), then a small REST client (list a pull request's comments across pages, create, update).
"""
from __future__ import annotations

import hashlib
import posixpath
import re
import time
from typing import Callable, Optional

import httpx

COMMENT_LIMIT = 65536          # characters: GitHub refuses a longer comment body
SUMMARY_LIMIT = 1024 * 1024    # bytes: GitHub's cap on one step's $GITHUB_STEP_SUMMARY
API_VERSION = "2022-11-28"
_MARK = "<!-- reconcile-plan:"


class GitHubError(Exception):
    """A failed GitHub API call; str() is one line (method, path, status, GitHub's message)."""


# ----------------------------------------------------------------------------- the marker


def normal_path(path: str) -> str:
    """`./deployments/` and `deployments` are the same job: one spelling for the marker."""
    return posixpath.normpath(path.replace("\\", "/") or ".")


def comment_key(path: str, source: Optional[str]) -> str:
    """12 hex digits naming one reconcile job (path + source): two jobs in a repository keep two comments."""
    return hashlib.sha256(f"{normal_path(path)}\0{source or ''}".encode()).hexdigest()[:12]


def _comment_safe(text: str) -> str:
    # nothing inside an HTML comment may end it or start a new line
    return re.sub(r"-{2,}", "-", text.replace(">", "").replace("\n", " ").replace("\r", " "))


def marker(path: str, source: Optional[str]) -> str:
    """The hidden first line of our comment; the key finds it, path and source are for people reading the source."""
    label = f"path={_comment_safe(normal_path(path))}" + (f" source={_comment_safe(source)}" if source else "")
    return f"{_MARK}{comment_key(path, source)} {label} -->"


def is_ours(body: Optional[str], key: str) -> bool:
    return bool(body) and body.lstrip().startswith(f"{_MARK}{key} ")


# ----------------------------------------------------------------------------- Markdown


def fenced(text: str, info: str = "") -> str:
    """`text` in a code fence longer than any backtick run inside it (tool output may contain ```)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text.rstrip()}\n{fence}\n"


def _closers(kept: str) -> str:
    """What a cut-off Markdown document needs to stay well formed: an open fence, open <details>."""
    fence = None
    for line in kept.splitlines():
        stripped = line.strip()
        run = re.match(r"`{3,}", stripped)
        if fence is None and run:
            fence = run.group(0)
        elif fence is not None and stripped == fence:
            fence = None
    out = f"{fence}\n" if fence else ""
    opened = len(re.findall(r"<details\b", kept)) - len(re.findall(r"</details>", kept))
    return out + "\n</details>\n" * max(0, opened)


def truncate(text: str, limit: int, note: str, size: Callable[[str], int] = len) -> str:
    """`text` if it fits in `limit` (measured by `size`), else whole lines of it, closed properly, then `note`."""
    if size(text) <= limit:
        return text
    budget = limit - size(note) - 256  # room for the closers and the blank lines around the note
    kept, used = [], 0
    for line in text.splitlines(keepends=True):
        if used + size(line) > budget:
            break
        kept.append(line)
        used += size(line)
    body = "".join(kept)
    if not body:  # one enormous first line
        body = text[:max(budget, 0)]
        while body and size(body) > budget:
            body = body[:-max(1, len(body) // 10)]
    body += "" if body.endswith("\n") else "\n"
    return body + _closers(body) + "\n" + note + "\n"


def summary_size(text: str) -> int:
    return len(text.encode("utf-8"))


# ----------------------------------------------------------------------------- the REST API


class GitHub:
    """The few GitHub REST calls the Action makes, authenticated with a token (never logged)."""

    def __init__(self, token: str, api_url: str = "https://api.github.com",
                 transport: Optional[httpx.BaseTransport] = None, timeout: float = 30.0,
                 retry_delay: float = 1.0) -> None:
        self.base = httpx.URL(api_url.rstrip("/") + "/")
        self.retry_delay = retry_delay
        self.http = httpx.Client(base_url=self.base, transport=transport, timeout=timeout, headers={
            "authorization": f"Bearer {token}",
            "accept": "application/vnd.github+json",
            "x-github-api-version": API_VERSION,
            "user-agent": "prefect-reconcile-action",
        })

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> "GitHub":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, url: str, **kwargs) -> httpx.Response:
        shown = httpx.URL(url).path if "://" in url else "/" + url
        for attempt in range(3):
            try:
                response = self.http.request(method, url, **kwargs)
            except httpx.HTTPError as exc:
                if attempt == 2:
                    raise GitHubError(f"{method} {shown}: {type(exc).__name__}: {exc}") from None
            else:
                if response.status_code not in (502, 503, 504) or attempt == 2:
                    break
            time.sleep(self.retry_delay * (attempt + 1))
        if response.status_code >= 400:
            raise GitHubError(f"{method} {shown} → {response.status_code} {_message(response)}")
        return response

    def comments(self, repo: str, number: int) -> list[dict]:
        """Every comment on the pull request (its issue), following the `Link: rel="next"` pages."""
        url: Optional[str] = f"repos/{repo}/issues/{number}/comments"
        params: Optional[dict] = {"per_page": 100}
        out: list[dict] = []
        for _ in range(1000):  # 100 000 comments: far past anything real, and never an endless loop
            response = self._request("GET", url, params=params)
            page = response.json()
            if not isinstance(page, list):
                raise GitHubError(f"GET /{url}: expected a list of comments, got {type(page).__name__}")
            out += page
            url, params = response.links.get("next", {}).get("url"), None
            if url is None:
                return out
            if httpx.URL(url).host != self.base.host:  # the token goes only where it was meant to go
                raise GitHubError(f"GET /repos/{repo}/issues/{number}/comments: next page on another host: {url}")
        raise GitHubError(f"GET /repos/{repo}/issues/{number}/comments: too many pages")

    def create_comment(self, repo: str, number: int, body: str) -> dict:
        return self._request("POST", f"repos/{repo}/issues/{number}/comments", json={"body": body}).json()

    def update_comment(self, repo: str, comment_id: int, body: str) -> dict:
        return self._request("PATCH", f"repos/{repo}/issues/comments/{comment_id}", json={"body": body}).json()

    def upsert_comment(self, repo: str, number: int, key: str, body: str) -> tuple[str, dict]:
        """Update our comment (found by its marker), else create it: ("updated" | "created", the comment)."""
        ours = [c for c in self.comments(repo, number) if is_ours(c.get("body"), key)]
        if ours:
            return "updated", self.update_comment(repo, ours[0]["id"], body)
        return "created", self.create_comment(repo, number, body)


def _message(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.reason_phrase or ""
    text = data.get("message") if isinstance(data, dict) else None
    return " ".join(str(text or response.reason_phrase or "").split())
