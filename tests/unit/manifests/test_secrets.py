"""Secret rules, masking in plan changes and plan JSON, digests, export's settings, and the API's echoed body."""
from __future__ import annotations

import io
import json

import httpx
import pytest

from reconciler.engine.plans import Action, Change
from reconciler.errors import ApiError
from reconciler.manifests import secrets
from reconciler.manifests.blocks import MASK, BlockRef
from reconciler.prefect.api import PrefectClient
from reconciler.render.text import Painter, action_lines


@pytest.mark.parametrize("key", ["password", "API_TOKEN", "client_secret", "key", "Credentials", "passphrase",
                                 "private_key", "Authorization", "sas_token"])
def test_credential_like_names(key):
    assert secrets.credential_like(key)


@pytest.mark.parametrize("key", ["basepath", "region", "endpoint_url", "anon", "use_ssl"])
def test_ordinary_names(key):
    assert not secrets.credential_like(key)


def test_every_env_value_dotted_or_nested_at_any_depth_is_secret_and_nothing_else():
    overrides = {"env.TOKEN": "a", "env": {"X": "b"}, "image": "c", "job": {"env": [{"name": "N", "value": "d"}]},
                 "environment": "e", "envy": {"x": "f"}}
    found = secrets.secrets_of(overrides, secrets.overrides_rule)
    assert list(found.values()) == ["a", "b", {"name": "N", "value": "d"}]
    shown = secrets.redact(overrides, secrets.overrides_rule)
    assert shown["env.TOKEN"] == shown["env"]["X"] == secrets.SENSITIVE and shown["image"] == "c"
    assert shown["environment"] == "e" and shown["envy"] == {"x": "f"}


def test_block_rule_uses_secret_fields_settings_names_and_env():
    rule = secrets.block_rule("s3", ["nested.password"], everything_named=False)
    assert rule(("aws_secret_access_key",)) and rule(("nested", "password")) and rule(("env", "A"))
    assert rule(("settings", "client_secret")) and rule(("settings", "client_kwargs", "token"))
    assert not rule(("bucket_path",)) and not rule(("settings", "client_kwargs", "endpoint_url"))
    assert secrets.block_rule("process")(("my_api_key",))          # plans hide any credential-like key


def test_a_change_never_holds_a_secret():
    c = Change("infra_overrides.env.TOKEN", "old-secret", "new-secret")
    assert (c.before, c.after, c.sensitive, c.hidden) == (secrets.SENSITIVE, secrets.SENSITIVE, True, True)
    assert c.to_json() == {"field": "infra_overrides.env.TOKEN", "before": "(sensitive)", "after": "(sensitive)",
                           "sensitive": True}
    whole = Change("infra_overrides", None, {"env": {"T": "s"}, "image": "x"})
    assert whole.after == {"env": {"T": "(sensitive)"}, "image": "x"} and whole.sensitive and not whole.hidden
    plain = Change("infra_overrides.image", "a", "b")
    assert plain.to_json() == {"field": "infra_overrides.image", "before": "a", "after": "b"}
    assert Change.__eq__(Change("description", "a", "b"), Change("description", "a", "b"))


def test_text_shows_a_sensitive_value_changed():
    action = Action("update", "f/d", "d.yaml", (Change("infra_overrides.env.TOKEN", "x", "y"),))
    lines = action_lines(action, Painter(False))
    assert lines[1].strip() == "infra_overrides.env.TOKEN: (sensitive value changed)"


def desired_json(**fields):
    return {"identity": "f/d", "fields": {"infra_overrides": {"env.T": "tok-1"}, **fields},
            "infrastructure": {"slug": "process", "name": None, "data": {"env": {"P": "pw-1"}, "type": "process"}},
            "storage": {"slug": "s3", "name": None, "data": {"bucket_path": "b", "aws_secret_access_key": "aws-1"}}}


def test_seal_masks_each_secret_and_returns_them_by_path():
    shown, found = secrets.seal(desired_json())
    assert found == {("fields", "infra_overrides", "env.T"): "tok-1", ("infrastructure", "data", "env", "P"): "pw-1",
                     ("storage", "data", "aws_secret_access_key"): "aws-1"}
    assert "tok-1" not in json.dumps(shown) and "pw-1" not in json.dumps(shown) and "aws-1" not in json.dumps(shown)
    assert shown["storage"]["data"]["bucket_path"] == "b"


def test_digests_are_salted_by_deployment_and_path_and_put_restores_a_value():
    d1 = secrets.digest("f/d", ("a",), "v")
    assert d1 == secrets.digest("f/d", ("a",), "v") and d1.startswith("pbkdf2-sha256:")
    assert d1 not in (secrets.digest("f/e", ("a",), "v"), secrets.digest("f/d", ("b",), "v"),
                      secrets.digest("f/d", ("a",), "w"))
    target = {"a": {"b": [0, "(sensitive)"]}}
    assert secrets.put(target, ("a", "b", 1), "x") and target == {"a": {"b": [0, "x"]}}
    assert not secrets.put(target, ("a", "c"), "x") and not secrets.put(target, ("z", "y"), "x")
    assert secrets.path_of(secrets.path_key(("a", 1, "env.X"))) == ("a", 1, "env.X")


def test_an_inline_block_json_never_holds_its_secret():
    from reconciler.engine.desired import Desired
    d = Desired("f/d", "f", "d", "d.yaml", {"infra_overrides": {"env": {"A": "s1"}}},
                BlockRef("process", None, {"env": {"B": "s2"}}), BlockRef("s3", None, {"aws_secret_access_key": "s3"}))
    text = json.dumps(Action("create", "f/d", "d.yaml", (), d).to_json())
    assert not any(s in text for s in ("s1", "s2", '"s3"}')) and text.count("pbkdf2-sha256:") == 3
    again = Action.from_json(json.loads(text))
    assert len(again.sealed) == 3 and json.loads(json.dumps(again.to_json())) == json.loads(text)


def test_export_masks_credential_settings_the_server_keeps_in_plain_text():
    from reconciler.engine.exported import _block
    raw = {"id": "b1", "name": "rfs", "is_anonymous": False, "block_type": {"slug": "remote-file-system"},
           "data": {"basepath": "s3://b/p", "settings": {"key": "AKIA-x", "secret": "sekrit", "token": "t0k",
                                                         "client_kwargs": {"endpoint_url": "http://h"}}}}
    out, masked = _block("b1", {"b1": raw}, "storage", "f/d", [])
    assert out["settings"] == {"key": MASK, "secret": MASK, "token": MASK, "client_kwargs": {"endpoint_url": "http://h"}}
    assert out["basepath"] == "s3://b/p" and not masked


def test_an_api_error_never_echoes_the_request_body():
    body = {"exception_message": "Invalid request received.", "request_body": {"infra_overrides": {"env.T": "s3cr3t"}},
            "exception_detail": [{"loc": ["body", "paused"], "msg": "not a boolean", "type": "type_error.bool"}]}
    client = PrefectClient("http://prefect.test/api", transport=httpx.MockTransport(lambda r: httpx.Response(422, json=body)))
    with pytest.raises(ApiError) as err:
        client.patch("deployments/x", {"infra_overrides": {"env.T": "s3cr3t"}})
    assert "s3cr3t" not in str(err.value) and "body.paused: not a boolean" in str(err.value)


def test_the_request_log_has_method_path_and_status_only():
    log = io.StringIO()
    client = PrefectClient("http://prefect.test/api", log=log,
                           transport=httpx.MockTransport(lambda r: httpx.Response(200, json={})))
    client.post("block_documents/filter?token=q-s3cr3t", {"password": "b-s3cr3t"})
    assert "s3cr3t" not in log.getvalue() and log.getvalue().startswith("POST /api/block_documents/filter 200")


# ----------------------------------------------------------------------------- a saved plan re-reads its secrets


def _saved(tmp_path, monkeypatch, token: str):
    import yaml
    from reconciler.engine.plans import Plan
    try:
        from .. import prefect_fake as pf
    except ImportError:
        import prefect_fake as pf
    monkeypatch.chdir(tmp_path)
    doc = pf.manifest("sealed", infra_overrides={"env.TOKEN": token, "image": "x"})
    target = tmp_path / pf.display_of(doc)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    (d,) = pf.desired(doc)
    plan = Plan("src", "http://prefect.test/api", "2.20.27", (Action("create", d.identity, d.manifest, (), d),))
    return Plan.from_json(json.loads(plan.dumps())), target, doc


def test_a_saved_plan_gets_its_secret_back_from_the_manifest(tmp_path, monkeypatch):
    from reconciler.engine.saved import unseal
    saved, _, _ = _saved(tmp_path, monkeypatch, "tok-A")
    assert saved.actions[0].desired.fields["infra_overrides"]["env.TOKEN"] == secrets.SENSITIVE
    restored = unseal(saved, "p.json")
    assert restored.actions[0].desired.fields["infra_overrides"] == {"env.TOKEN": "tok-A", "image": "x"}


def test_a_saved_plan_whose_secret_changed_in_the_manifest_is_refused_in_one_line(tmp_path, monkeypatch):
    import yaml
    from reconciler.engine.saved import unseal
    from reconciler.errors import PlanStale
    saved, target, doc = _saved(tmp_path, monkeypatch, "tok-A")
    target.write_text(yaml.safe_dump({**doc, "infra_overrides": {"env.TOKEN": "tok-B", "image": "x"}},
                                     sort_keys=False), encoding="utf-8")
    with pytest.raises(PlanStale) as err:
        unseal(saved, "p.json")
    message = str(err.value)
    line = next(i for i, text in enumerate(target.read_text().splitlines(), 1) if text.startswith("infra_overrides"))
    assert message.startswith(f"deployments/sealed-deployment.yaml:{line}: infra_overrides.env.TOKEN: this secret "
                              "changed since the plan p.json was made")
    assert "tok-" not in message and "\n" not in message
