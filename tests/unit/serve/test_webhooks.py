"""Webhook deliveries: signatures per git host, push parsing, which repository a push is for."""
from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from reconciler.serve.webhooks import Rejected, is_deletion, matches, normalise, parse_push, redact, verify

SECRET = b"topsecret"
SHA = "a" * 40


def sig(body: bytes, secret: bytes = SECRET) -> str:
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


BODY = json.dumps({"ref": "refs/heads/main", "after": SHA,
                   "repository": {"clone_url": "https://github.com/acme/flows.git", "full_name": "acme/flows"}}).encode()


@pytest.mark.parametrize("headers, provider, event", [
    pytest.param({"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + sig(BODY)}, "github", "push", id="github"),
    pytest.param({"x-github-event": "push", "x-hub-signature-256": "SHA256=" + sig(BODY).upper()}, "github", "push",
                 id="github-header-case"),
    pytest.param({"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "topsecret"}, "gitlab", "Push Hook", id="gitlab"),
    pytest.param({"X-Gitea-Event": "push", "X-Gitea-Signature": sig(BODY)}, "gitea", "push", id="gitea"),
    pytest.param({"X-Forgejo-Event": "push", "X-Forgejo-Signature": sig(BODY)}, "gitea", "push", id="forgejo"),
    pytest.param({"X-Gitea-Event": "push", "X-GitHub-Event": "push", "X-Gitea-Signature": sig(BODY),
                  "X-Hub-Signature-256": "sha256=" + sig(BODY)}, "gitea", "push", id="gitea-with-github-headers"),
])
def test_a_good_signature_is_accepted(headers, provider, event):
    delivery = verify(headers, BODY, SECRET)
    assert (delivery.provider, delivery.event, delivery.is_push) == (provider, event, True)


@pytest.mark.parametrize("headers", [
    pytest.param({}, id="no-headers"),
    pytest.param({"X-GitHub-Event": "push"}, id="github-unsigned"),
    pytest.param({"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + sig(BODY, b"other")}, id="github-wrong-secret"),
    pytest.param({"X-GitHub-Event": "push", "X-Hub-Signature-256": sig(BODY)}, id="github-no-prefix"),
    pytest.param({"X-GitHub-Event": "push", "X-Hub-Signature": "sha1=" + hashlib.sha1(BODY).hexdigest()}, id="sha1-only"),
    pytest.param({"X-Gitlab-Event": "Push Hook"}, id="gitlab-no-token"),
    pytest.param({"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "topsecre"}, id="gitlab-wrong-token"),
    pytest.param({"X-Gitea-Event": "push"}, id="gitea-unsigned"),
    pytest.param({"X-Gitea-Event": "push", "X-Gitea-Signature": sig(BODY + b" ")}, id="gitea-body-changed"),
])
def test_a_missing_or_wrong_signature_is_401(headers):
    with pytest.raises(Rejected) as caught:
        verify(headers, BODY, SECRET)
    assert caught.value.status == 401


def test_the_delivery_id_comes_from_the_header_or_else_from_the_body():
    headers = {"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + sig(BODY)}
    assert verify({**headers, "X-GitHub-Delivery": "abc"}, BODY, SECRET).delivery_id == "abc"
    assert verify(headers, BODY, SECRET).delivery_id == verify(headers, BODY, SECRET).delivery_id
    assert verify(headers, BODY, SECRET).delivery_id.startswith("sha256:")


def test_events_other_than_push_are_not_pushes():
    headers = {"X-GitHub-Event": "ping", "X-Hub-Signature-256": "sha256=" + sig(BODY)}
    assert verify(headers, BODY, SECRET).is_push is False
    headers = {"X-Gitlab-Event": "Tag Push Hook", "X-Gitlab-Token": "topsecret"}
    assert verify(headers, BODY, SECRET).is_push is False


def test_a_push_gives_the_ref_the_pushed_commit_and_the_repository_names():
    delivery = verify({"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + sig(BODY)}, BODY, SECRET)
    push = parse_push(delivery, BODY)
    assert (push.ref, push.branch, push.commit) == ("refs/heads/main", "main", SHA)
    assert "acme/flows" in push.repository and "https://github.com/acme/flows.git" in push.repository


def test_gitlab_uses_checkout_sha_and_the_project():
    body = json.dumps({"ref": "refs/heads/main", "after": "b" * 40, "checkout_sha": "c" * 40,
                       "project": {"path_with_namespace": "acme/flows",
                                   "git_ssh_url": "git@gitlab.com:acme/flows.git"}}).encode()
    delivery = verify({"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "topsecret"}, body, SECRET)
    push = parse_push(delivery, body)
    assert push.commit == "c" * 40 and matches(push, "https://gitlab.com/acme/flows", None)


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"ref": "refs/heads/main"}',
                                  b'{"ref": "refs/heads/main", "after": "HEAD"}', b"\xff\xfe"])
def test_a_malformed_push_is_400(body):
    delivery = verify({"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + sig(body)}, body, SECRET)
    with pytest.raises(Rejected) as caught:
        parse_push(delivery, body)
    assert caught.value.status == 400


def test_a_branch_deletion_is_recognised():
    body = json.dumps({"ref": "refs/heads/main", "after": "0" * 40}).encode()
    delivery = verify({"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + sig(body)}, body, SECRET)
    assert is_deletion(parse_push(delivery, body))


@pytest.mark.parametrize("a, b", [
    ("https://github.com/acme/flows.git", "git@github.com:acme/flows.git"),
    ("https://GitHub.com/acme/flows", "ssh://git@github.com/acme/flows.git"),
    ("https://user:token@github.com/acme/flows.git/", "https://github.com/acme/flows"),
    ("/srv/git/flows.git", "file:///srv/git/flows.git"),
    ("https://github.com/Acme/Flows", "git@github.com:acme/flows.git"),
])
def test_one_repository_spelled_two_ways_is_the_same(a, b):
    assert normalise(a) == normalise(b)


def test_different_repositories_do_not_match():
    assert normalise("https://github.com/acme/flows") != normalise("https://github.com/acme/flows2")
    assert normalise("https://github.com/acme/flows") != normalise("https://gitlab.com/acme/flows")


def test_an_owner_name_setting_matches_the_full_name():
    delivery = verify({"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + sig(BODY)}, BODY, SECRET)
    push = parse_push(delivery, BODY)
    assert matches(push, "https://mirror.internal/flows.git", "acme/flows")
    assert not matches(push, "https://mirror.internal/flows.git", "acme/other")


def test_credentials_in_a_url_are_never_shown():
    assert redact("https://x-access-token:ghp_abc@github.com/acme/flows.git") == "https://***@github.com/acme/flows.git"
    assert redact("/srv/git/flows.git") == "/srv/git/flows.git"
