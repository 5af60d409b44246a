"""Push events from GitHub, GitLab and Gitea/Forgejo: who sent it, is the signature right, what was pushed.

Pure functions over (headers, raw body, secret); the HTTP layer only maps their outcome to a status code.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Any, Mapping, Optional
from urllib.parse import urlsplit

ZERO_SHA = re.compile(r"^0+$")


class Rejected(Exception):
    """The request is not a valid delivery: `status` is the HTTP status to answer with."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Delivery:
    provider: str            # github | gitlab | gitea
    event: str               # the provider's event name, e.g. push, ping, "Push Hook"
    delivery_id: str         # the provider's delivery id, else a hash of the body
    is_push: bool


@dataclass(frozen=True)
class Push:
    ref: str                 # refs/heads/main
    commit: str              # the pushed commit (`after`)
    repository: tuple[str, ...]   # every name the payload gives the repository (URLs, owner/name)

    @property
    def branch(self) -> Optional[str]:
        return self.ref[len("refs/heads/"):] if self.ref.startswith("refs/heads/") else None


def _header(headers: Mapping[str, str], *names: str) -> Optional[str]:
    lowered = {k.lower(): v for k, v in headers.items()}
    for name in names:
        if name.lower() in lowered:
            return lowered[name.lower()]
    return None


def verify(headers: Mapping[str, str], body: bytes, secret: bytes) -> Delivery:
    """Check the signature (constant time) and say who sent what. Raises Rejected(401) on any doubt."""
    gitea_sig = _header(headers, "X-Gitea-Signature", "X-Forgejo-Signature")
    gitea_event = _header(headers, "X-Gitea-Event", "X-Forgejo-Event")
    gitlab_token = _header(headers, "X-Gitlab-Token")
    github_sig = _header(headers, "X-Hub-Signature-256")
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    if gitea_sig is not None or (gitea_event is not None and github_sig is None):
        provider, event = "gitea", gitea_event or ""
        good = gitea_sig is not None and hmac.compare_digest(gitea_sig.strip().lower(), expected)
        delivery = _header(headers, "X-Gitea-Delivery", "X-Forgejo-Delivery")
        is_push = event == "push"
    elif gitlab_token is not None or _header(headers, "X-Gitlab-Event") is not None:
        provider, event = "gitlab", _header(headers, "X-Gitlab-Event") or ""
        good = gitlab_token is not None and hmac.compare_digest(gitlab_token.encode(), secret)
        delivery = _header(headers, "X-Gitlab-Event-UUID", "Idempotency-Key", "X-Gitlab-Webhook-UUID")
        is_push = event == "Push Hook"
    elif github_sig is not None or _header(headers, "X-GitHub-Event") is not None:
        provider, event = "github", _header(headers, "X-GitHub-Event") or ""
        good = github_sig is not None and hmac.compare_digest(github_sig.strip().lower(), "sha256=" + expected)
        delivery = _header(headers, "X-GitHub-Delivery")
        is_push = event == "push"
    else:
        raise Rejected(401, "no signature: expected X-Hub-Signature-256, X-Gitlab-Token or X-Gitea-Signature")
    if not good:
        raise Rejected(401, f"{provider}: missing or wrong signature")
    return Delivery(provider, event, delivery or "sha256:" + hashlib.sha256(body).hexdigest(), is_push)


def parse_push(delivery: Delivery, body: bytes) -> Push:
    """The ref, the pushed commit and the repository's names. Raises Rejected(400) for a malformed body."""
    try:
        data: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Rejected(400, f"{delivery.provider} push: the body is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise Rejected(400, f"{delivery.provider} push: the body is not a JSON object")
    ref, after = data.get("ref"), data.get("after")
    if delivery.provider == "gitlab":
        after = data.get("checkout_sha") or after
    if not isinstance(ref, str) or not isinstance(after, str) or not re.fullmatch(r"[0-9a-fA-F]{40,64}", after):
        raise Rejected(400, f"{delivery.provider} push: the body has no valid 'ref' and 'after' commit")
    names: list[str] = []
    for key in ("repository", "project"):
        repo = data.get(key)
        if isinstance(repo, dict):
            for field in ("clone_url", "ssh_url", "html_url", "git_url", "url", "git_http_url", "git_ssh_url",
                          "web_url", "homepage", "full_name", "path_with_namespace"):
                if isinstance(repo.get(field), str):
                    names.append(repo[field])
    return Push(ref, after.lower(), tuple(names))


def is_deletion(push: Push) -> bool:
    return bool(ZERO_SHA.match(push.commit))


def normalise(repo: str) -> str:
    """One spelling per repository: host/owner/name for URLs and scp-style addresses, the path for local ones."""
    text = repo.strip()
    scp = re.match(r"^[\w.-]+@([\w.-]+):(.+)$", text)
    if scp:
        host, path = scp.group(1), scp.group(2)
    elif "://" in text:
        parts = urlsplit(text)
        if parts.scheme == "file":
            host, path = "", parts.path
        else:
            host, path = (parts.hostname or "").lower(), parts.path
    else:
        host, path = "", text
    path = path.rstrip("/")
    if path.endswith(".git"):
        path = path[:-4]
    # git hosts treat owner/name case-insensitively; a local path is compared as it is
    return f"{host}/{path.strip('/')}".lower() if host else path.rstrip("/")


def matches(push: Push, repo: str, repository: Optional[str]) -> bool:
    """Is this push for the configured repository?"""
    wanted = normalise(repo)
    for name in push.repository:
        if normalise(name) == wanted:
            return True
        if repository and name.strip("/").lower() == repository.strip("/").lower():
            return True
    return False


def redact(url: str) -> str:
    """A repository URL without credentials, for logs and /status."""
    return re.sub(r"(://)[^/@\s]+@", r"\1***@", url)
